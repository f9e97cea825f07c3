// Kernels of the backward pass (cupy_fused/backward.py) besides its GEMMs.
//
// bw::sigmoid_grad<A, T, SAVED>: over a (rows, cols) block (accumulator type A; src row stride lds, z ldz),
//     z[r, j] = gz[r, j] = g[r] * sigmoid'(src[r, j] + bias[j])
//   with cf::dsigmoid; src may be z itself (the recomputed block, in place). SAVED: src holds sigmoid'(z) already
//   (saved by the forward), gz[r, j] = g[r] * src[r, j]; src is only read. Elementwise: blocks over rows, threads
//   over columns.
// bw::ones<A>: p[0 .. n) = 1 (the vector that turns grad_b = gz.T @ 1 into a GEMV).
// bw::convert<From, To>: dst = src over a (rows, cols) block with row strides lds, ldd (half <-> float copies).
// bw::transpose<A>: dst[c * ldd + r] = src[r * lds + c] over a (rows, cols) block, 32 x 32 tiles through shared
//   memory (both sides coalesced): the K-major copies that the tf32x3 GEMMs read (x.T, gz.T, W.T).
#include "common.cuh"

namespace bw {

template <typename A, typename T, bool SAVED>
__global__ void __launch_bounds__(256)
sigmoid_grad(const A* src, long long lds, A* z, long long ldz, const T* __restrict__ bias, const A* __restrict__ g,
             long long rows, long long cols) {
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {  // a block per row at a time: no index division
        const A gr = g[r];
        const A* s = src + r * lds;
        A* d = z + r * ldz;
        for (long long j = threadIdx.x; j < cols; j += blockDim.x) {
            const A b = (!SAVED && bias != nullptr) ? A(cf::to_acc(bias[j])) : A(0);
            d[j] = gr * (SAVED ? s[j] : cf::dsigmoid(s[j] + b));
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
