"""Device probe (session 3, run A): launch mechanisms, per-call host costs, the gap between dependent kernels, the
small-batch kernel family (correctness, bit-identical repeats, graph replay, bandwidth against the HBM floor) and
cuBLASLt through ctypes. Prints a short table last; full rows go to $OUT/probe_a.json.

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_launch_small_batch.py
"""

from __future__ import annotations

import ctypes
import json
import os
import statistics
import time
import traceback

import cupy as cp
import numpy as np
import torch

from cupy_fused import loader
from cupy_fused.backends import cublaslt

OUT = os.environ.get("OUT", ".")
RESULTS: dict = {}
SUMMARY: list[str] = []


def log(*a):
    print(*a, flush=True)


class RawStream:
    __slots__ = ("ptr",)

    def __init__(self, ptr):
        self.ptr = ptr


NOOP = r"""
struct P { long long ldx, ldw; int B, N, K, S; long long ks; };
extern "C" __global__ void noop32(const float* x, long long ldx, const float* w, long long ldw, const float* bias,
    unsigned char* ws, float* out, int B, int N, int K, int S, long long ks, unsigned long long epoch) {
    if (B < 0) out[0] = 1.f; }
extern "C" __global__ void noop64(const float* x, long long ldx, const float* w, long long ldw, const float* bias,
    unsigned char* ws, float* out, long long B, long long N, long long K, long long S, long long ks,
    unsigned long long epoch) { if (B < 0) out[0] = 1.f; }
extern "C" __global__ void noop_struct(const float* x, const float* w, const float* bias, unsigned char* ws,
    float* out, P p, unsigned long long epoch) { if (p.B < 0) out[0] = 1.f; }
extern "C" __global__ void tick(float* p) { if (threadIdx.x == 0) p[blockIdx.x] += 1.f; }
"""


def per_call_us(fn, n=20000):
    """Host time per call: median of 3 loops (no synchronization inside a loop)."""
    for _ in range(200):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n // 3):
            fn()
        times.append((time.perf_counter() - t) / (n // 3) * 1e6)
        torch.cuda.synchronize()
    return statistics.median(times)


def probe_launch():
    mod = cp.RawModule(code=NOOP, options=("-std=c++17",))
    mod.compile()
    noop32, noop64, noops, tick = (mod.get_function(n) for n in ("noop32", "noop64", "noop_struct", "tick"))
    buf = torch.zeros(1 << 20, device="cuda")
    p = buf.data_ptr()
    s = torch.cuda.current_stream().cuda_stream
    rs = RawStream(s)
    i32 = [np.int32(v) for v in (128, 4096, 4096, 1)]
    rows = {}
    rows["cupy, ptr ints + np.int32"] = per_call_us(
        lambda: noop32((1,), (32,), (p, 4096, p, 4096, p, p, p, *i32, 256, 7), stream=rs)
    )
    rows["cupy, all python ints (long long params)"] = per_call_us(
        lambda: noop64((1,), (32,), (p, 4096, p, 4096, p, p, p, 128, 4096, 4096, 1, 256, 7), stream=rs)
    )
    pdt = np.dtype(
        [("ldx", "<i8"), ("ldw", "<i8"), ("B", "<i4"), ("N", "<i4"), ("K", "<i4"), ("S", "<i4"), ("ks", "<i8")],
        align=True,
    )
    params = np.zeros(1, pdt)
    rows["cupy, struct by value + ptr ints"] = per_call_us(
        lambda: noops((1,), (32,), (p, p, p, p, p, params, 7), stream=rs)
    )
    fn64 = noop64.kernel  # the Function under the RawKernel wrapper
    rows["cupy Function (no RawKernel wrapper), python ints"] = per_call_us(
        lambda: fn64((1,), (32,), (p, 4096, p, 4096, p, p, p, 128, 4096, 4096, 1, 256, 7), stream=rs)
    )
    tick_fn = tick.kernel
    rows["cupy Function, 1 pointer arg"] = per_call_us(lambda: tick_fn((1,), (32,), (p,), stream=rs))
    a_t, b_t, c_t = (torch.zeros(16, device="cuda") for _ in range(3))
    rows["torch.add(a, b, out=c) (torch's own per-op cost)"] = per_call_us(lambda: torch.add(a_t, b_t, out=c_t))
    rows["cupy, RawStream created per call"] = per_call_us(
        lambda: noop64((1,), (32,), (p, 4096, p, 4096, p, p, p, 128, 4096, 4096, 1, 256, 7), stream=RawStream(s))
    )
    # ctypes on libcuda's cuLaunchKernel with the same CUfunction
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
        launch = libcuda.cuLaunchKernel
        launch.argtypes = (
            [ctypes.c_void_p] + [ctypes.c_uint] * 6 + [ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        )
        launch.restype = ctypes.c_int
        fptr = noop64.kernel.ptr

        def ctypes_launch():
            vals = [ctypes.c_uint64(v) for v in (p, 4096, p, 4096, p, p, p, 128, 4096, 4096, 1, 256, 7)]
            arr = (ctypes.c_void_p * 13)(*[ctypes.addressof(v) for v in vals])
            r = launch(fptr, 1, 1, 1, 32, 1, 1, 0, s, arr, None)
            assert r == 0, r

        rows["ctypes cuLaunchKernel (args packed per call)"] = per_call_us(ctypes_launch)
        vals = [ctypes.c_uint64(v) for v in (p, 4096, p, 4096, p, p, p, 128, 4096, 4096, 1, 256, 7)]
        packed = (ctypes.c_void_p * 13)(*[ctypes.addressof(v) for v in vals])
        rows["ctypes cuLaunchKernel (args packed once)"] = per_call_us(
            lambda: launch(fptr, 1, 1, 1, 32, 1, 1, 0, s, packed, None)
        )
    except Exception as e:  # noqa: BLE001
        rows["ctypes cuLaunchKernel"] = f"failed: {e}"
    try:
        from cuda.bindings import driver

        fptr = noop64.kernel.ptr
        types = tuple(
            [ctypes.c_void_p, ctypes.c_longlong] * 2
            + [ctypes.c_void_p] * 3
            + [ctypes.c_longlong] * 5
            + [ctypes.c_ulonglong]
        )

        def bindings_launch():
            (err,) = driver.cuLaunchKernel(
                fptr, 1, 1, 1, 32, 1, 1, 0, s, ((p, 4096, p, 4096, p, p, p, 128, 4096, 4096, 1, 256, 7), types), 0
            )
            assert err == 0, err

        rows["cuda.bindings cuLaunchKernel"] = per_call_us(bindings_launch, 5000)
    except Exception as e:  # noqa: BLE001
        rows["cuda.bindings cuLaunchKernel"] = f"failed: {type(e).__name__}: {e}"
    try:
        try:
            from cuda.core import Device as CoreDevice
            from cuda.core import LaunchConfig, ObjectCode
            from cuda.core import launch as core_launch
        except ImportError:
            from cuda.core.experimental import Device as CoreDevice
            from cuda.core.experimental import LaunchConfig, ObjectCode
            from cuda.core.experimental import launch as core_launch

        dev = CoreDevice(torch.cuda.current_device())
        dev.set_current()
        from cupy.cuda import nvrtc

        prog = nvrtc.createProgram(NOOP, "noop.cu", [], [])
        nvrtc.compileProgram(prog, ["-arch=sm_90", "-std=c++17"])
        cubin = nvrtc.getCUBIN(prog)
        kern = ObjectCode.from_cubin(cubin).get_kernel("noop64")

        class _S:
            def __cuda_stream__(self):
                return (0, s)

        cstream = dev.create_stream(_S())
        cfg = LaunchConfig(grid=1, block=32)
        args64 = [
            np.uint64(p),
            np.int64(4096),
            np.uint64(p),
            np.int64(4096),
            np.uint64(p),
            np.uint64(p),
            np.uint64(p),
            np.int64(128),
            np.int64(4096),
            np.int64(4096),
            np.int64(1),
            np.int64(256),
            np.uint64(7),
        ]
        rows["cuda.core launch (numpy scalars)"] = per_call_us(lambda: core_launch(cstream, cfg, kern, *args64), 5000)
    except Exception as e:  # noqa: BLE001
        rows["cuda.core launch"] = f"failed: {type(e).__name__}: {e}"

    # per-call pieces of a call from torch tensors and cupy arrays
    x = torch.randn(128, 4096, device="cuda")
    xc = cp.asarray(x)
    cur = torch._C._cuda_getCurrentRawStream
    rows["torch key (shape, stride, dtype, layout, device, align, neg)"] = per_call_us(
        lambda: (
            type(x),
            x.shape,
            x.stride(),
            x.dtype,
            x.layout,
            x.is_cpu,
            x.is_cuda,
            x.get_device(),
            not x.data_ptr() & 15,
            x.is_neg(),
        )
    )
    rows["torch.empty((128, 1), cuda)"] = per_call_us(
        lambda: torch.empty((128, 1), dtype=torch.float32, device=x.device)
    )
    rows["torch current raw stream"] = per_call_us(lambda: cur(0))
    rows["cupy key"] = per_call_us(
        lambda: (type(xc), xc.shape, xc.strides, xc.dtype, xc.data.device_id, not xc.data.ptr & 15)
    )
    rows["cupy.empty((128, 1))"] = per_call_us(lambda: cp.empty((128, 1), cp.float32))
    rows["cupy current stream ptr"] = per_call_us(lambda: cp.cuda.get_current_stream().ptr)
    rows["cupy runtime.getDevice"] = per_call_us(lambda: cp.cuda.runtime.getDevice())

    # GPU time per kernel when launches queue up behind a long kernel: kernel time + the gap between kernels
    g = torch.zeros(132, device="cuda")
    gp = g.data_ptr()
    for blocks in (1, 132):
        torch.cuda.synchronize()
        torch.cuda._sleep(200_000_000)
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        for _ in range(2000):
            tick((blocks,), (32,), (gp,), stream=rs)
        e1.record()
        torch.cuda.synchronize()
        rows[f"GPU us per queued dependent launch, {blocks} block(s)"] = e0.elapsed_time(e1) * 1000 / 2000
    RESULTS["launch"] = rows
    for k, v in rows.items():
        log(f"  {k:70s} {v if isinstance(v, str) else f'{v:8.2f} us'}")
    SUMMARY.append("launch: " + "; ".join(f"{k}: {v:.2f}" for k, v in rows.items() if not isinstance(v, str)))


# ------------------------------------------------------------------------------------------------- small batch


def sb_workspace(B, N, S, BT, ROWS, acc_bytes):
    nbt, nb = -(-B // BT), -(-N // ROWS)
    groups = nb * nbt
    flags = -(-groups * S * 8 // 16) * 16
    return flags + nb * B * acc_bytes + (S - 1) * B * N * acc_bytes, nb * nbt * S


EPOCH = [int.from_bytes(os.urandom(7), "little") << 8]


def sb_run(x, w, b, out, BT, RW, NW, S, dtype="float", vec=True):
    B, K = x.shape
    N = w.shape[0]
    acc = 8 if x.dtype == torch.float64 else 4
    per_split = -(-K // S) if K else 0
    ks = -(-per_split // 256) * 256
    S_eff = -(-K // ks) if K else 1
    name = f"sb::small_batch<{dtype}, {BT}, {RW}, {NW}, {'true' if vec else 'false'}>"
    fn = loader.function("small_batch.cu", name, 0)
    nbytes, blocks = sb_workspace(B, N, S_eff, BT, NW * RW, acc)
    ws = torch.empty(max(nbytes, 16), dtype=torch.uint8, device="cuda")
    EPOCH[0] += 1
    fn(
        (blocks,),
        (NW * 32,),
        (
            x.data_ptr(),
            x.stride(0),
            w.data_ptr(),
            w.stride(0),
            0 if b is None else b.data_ptr(),
            ws.data_ptr(),
            out.data_ptr(),
            np.int32(B),
            np.int32(N),
            np.int32(K),
            np.int32(S_eff),
            ks,
            EPOCH[0],
        ),
        stream=RawStream(torch.cuda.current_stream().cuda_stream),
    )
    return ws


def ref64(x, w, b):
    z = x.double() @ w.double().T
    if b is not None:
        z += b.double()
    return torch.sigmoid(z).sum(-1)


def relerr(o, r):
    return ((o.double() - r).norm() / r.norm()).item()


def timed(fn, reps=50, warm=5):
    for _ in range(warm):
        fn()
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for a, b in ev:
        a.record()
        fn()
        b.record()
    torch.cuda.synchronize()
    return statistics.median(a.elapsed_time(b) for a, b in ev)


def hbm_read_gbps():
    big = torch.rand(2**30, device="cuda")
    ms = timed(lambda: big.sum(), reps=20)
    return 4 * 2**30 / ms / 1e6


def precompile():
    """Every instance the probe uses, compiled in parallel (NVRTC releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    names = set()
    for t in ("float", "__half", "__nv_bfloat16", "double"):
        for BT, RW, NW in [(1, 4, 8), (4, 4, 8), (8, 2, 4), (16, 4, 8)]:
            if not (t == "double" and BT > 16):
                for vec in ("true", "false"):
                    names.add(f"sb::small_batch<{t}, {BT}, {RW}, {NW}, {vec}>")
    for BT in (1, 2, 4, 8, 16, 32):
        for RW in (2, 4):
            for NW in (4, 8):
                names.add(f"sb::small_batch<float, {BT}, {RW}, {NW}, true>")
    t = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: loader.function("small_batch.cu", n, 0), sorted(names)))
    log(f"compiled {len(names)} small-batch instances in {time.perf_counter() - t:.1f} s (16 threads)")


def probe_small_batch():
    torch.manual_seed(0)
    precompile()
    fails = []
    # correctness on odd shapes, all dtypes, with and without bias, splits
    for B, K, N in [(1, 1, 1), (3, 5, 7), (1, 1000, 4099), (31, 1001, 300), (33, 517, 257), (5, 0, 9), (2, 4096, 64)]:
        for dtype, tname, tol in [
            (torch.float32, "float", 2e-6),
            (torch.float16, "__half", 2e-3),
            (torch.bfloat16, "__nv_bfloat16", 1e-2),
            (torch.float64, "double", 1e-12),
        ]:
            for BT, RW, NW, S in [(1, 4, 8, 1), (4, 4, 8, 3), (8, 2, 4, 2), (16, 4, 8, 1)]:
                if tname == "double" and BT > 16:
                    continue
                x = torch.randn(B, K, device="cuda").to(dtype)
                w = (torch.rand(N, K, device="cuda") * 2 - 1).div_(max(K, 1) ** 0.5).to(dtype)
                bias = torch.randn(N, device="cuda").to(dtype) if S != 2 else None
                out = torch.full((B,), float("nan"), device="cuda", dtype=dtype)
                sb_run(x, w, bias, out, BT, RW, NW, S, tname, vec=(K % 8 == 0))
                r = ref64(x, w, bias)
                e = relerr(out, r)
                if not e <= tol or torch.isnan(out).any():
                    fails.append(f"{B}x{K}x{N} {tname} BT{BT} RW{RW} NW{NW} S{S}: err {e:.2e}")
                again = out.clone()
                sb_run(x, w, bias, again, BT, RW, NW, S, tname, vec=(K % 8 == 0))
                if not torch.equal(again, out):
                    fails.append(f"{B}x{K}x{N} {tname} BT{BT} S{S}: not bit-identical")
    # unaligned view (element loads)
    x = torch.randn(7, 1031, device="cuda")[:, 1:1030]
    w = torch.randn(300, 1031, device="cuda")[:, 2:1031] / 32
    out = torch.empty(7, device="cuda")
    sb_run(x, w, None, out, 8, 4, 8, 2, "float", vec=False)
    e = relerr(out, ref64(x, w, None))
    if e > 2e-6:
        fails.append(f"unaligned view err {e:.2e}")
    # graph capture + replay with new inputs (flags reset by the kernel)
    x = torch.randn(8, 4096, device="cuda")
    w = torch.randn(4096, 4096, device="cuda") / 64
    b = torch.randn(4096, device="cuda")
    out = torch.empty(8, device="cuda")
    sb_run(x, w, b, out, 8, 4, 8, 4)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        sb_run(x, w, b, out, 8, 4, 8, 4)
    for i in range(3):
        x.copy_(torch.randn_like(x))
        graph.replay()
        torch.cuda.synchronize()
        e = relerr(out, ref64(x, w, b))
        if e > 2e-6:
            fails.append(f"graph replay {i}: err {e:.2e}")
    RESULTS["small_batch_fails"] = fails
    log(f"small batch checks: {len(fails)} failures\n  " + "\n  ".join(fails[:20]))
    SUMMARY.append(f"small_batch checks: {len(fails)} failures {fails[:3]}")

    hbm = hbm_read_gbps()
    RESULTS["hbm_gbps"] = hbm
    log(f"HBM read {hbm:.0f} GB/s")
    rows = []
    shapes = [
        (1, 4096, 4096),
        (8, 4096, 4096),
        (32, 4096, 4096),
        (1, 4096, 11008),
        (8, 4096, 11008),
        (32, 4096, 11008),
        (1, 11008, 4096),
        (32, 11008, 4096),
        (64, 4096, 4096),
        (1, 1024, 1024),
        (16, 1024, 1024),
    ]
    for B, K, N in shapes:
        x = torch.randn(B, K, device="cuda")
        w = (torch.rand(N, K, device="cuda") * 2 - 1) / K**0.5
        b = (torch.rand(N, device="cuda") * 2 - 1) / K**0.5
        out = torch.empty(B, device="cuda")
        floor_us = N * K * 4 / hbm / 1e3
        torch.backends.cuda.matmul.allow_tf32 = False
        t_torch = timed(lambda: torch.sum(torch.sigmoid(torch.nn.functional.linear(x, w, b)), -1)) * 1000
        best = None
        configs = []
        for BT in sorted({bt for bt in (1, 2, 4, 8, 16, 32) if bt >= min(B, 32) / 2 and bt <= max(B, 1) * 2}):
            for RW in (2, 4):
                for NW in (4, 8):
                    for S in (1, 2, 4, 8):
                        configs.append((BT, RW, NW, S))
        for cfg in configs:
            try:
                us = timed(lambda: sb_run(x, w, b, out, *cfg), reps=30) * 1000
            except Exception as e:  # noqa: BLE001
                log(f"  {B}x{K}x{N} {cfg} failed: {e}")
                continue
            err = relerr(out, ref64(x, w, b))
            rows.append(
                {"shape": (B, K, N), "cfg": cfg, "us": us, "floor_us": floor_us, "err": err, "torch_us": t_torch}
            )
            if best is None or us < best[1]:
                best = (cfg, us, err)
        SUMMARY.append(
            f"sb {B}x{K}x{N}: best {best[0]} {best[1]:.1f} us = {best[1] / floor_us:.2f}x floor "
            f"({floor_us:.1f} us), torch fp32 {t_torch:.1f} us, err {best[2]:.1e}"
        )
        log(SUMMARY[-1])
    RESULTS["small_batch"] = rows


def probe_cublaslt():
    torch.manual_seed(0)
    lines = []
    s = torch.cuda.current_stream().cuda_stream
    for B, K, N, dtype, compute in [
        (128, 1000, 411, "float32", 68),
        (512, 2048, 3000, "float32", 77),
        (512, 2048, 3000, "float32", 68),
        (64, 256, 96, "float16", 68),
        (33, 70, 50, "float64", 70),
        (4096, 4096, 4096, "float32", 77),
    ]:
        tdt = getattr(torch, dtype)
        acc = "float64" if dtype == "float64" else "float32"
        x = torch.randn(B, K, device="cuda", dtype=tdt)
        w = torch.randn(N, K, device="cuda", dtype=tdt)
        z = torch.empty(B, N, device="cuda", dtype=getattr(torch, acc))
        mm = cublaslt.Matmul(B, N, K, dtype, acc, compute, K, K, N, 0)
        ws = torch.empty(max(mm.workspace_bytes, 1), dtype=torch.uint8, device="cuda")
        mm.run(x.data_ptr(), w.data_ptr(), z.data_ptr(), ws.data_ptr(), s)
        ref = x.double() @ w.double().T
        err = relerr(z, ref)
        us = timed(lambda: mm.run(x.data_ptr(), w.data_ptr(), z.data_ptr(), ws.data_ptr(), s)) * 1000
        host = per_call_us(lambda: mm.run(x.data_ptr(), w.data_ptr(), z.data_ptr(), ws.data_ptr(), s), 2000)
        lines.append(
            f"cublasLt {B}x{K}x{N} {dtype} compute {compute}: err {err:.1e}, {us:.1f} us GPU, host {host:.1f} us,"
            f" workspace {mm.workspace_bytes}"
        )
    # graph capture
    x = torch.randn(256, 512, device="cuda")
    w = torch.randn(384, 512, device="cuda")
    z = torch.empty(256, 384, device="cuda")
    mm = cublaslt.Matmul(256, 384, 512, "float32", "float32", 77, 512, 512, 384, 0)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        ws = torch.empty(max(mm.workspace_bytes, 1), dtype=torch.uint8, device="cuda")
        mm.run(x.data_ptr(), w.data_ptr(), z.data_ptr(), ws.data_ptr(), torch.cuda.current_stream().cuda_stream)
    x.copy_(torch.randn_like(x))
    g.replay()
    torch.cuda.synchronize()
    lines.append(f"cublasLt graph replay err {relerr(z, x.double() @ w.double().T):.1e}")
    for line in lines:
        log(line)
    SUMMARY.extend(lines)
    RESULTS["cublaslt"] = lines


if __name__ == "__main__":
    log(torch.cuda.get_device_name(), torch.__version__, cp.__version__)
    for step in (probe_launch, probe_cublaslt, probe_small_batch):
        try:
            step()
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            SUMMARY.append(f"{step.__name__} FAILED")
    with open(os.path.join(OUT, "probe_a.json"), "w") as f:
        json.dump(RESULTS, f, indent=1, default=str)
    print("\n==== SUMMARY ====")
    for line in SUMMARY:
        print(line)
