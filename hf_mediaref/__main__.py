"""``python -m hf_mediaref``: the ``hf-mediaref`` command line (:mod:`hf_mediaref.cli`)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
