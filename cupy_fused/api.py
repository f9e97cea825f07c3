"""The front: ``linear_sigmoid_sum``, ``sigmoid_sum`` and ``plan``: signature -> cached Plan -> run.

A call builds the cheap signature of its operands and options, finds the Plan made for it (validation, backend and
kernel choice happen once, when the plan is made: plans.py) and runs it: for GPU arrays, raw addresses, the caller's
stream and allocator, one launch for our kernels. ``plan(...)`` returns the Plan itself for callers who keep it.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, cast

from . import checks
from ._doc import fill
from .checks import MethodName
from .plans import CACHE, DEFAULT_WORKSPACE_BYTES, Plan, linear_key, resolve_linear, resolve_sum, sum_key
from .precision import PrecisionName

__all__ = [
    "linear_sigmoid_sum",
    "sigmoid_sum",
    "plan",
    "Plan",
    "DEFAULT_WORKSPACE_BYTES",
    "Array",
    "ArrayT",
    "Precision",
    "Method",
]

#: The names ``precision`` takes (besides None), the rows of ``cupy_fused.precision.TABLE``.
Precision = PrecisionName
#: The names ``method`` takes.
Method = MethodName


class Array(Protocol):
    """What a type checker is told an operand is: an object with ``shape``, ``__dlpack__`` and
    ``__dlpack_device__``, as numpy, cupy, torch, JAX and Array-API arrays are. Which arrays are accepted is decided
    when the plan is made (numpy, cupy, torch, JAX, or another library with ``__array_namespace__`` too; one
    library, device and floating dtype for all operands): a TypeError or ValueError names the argument otherwise."""

    @property
    def shape(self) -> tuple[Any, ...]: ...

    def __dlpack__(self) -> Any: ...

    def __dlpack_device__(self) -> tuple[Any, Any]: ...


#: The operands' type, which is also the result's (a numpy array in, a numpy array out; a torch tensor in, a torch
#: tensor out).
ArrayT = TypeVar("ArrayT", bound=Array)


def linear_sigmoid_sum(
    x: ArrayT,
    weight: ArrayT,
    bias: ArrayT | None = None,
    *,
    precision: Precision | None = None,
    method: Method = "auto",
    keepdims: bool = True,
    stream: object = None,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
) -> ArrayT:
    key: tuple[Any, ...] | None
    try:
        key = linear_key(x, weight, bias, precision, method, keepdims, workspace_bytes)
        found = CACHE.get(key)
    except TypeError:  # an unhashable option or an object of no array library: validation explains
        key = found = None
    if found is None:
        found = resolve_linear(key, x, weight, bias, precision, method, keepdims, workspace_bytes, stream)
    return cast(ArrayT, found._run(x, weight, bias, stream))  # the runner returns the operands' library's array


linear_sigmoid_sum.__doc__ = fill("""``sum_j sigmoid(x @ weight.T + bias)[..., j]``, as
    ``torch.sum(torch.sigmoid(torch.nn.functional.linear(x, weight, bias)), dim=-1, keepdim=True)``.

    Host data runs on the NumPy backend, device data on the GPU. The first call of a signature resolves a plan
    (validation, the backend and kernel, with tuning on a few milliseconds of timing: see :func:`plan`); later calls
    only launch.

    Args:
        {operands}
        {precision}
        {method}
        {keepdims}
        {stream}
        {workspace_bytes}

    Returns:
        (..., 1) (or (...) with ``keepdims=False``) of the operands' library, device and dtype.

    Raises:
        TypeError: or ValueError, naming the argument, what was expected and what came.
        OutOfDeviceMemory: when the output, workspace or copies do not fit the free device memory.
    """)


def sigmoid_sum(
    z: ArrayT,
    bias: ArrayT | None = None,
    *,
    keepdims: bool = True,
    stream: object = None,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
) -> ArrayT:
    key: tuple[Any, ...] | None
    try:
        key = sum_key(z, bias, keepdims, workspace_bytes)
        found = CACHE.get(key)
    except TypeError:
        key = found = None
    if found is None:
        found = resolve_sum(key, z, bias, keepdims, workspace_bytes)
    return cast(ArrayT, found._run(z, bias, stream))


sigmoid_sum.__doc__ = fill("""``sum_j sigmoid(z + bias)[..., j]`` over the last axis of an already computed z.

    Same libraries, devices, dtypes and streams as :func:`linear_sigmoid_sum`; accumulates in float32 (float64 for
    float64).

    Args:
        z: (..., N), only read.
        bias: (N,) or None, added per column before the sigmoid.
        {keepdims}
        {stream}
        {workspace_bytes}

    Returns:
        (..., 1) (or (...) with ``keepdims=False``) of z's library, device and dtype.
    """)


def plan(
    x: Array,
    weight: Array,
    bias: Array | None = None,
    *,
    precision: Precision | None = None,
    method: Method = "auto",
    keepdims: bool = True,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    tune: bool | None = None,
) -> Plan:
    tune = checks.optional_flag("tune", tune)
    key: tuple[Any, ...] | None
    try:
        key = linear_key(x, weight, bias, precision, method, keepdims, workspace_bytes)
        found = CACHE.get(key) if tune is None else None
    except TypeError:
        key = found = None
    return found or resolve_linear(key, x, weight, bias, precision, method, keepdims, workspace_bytes, None, tune)


plan.__doc__ = fill("""The resolved plan of ``linear_sigmoid_sum(x, weight, bias, ...)`` for operands of this
    signature (library, dtypes, shapes, strides, alignment, device, bias or not, options), from the cache or made
    now.

    ``p = plan(x, w, b)`` then ``p(x2, w2, b2, stream=None)`` runs it with the least host work: the signature is
    compared and the kernel launched; operands of another signature raise a ValueError naming what changed.
    ``p.explain()`` (and ``repr(p)``) gives the method, kernel, launch shape, precision, workspace, how it was chosen
    and the floor.

    Args:
        {operands}
        {precision}
        {method}
        {keepdims}
        {workspace_bytes}
        tune: None follows $CUPY_FUSED_TUNE (tuning is on unless it is 0), True or False forces it for this plan
            (True re-times the candidates unless the tuning cache already holds this shape class).

    Returns:
        The :class:`Plan`.
    """)


def clear_plans() -> None:
    """Forget every cached plan (they are rebuilt on the next call of each signature)."""
    CACHE.clear()
