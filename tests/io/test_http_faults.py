"""HTTP reads against servers that misbehave as real ones do (:mod:`hf_mediaref.testing.faulty_http`): every
read ends in time, returns the right bytes or raises a typed error that names the URL, and leaves no state
behind that spoils the next read."""

from __future__ import annotations

import contextvars
import itertools
import re
import threading
import time

import numpy as np
import pytest

from hf_mediaref import MediaRef, batch_decode, cleanup_cache
from hf_mediaref._deadline import current as current_deadline
from hf_mediaref.errors import DecodeTimeoutError, MediaNotFoundError, RemoteAccessError, RemoteChangedError
from hf_mediaref.io import http_deadline, open_media, read_bytes, uri_exists
from hf_mediaref.io import http_settings as settings
from hf_mediaref.testing import read_index, write_video
from hf_mediaref.testing.faulty_http import FaultyFileServer

#: "At the deadline, not at the per-read timeout (30 s) or the end of a trickle (hours)": a bound far from
#: both, so that a loaded machine (thread starts, a busy server) never fails a deadline that worked.
SOON = 10.0

PAYLOAD = bytes(np.random.default_rng(9).integers(0, 256, 300_000, dtype=np.uint8))
OTHER = bytes(np.random.default_rng(10).integers(0, 256, 310_000, dtype=np.uint8))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("faulty")
    (root / "a.bin").write_bytes(PAYLOAD)
    (root / "b.bin").write_bytes(OTHER)
    return root


@pytest.fixture(scope="module")
def server(root):
    with FaultyFileServer(root) as srv:
        yield srv


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    """Small deadlines and quick back-off: every test here ends in a few seconds."""
    monkeypatch.setattr(settings, "timeout", 0.5)
    monkeypatch.setattr(settings, "deadline", 2.0)
    monkeypatch.setattr(settings, "backoff", 0.01)
    monkeypatch.setattr(settings, "retries", 2)
    return settings


@pytest.fixture
def url(server, request):
    """``url(query)``: the URL of a.bin with the faults in ``query`` and an id of its own (fresh counters)."""
    tag = re.sub(r"\W+", "_", request.node.name)[:80]

    def make(query: str = "", name: str = "a.bin") -> str:
        return f"{server.url}/{name}?{query}&id={tag}" if query else f"{server.url}/{name}?id={tag}"

    make.tag = f"id={tag}"  # type: ignore[attr-defined]
    return make


class _Timer:
    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self.start


def _ranges(server, tag: str) -> list[str | None]:
    return [r for _, _, r in server.requests_for(tag, "GET")]


# ------------------------------------------------------------------------------------- 1. total deadlines


def test_a_trickling_whole_download_fails_at_the_deadline(url, quick, monkeypatch):
    monkeypatch.setattr(settings, "timeout", 30)  # each byte arrives well within the per-read timeout
    monkeypatch.setattr(settings, "deadline", 1.0)
    u = url("trickle=0.05")
    with _Timer() as t, pytest.raises(RemoteAccessError, match=r"did not finish within 1 s") as err:
        read_bytes(u)
    assert t.seconds < SOON
    assert err.value.uri == u


def test_a_trickling_range_read_fails_at_the_deadline(url, monkeypatch):
    monkeypatch.setattr(settings, "timeout", 30)
    monkeypatch.setattr(settings, "deadline", 1.0)
    with open_media(url("trickle=0.05&trickle_bytes=10")) as f:
        message = r"reading bytes 0-\d+ of .*a\.bin.*did not finish within 1 s"
        with _Timer() as t, pytest.raises(RemoteAccessError, match=message):
            f.read(100_000)
    assert t.seconds < SOON


def test_a_server_that_answers_nothing_fails_at_the_deadline(url, monkeypatch):
    """A body that stops coming: the wait for the next bytes is cut at the deadline, not at the (longer)
    per-read timeout."""
    monkeypatch.setattr(settings, "timeout", 30)
    monkeypatch.setattr(settings, "deadline", 1.0)
    with _Timer() as t, pytest.raises(RemoteAccessError, match="did not finish within 1 s"):
        read_bytes(url("hugelen=1000000000&hold=3&norange=1"))
    assert t.seconds < SOON


def test_a_read_stalled_past_the_operation_deadline_raises_decode_timeout(url, monkeypatch):
    """A body that stops coming inside ``http_deadline``: the operation's deadline ends the wait, and it
    says so as DecodeTimeoutError (a TimeoutError), not as a failure of the request."""
    monkeypatch.setattr(settings, "timeout", 30)  # the per-read timeout cannot end the wait first
    monkeypatch.setattr(settings, "deadline", 600.0)
    with http_deadline(0.3), pytest.raises(DecodeTimeoutError, match="http_deadline") as err:
        read_bytes(url("hugelen=1000000000&hold=3&norange=1"))
    assert isinstance(err.value, TimeoutError) and not isinstance(err.value, RemoteAccessError)


def test_a_request_deadline_stays_a_remote_access_error(url, monkeypatch):
    """The request's own deadline (``HF_MEDIAREF_HTTP_DEADLINE``) inside a longer operation deadline."""
    monkeypatch.setattr(settings, "timeout", 30)
    monkeypatch.setattr(settings, "deadline", 0.3)
    with http_deadline(60), pytest.raises(RemoteAccessError, match="HF_MEDIAREF_HTTP_DEADLINE") as err:
        read_bytes(url("hugelen=1000000000&hold=3&norange=1"))
    assert not isinstance(err.value, DecodeTimeoutError)


def test_http_deadline_bounds_a_whole_operation_and_is_restored(url):
    u = url("trickle=0.05")
    with _Timer() as t, http_deadline(0.5):
        assert current_deadline() is not None
        with http_deadline(60):  # an inner, later deadline does not extend the outer one
            # the time the request had left of the 0.5 s (a busy machine spends some before it starts)
            with pytest.raises(DecodeTimeoutError, match=r"within 0\.(5|4\d*) s \(the http_deadline limit\)"):
                read_bytes(u)
    assert t.seconds < SOON
    assert current_deadline() is None
    assert read_bytes(url()) == PAYLOAD  # nothing left behind


def test_a_passed_http_deadline_sends_no_request(server, url):
    with http_deadline(0):
        with pytest.raises(DecodeTimeoutError, match="did not finish"):
            read_bytes(url())
    assert server.requests_for(url.tag) == []


def test_http_deadline_follows_a_copied_context_into_threads(url):
    errors: list[BaseException] = []

    def work():
        try:
            read_bytes(url("trickle=0.05"))
        except BaseException as exc:
            errors.append(exc)

    with http_deadline(0.4):
        ctx = contextvars.copy_context()
    thread = threading.Thread(target=ctx.run, args=(work,))
    with _Timer() as t:
        thread.start()
        thread.join(5)
    assert not thread.is_alive() and t.seconds < SOON
    assert isinstance(errors[0], DecodeTimeoutError) and "http_deadline" in str(errors[0])


def test_negative_http_deadline_is_refused():
    with pytest.raises(ValueError, match="non-negative"):
        with http_deadline(-1):
            pass


# ---------------------------------------------------------------------------------- 2. stingy servers


def test_a_short_206_is_continued_from_where_it_ended(server, url):
    with open_media(url("cap=1000")) as f:
        f.seek(10_000)
        assert f.read(20_000) == PAYLOAD[10_000:30_000]
    ranges = _ranges(server, url.tag)
    fetch = 32 << 10  # the read-ahead after a seek, fetched 1000 bytes at a time
    assert len(ranges) == -(-fetch // 1000)
    assert ranges[:3] == [f"bytes={10_000 + i}-{10_000 + fetch - 1}" for i in (0, 1000, 2000)]


def test_a_stingy_server_is_a_bounded_number_of_requests(server, url, monkeypatch):
    monkeypatch.setattr(settings, "max_requests", 20)
    with open_media(url("cap=100")) as f:
        with pytest.raises(RemoteAccessError, match=r"took more than 20 requests.*at most 100 bytes"):
            f.read(10_000)
    assert len(_ranges(server, url.tag)) == 20


# ------------------------------------------------------------------------------------- 3. HEAD refused


@pytest.mark.parametrize("status", [403, 405])
def test_refused_head_falls_back_to_a_ranged_get(server, url, status):
    with open_media(url()) as f:
        plain_version = f.raw.version
    with open_media(url(f"head={status}")) as f:
        assert f.raw.version == plain_version  # the same version key for stored indexes
        f.seek(250_000)
        assert f.read(1000) == PAYLOAD[250_000:251_000]
        f.seek(-10, 2)
        assert f.read() == PAYLOAD[-10:]
    assert uri_exists(url(f"head={status}"))
    assert not uri_exists(url(f"head={status}", name="missing.bin"))
    log = server.requests_for(f"head={status}")
    assert [(m, r) for m, _, r in log[:2]] == [("HEAD", None), ("GET", "bytes=0-0")]


# --------------------------------------------------------------------------------- 4. dropped connections


def test_a_dropped_range_read_resumes_from_the_byte_reached(server, url):
    with open_media(url("drop=5000")) as f:
        f.raw.expect(200_000)
        f.seek(50_000)
        assert f.read(200_000) == PAYLOAD[50_000:250_000]
    assert _ranges(server, url.tag) == ["bytes=50000-249999", "bytes=55000-249999"]


def test_a_dropped_whole_download_resumes_from_the_byte_reached(server, url):
    assert read_bytes(url("drop=7000")) == PAYLOAD
    assert _ranges(server, url.tag) == [None, f"bytes=7000-{len(PAYLOAD) - 1}"]
    etag = server.headers_for(url.tag)[-1].get("If-Range")
    assert etag and etag.startswith('"')  # the rest must be of the same version


def test_a_dropped_download_without_ranges_starts_over(server, url):
    assert read_bytes(url("drop=7000&norange=1")) == PAYLOAD
    assert _ranges(server, url.tag) == [None, None]


def test_a_connection_that_keeps_dropping_fails_after_the_retries(server, url):
    with pytest.raises(RemoteAccessError, match=r"incomplete read .*dropped or stalled 3 times"):
        with open_media(url("drop=1000&drops=99")) as f:
            f.read(100_000)
    assert len(_ranges(server, url.tag)) == 3  # retries=2


# -------------------------------------------------------------------------------------- 5. wrong answers


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("shift=100", r"server returned bytes 100-32867 for a request of 0-32767"),
        ("long206=50", r"server returned bytes 0-32817 for a request of 0-32767"),
        ("empty206=1", r"empty 206 \(no bytes\) for a request of 0-32767"),
        ("ignorerange=1", r"request for bytes 0-32767 with HTTP 200 .*advertised range requests"),
    ],
)
def test_a_wrong_answer_is_named_never_returned(url, fault, message):
    u = url(fault)
    with open_media(u) as f:
        with pytest.raises(RemoteAccessError, match=message) as err:
            f.read(100)
    assert err.value.uri == u and "a.bin" in str(err.value)
    assert not isinstance(err.value, RemoteChangedError)


def test_a_huge_content_length_with_a_short_body_is_an_incomplete_read(url):
    with _Timer() as t, pytest.raises(RemoteAccessError, match=r"incomplete read.*of 1,000,000,000"):
        read_bytes(url("hugelen=1000000000&norange=1"))
    assert t.seconds < SOON


# ---------------------------------------------------------------------------------- 6. a changed remote file


@pytest.mark.parametrize("if_range", ["honoured", "ignored"])
def test_a_file_replaced_between_reads_raises_remote_changed(server, url, if_range):
    """``after=2``: the HEAD and the first ranged GET see a.bin, later requests b.bin (another ETag, size)."""
    query = "swap=b.bin&after=2" + ("&ifrange=ignore" if if_range == "ignored" else "")
    u = url(query)
    with open_media(u) as f:
        assert f.read(1000) == PAYLOAD[:1000]
        f.seek(200_000)
        message = r"changed while it was read.*ETag.*300000 bytes.*ETag"
        with pytest.raises(RemoteChangedError, match=message) as e:
            f.read(1000)
    assert e.value.uri == u and isinstance(e.value, RemoteAccessError)
    opened_etag = server.headers_for(url.tag)[1]["If-Range"]
    assert all(h.get("If-Range") == opened_etag for h in server.headers_for(url.tag)[1:])


def test_a_file_replaced_before_a_whole_download_raises_remote_changed(url):
    with pytest.raises(RemoteChangedError, match="changed while it was read"):
        with open_media(url("swap=b.bin&after=1&norange=1")) as f:
            f.read()


def test_a_file_replaced_before_a_resumed_download_raises_remote_changed(url):
    with pytest.raises(RemoteChangedError, match="changed while it was read"):
        read_bytes(url("drop=5000&swap=b.bin&after=1&ifrange=ignore"))


# ------------------------------------------------------------------------------------ 7. statuses


@pytest.mark.parametrize(
    ("fail", "error", "message"),
    [
        (401, RemoteAccessError, r"access refused \(HTTP 401.*a\.bin.*token may be needed"),
        (403, RemoteAccessError, r"access refused \(HTTP 403.*a\.bin"),
        (404, MediaNotFoundError, r"HTTP 404: no media at .*a\.bin"),
        (410, MediaNotFoundError, r"HTTP 410: no media at .*a\.bin"),
        (429, RemoteAccessError, r"HTTP 429 .*a\.bin.*after 3 attempts"),
        (503, RemoteAccessError, r"HTTP 503 .*a\.bin.*after 3 attempts"),
    ],
)
def test_status_errors_are_typed_and_name_the_url(server, url, fail, error, message):
    u = url(f"fail={fail}&retry_after=0")
    with pytest.raises(error, match=message) as err:
        read_bytes(u)
    assert err.value.uri == u
    assert len(server.requests_for(url.tag)) == (3 if fail in (429, 503) else 1)
    if fail in (404, 410):
        assert not uri_exists(u)
    else:
        with pytest.raises(error):
            open_media(u).__enter__()


def test_503_then_200_is_retried_after_retry_after(server, url):
    with _Timer() as t:
        assert read_bytes(url("status=503,429&retry_after=0.4")) == PAYLOAD
    assert t.seconds >= 0.8
    assert len(server.requests_for(url.tag)) == 3


def test_a_retry_after_past_the_deadline_fails_at_once(url):
    with _Timer() as t, pytest.raises(RemoteAccessError, match="would pass the deadline"):
        read_bytes(url("status=503&retry_after=3600"))
    assert t.seconds < SOON


def test_a_redirect_loop_fails_quickly(server, url):
    with _Timer() as t, pytest.raises(RemoteAccessError, match=r"redirect loop.*a\.bin"):
        read_bytes(url("redirect=loop"))
    assert t.seconds < SOON
    assert len(server.requests_for(url.tag)) == settings.max_redirects + 1


def test_failures_leave_nothing_behind(url):
    for fault in ("trickle=0.05", "redirect=loop", "drop=10&drops=99", "empty206=1", "swap=b.bin&after=1"):
        with pytest.raises(RemoteAccessError):
            with open_media(url(fault)) as f:
                f.seek(1000)
                f.read(5000)
    with open_media(url()) as f:
        f.seek(1000)
        assert f.read(5000) == PAYLOAD[1000:6000]
    assert read_bytes(url()) == PAYLOAD


# ------------------------------------------------------------------------------------- end to end: frames


@pytest.fixture(scope="module")
def clip(root):
    return write_video(root / "clip.mp4", 30, fps=30, gop=10, noise=0.05)


@pytest.fixture
def fresh():
    cleanup_cache()
    yield
    cleanup_cache()


def _indices(frames) -> list[int]:
    return [read_index(np.asarray(f)) for f in frames]


def test_frames_over_a_connection_that_drops_mid_body(server, clip, url, fresh):
    u = url(
        "drop=600&drops=2", name="clip.mp4"
    )  # a decoder's first read (the head) is 4 KiB: both drops hit it
    wanted = [3, 17, 29, 0, 12]
    out = batch_decode([MediaRef(u, clip.pts_ns[i]) for i in wanted])
    assert _indices(out) == wanted
    spans = [tuple(map(int, r[len("bytes=") :].split("-"))) for r in _ranges(server, url.tag) if r]
    # both drops were resumed from the byte reached (the open's ranged GET of the head keeps what came and
    # the next read goes on from there)
    resumed = [(a, b) for a, b in itertools.pairwise(spans) if b[0] == a[0] + 600 <= a[1]]
    assert len(resumed) == 2, spans


def test_frames_from_a_server_capping_206s_take_a_bounded_number_of_requests(server, clip, url, fresh):
    cap = 4096
    u = url(f"cap={cap}", name="clip.mp4")
    wanted = [29, 1, 15, 8]
    out = batch_decode([MediaRef(u, clip.pts_ns[i]) for i in wanted])
    assert _indices(out) == wanted
    size = clip.path.stat().st_size
    gets = _ranges(server, url.tag)
    assert len(gets) <= 4 * (size // cap + 1) + 20, (len(gets), size)


def test_frames_after_a_failure_come_from_a_healthy_server(server, clip, url, fresh):
    with pytest.raises(RemoteAccessError):
        batch_decode([MediaRef(url("fail=503", name="clip.mp4"), clip.pts_ns[5])])
    with pytest.raises(DecodeTimeoutError, match="did not finish"):
        with http_deadline(0.5):
            batch_decode([MediaRef(url("trickle=0.01&trickle_bytes=100", name="clip.mp4"), clip.pts_ns[5])])
    healthy = url(name="clip.mp4")
    assert _indices(batch_decode([MediaRef(healthy, clip.pts_ns[i]) for i in (5, 25)])) == [5, 25]


def test_frames_of_a_video_replaced_mid_read_are_never_wrong(server, root, clip, url, fresh):
    """The file is replaced after the first requests: the decode raises RemoteChangedError, or (once the video
    layer re-indexes on it) returns frames of the new version; never a frame of the wrong index."""
    write_video(root / "clip_new.mp4", 30, fps=30, gop=10, noise=0.05, first_index=1000)
    u = url("swap=clip_new.mp4&after=3", name="clip.mp4")
    wanted = [29, 2, 14]
    try:
        out = batch_decode([MediaRef(u, clip.pts_ns[i]) for i in wanted])
    except RemoteChangedError as exc:
        assert exc.uri == u
    else:
        assert _indices(out) == [1000 + i for i in wanted]


@pytest.mark.parametrize("query", ["hugelen=1000000000&hold=3&norange=1", "trickle=0.05&trickle_bytes=64"])
def test_decode_timeout_over_a_stalled_video_read_is_a_decode_timeout(clip, url, fresh, monkeypatch, query):
    """``batch_decode(timeout=)`` whose deadline passes inside an HTTP read of the video (the body stalls,
    or trickles): DecodeTimeoutError, as documented, not the RemoteAccessError of a failed request."""
    monkeypatch.setattr(settings, "timeout", 30)
    monkeypatch.setattr(settings, "deadline", 600.0)
    ref = MediaRef(url(query, name="clip.mp4"), clip.pts_ns[3])
    with pytest.raises(DecodeTimeoutError, match="clip.mp4") as err:
        batch_decode([ref], timeout=0.5)
    assert isinstance(err.value, TimeoutError) and not isinstance(err.value, RemoteAccessError)
