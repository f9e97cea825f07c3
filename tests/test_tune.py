"""The tuner without a GPU: bucketing, the cache file's round trip, corrupt and foreign files ignored with a warning,
the choice among timed candidates, tuning off in tests, and the static heuristic of the planner."""

import dataclasses
import json
import re

import pytest

from cupy_fused import loader, planner, tune
from cupy_fused.backends import Candidate, Problem

H100 = loader.DeviceInfo("NVIDIA H100 80GB HBM3", "sm_90a", 132, True, 3.35e12)
OLD_GPU = loader.DeviceInfo("Tesla V100", "sm_70", 80, False, 0.9e12)


def problem(B, K, N, dtype="float32", aligned=True, bias=True):
    return Problem(B, K, N, dtype, bias, K, K, aligned, 0, 256 * 2**20)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CUPY_FUSED_CACHE_DIR", str(tmp_path))
    tune.forget()
    yield tmp_path
    tune.forget()


def test_tuning_is_off_in_tests():
    assert not planner.tuning_enabled()


def test_buckets_round_b_k_n_up_to_powers_of_two():
    assert tune.bucket(problem(3, 1000, 4099), None, "auto") == "float32|default|auto|aligned|bias|B4|K1024|N8192"
    assert tune.bucket(problem(1, 1, 1), "tf32", "fused") == "float32|tf32|fused|aligned|bias|B1|K1|N1"
    assert tune.bucket(problem(3, 1000, 4099), None, "auto") == tune.bucket(problem(4, 513, 8192), None, "auto")
    assert tune.bucket(problem(3, 7, 9, aligned=False, bias=False), "bf16", "auto").endswith(
        "unaligned|nobias|B4|K8|N16"
    )


def test_choices_round_trip_through_the_cache_file(cache):
    tune.store("NVIDIA H100 80GB HBM3", "k1", {"kernel": "a", "ms": {"a": 0.1, "b": 0.2}})
    path = tune.cache_path("NVIDIA H100 80GB HBM3")
    assert path.parent == cache and path.name.startswith("tuning-nvidia-h100-80gb-hbm3-")
    assert path.stem.endswith(f"-{loader.sources_digest()}")  # kept per kernel sources: an edited kernel re-tunes
    assert re.fullmatch("[0-9a-f]{12}", loader.sources_digest())
    tune.forget()
    assert tune.load("NVIDIA H100 80GB HBM3") == {"k1": {"kernel": "a", "ms": {"a": 0.1, "b": 0.2}}}
    assert tune.load("another GPU") == {}


@pytest.mark.parametrize(
    "content,reason",
    [
        ("{not json", "Expecting property name"),
        (json.dumps({"format": 1, "gpu": "some other GPU", "version": "0", "entries": {}}), "another GPU"),
        (json.dumps({"format": 1, "gpu": "G", "version": "__version__", "entries": {"k": {"no": 1}}}), "malformed"),
    ],
)
def test_corrupt_or_foreign_files_are_ignored_with_a_warning(cache, content, reason):
    from cupy_fused import __version__

    tune.cache_path("G").write_text(content.replace("__version__", __version__))
    with pytest.warns(RuntimeWarning, match=f"ignoring the tuning cache .*{reason}"):
        assert tune.load("G") == {}
    tune.store("G", "k", {"kernel": "a", "ms": {"a": 1.0}})  # a bad file is replaced by a good one
    tune.forget()
    assert tune.load("G")["k"]["kernel"] == "a"


class _Built:
    def __init__(self, name):
        self.name = name


def _candidates(*names):
    return [Candidate("fused", "ieee", name, lambda name=name: _Built(name)) for name in names]


def test_select_times_every_candidate_keeps_the_fastest_and_stores_it(cache):
    times = {"a": 0.3, "b": 0.1, "c": 0.2}
    chosen, exe, how = tune.select("key", _candidates("a", "b", "c"), lambda e: (times[e.name], 0.0), "G", False)
    assert chosen.kernel == "b" and exe.name == "b" and how.startswith("tuned now (b")
    tune.forget()
    assert tune.load("G")["key"] == {"kernel": "b", "ms": times, "gpu_ms": times}


def test_select_uses_a_stored_choice_without_timing(cache):
    tune.store("G", "key", {"kernel": "c", "ms": {"c": 0.1}})

    def timer(exe):
        raise AssertionError("nothing is timed when the cache has the answer")

    chosen, exe, how = tune.select("key", _candidates("a", "c"), timer, "G", False)
    assert chosen.kernel == "c" and exe is None and how.startswith("tuning cache")
    # a stored kernel that is not a candidate of this call: time again
    chosen, _, how = tune.select(
        "key", _candidates("a", "b"), lambda e: ({"a": 2.0, "b": 1.0}[e.name], 0.1), "G", False
    )
    assert chosen.kernel == "b" and how.startswith("tuned now")


def test_host_bound_candidates_are_told_apart_by_gpu_time(cache):
    # a loop pays max(GPU, host): a and b cost the same 10 us per call, b uses the GPU for less of it
    timings = {"a": (0.006, 0.010), "b": (0.004, 0.0101), "c": (0.020, 0.010)}
    chosen, _, _ = tune.select("key3", _candidates("a", "b", "c"), lambda e: timings[e.name], "G", False)
    assert chosen.kernel == "b"


def test_nothing_is_timed_during_capture_and_failed_candidates_are_skipped_unstored(cache):
    chosen, exe, how = tune.select("key", _candidates("a", "b"), None, "G", True)
    assert chosen.kernel == "a" and exe is None and "captured" in how

    def broken():
        raise RuntimeError("no such kernel here")

    cands = [Candidate("fused", "ieee", "x", broken)] + _candidates("y")
    chosen, _, how = tune.select("key2", cands, lambda e: (1.0, 1.0), "G", False)
    assert chosen.kernel == "y" and "not stored" in how and "no such kernel here" in how
    tune.forget()
    assert "key2" not in tune.load("G")  # the failure may pass: the next process times again

    def timer(exe):
        if exe.name == "a":
            raise RuntimeError("out of memory")
        return 1.0, 1.0

    chosen, _, how = tune.select("key4", _candidates("a", "b"), timer, "G", False)
    assert chosen.kernel == "b" and "out of memory" in how
    tune.forget()
    assert "key4" not in tune.load("G")


def first(p, precision=None, method="auto", info=H100):
    c = planner.candidates(p, precision, method, info, False)[0]
    return c.method, c.precision, c.kernel.split("<")[0] if "<" in c.kernel else c.kernel.split(":")[0]


def test_the_static_heuristic():
    assert first(problem(1, 4096, 4096)) == ("fused", "ieee", "small_batch")
    assert first(problem(4, 4096, 4096), "tf32") == ("fused", "ieee", "small_batch")
    assert first(problem(5, 4096, 4096)) == ("fused", "tf32x3", "sbw::wgmma_small_batch")
    assert first(problem(16, 4096, 4096), "tf32") == ("fused", "tf32", "sbw::wgmma_small_batch")
    assert first(problem(64, 4096, 11008), "tf32") == ("fused", "tf32", "sbw::wgmma_small_batch")
    assert first(problem(16, 4096, 4096, aligned=False)) == ("fused", "ieee", "small_batch")
    assert first(problem(16, 4096, 4096), info=OLD_GPU) == ("fused", "ieee", "small_batch")
    assert first(problem(16, 64, 64)) == ("fused", "ieee", "small_batch")  # tiny: launch-bound
    assert first(problem(128, 4096, 4096)) == ("fused", "tf32x3", "sbw::wgmma_small_batch")
    assert first(problem(129, 4096, 4096)) == ("fused", "tf32x3", "fused::wgmma_tile")
    assert first(problem(128, 4096, 4096, aligned=False)) == ("fused", "tf32x3", "fused::mma_tile")
    assert first(problem(128, 4096, 4096), "ieee") == ("cublas", "ieee", "cublaslt")
    assert first(problem(128, 4096, 4096), "tf32") == ("cublas", "tf32", "cublaslt")
    assert first(problem(128, 32768, 32768), "tf32") == ("fused", "tf32", "sbw::wgmma_small_batch")
    assert first(problem(256, 32768, 32768), "tf32") == ("fused", "tf32", "fused::wgmma_tile")
    assert first(problem(96, 4096, 4096), "tf32") == ("cublas", "tf32", "cublaslt")
    assert planner.candidates(problem(32, 4096, 4096), None, "auto", H100, False)[0].kernel.startswith(
        "sbw::wgmma_small_batch<true, 32, 4, false>"
    )  # the small-batch wgmma kernel, batch widths 8-64 ...
    assert planner.candidates(problem(65, 4096, 4096), None, "auto", H100, False)[0].kernel.startswith(
        "sbw::wgmma_small_batch<true, 128, 2, false>"
    )  # and up to B = 128 at a batch width of 128; x split once per call first where W is large:
    assert planner.candidates(problem(128, 4096, 11008), None, "auto", H100, False)[0].kernel.startswith(
        "sbw::wgmma_small_batch<true, 128, 2, true>"
    )
    big_x = dataclasses.replace(problem(128, 4096, 11008), workspace_limit=8 * 128 * 4096 - 1)
    assert planner.candidates(big_x, None, "auto", H100, False)[0].kernel.startswith(
        "sbw::wgmma_small_batch<true, 128, 2, false>"
    )  # unless the split copy would not fit the workspace bound
    assert first(problem(4096, 4096, 4096), "tf32") == ("cublas", "tf32", "cublaslt")
    assert first(problem(128, 4096, 4096, dtype="float16")) == ("cublas", "ieee", "cublaslt")
    # half inputs: the GEMM core where it measured fastest (planner._core_offered), and only there
    assert not any(
        c.kernel.startswith("sm90")
        for c in planner.candidates(problem(128, 4096, 4096, "bfloat16"), None, "auto", H100, True)
    )
    assert planner.candidates(problem(128, 4096, 4096, "bfloat16"), None, "fused", H100, False)[0].kernel.startswith(
        "sm90"
    )
    assert first(problem(32, 4096, 14336, dtype="bfloat16")) == ("fused", "ieee", "sm90")
    assert first(problem(1, 8192, 28672, dtype="bfloat16")) == ("fused", "ieee", "sm90")
    assert first(problem(1, 4096, 4096, dtype="bfloat16")) == ("fused", "ieee", "small_batch")
    # ... not where its tiles fill fewer than half the SMs, even stream-K (1 x 32768 x 1024: 8 tiles of 128 W rows)
    assert first(problem(1, 32768, 1024, dtype="bfloat16")) == ("fused", "ieee", "small_batch")
    assert first(problem(64, 8192, 4096, dtype="bfloat16")) == ("cublas", "ieee", "cublaslt")
    assert first(problem(16384, 1024, 65536, dtype="float16")) == ("fused", "ieee", "sm90")
    assert first(problem(4096, 4096, 4096, dtype="bfloat16")) == ("cublas", "ieee", "cublaslt")
    assert first(problem(32, 4096, 14336, dtype="bfloat16", aligned=False)) != ("fused", "ieee", "sm90")
    assert first(problem(128, 10, 20), "ieee") == ("fused", "ieee", "fused::fma_tile")
    assert first(problem(128, 0, 20)) == ("fused", "ieee", "small_batch")
    assert first(problem(128, 4096, 4096), method="cublas") == ("cublas", "ieee", "cublaslt")
    assert first(problem(128, 4096, 4096), info=OLD_GPU) == ("cublas", "ieee", "cublaslt")
    assert first(problem(128, 4096, 4096), "tf32", "fused", OLD_GPU) == ("fused", "ieee", "fused::fma_tile")
    assert planner.candidates(problem(128, 64, 64), "tf32x3", "cublas", H100, False) == []


def test_tuning_offers_more_candidates_all_at_least_as_accurate_as_asked():
    p = problem(32, 4096, 11008)
    static = planner.candidates(p, None, "auto", H100, False)
    tuned = planner.candidates(p, None, "auto", H100, True)
    assert len(tuned) > len(static) and {c.precision for c in tuned} <= {"ieee", "tf32x3"}
    assert {c.precision for c in planner.candidates(p, "tf32", "auto", H100, True)} <= {"ieee", "tf32"}
    assert len({c.kernel for c in tuned}) == len(tuned)
    on_old = planner.candidates(problem(512, 1024, 1024), None, "auto", OLD_GPU, True)  # ieee and tf32x3: one kernel
    assert len({c.kernel for c in on_old}) == len(on_old)


def test_split_k_fills_the_gpu_when_tiles_are_few():
    from cupy_fused.backends import fused, small_batch

    cfg = fused.tile_configs("float32", "tf32x3", 128, True, True, True)[0]
    assert fused.split_count(problem(128, 4096, 4096), cfg, 132) == 4  # 32 tiles of 128 x 128: 128 blocks, one wave
    assert fused.split_count(problem(128, 4096, 11008), cfg, 132) == 3  # 86 tiles: 258 blocks in two waves
    assert fused.split_count(problem(128, 4096, 12800), cfg, 132) == 1  # 100 tiles: 2, 3 or 4 ways take as long
    assert fused.split_count(problem(4096, 4096, 4096), cfg, 132) == 1
    assert fused.split_count(problem(128, 128, 4096), cfg, 132) == 1  # too little K to split
    assert small_batch.splits_for(problem(1, 4096, 1024), 1, 132) == 8  # 32 n blocks, 2 x 132 wanted
