"""The fused one-pass kernel: every precision and dtype on odd shapes under the error budget, tf32x3 within 2x of
cuBLAS fp32's error, bit-identical repeated runs, no B x N allocation, 64-bit offsets, and the method choice."""

import numpy as np
import pytest

import cupy_fused
from cupy_fused import _plan
from reference import make_inputs, rel_err

pytestmark = pytest.mark.gpu
cp = pytest.importorskip("cupy")
torch = pytest.importorskip("torch")

from test_gpu import EPS, budget, cuda_inputs, exact_reference  # noqa: E402  (same budget as the cuBLAS path)

ODD = [((1,), 1, 1), ((3,), 5, 7), ((257,), 1000, 4099), ((129,), 1001, 300), ((2, 65), 33, 257)]
FP32_PRECISIONS = ["ieee", "tf32", "tf32x3", "bf16"]


def fused(x, w, b, precision=None):
    return cupy_fused.linear_sigmoid_sum(x, w, b, precision=precision, method="fused")


@pytest.mark.parametrize("precision", FP32_PRECISIONS)
@pytest.mark.parametrize("batch,k,n", ODD)
def test_float32_precisions_within_budget(rng, batch, k, n, precision):
    x, w, b = cuda_inputs(rng, batch, k, n, torch.float32)
    ref = exact_reference(x, w, b)
    out = fused(x, w, b, precision)
    peer = "ieee" if precision == "tf32x3" else precision  # tf32x3 must be as good as strict fp32 (2x budget)
    assert out.shape == batch + (1,) and out.dtype == torch.float32
    assert rel_err(out.double().cpu().numpy(), ref) <= budget(x, w, b, peer, torch.float32, ref)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("batch,k,n", ODD)
def test_other_dtypes_within_budget(rng, batch, k, n, dtype):
    x, w, b = cuda_inputs(rng, batch, k, n, dtype)
    ref = exact_reference(x, w, b)
    out = fused(x, w, b)
    assert out.dtype == dtype
    assert rel_err(out.double().cpu().numpy(), ref) <= budget(x, w, b, None, dtype, ref)


@pytest.mark.parametrize("precision", FP32_PRECISIONS)
def test_unaligned_views_and_no_bias(rng, precision):
    x, w, b = cuda_inputs(rng, (70,), 515, 333, torch.float32)
    xv = torch.cat([x, x], 1)[:, 1:516]  # base pointer off by 4 bytes, row stride 1030 elements
    wv = torch.cat([w, w], 1)[:, 3:518]
    peer = "ieee" if precision == "tf32x3" else precision
    for bias in (b, None):
        ref = exact_reference(xv, wv, bias) if bias is not None else exact_reference(xv, wv, torch.zeros_like(b))
        out = fused(xv, wv, bias, precision)
        assert rel_err(out.double().cpu().numpy(), ref) <= budget(xv, wv, b if bias is not None else torch.zeros_like(b),
                                                                  peer, torch.float32, ref)


def test_tf32x3_error_within_twice_cublas_fp32(rng):
    x, w, b = cuda_inputs(rng, (128,), 8192, 2048, torch.float32)
    ref = exact_reference(x, w, b)
    err_fused = rel_err(fused(x, w, b, "tf32x3").double().cpu().numpy(), ref)
    err_cublas = rel_err(cupy_fused.linear_sigmoid_sum(x, w, b, precision="ieee", method="cublas")
                         .double().cpu().numpy(), ref)
    err_tf32 = rel_err(fused(x, w, b, "tf32").double().cpu().numpy(), ref)
    assert err_fused <= 2 * err_cublas + 1e-9
    assert err_fused < err_tf32 / 10  # really more than one TF32 product


def test_default_is_fp32_accurate_and_fused_on_tensor_cores(rng):
    assert _plan.choose(128, 32768, 32768, "float32", None, "auto", 0) == ("fused", "tf32x3")
    assert _plan.choose(128, 32768, 32768, "float32", "ieee", "auto", 0) == ("cublas", "ieee")
    assert _plan.choose(128, 10, 20, "float32", "ieee", "auto", 0) == ("fused", "ieee")
    assert _plan.choose(16384, 1024, 65536, "float32", "tf32", "auto", 0) == ("cublas", "tf32")
    assert _plan.choose(128, 32768, 32768, "float32", None, "cublas", 0) == ("cublas", "ieee")
    with pytest.raises(ValueError, match="precision='tf32x3' is not available with method='cublas'"):
        _plan.choose(128, 64, 64, "float32", "tf32x3", "cublas", 0)


def test_tf32x3_needs_the_fused_method(rng):
    x, w, b = cuda_inputs(rng, (4,), 8, 8, torch.float32)
    with pytest.raises(ValueError, match="use method='fused' or 'auto'"):
        cupy_fused.linear_sigmoid_sum(x, w, b, precision="tf32x3", method="cublas")


@pytest.mark.parametrize("precision", [None, "tf32", "bf16"])
def test_repeated_runs_give_identical_bits(rng, precision):
    x, w, b = cuda_inputs(rng, (300,), 2000, 5000, torch.float32)  # many N tiles: partials + ordered second pass
    first = fused(x, w, b, precision)
    for _ in range(3):
        assert torch.equal(fused(x, w, b, precision), first)


def test_no_b_by_n_allocation(rng):
    B, K, N = 4096, 64, 65536  # B x N fp32 would be 1 GiB
    x, w, b = cuda_inputs(rng, (B,), K, N, torch.float32)
    pool = cp.get_default_memory_pool()
    fused(x, w, b, "tf32")
    torch.cuda.synchronize()
    base, pool_before = torch.cuda.memory_allocated(), pool.used_bytes()
    torch.cuda.reset_peak_memory_stats()
    out = fused(x, w, b, "tf32")
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - base
    allowed = 2**20 + B * (-(-N // 64)) * 4 + out.numel() * 4  # 1 MiB + partials at the narrowest N tile + out
    assert extra <= allowed, (extra, allowed)
    assert pool.used_bytes() <= pool_before + 2**20


def test_64_bit_offsets_with_a_large_weight():
    torch.manual_seed(0)
    B, K, N = 3, 32769, 65536  # W has 2.1e9 elements: offsets past 2^31
    x = torch.randn(B, K, device="cuda")
    w = torch.empty(N, K, device="cuda").uniform_(-K**-0.5, K**-0.5)
    b = torch.empty(N, device="cuda").uniform_(-K**-0.5, K**-0.5)
    ref = torch.zeros(B, 1, dtype=torch.float64, device="cuda")
    for s in range(0, N, 8192):
        z = x.double() @ w[s:s + 8192].double().T + b[s:s + 8192].double()
        ref += torch.sigmoid(z).sum(-1, keepdim=True)
    ref = ref.cpu().numpy()
    for precision in ("tf32", "tf32x3"):
        out = fused(x, w, b, precision)
        assert rel_err(out.double().cpu().numpy(), ref) < 1e-4, precision
