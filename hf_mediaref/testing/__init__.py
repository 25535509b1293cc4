"""Helpers that generate self-identifying media for tests, demos and benchmarks."""

from .latency_http import LatencyServer
from .media import (
    VideoSpec,
    barcode_frame,
    probe_pts_ns,
    read_index,
    set_mp4_edit_list,
    set_mp4_rotation,
    write_animated_image,
    write_image,
    write_video,
)

__all__ = [
    "LatencyServer",
    "VideoSpec",
    "barcode_frame",
    "probe_pts_ns",
    "read_index",
    "set_mp4_edit_list",
    "set_mp4_rotation",
    "write_animated_image",
    "write_image",
    "write_video",
]
