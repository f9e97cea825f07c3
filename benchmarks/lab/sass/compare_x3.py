"""The tf32x3 wgmma kernel of release 0.1 (old.cubin) against builds of the new one (each argument: a cubin of
fused::wgmma_tile<true, 128, 3>), all built by nvcc and launched in turn from one process with CuPy: is a gap in
the kernels or in the harness around them? Kernel time by CUDA events, median of 6 rounds of 10 launches.

    mkdir -p old_tree && git archive 67ad261 | tar -x -C old_tree   # the release, at the repository root
    cd benchmarks/lab/sass && nvcc -arch=sm_90a -cubin -std=c++17 -I../../../old_tree/kernels old_x3.cu -o old.cubin
    nvcc -arch=sm_90a -cubin -std=c++17 -I../../../kernels new_x3.cu -o new.cubin && python3 compare_x3.py new.cubin
"""

import sys

import cupy as cp
import numpy as np

SMEM = 3 * 2 * (128 + 128) * 128 + 1024 + 256
I32, I64, U64 = np.int32, np.int64, np.uint64
OLD = "_ZN3fls12fls_wgmma_wsILi2ELi128ELi3ELb1EEEvPKfxS2_xS2_PfS3_iiii"
NEW = "_ZN5fused10wgmma_tileILb1ELi128ELi3ELb0EEEvPKfxS2_xS2_PhPfS4_iiiixiy"


def kernel(path, name):
    k = cp.RawModule(path=path).get_function(name)
    k.max_dynamic_shared_size_bytes = SMEM
    return k


def main():
    kernels = {"old.cubin": kernel("old.cubin", OLD)} | {p: kernel(p, NEW) for p in sys.argv[1:]}
    for B, K, N in ((4096, 4096, 4096), (1024, 4096, 4096), (128, 32768, 32768)):
        x = cp.random.standard_normal((B, K), dtype=cp.float32)
        w = cp.random.uniform(-(K**-0.5), K**-0.5, (N, K)).astype(cp.float32)
        b = cp.random.uniform(-(K**-0.5), K**-0.5, N).astype(cp.float32)
        num_m, num_n = -(-B // 128), -(-N // 128)
        grid = (num_m * num_n,)
        partial = cp.zeros((B, num_n), cp.float32)
        ws = cp.zeros(num_m * num_n * 8 + B * num_n * 4 + 16, cp.uint8)
        outs = {p: cp.zeros(B, cp.float32) for p in kernels}
        epoch = [0]

        def launcher(path):
            k, out = kernels[path], outs[path]
            if path == "old.cubin":
                args = (x, I64(K), w, I64(K), b, partial, out, I32(B), I32(N), I32(K), I32(8))
                return lambda: k(grid, (384,), args, shared_mem=SMEM)

            def run():
                epoch[0] += 1
                k(
                    grid,
                    (384,),
                    (
                        x,
                        I64(K),
                        w,
                        I64(K),
                        b,
                        ws,
                        out,
                        U64(0),
                        I32(B),
                        I32(N),
                        I32(K),
                        I32(1),
                        I64(K),
                        I32(8),
                        U64(epoch[0]),
                    ),
                    shared_mem=SMEM,
                )

            return run

        runs = {p: launcher(p) for p in kernels}
        times = {p: [] for p in kernels}
        for rep in range(6):
            for p in list(runs)[rep % len(runs) :] + list(runs)[: rep % len(runs)]:
                runs[p]()
                a, e = cp.cuda.Event(), cp.cuda.Event()
                a.record()
                for _ in range(10):
                    runs[p]()
                e.record()
                e.synchronize()
                times[p].append(cp.cuda.get_elapsed_time(a, e) / 10)
        ref = cp.asnumpy(cp.sum(1 / (1 + cp.exp(-(x.astype(cp.float64) @ w.T.astype(cp.float64) + b))), axis=1))
        outs["old.cubin"] = partial.sum(axis=1)
        row = ", ".join(
            f"{p} {np.median(times[p]):.3f} ms (err {np.max(np.abs(cp.asnumpy(outs[p]) - ref) / ref):.1e})"
            for p in kernels
        )
        print(f"{B} x {K} x {N}: {row}")


if __name__ == "__main__":
    main()
