"""Damaged media: real encoded videos, mutated (payload bytes overwritten, header bytes flipped, truncated).

The reference is a plain front-to-back PyAV decode of the same file (one thread, every packet), where a frame
is refused when the decoder reported damage (a packet that fails to decode, a frame flagged corrupt) at or
before it in decode order since its keyframe. The engine must: return exactly the reference's frame, or raise
a typed error naming the video; raise only where the reference refuses; and give the same answer with every
strategy, at one or two threads. Its one blind spot, by design and only in streams with B-frames: a damaged
packet whose header says "not a reference" is skipped when nobody asked for its frame, so damage the decoder
would have reported there is not seen; the frames after it may then come back where the reference refuses
them. In streams without B-frames nothing is skipped (a damaged header could read "non-reference" and hide
the damage), so there the engine refuses exactly what the reference refuses. Damage FFmpeg conceals without
reporting it is invisible to everyone.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from hf_mediaref import MediaRef, batch_decode, cleanup_cache
from hf_mediaref.errors import MediaRefError
from hf_mediaref.testing import write_video
from hf_mediaref.video import BatchDecodingStrategy

from .conftest import SIZE

SOURCES = {
    "h264_bframes.mp4": {"codec": "libx264", "bframes": 2},
    "h264.mkv": {"codec": "libx264", "bframes": 0},
    "vp9.webm": {"codec": "libvpx-vp9", "bframes": 0},
}
MUTATIONS = ["payload-1", "payload-2", "payload-3", "header", "truncate-40", "truncate-75"]


def _packets(path: Path) -> list[tuple[int, int]]:
    import av

    with av.open(str(path)) as container:
        return [
            (p.pos, p.size) for p in container.demux(video=0) if p.size and p.pos is not None and p.pos >= 0
        ]


def _mutate(src: Path, dst: Path, mutation: str) -> None:
    data = bytearray(src.read_bytes())
    kind, _, arg = mutation.partition("-")
    if kind == "payload":  # overwrite an eighth of the bytes of four packets (neither the first nor headers)
        rng = random.Random(int(arg))
        for pos, size in rng.sample(_packets(src)[1:], 4):
            for _ in range(max(1, size // 8)):
                data[pos + rng.randrange(size)] = rng.randrange(256)
    elif kind == "header":
        for i in range(16, 400, 7):
            data[i] ^= 0x5A
    else:
        del data[len(data) * int(arg) // 100 :]
    dst.write_bytes(bytes(data))


def _reference(path: Path) -> dict[int, np.ndarray | None] | None:
    """What a plain front-to-back decode (one thread, every packet) outputs, by pts; None for a frame the
    decoder reported damage at or before (in decode order, since its keyframe); None when the file does not
    open. Damage: a packet that fails to decode, a frame flagged corrupt."""
    import av

    try:
        container = av.open(str(path))
    except av.error.FFmpegError:
        return None
    place: dict[int, tuple[int, int]] = {}  # pts -> (GOP, decode sequence number)
    first_damage: dict[int, int] = {}
    decoded: dict[int, np.ndarray] = {}
    gop = -1
    with container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        try:
            packets = list(container.demux(stream))
        except av.error.FFmpegError:
            packets = []
        for seq, packet in enumerate(packets):
            gop += bool(packet.is_keyframe)
            if packet.pts is not None:
                place[packet.pts] = (gop, seq)
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                first_damage[gop] = min(seq, first_damage.get(gop, seq))
                continue
            for frame in frames:
                if frame.pts is None:
                    continue
                if frame.is_corrupt:
                    g, s = place[frame.pts]
                    first_damage[g] = min(s, first_damage.get(g, s))
                decoded[frame.pts] = frame.to_ndarray(format="rgb24")
    return {
        pts: None if first_damage.get(place[pts][0], place[pts][1] + 1) <= place[pts][1] else frame
        for pts, frame in decoded.items()
    }


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    d = tmp_path_factory.mktemp("damaged")
    cases = []
    for name, kw in SOURCES.items():
        src = write_video(d / name, 60, fps=30, gop=15, noise=0.05, size=SIZE, **kw).path
        for mutation in MUTATIONS:
            dst = d / f"{mutation}.{name}"
            _mutate(src, dst, mutation)
            cases.append((dst, _reference(dst)))
    return cases


def _open(damaged, case: int):
    """``(uri, reference, index)`` of a damaged case, with empty caches; ``index`` is None when the engine
    refuses to index the file (then every call must raise a typed error)."""
    from hf_mediaref.video._indexes import load_index

    path, reference = damaged[case]
    uri = str(path)
    cleanup_cache()
    try:
        index = load_index(uri)
    except MediaRefError:
        with pytest.raises(MediaRefError):
            batch_decode([MediaRef(uri, 0)])
        return uri, reference, None
    assert reference is not None, "the engine indexed a file a plain decode cannot open"
    return uri, reference, index


@pytest.mark.parametrize("case", range(len(SOURCES) * len(MUTATIONS)))
def test_every_strategy_returns_the_reference_frames_or_a_typed_error(damaged, case):
    uri, reference, index = _open(damaged, case)
    if index is None:
        return
    reorders = SOURCES[list(SOURCES)[case // len(MUTATIONS)]]["bframes"] > 0
    positions = list(range(index.num_frames))
    rng = random.Random(case)
    batches = [positions] + [sorted(rng.sample(positions, min(4, len(positions)))) for _ in range(6)]
    outcomes = {}
    for strategy in BatchDecodingStrategy:
        for workers in (1, 2):
            for batch in batches:
                expected = [reference.get(int(index.pts[p])) for p in batch]
                refs = [MediaRef(uri, int(index.frame_ns[p])) for p in batch]
                try:
                    got = batch_decode(refs, strategy=strategy, max_workers=workers)
                except MediaRefError as exc:
                    assert exc.uri == uri
                    assert any(e is None for e in expected), f"{strategy} x{workers} {batch}: raised {exc}"
                    outcomes.setdefault(tuple(batch), set()).add("error")
                    continue
                for p, frame, want in zip(batch, got, expected):
                    if want is not None:  # never a frame that differs from an undamaged reference frame
                        assert np.array_equal(frame, want), f"{strategy} x{workers}: frame {p} differs"
                    else:  # without B-frames nothing is skipped: the engine refuses what the reference does
                        assert reorders, f"{strategy} x{workers}: frame {p} returned, reference refuses it"
                outcomes.setdefault(tuple(batch), set()).add(b"".join(f.tobytes() for f in got))
    assert all(len(kinds) == 1 for kinds in outcomes.values()), outcomes  # every way agrees


@pytest.mark.torchcodec
@pytest.mark.parametrize("case", range(len(SOURCES) * len(MUTATIONS)))
def test_torchcodec_returns_reference_frames_or_a_typed_error(damaged, case):
    uri, reference, index = _open(damaged, case)
    if index is None:
        return
    for p in range(0, index.num_frames, 7):
        want = reference.get(int(index.pts[p]))
        try:
            (frame,) = batch_decode([MediaRef(uri, int(index.frame_ns[p]))], decoder="torchcodec")
        except MediaRefError as exc:
            assert exc.uri == uri
            continue
        if want is None:  # TorchCodec cannot see the decoder's damage reports (README: damaged media)
            continue
        diff = np.abs(frame.astype(np.int16) - want.astype(np.int16)).mean()
        assert diff < 4, f"frame {p}: TorchCodec's frame differs from the reference by {diff:.1f} on average"
