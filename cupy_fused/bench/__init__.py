"""`cupy-fused bench`: our calls against their peers, with floors, in tables.

Sections (``--sections``, default all four on a GPU):

* suite: the large shapes (KernelBench's 128 x 32768 x 32768, 16384 x 1024 x 65536, 4096^3, 128 x 10 x 20), every
  precision and method worth comparing, the reduction alone; CUDA events on torch's current stream, medians.
* half: bfloat16 and float16 inputs at the sizes of today's models and the suite's (half.py): GPU time per call from
  CUDA-graph replay, wall time per call of a Python loop; ``--max-autotune`` adds torch.compile's
  "max-autotune-no-cudagraphs" (10-40 s of autotuning a shape).
* training: forward + backward rows (gradients of x, W and b) against torch autograd.
* calls: back-to-back calls of the sizes people call in a loop (calls.py), per-call wall and host time.

The peers: torch eager and torch.compile, and in the suite, half and calls sections the plain fused Triton kernel
(peers.py; in TF32 for float32 inputs) where triton is installed. Inputs are torch CUDA tensors passed zero-copy (the
calls section also cupy arrays); references are float64. Without a GPU the NumPy backend is timed with a host clock
against torch's CPU path (when torch is there).

Each table shows the essential columns; ``wide`` all of them; the JSON and CSV files keep every field of every row.
Progress goes to stderr, the tables to stdout.
"""

from __future__ import annotations

import sys

from . import calls as calls_section
from .half import HALF, SHORT, graph_replays
from .peers import triton_peer
from .report import environment, make_table, plot, row_columns, stdout_console, write_csv, write_json
from .suites import ALL_PRECISIONS, CPU_SHAPE, SUITE, bench_cpu, bench_gpu, training_reps

SECTIONS = ("suite", "half", "training", "calls")
SPEEDUP = "vs best peer: the fastest peer's ms / ours"


def _gpu_available() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - no driver, no device: the CPU bench
        return False


def _print_table(console, heading: str, table) -> None:
    console.print()
    console.print(heading, width=120)
    console.print(table)


def main(
    shapes=None,
    reps: int = 30,
    json_path: str | None = None,
    csv_path: str | None = None,
    plot_path: str | None = None,
    sections=SECTIONS,
    wide: bool = False,
    max_autotune: bool = False,
) -> int:
    console = stdout_console(wide)
    if _gpu_available():
        try:
            import torch  # noqa: F401
        except ImportError:
            print("cupy-fused bench on a GPU compares against torch; install torch to run it", file=sys.stderr)
            return 2
        saved_rows, rows_by_section, meta = _bench_on_gpu(console, shapes, reps, sections, wide, max_autotune)
    else:
        saved_rows, rows_by_section, meta = _bench_on_cpu(console, shapes, reps, wide)
    if json_path:
        write_json(json_path, saved_rows, meta)
    if csv_path:
        write_csv(csv_path, rows_by_section, meta)
    if plot_path and saved_rows:
        plot(saved_rows, meta, plot_path)
    return 0


def _bench_on_cpu(console, shapes, reps, wide):
    """Times and prints the CPU bench: (the rows for JSON, the rows of each section for CSV, the meta)."""
    default_shape = "" if shapes else " at a CPU-sized shape (--shape B K N for others)"
    console.print(f"no GPU found: timing the NumPy backend on the CPU{default_shape}")
    rows, meta = bench_cpu(shapes or [CPU_SHAPE], reps)
    meta.update(environment(), reps=reps)
    threads = f"numpy's BLAS {meta['threads']}"
    if "torch_threads" in meta:
        threads += f", torch {meta['torch_threads']}"
    versions = ", ".join(f"{k} {meta[k]}" for k in ("numpy", "torch") if k in meta)
    console.print(f"cupy-fused bench on {meta['cpu']} (threads: {threads}; {meta['date']}, {versions})")
    heading = f"ms: the median of {reps} timed calls after a warm-up call; rel err: against float64\n{SPEEDUP}"
    _print_table(console, heading, make_table(row_columns(rows, on_gpu=False), rows, wide, grouped=True))
    return rows, {"cpu": rows}, meta


def _bench_on_gpu(console, shapes, reps, sections, wide, max_autotune):
    """Times and prints the GPU sections: (the rows for JSON, the rows of each section for CSV, the meta)."""
    import torch

    suite_rows, half_rows, training_rows, meta, call_rows = [], [], [], {}, []
    if {"suite", "half", "training"} & set(sections):
        suite = [(shape, ALL_PRECISIONS) for shape in shapes] if shapes else SUITE
        half = [(dtype, shape) for dtype in SHORT for shape in shapes] if shapes else HALF
        suite_rows, half_rows, training_rows, meta = bench_gpu(
            suite if "suite" in sections else [],
            reps,
            training="training" in sections and not shapes,
            half=half if "half" in sections else [],
            max_autotune=max_autotune,
        )
    if "calls" in sections:
        call_rows = calls_section.run()
    meta.update(environment(), reps=reps, calls=call_rows)
    meta.setdefault("gpu", torch.cuda.get_device_name())
    versions = ", ".join(f"{k} {meta[k]}" for k in ("cupy", "torch", "triton") if k in meta)
    console.print(f"cupy-fused bench on {meta['gpu']} ({meta['date']}, {versions})")
    if "hbm_read_gbps" in meta:
        console.print(
            f"floors measured in this run: HBM read {meta['hbm_read_gbps']} GB/s (a 4 GiB sum); matmul at 8192^3: "
            f"fp32 {meta['matmul_ieee_tflops']:.0f}, TF32 {meta['matmul_tf32_tflops']:.0f}, "
            f"bf16 {meta['matmul_bf16_tflops']:.0f}, fp16 {meta['matmul_fp16_tflops']:.0f} TFLOP/s"
        )
    if triton_peer() is None and {"suite", "half", "calls"} & set(sections):
        console.print("triton is not installed: the sections run without the Triton kernel")
    if suite_rows:
        heading = (
            f"suite: ms is the median of {reps} CUDA-event timings; {SPEEDUP}\n"
            "rel err: against float64; of floor: the floor's ms / ms, the larger of bytes / HBM read and FLOPs / "
            "matmul rate"
        )
        _print_table(console, heading, make_table(row_columns(suite_rows), suite_rows, wide, grouped=True))
    if half_rows:
        heading = (
            f"half: ms is the GPU time per call, the median of {graph_replays(reps)} replays of a CUDA graph of "
            "back-to-back calls (over copies of\nthe inputs twice the L2 cache's size where one would fit in it); *: "
            f"CUDA events around each call instead\n{SPEEDUP}; loop ms: wall time per call of back-to-back calls from "
            "Python,\nsynchronized once at the end; loop vs peer: the best peer's loop ms / ours; rel err: against "
            "float64\nof floor: the floor's ms / ms, the larger of bytes / HBM read and FLOPs / the bf16 or fp16 "
            "matmul rate"
        )
        _print_table(console, heading, make_table(row_columns(half_rows, loop=True), half_rows, wide, grouped=True))
    if training_rows:
        heading = (
            "training: forward + backward (gradients of x, W and b) through cupy_fused.torch against torch autograd\n"
            f"ms: the median of {training_reps(reps)} timings; {SPEEDUP}\n"
            "loop ms: wall time per step of back-to-back steps from Python, synchronized once at the end (what a "
            "training loop waits for; host-bound steps show here); loop vs peer: the best peer's loop ms / ours\n"
            "rel err: the worst of the three gradients against float64\n"
            "of floor: the floor's ms / ms, the larger of bytes / HBM read and the three products at their matmul rates"
        )
        columns = row_columns(training_rows, loop=True)
        _print_table(console, heading, make_table(columns, training_rows, wide, grouped=True))
    if call_rows:
        _print_table(console, calls_section.HEADING, calls_section.table(call_rows, wide))
    by_section = {"suite": suite_rows, "half": half_rows, "training": training_rows, "calls": call_rows}
    return suite_rows + half_rows + training_rows, by_section, meta


__all__ = ["main", "SECTIONS"]
