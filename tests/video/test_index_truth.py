"""Indexes are hints, decoding is the truth: a sidecar (or a stored index, or MP4 tables) whose content key
matches but whose frame list lies never yields a wrong frame, in any strategy, with either decoder; hostile
sidecars (stale, huge, a gzip bomb, a symlink out of the folder) are ignored. Every answer is compared frame
by frame with a plain front-to-back PyAV decode of the file."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hf_mediaref import MediaRef, batch_decode, cleanup_cache
from hf_mediaref.decode import decoding_into
from hf_mediaref.errors import MediaDecodeError
from hf_mediaref.testing import probe_pts_ns, read_index, write_video
from hf_mediaref.testing.http_server import LoopbackFileServer
from hf_mediaref.video import (
    BatchDecodingStrategy,
    PyAVVideoDecoder,
    TorchCodecVideoDecoder,
    write_index_sidecar,
)
from hf_mediaref.video._identity import source_key
from hf_mediaref.video._index import VideoIndex
from hf_mediaref.video._index_store import load_stored_index, local_store_version, store_index
from hf_mediaref.video._indexes import load_index
from hf_mediaref.video._sidecar import (
    SidecarMedia,
    content_matches,
    decode_sidecar,
    encode_sidecar,
    local_sha256,
    sidecar_cap,
)

from .conftest import SIZE, ZOO
from .test_accuracy import _sequential_decode

STRATEGIES = list(BatchDecodingStrategy)
DECODERS = ["pyav", pytest.param("torchcodec", marks=pytest.mark.torchcodec)]
TRUTH_LOG = "hf_mediaref.video._truth"
SIDECAR_LOG = "hf_mediaref.video._sidecar"

#: H.264 with B-frames (frames come out of the decoder late) and VP9 without (a frame comes out at its own
#: packet, so the frame after the last target takes one more packet), both in Matroska, which has no complete
#: index of its own: what sidecars are for.
BUILDERS: dict[str, Callable[[Path], object]] = {
    "h264_bframes.mkv": lambda p: write_video(p, 48, fps=24, gop=12, bframes=2, size=SIZE),
    "vp9.mkv": lambda p: write_video(p, 36, fps=24, gop=12, codec="libvpx-vp9", size=SIZE),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, tuple[Path, list[int], list[np.ndarray]]]:
    """Each video with its true pts (ns) and its frames from a plain front-to-back decode."""
    folder = tmp_path_factory.mktemp("truth")
    out = {}
    for name, make in BUILDERS.items():
        make(folder / name)
        out[name] = (folder / name, probe_pts_ns(folder / name), _sequential_decode(folder / name))
    return out


@pytest.fixture
def fresh(cold):
    """Empty caches in memory and an on-disk index store of the test's own (the ``cold`` of conftest)."""


def _copy(built, name: str, folder: Path) -> tuple[Path, list[int], list[np.ndarray]]:
    path, pts, frames = built[name]
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, folder / name)
    return folder / name, pts, frames


# ------------------------------------------------------------------------------------- lying frame lists
def _rebuilt(index: VideoIndex, pts: np.ndarray, keep: np.ndarray, keys: list[int]) -> VideoIndex:
    offsets = index.packet_offsets[keep] if index.packet_offsets is not None else None
    return VideoIndex.from_stream_facts(
        index.stream_facts(),
        pts=pts,
        packet_sizes=index.packet_sizes[keep],
        keyframe_positions=keys,
        packet_offsets=offsets,
    )


def _dropped(index: VideoIndex, k: int) -> VideoIndex:
    """``index`` without frame ``k`` (not a keyframe)."""
    keep = np.arange(index.num_frames) != k
    keys = [p - (p > k) for p in index.keyframes() if p != k]
    return _rebuilt(index, index.pts[keep], keep, keys)


def _shifted(index: VideoIndex, k: int, tail: bool = False) -> VideoIndex:
    """``index`` with frame ``k``'s pts (``tail``: every pts from ``k`` on) moved later by half a frame."""
    pts = index.pts.copy()
    half = int(pts[k + 1] - pts[k]) // 2
    if tail:
        pts[k:] += half
    else:
        pts[k] += half
    return _rebuilt(index, pts, np.ones(index.num_frames, dtype=bool), index.keyframes())


TAMPERS: dict[str, Callable[[VideoIndex], VideoIndex]] = {
    "frame_dropped": lambda idx: _dropped(idx, 17),
    "pts_shifted": lambda idx: _shifted(idx, 17),
    "pts_shifted_from_a_frame_on": lambda idx: _shifted(idx, 20, tail=True),
}


def _tamper_sidecar(path: Path, tamper: Callable[[VideoIndex], VideoIndex]) -> None:
    """Write ``path``'s sidecar with a frame list that lies, under the true content key (size, head and
    SHA-256 of the media): only decoding can tell."""
    media, index = decode_sidecar(write_index_sidecar(path).read_bytes())
    Path(str(path) + ".mrindex").write_bytes(encode_sidecar(tamper(index), media))


def _decoder(decoder: str, path: Path):
    """A decoder of ``path`` by name, frames channels-last."""
    if decoder == "pyav":
        return PyAVVideoDecoder(str(path), dimension_order="NHWC")
    return TorchCodecVideoDecoder(str(path), dimension_order="NHWC")


def _check_all(uri: str, pts: list[int], frames: list[np.ndarray], strategy, decoder: str) -> None:
    """Every frame by its true pts (shuffled, with duplicates): the right barcode, and (PyAV) the pixels of
    the plain decode."""
    rng = np.random.default_rng(3)
    order = rng.permutation(len(pts)).tolist() + rng.integers(0, len(pts), 6).tolist()
    got = batch_decode(
        [MediaRef(uri, pts[i]) for i in order], strategy=strategy, decoder=decoder, output="numpy"
    )
    assert [read_index(np.asarray(f)) for f in got] == order
    for i, frame in zip(order, got):
        _assert_pixels(frame, frames[i], decoder)


def _assert_pixels(frame, reference: np.ndarray, decoder: str) -> None:
    """``frame`` shows the plain decode's pixels: equal for PyAV, and within TorchCodec's own colour
    conversion of them (as ``test_accuracy.test_torchcodec_pixels_close_to_pyav``)."""
    if decoder == "pyav":
        np.testing.assert_array_equal(frame, reference)
    else:
        assert np.abs(np.asarray(frame).astype(int) - reference.astype(int)).mean() < 4


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.value)
@pytest.mark.parametrize("tamper", list(TAMPERS))
@pytest.mark.parametrize("name", list(BUILDERS))
def test_a_tampered_sidecar_never_gives_a_wrong_frame(
    built, name, tamper, strategy, decoder, tmp_path, fresh, caplog
):
    path, pts, frames = _copy(built, name, tmp_path / "v")
    _tamper_sidecar(path, TAMPERS[tamper])
    with caplog.at_level(logging.WARNING, logger=TRUTH_LOG):
        _check_all(str(path), pts, frames, strategy, decoder)
    assert "disagrees with its decode" in caplog.text and name in caplog.text
    assert load_index(str(path)).scanned  # the rescan replaced the hint in the process cache
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=TRUTH_LOG):
        _check_all(str(path), pts, frames, strategy, decoder)  # and stays: no second rescan
    assert "disagrees" not in caplog.text


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.value)
@pytest.mark.parametrize("tamper", list(TAMPERS))
@pytest.mark.parametrize("name", list(BUILDERS))
def test_frames_decoded_into_destinations_on_a_lying_index_never_leave_a_wrong_frame_there(
    built, name, tamper, strategy, tmp_path, fresh
):
    """Spans decoded on the lying index may write into the caller's arrays (``decoding_into``, a window's
    rows) before the lie is found; the video is decoded again on the rescan, which writes nothing there. So
    an array holds its request's returned frame exactly when the two share memory, and the caller copies
    every other frame in (as a window row does): every array then shows the plain decode's pixels."""
    path, pts, frames = _copy(built, name, tmp_path / "v")
    _tamper_sidecar(path, TAMPERS[tamper])
    order = list(range(len(pts)))
    given: dict[int, np.ndarray] = {}

    def into(request: int, shape: tuple[int, ...]) -> np.ndarray:
        given[request] = np.zeros(shape, dtype=np.uint8)
        return given[request]

    with decoding_into(into):
        got = batch_decode([MediaRef(str(path), pts[i]) for i in order], strategy=strategy)
    assert load_index(str(path)).scanned  # the lie was found
    assert given  # and spans on it wrote before that
    for request, array in given.items():
        if not np.shares_memory(got[request], array):
            array[...] = got[request]
        np.testing.assert_array_equal(array, frames[order[request]])
    for i, frame in zip(order, got):
        np.testing.assert_array_equal(frame, frames[i])


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("tamper", list(TAMPERS))
@pytest.mark.parametrize("name", list(BUILDERS))
def test_one_frame_alone_next_to_the_lie_is_right(built, name, tamper, decoder, tmp_path, fresh):
    """One request at a time, in a fresh process state, at the frames around the lie: the decode goes on to
    the frame after its target, which ends the target's time on screen, so a dropped or moved frame there is
    seen even when nothing else is decoded."""
    path, pts, frames = _copy(built, name, tmp_path / "v")
    _tamper_sidecar(path, TAMPERS[tamper])
    for i in (15, 16, 17, 18, 19, 20, 21):
        cleanup_cache()
        (got,) = batch_decode(
            [MediaRef(str(path), pts[i])], strategy="separate", decoder=decoder, output="numpy"
        )
        assert read_index(got) == i
        _assert_pixels(got, frames[i], decoder)
        cleanup_cache()
        with PyAVVideoDecoder(str(path), dimension_order="NHWC") as dec:
            assert read_index(dec.get_frames_played_at([pts[i] / 1e9]).data[0]) == i


@pytest.mark.parametrize("decoder", DECODERS)
def test_the_decoder_api_answers_with_the_rescanned_index(built, decoder, tmp_path, fresh):
    """Positions and times through a decoder: after the rescan, position ``i`` is the ``i``-th frame of the
    file and the returned pts are the file's."""
    path, pts, _ = _copy(built, "h264_bframes.mkv", tmp_path / "v")
    _tamper_sidecar(path, TAMPERS["frame_dropped"])
    with _decoder(decoder, path) as dec:
        assert len(dec) == len(pts) - 1  # what the sidecar says, until a decode shows otherwise
        batch = dec.get_frames_at(list(range(len(pts) - 1)))
        assert [read_index(np.asarray(f)) for f in batch.data] == list(range(len(pts) - 1))
        assert np.allclose(batch.pts_seconds, np.asarray(pts[:-1]) / 1e9, atol=1e-3)
        assert len(dec) == len(pts)


@pytest.mark.parametrize("decoder", DECODERS)
def test_a_stored_index_that_lies_is_rescanned_and_replaced(built, decoder, tmp_path, fresh, caplog):
    """The on-disk index store is a hint too: a tampered entry is discarded, and the scan overwrites it."""
    path, pts, frames = _copy(built, "h264_bframes.mkv", tmp_path / "v")
    uri = str(path)
    key = source_key(uri, None)
    version = local_store_version(uri, key)
    assert version is not None
    store_index(key, version, _dropped(load_index(uri), 17))
    cleanup_cache()
    assert load_index(uri).num_frames == len(pts) - 1 and not load_index(uri).scanned  # the store's hint
    with caplog.at_level(logging.WARNING, logger=TRUTH_LOG):
        _check_all(uri, pts, frames, "sequential_per_keyframe_block", decoder)
    assert "disagrees with its decode" in caplog.text
    stored = load_stored_index(key, version)
    assert stored is not None and stored.num_frames == len(pts)


@pytest.mark.parametrize("decoder", DECODERS)
def test_mp4_tables_that_disagree_with_the_decode_are_rescanned(
    decoder, tmp_path, fresh, monkeypatch, caplog
):
    """The MP4 sample tables, as this package parses them, are a hint checked by decoding as well."""
    import hf_mediaref.video._indexes as indexes

    spec = write_video(tmp_path / "clip.mp4", 40, fps=25, gop=10, bframes=2, size=SIZE)
    frames = _sequential_decode(spec.path)
    parse = indexes._from_moov

    def lying(*args, **kwargs):
        index = parse(*args, **kwargs)
        if index is None:
            return None
        wrong = _shifted(index, 12, tail=True)
        wrong.moov_tables = True
        return wrong

    monkeypatch.setattr(indexes, "_from_moov", lying)
    with caplog.at_level(logging.WARNING, logger=TRUTH_LOG):
        _check_all(str(spec.path), list(spec.pts_ns), frames, "sequential_per_keyframe_block", decoder)
    assert "disagrees with its decode" in caplog.text


@pytest.mark.parametrize("decoder", DECODERS)
def test_when_the_scan_disagrees_too_the_typed_error_is_raised(built, decoder, tmp_path, fresh, monkeypatch):
    """The rescan is the last word: where even the scanned index disagrees with the decode (simulated), the
    frame is refused with MediaDecodeError, never replaced by another."""
    import hf_mediaref.video._truth as truth

    path, pts, _ = _copy(built, "h264_bframes.mkv", tmp_path / "v")
    _tamper_sidecar(path, TAMPERS["pts_shifted"])
    scan = truth.scan_index

    def still_wrong(*args, **kwargs):
        wrong = _shifted(scan(*args, **kwargs), 17)
        wrong.scanned = True
        return wrong

    monkeypatch.setattr(truth, "scan_index", still_wrong)
    times = [pts[17] + (pts[18] - pts[17]) * 3 // 4]  # frame 17's time on screen, after its lying pts
    with pytest.raises(MediaDecodeError, match="did not come out of the decoder"):
        batch_decode([MediaRef(str(path), times[0])], decoder=decoder)


# ------------------------------------------------------------------------------------- hostile sidecars
def _assert_scanned_right(path: Path, pts: list[int], frames: list[np.ndarray], strategy, decoder) -> None:
    """The sidecar was ignored (the index is a scan), and every frame is the plain decode's."""
    index = load_index(str(path))
    assert index.scanned and index.num_frames == len(pts)
    _check_all(str(path), pts, frames, strategy, decoder)


HOSTILE = pytest.mark.parametrize(
    ("strategy", "decoder"),
    [(s, "pyav") for s in STRATEGIES]
    + [pytest.param(s, "torchcodec", marks=pytest.mark.torchcodec) for s in STRATEGIES],
    ids=lambda v: getattr(v, "value", v),
)


@HOSTILE
def test_a_stale_sidecar_with_a_matching_size_and_head_is_ignored(
    built, tmp_path, fresh, caplog, strategy, decoder
):
    """The sidecar of another content, its media key forged to this file's size and head hash: the whole
    content's SHA-256 of a local file tells them apart."""
    path, pts, frames = _copy(built, "h264_bframes.mkv", tmp_path / "v")
    other = write_video(tmp_path / "other.mkv", 48, fps=30, gop=16, size=SIZE, first_index=300)
    media, index = decode_sidecar(write_index_sidecar(other.path).read_bytes())
    data = path.read_bytes()
    forged = SidecarMedia(
        len(data), media.sha256, media.head_bytes, hashlib.sha256(data[: media.head_bytes]).hexdigest()
    )
    Path(str(path) + ".mrindex").write_bytes(encode_sidecar(index, forged))
    with caplog.at_level(logging.WARNING):
        _assert_scanned_right(path, pts, frames, strategy, decoder)
    assert "stale" in caplog.text


@HOSTILE
def test_a_sidecar_of_a_rewritten_video_is_ignored(built, tmp_path, fresh, caplog, strategy, decoder):
    path, pts, frames = _copy(built, "vp9.mkv", tmp_path / "v")
    write_index_sidecar(path)
    _copy(built, "h264_bframes.mkv", tmp_path / "w")
    os.replace(tmp_path / "w" / "h264_bframes.mkv", path)  # the video rewritten, its sidecar left behind
    _, pts, frames = built["h264_bframes.mkv"]
    with caplog.at_level(logging.WARNING):
        _assert_scanned_right(path, pts, frames, strategy, decoder)
    assert "stale" in caplog.text


@HOSTILE
def test_a_huge_sidecar_is_refused_before_it_is_read(
    built, tmp_path, fresh, caplog, monkeypatch, strategy, decoder
):
    path, pts, frames = _copy(built, "vp9.mkv", tmp_path / "v")
    cap = sidecar_cap(path.stat().st_size)
    Path(str(path) + ".mrindex").write_bytes(b"\x1f\x8b" + b"\x00" * (cap + 1))
    with caplog.at_level(logging.WARNING, logger=SIDECAR_LOG):
        _assert_scanned_right(path, pts, frames, strategy, decoder)
    assert "ignoring the index sidecar" in caplog.text and "more than" in caplog.text


@HOSTILE
def test_a_gzip_bomb_is_refused(built, tmp_path, fresh, caplog, strategy, decoder):
    path, pts, frames = _copy(built, "vp9.mkv", tmp_path / "v")
    real = json.loads(gzip.decompress(write_index_sidecar(path).read_bytes()))
    bomb = gzip.compress(json.dumps(real).encode()[:-1] + b" " * (32 << 20) + b"}", compresslevel=9)
    assert len(bomb) < sidecar_cap(path.stat().st_size)  # small on disk: only decompressing shows it
    Path(str(path) + ".mrindex").write_bytes(bomb)
    with caplog.at_level(logging.WARNING, logger=SIDECAR_LOG):
        _assert_scanned_right(path, pts, frames, strategy, decoder)
    assert "decompresses to more than" in caplog.text
    with pytest.raises(ValueError, match="decompresses to more than 1,000 bytes"):
        decode_sidecar(bomb, max_bytes=1000)


@HOSTILE
def test_a_sidecar_linking_out_of_the_video_folder_is_never_read(
    built, tmp_path, fresh, caplog, monkeypatch, strategy, decoder
):
    path, pts, frames = _copy(built, "h264_bframes.mkv", tmp_path / "v")
    _tamper_sidecar(path, TAMPERS["frame_dropped"])
    outside = tmp_path / "elsewhere" / "index.mrindex"
    outside.parent.mkdir()
    os.replace(str(path) + ".mrindex", outside)
    os.symlink(outside, str(path) + ".mrindex")
    import hf_mediaref.video._sidecar as sidecar

    def refuse(*args, **kwargs):
        raise AssertionError("the sidecar was decoded")

    monkeypatch.setattr(sidecar, "decode_sidecar", refuse)
    with caplog.at_level(logging.WARNING, logger=SIDECAR_LOG):
        _assert_scanned_right(path, pts, frames, strategy, decoder)
    assert "links out of the video's folder" in caplog.text


def test_a_sidecar_linking_inside_the_video_folder_is_used(built, tmp_path, fresh, monkeypatch):
    path, pts, _ = _copy(built, "h264_bframes.mkv", tmp_path / "v")
    os.replace(write_index_sidecar(path), tmp_path / "v" / "shared.mrindex")
    os.symlink("shared.mrindex", str(path) + ".mrindex")
    index = load_index(str(path))
    assert not index.scanned and index.num_frames == len(pts)  # from the sidecar


def test_the_local_content_hash_is_computed_once_per_file_version(built, tmp_path, fresh, monkeypatch):
    """A local sidecar is checked against the whole file's SHA-256, read once per version of the file: kept
    in memory and on disk (a new process, here an emptied memory cache, does not read the file again)."""
    import hf_mediaref.video._sidecar as sidecar

    path, _, _ = _copy(built, "vp9.mkv", tmp_path / "v")
    media, _ = decode_sidecar(write_index_sidecar(path).read_bytes())
    reads: list[str] = []
    real_open = open

    def counting_open(file, *args, **kwargs):
        if str(file) == str(path):
            reads.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    assert content_matches(media, str(path)) and content_matches(media, str(path))
    assert len(reads) == 1
    sidecar._sha_cache.clear()  # another process of this machine
    assert content_matches(media, str(path)) and len(reads) == 1
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a new version, same size and head: hashed again, and it differs
    path.write_bytes(bytes(data))
    assert not content_matches(media, str(path))
    assert local_sha256(str(path)) == hashlib.sha256(bytes(data)).hexdigest()


# ------------------------------------------------------------------------------------- remote sidecars
@pytest.mark.parametrize("decoder", DECODERS)
def test_a_tampered_remote_sidecar_never_gives_a_wrong_frame(built, tmp_path, fresh, decoder, caplog):
    """Over HTTP (size and head are all a plain server proves): the decode's check discards the lie. The
    sidecar read is the video's URL + ``.mrindex``, nothing else."""
    path, pts, frames = _copy(built, "h264_bframes.mkv", tmp_path / "served")
    _tamper_sidecar(path, TAMPERS["pts_shifted"])
    with LoopbackFileServer(tmp_path / "served") as server:
        uri = f"{server.url}/{path.name}"
        with caplog.at_level(logging.WARNING, logger=TRUTH_LOG):
            for i in (16, 17, 18):  # one at a time: the lie is next to each
                cleanup_cache()
                (got,) = batch_decode([MediaRef(uri, pts[i])], decoder=decoder, output="numpy")
                assert read_index(np.asarray(got)) == i
            _check_all(uri, pts, frames, "sequential_per_keyframe_block", decoder)
        assert "disagrees with its decode" in caplog.text
        asked = {p.split("?")[0] for _, p, _ in server.log if p.endswith(".mrindex")}
        assert asked == {f"/{path.name}.mrindex"}


def test_a_huge_remote_sidecar_is_refused_by_its_size(built, tmp_path, fresh, caplog):
    path, pts, _ = _copy(built, "vp9.mkv", tmp_path / "served")
    Path(str(path) + ".mrindex").write_bytes(b"\x1f\x8b" + b"\x00" * (sidecar_cap(path.stat().st_size) + 1))
    with LoopbackFileServer(tmp_path / "served") as server:
        uri = f"{server.url}/{path.name}"
        with caplog.at_level(logging.WARNING, logger=SIDECAR_LOG):
            got = batch_decode([MediaRef(uri, t) for t in pts], output="numpy")
        assert [read_index(f) for f in got] == list(range(len(pts)))
        assert "more than" in caplog.text
        body_reads = [
            (m, r) for m, p, r in server.log if p.endswith(".mrindex") and m == "GET" and r != "bytes=0-0"
        ]
        assert body_reads == []  # its size came from the HEAD: no byte of it was read


@pytest.mark.parametrize("decoder", DECODERS)
def test_a_decoder_opened_before_the_rescan_follows_it(built, decoder, tmp_path, fresh):
    """Two decoders of one video hold the same hinted index; the rescan one of them triggers serves the other
    as well (its next call plans with the scanned index)."""
    path, pts, _ = _copy(built, "h264_bframes.mkv", tmp_path / "v")
    _tamper_sidecar(path, TAMPERS["frame_dropped"])
    first, second = _decoder(decoder, path), _decoder(decoder, path)
    for dec in (first, second):
        got = dec.get_frames_played_at([t / 1e9 for t in pts]).data
        assert [read_index(np.asarray(f)) for f in got] == list(range(len(pts)))
    assert len(second) == len(pts)


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.value)
@pytest.mark.parametrize("name", ZOO)
def test_an_honest_sidecar_is_never_discarded(build_case, name, strategy, decoder, tmp_path, fresh, caplog):
    """The checks cost no rescan where the hint is right: every zoo video with its own sidecar (and MP4 with
    its moov tables), every frame, no disagreement."""
    case = build_case(name)
    path = tmp_path / case.path.name
    shutil.copyfile(case.path, path)
    try:
        write_index_sidecar(path)
    except MediaDecodeError:
        pytest.skip("no sidecar for this file")
    with caplog.at_level(logging.WARNING, logger=TRUTH_LOG):
        got = batch_decode(
            [MediaRef(str(path), t) for t in case.spec.pts_ns],
            strategy=strategy,
            decoder=decoder,
            output="numpy",
        )
    turns = case.rotation // 90
    shown = [read_index(np.rot90(np.asarray(f), -turns)) - case.first_barcode for f in got]
    assert shown == list(range(case.spec.num_frames))
    for frame, reference in zip(got, _sequential_decode(case.path)):
        _assert_pixels(frame, np.rot90(reference, turns), decoder)
    assert "disagrees" not in caplog.text


@pytest.mark.parametrize("name", list(BUILDERS))
def test_the_packet_check_of_torchcodec_spans_finds_the_lie(built, name, tmp_path, fresh):
    """TorchCodec's spans of a hinted index are checked by demuxing their packets (runs without TorchCodec):
    an honest index passes everywhere, a lying one fails in the span next to the lie."""
    import contextlib

    from hf_mediaref.video._container import OpenedVideo
    from hf_mediaref.video._planning import Span
    from hf_mediaref.video._truth import IndexMismatch, check_span_packets

    path, _, _ = _copy(built, name, tmp_path / "v")
    honest = load_index(str(path))
    with contextlib.closing(OpenedVideo(str(path))) as video:
        for target in range(honest.num_frames):
            start = max(k for k in honest.keyframes() if k <= target)
            check_span_packets(video, honest, Span(start, (target,)))
        for tamper, target in zip(TAMPERS.values(), (16, 16, 19)):  # the spans whose next frame is the lie
            lying = tamper(honest)
            start = max(k for k in lying.keyframes() if k <= target)
            with pytest.raises(IndexMismatch):
                check_span_packets(video, lying, Span(start, (target,)))


@pytest.mark.parametrize("name", ZOO)
def test_the_packet_check_passes_honest_indexes(build_case, name, fresh):
    """No false alarm (which would cost a rescan) on any zoo video, for any single-frame span."""
    import contextlib

    from hf_mediaref.video._container import OpenedVideo
    from hf_mediaref.video._planning import Span
    from hf_mediaref.video._truth import check_span_packets

    case = build_case(name)
    index = load_index(case.uri)
    with contextlib.closing(OpenedVideo(case.uri)) as video:
        for target in range(index.num_frames):
            start = max(k for k in index.keyframes() if k <= target)
            check_span_packets(video, index, Span(start, (target,)))


@pytest.mark.torchcodec
def test_torchcodec_checks_a_hinted_span_once(built, tmp_path, fresh, monkeypatch):
    """The packets of a hinted index's span are checked the first time TorchCodec decodes it; the same span
    again (the next epoch, the next pass) is not demuxed a second time, and its frames are still right."""
    from hf_mediaref.video import _truth

    path, pts, _ = _copy(built, "h264_bframes.mkv", tmp_path / "once")
    write_index_sidecar(path)
    demuxes = []
    real = _truth._packet_pts_from
    monkeypatch.setattr(_truth, "_packet_pts_from", lambda *a: demuxes.append(1) or real(*a))
    refs = [MediaRef(str(path), pts[i]) for i in (3, 5, 30)]
    for _ in range(2):
        out = batch_decode(refs, decoder="torchcodec")
        assert [read_index(f) for f in out] == [3, 5, 30]
    assert demuxes, "the hinted spans were never checked"
    first = len(demuxes)
    batch_decode(refs, decoder="torchcodec")
    assert len(demuxes) == first  # nothing new to check
    wider = [MediaRef(str(path), pts[i]) for i in (3, 9)]  # the same block, checked further: checked again
    assert [read_index(f) for f in batch_decode(wider, decoder="torchcodec")] == [3, 9]
    assert len(demuxes) > first
