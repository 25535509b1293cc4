"""``python -m hf_mediaref.cli``: the ``hf-mediaref`` command line."""

from __future__ import annotations

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
