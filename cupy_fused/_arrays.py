"""One small adapter per array library (numpy, cupy, torch).

An adapter describes the caller's object (library, shape, dtype, device), hands the backends a zero-copy view
(numpy for host data, cupy for device data; torch CUDA tensors through DLPack), allocates outputs and workspaces
with the caller's library, and resolves the stream to run on. torch and cupy are imported only when an object of
theirs arrives. bfloat16 data has no numpy/cupy dtype: its view holds the raw bits as int16 and the logical dtype
travels beside it as the string "bfloat16".
"""

from __future__ import annotations

import contextlib
import functools
from typing import NamedTuple

class Operand(NamedTuple):  # a tuple: built on every call, so its construction must be cheap
    name: str  # the argument's name, for messages
    obj: object  # the caller's object
    library: str  # "numpy" | "cupy" | "torch"
    shape: tuple
    dtype: str  # e.g. "float32", "bfloat16", "int64"
    device: str  # "cpu" or "cuda:N"

    @property
    def device_id(self) -> int | None:
        return None if self.device == "cpu" else int(self.device.split(":")[1])


def library_of(obj) -> str | None:
    root = type(obj).__module__.split(".")[0]
    if root == "numpy" and type(obj).__name__ == "ndarray":
        return "numpy"
    if root == "cupy" and type(obj).__name__ == "ndarray":
        return "cupy"
    if root == "torch":
        import torch

        if isinstance(obj, torch.Tensor):
            return "torch"
    return None


def describe(name: str, obj) -> Operand:
    library = library_of(obj)
    if library is None:
        raise TypeError(
            f"{name} must be a numpy.ndarray, cupy.ndarray or torch.Tensor, got {type(obj).__module__}.{type(obj).__name__}"
        )
    if library == "numpy":
        return Operand(name, obj, library, tuple(obj.shape), obj.dtype.name, "cpu")
    if library == "cupy":
        return Operand(name, obj, library, tuple(obj.shape), obj.dtype.name, f"cuda:{obj.device.id}")
    return Operand(name, obj, library, tuple(obj.shape), str(obj.dtype).removeprefix("torch."), str(obj.device))


def backend_view(op: Operand):
    """Zero-copy numpy (host) or cupy (device) view of the operand's data; bfloat16 as int16 bits."""
    return op.obj if op.library != "torch" else _torch_view(op.obj)


def _torch_view(tensor):
    import torch

    if tensor.requires_grad:  # DLPack and .numpy() refuse tensors that require grad; detach shares the memory
        tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.view(torch.int16)
    if tensor.device.type == "cpu":
        return tensor.numpy()
    import cupy

    # The capsule form of DLPack: torch's __dlpack__ adds stream bookkeeping that costs tens of microseconds per
    # tensor, and the work runs on the tensor's own stream (see running_on), so no hand-over is needed.
    return cupy.from_dlpack(torch.utils.dlpack.to_dlpack(tensor))


def empty(library: str, shape: tuple, dtype: str, device: str):
    """A new array of the caller's library: returns (caller's object, backend view of it)."""
    if library == "numpy":
        import numpy

        out = numpy.empty(shape, dtype)
        return out, out
    if library == "cupy":
        import cupy

        with cupy.cuda.Device(int(device.split(":")[1])):
            out = cupy.empty(shape, dtype)
        return out, out
    import torch

    out = torch.empty(shape, dtype=getattr(torch, dtype), device=device)
    return out, _torch_view(out)


@contextlib.contextmanager
def running_on(library: str, device: str, stream):
    """Enter the operands' device and stream and yield the cupy stream to queue work on (None for host data).

    The stream is the caller's library's current stream unless ``stream`` names one of that library's own streams;
    a stream object of another library is refused. For torch the stream is also made torch's current stream for
    the call, so that outputs and workspaces from torch's caching allocator belong to the stream that uses them."""
    if device == "cpu":
        if stream is not None:
            raise TypeError(f"stream applies to GPU arrays only; the arrays are {library} arrays on the CPU")
        yield None
        return
    import cupy

    device_id = int(device.split(":")[1])
    if library == "cupy":
        if stream is not None and not isinstance(stream, (cupy.cuda.Stream, cupy.cuda.ExternalStream)):
            raise TypeError(
                "stream must be a cupy.cuda.Stream (or ExternalStream) for cupy arrays, got "
                f"{type(stream).__module__}.{type(stream).__name__}"
            )
        with cupy.cuda.Device(device_id):
            run_stream = stream if stream is not None else cupy.cuda.get_current_stream()
            with run_stream:
                yield run_stream
        return
    import torch

    if stream is None:  # already torch's current stream: no need to make it current
        with cupy.cuda.Device(device_id), _cupy_stream(_current_torch_stream(torch, device_id), device_id) as run_stream:
            yield run_stream
        return
    if not isinstance(stream, torch.cuda.Stream):
        raise TypeError(
            f"stream must be a torch.cuda.Stream for torch tensors, got {type(stream).__module__}.{type(stream).__name__}"
        )
    if stream.device_index != device_id:
        raise ValueError(f"stream is on cuda:{stream.device_index} but the tensors are on {device}")
    with torch.cuda.stream(stream), cupy.cuda.Device(device_id), _cupy_stream(stream.cuda_stream, device_id) as run_stream:
        yield run_stream


def _current_torch_stream(torch, device_id: int) -> int:
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)  # a C call, where torch.cuda.current_stream is Python
    return raw(device_id) if raw is not None else torch.cuda.current_stream(device_id).cuda_stream


class _StreamHandle:
    """A raw cudaStream_t offered through the CUDA stream protocol, for cupy.cuda.Stream.from_external."""

    def __init__(self, handle: int):
        self.handle = handle

    def __cuda_stream__(self):
        return 0, self.handle


@functools.lru_cache(maxsize=64)
def _cupy_stream(handle: int, device_id: int):
    """A cupy view of a stream owned elsewhere (it owns nothing, so keeping one per handle is safe)."""
    import cupy

    with cupy.cuda.Device(device_id):
        return cupy.cuda.Stream.from_external(_StreamHandle(handle))
