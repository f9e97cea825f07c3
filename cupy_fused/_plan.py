"""Which GPU method and precision a call uses.

The rules below are the table measured on an H100 (benchmarks/NOTES.md and the README's results; times in ms):

| case                                | fused one-pass            | cuBLAS + sigmoid_sum     | choice |
| float32 "tf32x3" / default          | 4.80 at 128x32768x32768   | (no such compute type)   | fused  |
| float32 "ieee"                      | CUDA-core FMA, far slower | 5.32, torch parity       | cuBLAS |
| float32 "tf32", B x N < 2^26        | 1.77 at 128x32768x32768   | 1.54                     | cuBLAS |
| float32 "tf32", B x N >= 2^26       | 12.6 at 16384x1024x65536  | writes and reads B x N   | fused  |
| float16 / bfloat16 inputs           | 1.05 / 0.96 at 128x32768^2| cuBLAS near torch's 0.8  | cuBLAS |
| B x N x K <= 2^20 (launch-bound)    | one launch, ~2.6 us GPU   | two launches             | fused  |

The default precision for float32 is the fastest fp32-accurate one: "tf32x3" (three TF32 products, error within
2x of cuBLAS fp32's) where the GPU has tensor cores (compute capability 8.0+), else "ieee".
"""

from __future__ import annotations

import functools

_TINY_MACS = 1 << 20
_LARGE_Z = 1 << 26  # B x N elements: a 256 MiB fp32 intermediate for the two-pass method


@functools.lru_cache(maxsize=None)
def tensor_cores(device_id: int) -> bool:
    import cupy

    return int(cupy.cuda.Device(device_id).compute_capability) >= 80


def choose(B: int, K: int, N: int, dtype: str, precision: str | None, method: str, device_id: int | None):
    """(method, precision) for a GPU call (both already validated); precision None means the default. Raises
    ValueError for a combination that cannot run (tf32x3 on cuBLAS)."""
    from . import _gpu

    if precision is None:
        has_tc = tensor_cores(device_id) if device_id is not None else True
        precision = "tf32x3" if dtype == "float32" and method != "cublas" and has_tc else "ieee"
    if method == "cublas":
        if dtype == "float32" and precision not in _gpu.GEMM_PRECISIONS:
            raise ValueError(
                f"precision={precision!r} is not available with method='cublas' (it offers "
                f"{', '.join(map(repr, _gpu.GEMM_PRECISIONS))}); use method='fused' or 'auto'"
            )
        return method, precision
    if method == "fused":
        return method, precision
    if B * N * K <= _TINY_MACS:
        return "fused", precision
    if dtype == "float32" and (precision == "tf32x3" or (precision == "tf32" and B * N >= _LARGE_Z)):
        return "fused", precision
    return "cublas", precision
