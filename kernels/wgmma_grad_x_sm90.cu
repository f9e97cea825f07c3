// Hopper tensor cores for grad_x = gz . W at small batches (sm_90a), in tf32x3.
//
// sbx::wgmma_grad_x<BP>: c (B x K, row stride ldc) = gz (B x N) . W (N x K) (+ c when accumulate), B <= BP (64 or
// 128). W's rows run along the reduction here, and tf32 wgmma reads only K-major operands from shared memory; so the
// roles swap as in the forward's small-batch kernel: c.T = W.T . gz.T, W.T is wgmma's A, taken from registers, and
// gz its B (K-major as it is: gz's rows run along N). A block owns 128 columns of c (64 per consumer warpgroup) and
// all of the batch over one split of N, so W is read from HBM once (X3Gemm reading W as it is transposes each tile
// through shared memory in its producer: 3.5 ms at 128 x 32768^2, against 2.3 for the forward's same products).
//
// 384 threads: one producer warpgroup (one thread issues the TMA boxes) + two consumer warpgroups, a STAGES-deep ring
// of 64-row tiles of N (barriers full: 1 arrival + the boxes' bytes, empty: 256 consumer arrivals). gz arrives split
// into TF32 hi / lo (sbw::split_x's 2B-row copy: rows 0..B-1 hi, B..2B-1 lo; batch columns past B then hold
// garbage that no stored column reads), W as it is; every box is 32 floats wide, 128-byte swizzled (wgmma's layout
// for gz). Consumers, per half tile (32 values of N): each thread reads its A fragments from W's box with two 8-byte
// loads per k step of 8 (its rows t and t + 4 of the step, two adjacent columns), splits them in registers, and
// issues the half's wgmmas (lo*hi, hi*lo, hi*hi into a per-half accumulator that starts from zero, added to the
// running sums in fp32, as in every tf32x3 kernel here; one per 64 values doubled the error); the second half's
// fragments are read while the first half's wgmmas run. The A rows a thread holds (wgmma rows g and g + 8 of its
// warp's 16) are W's columns 2g and 2g + 1: the epilogue stores them as pairs. The loads of lanes t = 2, 3 take row
// t + 4 first, so that each load's 32 lanes hit both halves of the swizzled row (two wavefronts, not four).
// Split-K over N and the store (+ c) as in fused_wgmma_sm90.cu's wgmma_gemm (epilogue.cuh: split_exchange).
// Compiled to a trap on targets without wgmma.
#include "common.cuh"
#include "epilogue.cuh"
#include "ptx.cuh"

namespace sbx {

constexpr int BK = 64, BM = 128, RING_BYTES = 192 * 1024;

template <int BP> __host__ __device__ constexpr int stage_bytes() { return 2 * BP * BK * 4 + BK * BM * 4; }
template <int BP> __host__ __device__ constexpr int stages() { return RING_BYTES / stage_bytes<BP>(); }

template <int BP>
__global__ void __launch_bounds__(384, 1)
wgmma_grad_x(const __grid_constant__ ptx::TensorMap gz_map, const __grid_constant__ ptx::TensorMap w_map,
             unsigned char* __restrict__ workspace, float* __restrict__ c, long long ldc, int B, int N, int K,
             int splits, long long n_split, int accumulate, unsigned long long epoch) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    using namespace ptx;
    static_assert(BP == 64 || BP == 128, "BP");
    constexpr int STAGES = stages<BP>(), STAGE_BYTES = stage_bytes<BP>(), NACC = BP / 2;
    constexpr int GSUB = BP * 128, GBYTES = 2 * GSUB, W_OFF = 2 * GBYTES, WSUB = BK * 128;  // bytes of boxes
    static_assert(STAGE_BYTES % 1024 == 0 && STAGES >= 2, "stages");
    constexpr bool MOVE_REGS = BP == 128;  // 2 x 64 accumulators per consumer thread
    extern __shared__ __align__(128) unsigned char smem_raw[];

    // tiles of 128 columns of c (tile_of's rows), one tile of batch columns, S splits of N (adjacent blocks)
    const epi::Tile tile = epi::tile_of(K, BP, BM, BP, splits, 1);
    const epi::Workspace<float> ws = epi::workspace_of<float>(workspace, tile, K, splits);
    const int m0 = tile.tm * BM;
    const long long nb = (long long)tile.s * n_split;
    const int nt0 = (int)(nb / BK);
    const int NT = (int)min((long long)(N + BK - 1) / BK, (nb + n_split) / BK) - nt0;

    const unsigned raw_addr = smem_u32(smem_raw);
    const unsigned base_addr = (raw_addr + 1023u) & ~1023u;  // the launcher adds 1 KiB (+ 256 B of barriers)
    const unsigned bar_addr = base_addr + STAGES * STAGE_BYTES;  // full[s] at +8s, empty[s] at +8(STAGES + s)
    const int tid = threadIdx.x, warp = tid >> 5, wg = warp >> 2, lane = tid & 31;

    if (tid == 0) {
#pragma unroll
        for (int s = 0; s < STAGES; ++s) {
            mbar_init(bar_addr + 8 * s, 1);
            mbar_init(bar_addr + 8 * (STAGES + s), 256);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    if (wg == 0) {
        // ---------------- producer ----------------
        if constexpr (MOVE_REGS) setmaxnreg_dec<24>();
        if (warp == 0 && lane == 0) {
            for (int it = 0; it < NT; ++it) {
                const int s = it % STAGES, n0 = (nt0 + it) * BK;
                if (it >= STAGES) mbar_wait(bar_addr + 8 * (STAGES + s), ((it / STAGES) + 1) & 1);
                const unsigned stage = base_addr + s * STAGE_BYTES, full = bar_addr + 8 * s;
                mbar_arrive_expect_tx(full, STAGE_BYTES);
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    tma_load_2d(stage + h * GSUB, gz_map, n0 + 32 * h, 0, full);           // hi rows
                    tma_load_2d(stage + GBYTES + h * GSUB, gz_map, n0 + 32 * h, B, full);  // lo rows
                }
#pragma unroll
                for (int q = 0; q < 4; ++q) tma_load_2d(stage + W_OFF + q * WSUB, w_map, m0 + 32 * q, n0, full);
            }
        }
        return;
    }

    // ---------------- consumers ----------------
    if constexpr (MOVE_REGS) setmaxnreg_inc<240>();  // 384 x 168 = 128 x 24 + 256 x 240
    const int cwg = wg - 1, wq = warp & 3, g = lane >> 2, t = lane & 3;
    // The warp's 16 columns of W lie in box 2 cwg + wq / 2; this thread's two in 16-byte chunk q of a row, at byte
    // 8 (g & 1). Row r of a box holds chunk q at r * 128 + ((q ^ (r & 7)) << 4); rows 32 h + 8 j + r have r & 7 = r.
    const int q = 4 * (wq & 1) + (g >> 1), r1 = t < 2 ? t : t + 4, r2 = r1 ^ 4;  // r1: the row loaded first
    const unsigned w_box = W_OFF + (2 * cwg + (wq >> 1)) * WSUB + (g & 1) * 8;
    const unsigned off1 = w_box + r1 * 128 + ((q ^ r1) << 4), off2 = w_box + r2 * 128 + ((q ^ r2) << 4);
    float acc[NACC];
#pragma unroll
    for (int i = 0; i < NACC; ++i) acc[i] = 0.0f;
    for (int kt = 0; kt < NT; ++kt) {
        const int s = kt % STAGES;
        mbar_wait(bar_addr + 8 * s, (kt / STAGES) & 1);
        const unsigned stage = base_addr + s * STAGE_BYTES;
        unsigned hi[2][4][4], lo[2][4][4];
        float tmp[NACC];
        // A fragment (rows g, g + 8; k columns t, t + 4 of each step of 8) = W rows t, t + 4, columns 2g, 2g + 1
        auto fragments = [&](int h) {
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const unsigned row = stage + (32 * h + 8 * j) * 128;
                const float2 v1 = lds_f2(row + off1), v2 = lds_f2(row + off2);
                const float2 rt = t < 2 ? v1 : v2, rt4 = t < 2 ? v2 : v1;
                const float f[4] = {rt.x, rt.y, rt4.x, rt4.y};
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    hi[h][j][e] = to_tf32(f[e]);
                    lo[h][j][e] = to_tf32(f[e] - __uint_as_float(hi[h][j][e]));
                }
            }
        };
        fragments(0);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const unsigned gh = stage + h * GSUB, gl = gh + GBYTES;
            wgmma_fence();
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                wgmma_tf32_rs<BP>::run(tmp, lo[h][j], gmma_desc_sw128(gh + j * 32), j == 0 ? 0 : 1);
                wgmma_tf32_rs<BP>::run(tmp, hi[h][j], gmma_desc_sw128(gl + j * 32));
                wgmma_tf32_rs<BP>::run(tmp, hi[h][j], gmma_desc_sw128(gh + j * 32));
            }
            wgmma_commit();
            if (h == 0) fragments(1);  // while the first half's wgmmas run
            wgmma_wait<0>();
            add_retired(acc, tmp);
        }
        mbar_arrive(bar_addr + 8 * (STAGES + s));
    }
#pragma unroll
    for (int i = 0; i < NACC; ++i) asm volatile("" : "+f"(acc[i])::"memory");

    const cf::NamedSync<1, 256> sync;
    if (!epi::split_exchange<float, NACC>(acc, ws, tile, splits, tid - 128, 256, epoch, sync)) return;

    // acc[4j + 2h + q]: column col + h of c, batch row 8j + 2t + q; stored as pairs where c's rows allow it
    const int col = m0 + 64 * cwg + 16 * wq + 2 * g;
    const bool pair = col + 1 < K && ldc % 2 == 0 && (reinterpret_cast<unsigned long long>(c) & 7) == 0;
#pragma unroll
    for (int j = 0; j < BP / 8; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            const int b = 8 * j + 2 * t + e;
            if (b < B && col < K)
                epi::store_pair(c + (long long)b * ldc + col, acc[4 * j + e], acc[4 * j + 2 + e], pair, col + 1 < K,
                                accumulate);
        }
#else
    __trap();
#endif
}

}  // namespace sbx
