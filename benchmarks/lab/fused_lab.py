"""Lab for the fused linear -> sigmoid -> row-sum kernels: compile, check, time (one GPU run does it all).

    PYTHONPATH=$PWD:benchmarks/lab python3 benchmarks/lab/fused_lab.py [--quick] [--skip-big] [--variants] [--wgmma] [--ws] [--sass] [--only 0,4]
    PYTHONPATH=$PWD:benchmarks/lab python3 benchmarks/lab/fused_lab.py --ws-only [--skip-big] [--no-ws-times]

--variants times lab tile configurations beside the package's table; --wgmma checks and times the sm_90a wgmma
kernel variants after the main table (a fault there cannot spoil it); --ws does the same for the warp-specialised
kernel (modes 8-13); --ws-only runs just the float32 tf32 / tf32x3 default-route checks, 64-bit offsets and the --ws
section (about 3 minutes on the H100); --sass prints a SASS instruction histogram.

1. compiles every instance of fused_v5.name_expressions() (the session 1-2 kernels in benchmarks/lab/kernels) (+ lab tile variants), prints registers/spills;
2. checks every dtype/precision against a float64 torch reference on odd shapes (outputs poisoned with NaN first,
   run twice for bit-identical results, unaligned slices, K % 4 != 0, no bias), tf32x3 error vs cuBLAS fp32's,
   and a W of 65536 x 32769 fp32 (64-bit offsets);
3. times variants at the target shapes against torch eager fp32 / TF32 (CUDA events on one stream, warm-up,
   median of >= 20), and prints the table LAST.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import cupy as cp
import numpy as np
import torch
import torch.nn.functional as F

import fused_v5 as _fused  # the lab copy of the session 1-2 kernels and launcher
from fused_v5 import _kernels

HBM_READ = 3.09e12  # B/s, measured read bandwidth floor of the H100 in the issue
RESULTS: list[dict] = []
FAILS: list[str] = []


def log(*a):
    print(*a, flush=True)


def stream():
    return cp.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream)


def to_cp(t: torch.Tensor):
    if t.dtype == torch.bfloat16:
        return cp.asarray(t.view(torch.int16)).view(cp.uint16)
    return cp.asarray(t)


def fused(x, w, b, out, precision, cfg=None, mode=None):
    ld = "bfloat16" if x.dtype == torch.bfloat16 else None
    _fused.run(to_cp(x), to_cp(w), None if b is None else to_cp(b), to_cp(out), precision, stream(),
               logical_dtype=ld, _cfg=cfg, _mode=mode)


FORCE_MODE = {"tf32": 1, "tf32x3": 5, "bf16": 3}


def torch_ref(x, w, b):
    return torch.sum(torch.sigmoid(F.linear(x, w, b)), dim=-1)


def ref64(x, w, b, chunk=None):
    x64 = x.double()
    if chunk is None:
        return torch_ref(x64, w.double(), None if b is None else b.double())
    acc = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for n0 in range(0, w.shape[0], chunk):
        wc = w[n0:n0 + chunk].double()
        bc = None if b is None else b[n0:n0 + chunk].double()
        acc += torch_ref(x64, wc, bc)
        del wc
    return acc


def relerr(out, ref):
    return (torch.linalg.norm(out.double() - ref) / torch.linalg.norm(ref)).item()


def make(B, K, N, dtype, bias=True, scale=None, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    s = scale if scale is not None else 1.0 / K ** 0.5 * 3.0
    x = torch.randn(B, K, device="cuda", generator=g, dtype=torch.float32).to(dtype)
    w = (torch.randn(N, K, device="cuda", generator=g, dtype=torch.float32) * s).to(dtype)
    b = torch.randn(N, device="cuda", generator=g, dtype=torch.float32).to(dtype) if bias else None
    return x, w, b


CASES = [  # (dtype, precision, tolerance on ||out-ref||/||ref||)
    (torch.float32, "ieee", 1e-5),
    (torch.float32, "tf32", 3e-3),
    (torch.float32, "tf32x3", 2e-6),
    (torch.float32, "bf16", 2e-2),
    (torch.float16, "tf32", 3e-3),
    (torch.bfloat16, "tf32", 2e-2),
    (torch.float64, "ieee", 1e-12),
]
SHAPES = [(1, 1, 1), (3, 5, 7), (257, 1000, 4099), (129, 13, 130), (64, 64, 128), (300, 37, 1), (2, 129, 513)]


def check_one(x, w, b, dtype, precision, tol, label, cfg=None, mode=None):
    B = x.shape[0]
    out = torch.full((B,), float("nan"), device="cuda", dtype=dtype)
    fused(x, w, b, out, precision, cfg, mode)
    out2 = torch.full((B,), float("nan"), device="cuda", dtype=dtype)
    fused(x, w, b, out2, precision, cfg, mode)
    torch.cuda.synchronize()
    ref = ref64(x, w, b)
    e = relerr(out, ref)
    nan = bool(torch.isnan(out).any())
    det = torch.equal(out.view(torch.uint8) if False else out, out2)
    ok = (not nan) and det and e <= tol
    if not ok:
        FAILS.append(f"{label}: err={e:.2e} tol={tol:.0e} nan={nan} deterministic={det}")
    return ok, e


def correctness(variant_cfgs):
    log("== correctness (default route, and the tensor-core kernel forced on small shapes) ==")
    for dtype, prec, tol in CASES:
        forced = None
        if dtype in (torch.float16, torch.bfloat16):
            forced = 4
        elif dtype == torch.float32 and prec in FORCE_MODE:
            forced = FORCE_MODE[prec]
        for mode in ([None] if forced is None else [None, forced]):
            worst = 0.0
            nok = 0
            for (B, K, N) in SHAPES:
                for bias in (True, False):
                    x, w, b = make(B, K, N, dtype, bias)
                    ok, e = check_one(x, w, b, dtype, prec, tol, f"{dtype} {prec} mode={mode} {B}x{K}x{N} bias={bias}",
                                      mode=mode)
                    worst, nok = max(worst, e), nok + (not ok)
            # unaligned slices: x[:, 1:], w[:, 1:] (base + 1 element, row stride K+1); strided x[:, :K]
            for (B, K, N) in [(257, 1000, 4099), (5, 8, 9)]:
                x, w, b = make(B, K + 1, N, dtype)
                ok, e = check_one(x[:, 1:], w[:, 1:], b, dtype, prec, tol, f"{dtype} {prec} mode={mode} sliced {B}x{K}x{N}",
                                  mode=mode)
                worst, nok = max(worst, e), nok + (not ok)
                ok, e = check_one(x[:, :K], w[:, :K], b, dtype, prec, tol,
                                  f"{dtype} {prec} mode={mode} strided {B}x{K}x{N}", mode=mode)
                worst, nok = max(worst, e), nok + (not ok)
            log(f"  {str(dtype):15s} {prec:7s} mode={mode} worst rel err {worst:.2e} (tol {tol:.0e}) "
                f"{'OK' if nok == 0 else f'{nok} FAILED'}")
    for cfg, mode in variant_cfgs:
        tol = {1: 3e-3, 3: 2e-2}.get(mode, 2e-6)
        worst = 0.0
        for (B, K, N) in [(257, 1000, 4099), (3, 5, 7), (300, 37, 1), (129, 13, 130)]:
            x, w, b = make(B, K, N, torch.float32)
            ok, e = check_one(x, w, b, torch.float32, "tf32", tol, f"cfg {cfg} mode {mode} {B}x{K}x{N}", cfg, mode)
            worst = max(worst, e)
        log(f"  variant {cfg} mode {mode}: worst {worst:.2e}")


def tf32x3_vs_cublas(variant_cfgs):
    log("== tf32x3 vs cuBLAS fp32 (error vs float64; must be <= 2x) ==")
    for (B, K, N) in [(256, 4096, 4096), (128, 32768, 2048)]:
        x, w, b = make(B, K, N, torch.float32)
        ref = ref64(x, w, b)
        torch.backends.cuda.matmul.allow_tf32 = False
        e_cublas = relerr(torch_ref(x, w, b), ref)
        out = torch.empty(B, device="cuda")
        fused(x, w, b, out, "ieee")
        line = f"  {B}x{K}x{N}: cuBLAS fp32 {e_cublas:.2e} ieee {relerr(out, ref):.2e}"
        for label, cfg, mode in [("tf32x3 default", None, None)] + [
                (f"mode {m} {c.bm}x{c.bn}/{c.wm}x{c.wn}", c, m) for c, m in variant_cfgs if m in (2, 5)]:
            fused(x, w, b, out, "tf32x3", cfg, mode)
            e = relerr(out, ref)
            line += f" | {label}: {e:.2e} ({e / e_cublas:.2f}x)"
            if label == "tf32x3 default" and e / e_cublas > 2.0:
                FAILS.append(f"tf32x3 error {e:.2e} > 2x cuBLAS fp32 {e_cublas:.2e} at {B}x{K}x{N}")
        log(line)


def big_offsets():
    log("== 64-bit offsets: W 65536 x 32769 fp32 (8.6 GB), B = 3 ==")
    B, K, N = 3, 32769, 65536
    g = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randn(B, K, device="cuda", generator=g)
    w = torch.randn(N, K, device="cuda", generator=g) / K ** 0.5 * 3
    # make the last rows distinctive so an overflowed offset would show
    w[-1000:] *= -2.0
    b = torch.randn(N, device="cuda", generator=g)
    ref = ref64(x, w, b, chunk=8192)
    for prec, tol in (("tf32", 3e-3), ("tf32x3", 2e-6), ("ieee", 2e-6)):
        out = torch.full((B,), float("nan"), device="cuda")
        fused(x, w, b, out, prec)
        torch.cuda.synchronize()
        e = relerr(out, ref)
        log(f"  {prec}: rel err {e:.2e} {'OK' if e <= tol else 'FAIL'}")
        if not e <= tol:
            FAILS.append(f"big offsets {prec} err {e:.2e}")
    # aligned variant with > 2^31 elements too: K = 32772 (rows 16-byte aligned)
    del w, x
    torch.cuda.empty_cache()
    K = 32772
    x = torch.randn(B, K, device="cuda", generator=g)
    w = torch.randn(N, K, device="cuda", generator=g) / K ** 0.5 * 3
    w[-1000:] *= -2.0
    ref = ref64(x, w, b, chunk=8192)
    out = torch.full((B,), float("nan"), device="cuda")
    fused(x, w, b, out, "tf32")
    torch.cuda.synchronize()
    e = relerr(out, ref)
    log(f"  aligned K=32772 tf32: rel err {e:.2e} {'OK' if e <= 3e-3 else 'FAIL'}")
    if not e <= 3e-3:
        FAILS.append(f"big offsets aligned err {e:.2e}")
    del w, x
    torch.cuda.empty_cache()


def time_fn(fn, reps=25, warm=3, cap_s=20.0):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    t_start = time.time()
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        ts.append(s.elapsed_time(e))
        if time.time() - t_start > cap_s and len(ts) >= 5:
            break
    return statistics.median(ts)


def gpu_kernel_time(fn, reps=50):
    """Sum of kernel durations per call (CUPTI via torch.profiler), for launch-bound tiny shapes."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
    total_us = 0.0
    nk = 0
    for ev in prof.events():
        if str(getattr(ev, "device_type", "")).endswith("CUDA"):
            total_us += ev.time_range.elapsed_us()
            nk += 1
    ev_ms = time_fn(fn)
    log(f"    kernels/call {nk / reps:.1f}, kernel time {total_us / reps:.2f} us, event time {ev_ms * 1e3:.2f} us")
    return total_us / reps / 1e3 if nk else ev_ms


def bench_shape(B, K, N, precs, cfgs, tiny=False):
    log(f"== timing {B} x {K} x {N} (B x K x N) ==")
    x, w, b = make(B, K, N, torch.float32, seed=2)
    flops = 2.0 * B * K * N
    bytes_ = 4.0 * (B * K + N * K + N + B)
    floor_ms = bytes_ / HBM_READ * 1e3
    nref = min(B, 512)  # float64 reference on the first rows only (the full one is slow at 16384 x 1024 x 65536)
    ref = ref64(x[:nref], w, b, chunk=4096)
    timer = gpu_kernel_time if tiny else time_fn
    base = {}
    for mode, tf in (("torch fp32", False), ("torch tf32", True)):
        torch.backends.cuda.matmul.allow_tf32 = tf
        try:
            ms = timer(lambda: torch_ref(x, w, b))
        except Exception as exc:  # noqa: BLE001
            log(f"  {mode}: timing failed {exc!r}")
            continue
        e = relerr(torch_ref(x[:nref], w, b), ref)
        base[mode] = ms
        RESULTS.append(dict(shape=f"{B}x{K}x{N}", var=mode, ms=ms, flops=flops, bytes=bytes_, floor=floor_ms, err=e,
                            base=None))
        log(f"  {mode}: {ms:.4f} ms  err {e:.2e}")
    torch.backends.cuda.matmul.allow_tf32 = False
    out = torch.empty(B, device="cuda")
    for prec in precs:
        for cfg, mode in cfgs:
            if prec == "ieee" and cfg is not None:
                continue
            if mode is not None and _fused._FLOAT_MODE.get(prec) != mode and not (prec == "tf32x3" and mode in (2, 11, 13)) \
                    and not (prec == "tf32" and mode in (6, 7, 8, 9, 10, 12)):
                continue
            label = prec + ("" if cfg is None else f" {cfg.bm}x{cfg.bn}/{cfg.wm}x{cfg.wn}/s{cfg.stages}/m{cfg.minb}")
            if mode in (6, 7):
                label = f"tf32 wgmma {cfg.bm}x{cfg.bn}/s{cfg.stages}" + (" (truncating)" if mode == 7 else "")
            if mode in WS_LABEL:
                label = f"{prec} ws {cfg.bm}x{cfg.bn}/s{cfg.stages} {WS_LABEL[mode]}"
            label += "" if mode in (None, _fused._FLOAT_MODE.get(prec)) else f" mode{mode}"
            if cfg is None and mode is None:
                label += " [default: " + _fused.plan(B, N, K, "float32", prec, True, True, arch=ARCH)[0] + "]"
            try:
                ms = timer(lambda: fused(x, w, b, out, prec, cfg, mode), cap_s=15.0) if not tiny else timer(
                    lambda: fused(x, w, b, out, prec, cfg, mode))
            except Exception as exc:  # noqa: BLE001
                log(f"  {label}: failed {exc!r}")
                FAILS.append(f"timing {label} {B}x{K}x{N}: {exc!r}")
                continue
            out.fill_(float("nan"))
            fused(x, w, b, out, prec, cfg, mode)
            e = relerr(out[:nref], ref)
            bref = base.get("torch tf32" if prec in ("tf32", "bf16") else "torch fp32")
            RESULTS.append(dict(shape=f"{B}x{K}x{N}", var=label, ms=ms, flops=flops, bytes=bytes_, floor=floor_ms,
                                err=e, base=bref, tf=base.get("torch tf32"), fp=base.get("torch fp32")))
            log(f"  {label}: {ms:.4f} ms  err {e:.2e}")
    del x, w, b
    torch.cuda.empty_cache()


VARIANTS16: list = []


def bench16(B, K, N):
    log(f"== timing fp16 / bf16 inputs {B} x {K} x {N} ==")
    flops = 2.0 * B * K * N
    for dt in (torch.float16, torch.bfloat16):
        x, w, b = make(B, K, N, dt, seed=3)
        bytes_ = 2.0 * (B * K + N * K + N + B)
        floor_ms = bytes_ / HBM_READ * 1e3
        nref = min(B, 512)
        ref = ref64(x[:nref], w, b, chunk=4096)
        t_torch = time_fn(lambda: torch_ref(x, w, b))
        e_t = relerr(torch_ref(x[:nref], w, b), ref)
        out = torch.empty(B, device="cuda", dtype=dt)
        name = str(dt).replace("torch.", "")
        RESULTS.append(dict(shape=f"{B}x{K}x{N}", var=f"torch eager {name}", ms=t_torch, flops=flops, bytes=bytes_,
                            floor=floor_ms, err=e_t))
        for cfg in [None] + VARIANTS16:
            ms = time_fn(lambda: fused(x, w, b, out, "tf32", cfg, None if cfg is None else 4))
            out.fill_(float("nan"))
            fused(x, w, b, out, "tf32", cfg, None if cfg is None else 4)
            e = relerr(out[:nref], ref)
            label = f"fused {name}" + ("" if cfg is None else f" {cfg.bm}x{cfg.bn}/{cfg.wm}x{cfg.wn}/m{cfg.minb}")
            RESULTS.append(dict(shape=f"{B}x{K}x{N}", var=label + " (vs fp32 col = vs torch same dtype)", ms=ms,
                                flops=flops, bytes=bytes_, floor=floor_ms, err=e, fp=t_torch))
            log(f"  {label}: torch {t_torch:.4f} ms (err {e_t:.1e})  fused {ms:.4f} ms (err {e:.1e})")
        del x, w, b
        torch.cuda.empty_cache()


def sass_histogram(name):
    import os
    import shutil
    import subprocess
    import tempfile

    if not (shutil.which("nvcc") and shutil.which("cuobjdump")):
        log("  (no nvcc / cuobjdump: no SASS histogram)")
        return
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "one.cu")
        with open(src, "w") as f:
            f.write(f'#include "fused_v5.cu"\nauto* p0 = &{name};\n')
        cub = os.path.join(d, "one.cubin")
        subprocess.run(["nvcc", "-arch=sm_90a", "-cubin", "-I", str(_kernels.kernel_dir()), "-I", str(_fused._SOURCE.parent), "-std=c++17", "-o", cub,
                        src], check=True)
        sass = subprocess.run(["cuobjdump", "-sass", cub], check=True, capture_output=True, text=True).stdout
    import collections
    import re

    ops = collections.Counter(m.group(1).split(".")[0] for m in re.finditer(r"/\*[0-9a-f]{4}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)", sass))
    log(f"== SASS histogram of {name} (static counts) ==")
    log("  " + ", ".join(f"{k} {v}" for k, v in ops.most_common(24)))


def wgmma_section():
    """sm_90a wgmma TF32 kernel (modes 6 / 7): compile, check (forced) on the odd shapes, time at the target shapes.
    Runs last: a fault here cannot spoil the main table above."""
    global RESULTS
    RESULTS = []
    C = _fused.TileConfig
    cfgs = [(C(128, 256, 64, 256, 4, 1), 6), (C(128, 128, 64, 128, 4, 1), 6), (C(128, 256, 64, 256, 3, 1), 6),
            (C(128, 256, 64, 256, 4, 1), 7)]
    log("\n== wgmma (sm_90a) section ==")
    for c, m in cfgs:
        k = _kernels.get_function(_fused.FILENAME, _fused.wgmma_name(c, m == 6))
        log(f"  {_fused.wgmma_name(c, m == 6)}: regs {k.num_regs} local {k.local_size_bytes} B")
    nfail0 = len(FAILS)
    for c, m in cfgs[:2]:
        worst = 0.0
        for (B, K, N) in SHAPES + [(300, 1024, 1000), (1, 64, 300), (3, 8, 7), (129, 12, 130), (300, 36, 1),
                                   (2, 132, 513), (130, 4, 257), (257, 996, 4099)]:
            for bias in (True, False):
                x, w, b = make(B, K, N, torch.float32, bias)
                ok, e = check_one(x, w, b, torch.float32, "tf32", 3e-3, f"wgmma {c.bn}/{c.stages} {B}x{K}x{N}", c, m)
                worst = max(worst, e)
        for (B, K, N) in [(257, 1000, 4099), (5, 8, 9)]:
            x, w, b = make(B, K + 1, N, torch.float32)
            ok, e = check_one(x[:, 1:], w[:, 1:], b, torch.float32, "tf32", 3e-3, f"wgmma sliced {B}x{K}x{N}", c, m)
            worst = max(worst, e)
            ok, e = check_one(x[:, :K], w[:, :K], b, torch.float32, "tf32", 3e-3, f"wgmma strided {B}x{K}x{N}", c, m)
            worst = max(worst, e)
        log(f"  wgmma bn={c.bn} stages={c.stages}: worst rel err {worst:.2e}")
    # 64-bit offsets (aligned rows: K = 32772)
    B, K, N = 3, 32772, 65536
    g = torch.Generator(device="cuda").manual_seed(5)
    x = torch.randn(B, K, device="cuda", generator=g)
    w = torch.randn(N, K, device="cuda", generator=g) / K ** 0.5 * 3
    w[-1000:] *= -2.0
    b = torch.randn(N, device="cuda", generator=g)
    ref = ref64(x, w, b, chunk=8192)
    out = torch.full((B,), float("nan"), device="cuda")
    fused(x, w, b, out, "tf32", cfgs[0][0], 6)
    torch.cuda.synchronize()
    e = relerr(out, ref)
    log(f"  wgmma 64-bit offsets (W 65536 x 32772): rel err {e:.2e} {'OK' if e <= 3e-3 else 'FAIL'}")
    if not e <= 3e-3:
        FAILS.append(f"wgmma big offsets err {e:.2e}")
    del x, w, b
    torch.cuda.empty_cache()
    ok_all = len(FAILS) == nfail0
    log(f"  wgmma checks: {'all passed' if ok_all else 'FAILED'}")
    if not ok_all:
        for f in FAILS[nfail0:]:
            log("  " + f)
        return
    for (B, K, N) in [(128, 32768, 32768), (16384, 1024, 65536), (4096, 4096, 4096)]:
        bench_shape(B, K, N, ["tf32"], [(None, None)] + cfgs, False)
    print_table("wgmma section")


WS_REG = False  # also check / time the register-path producer modes 12 / 13 (correct, but 2x slower)
WS_LABEL = {8: "round+pf256", 9: "trunc+pf256", 10: "round", 11: "x3 split+promote", 12: "reg round+L2pf",
            13: "x3 reg split+L2pf"}
ARCH = ""


def ws_section(times=True):
    """Warp-specialised sm_90a kernel fls_wgmma_ws (modes 8-11): checks (forced) on odd shapes, sliced / strided
    (the unaligned fallback), tf32x3 vs cuBLAS fp32, 64-bit offsets; then timings at the three target shapes."""
    global RESULTS
    RESULTS = []
    C = _fused.TileConfig
    ws, x3 = _fused.WGMMA_WS_CONFIG, _fused.WGMMA_X3_CONFIG
    cfgs = [(ws, 8), (ws, 9), (x3, 11)] + ([(ws, 12), (x3, 13)] if WS_REG else [])
    old6 = (_fused.WGMMA_CONFIG, 6)
    mma5 = (_fused.config_for(5, 128), 5)
    log("\n== warp-specialised wgmma (sm_90a) section ==")
    for c, m in cfgs:
        k = _kernels.get_function(_fused.FILENAME, _fused.wgmma_ws_name(c, m))
        log(f"  {_fused.wgmma_ws_name(c, m)}: regs {k.num_regs} local {k.local_size_bytes} B")
    nfail0 = len(FAILS)
    for c, m in cfgs:
        prec, tol = ("tf32x3", 2e-6) if m in (11, 13) else ("tf32", 3e-3)
        worst = 0.0
        for (B, K, N) in SHAPES + [(300, 1024, 1000), (1, 64, 300), (3, 8, 7), (129, 12, 130), (300, 36, 1),
                                   (2, 132, 513), (130, 4, 257), (257, 996, 4099), (128, 4096, 1024)]:
            for bias in (True, False):
                x, w, b = make(B, K, N, torch.float32, bias)
                ok, e = check_one(x, w, b, torch.float32, prec, tol, f"ws mode {m} {B}x{K}x{N} bias={bias}", c, m)
                worst = max(worst, e)
        for (B, K, N) in [(257, 1000, 4099), (5, 8, 9)]:
            x, w, b = make(B, K + 1, N, torch.float32)
            ok, e = check_one(x[:, 1:], w[:, 1:], b, torch.float32, prec, tol, f"ws {m} sliced {B}x{K}x{N}", c, m)
            worst = max(worst, e)
            ok, e = check_one(x[:, :K], w[:, :K], b, torch.float32, prec, tol, f"ws {m} strided {B}x{K}x{N}", c, m)
            worst = max(worst, e)
        log(f"  ws mode {m} ({WS_LABEL[m]}): worst rel err {worst:.2e} (tol {tol:.0e})")
    for (B, K, N) in [(256, 4096, 4096), (128, 32768, 2048)]:
        x, w, b = make(B, K, N, torch.float32)
        ref = ref64(x, w, b)
        torch.backends.cuda.matmul.allow_tf32 = False
        e_cublas = relerr(torch_ref(x, w, b), ref)
        out = torch.empty(B, device="cuda")
        for m in (11, 13) if WS_REG else (11,):
            fused(x, w, b, out, "tf32x3", x3, m)
            e = relerr(out, ref)
            log(f"  tf32x3 ws mode {m} vs cuBLAS fp32 {B}x{K}x{N}: {e:.2e} vs {e_cublas:.2e} ({e / e_cublas:.2f}x)")
            if e / e_cublas > 2.0:
                FAILS.append(f"ws {m} tf32x3 error {e:.2e} > 2x cuBLAS fp32 {e_cublas:.2e} at {B}x{K}x{N}")
    B, K, N = 3, 32772, 65536
    g = torch.Generator(device="cuda").manual_seed(5)
    x = torch.randn(B, K, device="cuda", generator=g)
    w = torch.randn(N, K, device="cuda", generator=g) / K ** 0.5 * 3
    w[-1000:] *= -2.0
    b = torch.randn(N, device="cuda", generator=g)
    ref = ref64(x, w, b, chunk=8192)
    for c, m in [(ws, 8), (x3, 11)] + ([(ws, 12), (x3, 13)] if WS_REG else []):
        out = torch.full((B,), float("nan"), device="cuda")
        fused(x, w, b, out, "tf32x3" if m in (11, 13) else "tf32", c, m)
        torch.cuda.synchronize()
        e = relerr(out, ref)
        tol = 2e-6 if m in (11, 13) else 3e-3
        log(f"  ws mode {m} 64-bit offsets (W 65536 x 32772): rel err {e:.2e} {'OK' if e <= tol else 'FAIL'}")
        if not e <= tol:
            FAILS.append(f"ws mode {m} big offsets err {e:.2e}")
    del x, w, b
    torch.cuda.empty_cache()
    # same-sign data: truncation (mode 9) is biased toward zero, rounding is not; torch TF32 for reference
    B, K, N = 128, 4096, 4096
    g = torch.Generator(device="cuda").manual_seed(7)
    x = torch.rand(B, K, device="cuda", generator=g)
    w = torch.rand(N, K, device="cuda", generator=g) * (2.0 / K)
    b = torch.randn(N, device="cuda", generator=g) - 0.5
    ref = ref64(x, w, b)
    torch.backends.cuda.matmul.allow_tf32 = True
    e_t = relerr(torch_ref(x, w, b), ref)
    torch.backends.cuda.matmul.allow_tf32 = False
    line = f"  same-sign data {B}x{K}x{N} (x, W >= 0): torch TF32 err {e_t:.2e}"
    for c, m in [(ws, 8), (ws, 9), (old6[0], 6)]:
        out = torch.empty(B, device="cuda")
        fused(x, w, b, out, "tf32", c, m)
        e = relerr(out, ref)
        line += f" | mode {m}: {e:.2e} ({e / e_t:.2f}x)"
    log(line)
    ok_all = len(FAILS) == nfail0
    log(f"  ws checks: {'all passed' if ok_all else 'FAILED'}")
    if not ok_all:
        for f in FAILS[nfail0:]:
            log("  " + f)
        return
    if not times:
        return
    for (B, K, N) in [(128, 32768, 32768), (16384, 1024, 65536), (4096, 4096, 4096)]:
        precs = ["tf32", "tf32x3"] if B != 16384 else ["tf32"]
        bench_shape(B, K, N, precs, [(None, None), old6, (ws, 8), (ws, 9), mma5, (x3, 11)]
                    + ([(ws, 12), (x3, 13)] if WS_REG else []), False)
    print_table("warp-specialised wgmma section")


def print_table(title):
    log(f"\n== table: {title} (H100; ms = median CUDA-event time per call, tiny shape = summed kernel time) ==")
    log(f"{'shape BxKxN':>18s} {'variant':38s} {'ms':>9s} {'TFLOP/s':>8s} {'GB/s':>7s} {'floor/x':>7s} "
        f"{'vs fp32':>7s} {'vs tf32':>7s} {'rel err':>8s}")
    for r in RESULTS:
        tfl = r["flops"] / r["ms"] / 1e9
        gbs = r["bytes"] / r["ms"] / 1e6
        frac = r["ms"] / r["floor"]
        vs_fp = r["ms"] / r["fp"] if r.get("fp") else float("nan")
        vs_tf = r["ms"] / r["tf"] if r.get("tf") else float("nan")
        log(f"{r['shape']:>18s} {r['var']:38s} {r['ms']:9.4f} {tfl:8.1f} {gbs:7.0f} {frac:7.3f} {vs_fp:7.3f} "
            f"{vs_tf:7.3f} {r['err']:8.1e}")


def compile_all(extra_names):
    log("== compile ==")
    t0 = time.time()
    for name in _fused.name_expressions() + extra_names:
        k = _kernels.get_function(_fused.FILENAME, name)
        log(f"  {name}: regs {k.num_regs} local {k.local_size_bytes} B static smem {k.shared_size_bytes} B")
    log(f"  compiled in {time.time() - t0:.1f} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the variants and the big-offset check")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--variants", action="store_true", help="time the lab tile variants too")
    ap.add_argument("--only", default="", help="comma list of target indices to time (0..3), 4 = fp16/bf16 inputs")
    ap.add_argument("--wgmma", action="store_true", help="after the main table: check and time the sm_90a wgmma kernel")
    ap.add_argument("--sass", action="store_true", help="instruction histogram of the tf32 kernel (nvcc, cuobjdump)")
    ap.add_argument("--ws", action="store_true", help="check and time the warp-specialised sm_90a kernels")
    ap.add_argument("--ws-only", action="store_true",
                    help="only: default-route float32 tf32/tf32x3 checks (+ big offsets) and the --ws section")
    ap.add_argument("--no-ws-times", action="store_true", help="--ws section: checks only")
    args = ap.parse_args()
    global ARCH
    ARCH = _kernels.arch_of(cp.cuda.Device().id)
    log(torch.cuda.get_device_name(), "cupy", cp.__version__, "torch", torch.__version__, ARCH)
    if args.ws_only:
        CASES[:] = [c for c in CASES if c[0] == torch.float32 and c[1] in ("tf32", "tf32x3")]
        for prec in ("tf32", "tf32x3"):
            log(f"  default route {prec} B=128: {_fused.plan(128, 32768, 32768, 'float32', prec, True, True, arch=ARCH)[0]}")
        correctness([])
        tf32x3_vs_cublas([])
        if not args.skip_big:
            big_offsets()
        try:
            ws_section(not args.no_ws_times)
        except Exception as exc:  # noqa: BLE001
            log(f"  ws section failed: {exc!r}")
            FAILS.append(f"ws section: {exc!r}")
        log("\n== FAILURES ==" if FAILS else "\n== all checks passed ==")
        for f in FAILS:
            log("  " + f)
        return 1 if FAILS else 0
    C = _fused.TileConfig
    variants = [  # (tile config, kernel mode): lab alternatives to the table in _fused.CONFIGS
        (C(128, 128, 64, 64, 3, 2), 1), (C(256, 128, 64, 64, 3, 1), 1), (C(128, 256, 64, 64, 3, 1), 1),
        (C(128, 256, 64, 64, 3, 1), 2),
        (C(128, 128, 64, 32, 4, 1), 5), (C(128, 128, 32, 64, 3, 1), 5),
    ] if args.variants else []
    if args.variants:
        VARIANTS16.extend([C(128, 256, 64, 64, 3, 1), C(128, 128, 64, 64, 3, 2)])
    extra = [_fused.mma_name("float", m, c, True) for c, m in variants]
    extra += [_fused.mma_name(t, 4, c, True) for c in VARIANTS16 for t in ("__half", "__nv_bfloat16")]
    compile_all(extra)
    if args.sass:
        sass_histogram(_fused.mma_name("float", 1, _fused.config_for(1, 128), True))
    correctness(variants)
    tf32x3_vs_cublas(variants)
    if not args.quick and not args.skip_big:
        big_offsets()
    cfgs = [(None, None)] + variants
    targets = [
        (128, 32768, 32768, ["tf32", "tf32x3", "bf16"], cfgs, False),
        (16384, 1024, 65536, ["tf32"], cfgs, False),
        (4096, 4096, 4096, ["tf32", "tf32x3", "ieee"], cfgs, False),
        (128, 10, 20, ["tf32", "tf32x3", "ieee"], [(None, None)], True),
    ]
    only = [int(i) for i in args.only.split(",") if i]
    for i, t in enumerate(targets):
        if only and i not in only:
            continue
        try:
            bench_shape(*t[:3], t[3], t[4], tiny=t[5])
        except Exception as exc:  # noqa: BLE001
            log(f"  shape {t[:3]} failed: {exc!r}")
            FAILS.append(f"shape {t[:3]}: {exc!r}")

    if not only or 4 in only:
        for (B, K, N) in [(128, 32768, 32768), (4096, 4096, 4096)]:
            try:
                bench16(B, K, N)
            except Exception as exc:  # noqa: BLE001
                log(f"  16-bit {B}x{K}x{N} failed: {exc!r}")
                FAILS.append(f"16-bit {B}x{K}x{N}: {exc!r}")

    log("\n== FAILURES ==" if FAILS else "\n== all checks passed ==")
    for f in FAILS:
        log("  " + f)
    print_table("main (package defaults + lab variants)")
    if args.ws:
        try:
            ws_section(not args.no_ws_times)
        except Exception as exc:  # noqa: BLE001
            log(f"  ws section failed: {exc!r}")
            FAILS.append(f"ws section: {exc!r}")
    if args.wgmma:
        try:
            wgmma_section()
        except Exception as exc:  # noqa: BLE001
            log(f"  wgmma section failed: {exc!r}")
            FAILS.append(f"wgmma section: {exc!r}")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
