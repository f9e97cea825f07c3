// Fused out[b] = sum_n sigmoid(x[b] . W[n] + bias[n]) on CUDA cores, for larger batches where no tensor-core mode
// applies: fp32 "ieee" with method="fused", fp64, and GPUs without tensor cores (below compute capability 8.0).
//
// fused::fma_tile<T, SAVE>: a 64 x 64 tile per block, 256 threads, 4 x 4 outputs per thread, element loads with bounds
// checks (any alignment), accumulation in cf::acc<T> (fp32, fp64 for double). Split-K and the epilogue are the
// shared ones (epilogue.cuh).
#include "common.cuh"
#include "epilogue.cuh"

namespace fused {

template <typename T, bool SAVE>
__global__ void __launch_bounds__(256)
fma_tile(const T* __restrict__ x, long long ldx, const T* __restrict__ w, long long ldw, const T* __restrict__ bias,
         unsigned char* __restrict__ workspace, T* __restrict__ out, T* __restrict__ saved, int B,
         int N, int K, int splits,
         long long k_split, int group_m, unsigned long long epoch) {
    using A = typename cf::acc<T>::type;
    constexpr int BM = 64, BN = 64, BK = 16, THREADS = 256;
    __shared__ A As[BK][BM + 4];
    __shared__ A Bs[BK][BN + 4];
    __shared__ A red[BM];
    const epi::Tile tile = epi::tile_of(B, N, BM, BN, splits, group_m);
    const epi::Workspace<A> ws = epi::workspace_of<A>(workspace, tile, B, splits);
    const int m0 = tile.tm * BM, n0 = tile.tn * BN;
    const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    const long long kb = (long long)tile.s * k_split, ke = min((long long)K, kb + k_split);

    A acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = A(0);

    for (long long k0 = kb; k0 < ke; k0 += BK) {
#pragma unroll
        for (int p = 0; p < (BM * BK) / THREADS; ++p) {
            const int e = tid + p * THREADS, r = e / BK, k = e % BK;
            const long long gk = k0 + k;
            const int gr = m0 + r, gn = n0 + r;
            As[k][r] = (gr < B && gk < ke) ? cf::to_acc(x[(long long)gr * ldx + gk]) : A(0);
            Bs[k][r] = (gn < N && gk < ke) ? cf::to_acc(w[(long long)gn * ldw + gk]) : A(0);
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

    if (!epi::split_exchange<A, 16>(&acc[0][0], ws, tile, splits, tid, THREADS, epoch, cf::BlockSync())) return;

    A bv[4];
    bool nv[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int n = n0 + tx + 16 * j;
        nv[j] = n < N;
        bv[j] = (bias != nullptr && n < N) ? A(cf::to_acc(bias[n])) : A(0);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        A s = A(0);
#pragma unroll
        for (int j = 0; j < 4; ++j)
            if (nv[j]) {
                const A z = acc[i][j] + bv[j];
                s += cf::sigmoid(z);
                if (SAVE && m0 + ty * 4 + i < B)
                    saved[(long long)(m0 + ty * 4 + i) * N + n0 + tx + 16 * j] = cf::from_acc<T>(cf::dsigmoid(z));
            }
#pragma unroll
        for (int off = 8; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
        if (tx == 0) red[ty * 4 + i] = s;
    }
    __syncthreads();
    epi::finish_rows<T, A>(tile, ws, m0, BM, B, splits, out, [&](int r) { return red[r]; }, tid, THREADS, epoch,
                           cf::BlockSync());
}

}  // namespace fused
