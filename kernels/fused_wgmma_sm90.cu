// Hopper tensor-core tiles (sm_90a): one warp-specialised wgmma main loop, two epilogues.
//
// fused::wgmma_tile<X3, BN, STAGES, BM, SAVE>: fused out[b] = sum_n sigmoid(x[b] . W[n] + bias[n]); BM = 64 tiles
//   for small batches.
// fused::wgmma_gemm<BN, STAGES, B_KMAJOR>: c (M x N, row stride ldc) = a . b^T (+ c when accumulate) in tf32x3, the
//   fp32-accurate GEMMs of the backward (cupy_fused/backward.py). a (M x K) row-major; b (N x K) row-major
//   (B_KMAJOR) or b^T given, i.e. b stored (K x N) row-major (!B_KMAJOR: grad_x = gz . W reads W as it is).
//   16-byte aligned rows.
// fused::wgmma_sigmoid_grad<BN, STAGES>: the backward's tf32x3 recompute, gz = g * sigmoid'(x . W^T + bias),
//   written where the backward reads it (row-major, transposed, 64-row column sums) instead of z.
//
// The main loop (mainloop<X3, BN, STAGES, B_KMAJOR, BM>): 384 threads = one producer warpgroup + two consumer
// warpgroups (BM = 128: 64 rows each; BM = 64: the 64 rows, BN / 2 columns each), a STAGES-deep ring of 32-wide k
// tiles guarded by mbarriers (full[s]: 128 producer arrivals, empty[s]: 256 consumer arrivals). Loads never wait on
// the math:
//   producer: for tile j: wait empty (the consumers retired tile j - STAGES), issue the 16-byte cp.async copies
//             (L2::256B hint: rows of W are read whole), commit; then for tile j - LAG (LAG = STAGES - 2): wait for
//             its copies, round (TF32) or split (X3) them in place, fence.proxy.async, arrive on full. An N-major b
//             lands in one of LAG + 1 staging tiles instead and the same pass writes it transposed into the
//             stage's K-major tile (wgmma's tf32 operands must be K-major); each producer thread reads back only
//             what it copied, so its own cp.async wait orders everything. The producer is on the critical path
//             (H100: 20% more producer instructions per k tile made the kernel 15% slower), so its row addresses
//             are computed once per block and a copy is an add and a select.
//   consumers: wait full, issue the tile's wgmmas (both operands from shared memory, 128-byte swizzled K-major
//             tiles), commit, then release the stage: TF32 keeps one tile of wgmmas in flight (wait_group 1, the
//             previous stage is released); X3 waits for its tile (wait_group 0, see below).
// TF32 rounds to nearest (ties away, as cvt.rna). X3 ("tf32x3") splits each value into hi / lo TF32 tiles (a second
// set of tiles per stage), 3 wgmmas per k8 step (lo*hi, hi*lo, hi*hi) into a per-k-tile accumulator that starts
// from zero (scale-d = 0) and is added to the running sums with an fp32 add after it retires: two alternating
// per-tile accumulators would not fit in 168 registers. Registers: 168 per thread (setmaxnreg made ptxas spill the
// producer's copy addresses). The epilogues run on the consumer warpgroups alone (named barrier 1 of 256 threads):
// the producer has left. wgmma_tile's is the shared one (epilogue.cuh: split-K, bias, sigmoid, row sums, the
// hand-over to out); wgmma_gemm's is split-K (epilogue.cuh) and a store; wgmma_sigmoid_grad's split-K and gz.
// Compiled to a trap on targets without wgmma.
#include "common.cuh"
#include "epilogue.cuh"
#include "ptx.cuh"

namespace fused {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// The columns of the tile each consumer warpgroup computes (all 64 rows of a wgmma): BM = 128 gives each its own
// 64 rows and all BN columns, BM = 64 (small batches: half the padding rows) the 64 rows and its half of the columns.
template <int BM, int BN> __host__ __device__ constexpr int consumer_cols() { return BM == 128 ? BN : BN / 2; }

// The BM x BN tile at rows m0 of x and n0 of W over k tiles [kt0, kt0 + KT): false for the producer warpgroup (its
// part is done), true for the consumers with their part of the tile in acc (layout: see wgmma_tile's epilogue).
template <bool X3, int BN, int STAGES, bool B_KMAJOR = true, int BM = 128>
__device__ __forceinline__ bool mainloop(const float* __restrict__ x, long long ldx, const float* __restrict__ w,
                                         long long ldw, int B, int N, int K, int m0, int n0, int kt0, int KT,
                                         unsigned char* smem_raw, float (&acc)[consumer_cols<BM, BN>() / 2]) {
    using namespace ptx;
    constexpr int BK = 32, EPC = 4, CPR = 8, RPP = 128 / CPR;  // producer: 16 rows per pass
    constexpr int A_BYTES = BM * 128, B_BYTES = BN * 128, HI_BYTES = A_BYTES + B_BYTES;
    constexpr int STAGE_BYTES = X3 ? 2 * HI_BYTES : HI_BYTES;  // X3: [A_hi B_hi][A_lo B_lo]
    constexpr int CN = consumer_cols<BM, BN>(), NACC = CN / 2;
    constexpr int LAG = STAGES - 2;  // tiles whose copies stay in flight while the producer rounds an older one
    constexpr int STAGING = B_KMAJOR ? 0 : LAG + 1, STAGING_BYTES = BK * BN * 4;  // N-major b: (BK x BN) tiles
    static_assert(BN == 128 || BN == 256, "BN");
    static_assert(BM == 128 || (BM == 64 && B_KMAJOR), "BM: 128, or 64 with a K-major b");
    static_assert(LAG >= 1, "STAGES >= 3");
    static_assert(B_KMAJOR || BN == 128, "an N-major b: one 512-byte row of the tile per producer thread and k");

    const unsigned raw_addr = smem_u32(smem_raw);
    const unsigned base_addr = (raw_addr + 1023u) & ~1023u;  // the launcher adds 1 KiB (+ 256 B of barriers)
    unsigned char* smem = smem_raw + (base_addr - raw_addr);
    const unsigned staging_addr = base_addr + STAGES * STAGE_BYTES;  // the N-major b's staging tiles
    const unsigned bar_addr = staging_addr + STAGING * STAGING_BYTES;  // full[s] at +8s, empty[s] at +8(STAGES + s)

    const int tid = threadIdx.x, warp = tid >> 5, wg = warp >> 2;

    if (tid == 0) {
#pragma unroll
        for (int s = 0; s < STAGES; ++s) {
            mbar_init(bar_addr + 8 * s, 128);
            mbar_init(bar_addr + 8 * (STAGES + s), 256);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    if (wg == 0) {
        // ---------------- producer warpgroup ----------------
        const int lrow = tid / CPR, lchunk = tid % CPR;
        const int lsoff = lrow * 128 + ((lchunk ^ (lrow & 7)) * 16);  // (lrow + i * RPP) & 7 == lrow & 7
        // Once per block, so that a copy is an add and a select: this thread's row addresses (clamped into the
        // operands) and which rows exist; for an N-major b (thread (warp w, lane r) copies row r of the k tile,
        // 16-byte chunks [8w, 8w + 8), chunk c of row r landing at r * 512 + (c ^ (r & 7)) * 16: conflict-free
        // reads by 8 rows at a time), its chunks' column offsets (clamped) and byte counts.
        constexpr int AR = BM / RPP, BR = B_KMAJOR ? 8 : 1;  // BN = 256: rows i and i + 8 share an address
        const int br = tid & 31, bc0 = (tid >> 5) * 8;
        const float* arow[AR];
        const float* brow[BR];
        unsigned amask = 0, bmask = 0;
        int bcoff[8], bbytes[8];
#pragma unroll
        for (int i = 0; i < AR; ++i) {
            const int r = m0 + lrow + i * RPP;
            amask |= (r < B ? 1u : 0u) << i;
            arow[i] = x + (long long)min(r, B - 1) * ldx + lchunk * EPC;
        }
        if constexpr (B_KMAJOR) {
#pragma unroll
            for (int i = 0; i < BN / RPP; ++i) {
                const int r = n0 + lrow + i * RPP;
                bmask |= (r < N ? 1u : 0u) << i;
                if (i < BR) brow[i] = w + (long long)min(r, N - 1) * ldw + lchunk * EPC;
            }
        } else {
            brow[0] = w + n0;
            const int cols = N - n0;
#pragma unroll
            for (int c = 0; c < 8; ++c) {
                const int col = (bc0 + c) * EPC;
                bbytes[c] = max(0, min(cols - col, EPC)) * 4;
                bcoff[c] = min(col, cols - 1);
            }
        }
        for (int it = 0; it < KT + LAG; ++it) {
            if (it < KT) {
                const int s = it % STAGES;
                if (it >= STAGES) mbar_wait(bar_addr + 8 * (STAGES + s), ((it / STAGES) + 1) & 1);
                const unsigned As = base_addr + s * STAGE_BYTES + lsoff;
                const int k0 = (kt0 + it) * BK;
                const int kbytes = max(0, min(K - (k0 + lchunk * EPC), EPC)) * 4;
                const int koff = kbytes > 0 ? k0 : -lchunk * EPC;  // nothing to read: the row's first address
#pragma unroll
                for (int i = 0; i < AR; ++i)
                    cp_async16_pf(As + i * RPP * 128, arow[i] + koff, (amask >> i & 1u) ? kbytes : 0);
                if constexpr (B_KMAJOR) {
                    const long long far = (long long)BR * RPP * ldw;  // rows i >= 8 (BN = 256), clamped below
#pragma unroll
                    for (int i = 0; i < BN / RPP; ++i) {
                        const bool ok = bmask >> i & 1u;
                        const float* src = i < BR ? brow[i] : (ok ? brow[i - BR] + far : brow[i - BR]);
                        cp_async16_pf(As + A_BYTES + i * RPP * 128, src + koff, ok ? kbytes : 0);
                    }
                } else {
                    const unsigned dst = staging_addr + (it % STAGING) * STAGING_BYTES + br * 512;
                    const bool row_ok = k0 + br < K;
                    const float* src = brow[0] + (long long)(row_ok ? k0 + br : 0) * ldw;
#pragma unroll
                    for (int c = 0; c < 8; ++c)
                        cp_async16(dst + (((bc0 + c) ^ (br & 7)) * 16), src + bcoff[c], row_ok ? bbytes[c] : 0);
                }
            }
            cp_async_commit();
            if (it >= LAG) {
                const int s = (it - LAG) % STAGES;
                cp_async_wait<LAG>();
                unsigned char* p0 = smem + s * STAGE_BYTES + lsoff;
                constexpr int ROWS = B_KMAJOR ? BM + BN : BM;  // A rows then B rows (contiguous)
#pragma unroll 4
                for (int i = 0; i < ROWS / RPP; ++i) {
                    uint4* p = reinterpret_cast<uint4*>(p0 + i * RPP * 128);
                    const uint4 v = *p, h = hi_of(v);
                    *p = h;
                    if constexpr (X3) *reinterpret_cast<uint4*>(p0 + HI_BYTES + i * RPP * 128) = lo_of(v, h);
                }
                if constexpr (!B_KMAJOR) {
                    // staging row br (k = br of the tile), columns 4c..4c+3 -> B rows 4c + j, k column br
                    const unsigned char* src =
                        smem + (staging_addr - base_addr) + ((it - LAG) % STAGING) * STAGING_BYTES + br * 512;
                    unsigned char* dst = smem + s * STAGE_BYTES + A_BYTES + (br & 3) * 4;
#pragma unroll
                    for (int c = bc0; c < bc0 + 8; ++c) {
                        const uint4 v = *reinterpret_cast<const uint4*>(src + ((c ^ (br & 7)) * 16));
                        const uint4 h = hi_of(v), l = X3 ? lo_of(v, h) : h;
                        const unsigned hv[4] = {h.x, h.y, h.z, h.w}, lv[4] = {l.x, l.y, l.z, l.w};
#pragma unroll
                        for (int j = 0; j < 4; ++j) {
                            const int n = 4 * c + j;  // row n: 128 bytes, 16-byte chunk (br / 4) ^ (n & 7)
                            unsigned char* q = dst + n * 128 + (((br >> 2) ^ (n & 7)) * 16);
                            *reinterpret_cast<unsigned*>(q) = hv[j];
                            if constexpr (X3) *reinterpret_cast<unsigned*>(q + HI_BYTES) = lv[j];
                        }
                    }
                }
                fence_proxy_async();  // this thread's shared-memory writes -> visible to the async proxy (wgmma)
                mbar_arrive(bar_addr + 8 * s);
            }
        }
        cp_async_wait<0>();
        return false;
    }

    // ---------------- consumer warpgroups ----------------
    const int cwg = wg - 1;
    const unsigned a_off = BM == 128 ? cwg * 64 * 128 : 0, b_off = A_BYTES + (BM == 128 ? 0 : cwg * CN * 128);
#pragma unroll
    for (int i = 0; i < NACC; ++i) acc[i] = 0.0f;

    if constexpr (!X3) {
        for (int kt = 0; kt < KT; ++kt) {
            const int s = kt % STAGES;
            mbar_wait(bar_addr + 8 * s, (kt / STAGES) & 1);
            const unsigned a_addr = base_addr + s * STAGE_BYTES + a_off;
            const unsigned b_addr = base_addr + s * STAGE_BYTES + b_off;
            wgmma_fence();
#pragma unroll
            for (int k8 = 0; k8 < BK / 8; ++k8)
                wgmma_tf32<CN>::run(acc, gmma_desc_sw128(a_addr + k8 * 32), gmma_desc_sw128(b_addr + k8 * 32));
            wgmma_commit();
            wgmma_wait<1>();
            if (kt > 0) mbar_arrive(bar_addr + 8 * (STAGES + (kt - 1) % STAGES));
        }
        wgmma_wait<0>();
#pragma unroll
        for (int i = 0; i < NACC; ++i) asm volatile("" : "+f"(acc[i])::"memory");
    } else {
        float tmp[NACC];
        for (int kt = 0; kt < KT; ++kt) {
            const int s = kt % STAGES;
            mbar_wait(bar_addr + 8 * s, (kt / STAGES) & 1);
            const unsigned a_hi = base_addr + s * STAGE_BYTES + a_off, a_lo = a_hi + HI_BYTES;
            const unsigned b_hi = base_addr + s * STAGE_BYTES + b_off, b_lo = b_hi + HI_BYTES;
            wgmma_fence();
#pragma unroll
            for (int k8 = 0; k8 < BK / 8; ++k8) {
                wgmma_tf32<CN>::run(tmp, gmma_desc_sw128(a_lo + k8 * 32), gmma_desc_sw128(b_hi + k8 * 32),
                                    k8 == 0 ? 0 : 1);
                wgmma_tf32<CN>::run(tmp, gmma_desc_sw128(a_hi + k8 * 32), gmma_desc_sw128(b_lo + k8 * 32));
                wgmma_tf32<CN>::run(tmp, gmma_desc_sw128(a_hi + k8 * 32), gmma_desc_sw128(b_hi + k8 * 32));
            }
            wgmma_commit();
            wgmma_wait<0>();
            mbar_arrive(bar_addr + 8 * (STAGES + s));
            add_retired(acc, tmp);
        }
    }
    return true;
}
#endif

// This block's tile, its split's k tiles and the split-K workspace (k_split: a multiple of the k tile, 32).
struct Block {
    epi::Tile tile;
    epi::Workspace<float> ws;
    int m0, n0, kt0, KT;
};

template <int BM, int BN>
__device__ __forceinline__ Block block_of(unsigned char* workspace, int M, int N, int K, int splits,
                                          long long k_split, int group_m) {
    constexpr int BK = 32;
    Block b;
    b.tile = epi::tile_of(M, N, BM, BN, splits, group_m);
    b.ws = epi::workspace_of<float>(workspace, b.tile, M, splits);
    b.m0 = b.tile.tm * BM;
    b.n0 = b.tile.tn * BN;
    const long long kb = (long long)b.tile.s * k_split;
    b.kt0 = (int)(kb / BK);
    b.KT = (int)min((long long)(K + BK - 1) / BK, (kb + k_split) / BK) - b.kt0;
    return b;
}

template <bool X3, int BN, int STAGES, int BM, bool SAVE>
__global__ void __launch_bounds__(384, 1)
wgmma_tile(const float* __restrict__ x, long long ldx, const float* __restrict__ w, long long ldw,
           const float* __restrict__ bias, unsigned char* __restrict__ workspace, float* __restrict__ out,
           float* __restrict__ saved, int B,
           int N, int K, int splits, long long k_split, int group_m, unsigned long long epoch) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int CN = consumer_cols<BM, BN>(), NACC = CN / 2;
    extern __shared__ __align__(128) unsigned char smem_raw[];
    __shared__ float red[128];
    const Block blk = block_of<BM, BN>(workspace, B, N, K, splits, k_split, group_m);
    const epi::Tile& tile = blk.tile;
    const epi::Workspace<float>& ws = blk.ws;
    const int m0 = blk.m0, n0 = blk.n0;
    float acc[NACC];
    if (!mainloop<X3, BN, STAGES, true, BM>(x, ldx, w, ldw, B, N, K, m0, n0, blk.kt0, blk.KT, smem_raw, acc)) return;
    const int tid = threadIdx.x, warp = tid >> 5, cwg = (warp >> 2) - 1, wq = warp & 3, ct = tid - 128;
    const int lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int row0 = m0 + (BM == 128 ? cwg * 64 : 0), col0 = n0 + (BM == 128 ? 0 : cwg * CN);
    const cf::NamedSync<1, 256> sync;

    if (!epi::split_exchange<float, NACC>(acc, ws, tile, splits, ct, 256, epoch, sync)) return;

    // Bias, sigmoid and the row sums over this warpgroup's CN columns. Accumulator layout (per warp, as mma.sync's C
    // fragment repeated over n): acc[4j + 2h + q] is row row0 + 16 * wq + g + 8h, column col0 + 8j + 2t + q.
    // Every warp holds whole rows of its columns, so a quad shuffle finishes each row's sum; red[64 * cwg + r] holds
    // warpgroup cwg's sum of its row r (BM = 64: both warpgroups have every row, added in warpgroup order).
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        float s = 0.0f;
        const int row = row0 + wq * 16 + h * 8 + g;
#pragma unroll
        for (int j = 0; j < CN / 8; ++j)
#pragma unroll
            for (int q = 0; q < 2; ++q) {
                const int n = col0 + 8 * j + 2 * t + q;
                if (n < N) {
                    const float z = acc[4 * j + 2 * h + q] + (bias != nullptr ? bias[n] : 0.0f);
                    s += cf::sigmoid(z);
                    if (SAVE && row < B) saved[(long long)row * N + n] = cf::dsigmoid(z);
                }
            }
        s += __shfl_xor_sync(0xffffffffu, s, 1);
        s += __shfl_xor_sync(0xffffffffu, s, 2);
        if (t == 0) red[cwg * 64 + wq * 16 + h * 8 + g] = s;
    }
    sync();
    epi::finish_rows<float, float>(
        tile, ws, m0, BM, B, splits, out, [&](int r) { return BM == 128 ? red[r] : red[r] + red[64 + r]; }, ct, 256,
        epoch, sync);
#else
    __trap();
#endif
}

template <int BN, int STAGES, bool B_KMAJOR>
__global__ void __launch_bounds__(384, 1)
wgmma_gemm(const float* __restrict__ a, long long lda, const float* __restrict__ b, long long ldb,
           unsigned char* __restrict__ workspace, float* __restrict__ c, long long ldc, int M, int N, int K,
           int splits, long long k_split, int group_m, int accumulate, unsigned long long epoch) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int NACC = BN / 2;
    extern __shared__ __align__(128) unsigned char smem_raw[];
    const Block blk = block_of<128, BN>(workspace, M, N, K, splits, k_split, group_m);
    float acc[NACC];
    if (!mainloop<true, BN, STAGES, B_KMAJOR>(a, lda, b, ldb, M, N, K, blk.m0, blk.n0, blk.kt0, blk.KT, smem_raw, acc))
        return;
    const int tid = threadIdx.x, warp = tid >> 5, cwg = (warp >> 2) - 1, wq = warp & 3;
    const int lane = tid & 31, g = lane >> 2, t = lane & 3;
    const cf::NamedSync<1, 256> sync;
    if (!epi::split_exchange<float, NACC>(acc, blk.ws, blk.tile, splits, tid - 128, 256, epoch, sync)) return;

    // acc[4j + 2h + q] is row 16 * wq + g + 8h of the warpgroup, column n0 + 8j + 2t + q (as in wgmma_tile).
    // Pairs of columns are stored as one float2 where c's rows allow it; accumulate adds in fp32 to what c holds.
    const bool pairs = ldc % 2 == 0 && (reinterpret_cast<unsigned long long>(c) & 7) == 0;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int row = blk.m0 + cwg * 64 + wq * 16 + h * 8 + g;
        if (row >= M) continue;
        float* crow = c + (long long)row * ldc;
#pragma unroll
        for (int j = 0; j < BN / 8; ++j) {
            const int n = blk.n0 + 8 * j + 2 * t;
            if (n < N)
                epi::store_pair(crow + n, acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1], pairs && n + 1 < N, n + 1 < N,
                                accumulate);
        }
    }
#else
    __trap();
#endif
}

// gz = g * sigmoid'(x . W^T + bias) tile by tile in tf32x3: the backward's recompute of z fused with sigmoid'
// (backward.py), for a chunk of W's rows. Written row-major to z (row stride ldz: grad_x's operand), transposed to zt
// (zt[col * ldzt + row]: grad_W's K-major operand) and as column sums per 64-row tile (partial[tile_row * ldp + col]:
// grad_b), each when non-null: z itself never reaches memory. Rows past M give zeros. The tile's bias values are
// staged in shared memory before the main loop: read from global memory in the epilogue, each one's latency stood
// between the epilogue's steps (+16-29% over the GEMM alone).
template <int BN, int STAGES>
__global__ void __launch_bounds__(384, 1)
wgmma_sigmoid_grad(const float* __restrict__ x, long long ldx, const float* __restrict__ w, long long ldw,
                   const float* __restrict__ bias, const float* __restrict__ g, unsigned char* __restrict__ workspace,
                   float* __restrict__ z, long long ldz, float* __restrict__ zt, long long ldzt,
                   float* __restrict__ partial, long long ldp, int M, int N, int K, int splits, long long k_split,
                   int group_m, unsigned long long epoch) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int NACC = BN / 2;
    extern __shared__ __align__(128) unsigned char smem_raw[];
    __shared__ float red[2][4][BN];  // per consumer warpgroup, each warp's 16-row column sums
    __shared__ float bsh[BN];
    const Block blk = block_of<128, BN>(workspace, M, N, K, splits, k_split, group_m);
    for (int i = threadIdx.x; i < BN; i += blockDim.x)  // visible after the main loop's first __syncthreads
        bsh[i] = bias != nullptr && blk.n0 + i < N ? bias[blk.n0 + i] : 0.0f;
    float acc[NACC];
    if (!mainloop<true, BN, STAGES>(x, ldx, w, ldw, M, N, K, blk.m0, blk.n0, blk.kt0, blk.KT, smem_raw, acc)) return;
    const int tid = threadIdx.x, warp = tid >> 5, cwg = (warp >> 2) - 1, wq = warp & 3;
    const int lane = tid & 31, g8 = lane >> 2, t = lane & 3;
    const cf::NamedSync<1, 256> sync;
    if (!epi::split_exchange<float, NACC>(acc, blk.ws, blk.tile, splits, tid - 128, 256, epoch, sync)) return;

    // acc[4j + 2h + q] is row r[h] = m0 + 64 cwg + 16 wq + 8h + g8, column n0 + 8j + 2t + q (as in wgmma_tile)
    const int r0 = blk.m0 + 64 * cwg;
    int r[2];
    float gr[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        r[h] = r0 + 16 * wq + 8 * h + g8;
        gr[h] = r[h] < M ? g[r[h]] : 0.0f;
    }
    const bool pairs = ldz % 2 == 0 && (reinterpret_cast<unsigned long long>(z) & 7) == 0;
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
        const int c = blk.n0 + 8 * j + 2 * t;
        float v[2][2], sum[2];
#pragma unroll
        for (int q = 0; q < 2; ++q) {
            const float bq = bsh[8 * j + 2 * t + q];
            sum[q] = 0.0f;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                v[h][q] = r[h] < M ? gr[h] * cf::dsigmoid(acc[4 * j + 2 * h + q] + bq) : 0.0f;
                sum[q] += v[h][q];
                if (zt != nullptr && r[h] < M && c + q < N) zt[(long long)(c + q) * ldzt + r[h]] = v[h][q];
            }
            sum[q] += __shfl_xor_sync(0xffffffffu, sum[q], 4);
            sum[q] += __shfl_xor_sync(0xffffffffu, sum[q], 8);
            sum[q] += __shfl_xor_sync(0xffffffffu, sum[q], 16);
            if (g8 == 0) red[cwg][wq][8 * j + 2 * t + q] = sum[q];
        }
        if (z != nullptr) {
#pragma unroll
            for (int h = 0; h < 2; ++h)
                if (r[h] < M && c < N)
                    epi::store_pair(z + (long long)r[h] * ldz + c, v[h][0], v[h][1], pairs && c + 1 < N, c + 1 < N, 0);
        }
    }
    if (partial == nullptr || r0 >= M) return;
    if (cwg == 0)  // the warpgroup's red rows are written
        cf::NamedSync<2, 128>()();
    else
        cf::NamedSync<3, 128>()();
    for (int i = tid & 127; i < BN; i += 128)
        if (blk.n0 + i < N)
            partial[(long long)(r0 / 64) * ldp + blk.n0 + i] =
                ((red[cwg][0][i] + red[cwg][1][i]) + red[cwg][2][i]) + red[cwg][3][i];
#else
    __trap();
#endif
}

}  // namespace fused
