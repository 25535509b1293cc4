"""Typed errors: pickling, construction from a message alone (torch DataLoader's re-raise), and the malformed
refs batch_decode and MediaRef refuse."""

from __future__ import annotations

import inspect
import pickle
import sys

import pytest

import hf_mediaref.errors as errors
from hf_mediaref import batch_decode
from hf_mediaref.errors import InvalidRefError, MediaNotFoundError, MediaRefError

ERROR_TYPES = [
    cls
    for name in errors.__all__
    if inspect.isclass(cls := getattr(errors, name)) and issubclass(cls, MediaRefError)
]


@pytest.fixture
def in_dataloader_worker(monkeypatch):
    """This process looks like a torch DataLoader worker (``torch.utils.data.get_worker_info()`` is set)."""
    data = pytest.importorskip("torch.utils.data")
    monkeypatch.setattr(data, "get_worker_info", lambda: object())


@pytest.mark.parametrize("cls", ERROR_TYPES, ids=lambda c: c.__name__)
def test_every_error_pickles_with_its_message_uri_and_notes(cls):
    err = cls("cannot read 'a.mp4'", uri="/data/a.mp4")
    if sys.version_info >= (3, 11):
        err.add_note("in column 'frame'")
    else:  # what add_note does; Python 3.10 has no add_note
        err.__notes__ = ["in column 'frame'"]
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and str(back) == "cannot read 'a.mp4'" and back.uri == "/data/a.mp4"
    assert back.__notes__ == ["in column 'frame'"]


@pytest.mark.parametrize("cls", ERROR_TYPES, ids=lambda c: c.__name__)
def test_every_error_is_built_from_a_message_alone(cls):
    err = cls("some message")
    assert str(err) == "some message" and err.uri is None


def _reraised(err: Exception) -> Exception:
    """What torch's DataLoader raises in the main process for ``err`` raised in a worker."""
    from torch._utils import ExceptionWrapper

    try:
        raise err
    except Exception:
        wrapper = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(type(err)) as info:
        wrapper.reraise()
    return info.value


@pytest.mark.parametrize("cls", ERROR_TYPES, ids=lambda c: c.__name__)
def test_uri_survives_the_dataloader_reraise(cls, in_dataloader_worker):
    uri = "/data/épisode 1\n'quoted'.mp4"
    back = _reraised(cls(f"cannot read {errors.describe_uri(uri)}", uri=uri))
    assert type(back) is cls and back.uri == uri
    assert "in DataLoader worker process 0" in str(back)


def test_the_last_uri_note_wins_for_chained_errors(in_dataloader_worker):
    try:
        try:
            raise MediaNotFoundError("first", uri="/a.mp4")
        except MediaNotFoundError as exc:
            raise InvalidRefError("second", uri="/b.mp4") from exc
    except InvalidRefError as exc:
        back = _reraised(exc)
    assert back.uri == "/b.mp4"


def test_no_note_outside_workers_and_none_for_huge_uris(in_dataloader_worker):
    big = "data:image/png;base64," + "A" * 10_000
    err = MediaNotFoundError("x", uri=big)
    assert not getattr(err, "__notes__", None)
    assert _reraised(err).uri is None  # documented: too long to carry through the traceback text


def test_outside_a_worker_no_note_is_added():
    err = MediaNotFoundError("x", uri="/a.mp4")
    assert not getattr(err, "__notes__", None)


def test_a_user_message_is_not_mistaken_for_a_note():
    assert MediaNotFoundError('hf_mediaref uri: "not json').uri is None


# ------------------------------------------------------------------------------ batch_decode's dicts
@pytest.mark.parametrize(
    "ref, match",
    [
        ({"uri": "/a\x00.mp4", "pts_ns": 0}, "NUL"),
        ({"uri": "", "pts_ns": 0}, "empty"),
        ({"uri": None, "pts_ns": 0}, "missing"),
        ({"pts_ns": 0}, "missing"),
        ({"uri": "a.mp4", "pts_ns": -1}, ">= 0"),
        ({"uri": "a.mp4", "pts_ns": True}, "bool"),
        ({"uri": "a.mp4", "pts_ns": "5"}, "str"),
        ({"uri": "a.mp4", "pts_ns": 1.5}, "whole"),
        ({"uri": "a.mp4", "pts_ns": 0, "fps": 30}, "unexpected"),
        (None, "is None"),
    ],
)
def test_batch_decode_names_the_malformed_ref(ref, match, png_image):
    with pytest.raises(InvalidRefError, match=match) as info:
        batch_decode([{"uri": str(png_image)}, ref])
    assert "refs[1]" in str(info.value)
    assert isinstance(info.value, ValueError)
    uri = ref.get("uri") if isinstance(ref, dict) else None
    assert info.value.uri == (uri if isinstance(uri, str) else None)


def test_the_errors_page_lists_every_error_and_its_bases():
    """docs/concepts/errors.md has a row for every error class of hf_mediaref.errors, with the built-in it
    also is; the rows after MissingDependencyError are exactly the errors that are not a MediaRefError."""
    import re
    from pathlib import Path

    page_path = Path(__file__).resolve().parents[1] / "docs" / "concepts" / "errors.md"
    page = page_path.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(\w+)` \| `(\w+)` \|", page, re.M))
    classes = {
        name: obj
        for name in errors.__all__
        if inspect.isclass(obj := getattr(errors, name)) and issubclass(obj, BaseException)
    }
    assert set(rows) == set(classes) - {"MediaRefError"}
    for name, base in rows.items():
        assert any(b.__name__ == base for b in classes[name].__mro__[1:]), (name, base)
    order = list(rows)
    outside = order[order.index("MissingDependencyError") :]
    assert set(outside) == {n for n in rows if not issubclass(classes[n], MediaRefError)}
