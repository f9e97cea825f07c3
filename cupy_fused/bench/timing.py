"""Timing on the GPU: CUDA events on torch's current stream, CUDA-graph replay, host time of back-to-back calls, peak
memory, and the two ceilings measured in the same run (HBM read bandwidth, matmul throughput)."""

from __future__ import annotations

import contextlib
import math
import statistics
import time

import numpy as np


def rel_err(out, ref) -> float:
    out = np.asarray(out, np.float64).ravel()
    ref = np.asarray(ref, np.float64).ravel()
    return float(np.linalg.norm(out - ref) / max(float(np.linalg.norm(ref)), 1e-300))


class GpuTimer:
    def __init__(self, torch):
        self.torch = torch

    def __call__(self, fn, n_inputs: int, warmup: int = 5, reps: int = 30) -> float:
        """Median ms of fn(i) over reps, with an event pair per run on torch's current stream. Runs are queued back
        to back (one synchronize at the end), so host overhead hides behind device work as in a real loop."""
        torch = self.torch
        for i in range(warmup):
            fn(i % n_inputs)
        stream = torch.cuda.current_stream()
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
        for i, (start, end) in enumerate(events):
            start.record(stream)
            fn(i % n_inputs)
            end.record(stream)
        torch.cuda.synchronize()
        return statistics.median(start.elapsed_time(end) for start, end in events)

    def replay_ms(self, fn, n_inputs: int, calls: int = 16, replays: int = 10) -> float:
        """Median ms per call of fn(i), from a CUDA graph of ``calls`` back-to-back calls (at least one per input)
        replayed ``replays`` times between CUDA events: the GPU's time without the host's. The warm-up calls and the
        capture run on a side stream, as torch asks; raises where fn cannot be captured."""
        torch = self.torch
        calls = max(calls, n_inputs)
        graph, side = torch.cuda.CUDAGraph(), torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # left even where the capture fails (torch.cuda.graph stays on its stream)
            for i in range(n_inputs):
                fn(i)
            side.synchronize()
            graph.capture_begin()
            try:
                for i in range(calls):
                    fn(i % n_inputs)
            finally:
                graph.capture_end()
        torch.cuda.current_stream().wait_stream(side)
        graph.replay()
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(replays)]
        for start, end in events:
            start.record()
            graph.replay()
            end.record()
        torch.cuda.synchronize()
        return statistics.median(start.elapsed_time(end) for start, end in events) / calls

    def kernel_us(self, fn, n_inputs: int, calls: int = 20) -> float | None:
        """GPU time per call as the sum of its kernels' durations (CUPTI through torch.profiler): for small shapes,
        where event pairs measure the host's launch gaps rather than the GPU's work."""
        torch = self.torch
        from torch.autograd import DeviceType

        fn(0)
        torch.cuda.synchronize()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            for i in range(calls):
                fn(i % n_inputs)
            torch.cuda.synchronize()
        total = 0.0
        for event in prof.key_averages():
            if event.device_type == DeviceType.CUDA:
                total += getattr(event, "self_device_time_total", 0.0) or getattr(event, "self_cuda_time_total", 0.0)
        return total / calls if total else None

    def loop_us(self, fn, n_inputs: int, budget_s: float = 0.05) -> tuple[float, float]:
        """(host us, wall us) per call of back-to-back calls, synchronized once at the end: host time is the loop
        without the final synchronize, wall time includes it. The loop runs about ``budget_s``."""
        torch = self.torch
        torch.cuda.synchronize()
        t = time.perf_counter()
        for i in range(10):
            fn(i % n_inputs)
        torch.cuda.synchronize()
        calls = int(min(2000, max(20, budget_s / max((time.perf_counter() - t) / 10, 1e-7))))
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(calls):
            fn(i % n_inputs)
        t1 = time.perf_counter()
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        return (t1 - t0) / calls * 1e6, (t2 - t0) / calls * 1e6


def peak_extra_mb(torch, fn) -> float:
    """Peak device memory (MB, torch's allocator) above what was allocated before one call of fn(0)."""
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn(0)
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


@contextlib.contextmanager
def torch_tf32(torch, enabled: bool):
    """torch's TF32 switch for the peers' matmuls, off again afterwards (ours never read it)."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False


def measure_hbm_read(torch, timer) -> float:
    """GB/s of a large on-device sum (bytes read over time)."""
    big = torch.rand(2**30, device="cuda")  # 4 GiB
    ms = timer(lambda i: big.sum(), 1, warmup=3, reps=20)
    return 4 * 2**30 / ms / 1e6


def measure_matmul(torch, dtype, tf32: bool, timer) -> float:
    a, b = torch.randn(8192, 8192, device="cuda", dtype=dtype), torch.randn(8192, 8192, device="cuda", dtype=dtype)
    with torch_tf32(torch, tf32):
        ms = timer(lambda i: a @ b, 1, warmup=3, reps=10)
    return 2 * 8192**3 / ms / 1e9


def random_inputs(torch, B, K, N, dtype=None):
    """x ~ N(0, 1), W and b uniform in +-1/sqrt(K), on the GPU in dtype (default float32)."""
    bound = 1 / math.sqrt(K) if K else 1.0
    return (
        torch.randn(B, K, device="cuda", dtype=dtype),
        torch.empty(N, K, device="cuda", dtype=dtype).uniform_(-bound, bound),
        torch.empty(N, device="cuda", dtype=dtype).uniform_(-bound, bound),
    )


def reference(torch, x, w, b):
    """float64 result, over chunks of N so that memory stays bounded."""
    out = torch.zeros(x.shape[0], 1, dtype=torch.float64, device=x.device)
    step = max(1, 2**28 // max(x.shape[0], 1))
    xd = x.double()
    for s in range(0, w.shape[0], step):
        z = torch.nn.functional.linear(xd, w[s : s + step].double(), b[s : s + step].double())
        out += torch.sigmoid(z).sum(-1, keepdim=True)
    return out
