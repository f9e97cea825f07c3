"""Any array library that speaks DLPack and the Array API (``__dlpack__``, ``__dlpack_device__``,
``__array_namespace__``): a bridge, not a backend.

A bridge reads each operand as a numpy array (host data) or a cupy array (CUDA data) through DLPack, without a copy;
the call then runs on the NumPy or CuPy path with its own plan and checks, and the result goes back through the
operands' namespace (``namespace.from_dlpack``). CUDA operands are handed over on CuPy's current stream (or the
``stream=`` given): DLPack's stream argument orders the work after whatever produced them, and the result is handed
to the caller's library the same way. Because the producer knows nothing of our stream, the views of CUDA inputs are
kept until the work queued on them has finished (``keep_until_done``), so that freeing an input cannot hand its
memory to someone else while a kernel still reads it.
"""

from __future__ import annotations

import threading
from collections import deque

from . import Operand

DLPACK_CPU, DLPACK_CUDA = 1, 2
DEVICE_TYPE_NAMES = {3: "CUDA host", 4: "OpenCL", 7: "Vulkan", 8: "Metal", 10: "ROCm", 13: "CUDA managed", 14: "oneAPI"}


class DLPackBridge:
    bridge = True

    @staticmethod
    def library(a) -> str:
        return type(a).__module__.split(".")[0]

    @staticmethod
    def key(a) -> tuple:
        return (type(a), a.shape, str(a.dtype), a.__dlpack_device__())

    def device(self, name: str, a) -> str:
        kind, index = a.__dlpack_device__()
        if kind == DLPACK_CPU:
            return "cpu"
        if kind == DLPACK_CUDA:
            return f"cuda:{int(index)}"
        raise TypeError(
            f"{name} lives on a {DEVICE_TYPE_NAMES.get(int(kind), 'non-CUDA')} device ({_what(a)}, DLPack device type "
            f"{int(kind)}); cupy_fused computes on host (CPU) and CUDA data"
        )

    def native(self, a):
        """The operand as a numpy (host) or cupy (CUDA) array sharing its memory."""
        kind = a.__dlpack_device__()[0]
        if kind == DLPACK_CPU:
            import numpy

            return numpy.from_dlpack(a)
        import cupy

        return cupy.from_dlpack(a)

    def describe(self, name: str, a) -> Operand:
        device = self.device(name, a)
        if device != "cpu":
            try:
                import cupy  # noqa: F401
            except ImportError:
                raise TypeError(
                    f"{name} lives on {device} ({_what(a)}): CUDA data needs CuPy (pip install 'cupy-fused[cuda12]' "
                    "or '[cuda13]')"
                ) from None
        try:
            view = self.native(a)
        except (TypeError, ValueError, RuntimeError, BufferError) as exc:
            raise TypeError(f"{name} cannot hand over its data through DLPack ({_what(a)}): {exc}") from exc
        from . import adapter_for

        return adapter_for(view).describe(name, view)._replace(library=self.library(a))

    def wrapper(self, a):
        """back(result, native operands) -> the result in a's library (the native operands stay alive until the work
        queued on them is done)."""
        from_dlpack = a.__array_namespace__().from_dlpack
        if a.__dlpack_device__()[0] == DLPACK_CPU:
            return lambda result, operands: from_dlpack(result)

        def back(result, operands):
            keep_until_done(operands)
            return from_dlpack(result)

        return back


def _what(a) -> str:
    return f"a {type(a).__module__}.{type(a).__name__} of dtype {a.dtype}"


_pending: deque = deque()  # (event recorded after the work, the operands it reads), oldest first
_pending_lock = threading.Lock()


def keep_until_done(operands) -> None:
    """Hold ``operands`` (cupy views of another library's CUDA memory) until the work queued so far on CuPy's current
    stream has finished; entries whose work has finished are dropped on each call."""
    import cupy

    event = cupy.cuda.Event(block=False, disable_timing=True)
    event.record()
    with _pending_lock:
        while _pending and _pending[0][0].done:
            _pending.popleft()
        _pending.append((event, operands))


ADAPTER = DLPackBridge()
