"""Ray Data for media references: read a MediaRef dataset with its media root, decode batches in tasks or
an actor pool, and shuffle by blocks of video frames.

Needs Ray Data (``pip install 'hf-mediaref[ray]'``); imports ``pyarrow`` and the ``arrow`` and ``decode``
layers of hf_mediaref, never ``datasets``. Ray itself is imported when a function needs it. Modules
(private): ``_read`` (:func:`read_mediaref`, :func:`resolve_roots`), ``_decode`` (:class:`MediaDecoder`,
:func:`decode_batch`), ``_shuffle`` (:func:`video_shuffle`), ``_collate`` (:func:`torch_collate`: every
column of a decoded batch through ``iter_torch_batches``).
"""

from __future__ import annotations

from ._collate import torch_collate
from ._decode import MediaDecoder, decode_batch
from ._read import read_mediaref, resolve_roots
from ._shuffle import video_shuffle

__all__ = ["MediaDecoder", "decode_batch", "read_mediaref", "resolve_roots", "torch_collate", "video_shuffle"]
