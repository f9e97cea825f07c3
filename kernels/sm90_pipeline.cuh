// The shared-memory ring between the TMA producer and the consumer warpgroups of the GEMM core (sm90_gemm.cu).
//
// STAGES stages of STAGE_BYTES, 1 KiB aligned (the 128-byte swizzle repeats every 1 KiB), then two mbarriers a stage:
// full[s] completes when the stage's TMA bytes have landed (one arrival that also sets the expected byte count),
// empty[s] when every consumer thread has released it (CONSUMERS arrivals). Producer and consumers walk the same
// sequence of k tiles across a block's units, each with a Slot: the stage and the parity of its round, advanced
// with 32-bit adds (a 64-bit k-tile counter divided by STAGES cost about a thousand cycles a k tile). A fresh
// barrier counts as having completed the round before its first, so the producer's first pass does not wait.
#pragma once
#include "ptx.cuh"

namespace sm90 {

template <int STAGES> struct Slot {
    int stage = 0;
    unsigned phase = 0;  // parity of the round

    __device__ __forceinline__ void next() {
        if (++stage == STAGES) {
            stage = 0;
            phase ^= 1u;
        }
    }
};

template <int STAGES, int STAGE_BYTES, int CONSUMERS> struct Ring {
    static_assert(STAGE_BYTES % 1024 == 0, "stages of whole 1 KiB swizzle atoms");
    static constexpr int BYTES = STAGES * STAGE_BYTES + 16 * STAGES;  // the launcher adds 1 KiB to align
    using Pos = Slot<STAGES>;

    unsigned base;  // shared address of stage 0 (1 KiB aligned)

    __device__ __forceinline__ explicit Ring(unsigned char* smem_raw)
        : base((ptx::smem_u32(smem_raw) + 1023u) & ~1023u) {}

    __device__ __forceinline__ unsigned stage(const Pos& p) const { return base + p.stage * STAGE_BYTES; }
    __device__ __forceinline__ unsigned full(int s) const { return base + STAGES * STAGE_BYTES + 8 * s; }
    __device__ __forceinline__ unsigned empty(int s) const { return full(s) + 8 * STAGES; }

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    // One thread, before the block's first __syncthreads.
    __device__ __forceinline__ void init() const {
        for (int s = 0; s < STAGES; ++s) {
            ptx::mbar_init(full(s), 1);
            ptx::mbar_init(empty(s), CONSUMERS);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    // Producer: wait until the stage is free, then expect its bytes on full.
    __device__ __forceinline__ void acquire(const Pos& p) const {
        ptx::mbar_wait(empty(p.stage), p.phase ^ 1u);
        ptx::mbar_arrive_expect_tx(full(p.stage), STAGE_BYTES);
    }
    __device__ __forceinline__ void wait_full(const Pos& p) const { ptx::mbar_wait(full(p.stage), p.phase); }
    __device__ __forceinline__ void release(const Pos& p) const { ptx::mbar_arrive(empty(p.stage)); }
#endif
};

}  // namespace sm90
