"""Did a kernel change move the tile kernels? A previous commit's kernels/ (written beside this script as
_before_kernels/ for the run, not committed) and this tree's, the same instances built in one process and timed
interleaved, GPU time per call at the static split count, results compared bit for bit.

Session 7: the 64-row tile change (BM as a template parameter). Session 9: the split-K exchange loads 8 accumulators
per round trip (epilogue.cuh) (run 3, against HEAD 74adb82); then the small-batch wgmma kernel's consumers with one
wait per stage instead of per half (run 5, against the tree before that change).

    mkdir -p benchmarks/lab/_before_kernels
    git archive <before> kernels | tar -x -C benchmarks/lab/_before_kernels --strip-components=1
    PYTHONPATH=$PWD python3 benchmarks/lab/probe_bm_regression.py
"""

import statistics
from pathlib import Path

import cupy as cp
import torch

from cupy_fused import loader, tune
from cupy_fused.backends import Problem, fused
from cupy_fused.backends.launch import CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES

DEV = 0
BEFORE = Path(__file__).parent / "_before_kernels"
SHAPES = [
    (128, 32768, 32768),
    (128, 4096, 11008),
    (96, 4096, 4096),
    (64, 4096, 11008),
    (64, 4096, 4096),
    (32, 4096, 11008),
    (8, 4096, 4096),
    (1, 4096, 16384),
]


def before_function(filename: str, name: str, smem: int) -> int:
    opts = ("-std=c++17", f"-I{BEFORE}", "-arch=sm_90a")
    code = (BEFORE / filename).read_text()
    fn = cp.RawModule(code=code, options=opts, name_expressions=(name,)).get_function(name).kernel
    cp.cuda.driver.funcSetAttribute(fn.ptr, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem)
    return fn.ptr


def main():
    info = loader.device_info(DEV)
    stream = torch.cuda.current_stream().cuda_stream
    for B, K, N in SHAPES:
        x, w, b = (
            torch.randn(B, K, device="cuda"),
            torch.randn(N, K, device="cuda") / K**0.5,
            torch.randn(N, device="cuda"),
        )
        out = torch.empty(B, device="cuda")
        p = Problem(B, K, N, "float32", True, K, K, True, DEV, 256 * 2**20)
        for precision in ("tf32x3", "tf32"):
            configs = fused.tile_configs("float32", precision, B, True, True, True)
            for cfg in [configs[0]] + [c for c in configs[1:] if c.bm == 128 and c.template == "fused::wgmma_tile"]:
                exe = fused.tile_kernel(p, cfg, fused.split_count(p, cfg, info.sms))
                workspace = torch.empty(max(exe.workspace_bytes, 1), dtype=torch.uint8, device="cuda")
                ws = workspace.data_ptr()  # the tensor stays alive: the kernels hand row sums over through it
                new = exe._launch._function
                try:
                    old = before_function(cfg.filename, exe._launch.name, exe._launch._smem)
                except Exception:  # noqa: BLE001  (an instance the earlier tree did not have)
                    print(f"{B} x {K} x {N} {precision:6s} {exe._launch.name}: not in the earlier tree", flush=True)
                    continue
                times = {"before": [], "after": []}
                outs = {}
                for _ in range(5):
                    for label, fn in (("before", old), ("after", new)):
                        exe._launch._function = fn
                        call = lambda: exe.run(x.data_ptr(), w.data_ptr(), b.data_ptr(), out.data_ptr(), ws, stream)
                        times[label].append(tune.time_calls(call, stream, DEV, info.clock_khz)[0])
                        outs.setdefault(label, []).append(out.clone())
                repeat = {k: all(torch.equal(v[0], o) for o in v) for k, v in outs.items()}
                same = torch.equal(outs["before"][0], outs["after"][0])
                if not same:
                    diff = (outs["before"][0] - outs["after"][0]).abs()
                    print(
                        f"   differ in {int((diff > 0).sum())} of {B} rows, at most {float(diff.max()):.3g}; "
                        f"each bit-identical over its repeats: {repeat}"
                    )
                t0, t1 = statistics.median(times["before"]), statistics.median(times["after"])
                print(
                    f"{B} x {K} x {N} {precision:6s} {exe._launch.name}: before {t0:.4f} ms, after {t1:.4f} ms "
                    f"({t1 / t0:.3f}x) split-K S={exe.splits}{'' if same else ' RESULTS DIFFER'}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
