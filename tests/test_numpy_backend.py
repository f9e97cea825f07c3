"""The NumPy backend against float64 references: odd shapes, every dtype, edge cases, bounded chunks."""

import warnings

import numpy as np
import pytest
from helpers import HOST_TOLERANCE, make_inputs, rel_err
from helpers import linear_sigmoid_sum as ref_lss
from helpers import sigmoid_sum as ref_ss

import cupy_fused

SHAPES = [((1,), 1, 1), ((3,), 5, 7), ((128,), 10, 20), ((257,), 1000, 411), ((2, 3), 17, 9)]
TOLERANCE = {np.dtype(name).type: bound for name, bound in HOST_TOLERANCE.items()}


@pytest.mark.parametrize("dtype", list(TOLERANCE))
@pytest.mark.parametrize("batch,k,n", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_sigmoid_sum_matches_float64(rng, batch, k, n, dtype, bias):
    x, w, b = (None if a is None else a.astype(dtype) for a in make_inputs(rng, batch, k, n, bias))
    copies = [None if a is None else a.copy() for a in (x, w, b)]
    out = cupy_fused.linear_sigmoid_sum(x, w, b)
    assert type(out) is np.ndarray and out.dtype == dtype and out.shape == batch + (1,)
    assert rel_err(out, ref_lss(x, w, b)) <= TOLERANCE[dtype]
    for a, c in zip((x, w, b), copies):
        assert a is None or np.array_equal(a, c)


@pytest.mark.parametrize("dtype", list(TOLERANCE))
def test_sigmoid_sum_matches_float64(rng, dtype):
    z = (3 * rng.standard_normal((5, 7, 33))).astype(dtype)
    b = rng.standard_normal(33).astype(dtype)
    z_copy = z.copy()
    out = cupy_fused.sigmoid_sum(z, b)
    assert out.shape == (5, 7, 1) and out.dtype == dtype
    assert rel_err(out, ref_ss(z, b)) <= TOLERANCE[dtype]
    assert np.array_equal(z, z_copy)
    assert rel_err(cupy_fused.sigmoid_sum(z), ref_ss(z, None)) <= TOLERANCE[dtype]


def test_keepdims_false_drops_the_last_axis(rng):
    x, w, b = make_inputs(rng, (4, 2), 6, 5)
    out = cupy_fused.linear_sigmoid_sum(x, w, b, keepdims=False)
    assert out.shape == (4, 2)
    np.testing.assert_allclose(out, ref_lss(x, w, b, keepdims=False), rtol=1e-12)
    assert cupy_fused.sigmoid_sum(x, keepdims=False).shape == (4, 2)


def test_one_dimensional_x_gives_one_value(rng):
    x, w, b = make_inputs(rng, (), 6, 5)
    out = cupy_fused.linear_sigmoid_sum(x, w, b)
    assert out.shape == (1,)
    np.testing.assert_allclose(out, ref_lss(x, w, b), rtol=1e-12)


def test_non_contiguous_inputs(rng):
    x, w, b = make_inputs(rng, (9,), 40, 30)
    x_view = np.asfortranarray(x)[:, ::2]  # strided columns of a column-major array
    w_view = np.ascontiguousarray(w.T).T[:, ::2]  # a transposed weight, sliced
    b_view = np.repeat(b, 2)[::2]
    out = cupy_fused.linear_sigmoid_sum(x_view, w_view, b_view)
    np.testing.assert_allclose(out, ref_lss(x_view, w_view, b_view), rtol=1e-12)


@pytest.mark.parametrize("workspace_bytes", [1, 8 * 7, 8 * 7 * 64])
def test_small_workspaces_give_the_same_result(rng, workspace_bytes):
    x, w, b = make_inputs(rng, (7,), 12, 300)
    out = cupy_fused.linear_sigmoid_sum(x, w, b, workspace_bytes=workspace_bytes)
    np.testing.assert_allclose(out, ref_lss(x, w, b), rtol=1e-12)
    z = rng.standard_normal((7, 300))
    np.testing.assert_allclose(cupy_fused.sigmoid_sum(z, b, workspace_bytes=workspace_bytes), ref_ss(z, b), rtol=1e-12)


@pytest.mark.parametrize("dtype", list(TOLERANCE))
def test_a_last_chunk_of_one_column_is_right(rng, dtype):
    # 4 + 1 columns: numpy 2.4's in-place np.negative misread the last block, a (2, 1) view of the (2, 4) buffer
    x, w, b = (a.astype(dtype) for a in make_inputs(rng, (2,), 3, 5))
    column_bytes = 2 * 8 if dtype == np.float64 else 4 * (2 + (3 if dtype == np.float16 else 0))
    out = cupy_fused.linear_sigmoid_sum(x, w, b, workspace_bytes=4 * column_bytes)
    assert "2 chunks of N (4 columns)" in cupy_fused.plan(x, w, b, workspace_bytes=4 * column_bytes).explain()
    assert rel_err(out, ref_lss(x, w, b)) <= TOLERANCE[dtype]


def test_empty_batch_gives_empty_result(rng):
    x, w, b = make_inputs(rng, (0,), 4, 3)
    out = cupy_fused.linear_sigmoid_sum(x, w, b)
    assert out.shape == (0, 1) and out.dtype == np.float64


def test_no_hidden_units_gives_zeros(rng):
    x, w, b = make_inputs(rng, (3,), 4, 0)
    np.testing.assert_array_equal(cupy_fused.linear_sigmoid_sum(x, w, b), np.zeros((3, 1)))


def test_no_inputs_gives_sum_of_sigmoid_bias(rng):
    x, w, b = make_inputs(rng, (3,), 0, 5)
    expected = np.full((3, 1), (1 / (1 + np.exp(-b))).sum())
    np.testing.assert_allclose(cupy_fused.linear_sigmoid_sum(x, w, b), expected, rtol=1e-14)


def test_nan_and_inf_propagate_like_torch():
    torch = pytest.importorskip("torch")
    x = np.array([[np.nan, 1.0], [1.0, 2.0], [np.inf, 0.0], [-np.inf, 0.0]], np.float32)
    w = np.array([[1.0, 0.5], [-1.0, 0.25], [2.0, -1.0]], np.float32)
    b = np.array([0.1, np.inf, -np.inf], np.float32)
    out = cupy_fused.linear_sigmoid_sum(x, w, b)
    expected = torch.sum(torch.sigmoid(torch.nn.functional.linear(*map(torch.from_numpy, (x, w, b)))), 1, keepdim=True)
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-6, equal_nan=True)
    assert np.isnan(out[0, 0]) and np.isnan(out[2, 0]) and np.isfinite(out[1, 0])


@pytest.mark.parametrize("workspace_bytes", [256 * 2**20, 4096])  # one chunk, and many
def test_float16_overflow_gives_inf_quietly_like_torch(workspace_bytes):
    x, w = np.ones((2, 4), np.float16), np.ones((70000, 4), np.float16)  # 70000 * sigmoid(4) > 65504, float16's max
    z = np.full((2, 70000), 4, np.float16)
    errstate = np.geterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = cupy_fused.linear_sigmoid_sum(x, w, workspace_bytes=workspace_bytes)
        summed = cupy_fused.sigmoid_sum(z, workspace_bytes=workspace_bytes)
    assert np.isposinf(out).all() and np.isposinf(summed).all()
    assert np.geterr() == errstate  # the warning is silenced around the cast only
    with pytest.warns(RuntimeWarning, match="overflow"):  # and numpy's own setting is back: a cast still warns
        np.float32(1e6).astype(np.float16)
