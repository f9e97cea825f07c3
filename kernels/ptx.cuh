// PTX wrappers shared by the tile kernels: asynchronous copies, TF32 / bf16 conversions, mma.sync, wgmma (sm_90a),
// its shared-memory descriptors and fences, mbarriers. Each wrapper is one instruction or a short fixed sequence.
// The sm_90a-only instructions are compiled to a trap on other targets (the launchers pick them only on sm_90a).
#pragma once
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include "ptx_wgmma.cuh"

namespace ptx {

// A tensor map (CUtensorMap, encoded on the host by cuTensorMapEncodeTiled), passed by value as a __grid_constant__
// kernel parameter: the TMA engine reads it from there.
struct alignas(64) TensorMap {
    unsigned long long words[16];
};

__device__ __forceinline__ unsigned smem_u32(const void* p) {
    return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// 16-byte async copy global -> shared; bytes in [0, 16] are read, the rest zero-filled.
__device__ __forceinline__ void cp_async16(unsigned dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// fp32 -> tf32, round to nearest with ties away from zero (the rounding of cvt.rna.tf32.f32), low 13 bits cleared.
// Done with integer ops (add half an ulp of tf32 to the magnitude, then truncate): two cheap instructions, and the
// cleared low bits make hi + lo splits exact. Inf stays inf; canonical NaN stays NaN; a finite value that rounds past
// FLT_MAX becomes inf, as with cvt.rna.
__device__ __forceinline__ unsigned to_tf32(float v) {
    return (__float_as_uint(v) + 0x1000u) & 0xffffe000u;
}

// hi = TF32(v) (ties away); lo = TF32(v - hi), exact in fp32 before its rounding: the split of tf32x3.
__device__ __forceinline__ uint4 hi_of(const uint4& v) {
    return make_uint4(to_tf32(__uint_as_float(v.x)), to_tf32(__uint_as_float(v.y)), to_tf32(__uint_as_float(v.z)),
                      to_tf32(__uint_as_float(v.w)));
}
__device__ __forceinline__ uint4 lo_of(const uint4& v, const uint4& h) {
    return make_uint4(to_tf32(__uint_as_float(v.x) - __uint_as_float(h.x)),
                      to_tf32(__uint_as_float(v.y) - __uint_as_float(h.y)),
                      to_tf32(__uint_as_float(v.z) - __uint_as_float(h.z)),
                      to_tf32(__uint_as_float(v.w) - __uint_as_float(h.w)));
}

__device__ __forceinline__ void mma_tf32(float (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <typename T> struct mma16;
template <> struct mma16<__nv_bfloat16> {
    static __device__ __forceinline__ void run(float (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
};
template <> struct mma16<__half> {
    static __device__ __forceinline__ void run(float (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
};

// The TF32 wgmma forms of the Hopper kernels (ptx_wgmma.cuh has every kind). wgmma_tf32_rs: A (64 x 8, TF32 bit
// patterns) from registers; per thread (warp w of the warpgroup, lane = 4g + t): a[0] = A[16w + g][t],
// a[1] = A[16w + g + 8][t], a[2] = A[16w + g][t + 4], a[3] = A[16w + g + 8][t + 4].
template <int N> using wgmma_tf32 = wgmma_ss<tf32_kind, N>;
template <int N> using wgmma_tf32_rs = wgmma_rs<tf32_kind, N>;

// Move registers between the warpgroups of a block (all threads of the warpgroup execute it): a producer gives up
// what it does not need so that the consumers can hold more accumulators than the launch-time share.
template <int REGS> __device__ __forceinline__ void setmaxnreg_dec() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(REGS));
#endif
}
template <int REGS> __device__ __forceinline__ void setmaxnreg_inc() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(REGS));
#endif
}

__device__ __forceinline__ unsigned long long gmma_desc_sw128(unsigned smem_addr) {
    // start address (>> 4) in bits 0-13, leading byte offset (unused for swizzled K-major, 1) in 16-29,
    // stride byte offset 1024 B (8 rows of 128 B, >> 4) in 32-45, layout 128B swizzle (1) in bits 62-63.
    return (unsigned long long)((smem_addr & 0x3FFFF) >> 4) | (1ull << 16) | (64ull << 32) | (1ull << 62);
}

__device__ __forceinline__ void wgmma_fence() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void fence_proxy_async() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// As cp_async16, with a hint to fetch the whole 256-byte L2 sector pair (rows of W are read whole).
__device__ __forceinline__ void cp_async16_pf(unsigned dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ void mbar_init(unsigned addr, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(addr), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(unsigned addr) {
    asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.release.cta.shared::cta.b64 st, [%0];\n}\n" ::"r"(addr)
                 : "memory");
}
__device__ __forceinline__ void mbar_wait(unsigned addr, unsigned parity) {
    asm volatile(
        "{\n.reg .pred p;\nLAB_WAIT:\n"
        "mbarrier.try_wait.parity.acquire.cta.shared::cta.b64 p, [%0], %1;\n"
        "@p bra DONE;\nbra LAB_WAIT;\nDONE:\n}\n" ::"r"(addr), "r"(parity)
        : "memory");
}
// Four 8 x 8 b16 matrices from shared memory (lanes 8i..8i+7 give the row addresses of matrix i); r[i] is this
// lane's 32-bit word of matrix i: row lane / 4, word lane % 4. With fp32 rows of 16 bytes that is a TF32 fragment.
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], unsigned addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

// Two floats from shared memory (8-byte aligned address).
__device__ __forceinline__ float2 lds_f2(unsigned addr) {
    float2 v;
    asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];\n" : "=f"(v.x), "=f"(v.y) : "r"(addr));
    return v;
}

// One 2-D box of a tensor map (coordinates: inner = column, outer = row; out-of-bounds elements read as zeros) ->
// shared memory, counted in bytes (the whole box) on the mbarrier, whose expected count the caller raised first.
__device__ __forceinline__ void tma_load_2d(unsigned dst, const TensorMap& map, int col, int row, unsigned mbar) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], "
        "[%4];\n" ::"r"(dst),
        "l"(reinterpret_cast<unsigned long long>(&map)), "r"(col), "r"(row), "r"(mbar)
        : "memory");
}
// An arrival on the mbarrier that first raises its expected byte count by `bytes`.
__device__ __forceinline__ void mbar_arrive_expect_tx(unsigned addr, unsigned bytes) {
    asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.expect_tx.release.cta.shared::cta.b64 st, [%0], %1;\n}\n" ::"r"(
                     addr),
                 "r"(bytes)
                 : "memory");
}
// acc += tmp once wgmma_wait has retired the wgmmas that wrote tmp (tf32x3's step accumulator, added in fp32): the
// empty asm keeps the compiler from reading tmp before the wait.
template <int N> __device__ __forceinline__ void add_retired(float (&acc)[N], float (&tmp)[N]) {
#pragma unroll
    for (int i = 0; i < N; ++i) {
        asm volatile("" : "+f"(tmp[i])::"memory");
        acc[i] += tmp[i];
    }
}
template <int N> __device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
#endif

}  // namespace ptx
