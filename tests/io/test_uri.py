"""URI classification and joining (pure string logic)."""

from __future__ import annotations

import pytest

from hf_mediaref.errors import PathEscapeError, UnsupportedURIError
from hf_mediaref.io import UriKind, classify_uri, is_remote_uri, join_uri, local_path


@pytest.mark.parametrize(
    "uri, kind",
    [
        ("a/b.png", UriKind.LOCAL),
        ("/a/b.png", UriKind.LOCAL),
        ("C://x/y.png", UriKind.LOCAL),
        ("file:///a/b.png", UriKind.FILE),
        ("FILE:///a/b.png", UriKind.FILE),
        ("http://h/a", UriKind.HTTP),
        ("HTTPS://h/a", UriKind.HTTP),
        ("data:,x", UriKind.DATA),
        ("DATA:image/png;base64,AA", UriKind.DATA),
        ("hf://datasets/o/n/a.mp4", UriKind.FSSPEC),
        ("s3://b/k", UriKind.FSSPEC),
        ("memory://x", UriKind.FSSPEC),
        ("weird+scheme://x", UriKind.FSSPEC),
    ],
)
def test_classify(uri, kind):
    assert classify_uri(uri) is kind


def test_remote():
    assert is_remote_uri("https://h/a") and is_remote_uri("hf://datasets/o/n/a") and is_remote_uri("gs://b/a")
    assert not is_remote_uri("memory://a") and not is_remote_uri("file:///a") and not is_remote_uri("/a")


def test_file_uri_is_percent_decoded():
    assert local_path("file:///tmp/my%20clip%231.mp4") == "/tmp/my clip#1.mp4"
    assert local_path("file://localhost/tmp/a.mp4") == "/tmp/a.mp4"
    with pytest.raises(UnsupportedURIError, match="remote host"):
        local_path("file://otherhost/tmp/a.mp4")


@pytest.mark.parametrize("rel", ["../x", "a/../../x", "..", "./../x"])
def test_join_refuses_escapes(rel):
    with pytest.raises(PathEscapeError):
        join_uri("/root", rel)
    with pytest.raises(PathEscapeError):
        join_uri("hf://datasets/o/n@rev/", rel)


def test_join_keeps_query_and_rejects_absolute():
    assert join_uri("https://h/d/?sig=1", "a.png") == "https://h/d/a.png?sig=1"
    with pytest.raises(ValueError):
        join_uri("/root", "/etc/passwd")
    with pytest.raises(UnsupportedURIError):
        join_uri("data:,x", "a.png")
