"""The access value: what a root lets its refs read, the allow-list, that it is frozen, picklable and
JSON-serialisable without its credentials, that data only narrows it, and that plain roots and rootless refs
confine nothing."""

from __future__ import annotations

import json
import os
import pickle

import pyarrow as pa
import pytest

from hf_mediaref import MediaAccess, MediaRef, parse_allow_uris
from hf_mediaref.arrow import STORAGE_TYPE, refs_from_storage, resolve_ref, resolve_uri
from hf_mediaref.errors import PathEscapeError, UntrustedRefError

HUB = "hf://datasets/org/name@abc123/"


@pytest.fixture
def tree(tmp_path):
    """``root/`` (a file, a symlink inside, a symlink out) and ``outside/secret.png``."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "images").mkdir(parents=True)
    outside.mkdir()
    (root / "images" / "a.png").write_bytes(b"a")
    (outside / "secret.png").write_bytes(b"s")
    os.symlink(outside / "secret.png", root / "images" / "escape.png")
    os.symlink(root / "images" / "a.png", root / "images" / "alias.png")
    os.symlink(outside, root / "linked_dir")
    return root, outside


def _refused(uri: str, root: str) -> UntrustedRefError:
    with pytest.raises(UntrustedRefError) as info:
        resolve_uri(uri, root)
    return info.value


@pytest.mark.parametrize(
    "uri",
    [
        "{outside}/secret.png",
        "file://{outside}/secret.png",
        "~/secret.png",
        "images/escape.png",
        "linked_dir/secret.png",
        "{root}/images/escape.png",
        "{root}/linked_dir/../outside/secret.png",  # textually inside; the OS follows linked_dir first
        "http://127.0.0.1:8080/x.png",
        "http://localhost/x.png",
        "http://sub.localhost/x.png",
        "https://10.1.2.3/x.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x.png",
        "http://[::ffff:192.168.0.1]/x.png",
        "http://100.64.0.1/x.png",
        "hf://datasets/victim/private@main/x.png",
        "s3://bucket/key.png",
        "memory://x.png",
    ],
)
def test_a_local_root_refuses_everything_outside_it(tree, uri):
    root, outside = tree
    uri = uri.format(root=root, outside=outside)
    error = _refused(uri, MediaAccess(root))
    assert error.uri == uri
    assert repr(uri)[:60] in str(error) and "allow_uris=" in str(error) and "allowing(" in str(error)


def test_inside_the_root_resolves_as_before(tree):
    root, _ = tree
    r = MediaAccess(root)
    assert resolve_uri("images/a.png", r) == f"{root}/images/a.png"
    assert resolve_uri("images/alias.png", r) == f"{root}/images/alias.png"  # symlink staying inside
    assert resolve_uri(f"{root}/images/a.png", r) == f"{root}/images/a.png"  # absolute, inside
    assert resolve_uri("images/missing.png", r) == f"{root}/images/missing.png"  # a miss is not an escape
    assert resolve_uri("data:image/png;base64,AAAA", r) == "data:image/png;base64,AAAA"
    assert resolve_uri("https://example.com/a.png", r) == "https://example.com/a.png"  # public host name
    with pytest.raises(PathEscapeError) as info:
        resolve_uri("../outside/secret.png", r)
    assert isinstance(info.value, UntrustedRefError)  # `..` escapes are untrusted refs too


def test_a_hub_root_allows_its_repo_and_revision_only():
    r = MediaAccess(HUB)
    assert resolve_uri("videos/a.mp4", r) == HUB + "videos/a.mp4"
    assert resolve_uri(HUB + "videos/a.mp4", r) == HUB + "videos/a.mp4"
    for uri in [
        "hf://datasets/org/name@main/videos/a.mp4",  # same repo, another revision
        "hf://datasets/org/name/videos/a.mp4",
        "hf://datasets/org/name2@abc123/videos/a.mp4",
        HUB + "videos/../../other@abc123/x.mp4",
        HUB + "videos/%2e%2e/%2E%2E/other@abc123/x.mp4",
        "/etc/passwd",
        "file:///etc/passwd",
    ]:
        _refused(uri, r)
    assert "'hf://datasets/org/name'" in str(_refused("hf://datasets/org/name@main/a.mp4", r))


def test_allow_list_entries_and_boundaries(tree, monkeypatch):
    root, outside = tree
    assert parse_allow_uris(None) == ()
    assert parse_allow_uris("s3, https:,hf://  *") == ("s3:", "https:", "hf:", "*")
    assert parse_allow_uris([outside, f"file://{outside}"]) == (str(outside),)
    for bad in ["", "  ", 3, "data:,x"]:
        with pytest.raises(ValueError):
            parse_allow_uris([bad])
    r = MediaAccess(root, allow_uris=[outside, "http://127.0.0.1:8080/ok/", "hf://datasets/org/other", "s3"])
    assert resolve_uri(f"{outside}/secret.png", r) == f"{outside}/secret.png"
    assert resolve_uri("images/escape.png", r) == f"{root}/images/escape.png"  # symlink to an allowed dir
    assert resolve_uri("http://127.0.0.1:8080/ok/x.png", r)
    assert resolve_uri("hf://datasets/org/other@main/x.png", r)
    assert resolve_uri("s3://bucket/key.png", r)
    _refused("http://127.0.0.1:8080/okay/x.png", r)  # a prefix matches at a boundary
    _refused("http://127.0.0.1:8080/ok/../x.png", r)
    _refused("hf://datasets/org/other2@main/x.png", r)
    assert resolve_uri("/etc/passwd", MediaAccess(root, allow_uris="*")) == "/etc/passwd"
    # no environment variable or other process-wide setting widens an access
    monkeypatch.setenv("HF_MEDIAREF_ALLOW_URIS", f"memory, {outside}")
    _refused("memory://x.png", MediaAccess(root))


def test_allowing_pickle_json_frozen_and_plain_roots(tree):
    root, outside = tree
    r = MediaAccess(root, allow_uris="s3", token="hf_secret")
    wide = r.allowing([outside])
    assert wide != r and wide.allow_uris == ("s3:", str(outside)) and r.allow_uris == ("s3:",)
    assert r.allowing(None) is r and hash(wide) == hash(r.allowing([outside]))
    back = pickle.loads(pickle.dumps(wide))
    assert type(back) is MediaAccess and back == wide and back.token == "hf_secret"  # workers get credentials
    assert resolve_uri(f"{outside}/secret.png", back)
    # JSON (what datasets writes to state.json) has no credentials; repr hides them
    assert json.loads(json.dumps(wide)) == {"root": str(root), "allow_uris": ["s3:", str(outside)]}
    assert "hf_secret" not in repr(wide) and "hf_secret" not in json.dumps(wide)
    for change in (lambda: wide.__setitem__("root", "/"), lambda: wide.update(root="/"), wide.clear):
        with pytest.raises(TypeError):
            change()
    with pytest.raises(TypeError):
        wide.root = "/"  # type: ignore[misc]
    assert wide.root == str(root)
    # roots given in code as plain strings, and refs without a root, confine nothing (as before)
    assert resolve_uri(f"{outside}/secret.png", str(root)) == f"{outside}/secret.png"
    assert resolve_ref(MediaRef("http://127.0.0.1:9/x.png"), None).uri == "http://127.0.0.1:9/x.png"


def test_refs_from_storage_checks_each_distinct_uri(tree):
    root, outside = tree
    column = pa.array(
        [{"uri": "images/a.png", "pts_ns": None}, None, {"uri": "images/a.png", "pts_ns": None}], STORAGE_TYPE
    )
    refs, _ = refs_from_storage(column, MediaAccess(root))
    assert [r.uri for r in refs] == [f"{root}/images/a.png"] * 2
    bad = pa.array(
        [{"uri": "images/a.png", "pts_ns": None}, {"uri": str(outside / "secret.png")}], STORAGE_TYPE
    )
    with pytest.raises(UntrustedRefError):
        refs_from_storage(bad, MediaAccess(root))


def test_data_only_narrows(tree):
    root, outside = tree
    access = MediaAccess(root)
    assert access.narrowed({"root": "images", "allow_uris": ["*"]}).root == f"{root}/images"
    assert access.narrowed({"root": "images"}).allow_uris == ()
    for wider in ("/", str(outside), "../../../..", "linked_dir", "hf://datasets/evil/x@main/"):
        assert access.narrowed({"root": wider}) is access
    hub = MediaAccess(HUB)
    assert hub.narrowed("videos").root == HUB + "videos"
    assert hub.narrowed("hf://datasets/victim/private@main/") is hub
    assert hub.narrowed("../other") is hub


def test_a_remote_root_follows_the_public_address_rule():
    access = MediaAccess("http://127.0.0.1:8080/data/")
    with pytest.raises(UntrustedRefError):
        access.resolve("a.png")  # a loopback root is not exempt
    assert access.public_only("https://example.com/a.png")
    allowed = MediaAccess("http://127.0.0.1:8080/data/", allow_uris=["http://127.0.0.1:8080/data/"])
    assert allowed.resolve("a.png") == "http://127.0.0.1:8080/data/a.png"
    assert not allowed.public_only("http://127.0.0.1:8080/data/a.png")
    assert allowed.public_only("http://127.0.0.1:8080/other/a.png")


def test_a_root_in_a_hugging_face_cache_snapshot_reaches_its_blobs(tmp_path):
    repo = tmp_path / "datasets--org--name"
    (repo / "blobs").mkdir(parents=True)
    (repo / "snapshots" / "abc" / "videos").mkdir(parents=True)
    (repo / "blobs" / "0123").write_bytes(b"v")
    os.symlink(repo / "blobs" / "0123", repo / "snapshots" / "abc" / "videos" / "a.mp4")
    r = MediaAccess(repo / "snapshots" / "abc")
    assert resolve_uri("videos/a.mp4", r).endswith("videos/a.mp4")
