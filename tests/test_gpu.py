"""GPU backend, both methods (cuBLAS + sigmoid_sum kernel, and the fused kernel): cupy arrays and CUDA torch tensors
against float64, under an error budget of twice torch's own error at the same precision; zero copy; streams; views;
edge cases."""

import pytest
from helpers import budget, cuda_inputs, exact_reference, make_inputs, rel_err, torch_model
from helpers import linear_sigmoid_sum as ref_lss
from helpers import sigmoid_sum as ref_ss

import cupy_fused
from cupy_fused.backends import cublas, fused, small_batch

pytestmark = pytest.mark.gpu
cp = pytest.importorskip("cupy")
torch = pytest.importorskip("torch")

SHAPES = [((1,), 1, 1), ((3,), 5, 7), ((128,), 10, 20), ((257,), 1000, 411), ((2, 3), 17, 9), ((64,), 4099, 300)]
EPS = {torch.float64: 1e-13, torch.float32: 1e-6, torch.float16: 1e-3, torch.bfloat16: 4e-3}
CASES = [
    (torch.float32, "ieee"),
    (torch.float32, "tf32"),
    (torch.float32, "bf16"),
    (torch.float64, None),
    (torch.float16, None),
    (torch.bfloat16, None),
]
METHODS = ["cublas", "fused"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype,precision", CASES)
@pytest.mark.parametrize("batch,k,n", SHAPES)
def test_torch_tensors_within_budget(rng, batch, k, n, dtype, precision, method):
    x, w, b = cuda_inputs(rng, batch, k, n, dtype)
    before = [t.clone() for t in (x, w, b)]
    ref = exact_reference(x, w, b)
    out = cupy_fused.linear_sigmoid_sum(x, w, b, precision=precision, method=method)
    assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.device == x.device
    assert out.shape == batch + (1,)
    assert rel_err(out.double().cpu().numpy(), ref) <= budget(x, w, b, precision, ref)
    for t, c in zip((x, w, b), before):
        assert torch.equal(t, c)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype,precision", [c for c in CASES if c[0] != torch.bfloat16])
@pytest.mark.parametrize("batch,k,n", SHAPES[:5])
def test_cupy_arrays_within_budget(rng, batch, k, n, dtype, precision, method):
    x, w, b = cuda_inputs(rng, batch, k, n, dtype)
    xc, wc, bc = (cp.from_dlpack(t) for t in (x, w, b))
    ref = exact_reference(x, w, b)
    out = cupy_fused.linear_sigmoid_sum(xc, wc, bc, precision=precision, method=method)
    assert isinstance(out, cp.ndarray) and out.dtype == xc.dtype and out.shape == batch + (1,)
    assert rel_err(cp.asnumpy(out), ref) <= budget(x, w, b, precision, ref)


def test_cupys_handle_math_mode_is_neither_read_nor_changed(rng):
    """Our GEMMs are cuBLASLt with the compute type of the call: a TF32 math mode left on CuPy's shared cuBLAS handle
    (what CUPY_TF32=1 does) changes nothing, and we leave the handle as it was."""
    from cupy_backends.cuda.libs import cublas as cupy_cublas

    x, w, b = cuda_inputs(rng, (64,), 4096, 256, torch.float32)
    ref = exact_reference(x, w, b)
    handle = cp.cuda.device.get_cublas_handle()
    tf32_math = 3  # CUBLAS_TF32_TENSOR_OP_MATH (cupy_backends does not name it)
    cupy_cublas.setMathMode(handle, tf32_math)
    try:
        out = cupy_fused.linear_sigmoid_sum(x, w, b, precision="ieee", method="cublas")
        err_ieee = rel_err(out.double().cpu().numpy(), ref)
        assert cupy_cublas.getMathMode(handle) == tf32_math
    finally:
        cupy_cublas.setMathMode(handle, cupy_cublas.CUBLAS_DEFAULT_MATH)
    out = cupy_fused.linear_sigmoid_sum(x, w, b, precision="tf32", method="cublas")
    err_tf32 = rel_err(out.double().cpu().numpy(), ref)
    assert err_ieee < 1e-6 < err_tf32


@pytest.mark.parametrize(
    "method,executable", [("cublas", cublas.TwoPass), ("fused", fused.TileKernel), ("fused", small_batch.SmallBatch)]
)
def test_torch_tensors_pass_without_copies(rng, monkeypatch, method, executable):
    batch = {small_batch.SmallBatch: (2,), fused.TileKernel: (257,), cublas.TwoPass: (33,)}[executable]
    x, w, b = cuda_inputs(rng, batch, 64, 48, torch.float32)
    seen = {}
    real = executable.run

    def spy(self, xp, wp, bp, outp, *args):
        seen.update(x=xp, w=wp, b=bp, out=outp)
        return real(self, xp, wp, bp, outp, *args)

    monkeypatch.setattr(executable, "run", spy)
    cupy_fused.clear_plans()
    out = cupy_fused.linear_sigmoid_sum(x, w, b, method=method)
    cupy_fused.clear_plans()
    assert seen == {"x": x.data_ptr(), "w": w.data_ptr(), "b": b.data_ptr(), "out": out.data_ptr()}


@pytest.mark.parametrize("method", METHODS)
def test_non_default_torch_stream_sees_queued_work(rng, method):
    x, w, b = cuda_inputs(rng, (256,), 512, 384, torch.float32)
    fresh = torch.randn_like(x)
    side = torch.cuda.Stream()
    torch.cuda.synchronize()
    with torch.cuda.stream(side):
        torch.cuda._sleep(20_000_000)  # keep the side stream busy so that a call on another stream would race
        x.copy_(fresh)
        out = cupy_fused.linear_sigmoid_sum(x, w, b, method=method)
    side.synchronize()
    assert rel_err(out.double().cpu().numpy(), exact_reference(fresh, w, b)) < 1e-6


def test_stream_argument_takes_a_torch_stream(rng):
    x, w, b = cuda_inputs(rng, (64,), 128, 96, torch.float32)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.cuda._sleep(20_000_000)
        x2 = x * 2
    out = cupy_fused.linear_sigmoid_sum(x2, w, b, stream=side)
    side.synchronize()
    assert rel_err(out.double().cpu().numpy(), exact_reference(x * 2, w, b)) < 1e-6
    with pytest.raises(TypeError, match="stream must be a torch.cuda.Stream for torch tensors, got cupy"):
        cupy_fused.linear_sigmoid_sum(x, w, b, stream=cp.cuda.Stream())


def test_cupy_current_stream_is_used(rng):
    x, w, b = (cp.asarray(a, cp.float32) for a in make_inputs(rng, (40,), 70, 50))
    with cp.cuda.Stream(non_blocking=True) as s:
        x2 = x + 1
        out = cupy_fused.linear_sigmoid_sum(x2, w, b)
    s.synchronize()
    assert rel_err(cp.asnumpy(out), ref_lss(cp.asnumpy(x2), cp.asnumpy(w), cp.asnumpy(b))) < 1e-6
    with pytest.raises(TypeError, match="stream must be a cupy.cuda.Stream .*for cupy arrays, got torch"):
        cupy_fused.linear_sigmoid_sum(x, w, b, stream=torch.cuda.Stream())


@pytest.mark.parametrize(
    "method,precision",
    [("cublas", "ieee"), ("cublas", "tf32"), ("fused", "ieee"), ("fused", "tf32"), ("fused", "tf32x3")],
)  # cuBLAS has no tf32x3
def test_non_contiguous_inputs(rng, precision, method):
    x, w, b = cuda_inputs(rng, (50,), 300, 200, torch.float32)
    views = {
        "transposed weight": (x, w.T.contiguous().T, b),
        "sliced x": (torch.cat([x, x], 1)[:, ::2], w, b),
        "column-major x": (x.T.contiguous().T, w, b),
        "unaligned offsets": (torch.cat([x, x], 1)[:, 1:301], torch.cat([w, w], 1)[:, 3:303], torch.cat([b, b])[1:201]),
        "strided bias": (x, w, torch.stack([b, b], 1)[:, 0]),
    }
    for name, (xv, wv, bv) in views.items():
        ref = exact_reference(xv, wv, bv)
        out = cupy_fused.linear_sigmoid_sum(xv, wv, bv, precision=precision, method=method)
        peer = "ieee" if precision == "tf32x3" else precision
        assert rel_err(out.double().cpu().numpy(), ref) <= budget(xv, wv, bv, peer, ref), name


def test_chunked_workspace_matches_single_pass(rng):
    x, w, b = cuda_inputs(rng, (17,), 64, 1000, torch.float32)
    whole = cupy_fused.linear_sigmoid_sum(x, w, b, method="cublas")
    for workspace in (4, 17 * 4 * 8, 17 * 4 * 100):  # chunks of 1, 8, and 96 columns (the last one 40 wide)
        chunked = cupy_fused.linear_sigmoid_sum(x, w, b, method="cublas", workspace_bytes=workspace)
        torch.testing.assert_close(chunked, whole, rtol=2e-6, atol=0, msg=f"workspace_bytes={workspace}")


def test_blocks_of_rows_and_columns_match_single_pass(rng):
    """Row blocks of 128 and column blocks of 4096 with tails in both directions (300 x 5000 in a 2 MiB bound)."""
    x, w, b = cuda_inputs(rng, (300,), 40, 5000, torch.float32)
    whole = cupy_fused.linear_sigmoid_sum(x, w, b, method="cublas")
    plan = cupy_fused.plan(x, w, b, method="cublas", workspace_bytes=128 * 4096 * 4)
    assert "into a 128 x 4096 workspace" in plan.explain() and "6 blocks of z" in plan.explain()
    torch.testing.assert_close(plan(x, w, b), whole, rtol=2e-6, atol=0)


@pytest.mark.parametrize("method", METHODS)
def test_edge_cases_like_torch(rng, method):
    def ours(x, w, b):
        return cupy_fused.linear_sigmoid_sum(x, w, b, method=method, precision="ieee")

    x, w, b = cuda_inputs(rng, (0,), 4, 3, torch.float32)
    assert ours(x, w, b).shape == (0, 1)
    x, w, b = cuda_inputs(rng, (3,), 4, 0, torch.float32)
    assert torch.equal(ours(x, w, b), torch.zeros(3, 1, device="cuda"))
    x, w, b = cuda_inputs(rng, (3,), 0, 5, torch.float32)
    torch.testing.assert_close(ours(x, w, b), torch_model(x, w, b, "ieee"))
    x = torch.tensor([[float("nan"), 1.0], [1.0, 2.0], [float("inf"), 0.0], [float("-inf"), 0.0]], device="cuda")
    w = torch.tensor([[1.0, 0.5], [-1.0, 0.25], [2.0, -1.0]], device="cuda")
    b = torch.tensor([0.1, float("inf"), float("-inf")], device="cuda")
    torch.testing.assert_close(ours(x, w, b), torch_model(x, w, b, "ieee"), equal_nan=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("rows,cols,offset", [(1, 1, 0), (7, 33, 1), (4100, 37, 0), (4100, 64, 3), (3, 5000, 2)])
def test_sigmoid_sum_kernel(rng, dtype, rows, cols, offset):
    z_full = torch.from_numpy(3 * rng.standard_normal((rows, cols + offset))).to("cuda", dtype)
    b_full = torch.from_numpy(rng.standard_normal(cols + offset)).to("cuda", dtype)
    z, b = z_full[:, offset:], b_full[offset:]  # offsets break 16-byte alignment: the scalar path
    ref = ref_ss(z.double().cpu().numpy(), b.double().cpu().numpy())
    out = cupy_fused.sigmoid_sum(z, b)
    assert out.dtype == dtype and out.shape == (rows, 1)
    peer = torch.sigmoid(z + b).sum(-1, keepdim=True)
    assert rel_err(out.double().cpu().numpy(), ref) <= 2 * rel_err(peer.double().cpu().numpy(), ref) + EPS[dtype]
    out_nobias = cupy_fused.sigmoid_sum(z)
    assert rel_err(out_nobias.double().cpu().numpy(), ref_ss(z.double().cpu().numpy(), None)) <= EPS[dtype] + (
        2
        * rel_err(torch.sigmoid(z).sum(-1, keepdim=True).double().cpu().numpy(), ref_ss(z.double().cpu().numpy(), None))
    )
