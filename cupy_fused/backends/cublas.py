"""The two-pass method: cuBLASLt (compute type per plan) into a (B, chunk of N) workspace, then the reduction.

Chunk after chunk of N, z = x @ W[chunk].T lands in the workspace (at most ``workspace_bytes``, in the accumulator
dtype) and ``reduce.SigmoidSum`` adds sum_j sigmoid(z + bias) to a double carry; the last chunk writes out. The
matmul descriptors and algorithm are chosen once per plan (backends/cublaslt.py); nothing global is read or changed.
"""

from __future__ import annotations

from ..precision import CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_64F, TABLE
from . import Candidate, Problem, chunk_columns, round_up
from .cublaslt import matmul_rows
from .reduce import SigmoidSum

ALIGN = 256


def compute_type(dtype: str, precision: str) -> int:
    if dtype == "float64":
        return CUBLAS_COMPUTE_64F
    return TABLE[precision].cublas_compute if dtype == "float32" else CUBLAS_COMPUTE_32F


class TwoPass:
    def __init__(self, p: Problem, precision: str):
        self._p = p
        step = self._step = chunk_columns(p.n, p.rows * p.acc_itemsize, p.workspace_limit)  # z's (B, chunk) block
        compute = compute_type(p.dtype, precision)
        tail = p.n % step
        align = (16, 16, 16) if p.aligned else (p.itemsize, p.itemsize, 16)  # z: the workspace, 256-byte aligned
        self._full = matmul_rows(
            p.rows, step, p.k, p.dtype, p.acc_dtype, compute, p.ldx, p.ldw, step, p.device_id, align
        )
        self._tail = (
            matmul_rows(p.rows, tail, p.k, p.dtype, p.acc_dtype, compute, p.ldx, p.ldw, step, p.device_id, align)
            if tail
            else None
        )
        vec = (step * p.acc_itemsize) % 16 == 0
        self._reduce = SigmoidSum(p.rows, step, p.acc_dtype, p.dtype, vec, p.device_id, ld_saved=p.n)
        self._z_bytes = round_up(p.rows * step * p.acc_itemsize, ALIGN)
        self._carry_bytes = round_up(p.rows * 8, ALIGN) if p.n > step else 0
        lt = max(self._full.workspace_bytes, self._tail.workspace_bytes if self._tail else 0)
        self.workspace_bytes = self._z_bytes + self._carry_bytes + lt
        self._compute = compute

    def run(self, x, w, b, out, workspace, stream, saved=0):
        p, step = self._p, self._step
        z, carry = workspace, workspace + self._z_bytes
        lt = carry + self._carry_bytes
        for start in range(0, p.n, step):
            width = min(step, p.n - start)
            (self._full if width == step else self._tail).run(w + start * p.ldw * p.itemsize, x, z, lt, stream)
            last = start + width == p.n
            self._reduce(
                stream,
                z,
                b + start * p.itemsize if b else 0,
                carry if start else 0,
                0 if last else carry,
                out if last else 0,
                saved + start * p.acc_itemsize if saved else 0,
                width,
            )

    def describe(self) -> str:
        chunks = -(-self._p.n // self._step)
        return (
            f"cublasLtMatmul (compute type {self._compute}) into a {self._p.rows} x {self._step} workspace, then "
            f"{self._reduce.describe()}; {chunks} chunk{'s' if chunks > 1 else ''} of N"
        )


def candidates(p: Problem, precision: str) -> list[Candidate]:
    if p.dtype == "float32" and TABLE[precision].cublas_compute is None:
        return []
    return [
        Candidate("cublas", precision, f"cublaslt:{compute_type(p.dtype, precision)}", lambda: TwoPass(p, precision))
    ]
