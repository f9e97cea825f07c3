"""Launching our kernels: the driver's ``cuLaunchKernel`` through ctypes, with the parameters packed once per plan.

Measured on the H100 of the device tool (benchmarks/NOTES.md, session 3), host time per launch of a 13-parameter
kernel from Python: CuPy's RawKernel 11.9 us (each argument becomes a CPointer object), cuda.bindings 8.6 us,
cuda.core 6.9 us, ctypes ``cuLaunchKernel`` with the parameter array packed once 5.45 us (the driver call itself).
A ``Launch`` therefore owns a ctypes value per kernel parameter; a call writes the few that change (addresses, the
epoch) and launches, under a lock so that threads sharing a plan cannot interleave their values. The stream is the
caller's raw ``cudaStream_t``; launches on a capturing stream are recorded into the graph like any other.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import threading

_CUDA_ERROR_INVALID_CONTEXT = 201
CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8

# A fresh 64-bit value per call for the kernels' grid hand-over (kernels/grid_handover.cuh).
_epochs = itertools.count(int.from_bytes(os.urandom(8), "little") >> 2)


def next_epoch() -> int:
    return next(_epochs) & 0xFFFFFFFFFFFFFFFF


_driver = None


def _cuda():
    global _driver
    if _driver is None:
        lib = ctypes.CDLL("libcuda.so.1")
        lib.cuLaunchKernel.argtypes = [ctypes.c_void_p] + [ctypes.c_uint] * 7 + [ctypes.c_void_p] * 3
        lib.cuLaunchKernel.restype = ctypes.c_int
        lib.cuGetErrorName.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
        lib.cuTensorMapEncodeTiled.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
        lib.cuTensorMapEncodeTiled.argtypes += [ctypes.c_void_p] * 4 + [ctypes.c_int] * 4
        lib.cuTensorMapEncodeTiled.restype = ctypes.c_int
        lib.cuMemsetD32Async.argtypes = [ctypes.c_uint64, ctypes.c_uint, ctypes.c_size_t, ctypes.c_void_p]
        lib.cuMemsetD32Async.restype = ctypes.c_int
        _driver = lib
    return _driver


def error_name(status: int) -> str:
    name = ctypes.c_char_p()
    _cuda().cuGetErrorName(status, ctypes.byref(name))
    return (name.value or b"?").decode()


U64, I64, I32 = ctypes.c_uint64, ctypes.c_int64, ctypes.c_int32


def zero_words(address: int, words: int, stream: int) -> None:
    """Queue the zeroing of ``words`` 32-bit words at ``address`` on ``stream`` (a memset node under capture)."""
    status = _cuda().cuMemsetD32Async(address, 0, words, stream)
    if status != 0:
        raise RuntimeError(f"zeroing {words} words of the workspace failed: {error_name(status)}")


class TensorMap(ctypes.Structure):
    """A CUtensorMap (128 opaque bytes; kernels/ptx.cuh: ptx::TensorMap), a kernel parameter passed by value."""

    _fields_ = [("words", ctypes.c_uint64 * 16)]


# cuda.h: CUtensorMapDataType of each element type we map, CU_TENSOR_MAP_SWIZZLE_128B,
# CU_TENSOR_MAP_L2_PROMOTION_L2_256B
TENSOR_MAP_TYPES = {"float16": (6, 2), "float32": (7, 4), "bfloat16": (9, 2)}  # dtype -> (CUtensorMapDataType, bytes)
_SWIZZLE_128B, _L2_256B = 3, 3


class TiledMap:
    """The tensor map of a row-major matrix (rows x cols of ``dtype``, row stride in elements: 16-byte aligned rows)
    read in boxes of 128 bytes of columns (32 float32 values, 64 16-bit ones) x ``box_rows`` rows, 128-byte swizzled,
    zeros outside the matrix. ``value`` is the kernel parameter; ``point_at(address)`` re-encodes it only when the
    matrix's address changes (a layer's weight: once)."""

    __slots__ = ("value", "_address", "_arrays", "_type")

    def __init__(self, rows: int, cols: int, stride: int, box_rows: int, dtype: str = "float32"):
        self.value = TensorMap()
        self._address: int | None = None
        self._type, itemsize = TENSOR_MAP_TYPES[dtype]
        self._arrays = (
            (ctypes.c_uint64 * 2)(cols, rows),
            (ctypes.c_uint64 * 1)(stride * itemsize),
            (ctypes.c_uint32 * 2)(128 // itemsize, box_rows),
            (ctypes.c_uint32 * 2)(1, 1),
        )

    def point_at(self, address: int) -> None:
        if address == self._address:
            return
        dims, strides, box, steps = self._arrays
        status = _cuda().cuTensorMapEncodeTiled(
            ctypes.byref(self.value), self._type, 2, address, dims, strides, box, steps, 0, _SWIZZLE_128B, _L2_256B, 0
        )
        if status != 0:
            raise RuntimeError(f"encoding a tensor map failed: {error_name(status)}")
        self._address = address


class Launch:
    """One kernel with a fixed grid (1-D), block and dynamic shared memory. ``params`` lists the kernel's parameters
    in order as (ctypes type, value); a value of None marks a parameter given per call, in order, to ``__call__``;
    a ctypes structure (a TensorMap) is passed as it is at each launch: its owner updates it in place."""

    __slots__ = (
        "name",
        "_function",
        "_grid",
        "_block",
        "_smem",
        "_array",
        "_slots",
        "_values",
        "_lock",
        "_device",
        "_driver_launch",
    )

    def __init__(self, function, name: str, grid: int, block: int, smem: int, params, device_id: int):
        if grid >= 2**31:
            raise ValueError(f"{name}: a grid of {grid} blocks is more than one launch allows")
        self.name = name
        self._function = function.ptr
        self._grid, self._block, self._smem = grid, block, smem
        self._values = [
            value if isinstance(value, ctypes.Structure) else ctype(0 if value is None else value)
            for ctype, value in params
        ]
        self._slots = tuple(v for v, (_, value) in zip(self._values, params) if value is None)
        self._array = (ctypes.c_void_p * len(self._values))(*[ctypes.addressof(v) for v in self._values])
        self._lock = threading.Lock()
        self._device = device_id
        self._driver_launch = _cuda().cuLaunchKernel
        if smem > 48 * 1024:
            from cupy.cuda import driver

            driver.funcSetAttribute(function.ptr, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem)

    def __call__(self, stream: int, *values) -> None:
        launch = self._driver_launch
        with self._lock:
            for slot, value in zip(self._slots, values):
                slot.value = value
            status = launch(self._function, self._grid, 1, 1, self._block, 1, 1, self._smem, stream, self._array, None)
            if status == _CUDA_ERROR_INVALID_CONTEXT:  # a thread that has not used CUDA yet: make the context current
                import cupy

                with cupy.cuda.Device(self._device):
                    cupy.cuda.runtime.free(0)
                status = launch(
                    self._function, self._grid, 1, 1, self._block, 1, 1, self._smem, stream, self._array, None
                )
        if status != 0:
            raise RuntimeError(f"launching {self.name} failed: {error_name(status)}")

    def __repr__(self) -> str:
        return f"{self.name} <<<{self._grid}, {self._block}, {self._smem}>>>"


class LinearKernel:
    """An executable that is one launch of a kernel with the signature all our linear kernels share:
    (x, ldx, w, ldw, bias, workspace, out, saved, B, N, K, splits, k_split, [group_m,] epoch), or with other
    ``operands`` in place of (x, ldx, w, ldw) (the small-batch wgmma kernel's tensor maps: its own ``run``)."""

    _launch: Launch

    def _make_launch(
        self,
        p,
        function,
        name: str,
        grid: int,
        block: int,
        smem: int,
        k_split: int,
        splits: int,
        group_m: int | None = None,
        operands: list | None = None,
    ) -> None:
        scalars = [(I32, p.rows), (I32, p.n), (I32, p.k), (I32, splits), (I64, k_split)]
        if group_m is not None:
            scalars.append((I32, group_m))
        addresses = [(U64, None)] * 4  # bias, workspace, out, saved: given per call
        if operands is None:
            operands = [(U64, None), (I64, p.ldx), (U64, None), (I64, p.ldw)]
        params = operands + addresses + scalars + [(U64, None)]
        self._launch = Launch(function, name, grid, block, smem, params, p.device_id)

    def run(self, x, w, b, out, workspace, stream, saved=0):
        self._launch(stream, x, w, b, workspace, out, saved, next_epoch())
