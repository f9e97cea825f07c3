// Kernels of the backward pass (cupy_fused/backward.py) besides its GEMMs.
//
// bw::sigmoid_grad<A, T, SAVED>: over a (rows, cols) block (accumulator type A; src row stride lds, z ldz),
//     z[r, j] = gz[r, j] = g[r] * sigmoid'(src[r, j] + bias[j]),  and  grad_b[j] = sum_r gz[r, j]  (grad_b non-null),
//   with cf::dsigmoid; src may be z itself (the recomputed block, in place). SAVED: src holds sigmoid'(z) already
//   (saved by the forward), gz[r, j] = g[r] * src[r, j]; src is only read.
//   A block owns 32 columns; its 8 row lanes take every 8th row, and their sums are added in lane order: grad_b is
//   bit-identical from run to run.
// bw::convert<From, To>: dst = src over a (rows, cols) block with row strides lds, ldd (half <-> float copies).
#include "common.cuh"

namespace bw {

template <typename A, typename T, bool SAVED>
__global__ void __launch_bounds__(256)
sigmoid_grad(const A* src, long long lds, A* z, long long ldz, const T* __restrict__ bias, const A* __restrict__ g,
             A* __restrict__ grad_b, long long rows, long long cols) {
    __shared__ A sums[8][33];
    const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
    const long long j = (long long)blockIdx.x * 32 + tx;
    A acc = A(0);
    if (j < cols) {
        const A b = bias != nullptr ? A(cf::to_acc(bias[j])) : A(0);
        for (long long r = ty; r < rows; r += 8) {
            const A v = src[r * lds + j];
            const A gz = g[r] * (SAVED ? v : cf::dsigmoid(v + b));
            z[r * ldz + j] = gz;
            acc += gz;
        }
    }
    if (grad_b == nullptr) return;
    sums[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && j < cols) {
        A s = A(0);
#pragma unroll
        for (int i = 0; i < 8; ++i) s += sums[i][tx];
        grad_b[j] = s;
    }
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

}  // namespace bw
