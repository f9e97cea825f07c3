"""Input validation, in one place. Every message names the argument, what was expected and what came."""

from __future__ import annotations

from ._arrays import Operand

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
PRECISIONS = ("ieee", "tf32", "tf32x3", "bf16")
METHODS = ("auto", "fused", "cublas")


def same_kind(ops: list[Operand]) -> None:
    """One library, one device, one floating dtype for all operands."""
    first = ops[0]
    for op in ops:
        if op.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{op.name} must have a floating dtype ({', '.join(FLOAT_DTYPES)}), got {op.dtype}")
    for op in ops[1:]:
        if op.library != first.library:
            raise TypeError(
                f"{op.name} is a {op.library} array but {first.name} is a {first.library} array; "
                "pass all arrays from one library"
            )
        if op.device != first.device:
            raise ValueError(f"{op.name} is on {op.device} but {first.name} is on {first.device}; use one device")
        if op.dtype != first.dtype:
            raise TypeError(
                f"{op.name} has dtype {op.dtype} but {first.name} has dtype {first.dtype}; all arrays must share one dtype"
            )
    if first.device != "cpu" and not first.device.startswith("cuda:"):
        raise ValueError(f"{first.name} must be on the CPU or a CUDA device, got {first.device}")


def linear_shapes(x: Operand, weight: Operand, bias: Operand | None) -> None:
    if len(x.shape) < 1:
        raise ValueError(f"x must have shape (..., K) with at least 1 dimension, got a 0-d array")
    k = x.shape[-1]
    if len(weight.shape) != 2 or weight.shape[1] != k:
        raise ValueError(f"weight must have shape (N, K) with K == x.shape[-1] == {k}, got {weight.shape}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must have shape (N,) with N == weight.shape[0] == {weight.shape[0]}, got {bias.shape}")


def sum_shapes(z: Operand, bias: Operand | None) -> None:
    if len(z.shape) < 1:
        raise ValueError("z must have shape (..., N) with at least 1 dimension, got a 0-d array")
    if bias is not None and bias.shape != (z.shape[-1],):
        raise ValueError(f"bias must have shape (N,) with N == z.shape[-1] == {z.shape[-1]}, got {bias.shape}")


def precision(value) -> str | None:
    if value is not None and value not in PRECISIONS:
        raise ValueError(f"precision must be None or one of {', '.join(map(repr, PRECISIONS))}, got {value!r}")
    return value


def method(value) -> str:
    if value not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {value!r}")
    return value


def flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def workspace_bytes(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"workspace_bytes must be a positive int (bytes), got {value!r}")
    return value
