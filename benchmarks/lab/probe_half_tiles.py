"""64-row wgmma tiles for small batches (issue 8): GPU time per call of every candidate at B = 8-128, against the HBM
floor (W's bytes over the read bandwidth measured here) and torch's GEMM-based expression, each checked against
float64.

Candidates per shape and precision (tf32x3 = the default, tf32): the small-batch CUDA-core kernel (its tuner
candidates), the wgmma tile kernels with BM = 128 and BM = 64 at split counts 1-8 and the static one, and cuBLASLt +
our reduction. Prediction (written before the run): at B = 32 the 128-row tf32x3 tile is compute-bound (3 TF32
products over 4x padded rows: ~140 us at 32 x 4096 x 11008) and the 64-row tile memory-bound (~1.2x the 58 us
floor); at B = 8 the CUDA-core kernel stays best or ties.

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_half_tiles.py
"""

import math
import sys

import torch

from cupy_fused import loader, tune
from cupy_fused.backends import Problem, cublas, fused, small_batch
from cupy_fused.bench.timing import GpuTimer, measure_hbm_read

DEV = 0
SHAPES = [
    (8, 4096, 4096),
    (16, 4096, 4096),
    (32, 4096, 4096),
    (32, 4096, 11008),
    (32, 11008, 4096),
    (48, 4096, 4096),
    (64, 4096, 4096),
    (64, 4096, 11008),
    (96, 4096, 4096),
    (128, 4096, 4096),
]
LARGE = [(1024, 4096, 4096), (4096, 4096, 4096), (128, 32768, 32768)]  # the static wgmma choice only
SPLITS = (1, 2, 3, 4, 6, 8)


def candidates(p: Problem, precision: str, info, static_only: bool):
    out = []
    if p.rows <= small_batch.MAX_ROWS and not static_only:
        out += [("small_batch " + c.kernel, c.build) for c in small_batch.candidates(p, info, True)]
    for cfg in fused.tile_configs("float32", precision, p.rows, True, True, True):
        if static_only and "wgmma" not in cfg.name:
            continue
        static = fused.split_count(p, cfg, info.sms)
        for s in [static] if static_only else sorted(set(SPLITS) | {static}):
            label = f"BM={cfg.bm} {cfg.name} s{s}" + (" (static)" if s == static else "")
            out.append((label, lambda cfg=cfg, s=s: fused.TileKernel(p, cfg, s)))
    if not static_only or precision == "tf32":
        out += [("cublas " + c.kernel, c.build) for c in cublas.candidates(p, precision)]
    return out


FAMILIES = ("BM=128", "BM=64", "small_batch", "cublas")


def main() -> int:
    info = loader.device_info(DEV)
    gbps = measure_hbm_read(torch, GpuTimer(torch))
    print(f"{torch.cuda.get_device_name()}; HBM read {gbps:.0f} GB/s", flush=True)
    stream = torch.cuda.current_stream().cuda_stream
    summary = []
    for i, (B, K, N) in enumerate(SHAPES + LARGE):
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
            for label, build in candidates(p, precision, info, (B, K, N) in LARGE):
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
