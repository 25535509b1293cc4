"""``hf-mediaref verify``: every ref (or a random sample) resolves and decodes, checked video by video.

Refs are resolved and checked by the dataset's :class:`~hf_mediaref.MediaAccess` (the folder or Hub repo it
was read from, ``--media-root``, ``--allow-uris``): a ref it refuses is counted as a failure under its error
(``UntrustedRefError``, ``PathEscapeError``) and never read. For each video: open it (its keyframe index: a
missing, unreadable or corrupt file fails all its refs at once, with one error), refuse the times at or past
its end (``FrameOutOfRangeError``, per ref), then decode the rest in batches of ``--batch-size`` refs, one
engine call each; a batch that fails is retried ref by ref, so every failing ref is counted under its own
error class. Images are decoded in batches too. The report gives the counts, and for each error class how many
refs and files it hit and its first message.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["DESCRIPTION", "EXAMPLES", "Report", "run", "verify_refs"]

DESCRIPTION = """\
Check that every media ref of a dataset resolves and decodes (or --sample N random refs per column and
split), video by video. Prints counts and the first error of each error class; exits 1 if any ref fails."""

EXAMPLES = """\
examples:
  hf-mediaref verify frames/
  hf-mediaref verify frames/ --sample 500 --seed 1
  hf-mediaref verify hf://datasets/me/robot-frames --split train --json"""


@dataclasses.dataclass
class _ErrorClass:
    refs: int = 0
    files: set[str] = dataclasses.field(default_factory=set)
    first: str = ""
    first_ref: str = ""


@dataclasses.dataclass
class Report:
    """What ``verify`` found for one column of one split."""

    split: str
    column: str
    refs: int = 0
    ok: int = 0
    videos: int = 0
    images: int = 0
    failed_files: set[str] = dataclasses.field(default_factory=set)
    errors: dict[str, _ErrorClass] = dataclasses.field(default_factory=dict)

    @property
    def failed(self) -> int:
        return self.refs - self.ok

    def fail(self, err: BaseException, uri: str, count: int, label: str) -> None:
        entry = self.errors.setdefault(type(err).__name__, _ErrorClass())
        entry.refs += count
        entry.files.add(uri)
        self.failed_files.add(uri)
        if not entry.first:
            entry.first, entry.first_ref = str(err), label

    def as_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "column": self.column,
            "refs": self.refs,
            "ok": self.ok,
            "failed": self.failed,
            "videos": self.videos,
            "images": self.images,
            "failed_files": len(self.failed_files),
            "errors": {
                name: {"refs": e.refs, "files": len(e.files), "first": e.first, "first_ref": e.first_ref}
                for name, e in sorted(self.errors.items())
            },
        }

    def text(self) -> str:
        lines = [
            f"{self.split}/{self.column}: {self.refs} refs in {self.videos} video(s) and {self.images} "
            f"image(s): {self.ok} ok, {self.failed} failed"
            + (f" (in {len(self.failed_files)} file(s))" if self.failed_files else "")
        ]
        for name, e in sorted(self.errors.items()):
            lines.append(f"  {name}: {e.refs} ref(s) in {len(e.files)} file(s); first: {e.first}")
        return "\n".join(lines)


def _label(uri: str, pts_ns: int | None) -> str:
    return uri if pts_ns is None else f"{uri} @ {pts_ns} ns"


def _decode_batches(items: Sequence[tuple[str, int | None, int]], report: Report, options: Any, batch: int):
    """Decode ``items`` (uri, pts_ns, rows it stands for) ``batch`` refs per engine call; a failing batch is
    retried ref by ref, so each failing ref is counted under its own error."""
    from ..core import MediaRef
    from ..decode import batch_decode

    for start in range(0, len(items), batch):
        part = items[start : start + batch]
        refs = [MediaRef(uri=uri, pts_ns=t) for uri, t, _ in part]
        try:
            batch_decode(refs, options=options)
            report.ok += sum(count for _, _, count in part)
            continue
        except Exception as err:
            if len(part) == 1:
                report.fail(err, part[0][0], part[0][2], _label(part[0][0], part[0][1]))
                continue
        for (uri, t, count), ref in zip(part, refs):
            try:
                batch_decode([ref], options=options)
                report.ok += count
            except Exception as err:
                report.fail(err, uri, count, _label(uri, t))


def _verify_video(uri: str, times: np.ndarray, counts: np.ndarray, report: Report, options: Any, batch: int):
    from ..video import PyAVVideoDecoder

    try:
        with PyAVVideoDecoder(uri, storage_options=options.storage_options) as decoder:
            end_ns = round(decoder.metadata.end_stream_seconds * 1e9)
            late = times >= end_ns - 1
            for i in np.flatnonzero(late):  # near the end: the playback rule decides, ref by ref
                try:
                    decoder.frame_indices_played_at([int(times[i])])
                    late[i] = False
                except Exception as err:
                    report.fail(err, uri, int(counts[i]), _label(uri, int(times[i])))
    except Exception as err:  # the video cannot be opened or indexed: all its refs fail with this error
        report.fail(err, uri, int(counts.sum()), _label(uri, int(times[0])))
        return
    keep = ~late
    items = [(uri, t, c) for t, c in zip(times[keep].tolist(), counts[keep].tolist())]
    _decode_batches(items, report, options, batch)


def verify_refs(
    uris: Sequence[str],
    pts_ns: Sequence[int | None],
    *,
    report: Report,
    options: Any,
    batch_size: int = 256,
    quiet: bool = False,
) -> Report:
    """Check resolved refs (``uris[i]`` at ``pts_ns[i]``), grouped by file, into ``report``."""
    from tqdm.auto import tqdm

    groups: dict[str, dict[int | None, int]] = {}
    for uri, t in zip(uris, pts_ns):
        per_time = groups.setdefault(uri, {})
        per_time[t] = per_time.get(t, 0) + 1
    report.refs += len(uris)
    images: list[tuple[str, int | None, int]] = []
    for uri, per_time in tqdm(groups.items(), desc=f"Verifying {report.column}", unit="file", disable=quiet):
        if None in per_time:
            images.append((uri, None, per_time.pop(None)))
        if per_time:
            report.videos += 1
            times = np.array(sorted(per_time), dtype=np.int64)
            counts = np.array([per_time[t] for t in times.tolist()], dtype=np.int64)
            _verify_video(uri, times, counts, report, options, batch_size)
    report.images += len(images)
    _decode_batches(images, report, options, batch_size)
    return report


def _column_refs(
    ds: Any, column: str, sample: int | None, seed: int, report: Report
) -> tuple[list[str], list[int | None]]:
    """The resolved refs of ``column`` (all, or ``sample`` random rows; null refs skipped). Refs that do not
    resolve or that the dataset's access refuses (relative without a media root, ``..`` escapes, refs reading
    outside the root and not allowed) are counted as failures in ``report``, and never read."""
    from ..arrow import resolve_uri
    from ..hf import get_media_access

    access = get_media_access(ds)
    rows = None
    if sample is not None and sample < len(ds):
        rows = np.sort(np.random.default_rng(seed).choice(len(ds), size=sample, replace=False))
    table = ds.with_format("arrow")[column] if rows is None else ds.select(rows).with_format("arrow")[column]
    array = table.combine_chunks() if hasattr(table, "combine_chunks") else table
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    encoded = array.field("uri").dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    pts = array.field("pts_ns").to_pylist()
    resolved: list[str | None] = []
    for code, uri in enumerate(encoded.dictionary.to_pylist()):
        try:
            resolved.append(resolve_uri(uri, access))
        except Exception as err:  # the ref does not resolve: all its rows fail with this error
            resolved.append(None)
            rows_of = int(np.count_nonzero(valid & (codes == code)))
            if rows_of:
                report.refs += rows_of
                report.fail(err, uri, rows_of, uri)
    keep = [i for i in np.flatnonzero(valid).tolist() if resolved[codes[i]] is not None]
    return [str(resolved[codes[i]]) for i in keep], [pts[i] for i in keep]


def run(args: Any) -> int:
    """Run ``verify`` with parsed arguments."""
    from ..decode import DecodeOptions
    from ..hf import get_media_access
    from ..io import reading_with
    from . import _store

    if args.sample is not None and args.sample < 1:
        raise ValueError(f"--sample must be >= 1, got {args.sample}")
    splits = _store.open_from_args(args)
    reports = []
    for split, ds in splits.items():
        columns = _store.media_columns(ds)
        if not columns:
            print(f"{split}: no MediaRef column", file=sys.stderr)
        access = get_media_access(ds)
        options = DecodeOptions(decoder=args.decoder).with_credentials(access)
        for column in columns:
            report = Report(split, column)
            uris, pts = _column_refs(ds, column, args.sample, args.seed, report)
            with reading_with(access):  # http(s) reads follow the dataset's public-address rule
                verify_refs(
                    uris, pts, report=report, options=options, batch_size=args.batch_size, quiet=args.quiet
                )
            reports.append(report)
    failed = sum(r.failed for r in reports)
    if args.json:
        print(json.dumps({"ok": failed == 0, "reports": [r.as_dict() for r in reports]}, indent=2))
    else:
        for report in reports:
            print(report.text())
        total = sum(r.refs for r in reports)
        print(f"{'FAILED' if failed else 'OK'}: {total - failed} of {total} refs decode")
    return 1 if failed or not reports else 0
