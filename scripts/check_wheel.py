"""Install the built wheel into a fresh virtual environment and decode a generated image and video with it.

`make package` runs this after `python -m build` and `twine check`: it proves the wheel is complete (every
module, `py.typed`, the `hf-mediaref` script), that its declared dependencies are enough for the core and the
`video` extra, and that `import hf_mediaref; hf_mediaref.batch_decode(...)` works outside the source tree.

The fresh venv gets its own pip and installs `<wheel>[video]` from the package index, exactly as a user would
(pip's cache makes a rerun fast). Nothing from
the project's `.venv` or source tree is importable there: the check runs in an empty temporary folder and
asserts where `hf_mediaref` was imported from.

Usage: python scripts/check_wheel.py dist/hf_mediaref-0.2.0-py3-none-any.whl
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import venv
from pathlib import Path

# Runs inside the fresh venv: generate media with the wheel's own testing helpers, decode, check each frame.
CHECK = textwrap.dedent(
    """
    import pathlib, sys
    import hf_mediaref
    from hf_mediaref import MediaRef
    from hf_mediaref.testing import read_index, write_image, write_video

    where = pathlib.Path(hf_mediaref.__file__).resolve()
    assert where.is_relative_to(pathlib.Path(sys.prefix).resolve()), f"imported from {where}, not the venv"
    assert hf_mediaref.__version__ == sys.argv[1], (hf_mediaref.__version__, sys.argv[1])

    video = write_video("clip.mp4", num_frames=30, fps=10, gop=10)
    write_image("still.png", index=7)
    refs = [MediaRef("clip.mp4", video.pts_ns[i]) for i in (25, 3, 12)] + [MediaRef("still.png")]
    frames = hf_mediaref.batch_decode(refs)
    got = [read_index(frame) for frame in frames]
    assert got == [25, 3, 12, 7], got
    print(f"hf_mediaref {hf_mediaref.__version__} from {where.parent}: decoded frames {got}")
    """
)


def main(wheel: str) -> int:
    wheel_path = Path(wheel).resolve()
    version = wheel_path.name.split("-")[1]
    with tempfile.TemporaryDirectory(prefix="hf-mediaref-wheel-") as tmp:
        env_dir = Path(tmp) / "venv"
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
        python = env_dir / "bin" / "python"
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"{wheel_path}[video]"],
            check=True,
        )
        work = Path(tmp) / "work"
        work.mkdir()
        subprocess.run([str(python), "-I", "-c", CHECK, version], cwd=work, check=True)
        script = env_dir / "bin" / "hf-mediaref"
        out = subprocess.run([str(script), "--version"], check=True, capture_output=True, text=True).stdout
        assert out.strip() == f"hf-mediaref {version}", out
    print(f"ok: {wheel_path.name} installs into a fresh venv and decodes")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
