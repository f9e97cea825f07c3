// What the GEMM core (sm90_gemm.cu) does with a unit's accumulators: the exchange of a cut tile's parts, then an
// epilogue, then the hand-over of sums whose tiles ran in different blocks. An epilogue is a struct with
//   SWAPPED                  which operand is x: false, a = x (out: a's rows); true, a = W, b = x (out: b's rows)
//   Shared                   its shared memory
//   prepare<T>(...)          before the unit's main loop (loads that can hide under it)
//   finish<T>(acc, ..., cut) after it: the parts' exchange (part_exchange), its own work, the hand-over (hand_over)
// T is the operands' element type: the bias, the result and the saved sigmoid' have it. The consumer
// warpgroups (256 threads, index ct, named barrier 1) run it; the producer warpgroup has left.
#pragma once
#include "common.cuh"
#include "last_arrival.cuh"
#include "grid_handover.cuh"
#include "sm90_scheduler.cuh"

namespace sm90 {

constexpr int CONSUMERS = 256;
using ConsumerSync = cf::NamedSync<1, CONSUMERS>;

// The kernel's parameter block (host mirror with the same fields in the same order: cupy_fused/gemm/kernel.py).
struct Args {
    const void* bias;          // (N,) of the element type, or null
    void* out;                 // (rows,) of the element type
    void* saved;               // (rows, N) of the element type: sigmoid'(z) for the backward (SAVE instances only)
    unsigned char* workspace;  // part counters at 0 and row counters (zeroed by the host), parts, row parts
    long long row_counters_off, zpart_off, row_part_off;  // byte offsets in the workspace
    int rows, n;                                          // B and N of the call
    int num_out, num_red, group, k_tiles, dp_tiles;       // the schedule (sm90_scheduler.cuh)
};

// A tile cut between blocks (stream-K): every part stores its accumulators (value i of thread ct at [i][ct] of its
// slot) and arrives on the tile's counter; the last to arrive sums the parts in k order into acc and returns true,
// the others return false (their unit is done). (Taking its own part from acc instead of memory spilled
// registers at BN = 256.)
template <int NACC>
__device__ __forceinline__ bool part_exchange(float (&acc)[NACC], const Args& a, const Unit& u, const Cut& cut, int ct,
                                              volatile int* verdict) {
    if (cut.parts == 1) return true;
    float* z = reinterpret_cast<float*>(a.workspace + a.zpart_off) + ct;
    float* mine = z + (long long)cut.slot(cut.part) * NACC * CONSUMERS;
#pragma unroll
    for (int i = 0; i < NACC; ++i) mine[i * CONSUMERS] = acc[i];
    unsigned* counter = reinterpret_cast<unsigned*>(a.workspace) + u.streamed;
    if (!cf::arrive_last(counter, cut.parts, ct, ConsumerSync(), verdict)) return false;
    constexpr int G = NACC < 8 ? NACC : 8;  // G values at a time: each part's G loads in flight together
#pragma unroll
    for (int i0 = 0; i0 < NACC; i0 += G) {
        float sum[G];
#pragma unroll
        for (int i = 0; i < G; ++i) sum[i] = 0.0f;
#pragma unroll 1
        for (int j = 0; j < cut.parts; ++j) {
            const float* zj = z + ((long long)cut.slot(j) * NACC + i0) * CONSUMERS;
#pragma unroll
            for (int i = 0; i < G; ++i) sum[i] += zj[i * CONSUMERS];
        }
#pragma unroll
        for (int i = 0; i < G; ++i) acc[i0 + i] = sum[i];
    }
    return true;
}

// The tile's sums value(r) for result indices o0 + r (r < OUT) over its red tile, to out: directly when one red tile
// covers N; else each tile parks them (part[index][t_red]) and the last of the out tile's num_red arrivals adds them
// in t_red order (a warp per index: lane-strided, then a fixed xor tree).
template <class T, int OUT, class Value>
__device__ __forceinline__ void hand_over(const Args& a, const Unit& u, int o0, Value value, int ct,
                                          volatile int* verdict) {
    T* out = static_cast<T*>(a.out);
    const int count = min(OUT, a.rows - o0);
    if (a.num_red == 1) {
        for (int r = ct; r < count; r += CONSUMERS) out[o0 + r] = cf::from_acc<T>(value(r));
        return;
    }
    float* part = reinterpret_cast<float*>(a.workspace + a.row_part_off);
    for (int r = ct; r < count; r += CONSUMERS) part[(long long)(o0 + r) * a.num_red + u.t_red] = value(r);
    unsigned* counter = reinterpret_cast<unsigned*>(a.workspace + a.row_counters_off) + u.t_out;
    if (!cf::arrive_last(counter, a.num_red, ct, ConsumerSync(), verdict)) return;
    const int lane = ct & 31;
    for (int r = ct >> 5; r < count; r += CONSUMERS / 32) {
        const float* p = part + (long long)(o0 + r) * a.num_red;
        float s = 0.0f;
        for (int j = lane; j < a.num_red; j += 32) s += p[j];
        s = cf::warp_sum(s);
        if (lane == 0) out[o0 + r] = cf::from_acc<T>(s);
    }
}

// The logistic function of the epilogues: Exact is cf::sigmoid (exp2 and a fast divide: two special-function
// instructions); Tanh is 0.5 tanh(z / 2) + 0.5 with tanh.approx (one; absolute error about 2^-12 per term, for
// half-precision results, whose rounding is 2^-9 (bf16) or 2^-12 (fp16) relative).
enum class Sig { Exact, Tanh };

template <Sig S> __device__ __forceinline__ float sigmoid(float z) {
    if constexpr (S == Sig::Tanh) {
        float t;
        asm("tanh.approx.f32 %0, %1;" : "=f"(t) : "f"(0.5f * z));
        return fmaf(0.5f, t, 0.5f);
    } else {
        return cf::sigmoid(z);
    }
}

// A warp's 16 rows x 64 columns of sigmoid' in a 2-byte type, staged in shared memory (2 KB, 128 bytes a row) so that
// they leave as 16-byte stores of whole 128-byte row segments instead of 4-byte pairs in 8 rows at a time. The
// 16-byte chunk c of row r sits at chunk c ^ (r & 7): the pairs' writes (8 rows, 4 lanes a row) and the rows' reads
// (8 lanes a row) are both free of bank conflicts.
struct SavedRows {
    static constexpr int ROWS = 16, WORDS = 32;  // 32-bit words a row: 64 two-byte values
    __align__(16) unsigned word[ROWS * WORDS];

    __device__ __forceinline__ void put(int r, int c, unsigned pair) {  // c: the pair's column, even
        word[r * WORDS + (((c >> 3) ^ (r & 7)) << 2) + ((c >> 1) & 3)] = pair;
    }
    // Row r0 + r of the block, columns n0 .. n0 + 63, to `saved` (rows of n values): lane l moves 8 columns of row
    // 4i + l / 8 per step i; whole 16-byte chunks where the rows are 16-byte aligned, else value by value.
    template <class T>
    __device__ __forceinline__ void store(T* saved, long long r0, int rows, int n0, int n, bool aligned,
                                          int lane) const {
        static_assert(sizeof(T) == 2, "pairs of 2-byte values");
        const int c = lane & 7;
#pragma unroll
        for (int i = 0; i < ROWS / 4; ++i) {
            const int r = 4 * i + (lane >> 3), col = n0 + 8 * c;
            if (r0 + r >= rows || col >= n) continue;
            const uint4 v = *reinterpret_cast<const uint4*>(&word[r * WORDS + ((c ^ (r & 7)) << 2)]);
            T* p = saved + (r0 + r) * n + col;
            if (aligned && col + 8 <= n) {
                *reinterpret_cast<uint4*>(p) = v;
            } else {
                const unsigned w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
                for (int e = 0; e < 8; ++e)
                    if (col + e < n) p[e] = cf::from_bits16<T>(w[e >> 1] >> (16 * (e & 1)));
            }
        }
    }
};

template <bool SAVE> struct Staging { struct type { SavedRows warp[8]; }; };
template <> struct Staging<false> { struct type {}; };

// Forward, a = x: out[m] = sum_n sigmoid(c[m][n] + bias[n]), and with SAVE saved[m][n] = sigmoid'(...)
// (cf::dsigmoid_fast, 64 columns at a time through SavedRows; the sums are the plain instance's, bit for bit).
// The tile's bias values are staged in shared memory before the main loop (two buffers: a unit's prepare runs while
// the previous unit's epilogue may still read the other).
template <int BN, bool SAVE, Sig S> struct RowSigmoidSum {
    static constexpr bool SWAPPED = false;
    struct Shared {
        float bias[2][BN];
        float red[2 * 64];  // the tile's row sums, by consumer warpgroup
        int verdict;
        typename Staging<SAVE>::type saved;  // a consumer warp's SavedRows each
    };

    template <class T>
    __device__ __forceinline__ void prepare(const Args& a, const Unit& u, Shared& sh, int ct, int nth) const {
        const T* bias = static_cast<const T*>(a.bias);
        for (int i = ct; i < BN; i += CONSUMERS)
            sh.bias[nth & 1][i] = bias != nullptr && u.n0 + i < a.n ? cf::to_acc(bias[u.n0 + i]) : 0.0f;
    }

    template <class T>
    __device__ __forceinline__ void finish(float (&acc)[BN / 2], const Args& a, const Unit& u, const Cut& cut,
                                           Shared& sh, int ct, int nth) const {
        ConsumerSync()();  // the bias is staged; the previous unit's readers of red are done
        if (!part_exchange(acc, a, u, cut, ct, &sh.verdict)) return;
        const int cwg = ct >> 7, w = (ct >> 5) & 3, g = (ct & 31) >> 2, t = ct & 3;
        const float* bias = sh.bias[nth & 1];
        const int r_warp = 64 * cwg + 16 * w;  // the warp's first row in the tile
        // uniform over the launch: whole 16-byte chunks of saved rows
        const bool aligned = a.n % 8 == 0 && reinterpret_cast<unsigned long long>(a.saved) % 16 == 0;
        float s[2] = {0.0f, 0.0f};
#pragma unroll
        for (int jc = 0; jc < BN / 64; ++jc) {
#pragma unroll
            for (int h = 0; h < 2; ++h)
#pragma unroll
                for (int j = 8 * jc; j < 8 * jc + 8; ++j) {
                    float ds[2] = {0.0f, 0.0f};
#pragma unroll
                    for (int q = 0; q < 2; ++q) {
                        const int c = 8 * j + 2 * t + q;
                        if (u.n0 + c < a.n) {
                            const float z = acc[4 * j + 2 * h + q] + bias[c];
                            s[h] += sigmoid<S>(z);
                            if constexpr (SAVE) ds[q] = cf::dsigmoid_fast(z);
                        }
                    }
                    if constexpr (SAVE) {
                        sh.saved.warp[ct >> 5].put(8 * h + g, 8 * (j - 8 * jc) + 2 * t, cf::pack2<T>(ds[0], ds[1]));
                    }
                }
            if constexpr (SAVE) {
                __syncwarp();
                sh.saved.warp[ct >> 5].template store<T>(static_cast<T*>(a.saved), (long long)u.m0 + r_warp,
                                                         a.rows, u.n0 + 64 * jc, a.n, aligned, ct & 31);
                __syncwarp();  // read before the next 64 columns overwrite
            }
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            s[h] += __shfl_xor_sync(0xffffffffu, s[h], 1);
            s[h] += __shfl_xor_sync(0xffffffffu, s[h], 2);
            if (t == 0) sh.red[r_warp + 8 * h + g] = s[h];
        }
        ConsumerSync()();
        hand_over<T, 128>(a, u, u.m0, [&](int r) { return sh.red[r]; }, ct, &sh.verdict);
    }
};

// Forward, swapped (small batches): a = W, b = x; out[b] = sum_n sigmoid(c[n][b] + bias[n]): the sums run down the
// tile's columns (a thread's two rows, a shuffle tree over the warp's 16, the 8 warps in order through red).
template <int BN, bool SAVE, Sig S> struct ColSigmoidSum {
    static constexpr bool SWAPPED = true;
    struct Shared {
        float red[8][BN];
        int verdict;
    };
    float bias[2];  // this thread's two rows of W

    template <class T>
    __device__ __forceinline__ void prepare(const Args& a, const Unit& u, Shared&, int ct, int) {
        const T* b = static_cast<const T*>(a.bias);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int n = u.m0 + 64 * (ct >> 7) + 16 * ((ct >> 5) & 3) + 8 * h + ((ct & 31) >> 2);
            bias[h] = b != nullptr && n < a.n ? cf::to_acc(b[n]) : 0.0f;
        }
    }

    template <class T>
    __device__ __forceinline__ void finish(float (&acc)[BN / 2], const Args& a, const Unit& u, const Cut& cut,
                                           Shared& sh, int ct, int) const {
        ConsumerSync()();  // the previous unit's readers of red are done
        if (!part_exchange(acc, a, u, cut, ct, &sh.verdict)) return;
        const int warp = ct >> 5, g = (ct & 31) >> 2, t = ct & 3;
        int n[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) n[h] = u.m0 + 16 * warp + 8 * h + g;  // 64 cwg + 16 w = 16 warp
#pragma unroll
        for (int j = 0; j < BN / 8; ++j)
#pragma unroll
            for (int q = 0; q < 2; ++q) {
                const int c = 8 * j + 2 * t + q, b = u.n0 + c;
                float s = 0.0f;
#pragma unroll
                for (int h = 0; h < 2; ++h)
                    if (n[h] < a.n) {
                        const float z = acc[4 * j + 2 * h + q] + bias[h];
                        s += sigmoid<S>(z);
                        if (SAVE && b < a.rows)
                            static_cast<T*>(a.saved)[(long long)b * a.n + n[h]] = cf::from_acc<T>(cf::dsigmoid_fast(z));
                    }
                s += __shfl_xor_sync(0xffffffffu, s, 4);
                s += __shfl_xor_sync(0xffffffffu, s, 8);
                s += __shfl_xor_sync(0xffffffffu, s, 16);
                if (g == 0) sh.red[warp][c] = s;
            }
        ConsumerSync()();
        hand_over<T, BN>(
            a, u, u.n0,
            [&](int r) {
                float v = 0.0f;
#pragma unroll
                for (int i = 0; i < 8; ++i) v += sh.red[i][r];
                return v;
            },
            ct, &sh.verdict);
    }
};

}  // namespace sm90
