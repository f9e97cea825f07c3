"""Where a training step's GPU time goes between kernels: the step's CUDA-event time beside the kernels' timeline of
one steady-state step (start offset, duration, gap before each kernel; CUPTI through torch.profiler), and the CUDA
runtime / driver calls that can stall the stream (allocations, frees, synchronizes), for ours and torch autograd.

    PYTHONPATH=$PWD python3 benchmarks/lab/step_timeline.py [B K N precision ...]
"""

import statistics
import sys

import torch
from profile_training import cases, steps  # the lab's training shapes and steps (run as a script)
from torch.autograd import DeviceType

STALLS = ("alloc", "free", "synchron", "memcpy", "memset", "query")


def event_ms(step, reps=7):
    for _ in range(2):
        step()
    pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for start, end in pairs:
        start.record()
        step()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in pairs)


def timeline(label, step):
    ms = event_ms(step)
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    ) as prof:
        for _ in range(3):
            step()
        torch.cuda.synchronize()
    kernels = sorted((e for e in prof.events() if e.device_type == DeviceType.CUDA), key=lambda e: e.time_range.start)
    per_step = len(kernels) // 3
    mid = kernels[per_step : 2 * per_step]  # the second of three back-to-back steps
    t0 = mid[0].time_range.start
    busy = sum(e.time_range.elapsed_us() for e in mid)
    span = mid[-1].time_range.end - t0
    print(f"  {label}: events {ms:.3f} ms/step; step 2 of 3: span {span / 1e3:.3f} ms, kernels {busy / 1e3:.3f} ms")
    prev_end = mid[0].time_range.start
    for e in mid:
        gap = e.time_range.start - prev_end
        print(
            f"    +{(e.time_range.start - t0) / 1e3:8.3f} ms  {e.time_range.elapsed_us() / 1e3:7.3f} ms"
            f"  gap {gap:8.1f} us  {e.name[:90]}"
        )
        prev_end = e.time_range.end
    gap_next = kernels[2 * per_step].time_range.start - mid[-1].time_range.end if len(kernels) > 2 * per_step else 0
    print(f"    gap to the next step's first kernel: {gap_next:.1f} us")
    host = {}
    for e in prof.events():
        if e.device_type == DeviceType.CPU and any(s in e.name.lower() for s in STALLS):
            n, us = host.get(e.name, (0, 0.0))
            host[e.name] = (n + 1, us + e.time_range.elapsed_us())
    for name, (n, us) in sorted(host.items(), key=lambda kv: -kv[1][1])[:10]:
        print(f"    host {name[:60]:60s} x{n:<4d} {us / 1e3:8.3f} ms (3 steps)")
    return ms


def main():
    summary = []
    for (B, K, N), precision in cases(sys.argv[1:] or ["128", "32768", "32768", "default"]):
        ours_step, torch_step = steps(B, K, N, precision)
        print(f"{B} x {K} x {N} {precision or 'default'}")
        ours = timeline("ours", ours_step)
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        theirs = timeline("torch", torch_step)
        torch.backends.cuda.matmul.allow_tf32 = False
        summary.append(
            f"{B} x {K} x {N} {precision or 'default'}: ours {ours:.3f} torch {theirs:.3f} {ours / theirs:.2f}"
        )
        ours_step = torch_step = None
        torch.cuda.empty_cache()
    print("\nevents ms per step")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
