"""The back: what runs a call once the plan is resolved.

GPU backends share one calling convention. Each offers ``candidates(problem)``, a list of ``Candidate`` (what it
would run, and how to build it); a built ``Executable`` is called per call with raw device addresses and the
caller's raw stream and only queues work:

    executable.workspace_bytes                        bytes the caller's allocator provides per call (0: none)
    executable.run(x, w, b, out, workspace, stream, saved=0)
                                                      addresses as ints (b = 0 without bias, workspace = 0 if none;
                                                      saved: a (B, N) array of x's dtype that receives
                                                      sigmoid'(z) for a training step's backward: given exactly
                                                      when the problem ``saves``, 0 otherwise)
    executable.describe()                             the kernel(s) and launch shape, for explain()

``sm90`` (the Hopper GEMM core's forward: bfloat16, float16 and "tf32" at every batch), ``small_batch`` (CUDA
cores, B up to 64), ``fused`` (tensor-core and CUDA-core tiles with split-K), ``cublas``
(cuBLASLt into a bounded workspace, then ``reduce``'s sigmoid-sum kernel) and ``reduce`` (the reduction alone, for
``sigmoid_sum``) are the GPU ones; ``host`` is the NumPy backend, called with numpy views.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Problem:
    """One GPU call signature as the backends see it (shapes in elements, x and W rows with unit stride)."""

    rows: int  # B: the product of x's leading dimensions
    k: int
    n: int
    dtype: str  # the caller's dtype: float32, float64, float16 or bfloat16
    has_bias: bool
    ldx: int  # row strides of x and W (elements)
    ldw: int
    aligned: bool  # x and W: 16-byte aligned base addresses and row strides
    device_id: int
    workspace_limit: int  # the caller's bound on the two-pass method's (B, chunk of N) block and on a split copy of x
    saves: bool = False  # a training forward: run(saved=...) stores sigmoid'(z); kernels built without it never do

    @property
    def itemsize(self) -> int:
        return ITEMSIZE[self.dtype]

    @property
    def acc_dtype(self) -> str:
        return acc_dtype(self.dtype)

    @property
    def acc_itemsize(self) -> int:
        return ITEMSIZE[self.acc_dtype]


class Executable(Protocol):
    workspace_bytes: int

    def run(self, x: int, w: int, b: int, out: int, workspace: int, stream: int, saved: int = 0) -> None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Candidate:
    method: str  # "fused" (our kernels) or "cublas" (cuBLASLt + our reduction)
    precision: str  # how float32 products are computed: a row of precision.TABLE
    kernel: str  # a short name, stable across runs (the tuner's cache stores it)
    # called with no arguments; `...` because the backends bind loop variables as a lambda's default arguments
    # (`lambda b=b: ...`), which mypy cannot match against Callable[[], Executable]
    build: Callable[..., Executable]


CTYPE = {"float32": "float", "float64": "double", "float16": "__half", "bfloat16": "__nv_bfloat16"}
ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}


def acc_dtype(dtype: str) -> str:
    """The dtype a float dtype accumulates in: float64 for float64, float32 for the others."""
    return "float64" if dtype == "float64" else "float32"


def chunk_columns(n: int, column_bytes: int, workspace_bytes: int, multiple_of_8: bool = True) -> int:
    """Columns of N per chunk when each column of a chunk costs ``column_bytes`` of a ``workspace_bytes`` bound: at
    least 1, at most n, and with ``multiple_of_8`` a multiple of 8 when it is 8 or more (aligned slices)."""
    step = max(1, workspace_bytes // column_bytes)
    if multiple_of_8 and step >= 8:
        step = step // 8 * 8
    return min(step, n) if n else 1


def cpp_bool(value: bool) -> str:
    return "true" if value else "false"


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def instances() -> dict[str, list[str]]:
    """Every kernel instance the package can launch, by source file (the CI compile check builds them all)."""
    from ..backward import instances as backward_instances
    from ..gemm.kernel import FILENAME as CORE_FILENAME
    from . import fused, reduce, sm90, small_batch

    found = {
        small_batch.FILENAME: small_batch.instances(),
        reduce.FILENAME: reduce.instances(),
        "backward.cu": backward_instances(),
        "timing.cu": ["spin"],  # the tuner's (tune.py)
        CORE_FILENAME: sm90.instances(),
    }
    found.update(fused.instances())
    return found
