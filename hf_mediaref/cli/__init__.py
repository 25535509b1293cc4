"""The ``hf-mediaref`` command line: build frame datasets from folders of recordings or LeRobot datasets, then
verify, inspect, embed and push them.

``hf-mediaref COMMAND --help`` describes each command; ``python -m hf_mediaref`` (or ``python -m
hf_mediaref.cli``) is the same program. :func:`main` takes the arguments as a list, so the commands can be run
from Python too. Modules (private): ``_build`` (folders, globs and list files to a frame table), ``_store``
(opening a dataset argument, writing a dataset folder atomically), ``_verify``, ``_inspect``, ``_publish``
(``embed`` and ``push``).

Exit status: 0 on success, 1 when the command ran but found failures (``verify``) or refused its input (a
corrupt file with ``--strict``, a bad argument value), 2 for a usage error (argparse).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence

__all__ = ["build_parser", "main"]

logger = logging.getLogger(__name__)

_DESCRIPTION = """\
Turn recordings into training-ready frame datasets: one row per frame, each frame a MediaRef (a video URI and
a presentation time) that decodes on demand, nothing re-encoded."""

_EXAMPLES = """\
examples:
  hf-mediaref build recordings/ -o frames/                 every frame of every video and image
  hf-mediaref build recordings/ -o frames/ --fps 5         the frames on screen 5 times a second
  hf-mediaref build "runs/**/*.mkv" -o frames/ --keyframes --metadata runs.csv
  hf-mediaref build recordings/ --push me/robot-frames     build and push (media uploaded once each)
  hf-mediaref build --from-lerobot lerobot/pusht -o pusht-frames/
  hf-mediaref build --from-videos me/my-videos -o frames/ --fps 2
  hf-mediaref verify frames/ --sample 1000                 decode 1000 random refs, grouped by video
  hf-mediaref inspect hf://datasets/me/robot-frames
  hf-mediaref embed frames/ -o frames-embedded/ --format webp --size 224 224
  hf-mediaref push frames/ me/robot-frames
  hf-mediaref preview frames/ -o sheet.png -n 24             look at 24 frames spread over the dataset
"""


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, errors only")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (DEBUG)")


def _add_dataset(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dataset",
        metavar="DATASET",
        help="a dataset folder (written by build, by save_to_disk, or a local clone of a Hub repo), "
        "hf://datasets/ORG/NAME[@REVISION] or ORG/NAME",
    )
    parser.add_argument("--split", help="only this split (default: all)")
    parser.add_argument("--revision", help="Hub revision (branch, tag or commit)")
    parser.add_argument(
        "--media-root",
        help="resolve relative refs against this folder or URL instead of where the dataset was read from "
        "(the media live elsewhere); refs then read inside it only",
    )
    parser.add_argument(
        "--allow-uris",
        action="append",
        metavar="PREFIX",
        help="let the dataset's refs read here too, beyond its root (a URI prefix, a folder, a scheme, or "
        "'*' for a dataset you trust entirely, e.g. one built with --media absolute); repeatable. Nothing "
        "stored in the data widens what its refs may read: only these flags do",
    )


def _add_card(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preview",
        type=int,
        default=16,
        metavar="N",
        help="a contact sheet of N frames (shown in the card) and their thumbnails as a 'preview' "
        "configuration the Hub's viewer shows as images; 0: none (default: %(default)s)",
    )
    parser.add_argument("--license", help="the dataset card's license (a Hub license id, e.g. cc-by-4.0)")
    parser.add_argument(
        "--tags", action="append", metavar="TAG[,TAG...]", help="tags for the dataset card (repeatable)"
    )


def _add_decode(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--decoder", choices=("pyav", "torchcodec"), default="pyav", help="decoder backend")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hf-mediaref`` (all sub-commands).

    Returns:
        An ``argparse.ArgumentParser`` whose parsed namespace has a ``run`` callable.

    Example:
        ```python
        >>> from hf_mediaref.cli import build_parser
        >>> build_parser().parse_args(["inspect", "frames/"]).dataset
        'frames/'
        ```
    """
    from . import _build, _inspect, _publish, _verify

    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="hf-mediaref", description=_DESCRIPTION, epilog=_EXAMPLES, formatter_class=fmt
    )
    from .._version import __version__

    parser.add_argument("--version", action="version", version=f"hf-mediaref {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    build = commands.add_parser(
        "build",
        help="videos and images (or a LeRobot dataset) -> a frame dataset",
        description=_build.DESCRIPTION,
        epilog=_build.EXAMPLES,
        formatter_class=fmt,
    )
    build.add_argument(
        "sources",
        metavar="SRC",
        nargs="*",
        help="folders (searched recursively), glob patterns, files, or @LIST (a file: one path a line)",
    )
    build.add_argument("-o", "--output", metavar="OUT", help="the dataset folder to write (must not exist)")
    build.add_argument("--push", metavar="ORG/NAME", help="push the dataset and its media to this Hub repo")
    build.add_argument("--from-lerobot", metavar="PATH_OR_REPO", help="import a LeRobot dataset instead")
    build.add_argument(
        "--from-videos",
        metavar="FOLDER_OR_REPO",
        help="a dataset of whole videos instead: a videofolder (videos and an optional metadata.jsonl/csv), "
        "a save_to_disk folder or a Hub dataset with a datasets.Video column; one row per sampled frame, "
        "the other columns kept",
    )
    build.add_argument(
        "--column", default="video", help="--from-videos: the video column (default: %(default)s)"
    )
    sampling = build.add_mutually_exclusive_group()
    sampling.add_argument("--fps", type=float, help="the frames on screen N times a second (playback rule)")
    sampling.add_argument("--keyframes", action="store_true", help="keyframes only")
    sampling.add_argument("--every", type=int, metavar="K", help="every K-th frame (0, K, 2K, ...)")
    build.add_argument("--root", help="refs are relative to this folder (default: the common folder of SRC)")
    build.add_argument(
        "--media",
        choices=("link", "copy", "absolute"),
        default="link",
        help="put the media in OUT as hard links (symlinked sources: links to their targets; copies across "
        "file systems; default) or copies, or leave them where they are and store absolute paths",
    )
    build.add_argument(
        "--metadata", metavar="SIDECAR", help="extra columns per file: a JSON or CSV file keyed by file"
    )
    build.add_argument(
        "--metadata-key", default="file", help="the sidecar's file column (default: %(default)s)"
    )
    build.add_argument("--split", default="train", help="split name (default: %(default)s)")
    build.add_argument("--workers", type=int, default=None, help="files probed in parallel (default: CPUs)")
    build.add_argument(
        "--strict", action="store_true", help="fail (write nothing) when any file cannot be read"
    )
    build.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    build.add_argument("--no-snap", action="store_true", help="--from-lerobot: do not read the videos")
    build.add_argument(
        "--episodes", metavar="I,J,...", help="--from-lerobot: only these episode indices (comma-separated)"
    )
    build.add_argument("--private", action="store_true", help="--push: create a private repo")
    _add_card(build)
    _add_common(build)
    build.set_defaults(run=_build.run)

    verify = commands.add_parser(
        "verify",
        help="check that every ref resolves and decodes",
        description=_verify.DESCRIPTION,
        epilog=_verify.EXAMPLES,
        formatter_class=fmt,
    )
    _add_dataset(verify)
    verify.add_argument("--sample", type=int, metavar="N", help="check N random refs per column and split")
    verify.add_argument("--seed", type=int, default=0, help="seed of --sample (default: %(default)s)")
    verify.add_argument("--batch-size", type=int, default=256, help="refs per engine call")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_decode(verify)
    _add_common(verify)
    verify.set_defaults(run=_verify.run)

    inspect = commands.add_parser(
        "inspect",
        help="schema, rows, videos, frames per video, codecs, media size",
        description=_inspect.DESCRIPTION,
        epilog=_inspect.EXAMPLES,
        formatter_class=fmt,
    )
    _add_dataset(inspect)
    inspect.add_argument(
        "--probe", action="store_true", help="open every video for codec and frame count (reads indexes)"
    )
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_common(inspect)
    inspect.set_defaults(run=_inspect.run)

    embed = commands.add_parser(
        "embed",
        help="replace refs by embedded images (data: URIs): a self-contained dataset",
        description=_publish.EMBED_DESCRIPTION,
        formatter_class=fmt,
    )
    _add_dataset(embed)
    embed.add_argument("-o", "--output", metavar="OUT", required=True, help="the dataset folder to write")
    embed.add_argument("--format", choices=("png", "jpeg", "webp"), default="png", help="image format")
    embed.add_argument("--quality", type=int, help="JPEG/WebP quality 1-100 (default 90)")
    embed.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="resize to H x W")
    embed.add_argument("--batch-size", type=int, default=64, help="rows per engine call")
    embed.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    _add_decode(embed)
    _add_common(embed)
    embed.set_defaults(run=_publish.run_embed)

    push = commands.add_parser(
        "push",
        help="push a dataset and the local media it references to the Hub",
        description=_publish.PUSH_DESCRIPTION,
        formatter_class=fmt,
    )
    _add_dataset(push)
    push.add_argument("repo_id", metavar="ORG/NAME", help="the Hub dataset repo")
    push.add_argument("--private", action="store_true", help="create a private repo")
    push.add_argument("--commit-message", help="commit message of the table")
    _add_card(push)
    _add_common(push)
    push.set_defaults(run=_publish.run_push)

    preview = commands.add_parser(
        "preview",
        help="a contact sheet: N frames of a dataset in one labelled image",
        description=_publish.PREVIEW_DESCRIPTION,
        formatter_class=fmt,
    )
    _add_dataset(preview)
    preview.add_argument(
        "-o", "--output", metavar="IMAGE", required=True, help="the image to write (.png, .jpg)"
    )
    preview.add_argument("-n", type=int, default=16, help="how many frames (default: %(default)s)")
    preview.add_argument("--cols", type=int, help="frames per row (default: about sqrt(N))")
    preview.add_argument("--column", help="the MediaRef column (default: the first)")
    preview.add_argument(
        "--thumbnail", type=int, default=160, help="longest side of each frame, pixels (default: %(default)s)"
    )
    _add_common(preview)
    preview.set_defaults(run=_publish.run_preview)
    return parser


def _configure_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if quiet:  # what build --from-videos left out is said even so, as build prints the files it skipped
        logging.getLogger("hf_mediaref.from_videos").setLevel(logging.WARNING)


@contextlib.contextmanager
def _progress_bars(quiet: bool) -> Iterator[None]:
    """``--quiet``: no progress bars from ``datasets`` and ``huggingface_hub`` while the command runs (their
    previous state is restored, so ``main`` called from Python leaves them as it found them)."""
    if not quiet:
        yield
        return
    import datasets
    from huggingface_hub import utils as hub_utils

    datasets_on = datasets.is_progress_bar_enabled()
    hub_off = hub_utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    hub_utils.disable_progress_bars()
    try:
        yield
    finally:
        if datasets_on:
            datasets.enable_progress_bars()
        if not hub_off:
            hub_utils.enable_progress_bars()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hf-mediaref`` with ``argv`` (default: ``sys.argv[1:]``) and return its exit status.

    Args:
        argv: the command-line arguments, without the program name.

    Returns:
        0 on success, 1 when the command failed (a report or error message is printed first). Usage errors
        exit with status 2 (``SystemExit``, from argparse).

    Example:
        ```python
        >>> from hf_mediaref.cli import main
        >>> main(["verify", "frames/", "--sample", "100"])
        0
        ```
    """
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose, args.quiet)
    from ..errors import MediaRefError

    try:
        with _progress_bars(args.quiet):
            return int(args.run(args))
    except (MediaRefError, ValueError, OSError) as err:  # OSError: files, permissions, the Hub
        print(f"hf-mediaref {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hf-mediaref {args.command}: interrupted", file=sys.stderr)
        return 130
