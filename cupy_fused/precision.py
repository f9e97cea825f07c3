"""The precisions of float32 products: one table that every other place reads.

A precision says how the products of a float32 call are computed on the GPU. Every row names what runs it:
``cublas_compute`` is the cuBLAS(Lt) compute type (None: cuBLAS has no such mode; our tile kernels implement every
row, backends/fused.py), ``backward`` the precision of the two gradient GEMMs of a training step (backward.py:
"tf32x3" runs on our wgmma GEMM where it can, strict fp32 cuBLAS elsewhere). Half inputs always accumulate in
float32, float64 in float64, and the NumPy backend is always strict: the precision applies to float32 GPU calls only.

``precision=None`` (the default) asks for the fastest fp32-accurate way, chosen per shape by the planner among the
rows marked ``fp32_accurate``: "ieee" (exact fp32 FMA: CUDA cores at small batch, cuBLAS) and "tf32x3" (three TF32
products on tensor cores, each k tile added in fp32: error within 2x of strict fp32's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PrecisionName = Literal["ieee", "tf32", "tf32x3", "bf16"]

# cublasComputeType_t values (cublas_api.h)
CUBLAS_COMPUTE_32F = 68
CUBLAS_COMPUTE_32F_FAST_16BF = 75
CUBLAS_COMPUTE_32F_FAST_TF32 = 77
CUBLAS_COMPUTE_64F = 70


@dataclass(frozen=True)
class Precision:
    name: str
    fp32_accurate: bool  # error within 2x of strict fp32's: a candidate for precision=None
    cublas_compute: int | None  # cuBLAS compute type for float32 operands, None when cuBLAS cannot do it
    backward: str  # precision of the backward GEMMs (grad_x, grad_W)
    doc: str


TABLE: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision(
            "ieee",
            True,
            CUBLAS_COMPUTE_32F,
            "ieee",
            "strict fp32 (CUDA-core FMA: our kernels or cuBLAS CUBLAS_COMPUTE_32F)",
        ),
        Precision(
            "tf32x3",
            True,
            None,
            "tf32x3",
            "each operand split into TF32 hi + lo, three tensor-core products, each k tile added in fp32; "
            "error within 2x of strict fp32's",
        ),
        Precision(
            "tf32",
            False,
            CUBLAS_COMPUTE_32F_FAST_TF32,
            "tf32",
            "one TF32 product (operands rounded to 10 mantissa bits): about 3e-4 relative error on z",
        ),
        Precision(
            "bf16",
            False,
            CUBLAS_COMPUTE_32F_FAST_16BF,
            "bf16",
            "operands rounded to bfloat16, fp32 accumulation (cuBLAS may choose a more precise kernel)",
        ),
    )
}
NAMES: tuple[str, ...] = tuple(TABLE)
FP32_ACCURATE: tuple[str, ...] = tuple(p.name for p in TABLE.values() if p.fp32_accurate)


def describe(name: str | None) -> str:
    """One line for messages and explain(): what a precision does."""
    if name is None:
        return f"default: the fastest fp32-accurate precision for the shape ({' or '.join(FP32_ACCURATE)})"
    return f"{name}: {TABLE[name].doc}"
