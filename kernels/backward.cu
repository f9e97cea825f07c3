// Kernels of the backward pass (cupy_fused/backward.py) besides its GEMMs.
//
// bw::sigmoid_grad<A, T, SAVED>: over a (rows, cols) block (accumulator type A; src row stride lds),
//     gz[r, j] = g[r] * sigmoid'(src[r, j] + bias[j])
//   with cf::dsigmoid, written row-major to z (row stride ldz) and transposed to zt (zt[j * ldzt + r]), each when
//   non-null: z is what grad_x = gz @ W reads, zt the K-major operand of grad_W = gz.T @ x (a GEMM over the batch
//   reads it without transposing tiles). src may be z itself (the recomputed block, in place). SAVED: src holds
//   sigmoid'(z) already (saved by the forward), gz[r, j] = g[r] * src[r, j]; src is only read. Tiles of 64 rows x
//   32 columns: a warp reads 32 consecutive columns of a row (8 rows a thread, all loads issued before the first
//   use), and writes zt through shared memory, 32 consecutive rows of a column at a time.
// bw::ones<A>: p[0 .. n) = 1 (the vector that turns grad_b = gz.T @ 1 into a GEMV).
// bw::convert<From, To>: dst = src over a (rows, cols) block with row strides lds, ldd (half <-> float copies).
// bw::transpose<A>: dst[c * ldd + r] = src[r * lds + c] over a (rows, cols) block, 32 x 32 tiles through shared
//   memory (both sides coalesced): the K-major copies that the tf32x3 GEMMs read (x.T, W.T).
#include "common.cuh"

namespace bw {

template <typename A, typename T, bool SAVED>
__global__ void __launch_bounds__(256)
sigmoid_grad(const A* src, long long lds, A* z, long long ldz, A* __restrict__ zt, long long ldzt,
             const T* __restrict__ bias, const A* __restrict__ g, long long rows, long long cols) {
    constexpr int TR = 64, TC = 32, PER = TR / 8;  // 8 warps: warp w holds rows w, w + 8, ... of the tile
    __shared__ A tile[TR][TC + 1];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const long long tiles_c = (cols + TC - 1) / TC, tiles = (rows + TR - 1) / TR * tiles_c;
    for (long long t = blockIdx.x; t < tiles; t += gridDim.x) {
        const long long r0 = t / tiles_c * TR, c = t % tiles_c * TC + lane;
        const bool live_c = c < cols;
        A v[PER];
#pragma unroll
        for (int i = 0; i < PER; ++i) {
            const long long r = r0 + warp + 8 * i;
            v[i] = (live_c && r < rows) ? src[r * lds + c] : A(0);
        }
        const A b = (!SAVED && bias != nullptr && live_c) ? A(cf::to_acc(bias[c])) : A(0);
#pragma unroll
        for (int i = 0; i < PER; ++i) {
            const long long r = r0 + warp + 8 * i;
            const A gz = r < rows ? g[r] * (SAVED ? v[i] : cf::dsigmoid(v[i] + b)) : A(0);
            if (z != nullptr && live_c && r < rows) z[r * ldz + c] = gz;
            tile[warp + 8 * i][lane] = gz;
        }
        if (zt != nullptr) {
            __syncthreads();
#pragma unroll
            for (int i = 0; i < PER; ++i) {  // 64 (column, half of the rows) pairs, 8 a warp
                const int pair = 8 * i + warp, tc = pair >> 1, tr = (pair & 1) * 32 + lane;
                if (t % tiles_c * TC + tc < cols && r0 + tr < rows)
                    zt[(t % tiles_c * TC + tc) * ldzt + r0 + tr] = tile[tr][tc];
            }
            __syncthreads();
        }
    }
}

template <typename A>
__global__ void __launch_bounds__(256) ones(A* __restrict__ p, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        p[i] = A(1);
}

template <typename From, typename To>
__global__ void __launch_bounds__(256)
convert(const From* __restrict__ src, long long lds, To* __restrict__ dst, long long ldd, long long rows,
        long long cols) {
    const long long total = rows * cols;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
        const long long r = i / cols, c = i % cols;
        dst[r * ldd + c] = cf::from_acc<To>(cf::to_acc(src[r * lds + c]));
    }
}

template <typename A>
__global__ void __launch_bounds__(256)
transpose(const A* __restrict__ src, long long lds, A* __restrict__ dst, long long ldd, long long rows,
          long long cols) {
    __shared__ A tile[32][33];
    const long long tiles_c = (cols + 31) / 32, tiles = (rows + 31) / 32 * tiles_c;
    const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;  // 8 rows of 32 threads
    for (long long t = blockIdx.x; t < tiles; t += gridDim.x) {
        const long long r0 = t / tiles_c * 32, c0 = t % tiles_c * 32;
        for (int i = ty; i < 32; i += 8)
            if (r0 + i < rows && c0 + tx < cols) tile[i][tx] = src[(r0 + i) * lds + c0 + tx];
        __syncthreads();
        for (int i = ty; i < 32; i += 8)
            if (c0 + i < cols && r0 + tx < rows) dst[(c0 + i) * ldd + r0 + tx] = tile[tx][i];
        __syncthreads();
    }
}

}  // namespace bw
