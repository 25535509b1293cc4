"""``hf_mediaref.load_dataset``: ``datasets.load_dataset`` plus the repo root for relative media URIs.

Plain ``datasets.load_dataset`` cannot be hooked cleanly: the feature is built from the README YAML or Parquet
metadata with no link to where it came from, the builder classes are datasets' own, and nothing calls back
into the feature with the repo location (see docs/datasets.md). So this wrapper runs the same steps as
``datasets.load_dataset`` (builder, download and prepare, as_dataset) and attaches the builder's repo root to
the
result: the absolute folder for a local repo, ``hf://datasets/<org>/<name>@<commit sha>/`` for a Hub
repo (reads stay pinned to the revision that was loaded).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional

import datasets
from datasets import config
from datasets.download.download_manager import DownloadMode
from datasets.utils.info_utils import VerificationMode, is_small_dataset

from .roots import set_media_root

__all__ = ["load_dataset", "repo_root"]

_HUB_BASE = re.compile(r"^(hf://(?:datasets|buckets)/[^/@]+/[^/@]+@[^/]+)(?:/|$)")


def repo_root(path: str, builder: Any) -> Optional[str]:
    """The root that relative media URIs of a dataset loaded from ``path`` resolve against, or None."""
    if os.path.isdir(path):
        return os.path.abspath(path)
    base = builder.base_path or ""
    match = _HUB_BASE.match(base)
    if match:
        return match.group(1) + "/"
    return None


def load_dataset(
    path: str,
    name: Optional[str] = None,
    data_dir: Optional[str] = None,
    data_files: Any = None,
    split: Any = None,
    cache_dir: Optional[str] = None,
    features: Any = None,
    download_config: Any = None,
    download_mode: Any = None,
    verification_mode: Any = None,
    keep_in_memory: Optional[bool] = None,
    save_infos: bool = False,
    revision: Any = None,
    token: Any = None,
    streaming: bool = False,
    num_proc: Optional[int] = None,
    storage_options: Optional[dict] = None,
    **config_kwargs: Any,
):
    """Same signature and result as :func:`datasets.load_dataset`; relative media URIs of a dataset
    loaded from a local repo folder or a Hub repo resolve against that repo's root, whatever the current
    directory.

    Packaged builders (``load_dataset("parquet", data_files=...)``) have no repo root: attach one with
    :func:`hf_mediaref.hf.set_media_root`.
    """
    if data_files is not None and not data_files:
        raise ValueError(
            f"Empty 'data_files': '{data_files}'. It should be either non-empty or None (default)."
        )
    if Path(path, config.DATASET_STATE_JSON_FILENAME).exists():
        raise ValueError(
            "this folder was written by save_to_disk: use datasets.load_from_disk and "
            "hf_mediaref.hf.set_media_root(ds, root) instead"
        )
    if streaming and num_proc is not None:
        raise NotImplementedError(
            "num_proc is not supported with streaming=True (as in datasets.load_dataset)"
        )
    download_mode = DownloadMode(download_mode or DownloadMode.REUSE_DATASET_IF_EXISTS)
    verification_mode = VerificationMode(
        (verification_mode or VerificationMode.BASIC_CHECKS)
        if not save_infos
        else VerificationMode.ALL_CHECKS
    )
    builder = datasets.load_dataset_builder(
        path=path,
        name=name,
        data_dir=data_dir,
        data_files=data_files,
        cache_dir=cache_dir,
        features=features,
        download_config=download_config,
        download_mode=download_mode,
        revision=revision,
        token=token,
        storage_options=storage_options,
        **config_kwargs,
    )
    if streaming:
        ds = builder.as_streaming_dataset(split=split)
    else:
        builder.download_and_prepare(
            download_config=download_config,
            download_mode=download_mode,
            verification_mode=verification_mode,
            num_proc=num_proc,
            storage_options=storage_options,
        )
        if keep_in_memory is None:
            keep_in_memory = is_small_dataset(builder.info.dataset_size)
        ds = builder.as_dataset(split=split, in_memory=keep_in_memory)
    root = repo_root(path, builder)
    if root is not None:
        set_media_root(ds, root)
    return ds
