"""The Arrow layer stands without ``datasets``."""

from __future__ import annotations

import subprocess
import sys


def test_importing_hf_mediaref_arrow_does_not_import_datasets():
    code = (
        "import sys, hf_mediaref.arrow as arrow, pyarrow as pa\n"
        "column = pa.array([{'uri': 'a.mp4', 'pts_ns': 0}], arrow.STORAGE_TYPE)\n"
        "refs, _ = arrow.refs_from_storage(column, '/data')\n"
        "print('datasets' in sys.modules, refs[0].uri)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["False", "/data/a.mp4"]
