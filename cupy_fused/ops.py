"""Public functions: describe -> validate -> plan -> run -> return the caller's type."""

from __future__ import annotations

import math

from . import _arrays, _checks

DEFAULT_WORKSPACE_BYTES = 256 * 2**20


def linear_sigmoid_sum(
    x,
    weight,
    bias=None,
    *,
    precision=None,
    method="auto",
    keepdims=True,
    stream=None,
    workspace_bytes=DEFAULT_WORKSPACE_BYTES,
):
    """``sum_j sigmoid(x @ weight.T + bias)[..., j]``, as
    ``torch.sum(torch.sigmoid(torch.nn.functional.linear(x, weight, bias)), dim=-1, keepdim=True)``.

    x: (..., K); weight: (N, K); bias: (N,) or None; all numpy arrays, all cupy arrays or all torch tensors of one
    device and one floating dtype. Returns (..., 1) (or (...) with ``keepdims=False``) of the same library, device
    and dtype. Host data runs on the NumPy backend, device data on the GPU (on the library's current stream, or
    ``stream``). ``precision`` ("ieee" by default, "tf32" or "bf16") sets how float32 products are computed on the
    GPU; half inputs accumulate in float32, float64 in float64; the NumPy backend is always strict.
    ``workspace_bytes`` bounds the (B, chunk of N) intermediate. Inputs are never modified.
    """
    ops = [_arrays.describe("x", x), _arrays.describe("weight", weight)]
    if bias is not None:
        ops.append(_arrays.describe("bias", bias))
    _checks.same_kind(ops)
    _checks.linear_shapes(ops[0], ops[1], ops[2] if bias is not None else None)
    precision = _checks.precision(precision)
    method = _checks.method(method)
    keepdims = _checks.flag("keepdims", keepdims)
    workspace_bytes = _checks.workspace_bytes(workspace_bytes)
    xo = ops[0]
    n, k = ops[1].shape
    batch = xo.shape[:-1]
    rows = math.prod(batch)
    if xo.device == "cpu":
        if method != "auto":
            raise ValueError(f"method={method!r} needs GPU arrays; host arrays run on the NumPy backend (use 'auto')")
    else:
        from . import _plan

        method, precision = _plan.choose(rows, k, n, xo.dtype, precision, method, xo.device_id)

    with _arrays.running_on(xo.library, xo.device, stream) as run_stream:
        result, out = _arrays.empty(xo.library, batch + ((1,) if keepdims else ()), xo.dtype, xo.device)
        if rows == 0:
            return result
        out = out.reshape(rows)
        views = [_arrays.backend_view(op) for op in ops]
        x2 = views[0] if len(xo.shape) == 2 else views[0].reshape(rows, k)
        w, b = views[1], (views[2] if bias is not None else None)
        if xo.device == "cpu":
            from . import _cpu

            _cpu.store(_cpu.linear_sigmoid_sum(x2, w, b, xo.dtype, workspace_bytes), out, xo.dtype)
            return result
        if n == 0:
            out.fill(0)
            return result
        new_array = _workspace_allocator(xo)
        if b is not None and not b.flags.c_contiguous:
            b = b.copy()
        if method == "fused" and k > 0:
            from . import _fused

            x2, w = (a if a.strides[1] == a.dtype.itemsize else a.copy() for a in (x2, w))
            logical = "bfloat16" if xo.dtype == "bfloat16" else None
            _fused.run(x2, w, b, out, precision, run_stream, logical, new_array=new_array)
        else:
            from . import _gpu

            # float32 "tf32x3" reaches here only with K = 0 (_plan sends it to the fused kernel), when no GEMM runs;
            # other dtypes ignore the precision
            _gpu.linear_sigmoid_sum(x2, w, b, out, xo.dtype, precision, run_stream, workspace_bytes, new_array)
        return result


def sigmoid_sum(z, bias=None, *, keepdims=True, stream=None, workspace_bytes=DEFAULT_WORKSPACE_BYTES):
    """``sum_j sigmoid(z + bias)[..., j]`` over the last axis of an already computed z (..., N); bias (N,) or None
    is added per column before the sigmoid. Same libraries, devices, dtypes and streams as linear_sigmoid_sum;
    accumulates in float32 (float64 for float64). z is only read."""
    ops = [_arrays.describe("z", z)]
    if bias is not None:
        ops.append(_arrays.describe("bias", bias))
    _checks.same_kind(ops)
    _checks.sum_shapes(ops[0], ops[1] if bias is not None else None)
    keepdims = _checks.flag("keepdims", keepdims)
    workspace_bytes = _checks.workspace_bytes(workspace_bytes)
    zo = ops[0]
    batch, n = zo.shape[:-1], zo.shape[-1]
    rows = math.prod(batch)
    with _arrays.running_on(zo.library, zo.device, stream) as run_stream:
        result, out = _arrays.empty(zo.library, batch + ((1,) if keepdims else ()), zo.dtype, zo.device)
        if rows == 0:
            return result
        out = out.reshape(rows)
        views = [_arrays.backend_view(op) for op in ops]
        z2 = views[0].reshape(rows, n)
        b = views[1] if bias is not None else None
        if zo.device == "cpu":
            from . import _cpu

            _cpu.store(_cpu.sigmoid_sum(z2, b, zo.dtype, workspace_bytes), out, zo.dtype)
        elif n == 0:
            out.fill(0)
        else:
            from . import _gpu

            if z2.strides[1] != z2.dtype.itemsize:
                z2 = z2.copy()
            if b is not None and not b.flags.c_contiguous:
                b = b.copy()
            _gpu.launch_sigmoid_sum(z2, zo.dtype, b, zo.dtype, None, None, out, run_stream)
        return result


def _workspace_allocator(op: _arrays.Operand):
    """Workspaces come from the caller's library (torch's caching allocator for torch tensors), on the current
    stream."""

    def new_array(shape, dtype):
        return _arrays.empty(op.library, shape, dtype, op.device)[1]

    return new_array
