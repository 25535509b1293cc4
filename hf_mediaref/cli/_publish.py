"""``hf-mediaref embed`` and ``hf-mediaref push``: :func:`hf_mediaref.embed` and
:func:`hf_mediaref.push_to_hub` on a dataset folder or Hub repo, with the progress bars of ``datasets`` and
``huggingface_hub``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "EMBED_DESCRIPTION",
    "PREVIEW_DESCRIPTION",
    "PUSH_DESCRIPTION",
    "run_embed",
    "run_preview",
    "run_push",
]

EMBED_DESCRIPTION = """\
Decode every ref and store it as an image data: URI, so the dataset no longer needs the media files
(hf_mediaref.embed). Writes a new dataset folder, all at once.

examples:
  hf-mediaref embed frames/ -o frames-png/
  hf-mediaref embed hf://datasets/me/robot-frames -o small/ --format webp --quality 85 --size 224 224"""

PUSH_DESCRIPTION = """\
Push a dataset and every local media file its refs point at to a Hub dataset repo (hf_mediaref.push_to_hub):
each file is uploaded once, refs become repo-relative, the dataset card explains how to load it.

examples:
  hf-mediaref push frames/ me/robot-frames
  hf-mediaref push frames/ me/robot-frames --private"""


def run_embed(args: Any) -> int:
    """Run ``embed`` with parsed arguments."""
    from .. import hf
    from . import _store

    splits = _store.open_from_args(args)
    embedded = {
        name: hf.embed(
            ds,
            format=args.format,
            quality=args.quality,
            batch_size=args.batch_size,
            decoder=args.decoder,
            size=tuple(args.size) if args.size else None,
        )
        for name, ds in splits.items()
    }
    with _store.dataset_folder(args.output, overwrite=args.overwrite) as folder:
        _store.write_tables(folder, embedded, args.output)
    rows = sum(len(ds) for ds in embedded.values())
    print(f"wrote {rows} rows with embedded {args.format} images to {Path(args.output).absolute()}")
    return 0


def run_push(args: Any) -> int:
    """Run ``push`` with parsed arguments."""
    import datasets

    from .. import hf
    from . import _store

    splits = _store.open_from_args(args)
    from ._build import _tags

    kwargs: dict[str, Any] = {
        "private": args.private or None,
        "commit_message": args.commit_message,
        "license": args.license,
        "tags": _tags(args),
        "preview": args.preview,
    }
    if len(splits) == 1:
        [(name, ds)] = splits.items()
        hf.push_to_hub(ds, args.repo_id, split=name, **kwargs)
    else:
        hf.push_to_hub(datasets.DatasetDict(splits), args.repo_id, **kwargs)
    print(f"pushed {', '.join(f'{n} ({len(d)} rows)' for n, d in splits.items())} to {args.repo_id}")
    return 0


PREVIEW_DESCRIPTION = """\
Write a contact sheet: N frames spread evenly over the dataset (first and last rows included), decoded in one
batch with the dataset's access, in a grid, each labelled with its row, file and time. A frame that cannot be
decoded leaves an empty cell marked "failed"."""


def run_preview(args: Any) -> int:
    """Run ``preview`` with parsed arguments."""
    from .. import hf
    from . import _store

    splits = _store.open_from_args(args)
    name, ds = next(iter(splits.items()))
    sheet = hf.contact_sheet(ds, args.column, n=args.n, cols=args.cols, thumbnail=args.thumbnail)
    sheet.save(args.output)
    print(f"wrote {args.output} ({min(args.n, len(ds))} frames of {name}, {sheet.size[0]}x{sheet.size[1]})")
    return 0
