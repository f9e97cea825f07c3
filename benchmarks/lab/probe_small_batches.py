"""Small-batch kernels (issue 8): GPU time per call of every candidate at B = 1-128, against the HBM floor (W's bytes
over the read bandwidth measured here), each checked against float64 and for bit-identical repeats.

Candidates per shape and precision (tf32x3 = the default, tf32): the small-batch CUDA-core kernel (its tuner
candidates), the wgmma tile kernels (BM = 128, BM = 64) and the small-batch wgmma kernel (sbw: W as wgmma's M, the
batch as its N) at split counts 1-8 and the static one, and cuBLASLt + our reduction.

Session 7 prediction: at B = 32 the 128-row tf32x3 tile is compute-bound and the 64-row one memory-bound at ~1.2x
the floor (measured 2.0-2.8x). Session 8 prediction for sbw: W's rows through bulk copies (up to 3-5 k tiles of
32 KB in flight per SM) reach 1.2-1.3x the floor at B = 8-32 (32 x 4096^2: ~28 us against 61.8 for BM = 64), and the
CUDA-core kernel loses to it from B = 8 up.
Session 9 prediction for sbw at BP = 128 (B = 65-128; X3 needs the producers' registers: setmaxnreg): X3 is
tensor-bound (3 m64n128k8 per k8 per warpgroup, ~3070 cycles per 64-wide k tile against ~2340 for W's 32 KB at the
per-SM share of HBM): 128 x 4096 x 11008 ~85 us (128-row tile: 196), 128 x 32768^2 ~2.0-2.3 ms (3.1); TF32 reads W
at ~1.2x the floor (128 x 4096 x 11008 ~70 us, cuBLASLt 77).

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_small_batches.py
"""

import math
import sys

import torch

from cupy_fused import loader, tune
from cupy_fused.backends import Problem, cublas, fused, small_batch
from cupy_fused.bench.timing import GpuTimer, measure_hbm_read

DEV = 0
SHAPES = [
    (1, 4096, 4096),
    (8, 4096, 4096),
    (32, 4096, 4096),
    (32, 4096, 11008),
    (64, 4096, 4096),
    (64, 4096, 11008),
    (65, 4096, 4096),
    (96, 4096, 4096),
    (128, 1024, 1024),
    (128, 4096, 4096),
    (128, 4096, 11008),
    (128, 11008, 4096),
    (127, 4100, 1001),
    (128, 32768, 32768),
]
SPLITS = (1, 2, 3, 4, 6, 8)


def candidates(p: Problem, precision: str, info):
    out = []
    if p.rows <= small_batch.MAX_ROWS:
        out += [("small_batch " + c.kernel, c.build) for c in small_batch.candidates(p, info, True)]
    for cfg in fused.tile_configs("float32", precision, p.rows, True, True, True):
        if cfg.template == "fused::mma_tile":
            continue
        static = fused.split_count(p, cfg, info.sms)
        family = "sbw" if cfg.template.startswith("sbw::") else f"BM={cfg.bm}"
        for s in sorted((set(SPLITS) if p.n * p.k < 2**28 else {1, 2}) | {static}):
            label = f"{family} {cfg.name} s{s}" + (" (static)" if s == static else "")
            out.append((label, lambda cfg=cfg, s=s: fused.tile_kernel(p, cfg, s)))
    out += [("cublas " + c.kernel, c.build) for c in cublas.candidates(p, precision)]
    return out


FAMILIES = ("BM=128", "BM=64", "sbw", "small_batch", "cublas")


def main() -> int:
    info = loader.device_info(DEV)
    gbps = measure_hbm_read(torch, GpuTimer(torch))
    print(f"{torch.cuda.get_device_name()}; HBM read {gbps:.0f} GB/s", flush=True)
    stream = torch.cuda.current_stream().cuda_stream
    summary = []
    for i, (B, K, N) in enumerate(SHAPES):
        torch.manual_seed(i)
        x = torch.randn(B, K, device="cuda")
        w = torch.empty(N, K, device="cuda").uniform_(-1 / math.sqrt(K), 1 / math.sqrt(K))
        b = torch.empty(N, device="cuda").uniform_(-1 / math.sqrt(K), 1 / math.sqrt(K))
        ref = torch.sigmoid(x.double() @ w.double().T + b.double()).sum(-1)
        floor_us = (N * K + B * K) * 4 / gbps / 1e3
        p = Problem(B, K, N, "float32", True, K, K, True, DEV, 256 * 2**20)
        out = torch.empty(B, device="cuda")
        ptrs = (x.data_ptr(), w.data_ptr(), b.data_ptr())
        for precision in ("tf32x3", "tf32"):
            best = {}
            for label, build in candidates(p, precision, info):
                try:
                    exe = build()
                except Exception as exc:  # noqa: BLE001
                    print(f"  {label}: build failed {exc!r}", flush=True)
                    continue
                ws = torch.empty(max(exe.workspace_bytes, 1), dtype=torch.uint8, device="cuda")

                def call(exe=exe, ws=ws):
                    exe.run(
                        *ptrs,
                        out.data_ptr(),
                        ws.data_ptr() if exe.workspace_bytes else 0,
                        stream,
                    )

                out.fill_(float("nan"))
                call()
                torch.cuda.synchronize()
                err = float((out.double() - ref).norm() / ref.norm())
                first = out.clone()
                gpu_ms, _ = tune.time_calls(call, stream, DEV, info.clock_khz)
                same = torch.equal(first, out)
                us = gpu_ms * 1e3
                print(
                    f"{B} x {K} x {N} {precision:7s} {label:64s} {us:9.1f} us {us / floor_us:5.2f}x floor "
                    f"err {err:.2e}{'' if same else ' NOT BIT-IDENTICAL'}",
                    flush=True,
                )
                family = label.split(" ")[0]
                if family not in best or us < best[family][0]:
                    best[family] = (us, label, err)
            summary.append((f"{B} x {K} x {N}", precision, floor_us, best))
        del x, w, b, ref
    print("\nsummary: best GPU us per call of each family (x the HBM floor)")
    print(f"{'B x K x N':20s} {'prec':7s} {'floor':>7s} " + " ".join(f"{f:>17s}" for f in FAMILIES))
    for shape, precision, floor_us, best in summary:
        cells = [f"{best[f][0]:9.1f} ({best[f][0] / floor_us:4.2f})" if f in best else f"{'-':>17s}" for f in FAMILIES]
        print(f"{shape:20s} {precision:7s} {floor_us:7.1f} " + " ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
