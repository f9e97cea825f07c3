// Operand types of the sm_90a GEMM core (sm90_gemm.cu): the element both operands hold in memory, the wgmma kind that
// multiplies it, and the k tile that follows from the 128-byte swizzle (one shared-memory row of a tile is 128 bytes).
// A new operand type is one struct here plus a row in cupy_fused/gemm/operands.py.
#pragma once
#include "ptx.cuh"

namespace sm90 {

template <class T, class K> struct Operand {
    using Elem = T;     // what the operands, the bias and the result hold
    using Kind = K;     // ptx::wgmma_ss<Kind, N>
    static constexpr int BK = 128 / (int)sizeof(T);  // k values per 128-byte row: one TMA box column, one k tile
};

struct BF16 : Operand<__nv_bfloat16, ptx::bf16_kind> {};
struct F16 : Operand<__half, ptx::f16_kind> {};

}  // namespace sm90
