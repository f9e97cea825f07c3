"""cuBLASLt through ctypes: a matmul described once per plan, then one call per GEMM.

Why cuBLASLt and not CuPy's cuBLAS wrappers: CuPy's ``gemmEx`` sets the stream on a shared handle on every call and
refuses to run during CUDA graph capture, and the handle's math mode is global state. ``cublasLtMatmul`` takes the
compute type in its descriptor, the stream and the workspace as arguments: nothing is mutated per call, the caller's
allocator provides the workspace, and the call can be captured in a graph. The descriptors and the algorithm
(cuBLASLt's heuristic) are chosen once per plan.

The library is the one CuPy already loaded (libcublas depends on libcublasLt, so its soname resolves to the loaded
copy). Matrices are column-major for cuBLASLt; a row-major (rows, cols) array is the column-major (cols, rows) one.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable

_CUDA_TYPE = {"float16": 2, "float32": 0, "float64": 1, "bfloat16": 14}  # cudaDataType_t
_SCALE_TYPE = {"float32": 0, "float64": 1, "float16": 0, "bfloat16": 0}  # D's dtype -> alpha / beta type
_DESC_TRANSA, _DESC_TRANSB = 3, 4  # cublasLtMatmulDescAttributes_t
_PREF_MAX_WORKSPACE_BYTES = 1  # cublasLtMatmulPreferenceAttributes_t
_PREF_MIN_ALIGNMENT = {"a": 5, "b": 6, "c": 7, "d": 8}  # bytes; cuBLASLt assumes 256 when not told
_OP_N, _OP_T = 0, 1


class CublasLtError(RuntimeError):
    pass


class _HeuristicResult(ctypes.Structure):
    _fields_ = [
        ("algo", ctypes.c_uint64 * 8),
        ("workspaceSize", ctypes.c_size_t),
        ("state", ctypes.c_int),
        ("wavesCount", ctypes.c_float),
        ("reserved", ctypes.c_int * 4),
    ]


_lib = None
_lib_lock = threading.Lock()


def library():
    """The cuBLASLt shared library, with the argument types of the functions used here."""
    global _lib
    with _lib_lock:
        if _lib is None:
            import cupy
            from cupy_backends.cuda.libs import cublas  # loads libcublas and with it libcublasLt

            major = cupy.cuda.runtime.runtimeGetVersion() // 1000
            lib = ctypes.CDLL(f"libcublasLt.so.{major}")
            vp, sz, i32, u64 = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_uint64
            pvp = ctypes.POINTER(ctypes.c_void_p)
            signatures = {
                "cublasLtCreate": [pvp],
                "cublasLtMatmulDescCreate": [pvp, i32, i32],
                "cublasLtMatmulDescDestroy": [vp],
                "cublasLtMatmulDescSetAttribute": [vp, i32, vp, sz],
                "cublasLtMatrixLayoutCreate": [pvp, i32, u64, u64, ctypes.c_int64],
                "cublasLtMatrixLayoutDestroy": [vp],
                "cublasLtMatmulPreferenceCreate": [pvp],
                "cublasLtMatmulPreferenceDestroy": [vp],
                "cublasLtMatmulPreferenceSetAttribute": [vp, i32, vp, sz],
                "cublasLtMatmulAlgoGetHeuristic": [
                    vp,
                    vp,
                    vp,
                    vp,
                    vp,
                    vp,
                    vp,
                    i32,
                    ctypes.POINTER(_HeuristicResult),
                    ctypes.POINTER(ctypes.c_int),
                ],
                "cublasLtMatmul": [vp, vp, vp, vp, vp, vp, vp, vp, vp, vp, vp, vp, vp, vp, sz, vp],
            }
            for name, argtypes in signatures.items():
                fn = getattr(lib, name)
                fn.argtypes, fn.restype = argtypes, ctypes.c_int
            del cublas
            _lib = lib
    return _lib


def _check(status: int, what: str) -> None:
    if status != 0:
        raise CublasLtError(f"{what} failed with cublasStatus_t {status}")


_handles = threading.local()


def handle(device_id: int) -> int:
    """A cuBLASLt handle of this thread for the device (created on first use; the caller made the device current)."""
    per_thread = getattr(_handles, "by_device", None)
    if per_thread is None:
        per_thread = _handles.by_device = {}
    h = per_thread.get(device_id)
    if h is None:
        out = ctypes.c_void_p()
        _check(library().cublasLtCreate(ctypes.byref(out)), "cublasLtCreate")
        if out.value is None:
            raise RuntimeError("cublasLtCreate succeeded but returned a null handle")
        h = per_thread[device_id] = out.value
    return h


class Gemm:
    """D (m x n) = op(A) (m x k) . op(B) (k x n) [+ D], column-major as cuBLASLt sees it, for one shape, dtype set
    and compute type. A is stored (k x m) when ``trans_a`` else (m x k), B (n x k) when ``trans_b`` else (k x n),
    with leading dimensions lda, ldb, ldd. ``align``: the alignment in bytes that every address passed for A, B and
    D is guaranteed to have (the algorithm is chosen for it). ``run(a, b, d, workspace, stream, accumulate=False)``;
    ``workspace_bytes`` is what the chosen algorithm needs. (A row-major (r, c) array is the column-major (c, r)
    one.)"""

    MAX_WORKSPACE = 32 * 2**20

    def __init__(
        self,
        m: int,
        n: int,
        k: int,
        ab_dtype: str,
        d_dtype: str,
        compute: int,
        trans_a: bool,
        trans_b: bool,
        lda: int,
        ldb: int,
        ldd: int,
        device_id: int,
        align: tuple[int, int, int] = (16, 16, 16),
    ):
        lib = library()
        self._lib = lib
        self._objects: list[tuple[Callable[[int], int], int]] = []  # (destroy function, pointer), freed in __del__
        self._handle = handle(device_id)
        desc = self._create(lib.cublasLtMatmulDescCreate, lib.cublasLtMatmulDescDestroy, compute, _SCALE_TYPE[d_dtype])
        for attribute, op in ((_DESC_TRANSA, _OP_T if trans_a else _OP_N), (_DESC_TRANSB, _OP_T if trans_b else _OP_N)):
            value = ctypes.c_int32(op)
            _check(lib.cublasLtMatmulDescSetAttribute(desc, attribute, ctypes.byref(value), 4), "matmul attribute")
        layout = functools.partial(self._create, lib.cublasLtMatrixLayoutCreate, lib.cublasLtMatrixLayoutDestroy)
        a = layout(_CUDA_TYPE[ab_dtype], *((k, m) if trans_a else (m, k)), lda)
        b = layout(_CUDA_TYPE[ab_dtype], *((n, k) if trans_b else (k, n)), ldb)
        d = layout(_CUDA_TYPE[d_dtype], m, n, ldd)
        pref = self._create(lib.cublasLtMatmulPreferenceCreate, lib.cublasLtMatmulPreferenceDestroy)
        limit = ctypes.c_uint64(self.MAX_WORKSPACE)
        _check(
            lib.cublasLtMatmulPreferenceSetAttribute(pref, _PREF_MAX_WORKSPACE_BYTES, ctypes.byref(limit), 8),
            "preference attribute",
        )
        for operand, alignment in zip("abcd", align + align[-1:]):
            least = ctypes.c_uint32(alignment)
            _check(
                lib.cublasLtMatmulPreferenceSetAttribute(pref, _PREF_MIN_ALIGNMENT[operand], ctypes.byref(least), 4),
                "alignment preference",
            )
        result, count = _HeuristicResult(), ctypes.c_int(0)
        _check(
            lib.cublasLtMatmulAlgoGetHeuristic(
                self._handle, desc, a, b, d, d, pref, 1, ctypes.byref(result), ctypes.byref(count)
            ),
            "cublasLtMatmulAlgoGetHeuristic",
        )
        if count.value < 1 or result.state != 0:
            raise CublasLtError(f"cuBLASLt has no algorithm for {m} x {n} x {k} {ab_dtype} (compute type {compute})")
        self._algo = result.algo
        self.workspace_bytes = int(result.workspaceSize)
        scalar = ctypes.c_double if d_dtype == "float64" else ctypes.c_float
        self._one, self._zero = scalar(1.0), scalar(0.0)  # host scalars, read when the call is queued
        self._args = (
            desc,
            ctypes.addressof(self._one),
            ctypes.addressof(self._zero),
            a,
            b,
            d,
            ctypes.addressof(self._algo),
        )
        self._device_id = device_id

    def _create(self, create, destroy, *args):
        out = ctypes.c_void_p()
        _check(create(ctypes.byref(out), *args), create.__name__)
        self._objects.append((destroy, out.value))
        return out.value

    def run(self, a: int, b: int, d: int, workspace: int, stream: int, accumulate: bool = False) -> None:
        desc, one, zero, a_layout, b_layout, d_layout, algo = self._args
        status = self._lib.cublasLtMatmul(
            handle(self._device_id),
            desc,
            one,
            a,
            a_layout,
            b,
            b_layout,
            one if accumulate else zero,
            d,
            d_layout,
            d,
            d_layout,
            algo,
            workspace or None,
            self.workspace_bytes,
            stream or None,
        )
        if status != 0:
            raise CublasLtError(f"cublasLtMatmul failed with cublasStatus_t {status}")

    def __del__(self):
        for destroy, pointer in reversed(getattr(self, "_objects", [])):
            destroy(pointer)


def matmul_rows(
    rows: int,
    n: int,
    k: int,
    dtype: str,
    acc_dtype: str,
    compute: int,
    ldx: int,
    ldw: int,
    ldz: int,
    device_id: int,
    align: tuple[int, int, int] = (16, 16, 16),
) -> Gemm:
    """z (rows, n) row-major (ldz) = x (rows, k) @ w (n, k).T, x and w row-major (ldx, ldw): as cuBLASLt sees it,
    z.T (n x rows) = W (stored k x n, transposed) . x.T (stored k x rows). ``align``: (x, w, z) address alignment."""
    return Gemm(
        n, rows, k, dtype, acc_dtype, compute, True, False, ldw, ldx, ldz, device_id, (align[1], align[0], align[2])
    )
