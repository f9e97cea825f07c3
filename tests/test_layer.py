"""cupy_fused.layer.LinearSigmoidSum on NumPy arrays: initialization, forward, gradients against central finite
differences and against torch autograd, the chunked backward, state_dict round trips and argument errors."""

import subprocess
import sys

import numpy as np
import pytest
from helpers import linear_sigmoid_sum as ref_lss
from helpers import rel_err

from cupy_fused.layer import LinearSigmoidSum


def central_differences(f, a, eps=1e-6):
    """d f() / d a, element by element, a modified in place and restored."""
    out = np.zeros_like(a)
    for i in np.ndindex(*a.shape):
        old = a[i]
        a[i] = old + eps
        plus = f()
        a[i] = old - eps
        minus = f()
        a[i] = old
        out[i] = (plus - minus) / (2 * eps)
    return out


def test_importing_the_layer_imports_neither_torch_nor_cupy():
    code = "import sys, cupy_fused.layer; print(sorted({'torch', 'cupy'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_initialization_is_seeded_and_within_nn_linear_bounds():
    a, b = LinearSigmoidSum(400, 30, seed=3), LinearSigmoidSum(400, 30, seed=3)
    assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)
    assert not np.array_equal(a.weight, LinearSigmoidSum(400, 30, seed=4).weight)
    assert a.weight.shape == (30, 400) and a.bias.shape == (30,) and a.weight.dtype == np.float32
    bound = 1 / np.sqrt(400)
    for p in (a.weight, a.bias):
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.9 * bound
    assert abs(a.weight.std() - bound / np.sqrt(3)) < 0.05 * bound
    layer = LinearSigmoidSum(3, 2, bias=False, dtype="float64", seed=np.random.default_rng(0))
    assert layer.bias is None and layer.weight.dtype == np.float64 and list(layer.state_dict()) == ["weight"]
    assert repr(layer) == "LinearSigmoidSum(in_features=3, out_features=2, bias=False, dtype='float64', device='cpu')"


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_forward_is_linear_sigmoid_sum(rng, dtype):
    layer = LinearSigmoidSum(20, 9, dtype=dtype, seed=0)
    x = rng.standard_normal((2, 5, 20)).astype(dtype)
    out = layer(x)
    assert out.shape == (2, 5, 1) and out.dtype == dtype
    assert (
        rel_err(out, ref_lss(x, layer.weight, layer.bias)) < {"float16": 2e-3, "float32": 1e-6, "float64": 1e-14}[dtype]
    )
    assert layer(x, keepdims=False).shape == (2, 5)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("workspace", [2**28, 8])
def test_gradients_match_central_differences(rng, bias, workspace):
    layer = LinearSigmoidSum(4, 6, bias=bias, dtype="float64", seed=1, workspace_bytes=workspace)
    x = rng.standard_normal((3, 2, 4))
    g = rng.standard_normal((3, 2, 1))

    def loss():
        return float((layer(x) * g).sum())

    grad_x, grad_w, grad_b = layer.grad(x, g)
    assert grad_x.shape == x.shape and grad_w.shape == (6, 4)
    np.testing.assert_allclose(grad_x, central_differences(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grad_w, central_differences(loss, layer.weight), rtol=1e-6, atol=1e-8)
    if bias:
        np.testing.assert_allclose(grad_b, central_differences(loss, layer.bias), rtol=1e-6, atol=1e-8)
    else:
        assert grad_b is None


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("batch,k,n", [((1,), 1, 1), ((3,), 5, 7), ((257,), 100, 41)])
def test_gradients_against_torch_autograd(rng, dtype, batch, k, n):
    torch = pytest.importorskip("torch")
    layer = LinearSigmoidSum(k, n, dtype=dtype, seed=2)
    x = rng.standard_normal(tuple(batch) + (k,)).astype(dtype)
    g = rng.standard_normal(tuple(batch) + (1,)).astype(dtype)

    def torch_grads(cast):
        leaves = [cast(torch.from_numpy(a)).requires_grad_(True) for a in (x, layer.weight, layer.bias)]
        out = torch.sum(torch.sigmoid(torch.nn.functional.linear(*leaves)), dim=-1, keepdim=True)
        (out * cast(torch.from_numpy(g))).sum().backward()
        return [t.grad.double().numpy() for t in leaves]

    ref = torch_grads(lambda t: t.double())
    peer = torch_grads(lambda t: t)
    eps = {"float16": 1e-3, "float32": 1e-6, "float64": 1e-13}[dtype]
    for name, ours, p, r in zip(("x", "weight", "bias"), layer.grad(x, g), peer, ref):
        assert ours.dtype == dtype, name
        assert rel_err(ours, r) <= 2 * rel_err(p, r) + eps, name


def test_tiny_workspace_and_keepdims_false_grad_out(rng):
    layer = LinearSigmoidSum(16, 50, seed=5)
    small = LinearSigmoidSum(16, 50, seed=5, workspace_bytes=1)
    x = rng.standard_normal((7, 16)).astype(np.float32)
    g = rng.standard_normal((7, 1)).astype(np.float32)
    for a, b, c in zip(layer.grad(x, g), small.grad(x, g), layer.grad(x, g[:, 0])):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(c, a)


def test_edge_shapes(rng):
    layer = LinearSigmoidSum(3, 4, seed=0)
    gx, gw, gb = layer.grad(np.zeros((0, 3), np.float32), np.zeros((0, 1), np.float32))
    assert gx.shape == (0, 3) and not gw.any() and not gb.any()
    empty = LinearSigmoidSum(3, 0, seed=0)
    gx, gw, gb = empty.grad(np.ones((2, 3), np.float32), np.ones((2, 1), np.float32))
    assert not gx.any() and gw.shape == (0, 3) and gb.shape == (0,)
    zero_k = LinearSigmoidSum(0, 5, dtype="float64", seed=0)
    _, _, gb = zero_k.grad(np.zeros((2, 0)), np.ones((2, 1)))
    s = 1 / (1 + np.exp(-zero_k.bias))
    np.testing.assert_allclose(gb, 2 * s * (1 - s), rtol=1e-14)


def test_state_dict_round_trip_and_nn_linear():
    a = LinearSigmoidSum(6, 4, seed=0)
    b = LinearSigmoidSum(6, 4, seed=1)
    state = a.state_dict()
    assert list(state) == ["weight", "bias"] and state["weight"] is a.weight
    b.load_state_dict(state)
    assert np.array_equal(b.weight, a.weight) and np.array_equal(b.bias, a.bias)
    assert b.weight is not a.weight  # the layer owns a copy
    torch = pytest.importorskip("torch")
    lin = torch.nn.Linear(6, 4)
    b.load_state_dict(lin.state_dict())  # torch tensors load as they are
    np.testing.assert_array_equal(b.weight, lin.weight.detach().numpy())
    lin.load_state_dict({k: torch.from_numpy(v) for k, v in a.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    expected = torch.sigmoid(lin(torch.from_numpy(x))).sum(-1, keepdim=True).detach().numpy()
    np.testing.assert_allclose(a(x), expected, rtol=1e-6)
    assert a.to("cpu") is a


def test_state_dict_errors_change_nothing():
    layer = LinearSigmoidSum(3, 2, seed=0)
    before = {k: v.copy() for k, v in layer.state_dict().items()}
    good = {"weight": np.zeros((2, 3), np.float32), "bias": np.zeros(2, np.float32)}
    cases = [
        ({"weight": good["weight"]}, ValueError, r"missing keys \['bias'\]"),
        ({**good, "extra": good["bias"]}, ValueError, r"unexpected keys \['extra'\]; this layer expects exactly"),
        (
            {**good, "weight": np.zeros((3, 2), np.float32)},
            ValueError,
            r"state_dict\['weight'\] must have shape \(2, 3\)",
        ),
        (
            {**good, "bias": np.zeros(2)},
            TypeError,
            r"state_dict\['bias'\] has dtype float64 but the layer's dtype is float32",
        ),
        ({**good, "bias": [0.0, 0.0]}, TypeError, r"state_dict\['bias'\] must be a numpy.ndarray"),
        ([("weight", good["weight"])], TypeError, "state_dict must be a mapping"),
    ]
    for state, error, message in cases:
        with pytest.raises(error, match=message):
            layer.load_state_dict(state)
        for k, v in layer.state_dict().items():
            assert np.array_equal(v, before[k])


def test_constructor_and_call_errors():
    cases = [
        (dict(in_features=-1), ValueError, "in_features must be a non-negative int"),
        (dict(out_features=2.0), ValueError, "out_features must be a non-negative int"),
        (dict(bias=1), TypeError, "bias must be True or False"),
        (dict(dtype="int32"), ValueError, "dtype must be one of float16, float32, float64, got 'int32'"),
        (dict(dtype="bfloat16"), ValueError, "dtype='bfloat16' has no numpy/cupy dtype"),
        (dict(dtype=object()), ValueError, "dtype must be one of"),
        (dict(device="tpu"), ValueError, "device must be 'cpu', 'cuda', 'cuda:N' or a device index, got 'tpu'"),
        (dict(device=-1), ValueError, "device must be a non-negative device index"),
        (dict(device=1.5), TypeError, "device must be 'cpu', 'cuda', 'cuda:N' or an int"),
        (dict(seed="x"), TypeError, "seed must be None, a non-negative int or a numpy.random.Generator"),
        (dict(precision="fast"), ValueError, "precision must be None or one of"),
        (dict(workspace_bytes=0), ValueError, "workspace_bytes must be a positive int"),
    ]
    for kwargs, error, message in cases:
        args = {"in_features": 3, "out_features": 2, **kwargs}
        with pytest.raises(error, match=message):
            LinearSigmoidSum(args.pop("in_features"), args.pop("out_features"), **args)
    layer = LinearSigmoidSum(3, 2, seed=0)
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(TypeError, match="x has dtype float64 but the layer's dtype is float32"):
        layer(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 3\) \(in_features == 3\), got \(4, 2\)"):
        layer(np.zeros((4, 2), np.float32))
    with pytest.raises(
        TypeError,
        match="x must be a numpy.ndarray, cupy.ndarray, torch.Tensor, jax.Array or another array .*, got builtins.list",
    ):
        layer([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"grad_out must have shape \(4, 1\) or \(4,\)"):
        layer.grad(x, np.zeros((4, 2), np.float32))
    with pytest.raises(TypeError, match="grad_out has dtype float64"):
        layer.grad(x, np.zeros((4, 1)))
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="x must be a numpy array on cpu .the layer's device., got a torch array"):
        layer(torch.zeros(4, 3))
