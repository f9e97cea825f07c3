"""Compute-bound TF32 (issue 8, item 4): the two-pass method in blocks of z small enough to stay in L2.

Today the two-pass method computes z = x @ W.T in (B, chunk of N) blocks of up to workspace_bytes (256 MiB): at
16384 x 1024 x 65536 that is 16 blocks of 256 MiB, each written to HBM by cuBLASLt and read back by the reduction
(8.6 GB of traffic, ~2.8 ms), and 256 MiB of extra memory. Here z is computed in (r rows, c columns) blocks of a
few MiB, row block after row block, columns inner (x's rows of the block stay in L2 across its column blocks), and
each block is reduced right after its GEMM, while it is still in L2.

Prediction (session 10): the GEMMs run at cuBLAS's rate (~400 TFLOP/s: 5.5 ms at 16384 x 1024 x 65536, 0.34 ms at
4096^3) and the reduction of an L2-resident block costs ~2-4 us, so 16384 x 1024 x 65536 drops from 8.15 to ~6.5 ms
(compile TF32 7.66) and 4096^3 from 0.367 to ~0.35 ms (compile 0.367), with blocks of 8-16 MiB; blocks below
~1024 x 1024 lose to launch gaps and GEMM efficiency.

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_l2_chunks.py [B K N ...]
    PYTHONPATH=$PWD python3 benchmarks/lab/probe_l2_chunks.py --ab B K N r c [r c ...]   (blocks in turn)
"""

import math
import sys

import torch

from cupy_fused import linear_sigmoid_sum, loader, tune
from cupy_fused.backends import round_up
from cupy_fused.backends.cublaslt import matmul_rows
from cupy_fused.backends.reduce import SigmoidSum
from cupy_fused.bench.timing import GpuTimer, measure_hbm_read, reference, torch_tf32
from cupy_fused.precision import TABLE

DEV = 0
SHAPES = [(4096, 4096, 4096), (16384, 1024, 65536), (4096, 4096, 11008), (1024, 4096, 4096), (4096, 1024, 1024)]
BLOCKS = [(r, c) for r in (1024, 2048, 4096, 8192, 16384) for c in (512, 1024, 2048, 4096)]


class Blocked:
    """z in (r, c) blocks: row blocks outer, column blocks inner, each block reduced right after its GEMM."""

    def __init__(self, B, K, N, r, c, gemm_only=False):
        compute = TABLE["tf32"].cublas_compute
        self.B, self.K, self.N, self.r, self.c, self.gemm_only = B, K, N, r, c, gemm_only
        self.gemms, self.reduces = {}, {}
        for rows in {r, B % r} - {0}:
            for cols in {c, N % c} - {0}:
                self.gemms[rows, cols] = matmul_rows(rows, cols, K, "float32", "float32", compute, K, K, c, DEV)
            self.reduces[rows] = SigmoidSum(rows, c, "float32", "float32", c % 4 == 0, DEV, ld_saved=N)
        self.z_bytes = round_up(r * c * 4, 256)
        self.carry_bytes = round_up(r * 8, 256)
        lt = max(g.workspace_bytes for g in self.gemms.values())
        self.workspace_bytes = self.z_bytes + self.carry_bytes + lt

    def run(self, x, w, b, out, ws, stream):
        z, carry = ws, ws + self.z_bytes
        lt = carry + self.carry_bytes
        for r0 in range(0, self.B, self.r):
            rows = min(self.r, self.B - r0)
            for c0 in range(0, self.N, self.c):
                cols = min(self.c, self.N - c0)
                self.gemms[rows, cols].run(w + c0 * self.K * 4, x + r0 * self.K * 4, z, lt, stream)
                if self.gemm_only:
                    continue
                last = c0 + cols == self.N
                carry_in, carry_out = (carry if c0 else 0), (0 if last else carry)
                self.reduces[rows](stream, z, b + c0 * 4, carry_in, carry_out, out + r0 * 4 if last else 0, 0, cols)


def ab(B, K, N, blocks, rounds=3) -> None:
    """Blocks in turn, ``rounds`` times, each timed as the tuner does (GPU time, host held off) and as the bench does
    (CUDA events around each of 10 calls queued back to back, median)."""
    info = loader.device_info(DEV)
    timer = GpuTimer(torch)
    stream = torch.cuda.current_stream().cuda_stream
    x = torch.randn(B, K, device="cuda")
    w = torch.empty(N, K, device="cuda").uniform_(-1 / math.sqrt(K), 1 / math.sqrt(K))
    b = torch.empty(N, device="cuda").uniform_(-1 / math.sqrt(K), 1 / math.sqrt(K))
    out = torch.empty(B, device="cuda")
    exes = {(r, c): Blocked(B, K, N, r, c) for r, c in blocks}
    ws = torch.empty(max(e.workspace_bytes for e in exes.values()), dtype=torch.uint8, device="cuda")
    results = {rc: [] for rc in exes}
    for _ in range(rounds):
        for rc, exe in exes.items():

            def call(exe=exe):
                exe.run(x.data_ptr(), w.data_ptr(), b.data_ptr(), out.data_ptr(), ws.data_ptr(), stream)

            gpu_ms, _ = tune.time_calls(call, stream, DEV, info.clock_khz)
            bench_ms = timer(lambda i: call(), 1, warmup=2, reps=10)
            results[rc].append((gpu_ms * 1e3, bench_ms * 1e3))
    print(f"\nA/B at {B} x {K} x {N}: us per call over {rounds} rounds (tuner GPU time / bench event time)")
    for (r, c), runs in results.items():
        cells = "  ".join(f"{g:8.1f} / {e:8.1f}" for g, e in runs)
        print(f"  {r:6d} x {c:6d} ({r * c * 4 / 2**20:4.0f} MiB)  {cells}")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--ab":  # --ab B K N r c [r c ...]
        v = [int(a) for a in sys.argv[2:]]
        ab(*v[:3], [tuple(v[i : i + 2]) for i in range(3, len(v), 2)])
        return 0
    shapes = SHAPES
    if len(sys.argv) > 1:
        v = [int(a) for a in sys.argv[1:]]
        shapes = [tuple(v[i : i + 3]) for i in range(0, len(v), 3)]
    info = loader.device_info(DEV)
    timer = GpuTimer(torch)
    gbps = measure_hbm_read(torch, timer)
    print(f"{torch.cuda.get_device_name()}; HBM read {gbps:.0f} GB/s", flush=True)
    stream = torch.cuda.current_stream().cuda_stream
    summary = []
    for i, (B, K, N) in enumerate(shapes):
        torch.manual_seed(i)
        x = torch.randn(B, K, device="cuda")
        w = torch.empty(N, K, device="cuda").uniform_(-1 / math.sqrt(K), 1 / math.sqrt(K))
        b = torch.empty(N, device="cuda").uniform_(-1 / math.sqrt(K), 1 / math.sqrt(K))
        ref = reference(torch, x, w, b).squeeze(-1)
        out = torch.empty(B, device="cuda")
        ptrs = (x.data_ptr(), w.data_ptr(), b.data_ptr(), out.data_ptr())
        rows = []

        def model(x, w, b):
            return torch.sigmoid(torch.nn.functional.linear(x, w, b)).sum(-1, keepdim=True)

        with torch_tf32(torch, True):
            eager = timer(lambda i: model(x, w, b), 1, warmup=2, reps=10)
            compiled = torch.compile(model)
            compiled(x, w, b)
            comp = timer(lambda i: compiled(x, w, b), 1, warmup=2, reps=10)
            mm = timer(lambda i: x @ w.T, 1, warmup=2, reps=10)
        torch._dynamo.reset()
        rows.append(("torch eager tf32", eager * 1e3, None))
        rows.append(("torch.compile tf32", comp * 1e3, None))
        rows.append(("torch x @ w.T alone (tf32)", mm * 1e3, None))
        today = timer(lambda i: linear_sigmoid_sum(x, w, b, precision="tf32", method="cublas"), 1, warmup=2, reps=10)
        rows.append(("ours today (method=cublas)", today * 1e3, None))
        for r, c in [(r, c) for r, c in BLOCKS if r <= B and c <= N] + [(B, N)]:
            if r * c * 4 > 256 * 2**20:
                continue
            for gemm_only in (False, True):
                exe = Blocked(B, K, N, r, c, gemm_only)
                ws = torch.empty(exe.workspace_bytes, dtype=torch.uint8, device="cuda")

                def call(exe=exe, ws=ws):
                    exe.run(*ptrs, ws.data_ptr(), stream)

                out.fill_(float("nan"))
                call()
                torch.cuda.synchronize()
                err = None if gemm_only else float((out.double() - ref).norm() / ref.norm())
                gpu_ms, host_ms = tune.time_calls(call, stream, DEV, info.clock_khz)
                label = f"blocks {r} x {c} ({r * c * 4 / 2**20:.0f} MiB){' gemm only' if gemm_only else ''}"
                rows.append((label, gpu_ms * 1e3, err))
                print(
                    f"{B} x {K} x {N} {label:40s} {gpu_ms * 1e3:9.1f} us (host {host_ms * 1e3:7.1f}) err {err}",
                    flush=True,
                )
                del ws
        summary.append(((B, K, N), rows, min(eager, comp) * 1e3))
    print("\nsummary (GPU us; ratio to the better of torch eager/compile TF32)")
    for shape, rows, best in summary:
        print(" x ".join(map(str, shape)))
        for label, us, err in sorted(rows, key=lambda r: r[1])[:12]:
            print(f"  {label:42s} {us:10.1f} {us / best:6.3f}" + (f"  err {err:.1e}" if err is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
