"""Run every example in this folder (each in its own process) and fail if any fails. Used by CI."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    failed = []
    for script in sorted(here.glob("*.py")):
        if script.name == Path(__file__).name or script.name.startswith("_"):
            continue
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        print(f"{script.name}: {status} in {time.perf_counter() - start:.1f} s")
        if proc.returncode != 0:
            failed.append(script.name)
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
    print(f"{len(failed)} example(s) failed" if failed else "all examples passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
