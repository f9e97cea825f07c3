"""The fused one-pass kernel: every precision and dtype on odd shapes under the error budget, tf32x3 within 2x of
cuBLAS fp32's error, bit-identical repeated runs, no B x N allocation, 64-bit offsets, and the method choice."""

import pytest
from helpers import budget, cuda_inputs, exact_reference, rel_err

import cupy_fused
from cupy_fused import loader, planner
from cupy_fused.backends import Problem

pytestmark = pytest.mark.gpu
cp = pytest.importorskip("cupy")
torch = pytest.importorskip("torch")

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
    assert out.shape == batch + (1,) and out.dtype == torch.float32  # tf32x3: as good as strict fp32 (2x budget)
    assert rel_err(out.double().cpu().numpy(), ref) <= budget(x, w, b, precision, ref)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("batch,k,n", ODD)
def test_other_dtypes_within_budget(rng, batch, k, n, dtype):
    x, w, b = cuda_inputs(rng, batch, k, n, dtype)
    ref = exact_reference(x, w, b)
    out = fused(x, w, b)
    assert out.dtype == dtype
    assert rel_err(out.double().cpu().numpy(), ref) <= budget(x, w, b, None, ref)


@pytest.mark.parametrize("precision", FP32_PRECISIONS)
def test_unaligned_views_and_no_bias(rng, precision):
    x, w, b = cuda_inputs(rng, (70,), 515, 333, torch.float32)
    xv = torch.cat([x, x], 1)[:, 1:516]  # base pointer off by 4 bytes, row stride 1030 elements
    wv = torch.cat([w, w], 1)[:, 3:518]
    for bias in (b, None):
        ref = exact_reference(xv, wv, bias) if bias is not None else exact_reference(xv, wv, torch.zeros_like(b))
        out = fused(xv, wv, bias, precision)
        assert rel_err(out.double().cpu().numpy(), ref) <= budget(
            xv, wv, b if bias is not None else torch.zeros_like(b), precision, ref
        )


def test_tf32x3_error_within_twice_cublas_fp32(rng):
    x, w, b = cuda_inputs(rng, (128,), 8192, 2048, torch.float32)
    ref = exact_reference(x, w, b)
    err_fused = rel_err(fused(x, w, b, "tf32x3").double().cpu().numpy(), ref)
    err_cublas = rel_err(
        cupy_fused.linear_sigmoid_sum(x, w, b, precision="ieee", method="cublas").double().cpu().numpy(), ref
    )
    err_tf32 = rel_err(fused(x, w, b, "tf32").double().cpu().numpy(), ref)
    assert err_fused <= 2 * err_cublas + 1e-9
    assert err_fused < err_tf32 / 10  # really more than one TF32 product


def test_default_is_fp32_accurate_and_fused_on_tensor_cores():
    info = loader.device_info(0)

    def first(B, K, N, precision, method="auto"):
        p = Problem(B, K, N, "float32", True, K, K, True, 0, 256 * 2**20)
        c = planner.candidates(p, precision, method, info, False)[0]
        return c.method, c.precision

    assert first(128, 32768, 32768, None) == ("fused", "tf32x3" if info.tensor_cores else "ieee")
    assert first(128, 32768, 32768, "ieee") == ("cublas", "ieee")
    assert first(128, 10, 20, "ieee") == ("fused", "ieee")
    assert first(4, 4096, 4096, "tf32") == ("fused", "ieee")  # the exact small-batch kernel
    assert first(8, 4096, 4096, "tf32") == ("fused", "tf32" if info.arch == "sm_90a" else "ieee")
    assert first(16384, 1024, 65536, "tf32") == ("cublas", "tf32")
    assert first(128, 32768, 32768, None, "cublas") == ("cublas", "ieee")
    p = Problem(128, 64, 64, "float32", True, 64, 64, True, 0, 2**20)
    assert planner.candidates(p, "tf32x3", "cublas", info, False) == []


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
    w = torch.empty(N, K, device="cuda").uniform_(-(K**-0.5), K**-0.5)
    b = torch.empty(N, device="cuda").uniform_(-(K**-0.5), K**-0.5)
    ref = torch.zeros(B, 1, dtype=torch.float64, device="cuda")
    for s in range(0, N, 8192):
        z = x.double() @ w[s : s + 8192].double().T + b[s : s + 8192].double()
        ref += torch.sigmoid(z).sum(-1, keepdim=True)
    ref = ref.cpu().numpy()
    for precision in ("tf32", "tf32x3"):
        out = fused(x, w, b, precision)
        assert rel_err(out.double().cpu().numpy(), ref) < 1e-4, precision
