"""The CuPy backend, two-pass method: cuBLAS matmul (per-call compute type) over chunks of N, then our
sigmoid-sum kernel (kernels/sigmoid_sum.cu) on each chunk.

All arrays here are cupy views on the current device; everything is queued on the stream passed in. bfloat16
data arrives as int16 bits with ``dtype == "bfloat16"``.
"""

from __future__ import annotations

import numpy as np

from . import _kernels

_THREADS = 256
_CUDA_TYPE = {"float16": 2, "float32": 0, "float64": 1, "bfloat16": 14}  # cudaDataType: CUDA_R_16F, _32F, _64F, _16BF
_CXX_TYPE = {"float16": "__half", "float32": "float", "float64": "double", "bfloat16": "__nv_bfloat16"}
# cublasComputeType_t per precision for float32 operands; half inputs always accumulate in fp32, double in fp64.
_COMPUTE = {"ieee": 68, "tf32": 77, "bf16": 75}  # CUBLAS_COMPUTE_32F, _32F_FAST_TF32, _32F_FAST_16BF
_COMPUTE_64F = 70
GEMM_PRECISIONS = tuple(_COMPUTE)


def acc_dtype(dtype: str) -> str:
    return "float64" if dtype == "float64" else "float32"


# ---------------------------------------------------------------------------------------------------------- reduction

def _sigmoid_sum_name(z_dtype: str, dtype: str, rows_per_block: int, vec: bool) -> str:
    return f"sigmoid_sum<{_CXX_TYPE[z_dtype]}, {_CXX_TYPE[dtype]}, {rows_per_block}, {'true' if vec else 'false'}>"


def sigmoid_sum_instances() -> list[str]:
    """Every instance launch_sigmoid_sum can ask for (the CI compile check builds them all)."""
    pairs = [(d, d) for d in _CXX_TYPE] + [("float32", "float16"), ("float32", "bfloat16")]
    return [_sigmoid_sum_name(z, t, r, v) for z, t in pairs for r in (1, 4) for v in (False, True)]


def launch_sigmoid_sum(z, z_dtype: str, bias, dtype: str, carry, partial, out, stream) -> None:
    """out[r] (or partial[r]) = carry[r] + sum_j sigmoid(z[r, j] + bias[j]).

    z: (rows, cols) with unit column stride; bias: contiguous (cols,) or None; carry/partial: (rows,) accumulator
    arrays or None; out: contiguous (rows,) of ``dtype`` or None (then partial receives the sums)."""
    rows, cols = z.shape
    item = z.dtype.itemsize
    ldz = z.strides[0] // item if rows > 1 else cols
    vec = z.data.ptr % 16 == 0 and (ldz * item) % 16 == 0
    rows_per_block = 4 if rows >= 4096 else 1
    kernel = _kernels.get_function("sigmoid_sum.cu", _sigmoid_sum_name(z_dtype, dtype, rows_per_block, vec))
    null = np.uint64(0)
    kernel(
        ((rows + rows_per_block - 1) // rows_per_block,),
        (_THREADS,),
        (
            z,
            np.int64(ldz),
            null if bias is None else bias,
            null if carry is None else carry,
            null if partial is None else partial,
            null if out is None else out,
            np.int64(rows),
            np.int64(cols),
        ),
        stream=stream,
    )


# ------------------------------------------------------------------------------------------------------------- cuBLAS

def _blas_layout(a, rows: int, cols: int):
    """How cuBLAS (column-major) can read a (rows, cols) view: (row_major, ld), or None when its strides fit
    neither orientation (the caller then makes it contiguous). A row-major array's memory is the column-major
    transpose of it."""
    item = a.dtype.itemsize
    if a.strides[0] % item or a.strides[1] % item:
        return None
    s0, s1 = a.strides[0] // item, a.strides[1] // item
    if (s1 == 1 or cols == 1) and (rows == 1 or s0 >= max(cols, 1)):
        return True, max(s0 if rows > 1 else cols, 1)
    if (s0 == 1 or rows == 1) and (cols == 1 or s1 >= max(rows, 1)):
        return False, max(s1 if cols > 1 else rows, 1)
    return None


def blas_ready(a):
    """``a`` itself when cuBLAS can read its strides, else a contiguous copy."""
    import cupy

    return a if _blas_layout(a, *a.shape) is not None else cupy.ascontiguousarray(a)


def gemm(x, w, z, dtype: str, precision: str, stream) -> None:
    """z (B, n) row-major with unit column stride, in the accumulator dtype = x (B, K) @ w (n, K).T, queued on
    ``stream``."""
    from cupy.cuda import device
    from cupy_backends.cuda.libs import cublas

    rows, k = x.shape
    n = w.shape[0]
    ld_z = z.strides[0] // z.dtype.itemsize if rows > 1 else n
    w_row_major, ld_w = _blas_layout(w, n, k)
    x_row_major, ld_x = _blas_layout(x, rows, k)
    # Column-major, z.T (n x B) = W (n x K) @ x.T (K x B): a row-major W is stored as W.T (op T), a row-major x as
    # x.T already (op N).
    op_w = cublas.CUBLAS_OP_T if w_row_major else cublas.CUBLAS_OP_N
    op_x = cublas.CUBLAS_OP_N if x_row_major else cublas.CUBLAS_OP_T
    if dtype == "float64":
        compute, scalar = _COMPUTE_64F, np.float64
    else:
        compute, scalar = (_COMPUTE[precision] if dtype == "float32" else _COMPUTE["ieee"]), np.float32
    alpha, beta = np.ones(1, scalar), np.zeros(1, scalar)
    handle = device.get_cublas_handle()
    cublas.setStream(handle, stream.ptr)
    # cuBLAS lets the handle's math mode (CuPy sets TF32 there when CUPY_TF32=1) widen a plain 32F compute type;
    # the precision asked for in this call must win, so the handle runs in default math mode for the call.
    saved_mode = cublas.getMathMode(handle)
    if saved_mode != cublas.CUBLAS_DEFAULT_MATH:
        cublas.setMathMode(handle, cublas.CUBLAS_DEFAULT_MATH)
    try:
        cublas.gemmEx(
            handle, op_w, op_x, n, rows, k,
            alpha.ctypes.data, w.data.ptr, _CUDA_TYPE[dtype], ld_w,
            x.data.ptr, _CUDA_TYPE[dtype], ld_x,
            beta.ctypes.data, z.data.ptr, _CUDA_TYPE[acc_dtype(dtype)], ld_z,
            compute, cublas.CUBLAS_GEMM_DEFAULT,
        )
    finally:
        if saved_mode != cublas.CUBLAS_DEFAULT_MATH:
            cublas.setMathMode(handle, saved_mode)


def linear_sigmoid_sum(x, w, bias, out, dtype: str, precision: str, stream, workspace: int, new_array) -> None:
    """out (B,) = sum_j sigmoid(x @ w.T + bias): cuBLAS into a (B, chunk) workspace, then the reduction kernel,
    chunk after chunk of N. ``new_array(shape, dtype)`` allocates with the caller's library (stream-ordered)."""
    rows, k = x.shape
    n = w.shape[0]
    acc = acc_dtype(dtype)
    item = np.dtype(acc).itemsize
    step = max(1, workspace // (rows * item))
    step = min(n, step if step < 8 else step // 8 * 8)  # keeps every chunk's bias slice 16-byte aligned
    x, w = blas_ready(x), blas_ready(w)
    z_all = new_array((rows, step), acc)
    carry = partial = None
    for start in range(0, n, step):
        stop = min(start + step, n)
        z = z_all[:, : stop - start]
        if k == 0:
            z.fill(0)
        else:
            gemm(x, w[start:stop], z, dtype, precision, stream)
        last = stop == n
        if not last and partial is None:
            partial = new_array((rows,), acc)
        b = None if bias is None else bias[start:stop]
        launch_sigmoid_sum(z, acc, b, dtype, carry, None if last else partial, out if last else None, stream)
        carry = partial
