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
//   src is only read. float32 and float64: tiles of 64 rows x 32 columns, a warp reading 32 consecutive columns of
//   a row (8 rows a thread, all loads issued before the first use), zt written through shared memory, 32
//   consecutive rows of a column at a time. Half G (sigmoid_grad_16b): tiles of 64 rows x 256 columns, a lane
//   handling 8 consecutive columns of each of its 8 rows: one 16-byte load a row (two for a float src) and one
//   16-byte store of gz, where the launch's src and z rows are 16-byte aligned (base and row stride; else, and in
//   a group cut by cols, the same values one by one). partial (non-null): each tile's column sums of gz in A,
//   partial[tile_row * ldp + j] (tile_row = r / 64), in one fixed order for every type: a warp's 8 rows in row
//   order, then the 8 warps in order.
// bw::column_sums<A, T>: out[j] = sum over tiles t of partial[t * ldp + j], cast to T: grad_b from the partial
//   sums, in a fixed order (deterministic, no atomics).
// bw::convert<From, To>: dst = src over a (rows, cols) block with row strides lds, ldd: half grad_x from its float32
//   sum over chunks, and a strided float32 grad_out as the contiguous column SigmoidGradGemm reads.
// bw::transpose<A>: dst[c * ldd + r] = src[r * lds + c] over a (rows, cols) block, in sigmoid_grad's tiles through
//   shared memory (both sides coalesced): the K-major copies that the tf32x3 GEMMs read (x.T, W.T).
#include "common.cuh"

namespace bw {

// The tiles of sigmoid_grad and transpose: 64 rows x 32 columns (x 8 in sigmoid_grad for half operands), 8 warps,
// warp w holding rows w, w + 8, ... (one column per lane, 8 for half operands: a warp reads 32 or 256 consecutive
// columns of a row).
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

// 8 consecutive values of S (float or a 2-byte type) held as 2 * sizeof(S) 32-bit words: the registers of one
// 16-byte load of 2-byte values, or two of floats. get / put: value k (a constant after unrolling).
template <typename S> __device__ __forceinline__ float get8(const unsigned (&w)[2 * sizeof(S)], int k) {
    if constexpr (sizeof(S) == 4) return __uint_as_float(w[k]);
    else return cf::to_acc(cf::from_bits16<S>(w[k >> 1] >> (16 * (k & 1))));
}
template <typename S> __device__ __forceinline__ void put8(unsigned (&w)[2 * sizeof(S)], int k, S v) {
    if constexpr (sizeof(S) == 4) w[k] = __float_as_uint(v);
    else w[k >> 1] |= cf::bits16(v) << (16 * (k & 1));  // w starts at 0
}

// sigmoid_grad for half operands (G a 2-byte type, A float, no zt): tiles of 64 rows x 256 columns, warp w holding
// rows w, w + 8, ... and lane l the 8 consecutive columns 8 l .. 8 l + 7 of each (16 bytes of a 2-byte src or gz row:
// one 16-byte load and one 16-byte store a row, two loads where src is the recomputed float z), the 8 rows' loads
// issued before the first use. Where a launch's rows are not all 16-byte aligned (src or z: base address and row
// stride), and for a lane's last group when it is cut by cols, the same values move one by one instead. The column
// sums keep the general kernel's order: each warp's 8 rows in row order, then the 8 warps in order.
template <typename A, typename T, typename G, bool SAVED>
__device__ __forceinline__ void sigmoid_grad_16b(const typename pick<SAVED, T, A>::type* src, long long lds, G* z,
                                                 long long ldz, A* __restrict__ partial, long long ldp,
                                                 const T* __restrict__ bias, const T* __restrict__ g, long long ldg,
                                                 long long rows, long long cols) {
    using S = typename pick<SAVED, T, A>::type;
    static_assert(sizeof(A) == 4 && sizeof(G) == 2 && (sizeof(S) == 2 || sizeof(S) == 4), "half operands only");
    constexpr int W = 2 * sizeof(S), TW = 8 * 32;  // words of a lane's 8 values of S a row; columns of a tile
    __shared__ __align__(16) A sums[8][TW];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    // uniform over the launch: every row's 8-column groups 16-byte aligned
    const bool vec_src = (lds * (long long)sizeof(S)) % 16 == 0 && reinterpret_cast<unsigned long long>(src) % 16 == 0;
    const bool vec_z = (ldz * (long long)sizeof(G)) % 16 == 0 && reinterpret_cast<unsigned long long>(z) % 16 == 0;
    const long long tiles_c = (cols + TW - 1) / TW, tiles = (rows + TR - 1) / TR * tiles_c;
    for (long long t = blockIdx.x; t < tiles; t += gridDim.x) {
        const long long r0 = t / tiles_c * TR, c0 = t % tiles_c * TW, c = c0 + 8 * lane;
        const int live = cols - c >= 8 ? 8 : cols - c > 0 ? int(cols - c) : 0;  // columns c .. c + live - 1 are in
        unsigned v[PER][W];
        A gr[PER];
#pragma unroll
        for (int i = 0; i < PER; ++i) {
            const long long r = r0 + warp + 8 * i;
#pragma unroll
            for (int q = 0; q < W; ++q) v[i][q] = 0u;  // +0 where nothing is read
            if (r < rows) {
                const S* p = src + r * lds + c;
                if (live == 8 && vec_src) {
#pragma unroll
                    for (int q = 0; q < W / 4; ++q) {
                        const uint4 x = reinterpret_cast<const uint4*>(p)[q];
                        v[i][4 * q] = x.x, v[i][4 * q + 1] = x.y, v[i][4 * q + 2] = x.z, v[i][4 * q + 3] = x.w;
                    }
                } else {
#pragma unroll
                    for (int k = 0; k < 8; ++k)
                        if (k < live) put8<S>(v[i], k, p[k]);
                }
            }
            gr[i] = r < rows ? A(cf::to_acc(g[r * ldg])) : A(0);
        }
        A b[8], sum[8];
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            b[k] = (!SAVED && bias != nullptr && k < live) ? A(cf::to_acc(bias[c + k])) : A(0);
            sum[k] = A(0);
        }
#pragma unroll
        for (int i = 0; i < PER; ++i) {
            const long long r = r0 + warp + 8 * i;
            A gz[8];
#pragma unroll
            for (int k = 0; k < 8; ++k) {
                const A x = get8<S>(v[i], k);
                gz[k] = r < rows ? gr[i] * (SAVED ? x : cf::dsigmoid(x + b[k])) : A(0);
                sum[k] += gz[k];
            }
            if (z != nullptr && r < rows) {
                G* p = z + r * ldz + c;
                if (live == 8 && vec_z) {
                    unsigned o[4];
#pragma unroll
                    for (int q = 0; q < 4; ++q) o[q] = cf::pack2<G>(gz[2 * q], gz[2 * q + 1]);
                    // inline PTX: a plain C++ uint4 store came out as 4 st.global.u32, __stwb as a strong one
                    asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"(o[0]), "r"(o[1]), "r"(o[2]),
                                 "r"(o[3])
                                 : "memory");
                } else {
#pragma unroll
                    for (int k = 0; k < 8; ++k)
                        if (k < live) p[k] = cf::from_acc<G>(gz[k]);
                }
            }
        }
        if (partial == nullptr) continue;  // uniform over the block
        float4* row = reinterpret_cast<float4*>(&sums[warp][8 * lane]);
        row[0] = make_float4(sum[0], sum[1], sum[2], sum[3]);
        row[1] = make_float4(sum[4], sum[5], sum[6], sum[7]);
        __syncthreads();
        const long long cj = c0 + threadIdx.x;  // a column a thread: the 8 warps' sums in order
        A total = A(0);
#pragma unroll
        for (int w = 0; w < 8; ++w) total += sums[w][threadIdx.x];
        if (cj < cols) partial[r0 / TR * ldp + cj] = total;
        __syncthreads();
    }
}

template <typename A, typename T, typename G, bool SAVED>
__global__ void __launch_bounds__(256)
sigmoid_grad(const typename pick<SAVED, T, A>::type* src, long long lds, G* z, long long ldz, A* __restrict__ zt,
             long long ldzt, A* __restrict__ partial, long long ldp, const T* __restrict__ bias,
             const T* __restrict__ g, long long ldg, long long rows, long long cols) {
    if constexpr (sizeof(G) < sizeof(A)) {
        // 16 bytes a lane a row: 32 consecutive 2-byte values a warp (64 bytes a load) left the H100's HBM at a third
        // of its bandwidth, and 4 such groups a lane under half of it (benchmarks/NOTES.md, sessions 17 and 18)
        sigmoid_grad_16b<A, T, G, SAVED>(src, lds, z, ldz, partial, ldp, bias, g, ldg, rows, cols);
    } else {
        __shared__ A tile[TR][TC + 1];
        __shared__ A sums[8][TC];
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        const long long tiles_c = (cols + TC - 1) / TC, tiles = (rows + TR - 1) / TR * tiles_c;
        for (long long t = blockIdx.x; t < tiles; t += gridDim.x) {
            const long long r0 = t / tiles_c * TR, c0 = t % tiles_c * TC;
            const long long c = c0 + lane;
            A v[PER];
#pragma unroll
            for (int i = 0; i < PER; ++i) {
                const long long r = r0 + warp + 8 * i;
                v[i] = (c < cols && r < rows) ? A(cf::to_acc(src[r * lds + c])) : A(0);
            }
            const bool live_c = c < cols;
            const A b = (!SAVED && bias != nullptr && live_c) ? A(cf::to_acc(bias[c])) : A(0);
            A sum = A(0);
#pragma unroll
            for (int i = 0; i < PER; ++i) {
                const long long r = r0 + warp + 8 * i;
                // g[r * ldg]: L1 hits after the first column group
                const A gz =
                    r < rows ? A(cf::to_acc(g[r * ldg])) * (SAVED ? v[i] : cf::dsigmoid(v[i] + b)) : A(0);
                if (z != nullptr && live_c && r < rows) z[r * ldz + c] = cf::from_acc<G>(gz);
                tile[warp + 8 * i][lane] = gz;
                sum += gz;
            }
            sums[warp][lane] = sum;
            if (zt == nullptr && partial == nullptr) continue;  // uniform over the block
            __syncthreads();
            if (zt != nullptr) store_transposed(tile, zt, ldzt, r0, c0, rows, cols);
            if (partial != nullptr && warp == 0) {
                A total = A(0);
#pragma unroll
                for (int w = 0; w < 8; ++w) total += sums[w][lane];
                if (c < cols) partial[r0 / TR * ldp + c] = total;
            }
            __syncthreads();
        }
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
