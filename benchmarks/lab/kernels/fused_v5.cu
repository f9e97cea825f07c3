// Fused out[b] = sum_n sigmoid(sum_k x[b,k] * W[n,k] + bias[n]).
//
// Two kernel families plus a fixed-order reduction:
//   fls_mma<T, MODE, BM, BN, WM, WN, STAGES, MINB, ALIGNED>  tensor cores (mma.sync, sm_80+)
//   fls_fma<T>                                                 CUDA cores (fp32 "ieee", fp64, any arch)
//   fls_reduce<T>                                              out[b] = sum_j partial[b, j], j ascending
// Each block computes a BM x BN tile of x @ W^T in registers, applies bias + sigmoid, sums its columns and writes
// one partial per row to partial[b * n_tiles + tile_n] (accumulator dtype). The B x N product never reaches memory.
// When there is a single N tile the block writes out[b] directly and no reduction kernel is needed.
// Every sum runs in a fixed order, so results are bit-identical from run to run.
#include "common.cuh"

namespace fls {

// MODE values (float inputs pick one; 16-bit inputs use NATIVE16).
enum { TF32 = 1, TF32X3 = 2, BF16 = 3, NATIVE16 = 4, TF32X3_PROMOTE = 5 };
// TF32X3_PROMOTE: as TF32X3, but each k tile (32 values of k) accumulates from zero in registers and is then added to
// the running sums with an ordinary (round-to-nearest) fp32 add, so that the tensor cores' accumulation rounding acts
// on small partial sums only.

__device__ __forceinline__ unsigned smem_u32(const void* p) {
    return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// 16-byte async copy global -> shared; bytes in [0, 16] are read, the rest zero-filled.
__device__ __forceinline__ void cp_async16(unsigned dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// fp32 -> tf32, round to nearest with ties away from zero (the rounding of cvt.rna.tf32.f32), low 13 bits cleared.
// Done with integer ops (add half an ulp of tf32 to the magnitude, then truncate): two cheap instructions, and the
// cleared low bits make hi + lo splits exact. Inf stays inf; canonical NaN stays NaN; a finite value that rounds past
// FLT_MAX becomes inf, as with cvt.rna.
__device__ __forceinline__ unsigned to_tf32(float v) {
    return (__float_as_uint(v) + 0x1000u) & 0xffffe000u;
}

__device__ __forceinline__ unsigned pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x = lo (low 16 bits), .y = hi
    return *reinterpret_cast<unsigned*>(&v);
}

__device__ __forceinline__ void mma_tf32(float (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <typename T> struct mma16;
template <> struct mma16<__nv_bfloat16> {
    static __device__ __forceinline__ void run(float (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
};
template <> struct mma16<__half> {
    static __device__ __forceinline__ void run(float (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
};

template <bool FIRST, typename A> __device__ __forceinline__ A& pick(A& first, A& second) {
    if constexpr (FIRST) return first; else return second;
}

template <typename T> __device__ __forceinline__ T zero_of() {
    return cf::from_acc<T>(typename cf::acc<T>::type(0));
}

// Block index -> (tile_m, tile_n), grouping `group_m` M tiles together so that the blocks resident at one time
// share x rows and W rows in L2 (for B = 128 there is one M tile and this is plain N order).
__device__ __forceinline__ void tile_coords(int num_m, int num_n, int group_m, int& tm, int& tn) {
    const int pid = blockIdx.x;
    const int width = group_m * num_n;
    const int first_m = (pid / width) * group_m;
    const int gsize = min(num_m - first_m, group_m);
    const int in_group = pid - (pid / width) * width;
    tm = first_m + in_group % gsize;
    tn = in_group / gsize;
}

// ------------------------------------------------------------------------------------------------------------------
// Tensor-core kernel.
// Shared memory per stage: A tile BM x BK and B tile BN x BK of T, each row exactly 128 bytes (BK = 128/sizeof(T)),
// no padding: the eight 16-byte chunks of a row are XOR-swizzled by the row index so that fragment loads are free
// of bank conflicts. The k index inside an mma step is permuted identically for A and B (a dot product does not care),
// so every thread reads its KSTEP/4 consecutive k values with one 8- or 16-byte shared load.
// ------------------------------------------------------------------------------------------------------------------
template <typename T, int MODE> struct mma_traits {
    static constexpr int BK = 128 / (int)sizeof(T);           // elements per smem row (128 bytes)
    static constexpr int EPC = 16 / (int)sizeof(T);           // elements per 16-byte chunk
    static constexpr int KSTEP = (MODE == TF32 || MODE == TF32X3 || MODE == TF32X3_PROMOTE) ? 8 : 16;
    static constexpr int KPT = KSTEP / 4;                     // consecutive k values per thread per step
    // chunk swizzle: 8-byte loads (tf32 fp32, native 16-bit) use (row&3)<<1; 16-byte loads (bf16 from fp32) (row&1)<<2
    static __device__ __forceinline__ int swz(int row) {
        return (MODE == BF16) ? ((row & 1) << 2) : ((row & 3) << 1);
    }
    static __device__ __forceinline__ int offset(int row, int k) {   // element offset inside a tile
        return row * BK + (((k / EPC) ^ swz(row)) * EPC) + (k % EPC);
    }
};

template <typename T, int MODE, int BM, int BN, int WM, int WN, int STAGES, int MINB, bool ALIGNED>
__global__ void __launch_bounds__((BM / WM) * (BN / WN) * 32, MINB)
fls_mma(const T* __restrict__ x, long long ldx, const T* __restrict__ w, long long ldw, const T* __restrict__ bias,
        float* __restrict__ partial, T* __restrict__ out, int B, int N, int K, int group_m) {
    constexpr bool PROMOTE = MODE == TF32X3_PROMOTE;
    constexpr int M = PROMOTE ? TF32X3 : MODE;  // arithmetic mode
    using TR = mma_traits<T, M>;
    constexpr int BK = TR::BK, EPC = TR::EPC, KSTEP = TR::KSTEP, KPT = TR::KPT;
    constexpr int WARPS_M = BM / WM, WARPS_N = BN / WN;
    constexpr int THREADS = WARPS_M * WARPS_N * 32;
    constexpr int MT = WM / 16, NT = WN / 8;
    constexpr int A_ELEMS = BM * BK, B_ELEMS = BN * BK, STAGE_ELEMS = A_ELEMS + B_ELEMS;
    constexpr int CPR = BK / EPC;  // 16-byte chunks per row (8)
    static_assert(BM % WM == 0 && BN % WN == 0 && WM % 16 == 0 && WN % 8 == 0, "tile shape");
    static_assert((BM * CPR) % THREADS == 0 && (BN * CPR) % THREADS == 0, "loader shape");
    static_assert(STAGES >= 2, "stages");
    static_assert((THREADS / CPR) % 4 == 0 && BM % (THREADS / CPR) == 0 && BN % (THREADS / CPR) == 0, "loader rows");

    extern __shared__ __align__(128) unsigned char smem_raw[];
    T* smem = reinterpret_cast<T*>(smem_raw);

    const int num_m = (B + BM - 1) / BM, num_n = (N + BN - 1) / BN;
    int tm, tn;
    tile_coords(num_m, num_n, group_m, tm, tn);
    const int m0 = tm * BM, n0 = tn * BN;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp % WARPS_M, wn = warp / WARPS_M;
    const int g = lane >> 2, t = lane & 3;
    const int KT = (K + BK - 1) / BK;

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
                cp_async16(smem_u32(As + lsoff + i * RPP * BK), ok ? xsrc + i * xstep + k0 : x, ok ? kbytes : 0);
            }
#pragma unroll
            for (int i = 0; i < BN / RPP; ++i) {
                const bool ok = n0 + lrow + i * RPP < N && kbytes > 0;
                cp_async16(smem_u32(Bs + lsoff + i * RPP * BK), ok ? wsrc + i * wstep + k0 : w, ok ? kbytes : 0);
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
    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < KT) load_tile(s, s);
        cp_async_commit();
    }

    for (int kt = 0; kt < KT; ++kt) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        {
            const int nk = kt + STAGES - 1;
            if (nk < KT) load_tile(nk % STAGES, nk);
            cp_async_commit();
        }
        const T* As = smem + (kt % STAGES) * STAGE_ELEMS;
        const T* Bs = As + A_ELEMS;
        float tacc[MT][NT][4];
        if constexpr (PROMOTE) {
#pragma unroll
            for (int i = 0; i < MT; ++i)
#pragma unroll
                for (int j = 0; j < NT; ++j)
#pragma unroll
                    for (int q = 0; q < 4; ++q) tacc[i][j][q] = 0.0f;
        }
        auto& cacc = pick<PROMOTE>(tacc, acc);  // where this k tile accumulates

#pragma unroll
        for (int kk = 0; kk < BK; kk += KSTEP) {
            const int kq = kk + t * KPT;  // this thread's first k in the step (permuted order)
            if constexpr (M == TF32 || M == TF32X3) {
                unsigned bh[NT][2], bl[NT][2];
#pragma unroll
                for (int j = 0; j < NT; ++j) {
                    const int n = wn * WN + j * 8 + g;
                    const float2 v = *reinterpret_cast<const float2*>(Bs + TR::offset(n, kq));
                    bh[j][0] = to_tf32(v.x);
                    bh[j][1] = to_tf32(v.y);
                    if constexpr (M == TF32X3) {
                        bl[j][0] = to_tf32(v.x - __uint_as_float(bh[j][0]));
                        bl[j][1] = to_tf32(v.y - __uint_as_float(bh[j][1]));
                    }
                }
#pragma unroll
                for (int i = 0; i < MT; ++i) {
                    const int r = wm * WM + i * 16 + g;
                    const float2 v0 = *reinterpret_cast<const float2*>(As + TR::offset(r, kq));
                    const float2 v1 = *reinterpret_cast<const float2*>(As + TR::offset(r + 8, kq));
                    unsigned ah[4] = {to_tf32(v0.x), to_tf32(v1.x), to_tf32(v0.y), to_tf32(v1.y)};
                    if constexpr (M == TF32X3) {
                        unsigned al[4] = {to_tf32(v0.x - __uint_as_float(ah[0])), to_tf32(v1.x - __uint_as_float(ah[1])),
                                          to_tf32(v0.y - __uint_as_float(ah[2])), to_tf32(v1.y - __uint_as_float(ah[3]))};
#pragma unroll
                        for (int j = 0; j < NT; ++j) {
                            mma_tf32(cacc[i][j], al, bh[j]);
                            mma_tf32(cacc[i][j], ah, bl[j]);
                            mma_tf32(cacc[i][j], ah, bh[j]);
                        }
                    } else {
#pragma unroll
                        for (int j = 0; j < NT; ++j) mma_tf32(cacc[i][j], ah, bh[j]);
                    }
                }
            } else if constexpr (M == BF16) {  // fp32 operands rounded to bf16
                unsigned b[NT][2];
#pragma unroll
                for (int j = 0; j < NT; ++j) {
                    const int n = wn * WN + j * 8 + g;
                    const float4 v = *reinterpret_cast<const float4*>(Bs + TR::offset(n, kq));
                    b[j][0] = pack_bf16(v.x, v.y);
                    b[j][1] = pack_bf16(v.z, v.w);
                }
#pragma unroll
                for (int i = 0; i < MT; ++i) {
                    const int r = wm * WM + i * 16 + g;
                    const float4 v0 = *reinterpret_cast<const float4*>(As + TR::offset(r, kq));
                    const float4 v1 = *reinterpret_cast<const float4*>(As + TR::offset(r + 8, kq));
                    unsigned a[4] = {pack_bf16(v0.x, v0.y), pack_bf16(v1.x, v1.y), pack_bf16(v0.z, v0.w),
                                     pack_bf16(v1.z, v1.w)};
#pragma unroll
                    for (int j = 0; j < NT; ++j) mma16<__nv_bfloat16>::run(cacc[i][j], a, b[j]);
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
                    for (int j = 0; j < NT; ++j) mma16<T>::run(cacc[i][j], a, b[j]);
                }
            }
        }
        if constexpr (PROMOTE) {
#pragma unroll
            for (int i = 0; i < MT; ++i)
#pragma unroll
                for (int j = 0; j < NT; ++j)
#pragma unroll
                    for (int q = 0; q < 4; ++q) acc[i][j][q] += tacc[i][j][q];
        }
    }
    cp_async_wait<0>();
    __syncthreads();  // pipeline smem is reused below

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
                    if (nv[j][q]) s += cf::sigmoid(acc[i][j][2 * h + q] + bv[j][q]);
            s += __shfl_xor_sync(0xffffffffu, s, 1);
            s += __shfl_xor_sync(0xffffffffu, s, 2);
            if (t == 0) red[wn * BM + wm * WM + i * 16 + h * 8 + g] = s;
        }
    __syncthreads();
    for (int r = tid; r < BM; r += THREADS) {
        const int gr = m0 + r;
        if (gr < B) {
            float s = 0.0f;
#pragma unroll
            for (int q = 0; q < WARPS_N; ++q) s += red[q * BM + r];
            if (num_n == 1)
                out[gr] = cf::from_acc<T>(s);
            else
                partial[(long long)gr * num_n + tn] = s;
        }
    }
}

// ------------------------------------------------------------------------------------------------------------------
// CUDA-core kernel: fp32 "ieee" (plain FMA), fp64 (double accumulation), and the fallback without tensor cores.
// 64 x 64 tile, 256 threads, 4 x 4 outputs per thread, element loads with bounds checks (any alignment).
// ------------------------------------------------------------------------------------------------------------------
template <typename T>
__global__ void __launch_bounds__(256)
fls_fma(const T* __restrict__ x, long long ldx, const T* __restrict__ w, long long ldw, const T* __restrict__ bias,
        typename cf::acc<T>::type* __restrict__ partial, T* __restrict__ out, int B, int N, int K, int group_m) {
    using A = typename cf::acc<T>::type;
    constexpr int BM = 64, BN = 64, BK = 16;
    __shared__ A As[BK][BM + 4];
    __shared__ A Bs[BK][BN + 4];
    const int num_m = (B + BM - 1) / BM, num_n = (N + BN - 1) / BN;
    int tm, tn;
    tile_coords(num_m, num_n, group_m, tm, tn);
    const int m0 = tm * BM, n0 = tn * BN;
    const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;

    A acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = A(0);

    for (int k0 = 0; k0 < K; k0 += BK) {
#pragma unroll
        for (int p = 0; p < (BM * BK) / 256; ++p) {
            const int e = tid + p * 256, r = e / BK, k = e % BK;
            const int gr = m0 + r, gk = k0 + k;
            As[k][r] = (gr < B && gk < K) ? cf::to_acc(x[(long long)gr * ldx + gk]) : A(0);
            const int gn = n0 + r;
            Bs[k][r] = (gn < N && gk < K) ? cf::to_acc(w[(long long)gn * ldw + gk]) : A(0);
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < BK; ++k) {
            A a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) a[i] = As[k][ty * 4 + i];
#pragma unroll
            for (int j = 0; j < 4; ++j) b[j] = Bs[k][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }

    A bv[4];
    bool nv[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int n = n0 + tx + 16 * j;
        nv[j] = n < N;
        bv[j] = (bias != nullptr && n < N) ? cf::to_acc(bias[n]) : A(0);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        A s = A(0);
#pragma unroll
        for (int j = 0; j < 4; ++j)
            if (nv[j]) s += cf::sigmoid(acc[i][j] + bv[j]);
#pragma unroll
        for (int off = 8; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
        const int gr = m0 + ty * 4 + i;
        if (tx == 0 && gr < B) {
            if (num_n == 1)
                out[gr] = cf::from_acc<T>(s);
            else
                partial[(long long)gr * num_n + tn] = s;
        }
    }
}

// ------------------------------------------------------------------------------------------------------------------
// Hopper (sm_90a) TF32 kernel with wgmma: BM = 128 (two consumer warpgroups of 64 rows), BN = 128 or 256, BK = 32,
// operands read by the tensor cores straight from shared memory (128-byte swizzled K-major tiles, the layout that
// the cp.async loader above already writes with swz(row) = row & 7). For rounding to nearest (ROUND), every thread
// rounds the 16-byte chunks it copied itself, in shared memory, before the stage is released to the tensor cores.
// Compiled to a trap on targets without wgmma (the launcher only picks it on sm_90a).
// ------------------------------------------------------------------------------------------------------------------
template <int BN> struct wgmma_tf32;
template <> struct wgmma_tf32<256> {
    static __device__ __forceinline__ void run(float (&d)[128], unsigned long long da, unsigned long long db,
                                               int scale_d = 1) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
        asm volatile(
            "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n256k8.f32.tf32.tf32 "
            "{"
            "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
            "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"
            "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"
            "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,"
            "%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,"
            "%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,"
            "%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,"
            "%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127"
            "}, %128, %129, p, 1, 1;\n}\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
              "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
              "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]),
              "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]),
              "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]),
              "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]),
              "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]),
              "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]),
              "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]),
              "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
              "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]),
              "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]),
              "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]),
              "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]),
              "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]),
              "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]),
              "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]),
              "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
            : "l"(da), "l"(db), "r"(scale_d));
#else
        __trap();
#endif
    }
};
template <> struct wgmma_tf32<128> {
    static __device__ __forceinline__ void run(float (&d)[64], unsigned long long da, unsigned long long db,
                                               int scale_d = 1) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
        asm volatile(
            "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n128k8.f32.tf32.tf32 "
            "{"
            "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
            "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"
            "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"
            "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63"
            "}, %64, %65, p, 1, 1;\n}\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
              "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
              "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]),
              "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]),
              "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]),
              "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]),
              "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]),
              "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]),
              "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
            : "l"(da), "l"(db), "r"(scale_d));
#else
        __trap();
#endif
    }
};

__device__ __forceinline__ unsigned long long gmma_desc_sw128(unsigned smem_addr) {
    // start address (>> 4) in bits 0-13, leading byte offset (unused for swizzled K-major, 1) in 16-29,
    // stride byte offset 1024 B (8 rows of 128 B, >> 4) in 32-45, layout 128B swizzle (1) in bits 62-63.
    return (unsigned long long)((smem_addr & 0x3FFFF) >> 4) | (1ull << 16) | (64ull << 32) | (1ull << 62);
}

__device__ __forceinline__ void wgmma_fence() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit_wait0() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void fence_proxy_async() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// Epilogue of both wgmma kernels for one warpgroup's 64 rows starting at row0: bias, sigmoid, the row sums over this
// block's BN columns, then out[row] (one N tile) or partial[row, tn]. Accumulator layout (per warp, as mma.sync's
// C fragment repeated over n): acc[4j + 2h + q] is row 16 * wq + g + 8h, column n0 + 8j + 2t + q. Every warp holds
// whole rows, so a quad shuffle finishes each row's sum.
template <int BN>
__device__ __forceinline__ void wgmma_epilogue(const float (&acc)[BN / 2], const float* __restrict__ bias,
                                               float* __restrict__ out, float* __restrict__ partial, int row0, int n0,
                                               int tn, int num_n, int B, int N, int wq, int g, int t) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < BN / 8; ++j)
#pragma unroll
            for (int q = 0; q < 2; ++q) {
                const int n = n0 + 8 * j + 2 * t + q;
                if (n < N) s += cf::sigmoid(acc[4 * j + 2 * h + q] + (bias != nullptr ? bias[n] : 0.0f));
            }
        s += __shfl_xor_sync(0xffffffffu, s, 1);
        s += __shfl_xor_sync(0xffffffffu, s, 2);
        const int gr = row0 + wq * 16 + h * 8 + g;
        if (t == 0 && gr < B) {
            if (num_n == 1)
                out[gr] = s;
            else
                partial[(long long)gr * num_n + tn] = s;
        }
    }
}

template <int BN, int STAGES, bool ROUND>
__global__ void __launch_bounds__(256, 1)
fls_wgmma(const float* __restrict__ x, long long ldx, const float* __restrict__ w, long long ldw,
          const float* __restrict__ bias, float* __restrict__ partial, float* __restrict__ out, int B, int N, int K,
          int group_m) {
    constexpr int BM = 128, BK = 32, EPC = 4, CPR = 8, THREADS = 256, RPP = THREADS / CPR;  // 32 rows per pass
    constexpr int A_BYTES = BM * 128, B_BYTES = BN * 128, STAGE_BYTES = A_BYTES + B_BYTES;
    constexpr int NACC = BN / 2;
    static_assert(BN == 128 || BN == 256, "BN");

    extern __shared__ __align__(128) unsigned char smem_raw[];
    // 1024-byte aligned base (the 128-byte swizzle repeats every 8 rows = 1024 bytes); the launcher adds 1 KiB.
    const unsigned raw_addr = smem_u32(smem_raw);
    const unsigned base_addr = (raw_addr + 1023u) & ~1023u;
    unsigned char* smem = smem_raw + (base_addr - raw_addr);

    const int num_m = (B + BM - 1) / BM, num_n = (N + BN - 1) / BN;
    int tm, tn;
    tile_coords(num_m, num_n, group_m, tm, tn);
    const int m0 = tm * BM, n0 = tn * BN;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wg = warp >> 2, wq = warp & 3;  // warpgroup (64-row half of the tile), warp inside it
    const int g = lane >> 2, t = lane & 3;
    const int KT = (K + BK - 1) / BK;

    const int lrow = tid / CPR, lchunk = tid % CPR;
    const float* xsrc = x + (long long)min(m0 + lrow, B - 1) * ldx + lchunk * EPC;
    const float* wsrc = w + (long long)min(n0 + lrow, N - 1) * ldw + lchunk * EPC;
    const long long xstep = (long long)RPP * ldx, wstep = (long long)RPP * ldw;
    const int lsoff = lrow * 128 + ((lchunk ^ (lrow & 7)) * 16);  // byte offset; (lrow + i * RPP) & 7 == lrow & 7

    auto load_tile = [&](int stage, int kt) {
        unsigned char* As = smem + stage * STAGE_BYTES;
        unsigned char* Bs = As + A_BYTES;
        const int k0 = kt * BK;
        const int gk = k0 + lchunk * EPC;
        const int kbytes = max(0, min(K - gk, EPC)) * 4;
#pragma unroll
        for (int i = 0; i < BM / RPP; ++i) {
            const bool ok = m0 + lrow + i * RPP < B && kbytes > 0;
            cp_async16(smem_u32(As + lsoff + i * RPP * 128), ok ? xsrc + i * xstep + k0 : x, ok ? kbytes : 0);
        }
#pragma unroll
        for (int i = 0; i < BN / RPP; ++i) {
            const bool ok = n0 + lrow + i * RPP < N && kbytes > 0;
            cp_async16(smem_u32(Bs + lsoff + i * RPP * 128), ok ? wsrc + i * wstep + k0 : w, ok ? kbytes : 0);
        }
    };
    auto round_tile = [&](int stage) {  // the chunks this thread copied: rna-round to tf32 in place
        unsigned char* As = smem + stage * STAGE_BYTES;
#pragma unroll
        for (int i = 0; i < (BM + BN) / RPP; ++i) {
            uint4* p = reinterpret_cast<uint4*>(As + lsoff + i * RPP * 128);  // A rows then B rows (contiguous)
            uint4 v = *p;
            v.x = (v.x + 0x1000u) & 0xffffe000u;
            v.y = (v.y + 0x1000u) & 0xffffe000u;
            v.z = (v.z + 0x1000u) & 0xffffe000u;
            v.w = (v.w + 0x1000u) & 0xffffe000u;
            *p = v;
        }
    };

    float acc[NACC];
#pragma unroll
    for (int i = 0; i < NACC; ++i) acc[i] = 0.0f;

#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < KT) load_tile(s, s);
        cp_async_commit();
    }
    for (int kt = 0; kt < KT; ++kt) {
        const int stage = kt % STAGES;
        cp_async_wait<STAGES - 2>();
        if constexpr (ROUND) round_tile(stage);
        fence_proxy_async();  // make this thread's shared-memory writes visible to the tensor cores (async proxy)
        __syncthreads();
        {
            const int nk = kt + STAGES - 1;
            if (nk < KT) load_tile(nk % STAGES, nk);
            cp_async_commit();
        }
        const unsigned a_addr = base_addr + stage * STAGE_BYTES + wg * 64 * 128;
        const unsigned b_addr = base_addr + stage * STAGE_BYTES + A_BYTES;
        wgmma_fence();
#pragma unroll
        for (int s = 0; s < BK / 8; ++s)  // k8 steps: +32 bytes inside the swizzled 128-byte rows
            wgmma_tf32<BN>::run(acc, gmma_desc_sw128(a_addr + s * 32), gmma_desc_sw128(b_addr + s * 32));
        wgmma_commit_wait0();
#pragma unroll
        for (int i = 0; i < NACC; ++i) asm volatile("" : "+f"(acc[i])::"memory");
    }
    cp_async_wait<0>();

    wgmma_epilogue<BN>(acc, bias, out, partial, m0 + wg * 64, n0, tn, num_n, B, N, wq, g, t);
}

// ------------------------------------------------------------------------------------------------------------------
// Warp-specialised Hopper kernel (sm_90a): fls_wgmma_ws<MODE, BN, STAGES, PF256>, 384 threads = one producer
// warpgroup + two consumer warpgroups (64 rows each, BM = 128), STAGES-deep ring of 32-wide k tiles guarded by
// mbarriers (full[s]: 128 producer arrivals, empty[s]: 256 consumer arrivals). Loads never wait on the math:
//   producer: for tile j: wait empty (the consumers retired tile j - STAGES), issue the 16-byte cp.async copies
//             (L2::256B prefetch hint when PF256), commit; then for tile j - LAG (LAG = STAGES - 2): wait for its
//             copies, round / split them in place (MODE), fence.proxy.async, arrive on full.
//   consumers: wait full, issue the wgmmas of the tile, commit, wgmma.wait_group 1 (the previous tile's wgmmas have
//             retired) and release the previous tile's stage.
// MODE: WS_TF32 rounds to nearest (ties away, as cvt.rna) in shared memory; WS_TF32_TRUNC leaves the fp32 bits (the
// tensor cores ignore the low 13 bits: truncation; lab only); WS_TF32X3 splits each value into hi / lo tf32 tiles
// (a second set of tiles per stage), 3 wgmmas per k8 step (lo*hi, hi*lo, hi*hi) into a per-k-tile accumulator
// that starts from zero (scale-d = 0) and is added to the running sums with an fp32 add after it retires
// (wgmma.wait_group 0 per k tile: two alternating per-k-tile accumulators would not fit in 168 registers).
// Registers: 168 per thread for all (setmaxnreg 40 made ptxas spill the producer's 24 copy addresses; the
// consumers of the TF32 modes fit in 168 without spills).
// ------------------------------------------------------------------------------------------------------------------
enum { WS_TF32 = 0, WS_TF32_TRUNC = 1, WS_TF32X3 = 2, WS_TF32_REG = 3, WS_TF32X3_REG = 4 };
// WS_TF32_REG: the producer copies through registers instead of cp.async (ld.global.v4, round, st.shared.v4 into
// the swizzled stage), so rounding costs no extra shared-memory pass; HBM latency is covered by prefetch.global.L2
// PF_TILES k tiles ahead, and each chunk's load for the next tile is issued right after the chunk is stored, so that
// a whole stage (48 KiB per block) of loads is always in flight. WS_TF32X3_REG: the same for tf32x3 (the producer
// stores the hi and lo tiles straight from registers).

// 16 bytes of a row from global memory; rem = values of k left in the row from p on (may be <= 0 or > 4).
// (A first version took kbytes = clamp(rem, 0, 4) * 4 and tested kbytes == 16: the compiled code (nvcc 13.0, and
// NVRTC 12.9 on the H100) then used the element path for rem == 4 exactly and dropped the row's last value whenever
// K % 4 == 0 and K > 32. rem is tested unclamped here.)
__device__ __forceinline__ uint4 ld_chunk(const float* p, bool ok, int rem) {
    uint4 v = make_uint4(0u, 0u, 0u, 0u);
    if (ok && rem > 0) {
        if (rem >= 4) {
            asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                         : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
        } else {  // the row's last 1-3 values of k: element loads (a 16-byte load could leave the allocation)
            const unsigned* q = reinterpret_cast<const unsigned*>(p);
            v.x = q[0];
            if (rem > 1) v.y = q[1];
            if (rem > 2) v.z = q[2];
        }
    }
    return v;
}
__device__ __forceinline__ void st_shared16(unsigned addr, uint4 v) {
    asm volatile("st.shared.v4.u32 [%0], {%1,%2,%3,%4};\n" ::"r"(addr), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
                 : "memory");
}
__device__ __forceinline__ void prefetch_l2(const void* p) {
    asm volatile("prefetch.global.L2 [%0];\n" ::"l"(p));
}

__device__ __forceinline__ void cp_async16_pf(unsigned dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ void mbar_init(unsigned addr, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(addr), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(unsigned addr) {
    asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.release.cta.shared::cta.b64 st, [%0];\n}\n" ::"r"(addr)
                 : "memory");
}
__device__ __forceinline__ void mbar_wait(unsigned addr, unsigned parity) {
    asm volatile(
        "{\n.reg .pred p;\nLAB_WAIT:\n"
        "mbarrier.try_wait.parity.acquire.cta.shared::cta.b64 p, [%0], %1;\n"
        "@p bra DONE;\nbra LAB_WAIT;\nDONE:\n}\n" ::"r"(addr), "r"(parity)
        : "memory");
}
template <int N> __device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
#endif

template <int MODE, int BN, int STAGES, bool PF256>
__global__ void __launch_bounds__(384, 1)
fls_wgmma_ws(const float* __restrict__ x, long long ldx, const float* __restrict__ w, long long ldw,
             const float* __restrict__ bias, float* __restrict__ partial, float* __restrict__ out, int B, int N, int K,
             int group_m) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr bool X3 = MODE == WS_TF32X3 || MODE == WS_TF32X3_REG;
    constexpr bool REG = MODE == WS_TF32_REG || MODE == WS_TF32X3_REG;
    constexpr int BM = 128, BK = 32, EPC = 4, CPR = 8, RPP = 128 / CPR;  // producer: 16 rows per pass
    constexpr int A_BYTES = BM * 128, B_BYTES = BN * 128, HI_BYTES = A_BYTES + B_BYTES;
    constexpr int STAGE_BYTES = X3 ? 2 * HI_BYTES : HI_BYTES;  // X3: [A_hi B_hi][A_lo B_lo]
    constexpr int NACC = BN / 2;
    constexpr int LAG = STAGES - 2;  // tiles whose copies stay in flight while the producer rounds an older one
    static_assert(BN == 128 || BN == 256, "BN");
    static_assert(LAG >= 1, "STAGES >= 3");

    extern __shared__ __align__(128) unsigned char smem_raw[];
    const unsigned raw_addr = smem_u32(smem_raw);
    const unsigned base_addr = (raw_addr + 1023u) & ~1023u;  // the launcher adds 1 KiB (+ 256 B of barriers)
    unsigned char* smem = smem_raw + (base_addr - raw_addr);
    const unsigned bar_addr = base_addr + STAGES * STAGE_BYTES;  // full[s] at +8s, empty[s] at +8(STAGES + s)

    const int num_m = (B + BM - 1) / BM, num_n = (N + BN - 1) / BN;
    int tm, tn;
    tile_coords(num_m, num_n, group_m, tm, tn);
    const int m0 = tm * BM, n0 = tn * BN;
    const int tid = threadIdx.x, warp = tid >> 5, wg = warp >> 2;
    const int KT = (K + BK - 1) / BK;

    if (tid == 0) {
#pragma unroll
        for (int s = 0; s < STAGES; ++s) {
            mbar_init(bar_addr + 8 * s, 128);
            mbar_init(bar_addr + 8 * (STAGES + s), 256);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    if (REG && wg == 0) {
        // ---------------- producer warpgroup, register path ----------------
        constexpr int PF_TILES = 4, NCH = (BM + BN) / RPP;  // 24 chunks of 16 bytes per thread per k tile
        const int lrow = tid / CPR, lchunk = tid % CPR;
        const int lsoff = lrow * 128 + ((lchunk ^ (lrow & 7)) * 16);
        const float* xsrc = x + (long long)min(m0 + lrow, B - 1) * ldx + lchunk * EPC;
        const float* wsrc = w + (long long)min(n0 + lrow, N - 1) * ldw + lchunk * EPC;
        const long long xstep = (long long)RPP * ldx, wstep = (long long)RPP * ldw;
        auto src_of = [&](int i, int k0) -> const float* {
            return i < BM / RPP ? xsrc + i * xstep + k0 : wsrc + (i - BM / RPP) * wstep + k0;
        };
        auto ok_of = [&](int i) -> bool {
            return i < BM / RPP ? m0 + lrow + i * RPP < B : n0 + lrow + (i - BM / RPP) * RPP < N;
        };
        auto rem_of = [&](int kt) -> int { return K - (kt * BK + lchunk * EPC); };  // values of k left
        auto prefetch_tile = [&](int kt) {
            if (kt < KT && rem_of(kt) > 0) {
#pragma unroll
                for (int i = 0; i < NCH; ++i)
                    if (ok_of(i)) prefetch_l2(src_of(i, kt * BK));
            }
        };
        for (int p = 0; p < PF_TILES; ++p) prefetch_tile(p);
        uint4 r[NCH];
        {
            const int rem = rem_of(0);
#pragma unroll
            for (int i = 0; i < NCH; ++i) r[i] = ld_chunk(src_of(i, 0), ok_of(i), rem);
        }
        for (int it = 0; it < KT; ++it) {
            const int s = it % STAGES;
            prefetch_tile(it + PF_TILES);
            if (it >= STAGES) mbar_wait(bar_addr + 8 * (STAGES + s), ((it / STAGES) + 1) & 1);
            const unsigned dst = base_addr + s * STAGE_BYTES + lsoff;
            const bool more = it + 1 < KT;
            const int rem = rem_of(it + 1), k0 = (it + 1) * BK;
#pragma unroll
            for (int i = 0; i < NCH; ++i) {
                const uint4 v = r[i];
                uint4 h;
                h.x = (v.x + 0x1000u) & 0xffffe000u;
                h.y = (v.y + 0x1000u) & 0xffffe000u;
                h.z = (v.z + 0x1000u) & 0xffffe000u;
                h.w = (v.w + 0x1000u) & 0xffffe000u;
                st_shared16(dst + i * RPP * 128, h);
                if constexpr (X3) {
                    uint4 l;
                    l.x = to_tf32(__uint_as_float(v.x) - __uint_as_float(h.x));
                    l.y = to_tf32(__uint_as_float(v.y) - __uint_as_float(h.y));
                    l.z = to_tf32(__uint_as_float(v.z) - __uint_as_float(h.z));
                    l.w = to_tf32(__uint_as_float(v.w) - __uint_as_float(h.w));
                    st_shared16(dst + HI_BYTES + i * RPP * 128, l);
                }
                if (more) r[i] = ld_chunk(src_of(i, k0), ok_of(i), rem);
            }
            fence_proxy_async();
            mbar_arrive(bar_addr + 8 * s);
        }
        return;
    }
    if (!REG && wg == 0) {
        // ---------------- producer warpgroup ----------------
        const int lrow = tid / CPR, lchunk = tid % CPR;
        const int lsoff = lrow * 128 + ((lchunk ^ (lrow & 7)) * 16);  // (lrow + i * RPP) & 7 == lrow & 7
        const float* xsrc = x + (long long)min(m0 + lrow, B - 1) * ldx + lchunk * EPC;
        const float* wsrc = w + (long long)min(n0 + lrow, N - 1) * ldw + lchunk * EPC;
        const long long xstep = (long long)RPP * ldx, wstep = (long long)RPP * ldw;
        for (int it = 0; it < KT + LAG; ++it) {
            if (it < KT) {
                const int s = it % STAGES;
                if (it >= STAGES) mbar_wait(bar_addr + 8 * (STAGES + s), ((it / STAGES) + 1) & 1);
                const unsigned As = base_addr + s * STAGE_BYTES + lsoff;
                const int k0 = it * BK, gk = k0 + lchunk * EPC;
                const int kbytes = max(0, min(K - gk, EPC)) * 4;
#pragma unroll
                for (int i = 0; i < BM / RPP; ++i) {
                    const bool ok = m0 + lrow + i * RPP < B && kbytes > 0;
                    const float* src = ok ? xsrc + i * xstep + k0 : x;
                    if constexpr (PF256) cp_async16_pf(As + i * RPP * 128, src, ok ? kbytes : 0);
                    else cp_async16(As + i * RPP * 128, src, ok ? kbytes : 0);
                }
#pragma unroll
                for (int i = 0; i < BN / RPP; ++i) {
                    const bool ok = n0 + lrow + i * RPP < N && kbytes > 0;
                    const float* src = ok ? wsrc + i * wstep + k0 : w;
                    if constexpr (PF256) cp_async16_pf(As + A_BYTES + i * RPP * 128, src, ok ? kbytes : 0);
                    else cp_async16(As + A_BYTES + i * RPP * 128, src, ok ? kbytes : 0);
                }
            }
            cp_async_commit();
            if (it >= LAG) {
                const int s = (it - LAG) % STAGES;
                cp_async_wait<LAG>();
                if constexpr (MODE != WS_TF32_TRUNC) {
                    unsigned char* p0 = smem + s * STAGE_BYTES + lsoff;
#pragma unroll 4
                    for (int i = 0; i < (BM + BN) / RPP; ++i) {  // A rows then B rows (contiguous)
                        uint4* p = reinterpret_cast<uint4*>(p0 + i * RPP * 128);
                        uint4 v = *p, h;
                        h.x = (v.x + 0x1000u) & 0xffffe000u;
                        h.y = (v.y + 0x1000u) & 0xffffe000u;
                        h.z = (v.z + 0x1000u) & 0xffffe000u;
                        h.w = (v.w + 0x1000u) & 0xffffe000u;
                        *p = h;
                        if constexpr (X3) {
                            uint4 l;
                            l.x = to_tf32(__uint_as_float(v.x) - __uint_as_float(h.x));
                            l.y = to_tf32(__uint_as_float(v.y) - __uint_as_float(h.y));
                            l.z = to_tf32(__uint_as_float(v.z) - __uint_as_float(h.z));
                            l.w = to_tf32(__uint_as_float(v.w) - __uint_as_float(h.w));
                            *reinterpret_cast<uint4*>(p0 + HI_BYTES + i * RPP * 128) = l;
                        }
                    }
                }
                fence_proxy_async();  // this thread's shared-memory writes -> visible to the async proxy (wgmma)
                mbar_arrive(bar_addr + 8 * s);
            }
        }
        cp_async_wait<0>();
        return;
    }

    // ---------------- consumer warpgroups ----------------
    const int cwg = wg - 1, wq = warp & 3;
    const int lane = tid & 31, g = lane >> 2, t = lane & 3;
    float acc[NACC];
#pragma unroll
    for (int i = 0; i < NACC; ++i) acc[i] = 0.0f;

    if constexpr (!X3) {
        for (int kt = 0; kt < KT; ++kt) {
            const int s = kt % STAGES;
            mbar_wait(bar_addr + 8 * s, (kt / STAGES) & 1);
            const unsigned a_addr = base_addr + s * STAGE_BYTES + cwg * 64 * 128;
            const unsigned b_addr = base_addr + s * STAGE_BYTES + A_BYTES;
            wgmma_fence();
#pragma unroll
            for (int k8 = 0; k8 < BK / 8; ++k8)
                wgmma_tf32<BN>::run(acc, gmma_desc_sw128(a_addr + k8 * 32), gmma_desc_sw128(b_addr + k8 * 32));
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
            const unsigned a_hi = base_addr + s * STAGE_BYTES + cwg * 64 * 128, a_lo = a_hi + HI_BYTES;
            const unsigned b_hi = base_addr + s * STAGE_BYTES + A_BYTES, b_lo = b_hi + HI_BYTES;
            wgmma_fence();
#pragma unroll
            for (int k8 = 0; k8 < BK / 8; ++k8) {
                wgmma_tf32<BN>::run(tmp, gmma_desc_sw128(a_lo + k8 * 32), gmma_desc_sw128(b_hi + k8 * 32),
                                    k8 == 0 ? 0 : 1);
                wgmma_tf32<BN>::run(tmp, gmma_desc_sw128(a_hi + k8 * 32), gmma_desc_sw128(b_lo + k8 * 32));
                wgmma_tf32<BN>::run(tmp, gmma_desc_sw128(a_hi + k8 * 32), gmma_desc_sw128(b_hi + k8 * 32));
            }
            wgmma_commit();
            wgmma_wait<0>();
            mbar_arrive(bar_addr + 8 * (STAGES + s));
#pragma unroll
            for (int i = 0; i < NACC; ++i) {
                asm volatile("" : "+f"(tmp[i])::"memory");
                acc[i] += tmp[i];
            }
        }
    }

    wgmma_epilogue<BN>(acc, bias, out, partial, m0 + cwg * 64, n0, tn, num_n, B, N, wq, g, t);
#else
    __trap();
#endif
}

// out[b] = sum over j ascending (per lane, then a fixed xor tree) of partial[b, j]; one warp per row.
template <typename T>
__global__ void __launch_bounds__(256)
fls_reduce(const typename cf::acc<T>::type* __restrict__ partial, T* __restrict__ out, int B, int n_tiles) {
    using A = typename cf::acc<T>::type;
    const int row = blockIdx.x * 8 + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= B) return;
    const A* p = partial + (long long)row * n_tiles;
    A s = A(0);
    for (int j = lane; j < n_tiles; j += 32) s += p[j];
    s = cf::warp_sum(s);
    if (lane == 0) out[row] = cf::from_acc<T>(s);
}

}  // namespace fls
