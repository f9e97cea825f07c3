// Hopper tensor cores for small batches (sm_90a): out[b] = sum_n sigmoid(x[b] . W[n] + bias[n]) for B <= 128.
//
// sbw::wgmma_small_batch<X3, BP, STAGES, PRESPLIT, SAVE>: the operands swap roles. W's rows are wgmma's M (A,
// from registers) and the batch is its N (x, BP = 8, 16, 32, 64 or 128 columns, from shared memory), so the tensor
// cores do no work on padding rows of a 64- or 128-row x tile, and W goes through shared memory as it is. A
// block owns 128 rows of W and all of the batch, over one split of K (split-K and the hand-over of row sums as in
// every tile kernel: epilogue.cuh).
//
// 384 threads: one producer warpgroup + two consumer warpgroups (64 rows of W each), a STAGES-deep ring of 64-wide
// k tiles. Both operands arrive by TMA (tensor maps encoded on the host, 32-float boxes with the 128-byte swizzle,
// zeros outside the arrays): one thread issues four boxes per k tile however many rows they hold. Per-row copies
// (256-byte bulk copies or 16-byte cp.async) issued by 128 threads held small grids at ~1.6 TB/s, and x loaded by
// the threads that split it put x's L2 latency into every k tile (probe_sbw_limits run 1). Barriers per stage:
// xfull (x's boxes landed), full (W's boxes landed and x split: 1 + 96 arrivals), empty (256 consumer arrivals).
//   producer warp 0, one thread: per k tile wait empty, then x's two boxes (into the lo tiles for X3, the hi tiles
//             for TF32) and W's two boxes.
//   producer warps 1-3: per k tile wait xfull, then round x in place (TF32) or split it into hi / lo (X3: hi into
//             the hi tiles, lo over the raw values it read), fence for the async proxy, arrive on full.
//   PRESPLIT (X3): x comes split by split_x (below) as one 2B-row array; the thread issues x's hi boxes (row 0) and
//             lo boxes (row B) with W's on full (1 arrival, six boxes), xfull is unused and warps 1-3 have no work.
//             Batch columns past B then hold lo values in hi and zeros in lo: garbage that no valid column reads.
//   consumers: wait full; per half tile (32 values of k) ldmatrix the warp's 16 rows of W into wgmma's A fragment,
//             round or split it in registers and issue the half's wgmmas (the second half's fragments are made
//             while the first half's wgmmas run); then one wait per stage (X3: lo*hi, hi*lo, hi*hi into a per-k-tile
//             accumulator that starts from zero and is added to the running sums in fp32, as in
//             fused_wgmma_sm90.cu) and release the stage. X3 at BP = 128 moves registers from the producer warpgroup
//             to the consumers (setmaxnreg: 2 x 64 accumulators per thread).
// Shared memory per stage (1 KiB aligned): x hi [2 boxes of BP rows x 128 B], x lo (X3), W [2 boxes of 128 rows x
// 128 B]; every box in the 128-byte swizzled layout, which is wgmma's for x and conflict-free for ldmatrix on W.
// Compiled to a trap on targets without wgmma.
#include "common.cuh"
#include "epilogue.cuh"
#include "ptx.cuh"

namespace sbw {

constexpr int BK = 64, BW = 128;

template <bool X3, int BP> __host__ __device__ constexpr int stage_bytes() { return (X3 ? 2 : 1) * BP * 256 + BW * 256; }

template <bool X3, int BP, int STAGES, bool PRESPLIT, bool SAVE>
__global__ void __launch_bounds__(384, 1)
wgmma_small_batch(const __grid_constant__ ptx::TensorMap x_map, const __grid_constant__ ptx::TensorMap w_map,
                  const float* __restrict__ bias, unsigned char* __restrict__ workspace, float* __restrict__ out,
                  float* __restrict__ saved, int B, int N, int K, int splits, long long k_split, int group_m,
                  unsigned long long epoch) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    using namespace ptx;
    static_assert(BP == 8 || BP == 16 || BP == 32 || BP == 64 || BP == 128, "BP");
    // X3 at BP = 128 holds 2 x 64 accumulators per consumer thread: the producers give registers to the consumers
    constexpr bool MOVE_REGS = X3 && BP == 128;
    static_assert(X3 || !PRESPLIT, "only X3 splits x");
    constexpr int XSUB = BP * 128, XBYTES = 2 * XSUB;  // one 32-wide k box of x; both
    constexpr int W_OFF = (X3 ? 2 : 1) * XBYTES, WSUB = BW * 128, STAGE_BYTES = stage_bytes<X3, BP>();
    static_assert(STAGE_BYTES % 1024 == 0, "1 KiB aligned stages (the 128-byte swizzle)");
    constexpr int NACC = BP / 2;
    extern __shared__ __align__(128) unsigned char smem_raw[];
    __shared__ float red[8][BP];

    const epi::Tile tile = epi::tile_of(B, N, BP, BW, splits, group_m);
    const epi::Workspace<float> ws = epi::workspace_of<float>(workspace, tile, B, splits);
    const int n0 = tile.tn * BW;
    const long long kb = (long long)tile.s * k_split;
    const int kt0 = (int)(kb / BK);
    const int KT = (int)min((long long)(K + BK - 1) / BK, (kb + k_split) / BK) - kt0;

    const unsigned raw_addr = smem_u32(smem_raw);
    const unsigned base_addr = (raw_addr + 1023u) & ~1023u;  // the launcher adds 1 KiB (+ 256 B of barriers)
    unsigned char* smem = smem_raw + (base_addr - raw_addr);
    // full[s] at +8s, empty[s] at +8(STAGES + s), xfull[s] at +8(2 STAGES + s)
    const unsigned bar_addr = base_addr + STAGES * STAGE_BYTES;
    const int tid = threadIdx.x, warp = tid >> 5, wg = warp >> 2, lane = tid & 31;

    if (tid == 0) {
#pragma unroll
        for (int s = 0; s < STAGES; ++s) {
            mbar_init(bar_addr + 8 * s, PRESPLIT ? 1 : 1 + 96);
            mbar_init(bar_addr + 8 * (STAGES + s), 256);
            mbar_init(bar_addr + 8 * (2 * STAGES + s), 1);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    if (wg == 0) {
        // ---------------- producer warpgroup ----------------
        if constexpr (MOVE_REGS) setmaxnreg_dec<24>();
        if (warp == 0) {
            if (lane == 0) {
                for (int it = 0; it < KT; ++it) {
                    const int s = it % STAGES, k0 = (kt0 + it) * BK;
                    if (it >= STAGES) mbar_wait(bar_addr + 8 * (STAGES + s), ((it / STAGES) + 1) & 1);
                    const unsigned stage = base_addr + s * STAGE_BYTES, xfull = bar_addr + 8 * (2 * STAGES + s);
                    const unsigned xdst = stage + (X3 ? XBYTES : 0), full = bar_addr + 8 * s;
                    if constexpr (PRESPLIT) {  // x's hi rows 0..B-1 and lo rows B..2B-1 of the split copy
                        mbar_arrive_expect_tx(full, 2 * XBYTES + 2 * WSUB);
                        tma_load_2d(stage, x_map, k0, 0, full);
                        tma_load_2d(stage + XSUB, x_map, k0 + 32, 0, full);
                        tma_load_2d(xdst, x_map, k0, B, full);
                        tma_load_2d(xdst + XSUB, x_map, k0 + 32, B, full);
                    } else {
                        mbar_arrive_expect_tx(xfull, XBYTES);
                        tma_load_2d(xdst, x_map, k0, 0, xfull);
                        tma_load_2d(xdst + XSUB, x_map, k0 + 32, 0, xfull);
                        mbar_arrive_expect_tx(full, 2 * WSUB);
                    }
                    tma_load_2d(stage + W_OFF, w_map, k0, n0, full);
                    tma_load_2d(stage + W_OFF + WSUB, w_map, k0 + 32, n0, full);
                }
            }
            return;
        }
        if constexpr (PRESPLIT) return;
        const int st = tid - 32;  // warps 1-3: x's 16-byte chunks st, st + 96, ... of the stage's 2 BP rows
        for (int it = 0; it < KT; ++it) {
            const int s = it % STAGES;
            mbar_wait(bar_addr + 8 * (2 * STAGES + s), (it / STAGES) & 1);
            unsigned char* raw = smem + s * STAGE_BYTES + (X3 ? XBYTES : 0);
            for (int i = st; i < 2 * BP * 8; i += 96) {
                uint4* p = reinterpret_cast<uint4*>(raw + 16 * i);
                const uint4 v = *p, h = hi_of(v);
                if constexpr (X3) {
                    *reinterpret_cast<uint4*>(raw - XBYTES + 16 * i) = h;
                    *p = lo_of(v, h);
                } else {
                    *p = h;
                }
            }
            fence_proxy_async();  // this thread's x stores -> visible to the async proxy (wgmma)
            mbar_arrive(bar_addr + 8 * s);
        }
        return;
    }

    // ---------------- consumer warpgroups ----------------
    if constexpr (MOVE_REGS) setmaxnreg_inc<240>();  // 384 x 168 = 128 x 24 + 256 x 240
    const int cwg = wg - 1, wq = warp & 3, g = lane >> 2, t = lane & 3, ct = tid - 128;
    // ldmatrix rows: lanes 0-15 rows 0-15 of the warp's 16 (k 0-3 of each k8 step), lanes 16-31 the same rows, k 4-7;
    // 16-byte chunk c of row r of a box sits at r * 128 + (c ^ (r & 7)) * 16.
    const int lm_row = 64 * cwg + 16 * wq + (lane & 15);
    const unsigned lm_off = W_OFF + lm_row * 128;
    float acc[NACC];
#pragma unroll
    for (int i = 0; i < NACC; ++i) acc[i] = 0.0f;
    for (int kt = 0; kt < KT; ++kt) {
        const int s = kt % STAGES;
        mbar_wait(bar_addr + 8 * s, (kt / STAGES) & 1);
        const unsigned stage = base_addr + s * STAGE_BYTES;
        // Both halves' fragments live in their own registers: the second half is read and split while the first
        // half's wgmmas run, and the stage costs one wait (X3: one per-k-tile accumulator, as fused_wgmma_sm90.cu).
        unsigned hi[2][4][4], lo[2][4][4];
        float tmp[X3 ? NACC : 1];
#pragma unroll
        for (int half = 0; half < 2; ++half) {
#pragma unroll
            for (int k8 = 0; k8 < 4; ++k8) {
                unsigned r[4];
                ldmatrix_x4(r, stage + lm_off + half * WSUB + (((2 * k8 + (lane >> 4)) ^ (lm_row & 7)) * 16));
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    hi[half][k8][j] = to_tf32(__uint_as_float(r[j]));
                    if constexpr (X3)
                        lo[half][k8][j] = to_tf32(__uint_as_float(r[j]) - __uint_as_float(hi[half][k8][j]));
                }
            }
            const unsigned xh = stage + half * XSUB, xl = xh + XBYTES;
            wgmma_fence();
#pragma unroll
            for (int k8 = 0; k8 < 4; ++k8) {
                if constexpr (X3) {
                    wgmma_tf32_rs<BP>::run(tmp, lo[half][k8], gmma_desc_sw128(xh + k8 * 32), half + k8 == 0 ? 0 : 1);
                    wgmma_tf32_rs<BP>::run(tmp, hi[half][k8], gmma_desc_sw128(xl + k8 * 32));
                    wgmma_tf32_rs<BP>::run(tmp, hi[half][k8], gmma_desc_sw128(xh + k8 * 32));
                } else {
                    wgmma_tf32_rs<BP>::run(acc, hi[half][k8], gmma_desc_sw128(xh + k8 * 32));
                }
            }
        }
        wgmma_commit();
        wgmma_wait<0>();
        if constexpr (X3) add_retired(acc, tmp);
        mbar_arrive(bar_addr + 8 * (STAGES + s));
    }
#pragma unroll
    for (int i = 0; i < NACC; ++i) asm volatile("" : "+f"(acc[i])::"memory");

    const cf::NamedSync<1, 256> sync;
    if (!epi::split_exchange<float, NACC>(acc, ws, tile, splits, ct, 256, epoch, sync)) return;

    // acc[4j + 2h + q] is row n0 + 64 cwg + 16 wq + g + 8h of W, batch column 8j + 2t + q. Each thread sums its
    // two rows, a shuffle tree over g the warp's 16, red[4 cwg + wq][b] holds them, and a fixed-order sum the tile's.
    int n[2];
    float bv[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        n[h] = n0 + 64 * cwg + 16 * wq + g + 8 * h;
        bv[h] = bias != nullptr && n[h] < N ? bias[n[h]] : 0.0f;
    }
#pragma unroll
    for (int j = 0; j < BP / 8; ++j)
#pragma unroll
        for (int q = 0; q < 2; ++q) {
            const int b = 8 * j + 2 * t + q;
            float s = 0.0f;
#pragma unroll
            for (int h = 0; h < 2; ++h)
                if (n[h] < N) {
                    const float z = acc[4 * j + 2 * h + q] + bv[h];
                    s += cf::sigmoid(z);
                    if (SAVE && b < B) saved[(long long)b * N + n[h]] = cf::dsigmoid(z);
                }
            s += __shfl_xor_sync(0xffffffffu, s, 4);
            s += __shfl_xor_sync(0xffffffffu, s, 8);
            s += __shfl_xor_sync(0xffffffffu, s, 16);
            if (g == 0) red[4 * cwg + wq][b] = s;
        }
    sync();
    epi::finish_rows<float, float>(
        tile, ws, 0, BP, B, splits, out,
        [&](int r) {
            float v = 0.0f;
#pragma unroll
            for (int i = 0; i < 8; ++i) v += red[i][r];
            return v;
        },
        ct, 256, epoch, sync);
#else
    __trap();
#endif
}

// The split copy of x for PRESPLIT: rows 0..B-1 its TF32 hi parts, rows B..2B-1 the lo parts, row stride KS (K
// rounded up to 4, zeros past K; x's rows 16-byte aligned). Once per call, so that the blocks load x split instead
// of each block splitting every k tile in shared memory (X3 at BP = 128: a quarter of its shared-memory traffic).
__global__ void __launch_bounds__(256) split_x(const float* __restrict__ x, long long ldx, float* __restrict__ xs,
                                               int B, int K, int KS) {
    const int q = KS / 4;
    const long long total = (long long)B * q;
    for (long long i = blockIdx.x * 256ll + threadIdx.x; i < total; i += (long long)gridDim.x * 256) {
        const long long r = i / q;
        const int c = 4 * (int)(i - r * q);
        const float* row = x + r * ldx;
        uint4 v;
        if (c + 4 <= K) {
            v = *reinterpret_cast<const uint4*>(row + c);
        } else {
            v = make_uint4(0u, 0u, 0u, 0u);
            unsigned* e = &v.x;
            for (int j = 0; c + j < K; ++j) e[j] = __float_as_uint(row[c + j]);
        }
        const uint4 h = ptx::hi_of(v);
        *reinterpret_cast<uint4*>(xs + r * KS + c) = h;
        *reinterpret_cast<uint4*>(xs + (r + B) * KS + c) = ptx::lo_of(v, h);
    }
}

}  // namespace sbw
