"""The "mediaref" format and decode_transform: batched decoding with the right frames, options flowing
through."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from datasets import Dataset, Features, List, Value
from PIL import Image

import hf_mediaref.decode
from hf_mediaref import MediaRef
from hf_mediaref.errors import PathEscapeError, UnresolvedPathError
from hf_mediaref.hf import MediaRefFeature, decode_transform, set_media_root

EXPECTED = [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 100, 105, 110, 115, 7, None]


@pytest.fixture
def engine_calls(monkeypatch):
    """Record the refs of every batch_decode call (the engine itself still runs)."""
    calls = []
    real = hf_mediaref.decode.batch_decode

    def spy(refs, *args, **kwargs):
        calls.append((list(refs), kwargs))
        return real(refs, *args, **kwargs)

    monkeypatch.setattr(hf_mediaref.decode, "batch_decode", spy)
    return calls


def test_slice_decodes_every_row_with_one_engine_call(ds, labels_of, engine_calls):
    batch = ds.with_format("mediaref")[:]
    assert labels_of(batch["frame"]) == EXPECTED
    assert list(batch["label"]) == [e if e is not None else -1 for e in EXPECTED]
    assert len(engine_calls) == 1 and len(engine_calls[0][0]) == 15  # the null row is not decoded


def test_index_lists_rows_and_iter_batches(ds, labels_of):
    fmt = ds.with_format("mediaref")
    assert labels_of(fmt[[13, 0, 11, 14]]["frame"]) == [115, 0, 105, 7]
    assert labels_of([fmt[4]["frame"]]) == [12]
    assert fmt[15]["frame"] is None
    seen = [labels_of(b["frame"]) for b in fmt.iter(batch_size=5)]
    assert seen == [EXPECTED[0:5], EXPECTED[5:10], EXPECTED[10:15], EXPECTED[15:]]


def test_shuffled_dataset_returns_the_frame_of_each_row(ds, labels_of):
    shuffled = ds.shuffle(seed=3).with_format("mediaref")
    batch = shuffled[:]
    assert list(batch["label"]) != [-1 if e is None else e for e in EXPECTED]
    for label, frame in zip(batch["label"], batch["frame"]):
        assert labels_of([frame]) == [None if label == -1 else label]


def test_output_kinds_size_and_channels_first(ds, labels_of):
    sub = ds.select(range(4))
    numpy_batch = sub.with_format("mediaref")[:]
    assert all(isinstance(f, np.ndarray) and f.shape == (64, 128, 3) for f in numpy_batch["frame"])
    torch = pytest.importorskip("torch")
    torch_batch = sub.with_format("mediaref", output="torch", channels_first=True)[:]
    assert all(isinstance(f, torch.Tensor) and f.shape == (3, 64, 128) for f in torch_batch["frame"])
    assert isinstance(torch_batch["label"], torch.Tensor)
    assert labels_of([f.numpy() for f in torch_batch["frame"]]) == [0, 3, 6, 9]
    pil_batch = sub.with_format("mediaref", output="pil")[:]
    assert all(isinstance(im, Image.Image) for im in pil_batch["frame"])
    assert labels_of([np.asarray(im) for im in pil_batch["frame"]]) == [0, 3, 6, 9]
    small = sub.with_format("mediaref", size=(32, 64))[:]
    assert [f.shape for f in small["frame"]] == [(32, 64, 3)] * 4


def test_options_reach_the_engine(ds, engine_calls):
    ds.with_format("mediaref", strategy="separate", size=(32, 64), storage_options={"x": 1})[:2]
    options = engine_calls[0][1]["options"]
    assert options.strategy == "separate" and options.size == (32, 64) and options.storage_options == {"x": 1}


@pytest.mark.torchcodec
def test_torchcodec_decoder(ds, labels_of):
    assert labels_of(ds.with_format("mediaref", decoder="torchcodec")[:4]["frame"]) == [0, 3, 6, 9]


def test_bad_options_fail_when_the_format_is_set(ds):
    with pytest.raises(ValueError, match="output"):
        ds.with_format("mediaref", output="jpeg")
    with pytest.raises(ValueError, match="decoder"):
        ds.with_format("mediaref", decoder="ffmpeg")


def test_map_batched_decodes_through_the_format(ds, labels_of, engine_calls):
    out = ds.with_format("mediaref").map(
        lambda b: {"seen": [-2 if f is None else int(labels_of([f])[0]) for f in b["frame"]]},
        batched=True,
        batch_size=8,
        remove_columns=["frame"],
    )
    assert out.with_format(None)["seen"] == [-2 if e is None else e for e in EXPECTED]
    assert len(engine_calls) == 2


def test_lists_and_nested_dicts(repo, labels_of):
    features = Features(
        {"clip": List(MediaRefFeature()), "pair": {"left": MediaRefFeature(), "n": Value("int32")}}
    )
    a, b = repo.a.pts_ns, repo.b.pts_ns
    ds = Dataset.from_list(
        [
            {
                "clip": [MediaRef("videos/a.mp4", a[1]), MediaRef("videos/b.mp4", b[2])],
                "pair": {"left": "images/seven.png", "n": 1},
            },
            {"clip": None, "pair": None},
            {"clip": [], "pair": {"left": None, "n": 2}},
            {
                "clip": [MediaRef("videos/a.mp4", a[29])],
                "pair": {"left": MediaRef("videos/a.mp4", a[5]), "n": 3},
            },
        ],
        features=features,
    )
    set_media_root(ds, repo.path)
    batch = ds.with_format("mediaref")[:]
    assert labels_of(batch["clip"][0]) == [1, 102]
    assert batch["clip"][1] is None and len(batch["clip"][2]) == 0
    assert labels_of(batch["clip"][3]) == [29]
    assert labels_of([batch["pair"][0]["left"], batch["pair"][3]["left"]]) == [7, 5]
    assert batch["pair"][1] is None and batch["pair"][2] == {"left": None, "n": 2}
    assert labels_of(ds.with_format("mediaref")[3:4]["clip"][0]) == [29]


def test_relative_refs_without_root_raise_an_actionable_error(rows, features):
    ds = Dataset.from_list(rows, features=features)
    with pytest.raises(UnresolvedPathError, match="hf_mediaref.load_dataset") as info:
        ds.with_format("mediaref")[:2]
    assert "videos/a.mp4" in str(info.value) and "access=hf_mediaref.MediaAccess(root=" in str(info.value)


def test_escaping_relative_paths_are_refused(repo, features):
    ds = set_media_root(
        Dataset.from_list([{"frame": MediaRef("../outside.mp4", 0), "label": 0}], features=features),
        repo.path,
    )
    with pytest.raises(PathEscapeError):
        ds.with_format("mediaref")[:1]
    with pytest.raises(PathEscapeError):
        ds[0]


def test_decode_transform_with_with_transform(ds, labels_of):
    transform = decode_transform(columns=["frame"])
    out = ds.with_transform(transform)
    assert labels_of(out[:]["frame"]) == EXPECTED
    assert labels_of([out[13]["frame"]]) == [115]
    clone = pickle.loads(pickle.dumps(transform))
    assert labels_of(ds.with_transform(clone)[[11]]["frame"]) == [105]


def test_decode_transform_on_raw_dicts_with_a_root(rows, repo, labels_of):
    ds = Dataset.from_list(
        rows, features=Features({"frame": MediaRefFeature(decode=False), "label": Value("int64")})
    )
    out = ds.with_transform(decode_transform(root=repo.path, output="pil"))[:3]
    assert labels_of([np.asarray(im) for im in out["frame"]]) == [0, 3, 6]
    with pytest.raises(UnresolvedPathError):
        ds.with_transform(decode_transform())[:1]


@pytest.fixture
def fake_engine(monkeypatch):
    """Record every batch_decode call and return a blank frame per ref (the engine does not run: the options
    may name a device this machine lacks)."""
    calls = []

    def fake(refs, *args, **kwargs):
        calls.append((list(refs), kwargs))
        return [np.zeros((2, 2, 3), np.uint8) for _ in refs]

    monkeypatch.setattr(hf_mediaref.decode, "batch_decode", fake)
    return calls


def test_max_workers_device_and_decoder_reach_the_engine_from_the_format(ds, fake_engine):
    ds.with_format("mediaref", decoder="torchcodec", device="cuda", max_workers=3)[:2]
    options = fake_engine[0][1]["options"]
    assert (options.decoder, options.device, options.max_workers) == ("torchcodec", "cuda", 3)


def test_an_options_object_reaches_the_engine_and_keywords_override_it(ds, fake_engine):
    from hf_mediaref import DecodeOptions

    opts = DecodeOptions(decoder="torchcodec", device="cuda:1", max_workers=2, size=(32, 64))
    ds.with_format("mediaref", options=opts, max_workers=5)[:2]
    assert fake_engine[0][1]["options"] == opts.replace(max_workers=5)


def test_max_workers_device_and_decoder_reach_the_engine_from_decode_transform(ds, fake_engine):
    ds.with_transform(decode_transform(decoder="torchcodec", device="cuda", max_workers=4))[:2]
    options = fake_engine[0][1]["options"]
    assert (options.decoder, options.device, options.max_workers) == ("torchcodec", "cuda", 4)
    from hf_mediaref import DecodeOptions

    ds.with_transform(decode_transform(options=DecodeOptions(max_workers=2), strategy="separate"))[:2]
    assert fake_engine[1][1]["options"] == DecodeOptions(max_workers=2, strategy="separate")


def test_a_cuda_device_needs_torchcodec_when_the_format_is_set(ds):
    with pytest.raises(ValueError, match="torchcodec"):
        ds.with_format("mediaref", device="cuda")
    with pytest.raises(ValueError, match="torchcodec"):
        decode_transform(device="cuda", decoder="pyav")
    with pytest.raises(ValueError, match="max_workers"):
        ds.with_format("mediaref", max_workers=0)


def test_decode_false_columns_are_not_decoded_by_the_format(rows, repo, fake_engine):
    ds = Dataset.from_list(
        rows, features=Features({"frame": MediaRefFeature(decode=False), "label": Value("int64")})
    )
    set_media_root(ds, repo.path)
    batch = ds.with_format("mediaref", output="pil")[:2]
    assert batch["frame"] == [
        {"uri": "videos/a.mp4", "pts_ns": 0},
        {"uri": "videos/a.mp4", "pts_ns": rows[1]["frame"].pts_ns},
    ]
    assert fake_engine == []


def test_nested_decode_false_leaf_stays_a_dict_next_to_a_decoded_one(repo, labels_of):
    features = Features({"pair": {"left": MediaRefFeature(), "raw": MediaRefFeature(decode=False)}})
    ds = Dataset.from_list(
        [{"pair": {"left": MediaRef("videos/a.mp4", repo.a.pts_ns[4]), "raw": "images/seven.png"}}],
        features=features,
    )
    pair = set_media_root(ds, repo.path).with_format("mediaref")[:]["pair"][0]
    assert labels_of([pair["left"]]) == [4] and pair["raw"] == {"uri": "images/seven.png", "pts_ns": None}


def test_large_fixed_size_and_sliced_lists_of_refs(repo, labels_of, engine_calls):
    from datasets import LargeList

    a = repo.a.pts_ns
    features = Features({"clip": LargeList(MediaRefFeature()), "pair": List(MediaRefFeature(), length=2)})
    rows = [
        {
            "clip": [MediaRef("videos/a.mp4", a[i]), MediaRef("videos/a.mp4", a[i + 1])],
            "pair": [MediaRef("videos/a.mp4", a[i + 2]), None],
        }
        for i in range(0, 24, 3)
    ]
    ds = set_media_root(
        Dataset.from_list([*rows, {"clip": None, "pair": None}], features=features), repo.path
    )
    batch = ds.with_format("mediaref")[5:9]  # a slice: only its rows are decoded
    assert [labels_of(c) for c in batch["clip"][:3]] == [[15, 16], [18, 19], [21, 22]]
    assert labels_of([p[0] for p in batch["pair"][:3]]) == [17, 20, 23] and batch["pair"][0][1] is None
    assert batch["clip"][3] is None and batch["pair"][3] is None
    assert len(engine_calls[-1][0]) == 9


def test_decode_transform_refuses_batches_it_cannot_walk(rows):
    """Ray Data's batches (pandas, Arrow, numpy arrays of ref dicts) raise a TypeError pointing to
    hf_mediaref.ray instead of coming back undecoded; arrays that hold no refs pass through."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from hf_mediaref.hf import decode_transform

    refs = [{"uri": "/data/a.mp4", "pts_ns": 0}, None]
    struct = np.array([("/data/a.mp4", 0)], dtype=[("uri", "U20"), ("pts_ns", "i8")])
    transform = decode_transform()
    for batch in (pd.DataFrame({"frame": refs}), pa.table({"frame": refs}), struct):
        with pytest.raises(TypeError, match=r"dict of columns.*hf_mediaref\.ray\.MediaDecoder"):
            transform(batch)
    for column in (np.array(refs, dtype=object), pa.array(refs), struct):
        with pytest.raises(TypeError, match=r"column 'frame' holds media references in a .*not a list"):
            transform({"frame": column, "label": [0, 1]})
    with pytest.raises(TypeError, match="column 'frame'"):
        decode_transform(["frame"])({"frame": np.array(refs, dtype=object)})
    plain = {"label": np.arange(2), "text": np.array(["a", None], dtype=object)}
    assert transform(plain) is not plain and transform(plain)["label"] is plain["label"]
