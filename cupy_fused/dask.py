"""Dask arrays: ``linear_sigmoid_sum`` over chunked operands, numpy chunks on the CPU or cupy chunks on GPUs. This
module imports dask; ``import cupy_fused`` does not.

The sum over N is a sum of per-block sums, so each (x block, weight block) pair runs the single-device
``cupy_fused.linear_sigmoid_sum`` on the chunks as they are, giving a (rows of the block, 1) partial; the partials of
the N blocks are added in float64 by dask's tree reduction and cast to x's dtype once, at the end. The tasks made here
return (rows, 1) numbers at most: blocks of z = x @ W.T exist only inside the single-device call, within its workspace.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
from dask.array.utils import meta_from_array

from . import api, checks
from ._doc import fill
from .arrays import adapter_for
from .layer import DTYPES

__all__ = ["linear_sigmoid_sum"]


#: What each operand may be (a dask array, or a numpy or cupy array taken as one block).
Operand = da.Array | api.Array


def linear_sigmoid_sum(
    x: Operand,
    weight: Operand,
    bias: Operand | None = None,
    *,
    precision: api.Precision | None = None,
    keepdims: bool = True,
) -> da.Array:
    checks.precision(precision)
    checks.flag("keepdims", keepdims)
    x = _as_dask("x", x)
    weight = _as_dask("weight", weight)
    bias = None if bias is None else _as_dask("bias", bias, (weight.chunks[0],))
    _check_chunk_kinds(x, weight, bias)
    checks.linear_shapes(x, weight, bias)  # these checks read only .shape
    _check_chunking(x, weight, bias)
    partials = _partial_sums(x, weight, bias, precision)
    out: da.Array = partials.sum(axis=-1, keepdims=keepdims).astype(x.dtype)
    return out


linear_sigmoid_sum.__doc__ = fill("""``sum_j sigmoid(x @ weight.T + bias)[..., j]`` for dask arrays, computed lazily.

    A numpy or cupy array is accepted for any operand: weight (and x) as one block, stored once in the graph however
    many tasks read it; bias in weight's row chunks. One floating dtype (float16, float32, float64) and one chunk
    type (numpy or cupy) for all. Every block runs :func:`cupy_fused.linear_sigmoid_sum`.

    Args:
        x: (..., K), chunked along its leading axes, K in one chunk.
        weight: (N, K), chunked along N, K in one chunk.
        bias: (N,) or None, chunked like weight's rows.
        {precision}
        {keepdims}

    Returns:
        A lazy dask array of shape (..., 1) (or (...) with ``keepdims=False``), x's dtype and chunk type, chunked
        like x's leading axes.

    Raises:
        TypeError: or ValueError, naming the argument, before anything is computed; a chunking that cannot be used
            gets the ``rechunk`` call that fixes it.
    """)


def _as_dask(name: str, a: Operand, chunks: tuple[tuple[int, ...], ...] | None = None) -> da.Array:
    """a as a dask array: dask arrays as they are, numpy and cupy arrays in ``chunks`` (None: one chunk, stored once
    in the graph however many tasks read it)."""
    if isinstance(a, da.Array):
        return a
    adapter = adapter_for(a)
    if adapter is None or adapter.library == "torch":
        raise TypeError(
            f"{name} must be a dask.array.Array, numpy.ndarray or cupy.ndarray, got "
            f"{type(a).__module__}.{type(a).__name__}"
        )
    block: da.Array = da.from_array(a, chunks=a.shape if chunks is None else chunks, name=False)  # no hashing
    return block


def _chunk_library(a: da.Array) -> str:
    return type(a._meta).__module__.split(".")[0]


def _check_chunk_kinds(x: da.Array, weight: da.Array, bias: da.Array | None) -> None:
    """One floating dtype and one chunk library (numpy or cupy) for all operands."""
    named = [("x", x), ("weight", weight)] + ([("bias", bias)] if bias is not None else [])
    for name, a in named:
        if a.dtype.name not in DTYPES:
            raise TypeError(f"{name} must have a floating dtype ({', '.join(DTYPES)}), got {a.dtype}")
        if _chunk_library(a) not in ("numpy", "cupy"):
            raise TypeError(f"{name} must have numpy or cupy chunks, got {type(a._meta).__name__} chunks")
    for name, a in named[1:]:
        if _chunk_library(a) != _chunk_library(x):
            raise TypeError(
                f"{name} has {_chunk_library(a)} chunks but x has {_chunk_library(x)} chunks; "
                "use one chunk type (map_blocks(cupy.asarray) moves numpy chunks to the GPU)"
            )
        if a.dtype != x.dtype:
            raise TypeError(f"{name} has dtype {a.dtype} but x has dtype {x.dtype}; all arrays must share one dtype")


def _check_chunking(x: da.Array, weight: da.Array, bias: da.Array | None) -> None:
    """K whole in x's and weight's blocks; bias's chunks are weight's row chunks."""
    for name, a in (("x", x), ("weight", weight)):
        if len(a.chunks[-1]) != 1:
            raise ValueError(
                f"{name} must hold K (its last axis) in one chunk, got chunks {a.chunks[-1]} along it; "
                f"rechunk it with {name}.rechunk({{-1: -1}})"
            )
    if bias is not None and bias.chunks[0] != weight.chunks[0]:
        raise ValueError(
            f"bias must be chunked like weight's rows {weight.chunks[0]}, got {bias.chunks[0]}; "
            "rechunk it with bias.rechunk(weight.chunks[0])"
        )


def _partial_sums(x: da.Array, weight: da.Array, bias: da.Array | None, precision: api.Precision | None) -> da.Array:
    """(..., number of N blocks) float64: column j is the sum over weight's row block j, one task per (x block,
    weight block) pair."""
    lead = tuple(range(x.ndim - 1))  # blockwise's indices: x's leading axes, then N and K
    n, k = x.ndim - 1, x.ndim
    operands = [x, lead + (k,), weight, (n, k)] + ([bias, (n,)] if bias is not None else [])
    partials: da.Array = da.blockwise(
        _block_sum,
        lead + (n,),
        *operands,
        adjust_chunks={n: 1},
        align_arrays=False,  # chunks checked already; aligning would warn of the (x blocks) x (N blocks) tasks
        concatenate=True,
        meta=meta_from_array(x, ndim=x.ndim, dtype=np.float64),
        precision=precision,
    )
    return partials


def _block_sum(x: Any, weight: Any, bias: Any = None, *, precision: api.Precision | None) -> Any:
    """One task: the (..., 1) sum over one block of weight's rows, in float64 for the sum across blocks."""
    return api.linear_sigmoid_sum(x, weight, bias, precision=precision).astype(np.float64)
