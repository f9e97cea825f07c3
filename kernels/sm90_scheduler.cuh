// Persistent tile schedule of the GEMM core (sm90_gemm.cu): what each unit of work is and which block runs it.
//
// The output c = a . b^T (a: M x K, b: N x K, both K-major) is cut into BM x BN tiles, each over S splits of K; a unit
// is (tile, split). Tiles run whole, except the last ones: tiles [0, dp_tiles) fill whole waves of the grid, the
// remaining ("tail") tiles are split `splits` ways so that the last wave is not mostly idle (with dp_tiles = 0 every
// tile is split, as the swapped form does). The epilogue reduces c along one of its axes, so tiles are named along the kept axis ("out", the
// index of the result) and the reduced one ("red"): the forward keeps x's rows and reduces W's (a = x, out = M), the
// swapped small-batch form keeps the batch and reduces W's rows (a = W, out = N). Units are numbered split-fastest
// within a tile and tiles in groups of `group` out tiles (all red tiles of a group before the next), so the tiles
// resident at once share a and b rows in L2. Block i of the persistent grid runs units i, i + grid, i + 2 grid, ...
#pragma once

namespace sm90 {

struct Unit {
    int t_out, t_red;     // tile along the kept and the reduced axis
    int s, splits, slot;  // split of K, the tile's splits, its index among the split tiles
    int m0, n0;           // first row of a and of b
    int kt0, kt;          // first k tile and k tiles of the split
};

template <int BM, int BN, int BK, bool SWAPPED> struct Schedule {
    int num_out, num_red, splits, group, k_tiles, dp_tiles;
    long long k_split;  // values of K per split of a tail tile, a multiple of BK

    // Below 2^31 (the host checks): the unit arithmetic is 32-bit.
    __device__ __forceinline__ int units() const { return dp_tiles + (num_out * num_red - dp_tiles) * splits; }

    __device__ __forceinline__ Unit unit(int u) const {
        Unit w;
        const int v = u - dp_tiles;
        const bool whole = v < 0;
        w.splits = whole ? 1 : splits;
        w.slot = whole ? 0 : v / splits;
        w.s = whole ? 0 : v % splits;
        const int t = whole ? u : dp_tiles + w.slot, width = group * num_red;
        const int first = t / width * group, size = min(num_out - first, group), in_group = t % width;
        w.t_out = first + in_group % size;
        w.t_red = in_group / size;
        w.m0 = (SWAPPED ? w.t_red : w.t_out) * BM;
        w.n0 = (SWAPPED ? w.t_out : w.t_red) * BN;
        const long long kb = w.s * k_split;
        w.kt0 = whole ? 0 : (int)(kb / BK);
        w.kt = whole ? k_tiles : (int)min((long long)k_tiles, (kb + k_split) / BK) - w.kt0;
        return w;
    }
};

}  // namespace sm90
