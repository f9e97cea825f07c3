"""torch CPU tensors: in and out without copies, every dtype within the error budget of torch itself."""

import warnings

import numpy as np
import pytest
from helpers import linear_sigmoid_sum as ref_lss
from helpers import make_inputs, rel_err, torch_expression

import cupy_fused
from cupy_fused.backends import host

torch = pytest.importorskip("torch")

# err(ours, float64) <= 2 * err(torch at the same dtype, float64) + EPS[dtype]
EPS = {torch.float64: 1e-14, torch.float32: 1e-7, torch.float16: 1e-4, torch.bfloat16: 1e-3}


@pytest.mark.parametrize("dtype", list(EPS))
@pytest.mark.parametrize(
    "batch,k,n", [((1,), 1, 1), ((3,), 5, 7), ((128,), 10, 20), ((257,), 1000, 411), ((2, 3), 17, 9)]
)
def test_every_dtype_within_error_budget(rng, dtype, batch, k, n):
    x, w, b = (torch.from_numpy(a).to(dtype) for a in make_inputs(rng, batch, k, n))
    ref = ref_lss(*(t.double().numpy() for t in (x, w, b)))  # exact result for the rounded inputs
    out = cupy_fused.linear_sigmoid_sum(x, w, b)
    assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.device.type == "cpu"
    assert out.shape == batch + (1,)
    budget = 2 * rel_err(torch_expression(x, w, b).double().numpy(), ref) + EPS[dtype]
    assert rel_err(out.double().numpy(), ref) <= budget


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_tensors_pass_in_and_out_without_copies(rng, monkeypatch, dtype):
    x, w, b = (torch.from_numpy(a).to(dtype) for a in make_inputs(rng, (6,), 8, 5))
    seen = {}
    real = host.Linear.run

    def spy(self, xv, wv, bv, out, saved=None):
        seen["in"] = [a.__array_interface__["data"][0] for a in (xv, wv, bv)]
        seen["out"] = out.__array_interface__["data"][0]
        return real(self, xv, wv, bv, out, saved)

    monkeypatch.setattr(host.Linear, "run", spy)
    out = cupy_fused.linear_sigmoid_sum(x, w, b)
    assert seen["in"] == [t.data_ptr() for t in (x, w, b)]
    assert seen["out"] == out.data_ptr()


def test_parameters_and_views_work_and_stay_unchanged(rng):
    x, w, b = (torch.from_numpy(a).float() for a in make_inputs(rng, (9,), 40, 30))
    layer = torch.nn.Linear(40, 30)
    with torch.no_grad():
        layer.weight.copy_(w.T.contiguous().T)
        layer.bias.copy_(b)
    x_view = x.T.contiguous().T[:, ::2]
    w_view = layer.weight[:, ::2]
    before = [t.clone() for t in (x_view, layer.weight, layer.bias)]
    out = cupy_fused.linear_sigmoid_sum(x_view, w_view, layer.bias)
    assert not out.requires_grad
    ref = ref_lss(x_view.double().numpy(), w_view.detach().double().numpy(), b.double().numpy())
    assert rel_err(out.numpy(), ref) <= 1e-6
    for t, c in zip((x_view, layer.weight, layer.bias), before):
        assert torch.equal(t, c)


def test_sigmoid_sum_on_tensors(rng):
    z = torch.randn(4, 3, 50, dtype=torch.bfloat16)
    b = torch.randn(50, dtype=torch.bfloat16)
    out = cupy_fused.sigmoid_sum(z, b)
    assert out.dtype == torch.bfloat16 and out.shape == (4, 3, 1)
    expected = torch.sigmoid(z.double() + b.double()).sum(-1, keepdim=True)
    torch.testing.assert_close(out.double(), expected, rtol=8e-3, atol=0)


def test_bfloat16_rounding_is_to_nearest_even():
    values = np.array([1.0, 1.00390625, 1.01171875, 3.0e38, np.inf, -np.inf, np.nan], np.float32)
    out = np.empty(values.shape, np.int16)
    host.store(values, out, "bfloat16")
    expected = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy()
    np.testing.assert_array_equal(out[:-1], expected[:-1])
    assert torch.from_numpy(out).view(torch.bfloat16)[-1].isnan()


def test_float16_overflow_gives_inf_quietly_as_torch_does():
    x, w = torch.ones(2, 4, dtype=torch.float16), torch.ones(70000, 4, dtype=torch.float16)  # sums above 65504
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = cupy_fused.linear_sigmoid_sum(x, w)
    assert out.dtype == torch.float16 and out.isposinf().all()
    assert torch.equal(out, torch_expression(x, w, None))
