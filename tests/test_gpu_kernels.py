"""The kernel families, forced configuration by configuration: the small-batch kernel (batch tiles, splits of K) and
the tile kernels with split-K, against float64 under the error budget at odd shapes and unaligned views, with
bit-identical repeats and graph replays (the in-launch hand-over resets its flags); each saving instance (a training
forward) with the same sums and sigmoid'(z) as accurate as torch's; and the tuner picking a valid candidate and
keeping it."""

import dataclasses

import pytest
from helpers import GPU_EPS, budget, cuda_inputs, exact_reference, rel_err, torch_linear

import cupy_fused
from cupy_fused import loader, tune
from cupy_fused.backends import Problem, fused, sm90, small_batch
from cupy_fused.gemm.kernel import SWAPPED_BN, GemmKernel
from cupy_fused.gemm.operands import OPERANDS

pytestmark = pytest.mark.gpu
cp = pytest.importorskip("cupy")
torch = pytest.importorskip("torch")

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def problem_of(x, w, b):
    item = x.element_size()
    aligned = all(t.data_ptr() % 16 == 0 and (t.stride(0) * item) % 16 == 0 for t in (x, w))
    dtype = str(x.dtype).removeprefix("torch.")
    return Problem(
        x.shape[0],
        x.shape[1],
        w.shape[0],
        dtype,
        b is not None,
        x.stride(0),
        w.stride(0),
        aligned,
        x.device.index,
        256 * 2**20,
    )


def run(exe, x, w, b, saved=None):
    out = torch.full((x.shape[0],), float("nan"), device="cuda", dtype=x.dtype)
    ws = torch.empty(max(exe.workspace_bytes, 1), dtype=torch.uint8, device="cuda")
    exe.run(
        x.data_ptr(),
        w.data_ptr(),
        0 if b is None else b.data_ptr(),
        out.data_ptr(),
        ws.data_ptr() if exe.workspace_bytes else 0,
        torch.cuda.current_stream().cuda_stream,
        0 if saved is None else saved.data_ptr(),
    )
    return out.unsqueeze(1)


def dsigmoid(z):
    e = torch.exp(-z.double().abs())
    return e / (1 + e) ** 2


def check(make, p, x, w, b, precision):
    """make(problem) -> executable. The plain instance: float64 under the budget, bit-identical on a repeat. The
    saving one (p.saves): the same sums, and sigmoid'(z) within twice the error of torch's z at the peer precision."""
    exe = make(p)
    out = run(exe, x, w, b)
    ref = exact_reference(x, w, b)
    assert not torch.isnan(out).any()
    assert rel_err(out.double().cpu().numpy(), ref) <= budget(x, w, b, precision, ref)
    assert torch.equal(run(exe, x, w, b), out)  # bit-identical
    saved = torch.full((x.shape[0], w.shape[0]), float("nan"), device="cuda", dtype=x.dtype)  # in x's dtype
    assert torch.equal(run(make(dataclasses.replace(p, saves=True)), x, w, b, saved), out)
    exact = dsigmoid(torch_linear(*(None if t is None else t.double() for t in (x, w, b))))
    peer = dsigmoid(torch_linear(x, w, b, "ieee" if precision in (None, "tf32x3") else precision))
    dtype = str(x.dtype).removeprefix("torch.")
    assert rel_err(saved.double().cpu(), exact.cpu()) <= 2 * rel_err(peer.double().cpu(), exact.cpu()) + GPU_EPS[dtype]


def unaligned(t, offset=1):
    """The same values at an address and row stride that are not 16-byte aligned (a view into a wider array)."""
    return torch.cat([t[:, :offset], t], 1)[:, offset:]


def nan_padded(t):
    """The same values in rows padded to 16-byte multiples with NaN (a view): a kernel that reads past K fails."""
    k = t.shape[1]
    wide = torch.full((t.shape[0], -(-k // 4) * 4 + 4), float("nan"), device=t.device, dtype=t.dtype)
    wide[:, :k] = t
    return wide[:, :k]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [1, 3, 31, 33])
def test_small_batch_kernel_at_odd_shapes(rng, dtype, batch):
    x, w, b = cuda_inputs(rng, (batch,), 1001, 777, dtype)
    p = problem_of(x, w, b)
    for bt in small_batch.BATCH_TILES[p.dtype]:
        for splits in (1, 3):
            check(lambda p: small_batch.SmallBatch(p, bt, splits), p, x, w, b, None)
    xv, wv = unaligned(x), unaligned(w, 3)
    pv = problem_of(xv, wv, None)
    assert not pv.aligned
    check(lambda p: small_batch.SmallBatch(p, small_batch.BATCH_TILES[pv.dtype][-1], 2), pv, xv, wv, None, None)


@pytest.mark.parametrize(
    "precision,batch",
    # One output value's error is one draw: the budget of twice torch's is meaningful for the reduced precisions
    # only over many rows.
    [(p, b) for p in ("ieee", "tf32x3") for b in (1, 33, 129)]
    + [(p, b) for p in ("tf32", "bf16") for b in (33, 129)]
    + [("tf32x3", 64), ("tf32", 64)]  # a full 64-row tile
    + [("tf32x3", b) for b in (3, 16, 31)]
    + [("tf32", b) for b in (3, 31)]  # the small-batch wgmma kernel's batch widths 8, 16, 32, 64
    + [("tf32x3", 97), ("tf32", 128)],  # and 128
)
def test_tile_kernels_with_split_k(rng, precision, batch):
    x, w, b = cuda_inputs(rng, (batch,), 1001, 300, torch.float32)
    info = loader.device_info(0)
    # odd K in contiguous rows, unaligned views, and 16-byte aligned rows (the wgmma kernels) with NaN past K
    for xs, ws_ in ((x, w), (unaligned(x), unaligned(w, 2)), (nan_padded(x), nan_padded(w))):
        p = problem_of(xs, ws_, b)
        for cfg in fused.tile_configs("float32", precision, batch, info.tensor_cores, info.arch == "sm_90a", p.aligned):
            for splits in (1, 3, 7):
                check(lambda p: fused.tile_kernel(p, cfg, splits), p, xs, ws_, b, precision)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_tile_kernels_other_dtypes_with_split_k(rng, dtype):
    x, w, b = cuda_inputs(rng, (70,), 515, 333, dtype)
    p = problem_of(x, w, b)
    info = loader.device_info(0)
    for cfg in fused.tile_configs(p.dtype, "ieee", 70, info.tensor_cores, info.arch == "sm_90a", p.aligned):
        for splits in (1, 2, 5):
            check(lambda p: fused.tile_kernel(p, cfg, splits), p, x, w, b, None)


def rows16(t):
    """The same values in rows padded to 16 bytes plus 16 more, with NaN past K (a view): what TMA reads past K must
    come back as zeros."""
    k, per16 = t.shape[1], 16 // t.element_size()
    wide = torch.full((t.shape[0], -(-k // per16) * per16 + per16), float("nan"), device=t.device, dtype=t.dtype)
    wide[:, :k] = t
    return wide[:, :k]


def core_kernel(spec, stream, blocks=None):
    """make(problem) for check(): the core's executable of spec (stream-K or whole tiles, at most ``blocks`` blocks),
    saving sigmoid' where the problem does."""
    return lambda p: GemmKernel(
        dataclasses.replace(spec, save=p.saves), p.rows, p.n, p.k, p.ldx, p.ldw, 0, stream, blocks
    )


# The GEMM core's forward for every operand type: the swapped form at every batch tile that holds the batch, the
# forward tiles from 65 rows, whole tiles and stream-K on every SM, 3 and 7 blocks (whole tiles then stream-K of the
# rest; one tile of 1 x 4096 x 100 cut into 16 parts), odd K and N in rows padded with NaN, one or several out and
# red tiles; the plain and the saving instance (check()).
@pytest.mark.parametrize("name", list(OPERANDS))
@pytest.mark.parametrize(
    "batch,k,n",
    [
        (1, 1001, 777),
        (1, 4096, 100),
        (7, 64, 300),
        (33, 1001, 2000),
        (100, 513, 3001),
        (129, 1001, 513),
        (300, 260, 1100),
    ],
)
def test_gemm_core_forward(rng, name, batch, k, n):
    if loader.device_info(0).arch != "sm_90a":
        pytest.skip("the GEMM core needs wgmma (sm_90a)")
    operand = OPERANDS[name]
    x, w, b = cuda_inputs(rng, (batch,), k, n, getattr(torch, operand.dtype))
    x, w = rows16(x), rows16(w)
    p = problem_of(x, w, b)
    found = sm90.specs(p, operand.precision)
    assert found and p.aligned
    swapped = [dataclasses.replace(found[0], bn=bn) for bn in SWAPPED_BN if bn > found[0].bn and found[0].swapped]
    for spec in found + swapped:
        for stream, blocks in ((False, None), (True, None), (True, 3), (True, 7)):
            check(core_kernel(spec, stream, blocks), p, x, w, b, operand.precision)


def test_split_k_graph_replays_reset_the_flags(rng):
    x, w, b = cuda_inputs(rng, (130,), 2048, 600, torch.float32)
    p = problem_of(x, w, b)
    cfg = fused.tile_configs("float32", "tf32x3", 130, True, loader.arch_of(0) == "sm_90a", True)[0]
    exe = fused.TileKernel(p, cfg, 4)
    sb = small_batch.SmallBatch(problem_of(x[:5], w, b), 8, 4)
    # the small-batch wgmma kernel where it runs (its tensor maps are kernel parameters: captured by value)
    sbw_cfg = fused.tile_configs("float32", "tf32x3", 20, True, loader.arch_of(0) == "sm_90a", True)[0]
    sbw = fused.tile_kernel(problem_of(x[:20], w, b), sbw_cfg, 4)
    # the GEMM core on 7 blocks, 10 tiles (5 red tiles): 7 whole, the last 3 stream-K; both kinds of arrival counters
    # must be back at zero after a launch
    xh, wh, bh = (t.bfloat16() for t in (x, w, b))
    core_spec = sm90.specs(problem_of(xh, wh, bh), None)[-1]
    core = core_kernel(core_spec, True, 7)(problem_of(xh, wh, bh))
    assert core.streamed == 3
    run(exe, x, w, b)
    run(sb, x[:5], w, b)
    run(sbw, x[:20], w, b)
    run(core, xh, wh, bh)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = run(exe, x, w, b)
        out_small = run(sb, x[:5], w, b)
        out_sbw = run(sbw, x[:20], w, b)
        out_core = run(core, xh, wh, bh)
    for _ in range(3):
        x.copy_(torch.randn_like(x))
        xh.copy_(x)
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(out, run(exe, x, w, b)) and torch.equal(out_small, run(sb, x[:5], w, b))
        assert torch.equal(out_sbw, run(sbw, x[:20], w, b)) and torch.equal(out_core, run(core, xh, wh, bh))
        ref = exact_reference(x, w, b)
        assert rel_err(out.double().cpu().numpy(), ref) <= budget(x, w, b, "tf32x3", ref)


def test_the_tuner_picks_a_valid_candidate_and_keeps_it(rng, tmp_path, monkeypatch):
    monkeypatch.setenv("CUPY_FUSED_CACHE_DIR", str(tmp_path))
    tune.forget()
    x, w, b = cuda_inputs(rng, (24,), 1000, 3000, torch.float32)
    plan = cupy_fused.plan(x, w, b, tune=True)
    assert "chosen by: tuned now" in plan.explain()
    ref = exact_reference(x, w, b)
    assert rel_err(plan(x, w, b).double().cpu().numpy(), ref) <= budget(x, w, b, None, ref)
    assert list(tmp_path.glob("tuning-*.json"))
    tune.forget()
    again = cupy_fused.plan(x[:20], w, b, tune=True)  # the same shape class: the stored choice, no timing
    assert "chosen by: tuning cache" in again.explain()
    cupy_fused.clear_plans()
    tune.forget()


# The backward's tf32x3 GEMM alone: both layouts of b, split-K (one tile, K = 4096), blocks that walk several tiles
# (2048 x 2048: 256 tiles on the SMs), odd M, N and K (16-byte aligned rows: strides padded to multiples of 4).
@pytest.mark.parametrize("b_kmajor", [True, False])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (3, 5, 7), (129, 131, 67), (128, 128, 4096), (2048, 2048, 64)])
def test_x3_gemm_against_float64_and_deterministic(rng, b_kmajor, m, n, k):
    if loader.device_info(0).arch != "sm_90a":
        pytest.skip("the tf32x3 GEMM needs wgmma (sm_90a)")

    def padded(rows, cols):
        return torch.from_numpy(rng.standard_normal((rows, -(-cols // 4) * 4), dtype="float32")).cuda()[:, :cols]

    a, b = padded(m, k), (padded(n, k) if b_kmajor else padded(k, n))
    c0 = torch.from_numpy(rng.standard_normal((m, n), dtype="float32")).cuda()
    ref = c0.double() + a.double() @ (b.double().T if b_kmajor else b.double())
    gemm = fused.X3Gemm(m, n, k, a.stride(0), b.stride(0), n, 0, b_kmajor=b_kmajor)
    ws = torch.empty(max(gemm.workspace_bytes, 1), dtype=torch.uint8, device="cuda")
    outs = []
    for _ in range(2):
        c = c0.clone()
        gemm.run(a.data_ptr(), b.data_ptr(), c.data_ptr(), ws.data_ptr(), torch.cuda.current_stream().cuda_stream, True)
        outs.append(c)
    strict = c0.double() + (a @ (b.T if b_kmajor else b)).double()  # torch fp32 (TF32 off by default)
    err, err_strict = (rel_err(t.cpu().numpy(), ref.cpu().numpy()) for t in (outs[0], strict))
    assert err <= 2 * err_strict + 1e-7  # tf32x3 drops lo * lo: a few 1e-8 beyond strict's where K is tiny
    assert torch.equal(outs[0], outs[1])


# The shallow-reduction tf32x3 GEMM (grad_W at small batches): odd M, N and K (a's padding columns hold NaN: values
# past K must not be read into the sums), bt with a padded row stride, one column block and many (2048 x 2048: 16
# column blocks over the SMs' runs of tiles), K = 1 and K = 128.
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (3, 5, 7), (129, 131, 67), (130, 260, 33), (2048, 2048, 128)])
def test_shallow_gemm_against_float64_and_deterministic(rng, m, n, k):
    if loader.device_info(0).arch != "sm_90a":
        pytest.skip("the shallow GEMM needs wgmma (sm_90a)")
    k4 = -(-k // 4) * 4
    a = torch.full((m, k4), float("nan"), device="cuda")
    a[:, :k] = torch.from_numpy(rng.standard_normal((m, k), dtype="float32")).cuda()
    bt = torch.from_numpy(rng.standard_normal((k, n + 3), dtype="float32")).cuda()[:, :n]
    ref = a[:, :k].double() @ bt.double()
    gemm = fused.ShallowGemm(m, n, k, a.stride(0), bt.stride(0), n, 0)
    outs = []
    for _ in range(2):
        c = torch.full((m, n), float("nan"), device="cuda")
        gemm.run(a.data_ptr(), bt.data_ptr(), c.data_ptr(), 0, torch.cuda.current_stream().cuda_stream)
        outs.append(c)
    strict = (a[:, :k] @ bt).double()  # torch fp32 (TF32 off by default)
    err, err_strict = (rel_err(t.cpu().numpy(), ref.cpu().numpy()) for t in (outs[0], strict))
    assert err <= 2 * err_strict + 1e-7
    assert torch.equal(outs[0], outs[1])


# The small-batch grad_x GEMM (c = gz . W with W as it is): odd batches on both tiles (BP = 64: 1, 7, 64; 128: 65,
# 128), odd N and K, padding columns of gz and W holding NaN (not to be read), split-K over N (300 columns: 3 tiles),
# accumulate (c += gz . W).
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 130, 260), (64, 33, 129), (65, 20000, 300), (128, 4100, 2100)])
def test_small_batch_grad_x_against_float64_and_deterministic(rng, m, k, n):
    if loader.device_info(0).arch != "sm_90a":
        pytest.skip("the small-batch grad_x GEMM needs wgmma (sm_90a)")
    lda, ldb = -(-k // 4) * 4 + 4, -(-n // 4) * 4 + 4
    a = torch.full((m, lda), float("nan"), device="cuda")
    a[:, :k] = torch.from_numpy(rng.standard_normal((m, k), dtype="float32")).cuda()
    b = torch.full((k, ldb), float("nan"), device="cuda")
    b[:, :n] = torch.from_numpy(rng.standard_normal((k, n), dtype="float32")).cuda()
    ref = a[:, :k].double() @ b[:, :n].double()
    gemm = fused.SmallBatchGradX(m, n, k, lda, ldb, n, 0)
    ws = torch.empty(gemm.workspace_bytes, dtype=torch.uint8, device="cuda")
    stream = torch.cuda.current_stream().cuda_stream
    outs = []
    for _ in range(2):
        c = torch.full((m, n), float("nan"), device="cuda")
        gemm.run(a.data_ptr(), b.data_ptr(), c.data_ptr(), ws.data_ptr(), stream)
        outs.append(c)
    twice = outs[1].clone()
    gemm.run(a.data_ptr(), b.data_ptr(), twice.data_ptr(), ws.data_ptr(), stream, accumulate=True)
    strict = (a[:, :k] @ b[:, :n]).double()  # torch fp32 (TF32 off by default)
    err, err_twice, err_strict = (
        rel_err(t.cpu().numpy(), r.cpu().numpy()) for t, r in ((outs[0], ref), (twice, 2 * ref), (strict, ref))
    )
    assert max(err, err_twice) <= 2 * err_strict + 1e-7
    assert torch.equal(outs[0], outs[1])
