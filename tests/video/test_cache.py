"""The decoder cache: exclusive leases, reference counts, LRU eviction, clearing and fork safety."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from hf_mediaref import MediaRef, batch_decode
from hf_mediaref.testing import read_index, write_video
from hf_mediaref.video import cleanup_cache, collect_stats
from hf_mediaref.video._cache import LeaseCache, decoder_cache

from .conftest import SIZE


class Thing:
    opened = 0

    def __init__(self, name: str):
        Thing.opened += 1
        self.name = name
        self.closed = False

    def close(self) -> None:
        assert not self.closed, "closed twice"
        self.closed = True


def test_lease_reuses_idle_objects_and_counts_refs():
    cache = LeaseCache(max_idle=4)
    with cache.lease("a", lambda: Thing("a")) as first:
        assert cache.refs("a") == 1
    assert cache.refs("a") == 0 and len(cache) == 1
    with cache.lease("a", lambda: Thing("a")) as again:
        assert again is first and not first.closed


def test_concurrent_leases_of_one_key_get_different_objects():
    cache = LeaseCache(max_idle=4)
    with cache.lease("a", lambda: Thing("a")) as x, cache.lease("a", lambda: Thing("a")) as y:
        assert x is not y
        assert cache.refs("a") == 2
    assert len(cache) == 2


def test_prefer_takes_an_accepted_idle_object_of_any_key_and_gives_it_back_under_its_own():
    cache = LeaseCache(max_idle=4)
    with cache.lease("a", lambda: Thing("a1")) as a1, cache.lease("b", lambda: Thing("b1")) as b1:
        pass
    with cache.lease("a", lambda: Thing("a2")) as got:
        assert got is a1  # no preference: the idle one of its own key
    with cache.lease("a", lambda: Thing("a3"), prefer=lambda key, obj: obj.name == "b1") as got:
        assert got is b1 and cache.refs("b") == 1 and cache.refs("a") == 0
    with cache.lease("b", lambda: Thing("b2")) as got:
        assert got is b1  # went back as a "b"
    with cache.lease("a", lambda: Thing("a4"), prefer=lambda key, obj: False) as got:
        assert got is a1  # nothing preferred: as without


def test_a_tagged_cache_looks_only_at_the_idle_objects_of_the_key_s_group():
    cache = LeaseCache(max_idle=6, tag=lambda key: key[0])
    with cache.lease(("a", 1), lambda: Thing("a1")), cache.lease(("b", 1), lambda: Thing("b1")) as b1:
        pass
    seen = []

    def prefer(key, obj):
        seen.append(obj.name)
        return True

    with cache.lease(("a", 2), lambda: Thing("a2"), prefer=prefer) as got:
        assert got.name == "a1" and seen == ["a1"]  # b1 is of another group: never looked at
    with cache.lease(("b", 1), lambda: Thing("b2")) as got:
        assert got is b1
    assert len(cache) == 2
    cache.discard(lambda key: key[0] == "a")
    with cache.lease(("a", 1), lambda: Thing("a3")) as got:
        assert got.name == "a3"  # the discarded one is gone from its group too


def test_lru_eviction_closes_least_recently_used_idle_objects():
    cache = LeaseCache(max_idle=2)
    things = {}
    for key in ("a", "b", "c"):
        with cache.lease(key, lambda key=key: Thing(key)) as t:
            things[key] = t
    assert things["a"].closed and not things["b"].closed and not things["c"].closed
    with cache.lease("b", lambda: Thing("b2")) as t:
        assert t is things["b"]
    with cache.lease("d", lambda: Thing("d")):
        pass
    assert things["c"].closed and not things["b"].closed  # b was used more recently than c


def test_avoided_objects_are_left_alone_while_the_cache_has_room_and_taken_once_it_is_full():
    cache = LeaseCache(max_idle=3)
    with cache.lease("a", lambda: Thing("a1")) as a1, cache.lease("b", lambda: Thing("b1")):
        pass
    avoid = lambda obj: obj.name == "a1"  # noqa: E731
    with cache.lease("a", lambda: Thing("a2"), avoid=avoid) as got:
        assert got is not a1  # room for one more: a new one rather than the avoided one
    assert len(cache) == 3 and not a1.closed
    opened = Thing.opened
    with cache.lease("a", lambda: Thing("a3"), avoid=lambda obj: obj.name in ("a1", "a2")) as got:
        assert got.name == "a2"  # full: opening one would close another idle one; the newest avoided
    assert Thing.opened == opened and len(cache) == 3 and not any(t.closed for t in (a1, got))


def test_a_leased_object_is_never_closed_under_its_user():
    cache = LeaseCache(max_idle=0)
    with cache.lease("a", lambda: Thing("a")) as held:
        cache.clear()
        with cache.lease("b", lambda: Thing("b")):
            pass
        assert not held.closed
    assert held.closed  # given back after clear(): closed, not cached


def test_an_error_closes_the_object_instead_of_caching_it():
    cache = LeaseCache(max_idle=4)
    with pytest.raises(KeyError):
        with cache.lease("a", lambda: Thing("a")) as broken:
            raise KeyError("boom")
    assert broken.closed and len(cache) == 0 and cache.refs("a") == 0


def test_thread_safety_under_contention():
    cache = LeaseCache(max_idle=3)
    errors: list[BaseException] = []
    in_use: set[int] = set()
    guard = threading.Lock()

    def worker(seed: int) -> None:
        try:
            for i in range(300):
                key = (seed + i) % 5
                with cache.lease(key, lambda key=key: Thing(str(key))) as t:
                    with guard:
                        assert id(t) not in in_use, "one object leased twice at once"
                        in_use.add(id(t))
                    assert not t.closed
                    with guard:
                        in_use.discard(id(t))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(cache) <= 3 and all(cache.refs(k) == 0 for k in range(5))


def test_fork_child_drops_inherited_objects_without_closing_them():
    cache = LeaseCache(max_idle=4)
    with cache.lease("a", lambda: Thing("a")) as inherited:
        pass
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            with cache.lease("a", lambda: Thing("child")) as mine:
                ok = mine is not inherited and not inherited.closed
            cache.clear()
            ok = ok and not inherited.closed
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    with cache.lease("a", lambda: Thing("parent")) as again:
        assert again is inherited and not inherited.closed


def test_cache_size_comes_from_av_cache_size():
    code = (
        "from hf_mediaref.video import _cache as cache; print(cache.CACHE_SIZE, cache.decoder_cache.max_idle)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "AV_CACHE_SIZE": "3"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["3", "3"]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_real_containers_are_bounded_by_the_cache_size_and_cleanup_closes_them(tmp_path):
    cleanup_cache()
    videos = [
        write_video(tmp_path / f"v{i}.mp4", 5, fps=10, gop=5, size=SIZE, first_index=10 * i)
        for i in range(decoder_cache.max_idle + 4)
    ]
    baseline = _open_fds()
    for i, spec in enumerate(videos):
        assert (
            read_index(batch_decode([MediaRef(str(spec.path), spec.pts_ns[2])], max_workers=1)[0])
            == 10 * i + 2
        )
    assert len(decoder_cache) == decoder_cache.max_idle == 32
    assert _open_fds() - baseline <= decoder_cache.max_idle
    cleanup_cache()
    assert len(decoder_cache) == 0
    assert _open_fds() <= baseline


def test_many_videos_with_kept_resume_points_are_not_reopened_batch_after_batch(tmp_path, monkeypatch):
    """Each video's last decode keeps its resume point (see ``_container.keep_resume_point``), which a decode
    that cannot continue there leaves alone while the cache has room: once the idle containers fill the
    cache, a batch of more videos than it holds three containers of takes them instead of opening (and
    evicting) one per video per batch."""
    cleanup_cache()
    monkeypatch.setattr(decoder_cache, "max_idle", 8)
    videos = [
        write_video(tmp_path / f"v{i}.mp4", 40, fps=10, gop=4, size=SIZE, first_index=100 * i)
        for i in range(4)
    ]
    positions = [1, 13, 30]  # three keyframe blocks; the next batch starts before the kept point at 30
    refs = [MediaRef(str(v.path), v.pts_ns[p]) for v in videos for p in positions]
    expected = [100 * i + p for i in range(4) for p in positions]
    opened = []
    for _ in range(5):
        with collect_stats() as stats:
            assert [read_index(f) for f in batch_decode(refs, max_workers=1)] == expected
        opened.append(stats.containers_opened)
    assert len(decoder_cache) <= 8
    assert opened[-2:] == [0, 0], opened  # was 4 a batch: 4 videos x 3 containers > 8
    cleanup_cache()


# ---------------------------------------------------------------------------- index and container lifetimes
@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    return write_video(
        tmp_path_factory.mktemp("lifetimes") / "long.mp4", 240, fps=24, gop=24, bframes=2, size=SIZE
    )


def _frames(spec, positions, **kw):
    return [
        read_index(f)
        for f in batch_decode([MediaRef(str(spec.path), spec.pts_ns[i]) for i in positions], **kw)
    ]


def test_an_index_rebuilt_while_its_containers_stay_cached_is_built_from_the_first_packet(long_video):
    """Evicting an index (many videos, small caches) while a container of its video stays cached at some
    position used to rebuild the index from that position: frames [1, 100, 200] came back as
    [233, 233, 233]."""
    from hf_mediaref.video._cache import clear_index_cache

    cleanup_cache()
    assert _frames(long_video, [150, 230], max_workers=1) == [150, 230]
    assert len(decoder_cache) > 0  # the containers that decoded them stay cached, far into the file
    clear_index_cache()
    assert _frames(long_video, [1, 100, 200], max_workers=1) == [1, 100, 200]
    assert _frames(long_video, [239, 0], max_workers=2) == [239, 0]


def test_cleanup_cache_racing_decodes_never_changes_what_a_decode_returns(long_video, tmp_path):
    others = [
        write_video(tmp_path / f"race{i}.mkv", 60, fps=20, gop=10, size=SIZE, first_index=1000 * (i + 1))
        for i in range(2)
    ]
    videos = [(long_video, 0), *((spec, 1000 * (i + 1)) for i, spec in enumerate(others))]
    stop = threading.Event()
    errors: list[BaseException] = []

    def decoder(seed: int) -> None:
        import random

        rng = random.Random(seed)
        try:
            for _ in range(25):
                spec, first = videos[rng.randrange(len(videos))]
                picks = [rng.randrange(len(spec.pts_ns)) for _ in range(4)]
                assert _frames(spec, picks, max_workers=rng.choice([1, 2])) == [first + p for p in picks]
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def cleaner() -> None:
        while not stop.is_set():
            cleanup_cache()
            stop.wait(0.002)

    threads = [threading.Thread(target=decoder, args=(seed,)) for seed in range(3)]
    janitor = threading.Thread(target=cleaner)
    janitor.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    stop.set()
    janitor.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[0]
