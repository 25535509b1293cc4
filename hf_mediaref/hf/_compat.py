"""Everything hf_mediaref takes from the internals of ``datasets``, each imported here and nowhere else.

Other modules of :mod:`hf_mediaref.hf` use only public ``datasets`` names (``Features``, ``List``,
``LargeList``, ``Value``, ``load_dataset``, ``load_dataset_builder``) plus what this module exports.

Checked against ``datasets`` 5.2.0 (installed; the test suite runs on it) and, by reading the sources of the
tags 4.0.0, 4.4.0, 4.8.4, 5.0.0 and the 5.0.x development head, that every name below exists there with the
same signature:

- ``features.features``: ``_FEATURE_TYPES``, ``register_feature``, ``generate_from_dict`` (looked up as a
  module global by ``Features.from_dict`` and its own recursion: the one hook, see
  :mod:`hf_mediaref.hf._registration`),
  ``decode_nested_example``, ``require_decoding``;
- ``formatting``: ``_FORMAT_TYPES``, ``_register_formatter``, ``Formatter``, ``PythonFormatter``,
  ``NumpyFormatter``, ``TorchFormatter``;
- ``config.DATASET_STATE_JSON_FILENAME``, ``config.HF_ENDPOINT``, ``config.MAX_SHARD_SIZE``,
  ``config.REPOCARD_FILENAME``, ``config.DATASETDICT_INFOS_FILENAME``;
- ``DatasetInfoMixin._info`` (``Dataset`` and ``IterableDataset``);
- ``DatasetBuilder.base_path`` and ``.repo_id`` of a Hub repo's builder (see :func:`builder_base_path`);
- ``table.InMemoryTable`` and ``Dataset(arrow_table, info=)`` (see :func:`dataset_from_arrow`);
- ``config.DATASET_INFO_FILENAME``;
- what :func:`hf_mediaref.push_to_hub` needs to write the card YAML and the shards as ``datasets``' own
  ``push_to_hub`` does (read and called, nothing replaced): ``info.DatasetInfosDict``
  (``from_dataset_card_data`` / ``to_dataset_card_data``), ``utils.metadata.MetadataConfigs``
  (``from_dataset_card_data`` / ``to_dataset_card_data`` / ``get_default_config_name``),
  ``data_files.sanitize_patterns`` and ``table.embed_table_storage`` (called with a table only); these were
  checked on 5.2.0 only, not yet read in the older tags' sources (``make test-floor`` runs the push tests on
  4.0.0);
- ``IterableDataset._ex_iterable.shard_data_sources`` and the constructor's private arguments, on 4.0 only
  (see :func:`shard_iterable`).

``pyproject.toml`` declares ``datasets>=4.0``; ``make test-floor`` runs tests/hf and tests/arrow on 4.0.0
(with huggingface_hub 0.24.0, pyarrow 15.0.0, fsspec 2023.10.0: requirements/floor-hf.txt); the other
releases between those tags were not run. ``List`` / ``LargeList`` (and ``Sequence`` building a ``List``)
exist since 4.0, which is why 3.x is not supported.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from datasets import config
from datasets import formatting as _formatting
from datasets.data_files import sanitize_patterns
from datasets.features import features as _features
from datasets.features.features import decode_nested_example, require_decoding
from datasets.formatting.formatting import Formatter, PythonFormatter
from datasets.formatting.np_formatter import NumpyFormatter
from datasets.info import DatasetInfosDict
from datasets.table import embed_table_storage
from datasets.utils.metadata import MetadataConfigs

__all__ = [
    "DatasetInfosDict",
    "Formatter",
    "MetadataConfigs",
    "NumpyFormatter",
    "PythonFormatter",
    "builder_base_path",
    "config",
    "dataset_features",
    "dataset_from_arrow",
    "decode_nested_example",
    "embed_table_storage",
    "feature_type",
    "format_type",
    "get_generate_from_dict",
    "register_feature_type",
    "register_format",
    "require_decoding",
    "sanitize_patterns",
    "set_generate_from_dict",
    "shard_iterable",
    "torch_formatter",
]


def feature_type(name: str) -> Any:
    """The feature class ``datasets`` has registered under ``name`` (``None`` when none)."""
    return _features._FEATURE_TYPES.get(name)


def register_feature_type(cls: type, name: str) -> None:
    """``datasets.features.features.register_feature``, without its 'experimental' warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _features.register_feature(cls, name)


def format_type(name: str) -> Any:
    """The formatter class ``datasets`` has registered for the format ``name`` (``None`` when none)."""
    return _formatting._FORMAT_TYPES.get(name)


def register_format(cls: type, name: str, aliases: list[str]) -> None:
    """``datasets.formatting._register_formatter``: make ``with_format(name)`` use ``cls``."""
    _formatting._register_formatter(cls, name, aliases=aliases)


def get_generate_from_dict() -> Callable[[Any], Any]:
    """``datasets.features.features.generate_from_dict``, which ``Features.from_dict`` (and its own recursion)
    looks up as a module global at each call."""
    return _features.generate_from_dict


def set_generate_from_dict(fn: Callable[[Any], Any]) -> None:
    """Replace that function (see :func:`get_generate_from_dict`): the one hook."""
    _features.generate_from_dict = fn


def torch_formatter(**kwargs: Any) -> Formatter:
    """``datasets``' torch formatter (imported on demand: it imports torch)."""
    from datasets.formatting.torch_formatter import TorchFormatter

    return TorchFormatter(**kwargs)


def dataset_features(dataset: Any) -> Any:
    """The features object a ``Dataset`` / ``IterableDataset`` holds (``dataset._info.features``, not the copy
    that ``dataset.features`` returns), so that runtime state set on it stays with the dataset."""
    return dataset._info.features


def dataset_from_arrow(table: Any, features: Any) -> Any:
    """An in-memory ``Dataset`` over a ``pyarrow.Table`` with the given ``Features`` (cast to their schema),
    without the Python-object round trip of ``Dataset.from_dict``."""
    from datasets import Dataset, DatasetInfo
    from datasets.table import InMemoryTable

    table = table.select(list(features)).cast(features.arrow_schema)
    return Dataset(InMemoryTable(table), info=DatasetInfo(features=features))


# A Hub repo's builder gets base_path ``hf_dataset_url(repo_id, "", revision=sha)``, that is
# ``{HF_ENDPOINT}/datasets/<org>/<name>/resolve/<sha>``, in datasets 4.0.0 to 4.8.4, and
# ``hf://datasets/<org>/<name>@<sha>`` since 4.8.5 (and in 5.x).
_RESOLVE_URL = re.compile(
    r"^https?://.+?/datasets/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)(?P<rest>/.*)?$"
)


def builder_base_path(builder: Any) -> str | None:
    """``builder.base_path``, for a Hub repo always as ``hf://datasets/<org>/<name>@<sha>[/<dir>]`` (datasets
    <= 4.8.4 gives the repo's ``.../resolve/<sha>`` URL instead: rewritten when it names ``builder.repo_id``).
    """
    base = getattr(builder, "base_path", None)
    match = _RESOLVE_URL.match(base) if isinstance(base, str) else None
    if match is None or match["repo"] != getattr(builder, "repo_id", None):
        return base
    return f"hf://datasets/{match['repo']}@{unquote(match['rev'])}{match['rest'] or ''}"


def shard_iterable(dataset: Any, num_shards: int, index: int) -> Any:
    """``IterableDataset.shard(num_shards, index, contiguous=True)`` (since datasets 4.1; on 4.0 the same
    thing built from ``_ex_iterable.shard_data_sources`` and the private constructor arguments, as 5.2's
    ``shard`` does): the ``index``-th of ``num_shards`` contiguous groups of the dataset's shards."""
    if hasattr(dataset, "shard"):
        return dataset.shard(num_shards=num_shards, index=index, contiguous=True)
    import copy

    from datasets import IterableDataset

    ex_iterable = dataset._ex_iterable.shard_data_sources(num_shards=num_shards, index=index, contiguous=True)
    return IterableDataset(
        ex_iterable=ex_iterable,
        info=dataset._info.copy(),
        split=dataset._split,
        formatting=dataset._formatting,
        shuffling=copy.deepcopy(dataset._shuffling),
        distributed=copy.deepcopy(dataset._distributed),
        token_per_repo_id=dataset._token_per_repo_id,
    )
