// Hand-over between the blocks of one launch, without memory that must be zeroed first.
//
// Every launch gets a 64-bit `epoch` from the host, unique to the call. A block that produced results for another
// block writes them, fences, and then publishes `epoch` into its own flag; the block that consumes them spins until
// each flag it needs holds `epoch`. The flags live in the call's workspace (the caller's allocator: whatever was
// there before equals a fresh epoch only by a 2^-64 coincidence), and the consumer writes them back to 0 once it is
// done, so that a CUDA graph replaying the launch with the same epoch and the same workspace starts clean.
//
// Consumers wait only on blocks with smaller indices, which the hardware dispatches first: a waiting block holds
// one slot while every block it waits on already runs or has a free slot to run in, so the grid cannot deadlock.
// This keeps a fixed summation order (bit-identical results) with one launch instead of a kernel per stage.
//
// The participating threads synchronise with `Sync`: the whole block (BlockSync), or a named barrier over the
// threads still running in a warp-specialised kernel whose producer warps have exited (NamedSync).
#pragma once

namespace cf {

struct BlockSync {
    __device__ __forceinline__ void operator()() const { __syncthreads(); }
};
template <int ID, int COUNT> struct NamedSync {
    __device__ __forceinline__ void operator()() const { asm volatile("bar.sync %0, %1;\n" ::"n"(ID), "n"(COUNT) : "memory"); }
};

// Called by every participating thread after its own global writes: fence, barrier, then one release by `leader`.
template <class Sync>
__device__ __forceinline__ void publish(unsigned long long* flag, unsigned long long epoch, Sync sync, bool leader) {
    __threadfence();
    sync();
    if (leader) asm volatile("st.release.gpu.global.u64 [%0], %1;\n" ::"l"(flag), "l"(epoch) : "memory");
}

// One thread's spin on one flag (acquire).
__device__ __forceinline__ void wait_flag(const unsigned long long* flag, unsigned long long epoch) {
    unsigned long long v;
    for (;;) {
        asm volatile("ld.acquire.gpu.global.u64 %0, [%1];\n" : "=l"(v) : "l"(flag) : "memory");
        if (v == epoch) break;
        __nanosleep(32);
    }
}

// The participating threads (index t of nt) wait until flags first[0], first[stride], ... (count of them) hold
// epoch, then synchronise: afterwards every one of them sees what the publishers wrote.
template <class Sync>
__device__ __forceinline__ void wait_flags(const unsigned long long* first, long long count, long long stride,
                                           unsigned long long epoch, int t, int nt, Sync sync) {
    for (long long i = t; i < count; i += nt) wait_flag(first + i * stride, epoch);
    sync();
}

// The participating threads clear flags first[0], first[stride], ... (after their waits: nothing reads them again).
__device__ __forceinline__ void clear_flags(unsigned long long* first, long long count, long long stride, int t,
                                            int nt) {
    for (long long i = t; i < count; i += nt) first[i * stride] = 0ull;
}

}  // namespace cf
