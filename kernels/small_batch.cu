// Small-batch family: out[b] = sum_n sigmoid(x[b] . W[n] + bias[n]) for small B, on CUDA cores, in one launch.
//
// At small B the work is reading W once; the arithmetic is a few FMAs per byte, so exact arithmetic in the
// accumulator type costs nothing: fp32 FMA for float inputs (and for half / bfloat16 inputs, converted on use),
// fp64 for double. The GPU is filled by splitting N and K:
//
//   grid: one block per (n block of NW * RW rows of W, k split s of `k_split` values, batch tile of BT rows of x),
//         block index = (nb * S + s) * NBT + bt, so that the batch tiles reading one chunk of W run side by side and
//         share it through L2.
//   block: NW warps, each owning RW rows of W; a lane uses 8 values of k of each row per 256-wide chunk of k.
//         The block's W rows and the BT rows of x stream through a ring of shared-memory stages, one chunk of k a
//         stage, STAGES - 1 chunks in flight while one is used (16-byte cp.async when rows are 16-byte aligned, so
//         W's bytes in flight cost no registers); the x chunk is shared by all warps.
//
// Partial sums meet in a fixed order, in the same launch (grid_handover.cuh): the blocks of splits 0..S-2 of a
// group (nb, bt) write their z partials and publish; the group's last split sums them in split order, adds its
// own, the bias, takes the sigmoid and the block's row sums (rows in order), and publishes; the grid's last block
// adds the row sums of all n blocks in order and writes out. A grid of one block writes out directly. Results are
// bit-identical from run to run.
//
// Workspace (bytes, from the caller's allocator; none for a single block): flags u64[G * S] (G = NB * NBT groups;
// flag g * S + s, the last one of a group meaning "its row sums are ready"), then partial A[NB][B], then z partials
// A[S - 1][B][N]. Dynamic shared memory: stages<T, BT, RW * NW>() * (RW * NW + BT) * 256 * sizeof(T) bytes.
#include "common.cuh"
#include "grid_handover.cuh"
#include "ptx.cuh"

namespace sb {

constexpr int KC = 256;  // values of k per chunk; 8 per lane and W row

template <typename T> struct alignas(16) Pack {
    static constexpr int VE = 16 / (int)sizeof(T);  // values per 16-byte vector
    T v[VE];
};

// Shared-memory stages of the ring: as many as fit in 200 KiB, two to four.
template <typename T, int BT, int ROWS> __host__ __device__ constexpr int stages() {
    constexpr int bytes = (ROWS + BT) * KC * (int)sizeof(T), fit = 200 * 1024 / bytes;
    return fit < 2 ? 2 : (fit > 4 ? 4 : fit);
}

template <typename T, int BT, int RW, int NW, bool VEC, bool SAVE>
__global__ void __launch_bounds__(NW * 32, 1)
small_batch(const T* __restrict__ x, long long ldx, const T* __restrict__ w, long long ldw,
            const T* __restrict__ bias, unsigned char* __restrict__ workspace, T* __restrict__ out,
            T* __restrict__ saved, int B, int N,
            int K, int splits, long long k_split, unsigned long long epoch) {
    using A = typename cf::acc<T>::type;
    constexpr int VE = Pack<T>::VE, NV = 8 / VE;  // vectors per lane and row per chunk
    constexpr int NT = NW * 32, ROWS = NW * RW, XS = BT * KC;  // XS: values of one x chunk
    static_assert(8 % VE == 0, "8 values per lane");
    static_assert(ROWS * BT * sizeof(A) <= stages<T, BT, ROWS>() * (ROWS * KC + XS) * sizeof(T), "row sums fit");

    const int nbt = (B + BT - 1) / BT, nb_count = (N + ROWS - 1) / ROWS, S = splits;
    const int pid = blockIdx.x, bt = pid % nbt, s = (pid / nbt) % S, nb = pid / nbt / S;
    const int group = nb * nbt + bt, groups = nb_count * nbt;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int b0 = bt * BT, n0 = nb * ROWS + warp * RW;
    const cf::BlockSync sync;

    unsigned long long* flags = reinterpret_cast<unsigned long long*>(workspace);
    A* partial = reinterpret_cast<A*>(workspace + (((long long)groups * S * 8 + 15) / 16) * 16);
    A* zpart = partial + (long long)nb_count * B;  // [S - 1][B][N]

    const long long kb = (long long)s * k_split, ke = min((long long)K, kb + k_split);
    const int chunks = (int)((ke - kb + KC - 1) / KC);

    constexpr int STAGES = stages<T, BT, ROWS>(), WS = ROWS * KC, STAGE = WS + XS;  // elements of T
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T* smem = reinterpret_cast<T*>(smem_raw);  // [STAGES][W rows ROWS x KC, then x rows BT x KC]

    // Chunk k0 .. k0 + KC of the block's W rows and x rows into stage st, zeros outside N, B and the split's k range.
    auto load_stage = [&](int st, long long k0) {
        T* dst0 = smem + st * STAGE;
        for (int i = tid; i < (ROWS + BT) * (KC / VE); i += NT) {
            const int row = i / (KC / VE), v = i % (KC / VE);
            const long long k = k0 + v * VE;
            const bool is_w = row < ROWS;
            const int r = is_w ? nb * ROWS + row : b0 + row - ROWS;  // W row n, or x row b
            const T* src = is_w ? w + (long long)min(r, N - 1) * ldw + k : x + (long long)min(r, B - 1) * ldx + k;
            const long long rem = r < (is_w ? N : B) ? ke - k : 0;
            T* dst = dst0 + row * KC + v * VE;
            if constexpr (VEC) {
                const int bytes = rem >= VE ? 16 : (rem > 0 ? (int)rem * (int)sizeof(T) : 0);
                ptx::cp_async16(ptx::smem_u32(dst), bytes ? src : x, bytes);
            } else {
                Pack<T> p;
#pragma unroll
                for (int e = 0; e < VE; ++e) p.v[e] = e < rem ? src[e] : cf::from_acc<T>(A(0));
                memcpy(dst, &p, sizeof(p));
            }
        }
    };

    A acc[RW][BT];
#pragma unroll
    for (int r = 0; r < RW; ++r)
#pragma unroll
        for (int b = 0; b < BT; ++b) acc[r][b] = A(0);

#pragma unroll
    for (int st = 0; st < STAGES - 1; ++st) {
        if (st < chunks) load_stage(st, kb + (long long)st * KC);
        ptx::cp_async_commit();
    }
    for (int c = 0; c < chunks; ++c) {
        ptx::cp_async_wait<STAGES - 2>();
        __syncthreads();  // chunk c has landed for every thread; stage (c - 1) % STAGES is free
        const int next = c + STAGES - 1;
        if (next < chunks) load_stage(next % STAGES, kb + (long long)next * KC);
        ptx::cp_async_commit();
        const T* wc = smem + (c % STAGES) * STAGE + warp * RW * KC;
        const T* xc = smem + (c % STAGES) * STAGE + WS;
#pragma unroll
        for (int q = 0; q < NV; ++q) {
            const int kl = q * 32 * VE + lane * VE;
            Pack<T> wv[RW];
#pragma unroll
            for (int r = 0; r < RW; ++r) {
                const uint4 raw = *reinterpret_cast<const uint4*>(wc + r * KC + kl);
                memcpy(&wv[r], &raw, sizeof(raw));
            }
#pragma unroll
            for (int b = 0; b < BT; ++b) {
                Pack<T> xv;
                const uint4 raw = *reinterpret_cast<const uint4*>(xc + b * KC + kl);
                memcpy(&xv, &raw, sizeof(raw));
#pragma unroll
                for (int r = 0; r < RW; ++r)
#pragma unroll
                    for (int e = 0; e < VE; ++e)
                        acc[r][b] = fma(A(cf::to_acc(wv[r].v[e])), A(cf::to_acc(xv.v[e])), acc[r][b]);
            }
        }
    }
    ptx::cp_async_wait<0>();
    __syncthreads();  // the stages are reused below

    // The warp's dot products: every lane ends with every total (xor butterfly, a fixed order).
#pragma unroll
    for (int r = 0; r < RW; ++r)
#pragma unroll
        for (int b = 0; b < BT; ++b) acc[r][b] = cf::warp_sum(acc[r][b]);

    // Entry (r, b) is handled by lane (r * BT + b) % 32.
    if (S > 1 && s < S - 1) {  // an early split: hand the z partials to the group's last split
#pragma unroll
        for (int r = 0; r < RW; ++r)
#pragma unroll
            for (int b = 0; b < BT; ++b)
                if ((r * BT + b) % 32 == lane && n0 + r < N && b0 + b < B)
                    zpart[((long long)s * B + b0 + b) * N + n0 + r] = acc[r][b];
        cf::publish(flags + (long long)group * S + s, epoch, sync, tid == 0);
        return;
    }
    if (S > 1) cf::wait_flags(flags + (long long)group * S, S - 1, 1, epoch, tid, NT, sync);

    // z = splits 0..S-2 in order, then this block's own; bias; sigmoid; the block's row sums in row order.
    A* sg = reinterpret_cast<A*>(smem_raw);  // [ROWS][BT], over the stages
#pragma unroll
    for (int r = 0; r < RW; ++r)
#pragma unroll
        for (int b = 0; b < BT; ++b)
            if ((r * BT + b) % 32 == lane) {
                const int n = n0 + r;
                A value = A(0);
                if (n < N && b0 + b < B) {
                    A z = A(0);
                    for (int i = 0; i < S - 1; ++i) z += zpart[((long long)i * B + b0 + b) * N + n];
                    z += acc[r][b];
                    if (bias != nullptr) z += A(cf::to_acc(bias[n]));
                    value = cf::sigmoid(z);
                    if (SAVE) saved[(long long)(b0 + b) * N + n] = cf::from_acc<T>(cf::dsigmoid(z));
                }
                sg[(warp * RW + r) * BT + b] = value;
            }
    __syncthreads();
    const bool alone = gridDim.x == 1;  // one block: no workspace, out directly
    for (int b = tid; b < BT; b += NT) {
        if (b0 + b < B) {
            A sum = A(0);
            for (int row = 0; row < ROWS; ++row) sum += sg[row * BT + b];
            if (alone)
                out[b0 + b] = cf::from_acc<T>(sum);
            else
                partial[(long long)nb * B + b0 + b] = sum;
        }
    }
    if (alone) return;
    cf::publish(flags + (long long)group * S + S - 1, epoch, sync, tid == 0);
    if (pid != (int)gridDim.x - 1) return;

    // The grid's last block: out[b] = row sums of n blocks 0, 1, ... (lane-strided, then a fixed xor tree).
    cf::wait_flags(flags + S - 1, groups, S, epoch, tid, NT, sync);
    for (int b = warp; b < B; b += NW) {
        A sum = A(0);
        for (int j = lane; j < nb_count; j += 32) sum += partial[(long long)j * B + b];
        sum = cf::warp_sum(sum);
        if (lane == 0) out[b] = cf::from_acc<T>(sum);
    }
    cf::clear_flags(flags, (long long)groups * S, 1, tid, NT);
}

}  // namespace sb
