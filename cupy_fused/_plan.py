"""Which GPU method and precision a call uses.

The rules below are the table measured on an H100 (benchmarks/NOTES.md and the README's results; ms):

| case                           | fused one-pass                        | cuBLAS + sigmoid_sum        | choice |
| float32 "tf32x3" (the default) | 3.2-3.5 at 128x32768x32768 (wgmma)    | no such compute type        | fused  |
| float32 "ieee"                 | CUDA-core FMA kernel, far slower      | 5.29 (torch parity)         | cuBLAS |
| float32 "tf32"                 | 1.57-1.71 / 12.2-12.7 / 0.86-0.95     | 1.53 / 8.2 / 0.365          | cuBLAS |
|   (at 128x32768x32768 / 16384x1024x65536 / 4096^3)                                                    |
| float16 / bfloat16 inputs      | 1.05 / 0.96 at 128x32768x32768        | near torch's 0.81 / 0.84    | cuBLAS |
| B x N x K <= 2^20              | one launch, ~3 us of GPU time         | two launches                | fused  |

The default precision for float32 is the fastest fp32-accurate one: "tf32x3" (three TF32 products, error within
2x of cuBLAS fp32's; 3.2-3.5 ms against 5.29 for strict fp32 at 128x32768x32768) where the GPU has tensor cores
(compute capability 8.0+), else "ieee". method="fused" is always available for its memory bound (output plus
B x ceil(N / tile) floats) and its bit-identical results.
"""

from __future__ import annotations


_TINY_MACS = 1 << 20


def choose(B: int, K: int, N: int, dtype: str, precision: str | None, method: str, device_id: int | None):
    """(method, precision) for a GPU call (both already validated); precision None means the default. Raises
    ValueError for a combination that cannot run (tf32x3 on cuBLAS)."""
    from . import _gpu, _kernels

    if precision is None:
        has_tc = _kernels.has_tensor_cores(device_id) if device_id is not None else True
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
    if dtype == "float32" and precision == "tf32x3":
        return "fused", precision
    return "cublas", precision
