// Hopper tensor cores for GEMMs with a shallow reduction (sm_90a): grad_W = gz.T . x at small batches, in tf32x3.
//
// shallow::wgmma_shallow: c (M x N, row stride ldc) = a (M x K, row-major) . bt (K x N, row-major), K <= 128. At the
// KernelBench shape (M = N = 32768, K = 128) the tile GEMM of fused_wgmma_sm90.cu runs 4 k tiles per 128 x 128 tile
// and then stores 64 KB with the tensor cores idle (one block an SM): 4.5 ms for 4.3 GB of c. Here a block stays
// resident (one per SM) and owns a contiguous run of 64 x 128 tiles, column block by column block:
//   - per column block, the block's 256 threads copy bt's 128 columns (all K rows) into shared memory once, split
//     into hi / lo TF32 values, as wgmma's K-major B (128-byte swizzled, 32 values of k a row of 128 B);
//   - each of the two warpgroups takes every other 64-row tile and runs it with A from registers: each thread loads
//     its fragment rows of a straight from global memory, two steps (of 32 values of k) ahead, splits them, and
//     issues the step's wgmmas; after a tile's last step it stores its 64 x 128 accumulators (streaming stores) and
//     goes on, so the stores drain while the tensor cores work, and the other warpgroup's wgmmas fill this one's
//     pauses.
// The values of k are permuted within each step of 32 so that a warp's loads of a read whole 32-byte sectors: wgmma
// k step j (8 values) column c of thread t (c = t or t + 4) is value 4t + 2j + c / 4 (j < 2) or 16 + 4t + 2(j - 2)
// + c / 4 (j >= 2) of the step, in a and in bt alike (the sum is over all of them, in any order). tf32x3 as in
// fused_wgmma_sm90.cu: lo*hi, hi*lo, hi*hi into a per-step accumulator that starts from zero, added to the running
// sums in fp32 (accumulating all of K in the tensor cores made the error 6.7x strict fp32's: benchmarks/NOTES.md).
// Values of k past K and rows past M or N read as zeros. ptxas must see the wgmmas in uniform code and their A
// fragments formed before the fence, else it serializes them or fences between them (ptxas -v: C7519, C7520).
// Compiled to a trap on targets without wgmma.
#include "common.cuh"
#include "ptx.cuh"

namespace shallow {

constexpr int BN = 128, BM = 64, KMAX = 128, KSTEP = 32;
constexpr int B_STEP_BYTES = BN * 128;                   // one step of 32 values of k for the 128 columns
constexpr int B_BYTES = (KMAX / KSTEP) * B_STEP_BYTES;  // 64 KiB of hi values, then as much of lo

__global__ void __launch_bounds__(256, 1)
wgmma_shallow(const float* __restrict__ a, long long lda, const float* __restrict__ bt, long long ldb,
              float* __restrict__ c, long long ldc, int M, int N, int K) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    using namespace ptx;
    constexpr int D = 2;  // steps of a's loads in flight (registers: hi, lo and two accumulators are held)
    extern __shared__ __align__(128) unsigned char smem_raw[];
    const unsigned raw_addr = smem_u32(smem_raw);
    const unsigned base_addr = (raw_addr + 1023u) & ~1023u;  // the launcher adds 1 KiB
    unsigned char* smem = smem_raw + (base_addr - raw_addr);

    const int tid = threadIdx.x, wq = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, t = lane & 3;
    // the warpgroup, broadcast from lane 0 so that ptxas knows it uniform: its tile loop holds the wgmmas, which
    // ptxas serializes (a wait after each) when they sit in a path it considers divergent
    const int wg = __shfl_sync(0xffffffffu, tid >> 7, 0);
    const int steps = (K + KSTEP - 1) / KSTEP;
    const int MT = (M + BM - 1) / BM, NR = (N + BN - 1) / BN;
    const long long T = (long long)MT * NR;
    long long u = T * blockIdx.x / gridDim.x;
    const long long u_end = T * (blockIdx.x + 1) / gridDim.x;
    const bool pairs = ldc % 2 == 0 && (reinterpret_cast<unsigned long long>(c) & 7) == 0;

    // This thread's fragment of tile row block m0 at step s: rows m0 + 16 wq + g (v[0..1]) and + 8 (v[2..3]),
    // values 32 s + 4 t .. + 3 (v[0], v[2]) and 32 s + 16 + 4 t .. + 3 (v[1], v[3]) of k: a warp's load covers 64
    // contiguous bytes of each of its 8 rows. a's rows are 16-byte aligned (lda % 4 == 0), so a float4 that starts
    // below K lies within the row; its values past K are zeroed where the fragment is formed (see tail), not here:
    // a select on the loaded value would wait for the load as soon as it is issued.
    auto load = [&](int m0, int s, float4 (&v)[4]) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int row = m0 + 16 * wq + g + 8 * h;
#pragma unroll
            for (int q = 0; q < 2; ++q) {
                const int k0 = KSTEP * s + 16 * q + 4 * t;
                v[2 * h + q] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                if (row < M && k0 < K)
                    v[2 * h + q] = __ldg(reinterpret_cast<const float4*>(a + (long long)row * lda + k0));
            }
        }
    };
    // value e of the thread's 8 at step s lies past K (k = 32 s + 4 t + e, or 32 s + 16 + 4 t + e - 4 for e >= 4)
    auto tail = [&](int s, int e) { return KSTEP * s + 4 * t + (e < 4 ? e : 12 + e) >= K; };

    // acc[4j + 2h + q]: row m0 + 16 wq + g + 8h, column n0 + 8j + 2t + q (wgmma's accumulator layout); streaming
    // stores (c is not read again here)
    auto store = [&](const float (&acc)[BN / 2], int m0, int n0) {
        const bool whole = pairs && n0 + BN <= N;  // no column to test
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int row = m0 + 16 * wq + g + 8 * h;
            if (row >= M) continue;
            float* crow = c + (long long)row * ldc + n0 + 2 * t;
            if (whole) {
#pragma unroll
                for (int j = 0; j < BN / 8; ++j)
                    __stcs(reinterpret_cast<float2*>(crow + 8 * j),
                           make_float2(acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1]));
                continue;
            }
#pragma unroll
            for (int j = 0; j < BN / 8; ++j) {
                const int n = n0 + 8 * j + 2 * t;
                const float v0 = acc[4 * j + 2 * h], v1 = acc[4 * j + 2 * h + 1];
                if (pairs && n + 1 < N) {
                    __stcs(reinterpret_cast<float2*>(crow + 8 * j), make_float2(v0, v1));
                } else {
                    if (n < N) __stcs(crow + 8 * j, v0);
                    if (n + 1 < N) __stcs(crow + 8 * j + 1, v1);
                }
            }
        }
    };

    while (u < u_end) {
        const int nr = (int)(u / MT), n0 = nr * BN;
        const long long seg_end = min(u_end, (long long)(nr + 1) * MT);

        // bt's columns n0 .. n0 + 127 -> B (row n, value p of step s at logical column 8 j + c, see above)
        __syncthreads();  // both warpgroups are done with the previous column block (their wgmmas have retired)
#pragma unroll 4
        for (int i = tid; i < steps * KSTEP * BN; i += 256) {
            const int n = i % BN, k = i / BN, s = k / KSTEP, p = k % KSTEP;
            const float v = (k < K && n0 + n < N) ? bt[(long long)k * ldb + n0 + n] : 0.0f;
            const int col = 8 * (2 * (p >> 4) + ((p >> 1) & 1)) + ((p >> 2) & 3) + 4 * (p & 1);
            const int off = s * B_STEP_BYTES + n * 128 + (((col >> 2) ^ (n & 7)) << 4) + (col & 3) * 4;
            const unsigned hi = to_tf32(v);
            *reinterpret_cast<unsigned*>(smem + off) = hi;
            *reinterpret_cast<unsigned*>(smem + B_BYTES + off) = to_tf32(v - __uint_as_float(hi));
        }
        fence_proxy_async();  // the shared-memory writes -> visible to wgmma
        __syncthreads();

        // this warpgroup's tiles of the column block: every other one, as steps (tile, s), D steps of loads ahead
        const long long first = u + wg;
        const int tiles = first < seg_end ? (int)((seg_end - first + 1) / 2) : 0;
        const int total = tiles * steps;
        float acc[BN / 2], tmp[BN / 2];
        // a ring of D fragments in flight, unrolled D times so that it needs no moves: a register move of a pending
        // load would wait for the load right there. (s, m0): the step computed; (ls, lm0): the step loaded next.
        float4 ring[D][4];
        int s = 0, m0 = (int)(first - (long long)nr * MT) * BM, ls = 0, lm0 = m0;
        auto next = [&](int& step, int& row) {
            if (++step == steps) {
                step = 0;
                row += 2 * BM;
            }
        };
#pragma unroll
        for (int d = 0; d < D; ++d)
            if (d < total) {
                load(lm0, ls, ring[d]);
                next(ls, lm0);
            }
        for (int i0 = 0; i0 < total; i0 += D) {
#pragma unroll
            for (int d = 0; d < D; ++d) {
                if (i0 + d >= total) break;
                // fragments of the 4 k steps of 8: j uses values 2j, 2j + 1 of each row's 8 (see load)
                const float4* v = ring[d];
                const float r0[8] = {v[0].x, v[0].y, v[0].z, v[0].w, v[1].x, v[1].y, v[1].z, v[1].w};
                const float r1[8] = {v[2].x, v[2].y, v[2].z, v[2].w, v[3].x, v[3].y, v[3].z, v[3].w};
                unsigned hi[4][4], lo[4][4];
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    float f[4] = {r0[2 * j], r1[2 * j], r0[2 * j + 1], r1[2 * j + 1]};
                    if (KSTEP * (s + 1) > K) {  // the step reaches past K
                        if (tail(s, 2 * j)) f[0] = f[1] = 0.0f;
                        if (tail(s, 2 * j + 1)) f[2] = f[3] = 0.0f;
                    }
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        hi[j][e] = to_tf32(f[e]);
                        lo[j][e] = to_tf32(f[e] - __uint_as_float(hi[j][e]));
                        // formed before the fence: ptxas would otherwise fence again between the wgmmas
                        asm volatile("" : "+r"(hi[j][e]), "+r"(lo[j][e]));
                    }
                }
                if (i0 + d + D < total) {
                    load(lm0, ls, ring[d]);
                    next(ls, lm0);
                }
                const unsigned b_hi = base_addr + s * B_STEP_BYTES, b_lo = b_hi + B_BYTES;
                wgmma_fence();
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    wgmma_tf32_rs<BN>::run(tmp, lo[j], gmma_desc_sw128(b_hi + 32 * j), j == 0 ? 0 : 1);
                    wgmma_tf32_rs<BN>::run(tmp, hi[j], gmma_desc_sw128(b_lo + 32 * j));
                    wgmma_tf32_rs<BN>::run(tmp, hi[j], gmma_desc_sw128(b_hi + 32 * j));
                }
                wgmma_commit();
                const bool opens = s == 0, last = s + 1 == steps;  // the tile's first and last steps
                const int row = m0;
                next(s, m0);
                wgmma_wait<0>();
                // a uniform branch, not a select per value: 64 selects a step cost more than the branch
                if (opens) {
#pragma unroll
                    for (int e = 0; e < BN / 2; ++e) {
                        asm volatile("" : "+f"(tmp[e])::"memory");
                        acc[e] = tmp[e];
                    }
                } else {
                    add_retired(acc, tmp);
                }
                if (last) store(acc, row, n0);
            }
        }
        u = seg_end;
    }
#else
    __trap();
#endif
}

}  // namespace shallow
