"""Bad input gets a clear error (naming the argument, what was expected, what came) and leaves inputs unchanged."""

import numpy as np
import pytest

import cupy_fused


@pytest.fixture
def good(rng):
    return (
        rng.standard_normal((4, 6)).astype(np.float32),
        rng.standard_normal((5, 6)).astype(np.float32),
        rng.standard_normal(5).astype(np.float32),
    )


def _call_and_check_unchanged(exc, match, args, **kwargs):
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    with pytest.raises(exc, match=match):
        cupy_fused.linear_sigmoid_sum(*args, **kwargs)
    for a, c in zip(args, copies):
        if isinstance(a, np.ndarray):
            assert np.array_equal(a, c)


def test_wrong_weight_shape_names_k(good):
    x, w, b = good
    _call_and_check_unchanged(
        ValueError, r"weight must have shape \(N, K\) with K == x.shape\[-1\] == 6, got \(5, 5\)", (x, w[:, :5], b)
    )


def test_wrong_weight_ndim(good):
    x, w, b = good
    _call_and_check_unchanged(ValueError, r"weight must have shape \(N, K\).*got \(5, 6, 1\)", (x, w[..., None], b))


def test_zero_dimensional_x(good):
    _, w, b = good
    _call_and_check_unchanged(
        ValueError, "x must have shape \\(..., K\\) with at least 1 dimension", (np.ones((), np.float32), w, b)
    )


def test_wrong_bias_shape(good):
    x, w, b = good
    _call_and_check_unchanged(
        ValueError, r"bias must have shape \(N,\) with N == weight.shape\[0\] == 5, got \(4,\)", (x, w, b[:4])
    )
    _call_and_check_unchanged(ValueError, r"bias must have shape \(N,\).*got \(1, 5\)", (x, w, b[None]))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.complex64, np.bool_])
def test_non_float_dtypes(good, dtype):
    x, w, b = good
    _call_and_check_unchanged(
        TypeError, f"x must have a floating dtype .*got {np.dtype(dtype).name}", (x.astype(dtype), w, b)
    )


def test_mismatched_float_dtypes(good):
    x, w, b = good
    _call_and_check_unchanged(
        TypeError, "weight has dtype float64 but x has dtype float32", (x, w.astype(np.float64), b)
    )
    _call_and_check_unchanged(TypeError, "bias has dtype float16 but x has dtype float32", (x, w, b.astype(np.float16)))


def test_non_arrays(good):
    x, w, b = good
    _call_and_check_unchanged(
        TypeError,
        "x must be a numpy.ndarray, cupy.ndarray, torch.Tensor, jax.Array or another array .*, got builtins.list",
        (x.tolist(), w, b),
    )
    _call_and_check_unchanged(TypeError, "bias must be a numpy.ndarray.*got builtins.float", (x, w, 1.0))


def test_mixed_libraries(good):
    torch = pytest.importorskip("torch")
    x, w, b = good
    _call_and_check_unchanged(
        TypeError,
        "weight is a torch array but x is a numpy array; pass all arrays from one library",
        (x, torch.from_numpy(w), b),
    )


def test_mixed_devices(good):
    torch = pytest.importorskip("torch")
    x, w, b = (torch.from_numpy(a) for a in good)
    with pytest.raises(ValueError, match="weight is on meta but x is on cpu; use one device"):
        cupy_fused.linear_sigmoid_sum(x, w.to("meta"), b)
    with pytest.raises(ValueError, match="x must be on the CPU or a CUDA device, got meta"):
        cupy_fused.linear_sigmoid_sum(x.to("meta"), w.to("meta"), b.to("meta"))


def test_unknown_precision(good):
    _call_and_check_unchanged(
        ValueError, r"precision must be None or one of 'ieee', .*got 'fp8'", good, precision="fp8"
    )


def test_bad_flags(good):
    _call_and_check_unchanged(TypeError, "keepdims must be True or False, got 1", good, keepdims=1)
    _call_and_check_unchanged(ValueError, "workspace_bytes must be a positive int", good, workspace_bytes=0)


def test_stream_refused_for_host_arrays(good):
    _call_and_check_unchanged(TypeError, "stream applies to GPU arrays only", good, stream=object())


def test_sigmoid_sum_errors(good):
    x, _, b = good
    with pytest.raises(ValueError, match=r"bias must have shape \(N,\) with N == z.shape\[-1\] == 6, got \(5,\)"):
        cupy_fused.sigmoid_sum(x, b)
    with pytest.raises(ValueError, match="z must have shape"):
        cupy_fused.sigmoid_sum(np.ones((), np.float32))
    with pytest.raises(TypeError, match="z must have a floating dtype"):
        cupy_fused.sigmoid_sum(np.ones((2, 3), np.int8))


def test_import_needs_neither_torch_nor_cupy():
    import subprocess
    import sys

    code = (
        "import sys, cupy_fused; assert 'torch' not in sys.modules and 'cupy' not in sys.modules, "
        "sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'cupy'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_method_and_gpu_only_methods(good):
    _call_and_check_unchanged(
        ValueError, r"method must be one of 'auto', 'fused', 'cublas', got 'magic'", good, method="magic"
    )
    _call_and_check_unchanged(ValueError, r"method='fused' needs GPU arrays", good, method="fused")
