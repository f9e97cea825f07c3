"""cupy.ndarray: device data, launched on CuPy's current stream (or a cupy stream passed as ``stream=``)."""

from __future__ import annotations

import cupy

from . import Operand


class CupyAdapter:
    library = "cupy"
    bridge = False
    out_of_memory = cupy.cuda.memory.OutOfMemoryError  # what its allocator raises

    @staticmethod
    def key(a) -> tuple:
        memory = a.data
        return ("cupy", a.shape, a.strides, a.dtype, memory.device_id, not memory.ptr & 15)

    @staticmethod
    def describe(name: str, a) -> Operand:
        item = a.dtype.itemsize or 1
        strides = tuple(s // item for s in a.strides)
        return Operand(
            name, "cupy", tuple(a.shape), a.dtype.name, f"cuda:{a.data.device_id}", strides, a.data.ptr % 16 == 0
        )

    @staticmethod
    def pointer(a) -> int:
        return a.data.ptr

    @staticmethod
    def prepare(a):
        return cupy.ascontiguousarray(a)

    @staticmethod
    def zero(a) -> None:
        a.fill(0)

    @staticmethod
    def empty_fn(dtype: str, device_id: int):
        np_dtype = cupy.dtype(dtype)

        def empty(shape):  # the runner has made device_id current
            return cupy.empty(shape, np_dtype)

        return empty

    @staticmethod
    def stream_fn(device_id: int):
        get = cupy.cuda.get_current_stream

        def current():  # the runner has made device_id current
            return get().ptr

        return current

    @staticmethod
    def user_stream(stream, device_id: int):
        """(raw stream, context that makes it current for allocations) for ``stream=``."""
        if not isinstance(stream, (cupy.cuda.Stream, cupy.cuda.ExternalStream)):
            raise TypeError(
                "stream must be a cupy.cuda.Stream (or ExternalStream) for cupy arrays, got "
                f"{type(stream).__module__}.{type(stream).__name__}"
            )
        stream_device = getattr(stream, "device_id", device_id)
        if stream_device not in (device_id, -1):
            raise ValueError(f"stream is on cuda:{stream_device} but the arrays are on cuda:{device_id}")
        return stream.ptr, stream


ADAPTER = CupyAdapter()
