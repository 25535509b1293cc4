"""Frames of many videos in one planned pass: open each video once (indexes scanned in parallel), map times to
frames, plan spans; the caller runs the span tasks (with any other work) and collects the frames.

Works on URIs and nanosecond times, never on ``MediaRef`` (the decode façade above turns refs into these).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from .._executor import Task, run_tasks
from ._base import BaseVideoDecoder
from ._planning import BatchDecodingStrategy
from ._truth import Stale

__all__ = ["VideoPlan", "plan_videos"]


@dataclasses.dataclass
class VideoPlan:
    """The decode of one video's requested frames: ``tasks`` to run, then :meth:`frames` to collect."""

    decoder: BaseVideoDecoder
    positions: list[int]  # the frame position answering each request, in request order
    tasks: list[Task]
    times_ns: list[int] | None = None  # the requested times, in request order
    strategy: BatchDecodingStrategy | str | None = None
    size: tuple[int, int] | None = None
    budget: int = 1

    def frames(self, results: Sequence[dict[int, Any]]) -> list[Any]:
        """The (H, W, 3) frame of each request, in request order, from the results of :attr:`tasks`.

        Where a span showed the video's index wrong (a hint: see :mod:`._truth`), the video was indexed
        again by a scan and the request is decoded again here with the new index."""
        if any(isinstance(part, Stale) for part in results):
            positions, decoded, _ = self.decoder._decode_again(
                times_ns=self.times_ns,
                positions=self.positions,
                strategy=self.strategy,
                size=self.size,
                budget=self.budget,
            )
            return [decoded[p] for p in positions]
        decoded = {}
        for part in results:
            decoded.update(part)
        return [decoded[p] for p in self.positions]


def _decoder_class(decoder: str) -> type[BaseVideoDecoder]:
    if decoder == "pyav":
        from ._pyav import PyAVVideoDecoder

        return PyAVVideoDecoder
    if decoder == "torchcodec":
        from ._torchcodec import TorchCodecVideoDecoder

        return TorchCodecVideoDecoder
    raise ValueError(f"unknown decoder {decoder!r}; use 'pyav' or 'torchcodec'")


def _open(cls: type[BaseVideoDecoder], uri: str, options: dict[str, Any], _threads: int) -> BaseVideoDecoder:
    return cls(uri, **options)


def plan_videos(
    requests: Mapping[str, Sequence[int]],
    *,
    decoder: str = "pyav",
    strategy: BatchDecodingStrategy | str | None = None,
    size: tuple[int, int] | None = None,
    storage_options: dict | None = None,
    device: str = "cpu",
    orientation: str = "display",
    budget: int = 1,
) -> list[VideoPlan]:
    """Open every video of ``requests`` (URI -> times in ns) and plan the decode of its frames.

    Args:
        requests: for each video URI, the requested times in nanoseconds (any order, duplicates allowed).
        decoder, strategy, size, storage_options, device, orientation: see :class:`hf_mediaref.DecodeOptions`.
        budget: threads to use while opening and indexing the videos.

    Returns:
        One :class:`VideoPlan` per video, in the order of ``requests``.

    Raises:
        FrameOutOfRangeError: a time at or past the end of its video (named by its label).
    """
    if not requests:
        return []
    cls = _decoder_class(decoder)
    options: dict[str, Any] = {"storage_options": storage_options, "orientation": orientation}
    if decoder == "torchcodec":
        options["device"] = device
    decoders: list[BaseVideoDecoder] = run_tasks(
        [Task(1.0, functools.partial(_open, cls, uri, options)) for uri in requests], budget
    )
    plans = []
    for dec, times in zip(decoders, requests.values()):
        index = dec._index_for(times)  # positions in it, for the plan and the decode
        positions = dec._frames_at(times, index)
        tasks = dec._span_tasks(dec._plan(positions, strategy, index), size=size, index=index)
        plans.append(VideoPlan(dec, positions.tolist(), tasks, list(times), strategy, size, budget))
    return plans
