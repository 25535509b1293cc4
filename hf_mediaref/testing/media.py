"""Self-identifying test media: frames whose pixels say which frame they are.

Every frame carries a 16-bit barcode (two rows of 16 black/white blocks: the index and its bitwise
complement), which survives lossy coding; frames narrower than 64 or lower than 32 pixels (down to 32x16, for
odd sizes such as 33x17) carry an 8-bit one. :func:`read_index` reads it back and refuses anything that
is not a clean barcode, so a test can assert *which* frame came back, not just its shape.

Used by the test suite, the demo, the examples and the benchmark. Needs PyAV (``[video]``) for videos.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

BITS = 16
_MIN_WIDTH = 64
_MIN_HEIGHT = 32
_TINY_BITS = 8  # frames below _MIN_WIDTH x _MIN_HEIGHT, down to half that


def _band_geometry(height: int, width: int) -> tuple[int, int, int]:
    """``(row height, block width, bits)`` of the barcode of a ``height`` x ``width`` frame."""
    if width >= _MIN_WIDTH and height >= _MIN_HEIGHT:
        return max(8, height // 8), width // BITS, BITS
    if width >= _MIN_WIDTH // 2 and height >= _MIN_HEIGHT // 2:
        return max(4, height // 8), width // _TINY_BITS, _TINY_BITS
    raise ValueError(
        f"barcode frames need at least {_MIN_WIDTH // 2}x{_MIN_HEIGHT // 2} pixels, got {width}x{height}"
    )


def barcode_frame(index: int, height: int = 96, width: int = 128, *, noise: float = 0.0) -> np.ndarray:
    """An (H, W, 3) uint8 RGB frame showing ``index`` as a barcode over a moving gradient.

    ``noise`` (0..1) adds seeded pixel noise below the barcode to raise the bitrate to realistic levels.
    """
    row_h, block_w, bits = _band_geometry(height, width)
    if not 0 <= index < 2**bits:
        raise ValueError(f"index must be in [0, {2**bits}) for a {width}x{height} frame, got {index}")
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = (xx * 2 + index * 3) % 256
    img[..., 1] = (yy * 2 + index * 5) % 256
    img[..., 2] = (xx + yy + index * 7) % 256
    if noise > 0:
        rng = np.random.default_rng(index)
        jitter = rng.normal(0.0, 255 * noise, size=(height, width, 1))
        img = np.clip(img.astype(np.float32) + jitter, 0, 255).astype(np.uint8)
    img[: 2 * row_h + 2] = 128
    for bit in range(bits):
        on = (index >> (bits - 1 - bit)) & 1
        x0, x1 = bit * block_w, (bit + 1) * block_w
        img[1 : 1 + row_h, x0:x1] = 255 if on else 0
        img[1 + row_h : 1 + 2 * row_h, x0:x1] = 0 if on else 255
    return img


def read_index(frame: np.ndarray) -> int:
    """Read the barcode of an (H, W, 3) or (3, H, W) frame; raise ValueError if it is not a clean barcode."""
    arr = np.asarray(frame)
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"expected an RGB frame, got shape {arr.shape}")
    height, width = arr.shape[:2]
    row_h, block_w, bits = _band_geometry(height, width)
    luma = arr.astype(np.float32).mean(axis=-1)
    my, mx = max(1, row_h // 4), max(1, block_w // 4)
    value = 0
    for bit in range(bits):
        x0, x1 = bit * block_w + mx, (bit + 1) * block_w - mx
        top = luma[1 + my : 1 + row_h - my, x0:x1].mean()
        bottom = luma[1 + row_h + my : 1 + 2 * row_h - my, x0:x1].mean()
        if abs(top - bottom) < 96:
            raise ValueError(f"no clean barcode in bit {bit} (top {top:.0f}, bottom {bottom:.0f})")
        value = (value << 1) | int(top > bottom)
    return value


# --------------------------------------------------------------------------------------------- images


def write_image(
    path: str | os.PathLike,
    index: int = 0,
    *,
    size: tuple[int, int] = (96, 128),
    mode: str = "RGB",
    format: str | None = None,
    **save_kw,
) -> Path:
    """Write a barcode image (H, W = ``size``) in the given Pillow ``mode`` and ``format``."""
    from PIL import Image

    path = Path(path)
    rgb = barcode_frame(index, *size)
    img = Image.fromarray(rgb, "RGB")
    if mode == "I;16":
        gray = np.asarray(img.convert("L"), dtype=np.uint16) * 257
        img = Image.fromarray(gray)  # uint16 -> mode I;16
    elif mode == "RGBA":
        img = img.convert("RGBA")
        img.putalpha(200)
    elif mode != "RGB":
        img = img.convert(mode)
    img.save(path, format=format, **save_kw)
    return path


# --------------------------------------------------------------------------------------------- videos


@dataclasses.dataclass(frozen=True)
class VideoSpec:
    """What :func:`write_video` wrote. ``pts_ns[i]`` is the presentation time of the frame showing ``i``."""

    path: Path
    pts_ns: tuple[int, ...]
    width: int
    height: int
    codec: str

    @property
    def num_frames(self) -> int:
        return len(self.pts_ns)

    def expected_index(self, t_ns: int) -> int:
        """The frame on screen at ``t_ns``: the last frame whose pts <= t (the first frame before it)."""
        idx = int(np.searchsorted(np.asarray(self.pts_ns), t_ns, side="right")) - 1
        return max(idx, 0)


_CODEC_OPTIONS = {
    "libx264": lambda gop, bf: {
        "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bf}",
        "preset": "ultrafast" if bf == 0 else "veryfast",
        "crf": "23",
    },
    "libx265": lambda gop, bf: {
        "x265-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bf}:log-level=error",
        "preset": "ultrafast",
    },
    "libvpx-vp9": lambda gop, bf: {
        "g": str(gop),
        "deadline": "realtime",
        "cpu-used": "8",
        "crf": "32",
        "b": "0",
    },
    "libsvtav1": lambda gop, bf: {"g": str(gop), "preset": "12"},
    "mpeg4": lambda gop, bf: {"g": str(gop), "bf": str(bf), "qscale": "3"},
}


def write_video(
    path: str | os.PathLike,
    num_frames: int = 30,
    *,
    fps: Fraction | int | str = 30,
    size: tuple[int, int] = (96, 128),
    codec: str = "libx264",
    gop: int = 10,
    bframes: int = 0,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    start_pts: int = 0,
    audio: bool = False,
    noise: float = 0.0,
    first_index: int = 0,
    codec_options: dict[str, str] | None = None,
    pix_fmt: str = "yuv420p",
    rotation: int = 0,
    audio_first: bool = False,
) -> VideoSpec:
    """Encode a barcode video with PyAV and return its ground truth.

    ``pts`` gives explicit (possibly irregular, i.e. variable-frame-rate) timestamps in ``time_base`` units;
    otherwise frame i is at ``start_pts + i`` in a time base of ``1/fps``. ``audio`` adds a silent audio
    stream. ``codec_options`` are merged over the encoder options (``{"x264-params": "...:open-gop=1"}``).
    ``pix_fmt`` is the encoded pixel format (``"yuv420p10le"``, ``"yuv444p"``). ``rotation`` (MP4/MOV only)
    writes a display matrix rotating the picture by that many degrees counter-clockwise (the frames stay
    stored upright). ``audio_first`` puts the audio stream before the video stream.
    The returned pts are read back from the written file, so they are what a decoder will see."""
    import av

    path = Path(path)
    height, width = size
    rate = Fraction(fps)
    tb = time_base or (Fraction(1, 1000) if pts is not None else 1 / rate)
    frame_pts = (
        list(pts) if pts is not None else [start_pts + i * round(1 / (rate * tb)) for i in range(num_frames)]
    )
    if len(frame_pts) != num_frames:
        raise ValueError("len(pts) must equal num_frames")
    with av.open(str(path), "w") as out:
        astream = None
        if audio and audio_first:
            astream = _add_audio(out, path)
        options = {**_CODEC_OPTIONS.get(codec, lambda g, b: {})(gop, bframes), **(codec_options or {})}
        stream = out.add_stream(codec, rate=rate, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = tb
        stream.codec_context.time_base = tb
        if codec not in _CODEC_OPTIONS or codec == "mpeg4":
            stream.codec_context.gop_size = gop
        if audio and not audio_first:
            astream = _add_audio(out, path)
        for i, p in enumerate(frame_pts):
            frame = av.VideoFrame.from_ndarray(
                barcode_frame(first_index + i, height, width, noise=noise), "rgb24"
            )
            frame = frame.reformat(format=pix_fmt)
            frame.pts, frame.time_base = p, tb
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if astream is not None:
            _write_silence(av, out, astream, seconds=float(frame_pts[-1] * tb) + 0.2)
    if rotation:
        set_mp4_rotation(path, rotation)
    return VideoSpec(path, tuple(probe_pts_ns(path)), width, height, codec)


def _add_audio(out, path: Path):
    acodec = "libopus" if path.suffix in {".mkv", ".webm"} else "aac"
    astream = out.add_stream(acodec, rate=48000)
    astream.layout = "mono"
    return astream


def set_mp4_rotation(path: str | os.PathLike, degrees: int) -> None:
    """Write a display matrix rotating by ``degrees`` (counter-clockwise, a multiple of 90) into every track
    header of an MP4/MOV file, in place (what phones do; PyAV reads it back as ``VideoFrame.rotation``)."""
    import math
    import struct

    if degrees % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {degrees}")
    cos, sin = round(math.cos(math.radians(degrees))), round(math.sin(math.radians(degrees)))
    matrix = struct.pack(">9i", cos << 16, -sin << 16, 0, sin << 16, cos << 16, 0, 0, 0, 1 << 30)
    data = bytearray(Path(path).read_bytes())
    at = data.find(b"tkhd")
    if at < 4:
        raise ValueError(f"{path} has no track header (tkhd): not an MP4/MOV file")
    while at >= 4:
        version = data[at + 4]
        offset = at - 4 + (48 if version == 0 else 60)
        data[offset : offset + 36] = matrix
        at = data.find(b"tkhd", at + 4)
    Path(path).write_bytes(bytes(data))


def set_mp4_edit_list(path: str | os.PathLike, edits: Sequence[tuple[int, int]]) -> None:
    """Replace the edit list (``elst``) of the first track of an MP4/MOV file, in place: ``edits`` are
    ``(duration, media_time)`` entries at rate 1, durations in the movie's timescale (``mvhd``), media times
    in the track's (``media_time`` -1: an empty edit, which delays the track). What cameras and editors
    write: a start past the encoder's delay, a trim that starts mid-sample or on a non-keyframe.

    Raises:
        ValueError: not an MP4/MOV whose ``moov`` comes after its media data (a larger ``moov`` before the
            data would move every sample).
    """
    import struct

    data = bytearray(Path(path).read_bytes())
    moov, mdat = data.find(b"moov") - 4, data.find(b"mdat") - 4
    if moov < 0 or mdat < 0 or moov < mdat:
        raise ValueError(f"{path}: not an MP4/MOV with its moov after its media data")

    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I4s", 8 + len(payload), kind) + payload

    entries = b"".join(struct.pack(">IihH", duration, media_time, 1, 0) for duration, media_time in edits)
    edts = box(b"edts", box(b"elst", b"\0\0\0\0" + struct.pack(">I", len(edits)) + entries))
    trak = data.find(b"trak", moov) - 4
    (trak_size,) = struct.unpack_from(">I", data, trak)
    at, old_size = data.find(b"edts", trak, trak + trak_size) - 4, 0
    if at < 0:  # no edit list yet: insert one after the track header
        tkhd = data.find(b"tkhd", trak) - 4
        at = tkhd + struct.unpack_from(">I", data, tkhd)[0]
    else:
        (old_size,) = struct.unpack_from(">I", data, at)
    data[at : at + old_size] = edts
    grow = len(edts) - old_size
    for parent in (trak, moov):
        struct.pack_into(">I", data, parent, struct.unpack_from(">I", data, parent)[0] + grow)
    Path(path).write_bytes(bytes(data))


def write_animated_image(
    path: str | os.PathLike,
    num_frames: int = 12,
    *,
    fps: int = 10,
    size: tuple[int, int] = (64, 128),
    format: str | None = None,
) -> VideoSpec:
    """Write an animated GIF or WebP (by ``format`` or the suffix) of barcode frames with Pillow, each frame
    shown ``1 / fps`` seconds; ``pts_ns`` are the frames' start times (GIF stores hundredths of a second)."""
    from PIL import Image

    path = Path(path)
    height, width = size
    frames = [Image.fromarray(barcode_frame(i, height, width), "RGB") for i in range(num_frames)]
    duration_ms = round(1000 / fps)
    frames[0].save(
        path,
        format=format,
        save_all=True,
        append_images=frames[1:],
        duration=duration_ms,
        loop=0,
        lossless=True,
    )
    return VideoSpec(
        path, tuple(i * duration_ms * 1_000_000 for i in range(num_frames)), width, height, "image"
    )


def _write_silence(av, out, astream, seconds: float) -> None:
    samples = 960
    rate = astream.rate
    fmt = astream.codec_context.format.name
    total = int(seconds * rate)
    pts = 0
    while pts < total:
        arr = (
            np.zeros((1, samples), dtype=np.float32)
            if not fmt.endswith("p")
            else np.zeros((1, samples), np.float32)
        )
        frame = av.AudioFrame.from_ndarray(arr, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, pts
        out.mux(astream.encode(frame))
        pts += samples
    out.mux(astream.encode(None))


def probe_pts_ns(path: str | os.PathLike) -> list[int]:
    """Decode every frame of the first video stream and return the pts (ns) of the frame showing index i.

    Raises if the barcodes are not 0..N-1 in presentation order.
    """
    import av

    found: list[tuple[int, int]] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        for frame in container.decode(stream):
            idx = read_index(frame.to_ndarray(format="rgb24"))
            found.append((idx, int(frame.pts * tb.numerator * 1_000_000_000 // tb.denominator)))
    found.sort(key=lambda x: x[1])
    indices = [i for i, _ in found]
    base = indices[0] if indices else 0
    if indices != list(range(base, base + len(indices))):
        raise AssertionError(f"{path}: frames out of order or missing: {indices[:20]}...")
    return [p for _, p in found]
