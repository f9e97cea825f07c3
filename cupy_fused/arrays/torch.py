"""torch.Tensor (and subclasses such as nn.Parameter), on the CPU or a CUDA device.

CUDA tensors are read and written through their raw addresses (``data_ptr()``) on torch's current stream; outputs
and workspaces come from torch's caching allocator. Host tensors are handed to the NumPy backend as zero-copy numpy
views (bfloat16 as int16 bits). A tensor with the negative bit set (``torch._neg_view``) is resolved into a copy
first; sparse and nested tensors are refused.
"""

from __future__ import annotations

import functools

import torch

from . import Operand


class TorchAdapter:
    library = "torch"
    bridge = False
    out_of_memory = torch.cuda.OutOfMemoryError  # what its allocator raises

    @staticmethod
    def key(t) -> tuple:
        try:
            return (
                "torch",
                t.shape,
                t.stride(),
                t.dtype,
                t.layout,
                t.is_cpu,
                t.is_cuda,
                t.get_device(),
                not t.data_ptr() & 15,
                t.is_neg(),
            )
        except (RuntimeError, NotImplementedError):  # sparse and other layouts: validation explains
            return ("torch", "unsupported", id(t))

    @staticmethod
    def describe(name: str, t) -> Operand:
        if t.is_nested:
            raise TypeError(
                f"{name} is a nested torch tensor; only dense (strided) tensors are supported: pass its tensors "
                f"({name}.unbind()) one at a time"
            )
        if t.layout != torch.strided:
            raise TypeError(
                f"{name} is a {t.layout} torch tensor; only dense (strided) tensors are supported: pass "
                f"{name}.to_dense()"
            )
        dtype = str(t.dtype).removeprefix("torch.")
        return Operand(
            name,
            "torch",
            tuple(t.shape),
            dtype,
            str(t.device),
            tuple(t.stride()),
            t.device.type == "meta" or t.data_ptr() % 16 == 0,
            not t.is_neg(),
        )

    @staticmethod
    def pointer(t) -> int:
        return t.data_ptr()

    @staticmethod
    def prepare(t):
        """A copy the kernels can read: negative bit resolved, rows contiguous."""
        return t.detach().resolve_neg().contiguous()

    @staticmethod
    def host_view(t):
        if t.requires_grad:  # .numpy() refuses tensors that require grad; detach shares the memory
            t = t.detach()
        if t.is_neg():
            t = t.resolve_neg()
        if t.dtype == torch.bfloat16:
            t = t.view(torch.int16)
        return t.numpy()

    @staticmethod
    def zero(t) -> None:
        t.zero_()

    @staticmethod
    def empty_fn(dtype: str, device_id: int | None):
        device = torch.device("cpu") if device_id is None else torch.device("cuda", device_id)
        return functools.partial(torch.empty, dtype=getattr(torch, dtype), device=device)

    @staticmethod
    def stream_fn(device_id: int):
        raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)  # a C call; torch.cuda.current_stream is Python
        if raw is not None:
            return functools.partial(raw, device_id)
        return lambda: torch.cuda.current_stream(device_id).cuda_stream

    @staticmethod
    def user_stream(stream, device_id: int):
        """(raw stream, context that makes it torch's current stream, so that allocations belong to it)."""
        if not isinstance(stream, torch.cuda.Stream):
            raise TypeError(
                f"stream must be a torch.cuda.Stream for torch tensors, got {type(stream).__module__}."
                f"{type(stream).__name__}"
            )
        if stream.device_index != device_id:
            raise ValueError(f"stream is on cuda:{stream.device_index} but the tensors are on cuda:{device_id}")
        return stream.cuda_stream, torch.cuda.stream(stream)


ADAPTER = TorchAdapter()
