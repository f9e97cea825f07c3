"""What limits the small-batch wgmma kernel (issue 8, session 8): lab-only variants compiled from patched source,
timed against the kernel as it is.

Run 1 (the kernel with per-row 256-byte bulk copies of W, x loaded by the producer threads): 1 x 4096^2 at 42 us
(1.95x the floor), ~2.5 us per 32 KB k tile per block; without W's copies 20 us, without x's loads 34 us, without
the math 41 us: the per-row copies and x's L2 latency in every k tile, not the tensor cores. Run 2 (this version:
TMA boxes for both, x split from shared memory): "no W" (no W boxes: stale shared memory) and "no math" (no
wgmma). Prediction: at B <= 8 the kernel within 1.3x of the floor, "no W" well under it.

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_sbw_limits.py
"""

import math
import sys

import cupy
import torch

from cupy_fused import loader, tune
from cupy_fused.backends import Problem, fused
from cupy_fused.backends.launch import CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES

DEV = 0
FILE = "wgmma_small_batch_sm90.cu"
PATCHES = {
    "as is": [],
    "no W": [
        (
            """mbar_arrive_expect_tx(full, 2 * WSUB);
                    tma_load_2d(stage + W_OFF, w_map, k0, n0, full);
                    tma_load_2d(stage + W_OFF + WSUB, w_map, k0 + 32, n0, full);""",
            "mbar_arrive(full);",
        )
    ],
    "no math": [("wgmma_tf32_rs<BP>::run(", "if (K < 0) wgmma_tf32_rs<BP>::run(")],
}
SHAPES = [(1, 4096, 4096), (8, 4096, 4096), (32, 4096, 4096), (1, 4096, 16384)]


def patched_function(name: str, patches):
    code = loader.source(FILE)
    for old, new in patches:
        assert old in code, old
        code = code.replace(old, new)
    module = cupy.RawModule(
        code=code, options=loader.options(loader.arch_of(DEV)), name_expressions=(name,), backend="nvrtc"
    )
    return module.get_function(name).kernel


def main() -> int:
    info = loader.device_info(DEV)
    stream = torch.cuda.current_stream().cuda_stream
    from cupy.cuda import driver

    for i, (B, K, N) in enumerate(SHAPES):
        torch.manual_seed(i)
        x = torch.randn(B, K, device="cuda")
        w = torch.empty(N, K, device="cuda").uniform_(-1 / math.sqrt(K), 1 / math.sqrt(K))
        b = torch.empty(N, device="cuda").uniform_(-1 / math.sqrt(K), 1 / math.sqrt(K))
        p = Problem(B, K, N, "float32", True, K, K, True, DEV, 256 * 2**20)
        out = torch.empty(B, device="cuda")
        cfg = fused.tile_configs("float32", "tf32x3", B, True, True, True)[0]
        static = fused.split_count(p, cfg, info.sms)
        for splits in sorted({static, 2 * static, max(1, static // 2)}):
            for label, patches in PATCHES.items():
                exe = fused.tile_kernel(p, cfg, splits)
                fn = patched_function(cfg.instance(False), patches)
                driver.funcSetAttribute(fn.ptr, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, cfg.smem)
                exe._launch._function = fn.ptr
                ws = torch.empty(max(exe.workspace_bytes, 1), dtype=torch.uint8, device="cuda")

                def call(exe=exe, ws=ws):
                    exe.run(x.data_ptr(), w.data_ptr(), b.data_ptr(), out.data_ptr(), ws.data_ptr(), stream)

                call()
                torch.cuda.synchronize()
                us = tune.time_calls(call, stream, DEV, info.clock_khz)[0] * 1e3
                blocks = -(-N // 128) * exe.splits
                tiles = -(-K // 64) // exe.splits
                print(
                    f"{B} x {K} x {N} s{exe.splits} ({blocks} blocks, {tiles} k tiles each) {label:8s} {us:8.1f} us "
                    f"{us / tiles:6.2f} us per k tile",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
