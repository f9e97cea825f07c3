"""Plans on the CPU: reuse gives the same bits, a plan refuses another signature with a message naming the change,
the cache is bounded and safe under threads, and every validation error still raises through a warm cache."""

import threading

import numpy as np
import pytest
from helpers import linear_sigmoid_sum as ref_lss
from helpers import make_inputs, rel_err
from helpers import sigmoid_sum as ref_ss

import cupy_fused
from cupy_fused import plans


@pytest.fixture
def good(rng):
    return tuple(a.astype(np.float32) for a in make_inputs(rng, (4,), 6, 5))


def test_plan_reuse_gives_the_same_bits_as_a_fresh_call(good, rng):
    x, w, b = good
    fresh = cupy_fused.linear_sigmoid_sum(x, w, b)
    p = cupy_fused.plan(x, w, b)
    assert np.array_equal(p(x, w, b), fresh)
    x2 = rng.standard_normal(x.shape).astype(np.float32)
    assert np.array_equal(p(x2, w, b), cupy_fused.linear_sigmoid_sum(x2, w, b))
    cupy_fused.clear_plans()
    assert np.array_equal(cupy_fused.linear_sigmoid_sum(x2, w, b), p(x2, w, b))


def test_torch_cpu_plan_reuse(rng):
    torch = pytest.importorskip("torch")
    x, w, b = (torch.from_numpy(a).float() for a in make_inputs(rng, (3, 2), 7, 9))
    p = cupy_fused.plan(x, w, b, keepdims=False)
    out = p(x, w, b)
    assert isinstance(out, torch.Tensor) and out.shape == (3, 2)
    assert torch.equal(out, cupy_fused.linear_sigmoid_sum(x, w, b, keepdims=False))


def test_a_plan_refuses_another_signature_and_names_the_change(good):
    x, w, b = good
    p = cupy_fused.plan(x, w, b)
    with pytest.raises(ValueError, match=r"x.shape: \(4, 6\) -> \(3, 6\)"):
        p(x[:3], w, b)
    with pytest.raises(ValueError, match="weight.dtype: float32 -> float64"):
        p(x, w.astype(np.float64), b)
    with pytest.raises(ValueError, match="bias: an array -> None"):
        p(x, w)
    with pytest.raises(ValueError, match=r"x.strides: \(6, 1\) -> \(1, 4\)"):
        p(np.asfortranarray(x), w, b)
    with pytest.raises(
        ValueError, match="x must be a numpy.ndarray, cupy.ndarray, torch.Tensor, jax.Array or another array"
    ):
        p([1.0], w, b)
    with pytest.raises(TypeError, match="takes x, weight and optionally bias"):
        p(x)


def test_explain_says_what_runs(good):
    text = cupy_fused.plan(*good).explain()
    assert "linear_sigmoid_sum: numpy float32 on cpu" in text and "B=4 K=6 N=5" in text
    assert "NumPy backend" in text and "strict float32" in text
    assert repr(cupy_fused.plan(*good)).startswith("<cupy_fused.Plan")


def test_the_cache_is_bounded(rng, monkeypatch):
    monkeypatch.setattr(plans.CACHE, "_size", 16)
    w, b = (a.astype(np.float32) for a in make_inputs(rng, (), 3, 2)[1:])
    for rows in range(1, 40):
        cupy_fused.linear_sigmoid_sum(np.ones((rows, 3), np.float32), w, b)
        assert len(plans.CACHE) <= 16
    assert len(plans.CACHE) == 16


def test_the_cache_is_safe_under_eight_threads(rng):
    cupy_fused.clear_plans()
    cases = [tuple(a.astype(np.float32) for a in make_inputs(rng, (rows,), 8 + rows % 3, 5)) for rows in range(1, 13)]
    expected = [ref_lss(*c) for c in cases]
    errors = []

    def work(seed):
        order = np.random.default_rng(seed).permutation(len(cases))
        try:
            for _ in range(20):
                for i in order:
                    assert rel_err(cupy_fused.linear_sigmoid_sum(*cases[i]), expected[i]) < 1e-6
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


BAD_CALLS = [
    (dict(keepdims=1), TypeError, "keepdims must be True or False, got 1"),
    (dict(workspace_bytes=True), ValueError, "workspace_bytes must be a positive int"),
    (dict(workspace_bytes=0), ValueError, "workspace_bytes must be a positive int"),
    (dict(precision="fp8"), ValueError, "precision must be None or one of"),
    (dict(precision=["tf32"]), ValueError, "precision must be None or one of"),
    (dict(method="fused"), ValueError, "method='fused' needs GPU arrays"),
    (dict(stream=object()), TypeError, "stream applies to GPU arrays only"),
]


@pytest.mark.parametrize("kwargs,error,message", BAD_CALLS)
def test_validation_raises_through_a_cold_and_a_warm_cache(good, kwargs, error, message):
    cupy_fused.clear_plans()
    with pytest.raises(error, match=message):
        cupy_fused.linear_sigmoid_sum(*good, **kwargs)
    cupy_fused.linear_sigmoid_sum(*good, keepdims=True, workspace_bytes=1, precision=None, method="auto")
    cupy_fused.linear_sigmoid_sum(*good)  # the default signature is warm too
    with pytest.raises(error, match=message):
        cupy_fused.linear_sigmoid_sum(*good, **kwargs)


def test_shapes_and_dtypes_are_checked_on_a_warm_cache(good):
    x, w, b = good
    cupy_fused.linear_sigmoid_sum(x, w, b)
    with pytest.raises(ValueError, match=r"weight must have shape \(N, K\) with K == x.shape\[-1\] == 6"):
        cupy_fused.linear_sigmoid_sum(x, w[:, :5], b)
    with pytest.raises(TypeError, match="bias has dtype float64 but x has dtype float32"):
        cupy_fused.linear_sigmoid_sum(x, w, b.astype(np.float64))


def test_memmaps_subclasses_and_numpy_integer_workspaces_are_accepted(good, tmp_path):
    x, w, b = good
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=x.shape)
    mm[...] = x
    expected = cupy_fused.linear_sigmoid_sum(x, w, b)
    assert np.array_equal(cupy_fused.linear_sigmoid_sum(mm, w, b, workspace_bytes=np.int64(1 << 20)), expected)
    with pytest.raises(TypeError, match="x is a numpy masked array"):
        cupy_fused.linear_sigmoid_sum(np.ma.masked_array(x), w, b)


def test_sigmoid_sum_plans(rng):
    z = rng.standard_normal((5, 7)).astype(np.float32)
    fresh = cupy_fused.sigmoid_sum(z)
    assert rel_err(fresh, ref_ss(z, None)) <= 1e-6
    cupy_fused.clear_plans()
    assert np.array_equal(cupy_fused.sigmoid_sum(z), fresh)  # a plan made again gives the same bits
    with pytest.raises(TypeError, match="keepdims must be True or False"):
        cupy_fused.sigmoid_sum(z, keepdims=0)


def test_two_pass_blocks_hold_whole_rows_or_wide_chunks_within_the_bound():
    from cupy_fused.backends.cublas import BLOCK_BYTES, BLOCK_MIN_COLUMNS, block_shape

    assert block_shape(4096, 4096, 4, 2**28) == (4096, 4096)  # the whole z fits: one block
    assert block_shape(128, 32768, 4, 2**28) == (128, 32768)
    assert block_shape(16384, 65536, 4, 2**28) == (4096, BLOCK_MIN_COLUMNS)  # BLOCK_BYTES caps the bound
    assert block_shape(4096, 11008, 4, 2**28) == (4096, BLOCK_MIN_COLUMNS)
    assert block_shape(1000, 65536, 4, 2**28) == (1000, 16776)  # whole rows, a chunk wider than the minimum
    assert block_shape(300, 5000, 4, 128 * 4096 * 4) == (128, 4096)  # rows in multiples of 128
    assert block_shape(17, 1000, 4, 17 * 4 * 8) == (17, 8)  # fewer than 128 rows would fit: whole rows, narrow chunks
    assert block_shape(17, 1000, 4, 4) == (17, 1)
    for rows, n, bound in [(16384, 65536, 2**40), (3000, 70000, 2**24), (129, 9000, 2**21), (5, 3, 1)]:
        r, c = block_shape(rows, n, 4, bound)
        assert 1 <= r <= rows and 1 <= c <= n
        assert r * c * 4 <= max(min(bound, BLOCK_BYTES), rows * 4)  # one column of whole rows at least
