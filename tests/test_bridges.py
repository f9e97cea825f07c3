"""Arrays of other libraries through the DLPack bridge (cupy_fused/arrays/dlpack.py, arrays/jax.py): JAX arrays and
Array-API arrays (array-api-strict) in and out on the CPU, zero-copy, the result of the caller's library, dtype and
shape; what cannot be handed over is refused naming the argument; traced JAX values are refused with the way out
(and the pure_callback recipe works); JAX CUDA arrays on the device."""

import contextlib

import numpy as np
import pytest
from helpers import linear_sigmoid_sum as reference
from helpers import make_inputs, rel_err
from helpers import sigmoid_sum as reference_sum

import cupy_fused
from cupy_fused import arrays

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")


def jax_dtype(dtype: str):
    """A context in which JAX keeps arrays of dtype (float64 needs JAX's 64-bit mode)."""
    if dtype != "float64":
        return contextlib.nullcontext()
    if callable(getattr(jax, "enable_x64", None)):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # older JAX

    return enable_x64()


@pytest.fixture
def inputs(rng):
    return make_inputs(rng, (3, 5), 40, 24)  # float64 x (3, 5, 40), w (24, 40), b (24,)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_jax_cpu_arrays_in_and_out(inputs, dtype):
    with jax_dtype(dtype):
        check_jax_cpu_arrays(inputs, dtype)


def check_jax_cpu_arrays(inputs, dtype):
    operands = [jnp.asarray(a.astype(dtype)) for a in inputs]
    before = [np.array(a) for a in operands]
    out = cupy_fused.linear_sigmoid_sum(*operands)
    assert isinstance(out, jax.Array) and out.dtype == operands[0].dtype and out.shape == (3, 5, 1)
    expected = cupy_fused.linear_sigmoid_sum(*(np.asarray(a) for a in operands))  # the NumPy backend's own result
    assert np.array_equal(np.asarray(out), expected)
    assert rel_err(np.asarray(out), reference(*inputs)) < {"float64": 1e-12, "float32": 1e-6, "float16": 2e-3}[dtype]
    assert all(np.array_equal(np.asarray(a), b) for a, b in zip(operands, before))
    flat = cupy_fused.sigmoid_sum(operands[0][..., :7], operands[2][:7], keepdims=False)
    assert isinstance(flat, jax.Array) and flat.shape == (3, 5)
    assert rel_err(np.asarray(flat), reference_sum(inputs[0][..., :7], inputs[2][:7], False)) < 2e-3


def test_jax_operands_are_read_in_place(inputs):
    x = jnp.asarray(inputs[0].astype(np.float32))
    view = arrays.adapter_for(x).native(x)
    assert isinstance(view, np.ndarray) and view.ctypes.data == x.unsafe_buffer_pointer()
    p = cupy_fused.plan(x, jnp.asarray(inputs[1].astype(np.float32)))
    assert "jax arrays on cpu, read as numpy arrays through DLPack (no copies)" in p.explain()


def test_traced_jax_values_are_refused_with_the_way_out(inputs):
    w = jnp.asarray(inputs[1].astype(np.float32))
    with pytest.raises(TypeError, match="x is a traced JAX value .*outside jax.jit.*jax.pure_callback"):
        jax.jit(lambda x: cupy_fused.linear_sigmoid_sum(x, w))(jnp.asarray(inputs[0].astype(np.float32)))


def test_the_pure_callback_recipe_runs_under_jit(inputs):
    x, w, b = (jnp.asarray(a.astype(np.float32)) for a in inputs)

    @jax.jit
    def model(x, w, b):
        result = jax.ShapeDtypeStruct(x.shape[:-1] + (1,), x.dtype)
        return jax.pure_callback(cupy_fused.linear_sigmoid_sum, result, x, w, b)

    out = model(x, w, b)
    assert out.shape == (3, 5, 1) and rel_err(np.asarray(out), reference(*inputs)) < 1e-6


def test_jax_errors_name_the_argument(inputs):
    x, w, b = (jnp.asarray(a.astype(np.float32)) for a in inputs)
    with pytest.raises(TypeError, match="weight is a numpy array but x is a jax array"):
        cupy_fused.linear_sigmoid_sum(x, np.asarray(w))
    with pytest.raises(ValueError, match=r"weight must have shape \(N, K\) with K == x.shape\[-1\] == 40"):
        cupy_fused.linear_sigmoid_sum(x, w[:, :7])
    with pytest.raises(TypeError, match="x must have a floating dtype .*got int32"):
        cupy_fused.linear_sigmoid_sum(x.astype(jnp.int32), w.astype(jnp.int32))
    with pytest.raises(TypeError, match="stream applies to GPU arrays only; the arrays are jax arrays on the CPU"):
        cupy_fused.linear_sigmoid_sum(x, w, b, stream=object())
    with pytest.raises(TypeError, match="training .* takes numpy, cupy or torch arrays, got jax arrays"):
        cupy_fused.backward.forward(x, w, b)
    assert np.allclose(np.asarray(cupy_fused.linear_sigmoid_sum(x, w, b)), reference(*inputs), rtol=1e-5)  # still good


# ------------------------------------------------------------------------------------------ any Array-API library


def test_array_api_strict_arrays_in_and_out(inputs):
    xp = pytest.importorskip("array_api_strict")
    operands = [xp.asarray(a.astype(np.float32)) for a in inputs]
    out = cupy_fused.linear_sigmoid_sum(*operands, keepdims=False)
    assert type(out) is type(operands[0]) and out.dtype == xp.float32 and out.shape == (3, 5)
    assert rel_err(np.from_dlpack(out), reference(*inputs, keepdims=False)) < 1e-6


def test_array_api_strict_that_cannot_hand_over_is_refused(inputs):
    xp = pytest.importorskip("array_api_strict")
    with xp.ArrayAPIStrictFlags(api_version="2022.12"):  # its __dlpack__ refuses DLPack 1.0's max_version
        x, w = (xp.asarray(a.astype(np.float32)) for a in inputs[:2])
        with pytest.raises(TypeError, match="x cannot hand over its data through DLPack .*array_api_strict"):
            cupy_fused.linear_sigmoid_sum(x, w)


class ForeignArray:
    """An Array-API array on a device cupy_fused does not compute on (here oneAPI, as dpnp's arrays are)."""

    def __init__(self, data, device_type=14):
        self._data, self.shape, self.dtype, self._device = data, data.shape, data.dtype, (device_type, 0)

    def __dlpack__(self, **kwargs):
        return self._data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._device

    def __array_namespace__(self):
        return np


def test_a_device_we_do_not_compute_on_is_refused(inputs):
    x, w = (ForeignArray(a.astype(np.float32)) for a in inputs[:2])
    with pytest.raises(TypeError, match=r"x lives on a oneAPI device \(a test_bridges.ForeignArray .*type 14\)"):
        cupy_fused.linear_sigmoid_sum(x, w)


def test_a_generic_host_array_comes_back_through_its_namespace(inputs):
    x, w, b = (ForeignArray(a.astype(np.float32), device_type=1) for a in inputs)
    out = cupy_fused.linear_sigmoid_sum(x, w, b)  # the namespace is numpy: numpy.from_dlpack
    assert type(out) is np.ndarray and rel_err(out, reference(*inputs)) < 1e-6


# ------------------------------------------------------------------------------------------------------ JAX on CUDA


def _jax_gpu():
    try:
        return jax.devices("gpu")[0]
    except RuntimeError:
        return None


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_jax_cuda_arrays_in_and_out(inputs, dtype):
    cp = pytest.importorskip("cupy")
    device = _jax_gpu()
    if device is None:
        pytest.skip("this jax has no CUDA backend")
    with jax_dtype(dtype):
        check_jax_cuda_arrays(inputs, dtype, device, cp)


def check_jax_cuda_arrays(inputs, dtype, device, cp):
    operands = [jax.device_put(jnp.asarray(a.astype(dtype)), device) for a in inputs]
    view = arrays.adapter_for(operands[0]).native(operands[0])
    assert isinstance(view, cp.ndarray) and view.data.ptr == operands[0].unsafe_buffer_pointer()  # zero-copy
    produced = jnp.tanh(operands[0]) * 0 + operands[0]  # queued by JAX just before: the hand-over must wait for it
    out = cupy_fused.linear_sigmoid_sum(produced, *operands[1:])
    assert isinstance(out, jax.Array) and out.devices() == {device} and out.dtype == operands[0].dtype
    assert out.shape == (3, 5, 1)
    ours = cupy_fused.linear_sigmoid_sum(*(cp.asarray(np.asarray(a)) for a in operands))
    assert np.array_equal(np.asarray(out), cp.asnumpy(ours))  # the same plan as for cupy arrays
    budget = {"float64": 1e-12, "float32": 1e-6, "float16": 2e-3}[dtype]
    assert rel_err(np.asarray(out), reference(*inputs)) < budget
