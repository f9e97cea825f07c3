// Kernels of the backward pass (cupy_fused/backward.py) besides its GEMMs.
//
// bw::sigmoid_grad<A, T, SAVED>: over a (rows, cols) block (accumulator type A; src row stride lds),
//     gz[r, j] = g[r] * sigmoid'(src[r, j] + bias[j])
//   with cf::dsigmoid, written row-major to z (row stride ldz) and transposed to zt (zt[j * ldzt + r]), each when
//   non-null: z is what grad_x = gz @ W reads, zt the K-major operand of grad_W = gz.T @ x (a GEMM over the batch
//   reads it without transposing tiles). src may be z itself (the recomputed block, in place). SAVED: src holds
//   sigmoid'(z) already (saved by the forward), gz[r, j] = g[r] * src[r, j]; src is only read. Tiles of 64 rows x
//   32 columns: a warp reads 32 consecutive columns of a row (8 rows a thread, all loads issued before the first
//   use), and writes zt through shared memory, 32 consecutive rows of a column at a time. partial (non-null): each
//   tile's column sums of gz, partial[tile_row * ldp + j] (tile_row = r / 64), in a fixed order.
// bw::column_sums<A, T>: out[j] = sum over tiles t of partial[t * ldp + j], cast to T: grad_b from the partial
//   sums, in a fixed order (deterministic, no atomics).
// bw::convert<From, To>: dst = src over a (rows, cols) block with row strides lds, ldd (half <-> float copies).
// bw::transpose<A>: dst[c * ldd + r] = src[r * lds + c] over a (rows, cols) block, 32 x 32 tiles through shared
//   memory (both sides coalesced): the K-major copies that the tf32x3 GEMMs read (x.T, W.T).
#include "common.cuh"

namespace bw {

template <typename A, typename T, bool SAVED>
__global__ void __launch_bounds__(256)
sigmoid_grad(const A* src, long long lds, A* z, long long ldz, A* __restrict__ zt, long long ldzt,
             A* __restrict__ partial, long long ldp, const T* __restrict__ bias, const A* __restrict__ g,
             long long rows, long long cols) {
    constexpr int TR = 64, TC = 32, PER = TR / 8;  // 8 warps: warp w holds rows w, w + 8, ... of the tile
    __shared__ A tile[TR][TC + 1];
    __shared__ A sums[8][TC];
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
        A sum = A(0);
#pragma unroll
        for (int i = 0; i < PER; ++i) {
            const long long r = r0 + warp + 8 * i;
            const A gz = r < rows ? g[r] * (SAVED ? v[i] : cf::dsigmoid(v[i] + b)) : A(0);
            if (z != nullptr && live_c && r < rows) z[r * ldz + c] = gz;
            tile[warp + 8 * i][lane] = gz;
            sum += gz;
        }
        sums[warp][lane] = sum;
        if (zt == nullptr && partial == nullptr) continue;  // uniform over the block
        __syncthreads();
        if (zt != nullptr) {
#pragma unroll
            for (int i = 0; i < PER; ++i) {  // 64 (column, half of the rows) pairs, 8 a warp
                const int pair = 8 * i + warp, tc = pair >> 1, tr = (pair & 1) * 32 + lane;
                if (t % tiles_c * TC + tc < cols && r0 + tr < rows)
                    zt[(t % tiles_c * TC + tc) * ldzt + r0 + tr] = tile[tr][tc];
            }
        }
        if (partial != nullptr && warp == 0 && live_c) {
            A total = A(0);
#pragma unroll
            for (int w = 0; w < 8; ++w) total += sums[w][lane];
            partial[r0 / TR * ldp + c] = total;
        }
        __syncthreads();
    }
}

template <typename A, typename T>
__global__ void __launch_bounds__(256)
column_sums(const A* __restrict__ partial, long long ldp, long long tiles, T* __restrict__ out, long long cols) {
    __shared__ A part[8][32];  // 32 columns a block; warp w adds tiles w, w + 8, ...; then warp 0 adds the 8
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (long long c0 = (long long)blockIdx.x * 32; c0 < cols; c0 += (long long)gridDim.x * 32) {
        const long long c = c0 + lane;
        A total = A(0);
        if (c < cols) {
#pragma unroll 4
            for (long long t = warp; t < tiles; t += 8) total += partial[t * ldp + c];
        }
        part[warp][lane] = total;
        __syncthreads();
        if (warp == 0 && c < cols) {
            A sum = A(0);
#pragma unroll
            for (int w = 0; w < 8; ++w) sum += part[w][lane];
            out[c] = cf::from_acc<T>(sum);
        }
        __syncthreads();
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
