"""The NumPy backend: BLAS matmul over chunks of N, a numerically stable sigmoid, exact accumulation.

One (B, chunk) block of z exists at a time, in one buffer allocated per call and reused by every chunk; the chunk
is chosen so that the buffer, and for half inputs the float32 copy of the chunk's weight rows, fit
``workspace_bytes``. float16 and bfloat16 operands are widened to float32 a chunk at a time (x once, as a whole);
float32 runs in strict fp32 whatever the precision argument says (CPUs have no TF32), float64 in float64. Row sums
of a chunk are taken in the compute dtype (numpy's pairwise summation) and added across chunks in float64, so many
chunks lose nothing. A single chunk (the common case) runs in place in the matmul's output.
"""

from __future__ import annotations

import numpy as np

from . import chunk_columns


def compute_dtype(dtype: str):
    return np.float64 if dtype == "float64" else np.float32


def widen(a: np.ndarray, dtype: str) -> np.ndarray:
    """Values in the compute dtype: bfloat16 bits (int16) -> float32, float16 -> float32, others unchanged."""
    if dtype == "bfloat16":
        return (a.astype(np.uint16).astype(np.uint32) << 16).view(np.float32)
    if dtype == "float16":
        return a.astype(np.float32)
    return a


def store(acc: np.ndarray, out: np.ndarray, dtype: str) -> None:
    """Write sums into the caller's output, rounding to nearest even (bfloat16 as int16 bits). Sums beyond the
    output dtype's range become inf quietly, as torch's do."""
    if dtype != "bfloat16":
        with np.errstate(over="ignore"):
            out[...] = acc
        return
    bits = np.ascontiguousarray(acc, np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    nan = np.isnan(acc)
    rounded[nan] = (bits[nan] >> 16) | 0x40  # keep NaN a (quiet) NaN
    out[...] = rounded.astype(np.uint16).view(np.int16)


def _sigmoid_in_place(z: np.ndarray, bias: np.ndarray | None) -> None:
    """z <- sigmoid(z + bias). inf + -inf is NaN, as in torch; exp(-z) overflows to inf for z << 0, where sigmoid
    is 0 as it should be."""
    with np.errstate(over="ignore", invalid="ignore"):
        if bias is not None:
            z += bias
        np.negative(z, out=z)
        np.exp(z, out=z)
    z += 1
    np.reciprocal(z, out=z)


def save_dsigmoid(saved: np.ndarray, z: np.ndarray, bias: np.ndarray | None, dtype: str) -> None:
    """saved (the caller's dtype; bfloat16 as int16 bits) <- sigmoid'(z + bias), rounded to nearest."""
    if saved.dtype == z.dtype:
        dsigmoid_into(saved, z, bias)
        return
    block = np.empty(z.shape, z.dtype)
    dsigmoid_into(block, z, bias)
    store(block, saved, dtype)


def dsigmoid_into(dst: np.ndarray, z: np.ndarray, bias: np.ndarray | None) -> None:
    """dst <- sigmoid'(z + bias) = 1 / (4 cosh((z + bias) / 2)^2): accurate for any z (no cancellation in 1 - s);
    cosh overflows to inf where the true value underflows, giving 0."""
    dst[...] = z
    with np.errstate(over="ignore", invalid="ignore"):
        if bias is not None:
            dst += bias
        dst *= 0.5
        np.cosh(dst, out=dst)
        np.multiply(dst, dst, out=dst)
    np.reciprocal(dst, out=dst)
    dst *= 0.25


def _matmul(x: np.ndarray, w_t: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """x @ w_t; inf and NaN in the operands give inf and NaN quietly, as in torch."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.matmul(x, w_t, out=out)


def host_chunk_columns(rows: int, n: int, k: int, dtype: str, workspace_bytes: int) -> int:
    """Columns per chunk: the z block (and, for half inputs, the chunk's widened weight rows) fit the workspace."""
    item = np.dtype(compute_dtype(dtype)).itemsize
    column_bytes = item * (max(rows, 1) + (k if dtype in ("float16", "bfloat16") else 0))
    return chunk_columns(n, column_bytes, workspace_bytes, multiple_of_8=False)


class Linear:
    """out (rows,) = sum_j sigmoid(x @ w.T + b) for one signature: x (rows, K), w (N, K), b (N,) or None (numpy
    views; half types as the adapter hands them over), out a (rows,) view of the caller's output."""

    def __init__(self, rows: int, n: int, k: int, dtype: str, workspace_bytes: int):
        self.rows, self.n, self.dtype = rows, n, dtype
        self.step = host_chunk_columns(rows, n, k, dtype, workspace_bytes)
        self.compute = compute_dtype(dtype)
        self.direct = self.step >= n and dtype in ("float32", "float64")  # one chunk, summed straight into out

    def run(self, x, w, b, out, saved=None) -> None:
        """saved: None, or a (rows, N) array of the caller's dtype that receives sigmoid'(z) for a training step."""
        dtype, compute = self.dtype, self.compute
        xs = widen(x, dtype)
        if self.direct:
            z = _matmul(xs, w.T)
            if saved is not None:
                save_dsigmoid(saved, z, b, dtype)
            _sigmoid_in_place(z, b)
            z.sum(axis=1, out=out)
            return
        buffer = np.empty(self.rows * self.step, compute)
        acc = np.zeros(self.rows, np.float64)
        for start in range(0, self.n, self.step):
            stop = min(start + self.step, self.n)
            # a contiguous block, the last (narrower) one too: numpy 2.4's in-place np.negative misreads some strided
            # views (a (rows, 1) column of a wider block among them)
            z = buffer[: self.rows * (stop - start)].reshape(self.rows, stop - start)
            _matmul(xs, widen(w[start:stop], dtype).T, out=z)
            bc = None if b is None else widen(b[start:stop], dtype)
            if saved is not None:
                save_dsigmoid(saved[:, start:stop], z, bc, dtype)
            _sigmoid_in_place(z, bc)
            acc += z.sum(axis=1, dtype=compute)
        store(acc.astype(compute), out, dtype)

    def describe(self) -> str:
        chunks = -(-self.n // self.step)
        return (
            f"NumPy backend: BLAS matmul, {chunks} chunk{'s' if chunks > 1 else ''} of N ({self.step} columns), "
            f"{np.dtype(self.compute).name} arithmetic"
        )


class SigmoidSum:
    """out (rows,) = sum_j sigmoid(z + b) over z (rows, N) (numpy views); z itself is never written."""

    def __init__(self, rows: int, n: int, dtype: str, workspace_bytes: int):
        self.rows, self.n, self.dtype = rows, n, dtype
        self.compute = compute_dtype(dtype)
        self.step = host_chunk_columns(rows, n, 0, dtype, workspace_bytes)

    def run(self, z, b, out) -> None:
        acc = np.zeros(self.rows, np.float64)
        for start in range(0, self.n, self.step):
            stop = min(start + self.step, self.n)
            block = np.array(widen(z[:, start:stop], self.dtype), dtype=self.compute)  # a copy: the scratch block
            _sigmoid_in_place(block, None if b is None else widen(b[start:stop], self.dtype))
            acc += block.sum(axis=1, dtype=self.compute)
        store(acc.astype(self.compute), out, self.dtype)

    def describe(self) -> str:
        return f"NumPy backend: {-(-self.n // self.step)} chunk(s) of {self.step} columns"
