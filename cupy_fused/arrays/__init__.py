"""One adapter per array library (numpy, cupy, torch; jax and any DLPack / Array-API library through a bridge): the
floor the rest of the package stands on.

An adapter turns a caller's array into what the planner and the backends need, and back:

* ``key(obj)``: a cheap tuple of everything a plan depends on (shape, strides, dtype, device, alignment class, and
  library flags such as torch's negative bit). It runs on every call, so it reads attributes and nothing else.
* ``describe(name, obj)``: an ``Operand`` for validation, once per signature (messages name the argument).
* host data (numpy, torch on the CPU): ``host_view(obj)``, a zero-copy numpy view (bfloat16 as int16 bits).
* GPU data (cupy, torch on CUDA): ``pointer(obj)``, the device address; ``prepare(obj)``, a copy that the kernels
  can read (contiguous rows, resolved negative bit), made per call only when the plan says the signature needs it;
  ``zero(obj)``, fills it with zeros (the result when N = 0).
* ``empty_fn(dtype, device)``: outputs and workspaces from the caller's own allocator (torch's caching allocator for
  torch tensors, CuPy's pool for cupy arrays), so CUDA graphs own them;
* ``stream_fn(device)``: the caller's current stream (a raw ``cudaStream_t``), and ``user_stream`` for ``stream=``;
  ``out_of_memory``: the exception its allocator raises (the runners turn it into one that says what to change).

A bridge (``bridge = True``: arrays/dlpack.py, arrays/jax.py) computes nothing itself: ``native(obj)`` reads an operand
as a numpy or cupy array through DLPack, and ``wrapper(obj)`` hands results back (plans.py: ``_bridged``).

Adapters are found by the type of the object (subclasses such as ``numpy.memmap`` or ``torch.nn.Parameter``
included) and registered lazily: torch and cupy are imported only when an object of theirs arrives, which means
they were imported already.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple


class Operand(NamedTuple):
    """What validation needs to know about one argument (built once per signature)."""

    name: str  # the argument's name, for messages
    library: str  # "numpy" | "cupy" | "torch" | a bridged library ("jax", ...)
    shape: tuple
    dtype: str  # "float32", "bfloat16", "int64", ...
    device: str  # "cpu", "cuda:N", or another device type (refused by validation)
    strides: tuple  # in elements
    aligned: bool  # base address 16-byte aligned
    plain: bool = True  # the memory holds the values as they are (False: torch's negative bit is set)

    @property
    def device_id(self) -> int | None:
        return int(self.device.split(":")[1]) if self.device.startswith("cuda:") else None


_BY_TYPE: dict[type, Any] = {}  # type -> adapter (duck-typed: the methods above), None for no array


def adapter_for(obj: object) -> Any:
    """The adapter of obj's library, or None when obj is no array of a supported library."""
    kind = type(obj)
    try:
        return _BY_TYPE[kind]
    except KeyError:
        pass
    adapter: Any = None
    if "numpy" in sys.modules and isinstance(obj, sys.modules["numpy"].ndarray):
        from .numpy import ADAPTER as adapter
    elif "cupy" in sys.modules and isinstance(obj, sys.modules["cupy"].ndarray):
        from .cupy import ADAPTER as adapter
    elif "torch" in sys.modules and isinstance(obj, sys.modules["torch"].Tensor):
        from .torch import ADAPTER as adapter
    elif "jax" in sys.modules and isinstance(obj, sys.modules["jax"].Array):
        from .jax import ADAPTER as adapter
    elif all(hasattr(kind, name) for name in ("__dlpack__", "__dlpack_device__", "__array_namespace__")):
        from .dlpack import ADAPTER as adapter
    _BY_TYPE[kind] = adapter
    return adapter


def describe(name: str, obj: object) -> Operand:
    adapter = adapter_for(obj)
    if adapter is None:
        raise TypeError(
            f"{name} must be a numpy.ndarray, cupy.ndarray, torch.Tensor, jax.Array or another array with "
            f"__dlpack__ and __array_namespace__, got {type(obj).__module__}.{type(obj).__name__}"
        )
    return adapter.describe(name, obj)


def key(obj) -> tuple | None:
    """The cheap signature of one operand (None for None); raises TypeError for objects of no adapter."""
    if obj is None:
        return None
    adapter = _BY_TYPE.get(type(obj)) or adapter_for(obj)
    if adapter is None:
        raise TypeError  # the caller validates to get the message
    return adapter.key(obj)
