#!/usr/bin/env python
"""Bytes and requests to decode one frame of an unseen remote video (issue 11: indexes shipped with the data).

    python scripts/bench_first_frame.py [--media .bench] [--markdown FILE]

The video is the benchmark's long one (5 min 640x360 20 fps H.264, GOP 250, 3 B-frames, ~19 MB, generated
into ``.bench/`` like ``scripts/benchmark.py`` does), as MP4 and as a Matroska remux of the same packets.
It is served by a loopback HTTP server (Range requests, ETag) counting the bytes it sends and the requests it
gets. Every contender runs in a fresh process (nothing cached in memory or on disk: an unseen video) and
decodes one frame; the frame is checked by its barcode.

Contenders: hf_mediaref (PyAV and TorchCodec backends) without and with the index sidecar
(``<video>.mrindex``, what ``push_to_hub`` uploads); TorchCodec 0.13 ``VideoDecoder`` in exact and approximate
seek modes over the same Range-request file hf_mediaref uses (``hf_mediaref.io.open_http``: 32 KiB after a
seek, doubling on forward reads); mediaref 2.1.0 ``batch_decode`` (its own fsspec HTTP reader).

"needed" is what a reader cannot avoid: the index (MP4: the bytes before ``mdat`` plus the ``moov``; Matroska
with a sidecar: the sidecar plus the header before the first cluster; Matroska without one: the header and
the ``Cues``, i.e. the bytes after the last packet) and the packets of the one keyframe block from its
keyframe to the target. Without a sidecar, hf_mediaref indexes a remote Matroska from its Cues (demuxing the
one block it needs; ``hf_mediaref.video._progressive``). Target: hf_mediaref <= 1.2x needed.
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from benchmark import make_video, publish

from hf_mediaref.testing.http_server import LoopbackFileServer

CHILD = r"""
import sys, warnings
warnings.filterwarnings("ignore")
kind, url, pts_ns = sys.argv[1], sys.argv[2], int(sys.argv[3])
from hf_mediaref.testing import read_index
if kind.startswith("hf_mediaref"):
    import hf_mediaref
    decoder = "torchcodec" if "torchcodec" in kind else "pyav"
    (frame,) = hf_mediaref.batch_decode([hf_mediaref.MediaRef(url, pts_ns)], decoder=decoder, output="numpy")
elif kind.startswith("torchcodec"):
    from torchcodec.decoders import VideoDecoder
    from hf_mediaref.io._http import open_http
    mode = "exact" if "exact" in kind else "approximate"
    dec = VideoDecoder(open_http(url), seek_mode=mode, dimension_order="NHWC")
    frame = dec.get_frame_played_at(pts_ns / 1e9).data.numpy()
else:
    import mediaref
    (frame,) = mediaref.batch_decode([mediaref.MediaRef(uri=url, pts_ns=pts_ns)])
print(read_index(frame))
"""

CONTENDERS = [
    ("hf_mediaref pyav", False),
    ("hf_mediaref pyav", True),
    ("hf_mediaref torchcodec", False),
    ("hf_mediaref torchcodec", True),
    ("torchcodec 0.13 exact", False),
    ("torchcodec 0.13 approximate", False),
    ("mediaref 2.1.0", False),
]


def _mp4_index_bytes(path: Path) -> int:
    """Bytes of the top-level boxes other than ``mdat`` (ftyp, moov, free...)."""
    total, pos, size = 0, 0, path.stat().st_size
    with open(path, "rb") as f:
        while pos < size:
            f.seek(pos)
            n, kind = struct.unpack(">I4s", f.read(8))
            if n == 1:
                (n,) = struct.unpack(">Q", f.read(8))
            elif n == 0:
                n = size - pos
            if kind != b"mdat":
                total += n
            pos += n
    return total


def needed_bytes(path: Path, frame: int, sidecar: bool = True) -> int:
    from hf_mediaref.video._indexes import load_index
    from hf_mediaref.video._sidecar import write_index_sidecar

    index = load_index(str(path))
    position = int(index.frames_at([int(index.frame_ns[frame])])[0])
    key = max(k for k in index.keyframes() if k <= position)
    block = int(index.packet_sizes[key : position + 1].sum())
    if path.suffix == ".mp4":
        return _mp4_index_bytes(path) + block
    assert index.packet_offsets is not None
    if not sidecar:  # the header and the Cues (written after the last cluster)
        cues = path.stat().st_size - int((index.packet_offsets + index.packet_sizes).max())
        return int(index.packet_offsets.min()) + cues + block
    with tempfile.TemporaryDirectory() as tmp:
        sidecar = write_index_sidecar(path, dest=Path(tmp) / "x.mrindex").stat().st_size
    assert index.packet_offsets is not None
    return sidecar + int(index.packet_offsets.min()) + block


def _frame_times(path: Path) -> list[int]:
    """pts (ns) of frame i (the remux keeps the frames and their order; the barcode check proves it)."""
    from hf_mediaref.video._indexes import load_index

    return [int(t) for t in load_index(str(path)).frame_ns]


def run_child(kind: str, url: str, pts_ns: int, cache: str) -> tuple[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_MEDIAREF_CACHE_DIR=cache)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, kind, url, str(pts_ns)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode:
        return "error", (proc.stderr.strip().splitlines() or ["?"])[-1][:100]
    return proc.stdout.strip().splitlines()[-1], ""


def remux_mkv(src: Path, dst: Path) -> None:
    import av

    if dst.exists():
        return
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.size:
                packet.stream = stream
                out.mux(packet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--media", default=str(ROOT / ".bench"))
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--frames", nargs="*", type=int, default=[0, 3010], help="frame numbers to decode")
    args = parser.parse_args(argv)
    media = Path(args.media)
    media.mkdir(parents=True, exist_ok=True)
    long = make_video(media / "long_300s_640x360_20fps.mp4", 300)
    served = Path(tempfile.mkdtemp(prefix="hf_mediaref-first-frame-"))
    mp4 = served / "long.mp4"
    os.symlink(Path(long.path).resolve(), mp4)
    mkv = media / "long_300s_640x360_20fps.mkv"
    remux_mkv(Path(long.path), mkv)
    os.symlink(mkv.resolve(), served / "long.mkv")

    from hf_mediaref.video._sidecar import SIDECAR_SUFFIX, write_index_sidecar

    rows = []
    with LoopbackFileServer(served) as server:
        for video in (mp4, served / "long.mkv"):
            pts = _frame_times(video)
            size = video.stat().st_size
            for frame in args.frames:
                for kind, with_sidecar in CONTENDERS:
                    need = needed_bytes(video, frame, with_sidecar or "hf_mediaref" not in kind)
                    sidecar = Path(str(video) + SIDECAR_SUFFIX)
                    sidecar.unlink(missing_ok=True)
                    if with_sidecar:
                        write_index_sidecar(video.resolve(), dest=sidecar)
                    sent, asked = server.bytes_sent, len(server.log)
                    got, err = run_child(kind, f"{server.url}/{video.name}", pts[frame], tempfile.mkdtemp())
                    nbytes, nreq = server.bytes_sent - sent, len(server.log) - asked
                    sidecar.unlink(missing_ok=True)
                    name = kind + (" + sidecar" if with_sidecar else "")
                    ok = "ok" if got == str(frame) else f"WRONG ({got} {err})".strip()
                    rows.append(
                        (video.suffix[1:], frame, name, nbytes, nreq, nbytes / need, nbytes / size, ok)
                    )
                    print(f"{rows[-1]}", flush=True)
            rows.append((video.suffix[1:], -1, f"(video: {size:,} bytes)", size, 0, size / need, 1.0, ""))

    lines = [
        "| video | frame | contender | bytes | requests | x needed | of the file | frame |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for ext, frame, name, nbytes, nreq, x_need, share, ok in rows:
        if frame < 0:
            continue
        lines.append(
            f"| {ext} | {frame} | {name} | {nbytes:,} | {nreq} | {x_need:.3f}x | {100 * share:.2f}% | {ok} |"
        )
    needs = {(v.suffix[1:], f): needed_bytes(v, f) for v in (mp4, served / "long.mkv") for f in args.frames}
    needs.update({("mkv (Cues)", f): needed_bytes(served / "long.mkv", f, False) for f in args.frames})
    lines.append("")
    lines.append(
        "needed (mkv rows of hf_mediaref without a sidecar: the Cues' need): "
        + ", ".join(f"{ext} frame {f}: {n:,} B" for (ext, f), n in needs.items())
        + f"; files: mp4 {mp4.stat().st_size:,} B, mkv {mkv.stat().st_size:,} B"
    )
    publish("\n".join(lines), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
