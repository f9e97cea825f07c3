// Fused out[b] = sum_n sigmoid(x[b] . W[n] + bias[n]) on tensor cores with mma.sync (sm_80 and later).
//
// fused::mma_tile<T, MODE, BM, BN, WM, WN, STAGES, MINB, ALIGNED, SAVE>: a block computes a BM x BN tile of x @ W^T in
// registers, warps of WM x WN, over one split of K, then the shared epilogue (epilogue.cuh: split-K, bias, sigmoid,
// row sums, the hand-over to out). The B x N product never reaches memory.
//
// Modes (float inputs pick one; 16-bit inputs use NATIVE16):
//   TF32      operands rounded to TF32 (nearest, ties away, as cvt.rna), m16n8k8.
//   TF32X3    each operand split into hi = tf32(v) and lo = tf32(v - hi); lo*hi + hi*lo + hi*hi per step; each
//             32-wide k tile accumulates from zero and is then added to the running sums with an ordinary fp32 add
//             (the tensor cores' own accumulation is not round-to-nearest: without this step the error over
//             K = 32768 was 60x cuBLAS fp32's, with it about 1x).
//   BF16      fp32 operands rounded to bf16, m16n8k16, fp32 accumulation.
//   NATIVE16  half / bfloat16 inputs, m16n8k16, fp32 accumulation.
//
// Shared memory per stage: an A tile BM x BK and a B tile BN x BK of T, each row exactly 128 bytes (BK =
// 128 / sizeof(T)), no padding: the eight 16-byte chunks of a row are XOR-swizzled by the row index so that fragment
// loads are free of bank conflicts. The k index inside an mma step is permuted identically for A and B (a dot
// product does not care), so every thread reads its KSTEP / 4 consecutive k values with one 8- or 16-byte load.
// Tiles arrive with 16-byte cp.async when x and W are 16-byte aligned (ALIGNED), else with element loads.
#include "common.cuh"
#include "epilogue.cuh"
#include "ptx.cuh"

namespace fused {

enum class Mode : int { TF32 = 0, TF32X3 = 1, BF16 = 2, NATIVE16 = 3 };

template <typename T, Mode MODE> struct mma_traits {
    static constexpr int BK = 128 / (int)sizeof(T);  // elements per smem row (128 bytes)
    static constexpr int EPC = 16 / (int)sizeof(T);  // elements per 16-byte chunk
    static constexpr int KSTEP = (MODE == Mode::TF32 || MODE == Mode::TF32X3) ? 8 : 16;
    static constexpr int KPT = KSTEP / 4;  // consecutive k values per thread per step
    // chunk swizzle: 8-byte loads (tf32, native 16-bit) use (row & 3) << 1; 16-byte loads (bf16 from fp32) (row & 1) << 2
    static __device__ __forceinline__ int swz(int row) { return MODE == Mode::BF16 ? (row & 1) << 2 : (row & 3) << 1; }
    static __device__ __forceinline__ int offset(int row, int k) {  // element offset inside a tile
        return row * BK + (((k / EPC) ^ swz(row)) * EPC) + (k % EPC);
    }
};

template <typename T> __device__ __forceinline__ T zero_of() { return cf::from_acc<T>(typename cf::acc<T>::type(0)); }

template <typename T, Mode MODE, int BM, int BN, int WM, int WN, int STAGES, int MINB, bool ALIGNED, bool SAVE>
__global__ void __launch_bounds__((BM / WM) * (BN / WN) * 32, MINB)
mma_tile(const T* __restrict__ x, long long ldx, const T* __restrict__ w, long long ldw, const T* __restrict__ bias,
         unsigned char* __restrict__ workspace, T* __restrict__ out, T* __restrict__ saved, int B, int N, int K,
         int splits,
         long long k_split, int group_m, unsigned long long epoch) {
    using TR = mma_traits<T, MODE>;
    constexpr bool X3 = MODE == Mode::TF32X3, TF = MODE == Mode::TF32 || X3;
    constexpr int BK = TR::BK, EPC = TR::EPC, KSTEP = TR::KSTEP, KPT = TR::KPT;
    constexpr int WARPS_M = BM / WM, WARPS_N = BN / WN;
    constexpr int THREADS = WARPS_M * WARPS_N * 32;
    constexpr int MT = WM / 16, NT = WN / 8, NACC = MT * NT * 4;
    constexpr int A_ELEMS = BM * BK, B_ELEMS = BN * BK, STAGE_ELEMS = A_ELEMS + B_ELEMS;
    constexpr int CPR = BK / EPC;  // 16-byte chunks per row (8)
    static_assert(BM % WM == 0 && BN % WN == 0 && WM % 16 == 0 && WN % 8 == 0, "tile shape");
    static_assert((BM * CPR) % THREADS == 0 && (BN * CPR) % THREADS == 0, "loader shape");
    static_assert(STAGES >= 2, "stages");
    static_assert((THREADS / CPR) % 4 == 0 && BM % (THREADS / CPR) == 0 && BN % (THREADS / CPR) == 0, "loader rows");

    extern __shared__ __align__(128) unsigned char smem_raw[];
    T* smem = reinterpret_cast<T*>(smem_raw);

    const epi::Tile tile = epi::tile_of(B, N, BM, BN, splits, group_m);
    const epi::Workspace<float> ws = epi::workspace_of<float>(workspace, tile, B, splits);
    const int m0 = tile.tm * BM, n0 = tile.tn * BN;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp % WARPS_M, wn = warp / WARPS_M;
    const int g = lane >> 2, t = lane & 3;
    const long long kb = (long long)tile.s * k_split;  // k_split is a multiple of BK
    const int kt0 = (int)(kb / BK), kt1 = (int)min((long long)(K + BK - 1) / BK, (kb + k_split) / BK);

    // Loader: thread tid copies chunk (tid % CPR) of rows tid / CPR + i * RPP (i < BM / RPP, resp. BN / RPP).
    constexpr int RPP = THREADS / CPR;  // rows per pass
    const int lrow = tid / CPR, lchunk = tid % CPR;
    const T* xsrc = x + (long long)min(m0 + lrow, B - 1) * ldx + lchunk * EPC;
    const T* wsrc = w + (long long)min(n0 + lrow, N - 1) * ldw + lchunk * EPC;
    const long long xstep = (long long)RPP * ldx, wstep = (long long)RPP * ldw;
    const int lsoff = lrow * BK + ((lchunk ^ TR::swz(lrow)) * EPC);  // swz(lrow + i * RPP) == swz(lrow): RPP % 4 == 0

    auto load_tile = [&](int stage, int kt) {
        T* As = smem + stage * STAGE_ELEMS;
        T* Bs = As + A_ELEMS;
        const int k0 = kt * BK;
        if constexpr (ALIGNED) {
            const int gk = k0 + lchunk * EPC;
            const int kbytes = max(0, min(K - gk, EPC)) * (int)sizeof(T);
#pragma unroll
            for (int i = 0; i < BM / RPP; ++i) {
                const bool ok = m0 + lrow + i * RPP < B && kbytes > 0;
                ptx::cp_async16(ptx::smem_u32(As + lsoff + i * RPP * BK), ok ? xsrc + i * xstep + k0 : x, ok ? kbytes : 0);
            }
#pragma unroll
            for (int i = 0; i < BN / RPP; ++i) {
                const bool ok = n0 + lrow + i * RPP < N && kbytes > 0;
                ptx::cp_async16(ptx::smem_u32(Bs + lsoff + i * RPP * BK), ok ? wsrc + i * wstep + k0 : w, ok ? kbytes : 0);
            }
        } else {
            // Unaligned base pointer or row stride: element loads, synchronous (correct for any layout).
            for (int e = tid; e < A_ELEMS; e += THREADS) {
                const int r = e / BK, k = e % BK, gr = m0 + r, gk = k0 + k;
                As[TR::offset(r, k)] = (gr < B && gk < K) ? x[(long long)gr * ldx + gk] : zero_of<T>();
            }
            for (int e = tid; e < B_ELEMS; e += THREADS) {
                const int r = e / BK, k = e % BK, gr = n0 + r, gk = k0 + k;
                Bs[TR::offset(r, k)] = (gr < N && gk < K) ? w[(long long)gr * ldw + gk] : zero_of<T>();
            }
        }
    };

    float acc[MT][NT][4];
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.0f;

#pragma unroll
    for (int st = 0; st < STAGES - 1; ++st) {
        if (kt0 + st < kt1) load_tile(st, kt0 + st);
        ptx::cp_async_commit();
    }

    for (int kt = kt0; kt < kt1; ++kt) {
        const int it = kt - kt0;
        ptx::cp_async_wait<STAGES - 2>();
        __syncthreads();
        {
            const int nk = kt + STAGES - 1;
            if (nk < kt1) load_tile((it + STAGES - 1) % STAGES, nk);
            ptx::cp_async_commit();
        }
        const T* As = smem + (it % STAGES) * STAGE_ELEMS;
        const T* Bs = As + A_ELEMS;
        float tacc[MT][NT][4];  // TF32X3: this k tile's sums, added to acc in fp32 after the tile
        if constexpr (X3) {
#pragma unroll
            for (int i = 0; i < MT; ++i)
#pragma unroll
                for (int j = 0; j < NT; ++j)
#pragma unroll
                    for (int q = 0; q < 4; ++q) tacc[i][j][q] = 0.0f;
        }
        auto& cacc = X3 ? tacc : acc;

#pragma unroll
        for (int kk = 0; kk < BK; kk += KSTEP) {
            const int kq = kk + t * KPT;  // this thread's first k in the step (permuted order)
            if constexpr (TF) {
                unsigned bh[NT][2], bl[NT][2];
#pragma unroll
                for (int j = 0; j < NT; ++j) {
                    const int n = wn * WN + j * 8 + g;
                    const float2 v = *reinterpret_cast<const float2*>(Bs + TR::offset(n, kq));
                    bh[j][0] = ptx::to_tf32(v.x);
                    bh[j][1] = ptx::to_tf32(v.y);
                    if constexpr (X3) {
                        bl[j][0] = ptx::to_tf32(v.x - __uint_as_float(bh[j][0]));
                        bl[j][1] = ptx::to_tf32(v.y - __uint_as_float(bh[j][1]));
                    }
                }
#pragma unroll
                for (int i = 0; i < MT; ++i) {
                    const int r = wm * WM + i * 16 + g;
                    const float2 v0 = *reinterpret_cast<const float2*>(As + TR::offset(r, kq));
                    const float2 v1 = *reinterpret_cast<const float2*>(As + TR::offset(r + 8, kq));
                    unsigned ah[4] = {ptx::to_tf32(v0.x), ptx::to_tf32(v1.x), ptx::to_tf32(v0.y), ptx::to_tf32(v1.y)};
                    if constexpr (X3) {
                        unsigned al[4] = {ptx::to_tf32(v0.x - __uint_as_float(ah[0])),
                                          ptx::to_tf32(v1.x - __uint_as_float(ah[1])),
                                          ptx::to_tf32(v0.y - __uint_as_float(ah[2])),
                                          ptx::to_tf32(v1.y - __uint_as_float(ah[3]))};
#pragma unroll
                        for (int j = 0; j < NT; ++j) {
                            ptx::mma_tf32(cacc[i][j], al, bh[j]);
                            ptx::mma_tf32(cacc[i][j], ah, bl[j]);
                            ptx::mma_tf32(cacc[i][j], ah, bh[j]);
                        }
                    } else {
#pragma unroll
                        for (int j = 0; j < NT; ++j) ptx::mma_tf32(cacc[i][j], ah, bh[j]);
                    }
                }
            } else if constexpr (MODE == Mode::BF16) {  // fp32 operands rounded to bf16
                unsigned b[NT][2];
#pragma unroll
                for (int j = 0; j < NT; ++j) {
                    const int n = wn * WN + j * 8 + g;
                    const float4 v = *reinterpret_cast<const float4*>(Bs + TR::offset(n, kq));
                    b[j][0] = cf::pack2<__nv_bfloat16>(v.x, v.y);
                    b[j][1] = cf::pack2<__nv_bfloat16>(v.z, v.w);
                }
#pragma unroll
                for (int i = 0; i < MT; ++i) {
                    const int r = wm * WM + i * 16 + g;
                    const float4 v0 = *reinterpret_cast<const float4*>(As + TR::offset(r, kq));
                    const float4 v1 = *reinterpret_cast<const float4*>(As + TR::offset(r + 8, kq));
                    unsigned a[4] = {cf::pack2<__nv_bfloat16>(v0.x, v0.y), cf::pack2<__nv_bfloat16>(v1.x, v1.y),
                                     cf::pack2<__nv_bfloat16>(v0.z, v0.w), cf::pack2<__nv_bfloat16>(v1.z, v1.w)};
#pragma unroll
                    for (int j = 0; j < NT; ++j) ptx::mma16<__nv_bfloat16>::run(cacc[i][j], a, b[j]);
                }
            } else {  // NATIVE16: half or bf16 inputs
                unsigned b[NT][2];
#pragma unroll
                for (int j = 0; j < NT; ++j) {
                    const int n = wn * WN + j * 8 + g;
                    const uint2 v = *reinterpret_cast<const uint2*>(Bs + TR::offset(n, kq));
                    b[j][0] = v.x;
                    b[j][1] = v.y;
                }
#pragma unroll
                for (int i = 0; i < MT; ++i) {
                    const int r = wm * WM + i * 16 + g;
                    const uint2 v0 = *reinterpret_cast<const uint2*>(As + TR::offset(r, kq));
                    const uint2 v1 = *reinterpret_cast<const uint2*>(As + TR::offset(r + 8, kq));
                    unsigned a[4] = {v0.x, v1.x, v0.y, v1.y};
#pragma unroll
                    for (int j = 0; j < NT; ++j) ptx::mma16<T>::run(cacc[i][j], a, b[j]);
                }
            }
        }
        if constexpr (X3) {
#pragma unroll
            for (int i = 0; i < MT; ++i)
#pragma unroll
                for (int j = 0; j < NT; ++j)
#pragma unroll
                    for (int q = 0; q < 4; ++q) acc[i][j][q] += tacc[i][j][q];
        }
    }
    ptx::cp_async_wait<0>();
    __syncthreads();  // pipeline smem is reused below

    if (!epi::split_exchange<float, NACC>(&acc[0][0][0], ws, tile, splits, tid, THREADS, epoch, cf::BlockSync())) return;

    // Epilogue: bias + sigmoid + row sums over this block's valid columns, in a fixed order.
    float bv[NT][2];
    bool nv[NT][2];
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int q = 0; q < 2; ++q) {
            const int n = n0 + wn * WN + j * 8 + 2 * t + q;
            nv[j][q] = n < N;
            bv[j][q] = (bias != nullptr && n < N) ? cf::to_acc(bias[n]) : 0.0f;
        }
    float* red = reinterpret_cast<float*>(smem_raw);  // [WARPS_N][BM]
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float s = 0.0f;
#pragma unroll
            for (int j = 0; j < NT; ++j)
#pragma unroll
                for (int q = 0; q < 2; ++q)
                    if (nv[j][q]) {
                        const float z = acc[i][j][2 * h + q] + bv[j][q];
                        s += cf::sigmoid(z);
                        const int row = m0 + wm * WM + i * 16 + h * 8 + g;
                        if (SAVE && row < B)
                            saved[(long long)row * N + n0 + wn * WN + j * 8 + 2 * t + q] =
                                cf::from_acc<T>(cf::dsigmoid(z));
                    }
            s += __shfl_xor_sync(0xffffffffu, s, 1);
            s += __shfl_xor_sync(0xffffffffu, s, 2);
            if (t == 0) red[wn * BM + wm * WM + i * 16 + h * 8 + g] = s;
        }
    __syncthreads();
    auto row_sum = [&](int r) {
        float s = 0.0f;
#pragma unroll
        for (int q = 0; q < WARPS_N; ++q) s += red[q * BM + r];
        return s;
    };
    epi::finish_rows<T, float>(tile, ws, m0, BM, B, splits, out, row_sum, tid, THREADS, epoch, cf::BlockSync());
}

}  // namespace fused
