"""The fp32-accurate default at 4096^3 and 1024 x 4096 x 4096, new tree against the previous release (run with
PYTHONPATH at old_tree for that): GPU time by CUDA-graph replay, the plan's explanation, and forced configurations.

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_regression.py [--old]
"""

import math
import sys

import torch
from probe_floor import graph_us  # this folder

import cupy_fused

SHAPES = [(4096, 4096, 4096), (1024, 4096, 4096), (128, 32768, 32768)]


def graph_ms(fn):
    return graph_us(fn, calls=5) / 1000


def main():
    old = "--old" in sys.argv
    for B, K, N in SHAPES:
        bound = 1 / math.sqrt(K)
        x = torch.randn(B, K, device="cuda")
        w = torch.empty(N, K, device="cuda").uniform_(-bound, bound)
        b = torch.empty(N, device="cuda").uniform_(-bound, bound)
        label = f"{B} x {K} x {N}"
        if old:
            print(f"{label} old default: {graph_ms(lambda: cupy_fused.linear_sigmoid_sum(x, w, b)):.3f} ms")
            continue
        from cupy_fused import loader
        from cupy_fused.backends import Problem, fused

        p = cupy_fused.plan(x, w, b)
        kernel = next(line for line in p.explain().splitlines() if line.startswith("kernel"))
        print(f"{label} new plan: {graph_ms(lambda: p(x, w, b)):.3f} ms  [{kernel[8:110]}]")
        prob = Problem(B, K, N, "float32", True, K, K, True, 0, 256 * 2**20)
        info = loader.device_info(0)
        for cfg in fused.tile_configs("float32", "tf32x3", B, True, info.arch == "sm_90a", True):
            for splits in (1, 2, 4):
                exe = fused.tile_kernel(prob, cfg, splits)
                out = torch.empty(B, device="cuda")
                ws = torch.empty(max(exe.workspace_bytes, 1), dtype=torch.uint8, device="cuda")

                def run(exe=exe, out=out, ws=ws):
                    exe.run(
                        x.data_ptr(),
                        w.data_ptr(),
                        b.data_ptr(),
                        out.data_ptr(),
                        ws.data_ptr(),
                        torch.cuda.current_stream().cuda_stream,
                    )

                print(f"    {cfg.label} S={exe.splits}: {graph_ms(run):.3f} ms")


if __name__ == "__main__":
    main()
