"""cupy_fused.torch on CPU tensors: gradcheck, gradients against torch autograd under an error budget, the chunked
backward, only the needed gradients, precision flags, the custom ops under opcheck and torch.compile, the module,
and the KernelBench example."""

import importlib.util
import math
from pathlib import Path

import pytest
from helpers import grads, in_threads, rel_err, torch_expression
from helpers import torch_inputs as inputs

torch = pytest.importorskip("torch")
cft = pytest.importorskip("cupy_fused.torch")

ROOT = Path(__file__).resolve().parents[1]
# err(ours, float64) <= 2 * err(torch autograd at the same dtype, float64) + EPS[dtype], per gradient
EPS = {torch.float64: 1e-13, torch.float32: 1e-6, torch.float16: 1e-3, torch.bfloat16: 1e-2}
SHAPES = [((1,), 1, 1), ((3,), 5, 7), ((257,), 100, 41), ((2, 3), 17, 9)]


# ------------------------------------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch", [(4,), (2, 3), (2, 1, 3)])
@pytest.mark.parametrize("workspace", [cft.DEFAULT_WORKSPACE_BYTES, 8])
def test_gradcheck_float64(rng, bias, batch, workspace):
    (x, w, b), _ = inputs(rng, batch, 5, 6, torch.float64, bias)
    leaves = [t.requires_grad_(True) for t in (x, w, b) if t is not None]

    def fn(*args):
        return cft.linear_sigmoid_sum(args[0], args[1], args[2] if bias else None, workspace_bytes=workspace)

    assert torch.autograd.gradcheck(fn, leaves)


@pytest.mark.parametrize("dtype", list(EPS))
@pytest.mark.parametrize("batch,k,n", SHAPES)
def test_gradients_within_error_budget(rng, dtype, batch, k, n):
    tensors, g = inputs(rng, batch, k, n, dtype)
    ref = grads(torch_expression, [t.double() for t in tensors], g.double())  # exact for the rounded inputs
    peer = grads(torch_expression, tensors, g)
    ours = grads(cft.linear_sigmoid_sum, tensors, g)
    for name, o, p, r, t in zip(("x", "weight", "bias"), ours, peer, ref, tensors):
        assert o.dtype == dtype and o.shape == t.shape, name
        budget = 2 * rel_err(p.double().numpy(), r.numpy()) + EPS[dtype]
        assert rel_err(o.double().numpy(), r.numpy()) <= budget, name


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_tiny_workspace_gives_the_same_gradients(rng, dtype):
    tensors, g = inputs(rng, (33,), 20, 100, dtype)
    # recomputed both ways (a saved sigmoid' is rounded to float16: test_saved_and_recomputed_backward_agree)
    whole = grads(lambda x, w, b: cft.linear_sigmoid_sum(x, w, b, save_bytes=0), tensors, g)
    for workspace in (1, 33 * 4 * 8, 33 * 4 * 30):
        chunked = grads(
            lambda x, w, b: cft.linear_sigmoid_sum(x, w, b, workspace_bytes=workspace, save_bytes=0), tensors, g
        )
        for c, o in zip(chunked, whole):
            torch.testing.assert_close(c, o, rtol=1e-5 if dtype == torch.float32 else 2e-3, atol=1e-6)


def test_chunk_rule_is_bounded():
    from cupy_fused.backward import chunk_columns as backward_chunk

    assert backward_chunk(100, 10, 5, 4, False, 1) == 1
    assert backward_chunk(100, 10_000, 5, 4, False, 100 * 4 * 13) == 8  # rounded down to a multiple of 8
    assert backward_chunk(100, 10, 5, 4, False, 2**30) == 10  # never more than N
    assert backward_chunk(4096, 65536, 256, 4, False, 16 * 2**20) * 4096 * 4 <= 16 * 2**20
    assert backward_chunk(100, 10_000, 50, 4, True, 2**20) * (100 + 100) * 4 <= 2**20  # half: + 2 (chunk, K)


def test_only_needed_gradients_are_computed(rng, monkeypatch):
    from cupy_fused import backward

    seen = []
    real = backward.grad

    def spy(*args, **kwargs):
        seen.append(kwargs["need"])
        return real(*args, **kwargs)

    monkeypatch.setattr(backward, "grad", spy)
    (x, w, b), g = inputs(rng, (6,), 4, 3, torch.float32)
    x.requires_grad_(True)
    (cft.linear_sigmoid_sum(x, w, b) * g).sum().backward()
    assert seen[-1] == (True, False, False) and x.grad is not None and w.grad is None
    w.requires_grad_(True)
    x.grad = None
    (cft.linear_sigmoid_sum(x.detach(), w, None) * g).sum().backward()
    assert seen[-1] == (False, True, False) and w.grad is not None
    b.requires_grad_(True)
    (cft.linear_sigmoid_sum(x.detach(), w.detach(), b) * g).sum().backward()
    assert seen[-1] == (False, False, True) and b.grad is not None


def test_edge_shapes_have_zero_gradients():
    x = torch.zeros(0, 3, requires_grad=True)
    w = torch.randn(4, 3, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    cft.linear_sigmoid_sum(x, w, b).sum().backward()
    assert x.grad.shape == (0, 3) and torch.equal(w.grad, torch.zeros(4, 3)) and torch.equal(b.grad, torch.zeros(4))
    x = torch.randn(2, 3, requires_grad=True)
    w = torch.zeros(0, 3, requires_grad=True)
    cft.linear_sigmoid_sum(x, w).sum().backward()
    assert torch.equal(x.grad, torch.zeros(2, 3)) and w.grad.shape == (0, 3)
    x = torch.randn(2, 0, requires_grad=True)
    w = torch.zeros(5, 0, requires_grad=True)
    b = torch.randn(5, requires_grad=True)
    cft.linear_sigmoid_sum(x, w, b).sum().backward()
    torch.testing.assert_close(b.grad, 2 * torch.sigmoid(b) * (1 - torch.sigmoid(b)))


def test_non_contiguous_inputs_and_expanded_grad(rng):
    (x, w, b), _ = inputs(rng, (9,), 12, 10, torch.float64)
    x_view, w_view = torch.cat([x, x], 1)[:, ::2], w.T.contiguous().T
    ours = grads(lambda *t: cft.linear_sigmoid_sum(*t).sum(), (x_view, w_view, b), 1.0)  # grad is expanded
    ref = grads(lambda *t: torch_expression(*t).sum(), (x_view, w_view, b), 1.0)
    for o, r in zip(ours, ref):
        torch.testing.assert_close(o, r, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------------------------------------- precision


def _matmul_settings():
    cuda = torch.backends.cuda.matmul
    mkldnn = getattr(torch.backends.mkldnn, "matmul", None)
    return (getattr(cuda, "fp32_precision", None), getattr(mkldnn, "fp32_precision", None))


def test_backward_reads_and_changes_no_global_setting(rng):
    """The precision of the backward GEMMs is chosen per call: torch's process-wide matmul settings are neither
    changed nor obeyed, also with 4 threads in backward at once."""

    mkldnn = getattr(torch.backends.mkldnn, "matmul", None)
    if mkldnn is None or not hasattr(mkldnn, "fp32_precision"):
        pytest.skip("this torch has no fp32_precision API")
    saved = mkldnn.fp32_precision
    (x, w, b), g = inputs(rng, (33,), 40, 30, torch.float32)
    ref = grads(torch_expression, [t.double() for t in (x, w, b)], g.double())
    try:
        mkldnn.fp32_precision = "bf16"  # torch's own CPU matmuls would now round to bfloat16
        before = _matmul_settings()
        errors = []

        def work():
            for _ in range(5):
                ours = grads(cft.linear_sigmoid_sum, (x, w, b), g)
                errors.append(max(rel_err(o.double().numpy(), r.numpy()) for o, r in zip(ours, ref)))

        assert in_threads(work) == [] and len(errors) == 20
        assert _matmul_settings() == before and mkldnn.fp32_precision == "bf16"
        assert max(errors) < 1e-5  # strict fp32 (bfloat16 products would give ~1e-3)
    finally:
        mkldnn.fp32_precision = saved


# ------------------------------------------------------------------------------------------ custom ops and compile


def test_custom_ops_are_registered_and_pass_opcheck(rng):
    (x, w, b), g = inputs(rng, (3, 2), 5, 4, torch.float32)
    x, w, b = (t.requires_grad_(True) for t in (x, w, b))
    fwd = torch.ops.cupy_fused.linear_sigmoid_sum.default
    bwd = torch.ops.cupy_fused.linear_sigmoid_sum_backward.default
    tests = ("test_schema", "test_faketensor", "test_autograd_registration")
    torch.library.opcheck(fwd, (x, w, b, None, "auto", 1024), test_utils=tests)
    torch.library.opcheck(fwd, (x, w, None, "ieee", "auto", 1024), test_utils=tests)
    train = torch.ops.cupy_fused.linear_sigmoid_sum_train.default
    torch.library.opcheck(train, (x, w, b, None, "auto", 1024, 2**20), test_utils=tests)
    torch.library.opcheck(train, (x, w, b, None, "auto", 1024, 0), test_utils=tests)
    half = [t.detach().bfloat16().requires_grad_(True) for t in (x, w, b)]  # saved sigmoid' in x's dtype
    torch.library.opcheck(train, (*half, None, "auto", 1024, 2**20), test_utils=tests)
    assert train(*half, None, "auto", 1024, 2**20)[1].dtype == torch.bfloat16
    saved = train(x, w, b, None, "auto", 1024, 2**20)[1].detach()
    for need in [(True, True, True), (False, True, False)]:
        for s in (None, saved):
            torch.library.opcheck(
                bwd, (g, x.detach(), w.detach(), b.detach(), s, "ieee", 64, *need), test_utils=tests[:2]
            )


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # torch's own
def test_torch_compile_fullgraph_forward_and_backward(rng):
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5, bias=False), cft.LinearSigmoidSum(5, 7))
    x = torch.randn(4, 3, 6, requires_grad=True)
    # The default backend (inductor): every op here is an extern kernel or our custom op, so no C++ is compiled.
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(x)
    out.sum().backward()
    got = [x.grad] + [p.grad for p in model.parameters()]
    for t in [x] + list(model.parameters()):
        t.grad = None
    expected_out = model(x)
    expected_out.sum().backward()
    torch.testing.assert_close(out, expected_out)
    for a, e in zip(got, [x.grad] + [p.grad for p in model.parameters()]):
        torch.testing.assert_close(a, e)


def test_torch_compile_without_bias_and_precision_argument(rng):
    torch._dynamo.reset()
    (x, w, _), g = inputs(rng, (8,), 4, 3, torch.float32, bias=False)
    x.requires_grad_(True)

    @torch.compile(fullgraph=True, backend="aot_eager")  # graph capture through AOTAutograd, eager kernels
    def fn(x, w):
        return cft.linear_sigmoid_sum(x, w, None, precision="tf32") * 2

    out = fn(x, w)
    (out * g).sum().backward()
    expected = grads(lambda x, w: torch_expression(x, w, None) * 2, (x, w), g)[0]
    torch.testing.assert_close(x.grad, expected)
    torch.testing.assert_close(out, torch_expression(x, w, None) * 2)


# ---------------------------------------------------------------------------------------------------- validation


def test_arguments_are_checked_with_clear_messages():
    x, w, b = torch.randn(3, 4), torch.randn(5, 4), torch.randn(5)
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got numpy.ndarray"):
        cft.linear_sigmoid_sum(x.numpy(), w, b)
    with pytest.raises(TypeError, match="weight has dtype float64 but x has dtype float32"):
        cft.linear_sigmoid_sum(x, w.double(), b)
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        cft.linear_sigmoid_sum(x.int(), w, b)
    with pytest.raises(ValueError, match=r"weight must have shape \(N, K\) with K == x.shape\[-1\] == 4"):
        cft.linear_sigmoid_sum(x, w[:, :3], b)
    with pytest.raises(ValueError, match=r"bias must have shape \(N,\) with N == weight.shape\[0\] == 5"):
        cft.linear_sigmoid_sum(x, w, b[:4])
    with pytest.raises(ValueError, match="precision must be None or one of"):
        cft.linear_sigmoid_sum(x, w, b, precision="fast")
    with pytest.raises(ValueError, match="workspace_bytes must be a positive int"):
        cft.linear_sigmoid_sum(x, w, b, workspace_bytes=0)
    with pytest.raises(ValueError, match="method must be one of"):
        cft.linear_sigmoid_sum(x, w, b, method="fast")
    with pytest.raises(ValueError, match="method='fused' needs GPU arrays"):
        cft.linear_sigmoid_sum(x, w, b, method="fused")
    with pytest.raises(ValueError, match="x must have shape"):
        cft.linear_sigmoid_sum(torch.tensor(1.0), w, b)


# ---------------------------------------------------------------------------------------------------------- module


def test_module_matches_nn_linear_init_and_state_dict():
    torch.manual_seed(7)
    lin = torch.nn.Linear(300, 40)
    torch.manual_seed(7)
    ours = cft.LinearSigmoidSum(300, 40)
    assert list(ours.state_dict()) == list(lin.state_dict()) == ["weight", "bias"]
    assert torch.equal(ours.weight, lin.weight) and torch.equal(ours.bias, lin.bias)  # same draws, same order
    bound = 1 / math.sqrt(300)
    for p in (ours.weight, ours.bias):
        assert p.abs().max() <= bound and p.abs().max() > 0.9 * bound
        assert abs(p.mean().item()) < 0.2 * bound and abs(p.std().item() - bound / math.sqrt(3)) < 0.1 * bound
    other = cft.LinearSigmoidSum(300, 40)
    other.load_state_dict(lin.state_dict())
    x = torch.randn(6, 2, 300)
    torch.testing.assert_close(other(x), torch_expression(x, lin.weight, lin.bias).detach())
    assert other(x).shape == (6, 2, 1)
    lin.load_state_dict(ours.state_dict())  # and back


def test_module_without_bias_dtype_device_and_repr():
    m = cft.LinearSigmoidSum(3, 2, bias=False, dtype=torch.float64, precision="tf32")
    assert m.bias is None and list(m.state_dict()) == ["weight"] and m.weight.dtype == torch.float64
    assert "in_features=3, out_features=2, bias=False, precision='tf32'" in repr(m)
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    m(x).sum().backward()
    assert x.grad.shape == (4, 3) and m.weight.grad.shape == (2, 3)
    with pytest.raises(ValueError, match="in_features must be a non-negative int"):
        cft.LinearSigmoidSum(-1, 2)
    with pytest.raises(ValueError, match="precision must be None or one of"):
        cft.LinearSigmoidSum(1, 2, precision="x")


def test_module_trains():
    torch.manual_seed(0)
    m = cft.LinearSigmoidSum(8, 16)
    x = torch.randn(64, 8)
    target = torch_expression(x, torch.randn(16, 8), torch.randn(16))
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(m(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ------------------------------------------------------------------------------------------- KernelBench example


def load_example():
    spec = importlib.util.spec_from_file_location("kernelbench_56", ROOT / "examples" / "kernelbench_56.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kernelbench_example_passes_small_on_cpu(capsys):
    example = load_example()
    assert example.main(["--small", "--device", "cpu"]) == 0
    assert "PASS: 5/5 trials" in capsys.readouterr().out
    assert example.get_init_inputs() == [32768, 32768]
    assert (example.batch_size, example.input_size, example.hidden_size) == (128, 32768, 32768)
    assert example.get_inputs(4, 8)[0].shape == (4, 8)


def test_kernelbench_check_fails_on_a_wrong_model(capsys, monkeypatch):
    example = load_example()
    real_forward = example.ModelNew.forward
    monkeypatch.setattr(example.ModelNew, "forward", lambda self, x: real_forward(self, x) + 1e-2)
    assert not example.check(batch_size=4, input_size=16, hidden_size=8, device="cpu", trials=2)
    assert "FAIL: 0/2 trials" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------- saved or recomputed


@pytest.mark.parametrize("dtype", list(EPS))
def test_saved_and_recomputed_backward_agree(rng, dtype):
    tensors, g = inputs(rng, (3, 11), 13, 17, dtype)
    saved = grads(cft.linear_sigmoid_sum, tensors, g)
    recomputed = grads(lambda *t: cft.linear_sigmoid_sum(*t, save_bytes=0), tensors, g)
    tol = {torch.float64: 1e-13, torch.float32: 1e-6, torch.float16: 2e-3, torch.bfloat16: 1e-2}[dtype]
    for a, b in zip(saved, recomputed):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_the_save_budget_decides(rng, monkeypatch):
    from cupy_fused import backward

    seen = []
    real = backward.grad

    def spy(*args, **kwargs):
        seen.append(kwargs["saved"])
        return real(*args, **kwargs)

    monkeypatch.setattr(backward, "grad", spy)
    tensors, g = inputs(rng, (6,), 4, 10, torch.float32)  # sigmoid'(z) is 6 x 10 x 4 = 240 bytes
    for budget, saves in ((240, True), (239, False), (None, True), (0, False)):
        grads(lambda *t, budget=budget: cft.linear_sigmoid_sum(*t, save_bytes=budget), tensors, g)
        assert (seen[-1] is not None) == saves, budget
        if saves:
            assert seen[-1].shape == (6, 10) and seen[-1].dtype == torch.float32
    half, g16 = inputs(rng, (6,), 4, 10, torch.bfloat16)  # in x's dtype: 6 x 10 x 2 = 120 bytes
    for budget, saves in ((120, True), (119, False)):
        grads(lambda *t, budget=budget: cft.linear_sigmoid_sum(*t, save_bytes=budget), half, g16)
        assert (seen[-1] is not None) == saves, budget
        if saves:
            assert seen[-1].shape == (6, 10) and seen[-1].dtype == torch.bfloat16
    # by default half inputs save whatever the workspace bound (the size of what torch keeps of sigmoid's output)
    for case, g_case, saves in ((tensors, g, False), (half, g16, True)):
        grads(lambda *t: cft.linear_sigmoid_sum(*t, workspace_bytes=64), case, g_case)
        assert (seen[-1] is not None) == saves, case[0].dtype
    with pytest.raises(ValueError, match="save_bytes must be None or a non-negative int"):
        grads(lambda *t: cft.linear_sigmoid_sum(*t, save_bytes=-1), tensors, g)


def test_a_retained_graph_gives_the_same_gradients_twice(rng):
    (x, w, b), g = inputs(rng, (9,), 7, 12, torch.float32)
    leaves = [t.requires_grad_(True) for t in (x, w, b)]
    out = cft.linear_sigmoid_sum(*leaves)
    first = torch.autograd.grad(out, leaves, g, retain_graph=True)
    second = torch.autograd.grad(out, leaves, g)
    for a, c in zip(first, second):
        assert torch.equal(a, c)  # the saved sigmoid'(z) is only read


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_training_example_runs_small_on_cpu(capsys, dtype):
    spec = importlib.util.spec_from_file_location("train_example", ROOT / "examples" / "train.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main(["--small", "--device", "cpu", "--steps", "60", "--dtype", dtype]) == 0
    out = capsys.readouterr().out
    assert "both models learned, and alike" in out and "time per step on cpu" in out and f"({dtype}," in out


# ----------------------------------------------------------------------------------- eager calls and the custom ops


def _through_ops(x, w, b):
    """What a traced call runs: the custom ops and their registered autograd."""
    ws = cft.DEFAULT_WORKSPACE_BYTES
    if not torch.is_grad_enabled() or not any(t is not None and t.requires_grad for t in (x, w, b)):
        return torch.ops.cupy_fused.linear_sigmoid_sum(x, w, b, None, "auto", ws)
    return torch.ops.cupy_fused.linear_sigmoid_sum_train(x, w, b, None, "auto", ws, ws)[0]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("save_bytes", [None, 0])
def test_eager_calls_give_the_custom_ops_bits(rng, bias, save_bytes):
    """Eager calls skip the ops' dispatch (a plain autograd.Function in training): same outputs, same gradients."""
    tensors, g = inputs(rng, (5, 3), 9, 11, torch.float32, bias)
    eager = grads(lambda *t: cft.linear_sigmoid_sum(*t, save_bytes=save_bytes), tensors, g)
    ops = grads(_through_ops, tensors, g)
    for a, c in zip(eager, ops):
        assert (a is None and c is None) or torch.equal(a, c)
    with torch.no_grad():
        assert torch.equal(cft.linear_sigmoid_sum(*tensors), _through_ops(*tensors))


def test_eager_training_computes_only_the_gradients_asked_for(rng, monkeypatch):
    from cupy_fused import backward

    asked, real = [], backward.grad
    monkeypatch.setattr(backward, "grad", lambda *a, **kw: asked.append(kw["need"]) or real(*a, **kw))
    (x, w, b), g = inputs(rng, (4,), 3, 5, torch.float32)
    w.requires_grad_(True)
    torch.autograd.grad(cft.linear_sigmoid_sum(x, w, b), w, g)
    assert asked == [(False, True, False)]


@pytest.mark.parametrize("grad_requires_grad", [False, True])
def test_double_backward_is_refused(rng, grad_requires_grad):
    (x, w, b), g = inputs(rng, (4,), 3, 5, torch.float64)
    x.requires_grad_(True)
    g.requires_grad_(grad_requires_grad)
    (gx,) = torch.autograd.grad(cft.linear_sigmoid_sum(x, w, b), x, g, create_graph=True)
    torch.testing.assert_close(gx, grads(cft.linear_sigmoid_sum, (x, w, b), g)[0], rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="linear_sigmoid_sum_backward.default but no autograd formula"):
        gx.sum().backward()


def test_meta_and_fake_tensors_take_the_fake_implementations():
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

    x, w = torch.empty(3, 4, device="meta", requires_grad=True), torch.empty(5, 4, device="meta")
    assert cft.linear_sigmoid_sum(x, w).shape == (3, 1)
    with FakeTensorMode():
        out = cft.linear_sigmoid_sum(torch.randn(2, 3, 4), torch.randn(5, 4), torch.randn(5))
    assert isinstance(out, FakeTensor) and out.shape == (2, 3, 1)


@pytest.mark.filterwarnings("ignore:`torch.jit.trace` is deprecated:DeprecationWarning")  # torch's own
def test_tracers_and_modes_record_the_custom_ops(rng):
    """A call under make_fx, torch.jit.trace or a dispatch mode goes through the ops, so the trace replays it."""
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.utils._python_dispatch import TorchDispatchMode

    (x, w, b), g = inputs(rng, (4,), 3, 5, torch.float32)
    expected = cft.linear_sigmoid_sum(x, w, b)
    graph = make_fx(lambda x, w, b: cft.linear_sigmoid_sum(x, w, b))(x, w, b)
    assert "cupy_fused.linear_sigmoid_sum" in graph.code
    assert torch.equal(graph(x, w, b), expected)
    traced = torch.jit.trace(lambda x, w, b: cft.linear_sigmoid_sum(x, w, b), (x, w, b))
    assert torch.equal(traced(x * 2, w, b), cft.linear_sigmoid_sum(x * 2, w, b))

    class Seen(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.add(str(func))
            return func(*args, **(kwargs or {}))

    x.requires_grad_(True)
    with Seen() as seen:
        torch.autograd.grad(cft.linear_sigmoid_sum(x, w, b), x, g)
    assert {"cupy_fused.linear_sigmoid_sum_train.default", "cupy_fused.linear_sigmoid_sum_backward.default"} <= seen.ops
