// What the tile kernels (fused_mma.cu, fused_fma.cu, fused_wgmma_sm90.cu) share after their main loops: the tile
// schedule, split-K, and the hand-over of row sums, all in one launch (grid_handover.cuh).
//
// A block computes a BM x BN tile of x @ W^T over one split of K (S splits of `k_split` values; S = 1 without
// split-K). Splits 0..S-2 store their accumulators and leave; the tile's last split adds them in split order to
// its own, then the epilogue (bias, sigmoid, row sums over the tile's columns) runs once per tile. With one N tile
// the row sums are the result; otherwise each tile writes them to partial[row][tn], and the M row's last tile
// (tn = num_n - 1, the last block of its M row) adds them in tn order and writes out. Every sum has a fixed order:
// results are bit-identical from run to run.
//
// Workspace layout (bytes, the host computes the same; fused.py): flags u64[tiles * S] (16-byte aligned), then
// partial A[B][num_n], then z partials A[tiles][S - 1][BM * BN].
#pragma once
#include "common.cuh"
#include "grid_handover.cuh"

namespace epi {

struct Tile {
    int tm, tn, s, num_m, num_n;
};

// Block index -> tile and split. The S splits of a tile are adjacent (its last split has the largest index); tiles
// are rasterised in groups of group_m M tiles so that resident blocks share x and W rows in L2. Within a group the
// tiles of one M row are ordered by tn, so (tm, num_n - 1) is the last block of its M row.
__device__ __forceinline__ Tile tile_of(int B, int N, int BM, int BN, int S, int group_m) {
    Tile t;
    t.num_m = (B + BM - 1) / BM;
    t.num_n = (N + BN - 1) / BN;
    t.s = blockIdx.x % S;
    const int pid = blockIdx.x / S, width = group_m * t.num_n, first_m = (pid / width) * group_m;
    const int gsize = min(t.num_m - first_m, group_m), in_group = pid - (pid / width) * width;
    t.tm = first_m + in_group % gsize;
    t.tn = in_group / gsize;
    return t;
}

template <typename A> struct Workspace {
    unsigned long long* flags;
    A* partial;
    A* zpart;
};

template <typename A>
__device__ __forceinline__ Workspace<A> workspace_of(unsigned char* ws, const Tile& t, int B, int S) {
    const long long tiles = (long long)t.num_m * t.num_n;
    const long long flag_bytes = (tiles * S * 8 + 15) / 16 * 16;
    const long long partial_bytes = ((long long)B * t.num_n * (long long)sizeof(A) + 15) / 16 * 16;
    return {reinterpret_cast<unsigned long long*>(ws), reinterpret_cast<A*>(ws + flag_bytes),
            reinterpret_cast<A*>(ws + flag_bytes + partial_bytes)};
}

__device__ __forceinline__ long long tile_index(const Tile& t) { return (long long)t.tm * t.num_n + t.tn; }

// Split-K over the NACC accumulators of each of the nt participating threads (index t). Returns false for an
// early split (it stored its values, thread t's value i at [i][t], and published: the block ends); the last split
// waits, adds the others in split order under its own (acc = ((z_0 + z_1) + ...) + acc) and clears the flags.
template <typename A, int NACC, class Sync>
__device__ __forceinline__ bool split_exchange(A* acc, const Workspace<A>& ws, const Tile& tile, int S, int t, int nt,
                                               unsigned long long epoch, Sync sync) {
    if (S == 1) return true;
    unsigned long long* flags = ws.flags + tile_index(tile) * S;
    A* z = ws.zpart + tile_index(tile) * (S - 1) * (long long)NACC * nt;
    if (tile.s < S - 1) {
        A* mine = z + (long long)tile.s * NACC * nt;
#pragma unroll
        for (int i = 0; i < NACC; ++i) mine[(long long)i * nt + t] = acc[i];
        cf::publish(flags + tile.s, epoch, sync, t == 0);
        return false;
    }
    cf::wait_flags(flags, S - 1, 1, epoch, t, nt, sync);
    // G accumulators at a time, each split's G loads issued together: one L2 round trip per (group, split), not one
    // per (accumulator, split) as before (H100: 128 x 1024^2 at 8 splits 101 -> 26 us). The TF32 256-wide wgmma
    // tile (128 accumulators) has registers for 2 more only.
    constexpr int G = NACC >= 128 ? 2 : (NACC < 8 ? NACC : 8);
    static_assert(NACC % G == 0, "NACC");
#pragma unroll  // acc stays in registers: its indices must be constants
    for (int i0 = 0; i0 < NACC; i0 += G) {
        A sum[G];
#pragma unroll
        for (int i = 0; i < G; ++i) sum[i] = A(0);
#pragma unroll 1
        for (int j = 0; j < S - 1; ++j) {
            const A* zj = z + ((long long)j * NACC + i0) * nt + t;
#pragma unroll
            for (int i = 0; i < G; ++i) sum[i] += zj[(long long)i * nt];
        }
#pragma unroll
        for (int i = 0; i < G; ++i) acc[i0 + i] = sum[i] + acc[i0 + i];
    }
    cf::clear_flags(flags, S - 1, 1, t, nt);
    return true;
}

// Row r (0 <= r < BM) of the tile, global row m0 + r, has the sum row_sum(r) over the tile's columns. Writes out
// directly with one N tile; otherwise hands the sums over as described above. nt is a multiple of 32.
template <typename T, typename A, class RowSum, class Sync>
__device__ __forceinline__ void finish_rows(const Tile& tile, const Workspace<A>& ws, int m0, int BM, int B, int S,
                                            T* __restrict__ out, RowSum row_sum, int t, int nt,
                                            unsigned long long epoch, Sync sync) {
    const int rows = min(BM, B - m0);
    if (tile.num_n == 1) {
        for (int r = t; r < rows; r += nt) out[m0 + r] = cf::from_acc<T>(row_sum(r));
        return;
    }
    for (int r = t; r < rows; r += nt) ws.partial[(long long)(m0 + r) * tile.num_n + tile.tn] = row_sum(r);
    unsigned long long* row_flags = ws.flags + (long long)tile.tm * tile.num_n * S + (S - 1);  // stride S
    cf::publish(row_flags + (long long)tile.tn * S, epoch, sync, t == 0);
    if (tile.tn != tile.num_n - 1) return;
    cf::wait_flags(row_flags, tile.num_n - 1, S, epoch, t, nt, sync);
    const int lane = t & 31;
    for (int r = t >> 5; r < rows; r += nt >> 5) {  // a warp per row: lane-strided, then a fixed xor tree
        const A* p = ws.partial + (long long)(m0 + r) * tile.num_n;
        A sum = A(0);
        for (int j = lane; j < tile.num_n; j += 32) sum += p[j];
        sum = cf::warp_sum(sum);
        if (lane == 0) out[m0 + r] = cf::from_acc<T>(sum);
    }
    cf::clear_flags(row_flags, tile.num_n, S, t, nt);
}

// Two adjacent values of a GEMM's output to c[0] and c[1] (c[1] only where `second`), added in fp32 to what c holds
// with `accumulate`; one float2 store where `pair` (c 8-byte aligned, second true).
__device__ __forceinline__ void store_pair(float* c, float v0, float v1, bool pair, bool second, int accumulate) {
    if (pair) {
        float2* p = reinterpret_cast<float2*>(c);
        if (accumulate) {
            const float2 old = *p;
            v0 = old.x + v0;
            v1 = old.y + v1;
        }
        *p = make_float2(v0, v1);
        return;
    }
    c[0] = accumulate ? c[0] + v0 : v0;
    if (second) c[1] = accumulate ? c[1] + v1 : v1;
}

}  // namespace epi
