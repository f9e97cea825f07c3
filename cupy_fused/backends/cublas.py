"""The two-pass method: cuBLASLt (compute type per plan) into blocks of z in the workspace, then the reduction.

z = x @ W.T is computed block after block, row blocks outer and column blocks inner; each block lands in the
workspace (in the accumulator dtype) and ``reduce.SigmoidSum`` adds its rows' sum_j sigmoid(z + bias) to a double
carry, the last column block of a row block writing out. A block holds whole rows while a chunk of N stays at least
BLOCK_MIN_COLUMNS wide; beyond that it is BLOCK_MIN_COLUMNS columns and as many rows as fit. Blocks are at most
BLOCK_BYTES and ``workspace_bytes``. The matmul descriptors and algorithm are chosen once per plan
(backends/cublaslt.py); nothing global is read or changed.
"""

from __future__ import annotations

from ..precision import CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_64F, TABLE
from . import Candidate, Problem, chunk_columns, round_up
from .cublaslt import matmul_rows
from .reduce import SigmoidSum

ALIGN = 256


def compute_type(dtype: str, precision: str) -> int:
    if dtype != "float32":
        return CUBLAS_COMPUTE_64F if dtype == "float64" else CUBLAS_COMPUTE_32F
    compute = TABLE[precision].cublas_compute
    if compute is None:
        raise ValueError(f"precision {precision!r} has no cuBLAS compute type (our kernels only)")
    return compute


# Measured on an H100 (benchmarks/lab/probe_l2_chunks.py, run 1, TF32): 64 MiB blocks are as fast as 256 MiB chunks
# of N (16384 x 1024 x 65536: 4096 x 4096 blocks 7.65 ms, 16384 x 4096 chunks 7.57; 4096 x 4096 x 11008: 0.98 against
# 1.00 ms). Blocks small enough to stay in L2 (4-16 MiB) were slower: the GEMMs lose more than the reduction gains.
BLOCK_BYTES = 64 * 2**20
BLOCK_MIN_COLUMNS = 4096


def block_shape(rows: int, n: int, acc_itemsize: int, bound: int) -> tuple[int, int]:
    """(rows, columns) of z's blocks within ``bound`` bytes (and BLOCK_BYTES): whole rows while a chunk of N keeps
    BLOCK_MIN_COLUMNS columns (or N) or while fewer than 128 rows would fit; else that many columns and a multiple
    of 128 rows."""
    bound = min(bound, BLOCK_BYTES)
    columns = chunk_columns(n, rows * acc_itemsize, bound)
    wide = min(n, BLOCK_MIN_COLUMNS)
    block_rows = bound // (wide * acc_itemsize) // 128 * 128
    if columns >= wide or block_rows == 0:
        return rows, columns
    return min(rows, block_rows), wide


class TwoPass:
    def __init__(self, p: Problem, precision: str):
        self._p = p
        r, c = self._block = block_shape(p.rows, p.n, p.acc_itemsize, p.workspace_limit)
        compute = compute_type(p.dtype, precision)
        align = (16, 16, 16) if p.aligned else (p.itemsize, p.itemsize, 16)  # z: the workspace, 256-byte aligned
        row_counts = {r, p.rows % r} - {0}
        self._gemms = {
            (rows, cols): matmul_rows(
                rows, cols, p.k, p.dtype, p.acc_dtype, compute, p.ldx, p.ldw, c, p.device_id, align
            )
            for rows in row_counts
            for cols in {c, p.n % c} - {0}
        }
        vec = (c * p.acc_itemsize) % 16 == 0
        self._reduces = {
            rows: SigmoidSum(rows, c, p.acc_dtype, p.dtype, vec, p.device_id, ld_saved=p.n) for rows in row_counts
        }
        self._z_bytes = round_up(r * c * p.acc_itemsize, ALIGN)
        self._carry_bytes = round_up(r * 8, ALIGN) if p.n > c else 0
        lt = max(g.workspace_bytes for g in self._gemms.values())
        self.workspace_bytes = self._z_bytes + self._carry_bytes + lt
        self._compute = compute

    def run(self, x, w, b, out, workspace, stream, saved=0):
        p, (r, c) = self._p, self._block
        z, carry = workspace, workspace + self._z_bytes
        lt = carry + self._carry_bytes
        for r0 in range(0, p.rows, r):
            rows = min(r, p.rows - r0)
            for c0 in range(0, p.n, c):
                cols = min(c, p.n - c0)
                self._gemms[rows, cols].run(w + c0 * p.ldw * p.itemsize, x + r0 * p.ldx * p.itemsize, z, lt, stream)
                last = c0 + cols == p.n
                self._reduces[rows](
                    stream,
                    z,
                    b + c0 * p.itemsize if b else 0,
                    carry if c0 else 0,
                    0 if last else carry,
                    out + r0 * p.itemsize if last else 0,
                    saved + (r0 * p.n + c0) * p.itemsize if saved else 0,
                    cols,
                )

    def describe(self) -> str:
        (r, c), p = self._block, self._p
        blocks = -(-p.rows // r) * -(-p.n // c)
        return (
            f"cublasLtMatmul (compute type {self._compute}) into a {r} x {c} workspace, then "
            f"{self._reduces[r].describe()}; {blocks} block{'s' if blocks > 1 else ''} of z"
        )


def candidates(p: Problem, precision: str) -> list[Candidate]:
    if p.dtype == "float32" and TABLE[precision].cublas_compute is None:
        return []
    return [
        Candidate("cublas", precision, f"cublaslt:{compute_type(p.dtype, precision)}", lambda: TwoPass(p, precision))
    ]
