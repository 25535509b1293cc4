"""A zoo of small barcode videos covering the codecs, containers and timestamp traps the engine must handle.

Each video is encoded once per session, on first use. Every frame shows its index, and ``spec.pts_ns``
(read back from the written file) gives each frame's presentation time.
"""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest

from hf_mediaref.testing import (
    VideoSpec,
    probe_pts_ns,
    read_index,
    set_mp4_edit_list,
    write_animated_image,
    write_video,
)
from hf_mediaref.video import cleanup_cache

SIZE = (64, 128)  # (H, W): the smallest size barcodes (and every encoder here) accept
MS = Fraction(1, 1000)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    spec: VideoSpec
    fps: Fraction | None  # constant frame rate, or None for variable frame rate
    rotation: int = 0  # the display matrix's rotation (degrees counter-clockwise); frames are stored upright
    first_barcode: int = 0  # the barcode of the first frame a plain decode shows (an edit list cut others)

    @property
    def path(self) -> Path:
        return self.spec.path

    @property
    def uri(self) -> str:
        return str(self.spec.path)


def _remux(
    src: Path,
    dst: Path,
    *,
    all_keyframes: bool = False,
    subtitles: Path | None = None,
    options: dict | None = None,
) -> None:
    """Copy ``src`` into ``dst`` (same codecs), optionally flagging every video packet as a keyframe,
    adding an SRT subtitle stream, or passing muxer ``options``."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", options=options or {}) as out:
        streams = {
            s.index: out.add_stream_from_template(s) for s in inp.streams if s.type in ("video", "audio")
        }
        subs = av.open(str(subtitles)) if subtitles else None
        sub_out = out.add_stream_from_template(subs.streams[0]) if subs else None
        for packet in inp.demux(*[s for s in inp.streams if s.index in streams]):
            if packet.size == 0:
                continue
            if all_keyframes and packet.stream.type == "video":
                packet.is_keyframe = True
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
        if subs:
            for packet in subs.demux():
                if packet.size:
                    packet.stream = sub_out
                    out.mux(packet)
            subs.close()


def _edited(
    d: Path, name: str, edits: list[tuple[int, int]], *, bframes: int = 3, fps: int = 24
) -> VideoSpec:
    """An H.264 MP4 (GOP 12) whose edit list is replaced by ``edits`` (see ``set_mp4_edit_list``); its pts are
    what a plain front-to-back PyAV decode shows."""
    src = write_video(d / f"{name}.mp4", 48, fps=fps, gop=12, bframes=bframes, size=SIZE)
    set_mp4_edit_list(src.path, edits)
    return dataclasses.replace(src, pts_ns=tuple(probe_pts_ns(src.path)))


def _vfr_pts(n: int, start: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    pts, t = [], start
    for _ in range(n):
        pts.append(t)
        t += rng.choice([20, 33, 40, 50, 67, 100])
    return pts


def _nasty(d: Path) -> VideoSpec:
    """Like the clip that exposed upstream's seek bugs: HEVC in Matroska, variable frame rate, sparse real
    I-frames, audio and subtitle streams, first pts at 250 ms, and every video packet flagged keyframe."""
    src = write_video(
        d / "nasty_src.mkv",
        90,
        pts=_vfr_pts(90, 250, 0),
        time_base=MS,
        codec="libx265",
        gop=40,
        bframes=2,
        audio=True,
        size=SIZE,
    )
    srt = d / "nasty.srt"
    srt.write_text("1\n00:00:00,300 --> 00:00:00,900\nfirst\n\n2\n00:00:01,500 --> 00:00:02,000\nsecond\n\n")
    _remux(src.path, d / "nasty.mkv", all_keyframes=True, subtitles=srt)
    return dataclasses.replace(src, path=d / "nasty.mkv", pts_ns=tuple(probe_pts_ns(d / "nasty.mkv")))


def _no_cues(d: Path) -> VideoSpec:
    """H.264 with B-frames in Matroska written in live mode: no Cues (no seek index) and no duration."""
    src = write_video(d / "nocues_src.mkv", 48, fps=24, gop=12, bframes=2, size=SIZE)
    _remux(src.path, d / "nocues.mkv", options={"live": "1"})
    assert b"\x1c\x53\xbb\x6b" not in (d / "nocues.mkv").read_bytes()  # the Cues element id
    return dataclasses.replace(src, path=d / "nocues.mkv", pts_ns=tuple(probe_pts_ns(d / "nocues.mkv")))


def _mov(d: Path) -> VideoSpec:
    """A bit-exact QuickTime (MOV) remux of an H.264 MP4 with B-frames and an audio stream."""
    src = write_video(d / "mov_src.mp4", 48, fps=25, gop=12, bframes=2, audio=True, size=SIZE)
    _remux(src.path, d / "h264.mov")
    return dataclasses.replace(src, path=d / "h264.mov", pts_ns=tuple(probe_pts_ns(d / "h264.mov")))


def _ts(d: Path, name: str, gop: int) -> VideoSpec:
    """A bit-exact MPEG-TS remux of an H.264 MP4 with B-frames: TS seeks go by byte estimates and have landed
    after their target keyframe."""
    src = write_video(d / f"{name}_src.mp4", 72, fps=24, gop=gop, bframes=2, size=SIZE)
    _remux(src.path, d / f"{name}.ts")
    return dataclasses.replace(src, path=d / f"{name}.ts", pts_ns=tuple(probe_pts_ns(d / f"{name}.ts")))


BUILDERS: dict[str, tuple[Fraction | None, Callable[[Path], VideoSpec]]] = {
    "h264_mp4": (Fraction(30), lambda d: write_video(d / "h264.mp4", 40, fps=30, gop=10, size=SIZE)),
    "h264_bframes_mp4": (
        Fraction(24),
        lambda d: write_video(d / "h264_bf.mp4", 48, fps=24, gop=12, bframes=3, size=SIZE),
    ),
    "h264_ntsc_mkv": (
        Fraction(30000, 1001),
        lambda d: write_video(
            d / "h264_ntsc.mkv", 45, fps=Fraction(30000, 1001), gop=15, bframes=2, size=SIZE
        ),
    ),
    "vp9_mkv": (
        Fraction(24),
        lambda d: write_video(d / "vp9.mkv", 36, fps=24, gop=12, codec="libvpx-vp9", size=SIZE),
    ),
    "hevc_mkv": (
        Fraction(30),
        lambda d: write_video(d / "hevc.mkv", 45, fps=30, gop=15, bframes=2, codec="libx265", size=SIZE),
    ),
    "av1_mp4": (
        Fraction(20),
        lambda d: write_video(d / "av1.mp4", 30, fps=20, gop=10, codec="libsvtav1", size=SIZE),
    ),
    "mpeg4_bframes_mp4": (
        Fraction(25),
        lambda d: write_video(d / "mpeg4.mp4", 30, fps=25, gop=10, bframes=2, codec="mpeg4", size=SIZE),
    ),
    "vfr_mp4": (
        None,
        lambda d: write_video(
            d / "vfr.mp4", 40, pts=_vfr_pts(40, 0, 1), time_base=MS, gop=10, bframes=2, size=SIZE
        ),
    ),
    "vfr_mkv": (
        None,
        lambda d: write_video(d / "vfr.mkv", 40, pts=_vfr_pts(40, 0, 2), time_base=MS, gop=10, size=SIZE),
    ),
    "offset_audio_mp4": (
        Fraction(25),
        lambda d: write_video(
            d / "offset.mp4", 40, fps=25, gop=10, bframes=2, start_pts=7, audio=True, size=SIZE
        ),
    ),
    "nasty_hevc_mkv": (None, _nasty),
    "nocues_mkv": (Fraction(24), _no_cues),
    "h264_ts": (Fraction(24), lambda d: _ts(d, "h264_gop24", 24)),
    "h264_mov": (Fraction(25), _mov),
    "h264_open_gop_mp4": (
        Fraction(24),
        lambda d: write_video(
            d / "open_gop.mp4",
            48,
            fps=24,
            size=SIZE,
            codec_options={"x264-params": "keyint=12:min-keyint=12:scenecut=0:bframes=3:open-gop=1"},
        ),
    ),
    "h264_one_keyframe_ts": (Fraction(24), lambda d: _ts(d, "h264_gop300", 300)),
    # real-world media: pixel formats, odd sizes, a display matrix, stream order, more containers
    "h264_10bit_mp4": (
        Fraction(25),
        lambda d: write_video(
            d / "h264_10bit.mp4", 30, fps=25, gop=10, bframes=2, pix_fmt="yuv420p10le", size=SIZE
        ),
    ),
    "av1_10bit_mkv": (
        Fraction(24),
        lambda d: write_video(
            d / "av1_10bit.mkv", 24, fps=24, gop=8, codec="libsvtav1", pix_fmt="yuv420p10le", size=SIZE
        ),
    ),
    "h264_yuv444_mkv": (
        Fraction(30),
        lambda d: write_video(
            d / "h264_444.mkv", 30, fps=30, gop=10, bframes=2, pix_fmt="yuv444p", size=SIZE
        ),
    ),
    "vp9_33x17_webm": (
        Fraction(25),
        lambda d: write_video(d / "vp9_33x17.webm", 30, fps=25, gop=10, codec="libvpx-vp9", size=(17, 33)),
    ),
    "h264_yuv444_65x33_mp4": (
        Fraction(25),
        lambda d: write_video(
            d / "h264_65x33.mp4", 30, fps=25, gop=10, bframes=2, pix_fmt="yuv444p", size=(33, 65)
        ),
    ),
    "h264_rotated_mp4": (
        Fraction(30),
        lambda d: write_video(d / "rotated.mp4", 30, fps=30, gop=10, bframes=2, rotation=90, size=SIZE),
    ),
    "audio_first_mp4": (
        Fraction(25),
        lambda d: write_video(
            d / "audio_first.mp4", 30, fps=25, gop=10, bframes=2, audio=True, audio_first=True, size=SIZE
        ),
    ),
    "mpeg4_avi": (
        Fraction(25),
        lambda d: write_video(d / "mpeg4.avi", 30, fps=25, gop=10, codec="mpeg4", size=SIZE),
    ),
    "h264_avi": (
        Fraction(25),
        lambda d: write_video(d / "h264.avi", 30, fps=25, gop=10, size=SIZE),
    ),
    "animated_gif": (Fraction(10), lambda d: write_animated_image(d / "anim.gif", 20, fps=10, size=SIZE)),
    # MP4 edit lists as FFmpeg applies them (media scale 12288 at 24 fps, 12800 at 25; a frame is 512 ticks;
    # the encoder's B-frame delay puts frame 0 at media time 1024; the movie scale is 1000)
    "edit_empty_533ms_mp4": (  # an empty edit of 533 ms: 6549.5 media ticks, rounded to 6550
        Fraction(24),
        lambda d: _edited(d, "edit_empty", [(533, -1), (2000, 1024)]),
    ),
    "edit_mid_sample_mp4": (  # starts 256 ticks into frame 0 (dropped) and ends inside frame 45
        Fraction(24),
        lambda d: _edited(d, "edit_mid", [(1900, 1024 + 256)]),
    ),
    "edit_non_keyframe_mp4": (  # starts inside frame 5 (a B-frame of the first GOP), an empty edit first
        Fraction(24),
        lambda d: _edited(d, "edit_nonkey", [(250, -1), (1500, 1024 + 5 * 512 + 100)]),
    ),
    "edit_mid_sample_no_bframes_mp4": (  # no composition offsets: starts inside frame 2, a P-frame
        Fraction(25),
        lambda d: _edited(d, "edit_nob", [(1200, 2 * 512 + 300)], bframes=0, fps=25),
    ),
}
ZOO = list(BUILDERS)
#: The display rotation of zoo videos that have one.
ROTATION = {"h264_rotated_mp4": 90}


def _first_barcode(path: Path) -> int:
    """The barcode of the first frame a plain PyAV decode of ``path`` shows."""
    import av

    with av.open(str(path)) as container:
        frame = next(container.decode(container.streams.video[0]))
        return read_index(frame.to_ndarray(format="rgb24"))


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("zoo")


@pytest.fixture(scope="session")
def build_case(zoo_dir) -> Callable[[str], Case]:
    built: dict[str, Case] = {}

    def build(name: str) -> Case:
        if name not in built:
            fps, make = BUILDERS[name]
            spec = make(zoo_dir)
            first = _first_barcode(spec.path) if name.startswith("edit_") else 0
            built[name] = Case(name, spec, fps, ROTATION.get(name, 0), first)
        return built[name]

    return build


@pytest.fixture(params=ZOO)
def case(request, build_case) -> Case:
    return build_case(request.param)


@pytest.fixture
def cold(monkeypatch, tmp_path):
    """An empty on-disk index store of the test's own and no index or container in memory."""
    monkeypatch.setenv("HF_MEDIAREF_CACHE_DIR", str(tmp_path / "store"))
    cleanup_cache()
    yield
    cleanup_cache()


@pytest.fixture
def fresh_cache():
    """Start and end with an empty decoder cache and index cache."""
    cleanup_cache()
    yield
    cleanup_cache()


def one_frame_in_a_new_process(uri: str, pts_ns: int, cache_dir: Path, decoder: str = "pyav") -> int:
    """Decode the frame of ``uri`` at ``pts_ns`` in a new Python process (nothing cached in memory; its
    on-disk index store under ``cache_dir``) and return the frame's barcode."""
    code = (
        "import sys, hf_mediaref; from hf_mediaref.testing import read_index; "
        "(f,) = hf_mediaref.batch_decode([hf_mediaref.MediaRef(sys.argv[1], int(sys.argv[2]))], "
        "decoder=sys.argv[3], output='numpy'); print(read_index(f))"
    )
    root = Path(__file__).resolve().parents[2]
    path = os.pathsep.join([str(root), *sys.path])  # this process's packages (the test floor's included)
    env = dict(os.environ, PYTHONPATH=path, HF_MEDIAREF_CACHE_DIR=str(cache_dir))
    out = subprocess.run(
        [sys.executable, "-c", code, uri, str(pts_ns), decoder],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(out.stdout.strip().splitlines()[-1])
