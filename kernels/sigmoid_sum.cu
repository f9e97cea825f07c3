// Row reduction: out[r] = carry[r] + sum_j sigmoid(z[r, j] + bias[j]), one pass over z.
//
// Z: element type of z (the matmul output: float or double, or the caller's dtype for the public sigmoid_sum).
// T: the caller's dtype (bias and out). Sums accumulate in cf::acc<Z> (fp32, fp64 for double).
// ROWS rows share a block so that each bias element is loaded once per ROWS rows. VEC selects 16-byte loads of z;
// the launcher picks it only when z's base address and row stride keep every row 16-byte aligned.
// carry (nullable) holds the sums of earlier column chunks, in double so that many chunks lose nothing; the result
// goes to out (caller's dtype) when out is non-null, else to partial (double) for the next chunk. All offsets are
// 64-bit. saved (nullable): sigmoid'(z + bias) of every element in the caller's dtype, row stride ld_saved, for a
// training step's backward.
#include "common.cuh"

template <typename Z, typename T, int ROWS, bool VEC>
__global__ void __launch_bounds__(256) sigmoid_sum(const Z* __restrict__ z, long long ldz, const T* __restrict__ bias,
                                                   const double* __restrict__ carry, double* __restrict__ partial,
                                                   T* __restrict__ out, T* __restrict__ saved,
                                                   long long ld_saved,
                                                   long long rows, long long cols) {
    using A = typename cf::acc<Z>::type;
    constexpr int V = VEC ? 16 / sizeof(Z) : 1;
    const long long row0 = (long long)blockIdx.x * ROWS;
    const int live = (int)min((long long)ROWS, rows - row0);
    A sums[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) sums[r] = A(0);

    const long long body = VEC ? cols / V * V : 0;
    // the VEC loop stores V values of s' at a time where the saved rows are aligned for it
    struct alignas(sizeof(T) * V) Saved { T v[V]; };
    const bool saved_vec = ld_saved % V == 0 && reinterpret_cast<unsigned long long>(saved) % sizeof(Saved) == 0;
    if constexpr (VEC) {
        struct alignas(16) Pack { Z v[V]; };
#pragma unroll 2
        for (long long j = (long long)threadIdx.x * V; j < body; j += (long long)blockDim.x * V) {
            Pack p[ROWS];  // issue every row's 16-byte load before the first use: more bytes in flight
#pragma unroll
            for (int r = 0; r < ROWS; ++r)
                if (r < live) {
                    const float4 raw = __ldcs(reinterpret_cast<const float4*>(z + (row0 + r) * ldz + j));
                    memcpy(&p[r], &raw, sizeof(raw));  // streaming load: z is read once
                }
            A b[V];
#pragma unroll
            for (int v = 0; v < V; ++v) b[v] = bias ? A(cf::to_acc(bias[j + v])) : A(0);
#pragma unroll
            for (int r = 0; r < ROWS; ++r)
                if (r < live) {
                    A zv[V];
#pragma unroll
                    for (int v = 0; v < V; ++v) {
                        zv[v] = A(cf::to_acc(p[r].v[v])) + b[v];
                        sums[r] += cf::sigmoid(zv[v]);
                    }
                    if (saved != nullptr) {  // sigmoid' only for a training step's forward
                        Saved ds;
#pragma unroll
                        for (int v = 0; v < V; ++v) ds.v[v] = cf::from_acc<T>(cf::dsigmoid(zv[v]));
                        T* dst = saved + (row0 + r) * ld_saved + j;
                        if (saved_vec) {  // one store of V values, as z was read
                            if constexpr (sizeof(Saved) == 16) {  // streaming, like the load
                                float4 raw;
                                memcpy(&raw, &ds, sizeof(raw));
                                __stcs(reinterpret_cast<float4*>(dst), raw);
                            } else {
                                *reinterpret_cast<Saved*>(dst) = ds;
                            }
                        } else {
#pragma unroll
                            for (int v = 0; v < V; ++v) dst[v] = ds.v[v];
                        }
                    }
                }
        }
    }
    for (long long j = body + threadIdx.x; j < cols; j += blockDim.x) {
        const A b = bias ? A(cf::to_acc(bias[j])) : A(0);
#pragma unroll
        for (int r = 0; r < ROWS; ++r)
            if (r < live) {
                const A zv = A(cf::to_acc(z[(row0 + r) * ldz + j])) + b;
                sums[r] += cf::sigmoid(zv);
                if (saved != nullptr) saved[(row0 + r) * ld_saved + j] = cf::from_acc<T>(cf::dsigmoid(zv));
            }
    }

    // Block reduction: warp shuffles, then one value per warp and row through shared memory.
    __shared__ A warp_sums[ROWS][32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
        const A s = cf::warp_sum(sums[r]);
        if (lane == 0) warp_sums[r][warp] = s;
    }
    __syncthreads();
    if (warp < ROWS && warp < live) {
        A s = lane < warps ? warp_sums[warp][lane] : A(0);
        s = cf::warp_sum(s);
        if (lane == 0) {
            const long long row = row0 + warp;
            const double total = (carry ? carry[row] : 0.0) + double(s);
            if (out)
                out[row] = cf::from_acc<T>(A(total));
            else
                partial[row] = total;
        }
    }
}
