"""Registration through the import hook, in fresh processes: any import order works, and
``import hf_mediaref`` alone stays light."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from datasets import Dataset, Features

from hf_mediaref import MediaRef
from hf_mediaref.hf import MediaRefFeature


def _run(code: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env=None if env is None else {**os.environ, **env},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "ds"
    ds = Dataset.from_dict(
        {"frame": [MediaRef("/v.mp4", 5), None]}, features=Features({"frame": MediaRefFeature()})
    )
    ds.save_to_disk(str(path))
    ds.to_parquet(str(path) + ".parquet")
    return str(path)


def test_import_alone_stays_light():
    out = _run("""
        import sys, hf_mediaref
        print(sorted(m for m in ("datasets", "av", "torch", "pyarrow") if m in sys.modules))
    """)
    assert out == "[]"


@pytest.mark.parametrize(
    "order", ["import hf_mediaref; import datasets", "import datasets; import hf_mediaref"]
)
def test_either_import_order_registers(order, saved):
    """Plain loads read the column as a MediaRef column (the hook), with the URIs as stored and no access;
    hf_mediaref's loaders read it with the folder they loaded."""
    out = _run(f"""
        {order}
        from datasets import load_from_disk, load_dataset
        from datasets.features.features import _FEATURE_TYPES
        from datasets.formatting import _FORMAT_TYPES
        import hf_mediaref
        ds = load_from_disk({saved!r})
        try:
            ds[0]
        except Exception as exc:  # read back with no root: a local file is not the data's to open
            print(type(ds.features["frame"]).__name__, type(exc).__name__)
        pq = load_dataset("parquet", data_files={saved + ".parquet"!r}, split="train")
        print(type(pq.features["frame"]).__name__, "MediaRef" in _FEATURE_TYPES, "mediaref" in _FORMAT_TYPES)
        ours = hf_mediaref.load_from_disk({saved!r}, allow_uris="/")
        print(type(ours.features["frame"]).__name__, ours[0]["frame"], ours[1]["frame"])
    """)
    assert out.splitlines() == [
        "MediaRefFeature UntrustedRefError",
        "MediaRefFeature True True",
        "MediaRefFeature MediaRef(uri='/v.mp4', pts_ns=5) None",
    ]


def test_registration_is_idempotent():
    from datasets.features import features as ds_features
    from datasets.features.features import _FEATURE_TYPES

    from hf_mediaref.hf import _registration

    before = ds_features.generate_from_dict
    assert before.__hf_mediaref__
    _registration._registered = False
    _registration.register()
    assert ds_features.generate_from_dict is before  # not wrapped twice
    assert _FEATURE_TYPES["MediaRef"] is MediaRefFeature


#: The one ``datasets`` attribute importing hf_mediaref replaces: the hook that reads the marked struct back
#: as a MediaRefFeature (see hf_mediaref/hf/_registration.py, with its off switch). Anything else changed is a
#: new patch: this test fails.
THE_HOOK = {("datasets.features.features", "generate_from_dict")}

_SNAPSHOT = """
    import inspect, json, sys
    import datasets

    def snapshot():
        found = {}
        for name, module in list(sys.modules.items()):
            if module is None or not (name == "datasets" or name.startswith("datasets.")):
                continue
            for attr, value in list(vars(module).items()):
                found[name, attr] = id(value)
                if inspect.isclass(value) and value.__module__ == name:
                    for inner, member in list(vars(value).items()):
                        found[name, f"{attr}.{inner}"] = id(member)
        return found

    before = snapshot()
    import hf_mediaref, hf_mediaref.hf
    from datasets.features.features import _FEATURE_TYPES
    from datasets.formatting import _FORMAT_TYPES
    after = snapshot()
    changed = sorted(k for k in before if k in after and before[k] != after[k])
    print(json.dumps([list(k) for k in changed if not k[1].startswith("__warningregistry__")]))
    print("MediaRef" in _FEATURE_TYPES, "mediaref" in _FORMAT_TYPES)
"""


def test_importing_changes_only_registries_and_the_one_hook():
    """Every attribute of every loaded ``datasets`` module and of its classes, before and after importing
    hf_mediaref (which registers the feature and the format): only registry contents and :data:`THE_HOOK`
    may differ."""
    out = _run(_SNAPSHOT)
    changed, registered = out.splitlines()
    assert {tuple(k) for k in json.loads(changed)} == THE_HOOK
    assert registered == "True True"


def test_the_hooks_off_switch_leaves_only_registries_changed():
    out = _run(_SNAPSHOT, env={"HF_MEDIAREF_DATASETS_HOOK": "0"})
    changed, registered = out.splitlines()
    assert json.loads(changed) == []
    assert registered == "True True"


def test_remove_hook_gives_datasets_its_function_back():
    out = _run("""
        import datasets.features.features as F
        original = F.generate_from_dict
        import hf_mediaref.hf
        from hf_mediaref.hf._registration import remove_hook
        hooked = F.generate_from_dict is not original
        remove_hook()
        print(hooked, F.generate_from_dict is original)
    """)
    assert out.strip() == "True True"


@pytest.mark.parametrize("hook", ["1", "0"])
def test_with_the_hook_off_a_plain_load_reads_dicts_and_the_format_still_decodes(saved, hook, tmp_path):
    """Off: plain loads give the stored dicts; hf_mediaref's loader makes the column a MediaRef column
    again. Either way writing MediaRef objects needs no hook (``MediaRef.__array__``)."""
    out = _run(
        f"""
        import datasets, hf_mediaref
        from hf_mediaref import MediaRef
        plain = datasets.load_from_disk({saved!r})
        print(type(plain.features["frame"]).__name__)
        ours = hf_mediaref.load_from_disk({saved!r}, allow_uris="/")
        print(type(ours.features["frame"]).__name__, ours[0]["frame"])
        mapped = ours.map(lambda row: {{"frame": MediaRef("/w.mp4", 7)}})
        print(mapped[0]["frame"])
        """,
        env={"HF_MEDIAREF_DATASETS_HOOK": hook, "HF_DATASETS_CACHE": str(tmp_path)},
    )
    on = hook == "1"
    assert out.splitlines() == [
        "MediaRefFeature" if on else "dict",
        "MediaRefFeature MediaRef(uri='/v.mp4', pts_ns=5)",
        # off: datasets rebuilds the mapped table's features from its schema, where the column is a struct
        "MediaRef(uri='/w.mp4', pts_ns=7)" if on else "{'uri': '/w.mp4', 'pts_ns': 7}",
    ]


_DESCRIBED = """
    import importlib.resources, inspect, json, sys
    {imports}
    import datasets.features.features, datasets.formatting

    def described(value):
        kind = type(value)
        own = (getattr(value, "__module__", None), getattr(value, "__qualname__", None))
        return f"{{kind.__module__}}.{{kind.__qualname__}} {{own}}"

    found = {{}}
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "datasets" or name.startswith("datasets.")):
            continue
        for attr, value in list(vars(module).items()):
            found[name + ":" + attr] = described(value)
            if inspect.isclass(value) and value.__module__ == name:
                for inner, member in list(vars(value).items()):
                    found[f"{{name}}:{{attr}}.{{inner}}"] = described(member)
        spec = getattr(module, "__spec__", None)
        found[name + ":__spec__.loader"] = described(getattr(spec, "loader", None))
    found["resources"] = str(importlib.resources.files("datasets").joinpath("__init__.py").is_file())
    ours = [type(f).__module__ for f in sys.meta_path if "hf_mediaref" in type(f).__module__]
    found["meta_path"] = str(ours)
    print(json.dumps(found))
"""


@pytest.mark.parametrize("hook", ["1", "0"])
def test_importing_hf_mediaref_first_changes_only_the_one_hook(hook):
    """``import hf_mediaref`` before ``datasets`` (the import hook that registers the feature when datasets
    is imported): every attribute of every ``datasets`` module and class, their modules' specs and loaders
    included, looks as in a process without hf_mediaref but :data:`THE_HOOK`; ``importlib.resources`` reads
    the ``datasets`` package; no finder of ours is left on ``sys.meta_path``."""
    env = {"HF_MEDIAREF_DATASETS_HOOK": hook}
    plain = json.loads(_run(_DESCRIBED.format(imports="import datasets"), env))
    ours = json.loads(_run(_DESCRIBED.format(imports="import hf_mediaref; import datasets"), env))
    changed = sorted(k for k in plain if k in ours and plain[k] != ours[k])
    expected = [f"{module}:{attr}" for module, attr in THE_HOOK] if hook == "1" else []
    assert changed == expected
    assert ours["resources"] == "True" and ours["meta_path"] == "[]"


def test_the_hook_reads_every_feature_without_a_media_ref_as_datasets_does():
    """For features without a MediaRef column (every kind of ``datasets`` feature, nested, and plain structs
    that look like ours but carry no marker) the hooked ``generate_from_dict`` builds what ``datasets``' own
    builds: equal features of the same types, the same Arrow schema."""
    from datasets import Array2D, Audio, ClassLabel, Image, LargeList, List, Translation, Value
    from datasets.features import features as ds_features

    from hf_mediaref.hf._feature import MEDIA_REF_ID

    hooked = ds_features.generate_from_dict
    original = hooked.__wrapped__
    cases = [
        Features({"a": Value("int32"), "b": Value("string", id="text"), "c": ClassLabel(names=["x", "y"])}),
        Features({"img": Image(), "aud": Audio(sampling_rate=16000), "arr": Array2D((2, 3), "float32")}),
        Features(
            {"l": List(Value("int64")), "ll": LargeList(Value("float32")), "f": List(Value("int8"), length=3)}
        ),
        Features({"nested": {"x": List({"y": Value("bool")}), "t": Translation(languages=["en", "fr"])}}),
        Features({"frame": {"uri": Value("string"), "pts_ns": Value("int64")}}),  # our layout, no marker
        Features({"frame": {"uri": Value("string", id="other"), "pts_ns": Value("int64")}}),
        Features({"frame": {"uri": Value("large_string", id=MEDIA_REF_ID), "pts_ns": Value("int64")}}),
        Features({"frame": {"uri": Value("string", id=MEDIA_REF_ID), "pts_ns": Value("int32")}}),
        Features(
            {"frame": {"uri": Value("string", id=MEDIA_REF_ID), "pts_ns": Value("int64"), "z": Value("int8")}}
        ),
    ]
    for features in cases:
        serialized = features.to_dict()
        ours, theirs = hooked(serialized), original(serialized)
        assert ours == theirs and type(ours) is type(theirs)
        assert Features(ours).to_dict() == Features(theirs).to_dict()
        assert Features.from_dict(serialized).arrow_schema == features.arrow_schema
        assert Features.from_dict(serialized) == features
