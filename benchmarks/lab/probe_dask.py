"""What the dask face costs (issue 10): one unsharded call against cupy_fused.dask.linear_sigmoid_sum over more and
more (x block, W block) pairs, threaded scheduler, W's blocks persisted first (as the README's recipe does), the
graph built in every call. numpy chunks on the CPU, cupy chunks on the GPU when there is one. Medians, ms.

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_dask.py
"""

import statistics
import time

import dask
import dask.array as da
import numpy as np

import cupy_fused
import cupy_fused.dask as cfd


def median_ms(fn, sync, reps=7):
    fn()
    sync()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def case(xp, sync, label, B, K, N, splits):
    rng = np.random.default_rng(0)
    x = xp.asarray(rng.standard_normal((B, K), dtype=np.float32))
    w = xp.asarray((rng.uniform(-1, 1, (N, K)) / K**0.5).astype(np.float32))
    b = xp.asarray((rng.uniform(-1, 1, N) / K**0.5).astype(np.float32))
    one = median_ms(lambda: cupy_fused.linear_sigmoid_sum(x, w, b), sync)
    print(f"{label} {B} x {K} x {N}: one call {one:.3f} ms")
    for xb, wb in splits:
        dx = da.from_array(x, chunks=(B // xb, K))
        dw, db = dask.persist(da.from_array(w, chunks=(N // wb, K)), da.from_array(b, chunks=(N // wb,)))
        ms = median_ms(lambda: cfd.linear_sigmoid_sum(dx, dw, db).compute(scheduler="threads"), sync)
        print(f"{label} {B} x {K} x {N}: dask {xb} x {wb} = {xb * wb:4d} pairs {ms:8.3f} ms ({ms / one:.2f}x)")


def main():
    splits = [(1, 1), (1, 4), (4, 4), (4, 16), (8, 16)]
    case(np, lambda: None, "cpu numpy", 512, 1024, 4096, splits)
    try:
        import cupy as cp

        cp.cuda.runtime.getDeviceCount()
    except Exception:  # noqa: BLE001 - no GPU: the CPU rows only
        return
    case(cp, cp.cuda.Device().synchronize, "gpu cupy", 4096, 4096, 16384, splits)
    case(cp, cp.cuda.Device().synchronize, "gpu cupy", 128, 4096, 65536, splits)


if __name__ == "__main__":
    main()
