"""`cupy-fused bench`: our calls against their peers, with floors, in tables.

Sections (``--sections``, default all three on a GPU):

* suite: the large shapes (KernelBench's 128 x 32768 x 32768, 16384 x 1024 x 65536, 4096^3, 128 x 10 x 20), every
  precision and method worth comparing, the reduction alone; CUDA events on torch's current stream, medians.
* training: forward + backward rows (gradients of x, W and b) against torch autograd.
* calls: back-to-back calls of the sizes people call in a loop (calls.py), per-call wall and host time.

Inputs are torch CUDA tensors passed zero-copy (the calls section also cupy arrays); references are float64. Without
a GPU the NumPy backend is timed with a host clock against torch's CPU path (when torch is there).
"""

from __future__ import annotations

import sys

from . import calls as calls_section
from .report import environment, plot, print_table, write_json
from .suites import ALL_PRECISIONS, CPU_SHAPE, SUITE, bench_cpu, bench_gpu

SECTIONS = ("suite", "training", "calls")


def _gpu_available() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - no driver, no device: the CPU bench
        return False


def main(
    shapes=None, reps: int = 30, json_path: str | None = None, plot_path: str | None = None, sections=SECTIONS
) -> int:
    if not _gpu_available():
        print("no GPU found: timing the NumPy backend on the CPU at a CPU-sized shape", flush=True)
        rows, meta = bench_cpu(shapes or [CPU_SHAPE], reps)
        meta.update(environment())
        print_table(rows, f"cupy-fused bench on {meta.get('cpu')} ({meta['date']})")
        if json_path:
            write_json(json_path, rows, meta)
        if plot_path:
            plot(rows, meta, plot_path)
        return 0
    try:
        import torch  # noqa: F401
    except ImportError:
        print("cupy-fused bench on a GPU compares against torch; install torch to run it", file=sys.stderr)
        return 2
    rows, meta, call_rows = [], {}, []
    if "suite" in sections or "training" in sections:
        suite = [(shape, ALL_PRECISIONS) for shape in shapes] if shapes else SUITE
        rows, meta = bench_gpu(
            suite if "suite" in sections else [], reps, training="training" in sections and not shapes
        )
    if "calls" in sections:
        call_rows = calls_section.run(
            progress=lambda label: print(f"\r{label[:70]:70s}", end="", file=sys.stderr, flush=True)
        )
        print(file=sys.stderr)
    meta.update(environment())
    import torch

    meta.setdefault("gpu", torch.cuda.get_device_name())
    title = (
        f"cupy-fused bench on {meta['gpu']} ({meta['date']}, "
        + ", ".join(f"{k} {meta[k]}" for k in ("cupy", "torch") if k in meta)
        + ")"
    )
    if rows:
        print_table(rows, title)
    if call_rows:
        print(f"\ncalls: per-call wall time (us) of back-to-back calls, synchronized once at the end ({title[18:]})")
        print(calls_section.table(call_rows))
    if json_path:
        meta["calls"] = call_rows
        write_json(json_path, rows, meta)
    if plot_path and rows:
        plot(rows, meta, plot_path)
    return 0


__all__ = ["main", "SECTIONS"]
