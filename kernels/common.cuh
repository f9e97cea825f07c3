// Shared device helpers for every kernel family in kernels/.
// Compiled by NVRTC through cupy_fused/loader.py (which passes -I for this folder and for the CUDA headers).
#pragma once
#include <cuda_fp16.h>
#include <cuda_bf16.h>

namespace cf {

// Accumulator type: fp64 inputs accumulate in fp64, everything else in fp32.
template <typename T> struct acc { using type = float; };
template <> struct acc<double> { using type = double; };

__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }
__device__ __forceinline__ float to_acc(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_acc(float v);
template <> __device__ __forceinline__ float from_acc<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_acc<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <typename T> __device__ __forceinline__ T from_acc(double v);
template <> __device__ __forceinline__ double from_acc<double>(double v) { return v; }

// The bits of the 2-byte types as the low half of a 32-bit word (for packing them into 16-byte chunks), and back.
__device__ __forceinline__ unsigned bits16(__half v) { return __half_as_ushort(v); }
__device__ __forceinline__ unsigned bits16(__nv_bfloat16 v) { return __bfloat16_as_ushort(v); }
template <typename H> __device__ __forceinline__ H from_bits16(unsigned b);  // b's low 16 bits
template <> __device__ __forceinline__ __half from_bits16<__half>(unsigned b) {
    return __ushort_as_half((unsigned short)b);
}
template <> __device__ __forceinline__ __nv_bfloat16 from_bits16<__nv_bfloat16>(unsigned b) {
    return __ushort_as_bfloat16((unsigned short)b);
}
// Two floats rounded to a 2-byte type (to nearest even, one paired conversion) in one 32-bit word, lo in the low half.
template <typename H> __device__ __forceinline__ unsigned pack2(float lo, float hi);
template <> __device__ __forceinline__ unsigned pack2<__half>(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<unsigned*>(&v);
}
template <> __device__ __forceinline__ unsigned pack2<__nv_bfloat16>(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<unsigned*>(&v);
}

// Logistic function; NaN stays NaN, +inf -> 1, -inf -> 0 (as torch.sigmoid). The fp32 version uses the hardware
// exp2 and a fast divide (a few ulp per term; exp(-z) = inf for z < -88 gives exactly 0): full-precision expf and
// IEEE division made a bandwidth-bound reduction instruction-bound.
__device__ __forceinline__ float sigmoid(float z) { return __fdividef(1.0f, 1.0f + __expf(-z)); }
__device__ __forceinline__ double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

// sigmoid'(z) = s (1 - s) = e / (1 + e)^2 with e = exp(-|z|): accurate for every z (no cancellation in 1 - s),
// 0 where it underflows, NaN for NaN. What the backward needs (gz = g * sigmoid'(z)). The linear kernels store it
// to `saved`, in the caller's dtype, in their instances with the template flag SAVE (a training forward). A
// compile-time flag, not a null test: the run-time test alone, never taken, made the tf32x3 wgmma kernel 7-8% slower
// (H100, 4096^3).
template <typename A> __device__ __forceinline__ A dsigmoid(A z) {
    const A e = exp(-fabs(z));
    return e / ((A(1) + e) * (A(1) + e));
}

// The same e / (1 + e)^2 from the hardware exp2 and one fast reciprocal, for sigmoid' stored in a half type (the GEMM
// core's saving epilogues): relative error 2^-21 near 0, about 2^-18 at |z| = 17 where __expf's grows, far under the
// half types' rounding (2^-9, 2^-12); dsigmoid's accurate exp and IEEE divide cost about ten times the instructions.
__device__ __forceinline__ float dsigmoid_fast(float z) {
    const float e = __expf(-fabsf(z)), r = __fdividef(1.0f, 1.0f + e);
    return e * r * r;
}

template <typename A> __device__ __forceinline__ A warp_sum(A v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

}  // namespace cf
