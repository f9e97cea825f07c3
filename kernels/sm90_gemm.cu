// The GEMM core for Hopper (sm_90a): c = a . b^T tile by tile on wgmma, with an epilogue that consumes c in registers.
//
// sm90::gemm<Op, BN, STAGES, Epi>: Op an operand type (sm90_operand.cuh: BF16, F16), BN the tile's b rows (8 to
// 256), STAGES the ring's depth, Epi an epilogue (sm90_epilogues.cuh). a and b come as TMA tensor maps (128-byte
// swizzled boxes of 128 bytes x 128 or BN rows, zeros outside the arrays); the rest as one parameter block (Args).
//
// A persistent grid of at most one block per SM walks its units of the schedule (sm90_scheduler.cuh). 384 threads:
// warpgroup 0 is the producer (one thread issues the TMA loads of every unit's k tiles into the ring, running ahead
// of the consumers across units, so the next unit's loads overlap this unit's epilogue; it gives its registers to
// the consumers), warpgroups 1 and 2 the consumers (sm90_mainloop.cuh), which then run the epilogue. Blocks hand
// over the parts of cut tiles and partial sums by counting arrivals (last_arrival.cuh): nobody waits, sums keep a
// fixed order.
// Compiled to a trap on targets without wgmma.
#include "common.cuh"
#include "ptx.cuh"
#include "sm90_epilogues.cuh"
#include "sm90_mainloop.cuh"
#include "sm90_operand.cuh"
#include "sm90_pipeline.cuh"
#include "sm90_scheduler.cuh"

namespace sm90 {

template <class Op, int BN, int STAGES, class Epi>
__global__ void __launch_bounds__(384, 1)
gemm(const __grid_constant__ ptx::TensorMap a_map, const __grid_constant__ ptx::TensorMap b_map, const Args args) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    using R = Ring<STAGES, stage_bytes<Op, BN>(), CONSUMERS>;
    static_assert(BN % 8 == 0 && BN >= 8 && BN <= 256, "BN: wgmma's N and one TMA box");
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    __shared__ typename Epi::Shared shared;
    const R ring(smem_raw);
    const Schedule<BM, BN, Epi::SWAPPED> sched(args.num_out, args.num_red, args.group, args.k_tiles, args.dp_tiles);
    if (threadIdx.x == 0) {
        unsigned dynamic_bytes;
        asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(dynamic_bytes));
        if (dynamic_bytes < R::BYTES + 1024) __trap();  // launched with less than the ring needs
        ring.init();
    }
    __syncthreads();
    const int wg = threadIdx.x / 128;
    typename R::Pos pos;  // this thread's place in the ring
    if (wg == 0) {
        ptx::setmaxnreg_dec<40>();
        if (threadIdx.x == 0)
            for (int i = 0; i < sched.units(); ++i) produce<Op, BN>(ring, a_map, b_map, sched.unit(i), pos);
        return;
    }
    ptx::setmaxnreg_inc<232>();  // 128 x 40 + 256 x 232 = 384 x 168
    const int ct = threadIdx.x - 128;
    Epi epi;
    float acc[BN / 2];
    for (int i = 0; i < sched.units(); ++i) {
        const Unit unit = sched.unit(i);
        epi.template prepare<typename Op::Elem>(args, unit, shared, ct, i);
        consume<Op, BN>(ring, unit, pos, ct >> 7, acc);
        epi.template finish<typename Op::Elem>(acc, args, unit, sched.cut(unit), shared, ct, i);
    }
#else
    __trap();
#endif
}

}  // namespace sm90
