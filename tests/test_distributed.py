"""cupy_fused.torch's sharded op and module across processes (torch.multiprocessing spawn, one process per rank):
gloo with CPU tensors in two processes on localhost, a world of one on a GPU (`gpu`) and NCCL with one process per
GPU (`multigpu`, its shape from $CUPY_FUSED_MULTIGPU_SHAPE="B,K,N"). Each rank compares the result and the
gradients (grad_x, and its rows of grad_weight and grad_bias) with the unsharded op's on the same inputs and hands
back the relative errors; shard_rows; ShardedLinearSigmoidSum loading a full nn.Linear state_dict."""

import json
import math
import os

import pytest
from helpers import grads, torch_expression

torch = pytest.importorskip("torch")
cft = pytest.importorskip("cupy_fused.torch")

import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

TOLERANCE = {"torch.float64": 1e-12, "torch.float32": 1e-5}
# (leading shape of x, K, N, dtype, bias); N = 1 leaves the second of two ranks no rows
CPU_CASES = [
    ((6,), 9, 7, torch.float64, True),
    ((2, 3), 5, 4, torch.float32, False),
    ((5,), 3, 1, torch.float64, True),
    ((16,), 40, 33, torch.float32, True),
]


# ------------------------------------------------------------------------------------------------- what a rank runs


def _rel_err(ours, ref) -> float:
    """helpers.rel_err computed where the tensors are (big gradients stay on their GPU): ||ours - ref|| / ||ref||,
    the norms in float64."""
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    ours, ref = ours.detach(), ref.detach()
    norm = torch.linalg.vector_norm(ref, dtype=torch.float64).clamp_min(1e-300)
    return float(torch.linalg.vector_norm(ours - ref, dtype=torch.float64) / norm)


def _errors(named_pairs) -> dict:
    return {name: _rel_err(ours, ref) for name, ours, ref in named_pairs}


def _shared_inputs(batch, k, n, dtype, bias, device):
    """(x, w, b) as nn.Linear initializes them and the output gradient g, drawn on the device (big shapes fit) and
    broadcast from rank 0, so that every rank holds the same."""
    generator = torch.Generator(device).manual_seed(0)
    bound = 1 / math.sqrt(k) if k else 1.0
    x = torch.randn(batch + (k,), generator=generator, device=device, dtype=dtype)
    w = torch.rand((n, k), generator=generator, device=device, dtype=dtype) * (2 * bound) - bound
    b = torch.rand(n, generator=generator, device=device, dtype=dtype) * (2 * bound) - bound if bias else None
    g = torch.randn(batch + (1,), generator=generator, device=device, dtype=dtype)
    for t in (x, w, b, g):
        if t is not None:
            dist.broadcast(t, src=0)
    return (x, w, b), g


def _op_errors(rank, world, device, batch, k, n, dtype, bias) -> dict:
    """The sharded op against the unsharded one: result and gradients."""
    (x, w, b), g = _shared_inputs(batch, k, n, dtype, bias, device)
    rows = cft.shard_rows(n, rank, world)
    shard = (x, w[rows], None if b is None else b[rows])
    out = cft.sharded_linear_sigmoid_sum(*shard)
    ref = cft.linear_sigmoid_sum(x, w, b)
    ours = grads(cft.sharded_linear_sigmoid_sum, shard, g)
    full = grads(cft.linear_sigmoid_sum, (x, w, b), g)
    pairs = [("out", out, ref), ("grad_x", ours[0], full[0]), ("grad_weight", ours[1], full[1][rows])]
    if b is not None:
        pairs.append(("grad_bias", ours[2], full[2][rows]))
    return {"dtype": str(out.dtype), "shape": list(out.shape), "errors": _errors(pairs)}


def _module_errors(rank, world, device) -> dict:
    """ShardedLinearSigmoidSum loaded from a full nn.Linear, and again from its own (sharded) state_dict, against
    torch's expression on that nn.Linear, forward and backward."""
    torch.manual_seed(0)  # the same nn.Linear, x and g on every rank: drawn on the CPU, before the ranks' shards
    linear = torch.nn.Linear(12, 11, dtype=torch.float64).to(device)
    x, g = (torch.randn(5, size, dtype=torch.float64).to(device) for size in (12, 1))
    module = cft.ShardedLinearSigmoidSum(12, 11, dtype=torch.float64, device=device)
    module.load_state_dict(linear.state_dict())
    rows = cft.shard_rows(11, rank, world)
    copy = cft.ShardedLinearSigmoidSum(12, 11, dtype=torch.float64, device=device)
    copy.load_state_dict(module.state_dict())
    (module(x) * g).sum().backward()
    (torch_expression(x, linear.weight, linear.bias) * g).sum().backward()
    pairs = [
        ("out", copy(x), torch_expression(x, linear.weight, linear.bias)),
        ("weight", module.weight, linear.weight[rows]),
        ("bias", module.bias, linear.bias[rows]),
        ("grad_weight", module.weight.grad, linear.weight.grad[rows]),
        ("grad_bias", module.bias.grad, linear.bias.grad[rows]),
    ]
    return {"rows": [rows.start, rows.stop], "repr": repr(module), "errors": _errors(pairs)}


def _rank_main(rank, world, backend, cases, folder):
    device = "cpu"
    if backend == "nccl":
        torch.cuda.set_device(rank)
        device = f"cuda:{rank}"
    # a rendezvous file, not a port picked beforehand that another process could take in between
    rendezvous = f"file://{os.path.join(folder, 'rendezvous')}"
    dist.init_process_group(backend, init_method=rendezvous, rank=rank, world_size=world)
    try:
        report = {"cases": [_op_errors(rank, world, device, *case) for case in cases]}
        report["module"] = _module_errors(rank, world, device)
    finally:
        dist.destroy_process_group()
    with open(os.path.join(folder, f"rank{rank}.json"), "w") as f:
        json.dump(report, f)


def run_ranks(backend, world, cases, folder) -> list[dict]:
    """Spawns ``world`` processes that run ``cases`` on ``backend``; each rank's report, in rank order."""
    mp.spawn(_rank_main, args=(world, backend, cases, str(folder)), nprocs=world)
    return [json.loads((folder / f"rank{rank}.json").read_text()) for rank in range(world)]


def check_cases(reports, cases):
    for report in reports:
        for (batch, _, _, dtype, _), case in zip(cases, report["cases"], strict=True):
            assert case["dtype"] == str(dtype) and case["shape"] == list(batch) + [1]
            for name, error in case["errors"].items():
                assert error <= TOLERANCE[str(dtype)], (batch, dtype, name, error)


# ------------------------------------------------------------------------------------------------------------ tests


def test_shard_rows_split_near_evenly_in_rank_order():
    for n, world in [(7, 3), (1, 3), (0, 2), (64, 8), (5, 1)]:
        shards = [cft.shard_rows(n, rank, world) for rank in range(world)]
        assert [i for s in shards for i in range(n)[s]] == list(range(n))
        sizes = [s.stop - s.start for s in shards]
        assert sizes == sorted(sizes, reverse=True) and sizes[0] - sizes[-1] <= 1
    with pytest.raises(ValueError, match="rank must be below world_size == 2, got 2"):
        cft.shard_rows(4, 2, 2)
    with pytest.raises(ValueError, match="n must be a non-negative int, got -1"):
        cft.shard_rows(-1, 0, 1)


def test_module_needs_an_initialized_group():
    assert not dist.is_initialized()
    with pytest.raises((RuntimeError, ValueError), match="init_process_group"):
        cft.ShardedLinearSigmoidSum(4, 3)


@pytest.fixture(scope="module")
def gloo_reports(tmp_path_factory):
    return run_ranks("gloo", 2, CPU_CASES, tmp_path_factory.mktemp("gloo"))


def test_gloo_two_ranks_match_the_unsharded_op(gloo_reports):
    check_cases(gloo_reports, CPU_CASES)


def test_gloo_module_loads_a_full_nn_linear_state_dict(gloo_reports):
    assert [r["module"]["rows"] for r in gloo_reports] == [[0, 6], [6, 11]]
    assert gloo_reports[1]["module"]["repr"] == (
        "ShardedLinearSigmoidSum(in_features=12, out_features=11, bias=True, rows=6:11)"
    )
    for report in gloo_reports:
        for name, error in report["module"]["errors"].items():
            assert error <= 1e-12, (name, error)


@pytest.mark.gpu
def test_world_of_one_on_a_gpu(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    cases = [((64,), 300, 129, torch.float32, True), ((3, 5), 17, 9, torch.float64, False)]
    check_cases(run_ranks("nccl", 1, cases, tmp_path), cases)


def multigpu_shape() -> tuple:
    text = os.environ.get("CUPY_FUSED_MULTIGPU_SHAPE", "128,1024,4099")
    batch, k, n = (int(v) for v in text.split(","))
    return batch, k, n


@pytest.mark.multigpu
def test_nccl_one_process_per_gpu(tmp_path):
    batch, k, n = multigpu_shape()
    cases = [((batch,), k, n, torch.float32, True), ((3, 5), 17, 9, torch.float64, False)]
    check_cases(run_ranks("nccl", torch.cuda.device_count(), cases, tmp_path), cases)
