// Kernels of the backward pass (cupy_fused/backward.py) besides its GEMMs.
//
// bw::sigmoid_grad<A, T, G, SAVED>: over a (rows, cols) block (accumulator type A; src row stride lds),
//     gz[r, j] = g[r * ldg] * sigmoid'(src[r, j] + bias[j])
//   with cf::dsigmoid, in A (g: the caller's grad_out in T, read as it is, ldg any row stride, 0 included),
//   written row-major to z (row stride ldz) in the GEMMs' operand type G (A, or T for half inputs: rounded once
//   there) and transposed to zt (zt[j * ldzt + r], in A), each when non-null: z is what grad_x = gz @ W reads (and
//   for half inputs grad_W too), zt the K-major operand of grad_W = gz.T @ x (a GEMM over the batch reads it
//   without transposing tiles; float32 and float64 only). src may be z itself when G is A (the recomputed block,
//   in place). SAVED: src holds sigmoid'(z) already (saved by the forward in T), gz[r, j] = g[r * ldg] * src[r, j];
//   src is only read. Tiles of 64 rows x 32 columns (x 128 where G is a half type): a warp reads 32 consecutive
//   columns of a row (8 rows a thread, and 4 such column groups for half G, all loads issued before the first
//   use), and writes zt (float32 and float64 only) through shared memory, 32 consecutive rows of a column at a
//   time. partial (non-null): each tile's column sums of gz in A, partial[tile_row * ldp + j] (tile_row = r / 64),
//   in a fixed order.
// bw::column_sums<A, T>: out[j] = sum over tiles t of partial[t * ldp + j], cast to T: grad_b from the partial
//   sums, in a fixed order (deterministic, no atomics).
// bw::convert<From, To>: dst = src over a (rows, cols) block with row strides lds, ldd: half grad_x from its float32
//   sum over chunks, and a strided float32 grad_out as the contiguous column SigmoidGradGemm reads.
// bw::transpose<A>: dst[c * ldd + r] = src[r * lds + c] over a (rows, cols) block, in sigmoid_grad's tiles through
//   shared memory (both sides coalesced): the K-major copies that the tf32x3 GEMMs read (x.T, W.T).
#include "common.cuh"

namespace bw {

// The tiles of sigmoid_grad and transpose: 64 rows x 32 columns (x 4 in sigmoid_grad for half operands), 8 warps,
// warp w holding rows w, w + 8, ... (one column per lane: a warp reads 32 consecutive columns of a row).
constexpr int TR = 64, TC = 32, PER = TR / 8;

// A tile in shared memory (tile[r][c]: row r0 + r, column c0 + c of a (rows, cols) block) stored transposed,
// dst[c * ldd + r], 32 consecutive rows of a column per warp store. The caller synchronizes before and after.
template <typename A>
__device__ __forceinline__ void store_transposed(const A (&tile)[TR][TC + 1], A* __restrict__ dst, long long ldd,
                                                 long long r0, long long c0, long long rows, long long cols) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int i = 0; i < PER; ++i) {  // 64 (column, half of the rows) pairs, 8 a warp
        const int pair = 8 * i + warp, tc = pair >> 1, tr = (pair & 1) * 32 + lane;
        if (c0 + tc < cols && r0 + tr < rows) dst[(c0 + tc) * ldd + r0 + tr] = tile[tr][tc];
    }
}

// X if C, else Y
template <bool C, typename X, typename Y> struct pick { using type = X; };
template <typename X, typename Y> struct pick<false, X, Y> { using type = Y; };

template <typename A, typename T, typename G, bool SAVED>
__global__ void __launch_bounds__(256)
sigmoid_grad(const typename pick<SAVED, T, A>::type* src, long long lds, G* z, long long ldz, A* __restrict__ zt,
             long long ldzt, A* __restrict__ partial, long long ldp, const T* __restrict__ bias,
             const T* __restrict__ g, long long ldg, long long rows, long long cols) {
    // Half operands (G narrower than A: no zt) take V = 4 column groups a lane, tiles of 64 x 128: a warp's load of
    // 32 consecutive 2-byte values is 64 bytes, and 8 of them in flight a thread left the H100's HBM at a third of
    // its bandwidth (benchmarks/NOTES.md, session 17).
    constexpr int V = sizeof(G) < sizeof(A) ? 4 : 1;
    __shared__ A tile[V == 1 ? TR : 1][TC + 1];
    __shared__ A sums[8][TC * V];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const long long tiles_c = (cols + TC * V - 1) / (TC * V), tiles = (rows + TR - 1) / TR * tiles_c;
    for (long long t = blockIdx.x; t < tiles; t += gridDim.x) {
        const long long r0 = t / tiles_c * TR, c0 = t % tiles_c * (TC * V);
        A v[V][PER];
#pragma unroll
        for (int u = 0; u < V; ++u) {
            const long long c = c0 + TC * u + lane;
#pragma unroll
            for (int i = 0; i < PER; ++i) {
                const long long r = r0 + warp + 8 * i;
                v[u][i] = (c < cols && r < rows) ? A(cf::to_acc(src[r * lds + c])) : A(0);
            }
        }
#pragma unroll
        for (int u = 0; u < V; ++u) {
            const long long c = c0 + TC * u + lane;
            const bool live_c = c < cols;
            const A b = (!SAVED && bias != nullptr && live_c) ? A(cf::to_acc(bias[c])) : A(0);
            A sum = A(0);
#pragma unroll
            for (int i = 0; i < PER; ++i) {
                const long long r = r0 + warp + 8 * i;
                // g[r * ldg]: L1 hits after the first column group
                const A gz =
                    r < rows ? A(cf::to_acc(g[r * ldg])) * (SAVED ? v[u][i] : cf::dsigmoid(v[u][i] + b)) : A(0);
                if (z != nullptr && live_c && r < rows) z[r * ldz + c] = cf::from_acc<G>(gz);
                if constexpr (V == 1) tile[warp + 8 * i][lane] = gz;
                sum += gz;
            }
            sums[warp][TC * u + lane] = sum;
        }
        if (zt == nullptr && partial == nullptr) continue;  // uniform over the block
        __syncthreads();
        if constexpr (V == 1) {
            if (zt != nullptr) store_transposed(tile, zt, ldzt, r0, c0, rows, cols);
        }
        if (partial != nullptr && warp == 0) {
#pragma unroll
            for (int u = 0; u < V; ++u) {
                const long long c = c0 + TC * u + lane;
                A total = A(0);
#pragma unroll
                for (int w = 0; w < 8; ++w) total += sums[w][TC * u + lane];
                if (c < cols) partial[r0 / TR * ldp + c] = total;
            }
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
    __shared__ A tile[TR][TC + 1];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const long long tiles_c = (cols + TC - 1) / TC, tiles = (rows + TR - 1) / TR * tiles_c;
    for (long long t = blockIdx.x; t < tiles; t += gridDim.x) {
        const long long r0 = t / tiles_c * TR, c0 = t % tiles_c * TC, c = c0 + lane;
        A v[PER];
#pragma unroll
        for (int i = 0; i < PER; ++i) {  // every load issued before the first store
            const long long r = r0 + warp + 8 * i;
            v[i] = (c < cols && r < rows) ? src[r * lds + c] : A(0);
        }
#pragma unroll
        for (int i = 0; i < PER; ++i) tile[warp + 8 * i][lane] = v[i];
        __syncthreads();
        store_transposed(tile, dst, ldd, r0, c0, rows, cols);
        __syncthreads();
    }
}

}  // namespace bw
