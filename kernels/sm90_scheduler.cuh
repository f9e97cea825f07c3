// Persistent tile schedule of the GEMM core (sm90_gemm.cu): what each unit of work is and which block runs it.
//
// The output c = a . b^T (a: M x K, b: N x K, both K-major) is cut into BM x BN tiles. The epilogue reduces c along
// one of its axes, so tiles are named along the kept axis ("out", the index of the result) and the reduced one
// ("red"): the forward keeps x's rows and reduces W's (a = x, out = M), the swapped small-batch form keeps the batch
// and reduces W's rows (a = W, out = N). Tiles are numbered in groups of `group` out tiles (all red tiles of a group
// before the next), so the tiles resident at once share a and b rows in L2.
//
// Tiles [0, dp_tiles) run whole, block i of the grid taking tiles i, i + grid, ...; the k tiles of the remaining
// ("streamed") tiles are cut into one contiguous range per block (stream-K), so that every block ends at the same
// time however few tiles there are. A block's range covers the end of one tile, whole tiles, then the start of
// another: a unit is one tile's part of it, and a tile cut between blocks is finished by the last of its parts to
// arrive (sm90_epilogues.cuh, part_exchange).
#pragma once

namespace sm90 {

struct Unit {
    int t_out, t_red;  // tile along the kept and the reduced axis
    int m0, n0;        // first row of a and of b
    int kt0, kt;       // first k tile and k tiles of this part
    int streamed;      // the tile's index among the streamed tiles (its arrival counter), or -1
};

// Where a unit's tile was cut (computed after the main loop, so that it holds no registers there).
struct Cut {
    int part, parts;  // this part's index among the tile's parts (in k order), and their count (1: whole)
    int first_block;  // the block that runs part 0
    int head;         // 1 where part 0 is not first_block's first unit

    // Workspace slot of part j's accumulators: block i keeps its first stream-K unit's in slot 2i, its last one's in
    // 2i + 1 (only those can be parts of a cut tile; parts j > 0 start their block's range).
    __device__ __forceinline__ int slot(int j) const { return j == 0 ? 2 * first_block + head : 2 * (first_block + j); }
};

template <int BM, int BN, bool SWAPPED> struct Schedule {
    int num_out, num_red, group, k_tiles, dp_tiles;
    int block, grid;
    long long iters, lo, hi;  // k tiles of the streamed tiles; this block's range of them [lo, hi)
    int dp_units, stream_units;

    __device__ __forceinline__ Schedule(int num_out_, int num_red_, int group_, int k_tiles_, int dp_tiles_)
        : num_out(num_out_), num_red(num_red_), group(group_), k_tiles(k_tiles_), dp_tiles(dp_tiles_),
          block(blockIdx.x), grid(gridDim.x) {
        iters = (long long)(num_out * num_red - dp_tiles) * k_tiles;
        lo = range_start(block);
        hi = range_start(block + 1);
        dp_units = block < dp_tiles ? (dp_tiles - block + grid - 1) / grid : 0;
        stream_units = hi > lo ? (int)((hi - 1) / k_tiles - lo / k_tiles) + 1 : 0;
    }

    __device__ __forceinline__ long long range_start(int i) const { return i * iters / grid; }
    // The block whose range holds streamed k tile x: the last i with range_start(i) <= x.
    __device__ __forceinline__ int block_of(long long x) const { return (int)(((x + 1) * grid - 1) / iters); }

    __device__ __forceinline__ int units() const { return dp_units + stream_units; }

    __device__ __forceinline__ Unit unit(int i) const {
        Unit w;
        int t;
        if (i < dp_units) {
            t = block + i * grid;
            w.kt0 = 0;
            w.kt = k_tiles;
            w.streamed = -1;
        } else {
            const int s = (int)(lo / k_tiles) + i - dp_units;
            const long long start = (long long)s * k_tiles;
            w.kt0 = (int)(max(lo, start) - start);
            w.kt = (int)(min(hi, start + k_tiles) - start) - w.kt0;
            w.streamed = s;
            t = dp_tiles + s;
        }
        const int width = group * num_red;
        const int first = t / width * group, size = min(num_out - first, group), in_group = t % width;
        w.t_out = first + in_group % size;
        w.t_red = in_group / size;
        w.m0 = (SWAPPED ? w.t_red : w.t_out) * BM;
        w.n0 = (SWAPPED ? w.t_out : w.t_red) * BN;
        return w;
    }

    __device__ __forceinline__ Cut cut(const Unit& u) const {
        if (u.streamed < 0) return Cut{0, 1, block, 0};
        const long long start = (long long)u.streamed * k_tiles;
        const int first = block_of(start);
        return Cut{block - first, block_of(start + k_tiles - 1) - first + 1, first, range_start(first) != start};
    }
};

}  // namespace sm90
