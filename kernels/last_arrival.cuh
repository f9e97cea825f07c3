// Hand-over between the blocks of one launch by counting arrivals: the last of a group's blocks to arrive finishes
// the group's work, and nobody waits. The GEMM core (sm90_gemm.cu) uses it for cut tiles and for the sums of a result
// index whose tiles ran in different blocks: in a persistent grid a block must not wait on another block's unit,
// which may belong to a block that is itself waiting, or not yet resident.
//
// A group's counter is a 32-bit word in the call's workspace, which the host zeroes before each launch (one memset
// of the counters' bytes, captured with the launch in a CUDA graph): an arrival is one atomic add, with no retry loop
// when many blocks arrive at once. The participants' parts are ordered before the arrival by a barrier and the
// add's release (cumulative: it covers what the barrier made the arriving thread observe), and the last arriver's
// acquire and a barrier order them before its reads, as CUTLASS's split-K semaphore does; a fence in every thread
// (membar.gl) cost microseconds a unit. Sums over the parts run in a fixed order whoever arrives last:
// bit-identical results.
#pragma once

namespace cf {

// The participating threads (index t, synchronised by `sync`) have written their part of a group of `size`; one of
// them arrives for all. Returns, to every participant, whether this was the group's last arrival. `verdict`: a
// shared int the participants can all read.
template <class Sync>
__device__ __forceinline__ bool arrive_last(unsigned* counter, unsigned size, int t, Sync sync, volatile int* verdict) {
    sync();
    if (t == 0) {
        unsigned before;
        asm volatile("atom.add.acq_rel.gpu.global.u32 %0, [%1], 1;\n" : "=r"(before) : "l"(counter) : "memory");
        *verdict = before + 1u == size;
    }
    sync();
    return *verdict != 0;
}

}  // namespace cf
