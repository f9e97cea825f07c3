"""The operand types of the GEMM core: the one table that kernels, planner, tests and bench read.

Each row names the element type the operands hold, its C++ traits (``kernels/sm90_operand.cuh``), the logistic
function of its forward epilogue (``sm90::Sig``) and the float32 precision it serves, if any (none yet: float32 as
TF32 straight from memory is truncated by the tensor cores, 2.4x the error of cuBLAS's rounded TF32 at 4096^3, over
the budget of twice torch's). A new operand type is a row here plus a traits struct.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Operand:
    name: str
    dtype: str  # the arrays' dtype
    itemsize: int
    traits: str  # the C++ operand struct
    sigmoid: str  # "Exact" (exp2 and a fast divide) or "Tanh" (0.5 tanh.approx(z / 2) + 0.5)
    precision: str | None  # the float32 precision it computes (precision.TABLE), None for 16-bit inputs
    doc: str

    @property
    def bk(self) -> int:
        """k values per k tile: one 128-byte row of a swizzled tile."""
        return 128 // self.itemsize


OPERANDS: dict[str, Operand] = {
    o.name: o
    for o in (
        Operand(
            "bf16",
            "bfloat16",
            2,
            "sm90::BF16",
            "Tanh",
            None,
            "bfloat16 operands, fp32 accumulation; sigmoid by tanh.approx (2^-12 a term, below the result's rounding)",
        ),
        Operand(
            "f16",
            "float16",
            2,
            "sm90::F16",
            "Tanh",
            None,
            "float16 operands, fp32 accumulation; sigmoid by tanh.approx (2^-12 a term, at the result's rounding)",
        ),
    )
}


def operand_for(dtype: str, precision: str | None) -> Operand | None:
    """The operand type that serves a dtype at a float32 precision (ignored for 16-bit dtypes), or None."""
    for o in OPERANDS.values():
        if o.dtype == dtype and (dtype != "float32" or o.precision == precision):
            return o
    return None
