"""Did the 64-row tile change (BM as a template parameter, consumer offsets) move the 128-row kernels? The previous
commit's fused_wgmma_sm90.cu (written beside this script as _before_wgmma.cu for the run, from `git show`) and this
tree's, built in one process and interleaved, GPU time per call of the static choice at large shapes.

    git show <before>:kernels/fused_wgmma_sm90.cu > benchmarks/lab/_before_wgmma.cu
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
BEFORE = Path(__file__).parent / "_before_wgmma.cu"


def before_function(name: str, smem: int) -> int:
    opts = ("-std=c++17", f"-I{loader.kernel_dir()}", "-arch=sm_90a")
    fn = cp.RawModule(code=BEFORE.read_text(), options=opts, name_expressions=(name,)).get_function(name).kernel
    cp.cuda.driver.funcSetAttribute(fn.ptr, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem)
    return fn.ptr


def main():
    info = loader.device_info(DEV)
    stream = torch.cuda.current_stream().cuda_stream
    for B, K, N in (
        (128, 32768, 32768),
        (128, 16384, 16384),
        (4096, 4096, 4096),
        (1024, 4096, 4096),
        (128, 4096, 4096),
    ):
        x, w, b = (
            torch.randn(B, K, device="cuda"),
            torch.randn(N, K, device="cuda") / K**0.5,
            torch.randn(N, device="cuda"),
        )
        out = torch.empty(B, device="cuda")
        p = Problem(B, K, N, "float32", True, K, K, True, DEV, 256 * 2**20)
        for precision in ("tf32x3", "tf32"):
            cfg = next(c for c in fused.tile_configs("float32", precision, B, True, True, True) if c.bm == 128)
            exe = fused.TileKernel(p, cfg, fused.split_count(p, cfg, info.sms))
            workspace = torch.empty(max(exe.workspace_bytes, 1), dtype=torch.uint8, device="cuda")
            ws = workspace.data_ptr()  # the tensor stays alive: the kernels hand row sums over through it
            new = exe._launch._function
            old_name = exe._launch.name.replace(", 128, false>", ", false>")  # the instance before BM existed
            old = before_function(old_name, exe._launch._smem)
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
                f"({t1 / t0:.3f}x){'' if same else ' RESULTS DIFFER'}",
                flush=True,
            )


if __name__ == "__main__":
    main()
