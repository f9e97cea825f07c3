"""Input validation, in one place. Every message names the argument, what was expected and what came.

Validation runs once per call signature, when a plan is made (plans.py): every check here depends only on what the
signature holds (library, shapes, strides, dtypes, devices, option values and their types).
"""

from __future__ import annotations

import numbers
from typing import Any, Literal, Protocol, cast, get_args

from .arrays import Operand
from .precision import NAMES, PrecisionName

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
MethodName = Literal["auto", "fused", "cublas"]
METHODS: tuple[MethodName, ...] = get_args(MethodName)


class OutOfDeviceMemory(MemoryError):
    """A call needed more device memory than was free; the message says how much, for what, and what to change."""


def device_memory_error(call: str, device_id: int, needs: dict[str, int]) -> OutOfDeviceMemory:
    """The error for an allocation that failed while ``call`` ran: ``needs`` names what the call allocates and
    how many bytes each (zero entries are left out), the device's free memory is read now, and what to change."""
    from cupy.cuda import runtime

    free, total = runtime.memGetInfo()
    parts = ", ".join(f"{what} {_size(n)}" for what, n in needs.items() if n)
    return OutOfDeviceMemory(
        f"out of device memory on cuda:{device_id}: {call} needs {_size(sum(needs.values()))} ({parts}) beyond its "
        f"inputs, and {_size(free)} of {_size(total)} are free; pass a smaller workspace_bytes to compute in more "
        "chunks (in training, save_bytes=0 to recompute sigmoid' instead of keeping it), or split weight's rows "
        "over GPUs (cupy_fused.torch.sharded_linear_sigmoid_sum, cupy_fused.dask)"
    )


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**30:.2f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.2f} MiB"


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
                f"{op.name} has dtype {op.dtype} but {first.name} has dtype {first.dtype}; "
                "all arrays must share one dtype"
            )
    if first.device != "cpu" and not first.device.startswith("cuda:"):
        raise ValueError(f"{first.name} must be on the CPU or a CUDA device, got {first.device}")


class Shaped(Protocol):
    """What the shape checks read: an Operand, or a dask array (cupy_fused.dask checks its operands with them)."""

    @property
    def shape(self) -> tuple[Any, ...]: ...


def linear_shapes(x: Shaped, weight: Shaped, bias: Shaped | None) -> None:
    if len(x.shape) < 1:
        raise ValueError("x must have shape (..., K) with at least 1 dimension, got a 0-d array")
    k = x.shape[-1]
    if len(weight.shape) != 2 or weight.shape[1] != k:
        raise ValueError(f"weight must have shape (N, K) with K == x.shape[-1] == {k}, got {weight.shape}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must have shape (N,) with N == weight.shape[0] == {weight.shape[0]}, got {bias.shape}")


def gpu_sizes(rows: int, k: int, n: int) -> None:
    """The GPU kernels index rows, K and N with 32-bit integers (offsets are 64-bit)."""
    for name, value in (("B = prod(x.shape[:-1])", rows), ("K", k), ("N", n)):
        if value >= 2**31:
            raise ValueError(f"{name} must be below 2**31 on the GPU, got {value}")


def sum_shapes(z: Operand, bias: Operand | None) -> None:
    if len(z.shape) < 1:
        raise ValueError("z must have shape (..., N) with at least 1 dimension, got a 0-d array")
    if bias is not None and bias.shape != (z.shape[-1],):
        raise ValueError(f"bias must have shape (N,) with N == z.shape[-1] == {z.shape[-1]}, got {bias.shape}")


def trainable(op: Operand) -> None:
    """Training (a forward that saves for backward, and the backward) runs on the native libraries only."""
    if op.library not in ("numpy", "cupy", "torch"):
        raise TypeError(
            f"training (a forward that saves for backward, and the backward) takes numpy, cupy or torch arrays, got "
            f"{op.library} arrays; {op.library} arrays go through linear_sigmoid_sum and sigmoid_sum"
        )


def precision(value: object) -> PrecisionName | None:
    if value is not None and not (isinstance(value, str) and value in NAMES):
        raise ValueError(f"precision must be None or one of {', '.join(map(repr, NAMES))}, got {value!r}")
    return cast("PrecisionName | None", value)


def method(value: object) -> MethodName:
    if not (isinstance(value, str) and value in METHODS):
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {value!r}")
    return value


def flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def optional_flag(name: str, value: object) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{name} must be None, True or False, got {value!r}")
    return value


def count(name: str, value: object) -> int:
    """A non-negative int (numpy integers too), as an int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def workspace_bytes(value: object) -> int:
    """A positive int (numpy integers too), as an int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"workspace_bytes must be a positive int (bytes), got {value!r}")
    return int(value)


def save_bytes(value: object) -> int | None:
    """None or a non-negative int (numpy integers too): the budget for saving sigmoid'(z) in a training call."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0):
        raise ValueError(f"save_bytes must be None or a non-negative int (bytes), got {value!r}")
    return None if value is None else int(value)


def rows_stride(shape: tuple, strides: tuple) -> int | None:
    """The stride (elements) between consecutive rows of an (..., K) array seen as (prod(shape[:-1]), K), when its
    leading dimensions collapse into one; None when they do not (the kernels then read a contiguous copy)."""
    lead = [(n, s) for n, s in zip(shape[:-1], strides[:-1]) if n != 1]
    if not lead:
        return shape[-1] if shape else 0
    for (_, s_outer), (n_inner, s_inner) in zip(lead, lead[1:]):
        if s_outer != s_inner * n_inner:
            return None
    return lead[-1][1]
