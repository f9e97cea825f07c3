// The GEMM core's main loop (sm90_gemm.cu): a TMA producer thread and two consumer warpgroups over the ring.
//
// A unit's tile is BM = 128 rows of a by BN rows of b. Per k tile, one shared-memory stage holds a's 128 rows and
// b's BN rows of BK values (128 bytes each, 128-byte swizzled: the TMA box and wgmma's K-major layout), loaded as two
// boxes that complete on the stage's full barrier. Consumer warpgroup c multiplies a's rows 64c..64c+63 by all of b
// with wgmma_ss<Kind, BN> (both operands from shared memory), keeps one k tile of wgmmas in flight and releases a
// stage once the wgmmas that read it have retired. Its accumulators, per thread (warp w of the warpgroup, lane
// 4g + t): acc[4j + 2h + q] = c[m0 + 64c + 16w + 8h + g][n0 + 8j + 2t + q].
#pragma once
#include "ptx.cuh"
#include "sm90_pipeline.cuh"
#include "sm90_scheduler.cuh"

namespace sm90 {

constexpr int BM = 128;  // rows of a per tile: two consumer warpgroups of 64

template <class Op, int BN> __host__ __device__ constexpr int stage_bytes() { return (BM + BN) * 128; }

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// The producer's loads for one unit; `pos` walks the ring across the block's units.
template <class Op, int BN, class R>
__device__ __forceinline__ void produce(const R& ring, const ptx::TensorMap& a_map, const ptx::TensorMap& b_map,
                                       const Unit& u, typename R::Pos& pos) {
    for (int kt = 0; kt < u.kt; ++kt, pos.next()) {
        ring.acquire(pos);
        const unsigned stage = ring.stage(pos), full = ring.full(pos.stage);
        const int k0 = (u.kt0 + kt) * Op::BK;
        ptx::tma_load_2d(stage, a_map, k0, u.m0, full);
        ptx::tma_load_2d(stage + BM * 128, b_map, k0, u.n0, full);
    }
}

// One consumer warpgroup's (cwg) product for a unit into acc (BN / 2 values a thread).
template <class Op, int BN, class R>
__device__ __forceinline__ void consume(const R& ring, const Unit& u, typename R::Pos& pos, int cwg,
                                        float (&acc)[BN / 2]) {
    using Wgmma = ptx::wgmma_ss<typename Op::Kind, BN>;
    constexpr int STEPS = Op::BK / Wgmma::K, STEP_BYTES = Wgmma::K * (int)sizeof(typename Op::Elem);
    typename R::Pos previous = pos;
    for (int kt = 0; kt < u.kt; ++kt) {
        ring.wait_full(pos);
        const unsigned a = ring.stage(pos) + cwg * 64 * 128, b = ring.stage(pos) + BM * 128;
        ptx::wgmma_fence();
#pragma unroll
        for (int k = 0; k < STEPS; ++k)
            Wgmma::run(acc, ptx::gmma_desc_sw128(a + k * STEP_BYTES), ptx::gmma_desc_sw128(b + k * STEP_BYTES),
                       kt + k > 0);
        ptx::wgmma_commit();
        ptx::wgmma_wait<1>();
        if (kt > 0) ring.release(previous);
        previous = pos;
        pos.next();
    }
    ptx::wgmma_wait<0>();
    ring.release(previous);
#pragma unroll
    for (int i = 0; i < BN / 2; ++i) asm volatile("" : "+f"(acc[i])::"memory");
}
#endif

}  // namespace sm90
