"""The decode façade: one DecodeOptions (validated once) taken by every entry point, on real media."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hf_mediaref import DecodeOptions, MediaRef, batch_decode
from hf_mediaref.testing import read_index, write_image, write_video
from hf_mediaref.video import BatchDecodingStrategy, collect_stats


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("decode") / "clip.mp4", 24, fps=24, gop=8, size=(64, 128))


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return write_image(tmp_path_factory.mktemp("decode_img") / "img77.png", 77, size=(64, 128))


class TestOptions:
    def test_defaults_and_normalisation(self):
        opts = DecodeOptions(strategy="separate", size=[32, np.int64(48)], max_workers=np.int32(2))
        assert opts.decoder == "pyav" and opts.output == "numpy" and opts.device == "cpu"
        assert opts.strategy is BatchDecodingStrategy.SEPARATE
        assert opts.size == (32, 48) and type(opts.size[1]) is int and opts.max_workers == 2
        assert DecodeOptions().strategy is BatchDecodingStrategy.SEQUENTIAL_PER_KEYFRAME_BLOCK

    @pytest.mark.parametrize(
        "bad",
        [
            {"size": ("224", "224")},  # strings were accepted by batch_decode and refused by the format
            {"size": (224.0, 224)},
            {"size": (0, 10)},
            {"size": (1, 2, 3)},
            {"size": "ab"},
            {"output": "jax"},
            {"decoder": "opencv"},
            {"strategy": "fastest"},
            {"channels_first": "yes"},
            {"output": "pil", "channels_first": True},
            {"max_workers": 0},
            {"device": "tpu"},
            {"device": "cuda"},  # CUDA needs TorchCodec
            {"storage_options": ["not", "a", "dict"]},
        ],
    )
    def test_invalid_options_are_refused_when_built(self, bad):
        with pytest.raises(ValueError):
            DecodeOptions(**bad)

    def test_cuda_with_torchcodec_is_a_valid_option(self):
        assert DecodeOptions(decoder="torchcodec", device="cuda:1").device == "cuda:1"

    def test_resolve_merges_keywords_over_an_options_object(self):
        base = DecodeOptions(size=(32, 48), output="torch")
        merged = DecodeOptions.resolve(base, output="numpy", decoder=None)
        assert merged == DecodeOptions(size=(32, 48), output="numpy")
        assert DecodeOptions.resolve(None) == DecodeOptions()
        assert DecodeOptions.resolve(base) is base
        with pytest.raises(TypeError, match="unknown decode option"):
            DecodeOptions.resolve(base, sizes=(1, 1))
        with pytest.raises(TypeError, match="DecodeOptions"):
            DecodeOptions.resolve({"size": (1, 1)})  # type: ignore[arg-type]


class TestEntryPoints:
    def test_batch_decode_takes_an_options_object_and_keyword_overrides(self, video):
        refs = [MediaRef(str(video.path), video.pts_ns[i]) for i in (5, 17)]
        opts = DecodeOptions(size=(32, 64), channels_first=True)
        assert [f.shape for f in batch_decode(refs, options=opts)] == [(3, 32, 64)] * 2
        full = batch_decode(refs, options=opts, size=(64, 128))  # a barcode survives no downscale
        assert [f.shape for f in full] == [(3, 64, 128)] * 2 and [read_index(f) for f in full] == [5, 17]
        plain = batch_decode(refs, options=opts, channels_first=False, size=(64, 128))
        assert [read_index(f) for f in plain] == [5, 17] and plain[0].shape == (64, 128, 3)

    def test_pil_output_for_videos_and_images(self, video, image):
        refs = [MediaRef(str(video.path), video.pts_ns[9]), MediaRef(str(image)), {"uri": str(image)}]
        frames = batch_decode(refs, output="pil")
        assert all(isinstance(f, Image.Image) and f.mode == "RGB" for f in frames)
        assert [read_index(np.asarray(f)) for f in frames] == [9, 77, 77]

    def test_media_ref_methods_take_the_same_options(self, video, image):
        ref = MediaRef(str(video.path), video.pts_ns[11])
        assert read_index(ref.to_rgb_array(options=DecodeOptions(size=(64, 128)))) == 11
        assert ref.to_rgb_array(options=DecodeOptions(size=(64, 128)), size=(32, 64)).shape == (32, 64, 3)
        assert read_index(MediaRef(str(image)).to_rgb_array()) == 77

    def test_media_ref_methods_take_the_torch_options(self, video):
        pytest.importorskip("torch")
        ref = MediaRef(str(video.path), video.pts_ns[11])
        tensor = ref.to_rgb_array(output="torch", channels_first=True)
        assert tuple(tensor.shape) == (3, 64, 128) and read_index(tensor.numpy()) == 11
        pil = ref.to_pil_image(options=DecodeOptions(output="torch", channels_first=True, size=(64, 128)))
        assert isinstance(pil, Image.Image) and pil.size == (128, 64) and read_index(np.asarray(pil)) == 11

    def test_each_call_is_one_engine_call_counted_with_its_refs(self, video):
        refs = [MediaRef(str(video.path), t) for t in video.pts_ns[:6]]
        with collect_stats() as stats:
            batch_decode(refs)
            batch_decode(refs[:2])
        assert stats.calls == 2 and stats.requested_refs == 8 and stats.refs_per_call == 4

    def test_malformed_refs_name_their_position(self, video):
        with pytest.raises(ValueError, match=r"refs\[1\].*pts_ns"):
            batch_decode([MediaRef(str(video.path), 0), {"uri": str(video.path), "pts_ns": -5}])
        with pytest.raises(ValueError, match=r"refs\[0\].*keys"):
            batch_decode([{"uri": str(video.path), "pts": 0}])
        with pytest.raises(TypeError, match=r"refs\[0\]"):
            batch_decode([42])


class TestDeadlinesAndRemoteChanges:
    @pytest.fixture
    def served(self, tmp_path):
        from hf_mediaref.testing.faulty_http import FaultyFileServer

        spec = write_video(tmp_path / "clip.mp4", 30, fps=30, gop=10, noise=0.05, size=(64, 128))
        with FaultyFileServer(tmp_path) as server:
            yield server, spec

    def test_a_passed_timeout_starts_no_work(self, video):
        from hf_mediaref import cleanup_cache
        from hf_mediaref.errors import DecodeTimeoutError

        cleanup_cache()
        with collect_stats() as stats, pytest.raises(DecodeTimeoutError, match="timeout"):
            batch_decode([MediaRef(str(video.path), 0)], timeout=1e-9)
        assert stats.containers_opened == 0 and stats.decoded_frames == 0
        assert read_index(batch_decode([MediaRef(str(video.path), 0)], timeout=60)[0]) == 0

    def test_timeout_bounds_the_whole_call_over_a_trickling_server(self, served, monkeypatch):
        import time

        from hf_mediaref.errors import DecodeTimeoutError, RemoteAccessError
        from hf_mediaref.io import http_settings

        server, spec = served  # the call's timeout passes inside an HTTP read: DecodeTimeoutError
        monkeypatch.setattr(http_settings, "deadline", 600.0)  # only the call's timeout can end it in time
        ref = MediaRef(f"{server.url}/clip.mp4?trickle=0.05&id=timeout", spec.pts_ns[3])
        start = time.monotonic()
        with pytest.raises(DecodeTimeoutError) as info:
            batch_decode([ref], timeout=1.0)
        assert time.monotonic() - start < 5
        assert isinstance(info.value, TimeoutError) and not isinstance(info.value, RemoteAccessError)

    @pytest.mark.parametrize(
        "picks", [(25, 2, 39), (20, 2)], ids=["past_the_old_end", "inside_the_old_range"]
    )
    def test_a_video_replaced_between_calls_is_indexed_again(self, served, tmp_path, picks):
        """The in-memory index and cached containers belong to the old file: the new version is detected on
        its first read, what was cached of the file is dropped, and the right frames of the new file come
        back."""
        import os

        from hf_mediaref import cleanup_cache
        from hf_mediaref.testing import probe_pts_ns
        from hf_mediaref.video._cache import decoder_cache

        server, spec = served
        uri = f"{server.url}/clip.mp4?id=replaced{len(picks)}"
        cleanup_cache()
        first = batch_decode([MediaRef(uri, spec.pts_ns[i]) for i in (2, 25)])
        assert [read_index(f) for f in first] == [2, 25]
        # another frame rate, GOP and B-frames: the old index would pick wrong frames of the new file
        new = write_video(
            tmp_path / "next.mp4", 40, fps=24, gop=8, bframes=2, size=(64, 128), first_index=500
        )
        os.replace(new.path, spec.path)  # same URL, other bytes: another ETag
        decoder_cache.clear()  # containers opened now see the new file; only the in-memory index is stale
        pts = probe_pts_ns(spec.path)
        with collect_stats() as stats:
            frames = batch_decode([MediaRef(uri, pts[i]) for i in picks])
        assert [read_index(f) for f in frames] == [500 + i for i in picks]
        assert stats.index_scans == 1  # indexed again, once
        cleanup_cache()  # a new process: the index stored on disk is the new version's
        assert [read_index(f) for f in batch_decode([MediaRef(uri, pts[7])])] == [507]
