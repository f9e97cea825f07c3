"""The NumPy backend: BLAS matmul over chunks of N, a numerically stable sigmoid, fp32 (fp64) accumulation.

Memory stays bounded: one (B, chunk) block of z lives at a time, chunk chosen so that it fits the workspace.
float16 and bfloat16 operands are widened to float32 a chunk at a time; float32 runs in strict fp32 whatever the
precision argument says (the CPU has no TF32), float64 in float64.
"""

from __future__ import annotations

import numpy as np


def acc_dtype(dtype: str):
    return np.float64 if dtype == "float64" else np.float32


def widen(a: np.ndarray, dtype: str) -> np.ndarray:
    """Values in the compute dtype: bfloat16 bits (int16) -> float32, float16 -> float32, others unchanged."""
    if dtype == "bfloat16":
        return (a.astype(np.uint16).astype(np.uint32) << 16).view(np.float32)
    if dtype == "float16":
        return a.astype(np.float32)
    return a


def store(acc: np.ndarray, out: np.ndarray, dtype: str) -> None:
    """Write accumulated sums into the caller's output, rounding to nearest even (bfloat16 as int16 bits)."""
    if dtype != "bfloat16":
        out[...] = acc
        return
    bits = np.ascontiguousarray(acc, np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    nan = np.isnan(acc)
    rounded[nan] = (bits[nan] >> 16) | 0x40  # keep NaN a (quiet) NaN
    out[...] = rounded.astype(np.uint16).view(np.int16)


def _chunk(rows: int, workspace_bytes: int, itemsize: int) -> int:
    return max(1, workspace_bytes // (max(rows, 1) * itemsize))


def _add_sigmoid_sum(z: np.ndarray, bias: np.ndarray | None, acc: np.ndarray) -> None:
    """acc += sum_j sigmoid(z[:, j] + bias[j]), in place on z (a scratch block)."""
    # inf + -inf is NaN, as in torch; exp(-z) overflows to inf for z << 0, where sigmoid is 0 as it should be.
    with np.errstate(over="ignore", invalid="ignore"):
        if bias is not None:
            z += bias
        np.negative(z, out=z)
        np.exp(z, out=z)
    z += 1
    np.reciprocal(z, out=z)
    acc += z.sum(axis=1, dtype=acc.dtype)


def linear_sigmoid_sum(x, weight, bias, dtype: str, workspace_bytes: int) -> np.ndarray:
    """x (B, K), weight (N, K), bias (N,) or None -> (B,) sums in the accumulator dtype."""
    compute = acc_dtype(dtype)
    xs = widen(x, dtype)
    rows, n = x.shape[0], weight.shape[0]
    acc = np.zeros(rows, compute)
    step = _chunk(rows, workspace_bytes, np.dtype(compute).itemsize)
    for start in range(0, n, step):
        stop = min(start + step, n)
        z = xs @ widen(weight[start:stop], dtype).T
        b = None if bias is None else widen(bias[start:stop], dtype)
        _add_sigmoid_sum(z, b, acc)
    return acc


def sigmoid_sum(z, bias, dtype: str, workspace_bytes: int) -> np.ndarray:
    """z (B, N), bias (N,) or None -> (B,) sums in the accumulator dtype; z itself is never written."""
    compute = acc_dtype(dtype)
    rows, n = z.shape
    acc = np.zeros(rows, compute)
    step = _chunk(rows, workspace_bytes, np.dtype(compute).itemsize)
    for start in range(0, n, step):
        stop = min(start + step, n)
        block = np.array(widen(z[:, start:stop], dtype), dtype=compute)  # a copy: the scratch block
        b = None if bias is None else widen(bias[start:stop], dtype)
        _add_sigmoid_sum(block, b, acc)
    return acc
