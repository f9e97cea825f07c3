"""The sigmoid-sum reduction, ``kernels/sigmoid_sum.cu``: out[r] = carry[r] + sum_j sigmoid(z[r, j] + bias[j]).

Used by ``sigmoid_sum`` (over the caller's z) and by the two-pass cuBLAS method (over each chunk of z in the
workspace). One block per row (four rows per block from 4096 rows on, so that bias is read once per four rows),
16-byte loads when z's rows are 16-byte aligned, fp32 accumulation (fp64 for float64) and a double carry between
chunks.
"""

from __future__ import annotations

from .. import loader
from . import CTYPE, cpp_bool
from .launch import I64, U64, Launch

FILENAME = "sigmoid_sum.cu"
THREADS = 256


def kernel_name(z_dtype: str, dtype: str, rows_per_block: int, vec: bool) -> str:
    return f"sigmoid_sum<{CTYPE[z_dtype]}, {CTYPE[dtype]}, {rows_per_block}, {cpp_bool(vec)}>"


def instances() -> list[str]:
    """Every instance the launchers can ask for (the CI compile check builds them all)."""
    pairs = [(d, d) for d in CTYPE] + [("float32", "float16"), ("float32", "bfloat16")]
    return [kernel_name(z, t, r, v) for z, t in pairs for r in (1, 4) for v in (False, True)]


class SigmoidSum:
    """The reduction over a (rows, cols) z of z_dtype with row stride ldz (elements) into out of dtype; called with
    (stream, z, bias, carry, partial, out, saved, cols) addresses (0 for absent ones). saved: sigmoid'(z + bias) of
    every element, row stride ld_saved, for a training step."""

    def __init__(self, rows: int, ldz: int, z_dtype: str, dtype: str, vec: bool, device_id: int, ld_saved: int = 0):
        rows_per_block = 4 if rows >= 4096 else 1
        name = kernel_name(z_dtype, dtype, rows_per_block, vec)
        self._launch = Launch(
            loader.function(FILENAME, name, device_id),
            name,
            -(-rows // rows_per_block),
            THREADS,
            0,
            [
                (U64, None),
                (I64, ldz),
                (U64, None),
                (U64, None),
                (U64, None),
                (U64, None),
                (U64, None),
                (I64, ld_saved),
                (I64, rows),
                (I64, None),
            ],
            device_id,
        )

    def __call__(self, stream: int, z: int, bias: int, carry: int, partial: int, out: int, saved: int, cols: int):
        self._launch(stream, z, bias, carry, partial, out, saved, cols)

    def describe(self) -> str:
        return repr(self._launch)
