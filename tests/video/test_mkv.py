"""The Matroska/WebM Cues parser: on real files written by PyAV, the cue points of the video track are the
keyframes a full demux shows (times, and clusters holding their packets); what it cannot read is refused."""

from __future__ import annotations

import contextlib

import pytest

from hf_mediaref.video import _mkv as mkv
from hf_mediaref.video._container import OpenedVideo
from hf_mediaref.video._mkv import CueIndex, Unsupported, read_cues

from .conftest import ZOO

#: Every Matroska/WebM video of the zoo with plain Cues (nocues_mkv is written without; nasty_hevc_mkv's go
#: back: its subtitles were muxed after the video, and are refused).
MKV_CASES = [n for n in ZOO if n.endswith(("_mkv", "_webm")) and n not in ("nocues_mkv", "nasty_hevc_mkv")]


def cues_of(path) -> tuple[CueIndex, list[tuple[int, int]]]:
    """The file's cues, and the (pts, byte position) of every video keyframe packet a full demux shows."""
    data = path.read_bytes()
    with contextlib.closing(OpenedVideo(str(path))) as video:
        stream = video.stream
        cues = read_cues(
            lambda offset, size: data[offset : offset + size],
            len(data),
            stream.index,
            len(video.container.streams),
        )
        keys = [(int(p.pts), int(p.pos)) for p in video.container.demux(stream) if p.size and p.is_keyframe]
    return cues, keys


@pytest.mark.parametrize("name", MKV_CASES)
def test_cues_are_the_keyframes_of_a_full_demux(name, build_case):
    case = build_case(name)
    cues, keys = cues_of(case.path)
    assert cues.timestamp_scale == 1_000_000  # what FFmpeg's muxer writes: a 1/1000 s time base
    assert cues.times.tolist() == [pts for pts, _ in keys]  # FFmpeg writes a cue per video keyframe
    positions = [pos for _, pos in keys]
    for j, (cluster, pos) in enumerate(zip(cues.cluster_positions.tolist(), positions)):
        assert cluster < pos  # the cue's cluster starts before its keyframe's block
        later = [c for c in cues.cluster_positions.tolist()[j + 1 :] if c > cluster]
        assert not later or pos < later[0]  # ... and the next cluster after it
    assert cues.first_cluster == cues.cluster_positions[0]
    assert cues.duration is not None and cues.duration > cues.times[-1]


def test_cluster_positions_that_go_back_are_refused(build_case):
    """The nasty file (audio, subtitles muxed after the video, every packet a keyframe): its video cues'
    clusters do not follow their times."""
    with pytest.raises(Unsupported, match="go back"):
        cues_of(build_case("nasty_hevc_mkv").path)


def test_a_file_without_cues_is_refused(build_case):
    with pytest.raises(Unsupported, match="no Cues"):
        cues_of(build_case("nocues_mkv").path)


def test_what_is_not_matroska_is_refused(build_case):
    with pytest.raises(Unsupported, match="not an EBML file"):
        cues_of(build_case("h264_mp4").path)


def test_a_track_count_other_than_the_streams_is_refused(build_case):
    data = build_case("vp9_mkv").path.read_bytes()
    with pytest.raises(Unsupported, match="TrackEntries"):
        read_cues(lambda o, n: data[o : o + n], len(data), 0, 2)


@pytest.mark.parametrize("cut", [20, 200, 0.5])
def test_truncated_files_are_refused(build_case, cut):
    """A file cut before its header ends, or before its Cues (at the end), is refused, never misread."""
    data = build_case("h264_ntsc_mkv").path.read_bytes()
    data = data[: int(len(data) * cut) if isinstance(cut, float) else cut]
    with pytest.raises(Unsupported):
        read_cues(lambda o, n: data[o : o + n], len(data), 0, 1)


def cue_fields(data: bytes) -> list[dict[int, tuple[int, int]]]:
    """Per CuePoint of the file: {element id: (value start, value end)} of its CueTime and (first track's)
    CueClusterPosition, as byte ranges of ``data`` (to patch them)."""
    start = data.rindex(
        b"\x1c\x53\xbb\x6b"
    )  # the Cues element (after the clusters; the SeekHead names it first)
    _, head, size = mkv._header(data, start)
    assert size is not None
    out = []
    for cid, s, e in mkv._children(data, start + head, start + head + size):
        if cid != mkv._CUE_POINT:
            continue
        fields = {}
        for gid, gs, ge in mkv._children(data, s, e):
            if gid == mkv._CUE_TIME:
                fields[gid] = (gs, ge)
            elif gid == mkv._CUE_TRACK_POSITIONS:
                for fid, fs, fe in mkv._children(data, gs, ge):
                    if fid == mkv._CUE_CLUSTER_POSITION:
                        fields[fid] = (fs, fe)
        out.append(fields)
    return out


def patch_uint(data: bytearray, span: tuple[int, int], value: int) -> None:
    """Write ``value`` over the unsigned integer at ``span`` (same width)."""
    data[span[0] : span[1]] = value.to_bytes(span[1] - span[0], "big")


def test_cue_times_must_increase(build_case):
    """Cues that go back in time are refused (patched: the third cue's time set to the second's)."""
    data = bytearray(build_case("vp9_mkv").path.read_bytes())
    fields = cue_fields(bytes(data))
    second = int.from_bytes(data[slice(*fields[1][mkv._CUE_TIME])], "big")
    patch_uint(data, fields[2][mkv._CUE_TIME], second)
    with pytest.raises(Unsupported, match="cue times do not increase"):
        read_cues(lambda o, n: bytes(data[o : o + n]), len(data), 0, 1)


def test_cluster_positions_outside_the_file_are_refused(build_case):
    data = bytearray(build_case("vp9_mkv").path.read_bytes())
    span = cue_fields(bytes(data))[-1][mkv._CUE_CLUSTER_POSITION]
    patch_uint(data, span, (1 << (8 * (span[1] - span[0]))) - 1)
    with pytest.raises(Unsupported, match="outside the segment"):
        read_cues(lambda o, n: bytes(data[o : o + n]), len(data), 0, 1)


@pytest.mark.parametrize("region", ["head", "cues"])
def test_damaged_bytes_are_refused_or_read_never_crash(build_case, region):
    """Random bytes flipped in the header or the Cues: the parser returns cues or raises Unsupported only."""
    import random

    clean = build_case("h264_ntsc_mkv").path.read_bytes()
    start = 0 if region == "head" else clean.rindex(b"\x1c\x53\xbb\x6b")
    rng = random.Random(region)
    for _ in range(300):
        data = bytearray(clean)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(start, min(len(data), start + 400))] = rng.randrange(256)
        try:
            read_cues(lambda o, n, d=data: bytes(d[o : o + n]), len(data), 0, 1)
        except Unsupported:
            pass


def test_a_tag_that_is_not_utf8_opens_and_decodes_every_frame(tmp_path):
    """A title tag whose bytes are not UTF-8 is no error (PyAV < 19 fails the open by default, 19 has no
    ``metadata_errors`` argument): every frame, local and over HTTP, is the barcode a plain decode shows."""
    import av

    from hf_mediaref import MediaRef, batch_decode
    from hf_mediaref.testing import read_index, write_video
    from hf_mediaref.testing.http_server import LoopbackFileServer

    spec = write_video(tmp_path / "plain.mkv", 12, fps=10, gop=4)
    tagged = tmp_path / "tagged.mkv"
    with av.open(str(spec.path)) as src, av.open(str(tagged), "w") as out:
        out.metadata["title"] = "QQQQQQQQ"
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    data = tagged.read_bytes()
    assert data.count(b"QQQQQQQQ") == 1
    tagged.write_bytes(data.replace(b"QQQQQQQQ", b"\xff\xfeQQ\xff\xfeQQ"))  # same length, not UTF-8
    kwargs = {"metadata_errors": "ignore"} if int(av.__version__.split(".")[0]) < 19 else {}
    with av.open(str(tagged), **kwargs) as c:
        plain = [read_index(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    assert plain == list(range(12))
    with LoopbackFileServer(tmp_path) as server:
        for uri in (str(tagged), f"{server.url}/tagged.mkv"):
            refs = [MediaRef(uri, t) for t in spec.pts_ns]
            assert [read_index(f) for f in batch_decode(refs)] == plain
