"""Autograd on the GPU: gradients of CUDA tensors against float64 under an error budget of twice torch's own error
at the same precision, strict fp32 backward whatever torch's TF32 flags say, bounded memory during backward,
torch.compile(fullgraph=True) on CUDA, streams, and the plain-array layer on cupy arrays."""

import numpy as np
import pytest
from helpers import grads, make_inputs, rel_err, torch_expression, torch_inputs

pytestmark = pytest.mark.gpu
cp = pytest.importorskip("cupy")
torch = pytest.importorskip("torch")
if not torch.cuda.is_available():  # a CPU build of torch beside a working cupy
    pytest.skip("torch sees no CUDA device", allow_module_level=True)

import cupy_fused.torch as cft  # noqa: E402
from cupy_fused.layer import LinearSigmoidSum as ArrayLayer  # noqa: E402

SHAPES = [((1,), 1, 1), ((3,), 5, 7), ((257,), 100, 41), ((2, 3), 17, 9), ((64,), 4099, 300)]
EPS = {torch.float64: 1e-13, torch.float32: 1e-6, torch.float16: 1e-3, torch.bfloat16: 1e-2}
# float32 None is the forward's default (fp32-accurate: "tf32x3" on tensor-core GPUs), its backward tf32x3 where our
# GEMM runs (sm_90a), strict fp32 elsewhere
CASES = [
    (torch.float32, None),
    (torch.float32, "ieee"),
    (torch.float32, "tf32"),
    (torch.float32, "tf32x3"),
    (torch.float64, None),
    (torch.float16, None),
    (torch.bfloat16, None),
]


class cuda_matmul:
    """torch's fp32 matmul precision for a block ("ieee" or "tf32"), put back exactly as it was afterwards."""

    def __init__(self, precision):
        self.precision = precision

    def __enter__(self):
        m = torch.backends.cuda.matmul
        self.saved = (m.allow_tf32, getattr(m, "fp32_precision", None))
        m.allow_tf32 = self.precision == "tf32"

    def __exit__(self, *exc):
        m = torch.backends.cuda.matmul
        m.allow_tf32 = self.saved[0]
        if self.saved[1] is not None:
            m.fp32_precision = self.saved[1]


def cuda_inputs(rng, batch, k, n, dtype, bias=True):
    return torch_inputs(rng, batch, k, n, dtype, bias, "cuda")


def as_numpy(t):
    return t.double().cpu().numpy()


@pytest.mark.parametrize("dtype,precision", CASES)
@pytest.mark.parametrize("batch,k,n", SHAPES)
def test_cuda_gradients_within_budget(rng, batch, k, n, dtype, precision):
    tensors, g = cuda_inputs(rng, batch, k, n, dtype)
    ref = grads(torch_expression, [t.double() for t in tensors], g.double())
    with cuda_matmul("tf32" if precision == "tf32" else "ieee"):
        peer = grads(torch_expression, tensors, g)  # torch autograd at the same dtype and precision
    ours = grads(lambda *t: cft.linear_sigmoid_sum(*t, precision=precision), tensors, g)
    for name, o, p, r, t in zip(("x", "weight", "bias"), ours, peer, ref, tensors):
        assert o.dtype == dtype and o.shape == t.shape and o.device == t.device, name
        budget = 2 * rel_err(as_numpy(p), as_numpy(r)) + EPS[dtype]
        assert rel_err(as_numpy(o), as_numpy(r)) <= budget, name


@pytest.mark.parametrize("n", [5000, 5001])  # s' rows of whole vectors; an odd row stride (scalar stores)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_saving_forward_in_blocks_of_rows_and_columns(rng, dtype, n):
    """The cuBLAS method's training forward writes sigmoid'(z), in x's dtype, block by block (blocks of rows and
    columns with tails in both directions in a 2 MiB bound): the saved values of one block, and gradients within the
    budget against float64."""
    from cupy_fused.backward import forward

    tensors, g = cuda_inputs(rng, (300,), 40, n, dtype)
    ref = grads(torch_expression, [t.double() for t in tensors], g.double())
    precision = "ieee" if dtype == torch.float32 else None
    x, w, b = (t.detach() for t in tensors)
    whole = forward(x, w, b, precision=precision, method="cublas", save_bytes=2**30)[1]
    blocks = forward(x, w, b, precision=precision, method="cublas", workspace_bytes=128 * 4096 * 4, save_bytes=2**30)[1]
    assert blocks.dtype == dtype and rel_err(as_numpy(blocks), as_numpy(whole)) <= EPS[dtype]  # z's GEMMs may differ
    ours = grads(
        lambda *t: cft.linear_sigmoid_sum(
            *t, method="cublas", precision=precision, workspace_bytes=128 * 4096 * 4, save_bytes=2**30
        ),
        tensors,
        g,
    )
    with cuda_matmul("ieee"):
        peer = grads(torch_expression, tensors, g)
    for name, a, p, r in zip(("x", "weight", "bias"), ours, peer, ref):
        assert rel_err(as_numpy(a), as_numpy(r)) <= 2 * rel_err(as_numpy(p), as_numpy(r)) + EPS[dtype], name


@pytest.mark.parametrize("setting", ["legacy", "new"])
def test_ieee_backward_stays_strict_when_torch_allows_tf32(rng, setting):
    tensors, g = cuda_inputs(rng, (64,), 4096, 256, torch.float32)
    ref = grads(torch_expression, [t.double() for t in tensors], g.double())
    m = torch.backends.cuda.matmul
    saved = (m.allow_tf32, getattr(m, "fp32_precision", None))
    if setting == "new" and saved[1] is None:
        pytest.skip("this torch has no fp32_precision API")
    try:
        if setting == "legacy":
            m.allow_tf32 = True
        else:
            m.fp32_precision = "tf32"
        strict = grads(lambda *t: cft.linear_sigmoid_sum(*t, precision="ieee"), tensors, g)
        fast = grads(lambda *t: cft.linear_sigmoid_sum(*t, precision="tf32"), tensors, g)
        tf32_peer = grads(torch_expression, tensors, g)  # torch itself under the user's TF32 setting
        if setting == "legacy":
            assert m.allow_tf32 is True
        else:
            assert m.fp32_precision == "tf32"
    finally:
        m.allow_tf32 = saved[0]
        if saved[1] is not None:
            m.fp32_precision = saved[1]
    for s, f, p, r in zip(strict, fast, tf32_peer, ref):
        err_strict, err_fast = rel_err(as_numpy(s), as_numpy(r)), rel_err(as_numpy(f), as_numpy(r))
        assert err_strict < 1e-5 < err_fast <= 2 * rel_err(as_numpy(p), as_numpy(r)) + 1e-6


# grad_W on our tf32x3 GEMM at every batch; grad_x up to 128 rows on the small-batch kernel (aligned K: 35, 60 and
# 100 rows), above on X3Gemm reading W as it is (aligned K) or, from X3_GRAD_X_COPY_ROWS, a copy of W.T (unaligned K
# = 67 in between, and K = 33 at 3 rows: strict); one chunk and many (1 MiB workspace, tail chunks: grad_x
# accumulates over them), split-K inside the GEMMs (512 x 256 x 4096: 8 tiles), odd shapes, 3-d x; at
# 100 x 4100 x 2100 grad_W runs on the shallow-reduction kernel in one chunk (256 MiB) and on X3Gemm in 1 MiB chunks
# (too few tiles)
X3_SHAPES = [
    ((3,), 33, 257),
    ((515,), 67, 1031),
    ((515,), 68, 1031),
    ((512,), 256, 4096),
    ((2, 300), 132, 77),
    ((2, 30), 132, 77),
    ((5, 7), 64, 3001),
    ((1030,), 37, 130),
    ((100,), 4100, 2100),
]


@pytest.mark.parametrize("workspace_bytes", [256 * 2**20, 2**20])
@pytest.mark.parametrize("batch,k,n", X3_SHAPES)
def test_tf32x3_backward_within_strict_budget_and_deterministic(rng, batch, k, n, workspace_bytes):
    tensors, g = cuda_inputs(rng, batch, k, n, torch.float32)
    ref = grads(torch_expression, [t.double() for t in tensors], g.double())
    with cuda_matmul("ieee"):
        peer = grads(torch_expression, tensors, g)
    fn = lambda *t: cft.linear_sigmoid_sum(*t, workspace_bytes=workspace_bytes, save_bytes=0)
    ours, again = grads(fn, tensors, g), grads(fn, tensors, g)
    for name, o, a, p, r in zip(("x", "weight", "bias"), ours, again, peer, ref):
        assert rel_err(as_numpy(o), as_numpy(r)) <= 2 * rel_err(as_numpy(p), as_numpy(r)) + EPS[torch.float32], name
        assert torch.equal(o, a), name


def test_tf32x3_backward_runs_our_gemms_on_sm90a():
    from cupy_fused import loader
    from cupy_fused.backward import X3_GRAD_X_COPY_ROWS, _GpuBackward

    if loader.device_info(0).arch != "sm_90a":
        pytest.skip("our tf32x3 GEMM needs wgmma (sm_90a)")
    make = lambda rows, precision, k=68: _GpuBackward(
        rows, k, 1031, "float32", k, k, k % 4 == 0, 1, (True, True, True), precision, 2**20, 0, False
    )
    for rows in (1, 128):  # z rows: 16-byte aligned for both tf32x3 grad_x GEMMs
        small = make(rows, "tf32x3")
        assert small.x3_w and small.x3_x and small.small_x and not small.wt_copy and small.step % 4 == 0
    direct = make(129, "tf32x3")
    assert direct.x3_w and direct.x3_x and not (direct.small_x or direct.wt_copy) and direct.step % 4 == 0
    copied = make(X3_GRAD_X_COPY_ROWS + 3, "tf32x3", 67)
    assert copied.x3_w and copied.x3_x and copied.wt_copy and not copied.small_x
    for strict_x in (make(100, "tf32x3", 67), make(515, "tf32x3", 67)):
        assert strict_x.x3_w and not strict_x.x3_x
    strict = make(100, "ieee")
    assert not (strict.x3_w or strict.x3_x)
    # the tf32x3 recompute fused with sigmoid' for aligned rows; TF32, strict and unaligned: a GEMM, then gz
    assert small.fused_z and direct.fused_z
    assert not (strict.fused_z or make(100, "tf32").fused_z or make(100, "tf32x3", 67).fused_z)
    saved = _GpuBackward(100, 68, 1031, "float32", 68, 68, True, 1, (True, True, True), "tf32x3", 2**20, 0, True)
    assert not saved.fused_z and "z" in saved.offsets
    # grad_W of a shallow batch with many tiles: the shallow kernel, which reads x as it is (no x.T)
    shallow = _GpuBackward(
        100, 4100, 2100, "float32", 4100, 4100, True, 1, (True, True, True), "tf32x3", 2**28, 0, False
    )
    assert shallow.x3_w and not shallow.x_t and "xT" not in shallow.offsets
    assert make(100, "tf32x3").x_t  # 100 x 68 x 1031: too few tiles for it


HALF_SHAPES = [((257,), 100, 41), ((300,), 256, 1031), ((5, 7), 64, 3001), ((130,), 37, 130)]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("workspace_bytes", [256 * 2**20, 2**18])
@pytest.mark.parametrize("batch,k,n", HALF_SHAPES)
def test_half_backward_within_torchs_budget_and_deterministic(rng, dtype, batch, k, n, workspace_bytes):
    """Half GEMMs over x and W as they are, gz rounded once; in a small workspace N takes many chunks and grad_x sums
    them in float32. Saved and recomputed paths both, bit-identical when repeated."""
    tensors, g = cuda_inputs(rng, batch, k, n, dtype)
    ref = grads(torch_expression, [t.double() for t in tensors], g.double())
    peer = grads(torch_expression, tensors, g)
    for save_bytes in (None, 0):
        fn = lambda *t: cft.linear_sigmoid_sum(*t, workspace_bytes=workspace_bytes, save_bytes=save_bytes)
        ours, again = grads(fn, tensors, g), grads(fn, tensors, g)
        for name, o, a, p, r in zip(("x", "weight", "bias"), ours, again, peer, ref):
            assert o.dtype == dtype, name
            budget = 1.25 * rel_err(as_numpy(p), as_numpy(r)) + EPS[dtype] / 10  # a few elements: some slack
            assert rel_err(as_numpy(o), as_numpy(r)) <= budget, name
            assert torch.equal(o, a), name


def test_half_backward_reads_x_and_w_as_they_are():
    """No float32 copies of x, W or the gradients: gz once in the input type (both GEMMs read it, no gz.T), a float32
    grad_x only to sum several chunks of N."""
    from cupy_fused.backward import _GpuBackward

    make = lambda dtype, workspace, need=(True, True, True), saved=False: _GpuBackward(
        300, 256, 1031, dtype, 256, 256, True, 1, need, "ieee", workspace, 0, saved
    )
    for dtype in ("bfloat16", "float16"):
        one, many = make(dtype, 256 * 2**20), make(dtype, 2**20)
        assert one.step >= 1031 and not one.gx_acc and "gx32" not in one.offsets
        assert many.step < 1031 and many.gx_acc and "gx32" in many.offsets
        for exe in (one, many):
            # grad_out is read as passed: no float32 copy of it ("g")
            assert "gz" in exe.offsets and not {"g", "gzT", "x32", "w32", "gw32"} & set(exe.offsets)
        # z (float32), gz (2 bytes) per row and gx32 counted in the bound (beyond it: the sections' 256-byte alignment)
        assert many.offsets["lt"] <= 2**20 + 4 * 300 + 6 * 256  # every section before cuBLASLt's
        bias_only = make(dtype, 2**20, (False, False, True), saved=True)
        assert not {"gz", "gzT", "gx32"} & set(bias_only.offsets)  # grad_b alone: column sums only


def test_backward_memory_stays_bounded():
    """B * N * 4 = 1 GiB would be the (B, N) intermediate; the backward may hold the gradients it returns plus a few
    workspaces, nothing of size B x N."""
    batch, k, n, workspace = 4096, 256, 65536, 16 * 2**20
    torch.manual_seed(0)
    x = torch.randn(batch, k, device="cuda", requires_grad=True)
    w = (torch.rand(n, k, device="cuda") * 2 - 1).div_(k**0.5).requires_grad_(True)
    b = torch.zeros(n, device="cuda", requires_grad=True)
    out = cft.linear_sigmoid_sum(x, w, b, workspace_bytes=workspace)
    g = torch.randn_like(out)
    warm = torch.ones(8, 8, device="cuda", requires_grad=True)
    (warm @ warm).sum().backward()  # torch's cuBLAS workspace for the autograd thread: allocated once, not ours
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out.backward(g)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    grad_bytes = 4 * (batch * k + n * k + n)
    assert peak <= grad_bytes + 2 * workspace + 40 * 2**20, (peak, grad_bytes)
    assert peak < batch * n * 4 / 8, (peak, grad_bytes)
    ref = grads(torch_expression, (x[:64].double(), w.double(), b.double()), g[:64].double())
    assert rel_err(as_numpy(x.grad[:64]), as_numpy(ref[0])) < 1e-5


def test_forward_and_backward_follow_torchs_current_stream(rng):
    tensors, g = cuda_inputs(rng, (256,), 512, 384, torch.float32)
    x, w, b = (t.requires_grad_(True) for t in tensors)
    ref = grads(torch_expression, (x.double(), w.double(), b.double()), g.double())
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.cuda._sleep(20_000_000)  # a call on another stream would race with this one
        x2 = x * 1.0
        (cft.linear_sigmoid_sum(x2, w, b) * g).sum().backward()
    torch.cuda.current_stream().wait_stream(side)
    for got, expected in zip((x.grad, w.grad, b.grad), ref):
        assert rel_err(as_numpy(got), as_numpy(expected)) < 1e-5


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # torch's own
def test_torch_compile_fullgraph_on_cuda(rng):
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Tanh(), cft.LinearSigmoidSum(32, 48)).cuda()
    x = torch.randn(16, 3, 64, device="cuda", requires_grad=True)
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(x)
    (out**2).sum().backward()
    got = [x.grad] + [p.grad for p in model.parameters()]
    for t in [x] + list(model.parameters()):
        t.grad = None
    expected = model(x)
    (expected**2).sum().backward()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    for a, e in zip(got, [x.grad] + [p.grad for p in model.parameters()]):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["auto", "fused", "cublas"])
def test_module_on_cuda_loads_nn_linear(rng, method):
    lin = torch.nn.Linear(300, 70, device="cuda")
    ours = cft.LinearSigmoidSum(300, 70, device="cuda", method=method)
    ours.load_state_dict(lin.state_dict())
    x = torch.randn(33, 300, device="cuda", requires_grad=True)
    torch.testing.assert_close(ours(x), torch_expression(x, lin.weight, lin.bias).detach(), rtol=1e-5, atol=1e-4)
    ours(x).sum().backward()
    assert x.grad.shape == x.shape and ours.weight.grad.shape == (70, 300) and ours.bias.grad.shape == (70,)


# ------------------------------------------------------------------------------------------ plain-array layer on GPU


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_array_layer_on_cuda_matches_the_numpy_layer(rng, dtype):
    host = ArrayLayer(100, 41, dtype=dtype, seed=3)
    device = ArrayLayer(100, 41, dtype=dtype, seed=3, device="cuda")
    small = ArrayLayer(100, 41, dtype=dtype, seed=3, device=0, workspace_bytes=257 * 4 * 8)
    assert isinstance(device.weight, cp.ndarray) and device.device == "cuda:0"
    x = rng.standard_normal((257, 100)).astype(dtype)
    g = rng.standard_normal((257, 1)).astype(dtype)
    tol = {"float16": 2e-3, "float32": 1e-5, "float64": 1e-12}[dtype]
    assert rel_err(cp.asnumpy(device(cp.asarray(x))), host(x)) < tol
    expected = host.grad(x, g)
    for layer in (device, small):
        for got, want in zip(layer.grad(cp.asarray(x), cp.asarray(g)), expected):
            assert isinstance(got, cp.ndarray) and got.dtype == dtype
            assert rel_err(cp.asnumpy(got), want) < tol


def test_array_layer_gpu_gradients_against_float64_and_precision(rng):
    x64, w64, b64 = make_inputs(rng, (64,), 4096, 256)
    g64 = rng.standard_normal((64, 1))
    layer64 = ArrayLayer(4096, 256, dtype="float64", seed=0)
    layer64.load_state_dict({"weight": w64, "bias": b64})
    ref = layer64.grad(x64, g64)
    errors = {}
    for precision in (None, "ieee", "tf32"):
        layer = ArrayLayer(4096, 256, seed=0, device="cuda", precision=precision)
        layer.load_state_dict({"weight": w64.astype(np.float32), "bias": b64.astype(np.float32)})
        got = layer.grad(cp.asarray(x64, cp.float32), cp.asarray(g64, cp.float32))
        errors[precision] = max(rel_err(cp.asnumpy(a), r) for a, r in zip(got, ref))
    assert max(errors[None], errors["ieee"]) < 1e-5 < errors["tf32"] < 1e-2, errors


def test_array_layer_moves_between_devices_and_loads_cuda_tensors(rng):
    layer = ArrayLayer(20, 10, seed=0)
    weight = layer.weight.copy()
    assert layer.to("cuda") is layer and isinstance(layer.weight, cp.ndarray) and layer.device == "cuda:0"
    np.testing.assert_array_equal(cp.asnumpy(layer.weight), weight)
    lin = torch.nn.Linear(20, 10, device="cuda")
    layer.load_state_dict(lin.state_dict())
    x = rng.standard_normal((5, 20)).astype(np.float32)
    expected = torch_expression(torch.from_numpy(x).cuda(), lin.weight, lin.bias).detach().cpu().numpy()
    np.testing.assert_allclose(cp.asnumpy(layer(cp.asarray(x))), expected, rtol=1e-5)
    layer.to("cpu")
    assert isinstance(layer.weight, np.ndarray)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5)
    with pytest.raises(TypeError, match="x must be a numpy array on cpu"):
        layer(cp.asarray(x))


@pytest.mark.parametrize(
    "dtype,precision",
    [
        (torch.float32, None),
        (torch.float32, "tf32"),
        (torch.float64, None),
        (torch.float16, None),
        (torch.bfloat16, None),
    ],
)
@pytest.mark.parametrize("batch,k,n", [((5,), 300, 1001), ((300,), 257, 513), ((300,), 260, 513)])
def test_saved_and_recomputed_backward_agree_on_cuda(rng, dtype, precision, batch, k, n):
    tensors, g = cuda_inputs(rng, batch, k, n, dtype)
    ref = grads(torch_expression, [t.double() for t in tensors], g.double())
    saved = grads(lambda *t: cft.linear_sigmoid_sum(*t, precision=precision), tensors, g)
    recomputed = grads(lambda *t: cft.linear_sigmoid_sum(*t, precision=precision, save_bytes=0), tensors, g)
    with cuda_matmul("tf32" if precision == "tf32" else "ieee"):
        peer = grads(torch_expression, tensors, g)
    for name, s, r, p, e in zip(("x", "weight", "bias"), saved, recomputed, peer, ref):
        budget = 2 * rel_err(as_numpy(p), as_numpy(e)) + EPS[dtype]
        assert rel_err(as_numpy(s), as_numpy(e)) <= budget, name
        assert rel_err(as_numpy(r), as_numpy(e)) <= budget, name


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_saved_path_holds_sigmoid_prime_and_no_more(dtype):
    """B x N in x's dtype (64 MiB in float32, 32 in bf16) fits the default budget: the forward keeps exactly that
    block, and the backward adds its gradients and a workspace of at most workspace_bytes (the (B, chunk) block) and
    cuBLASLt's own (at most 32 MiB)."""
    torch.manual_seed(0)
    batch, k, n = 2048, 256, 8192
    item = dtype.itemsize
    x = torch.randn(batch, k, device="cuda", dtype=dtype, requires_grad=True)
    w = (torch.rand(n, k, device="cuda", dtype=dtype) * 2 - 1).div_(k**0.5).requires_grad_(True)
    b = torch.zeros(n, device="cuda", dtype=dtype, requires_grad=True)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    out = cft.linear_sigmoid_sum(x, w, b)
    torch.cuda.synchronize()
    kept = torch.cuda.memory_allocated() - before - out.numel() * item
    assert batch * n * item <= kept <= batch * n * item + 2**20, kept
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out.backward(torch.ones_like(out))
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    grad_bytes = item * (batch * k + n * k + n)
    assert peak <= grad_bytes + cft.DEFAULT_WORKSPACE_BYTES + 32 * 2**20, (peak, grad_bytes)


@pytest.mark.parametrize("dtype,precision", [c for c in CASES if c[1] not in ("tf32", "tf32x3")])
@pytest.mark.parametrize("k,n", [(257, 513), (256, 512)])  # unaligned rows; 16-byte aligned (sm_90a's fused paths)
@pytest.mark.parametrize("saved", [False, True])
def test_strided_and_expanded_grad_out_read_as_passed(rng, dtype, precision, k, n, saved):
    """The backward reads grad_out in its dtype and row stride (bw::sigmoid_grad; a float32 copy only for the fused
    recompute): a column of a wider block (stride 3) and an expanded one (stride 0) give the bits of their contiguous
    copies."""
    from cupy_fused import backward

    (x, w, b), g = cuda_inputs(rng, (300,), k, n, dtype)
    s = backward.forward(x, w, b, precision=precision, save_bytes=2**40)[1] if saved else None
    assert (s is not None) == saved
    wide = torch.randn(300, 3, device="cuda", dtype=dtype)
    for g_view in (wide[:, 1:2], torch.full((1, 1), 0.75, device="cuda", dtype=dtype).expand(300, 1)):
        assert g_view.stride(0) in (3, 0)
        strided = backward.grad(x, w, b, g_view, precision=precision, saved=s)
        contiguous = backward.grad(x, w, b, g_view.contiguous(), precision=precision, saved=s)
        for name, a, c in zip(("x", "weight", "bias"), strided, contiguous):
            assert torch.equal(a, c), name
