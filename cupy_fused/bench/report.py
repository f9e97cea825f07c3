"""Rows, the table, the JSON file and the chart of a bench run."""

from __future__ import annotations

import datetime
import json
import platform
from dataclasses import asdict, dataclass, field

import numpy as np

import cupy_fused


@dataclass
class Row:
    shape: str
    contender: str
    ms: float
    tflops: float
    gbps: float
    rel_err: float | None
    speedup: dict = field(default_factory=dict)  # over each torch peer: peer_ms / ms
    floor: str = ""  # "x.xx of <floor> <ms>": the larger of bytes / HBM read and FLOPs / matmul rate at the precision
    floor_ms: float | None = None
    extra_mb: float | None = None  # peak device memory above the inputs during one call
    host_us: float | None = None  # wall time per call in a loop (small shapes, where the host is the limit)
    kernel_us: float | None = None  # summed kernel time per call (small shapes)


def print_table(rows: list[Row], title: str) -> None:
    peers = list(dict.fromkeys(p for r in rows for p in r.speedup))
    head = ["shape B x K x N", "contender", "ms", "TFLOP/s", "GB/s", "rel err"] + [f"vs {p}" for p in peers]
    head += ["floor", "extra MB", "host us", "kernel us"]
    lines = []
    for r in rows:
        cells = [
            r.shape,
            r.contender,
            f"{r.ms:.4f}",
            f"{r.tflops:.3g}",
            f"{r.gbps:.0f}",
            "-" if r.rel_err is None else f"{r.rel_err:.2e}",
        ]
        cells += [f"{r.speedup[p]:.2f}x" if p in r.speedup else "-" for p in peers]
        cells += [
            r.floor or "-",
            "-" if r.extra_mb is None else f"{r.extra_mb:.1f}",
            "-" if r.host_us is None else f"{r.host_us:.1f}",
            "-" if r.kernel_us is None else f"{r.kernel_us:.1f}",
        ]
        lines.append(cells)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]
    print(f"\n{title}")
    for cells in [head, ["-" * w for w in widths]] + lines:
        print("  ".join(str(c).rjust(w) for c, w in zip(cells, widths)))


def environment() -> dict:
    env = {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "cupy_fused": cupy_fused.__version__,
        "numpy": np.__version__,
    }
    for name in ("cupy", "torch"):
        try:
            env[name] = __import__(name).__version__
        except ImportError:
            pass
    return env


def plot(rows: list[Row], meta: dict, path: str) -> None:
    """One panel per shape: each contender's time, shortest first, with the floor as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = list(dict.fromkeys(r.shape for r in rows if not r.shape.startswith("sigmoid_sum")))
    fig, axes = plt.subplots(
        len(shapes),
        1,
        figsize=(9, 2.2 + 0.45 * max(sum(r.shape == s for r in rows) for s in shapes) * len(shapes)),
        squeeze=False,
    )
    for ax, shape in zip(axes[:, 0], shapes):
        group = sorted((r for r in rows if r.shape == shape), key=lambda r: r.ms)
        colors = ["tab:green" if r.contender.startswith("ours") else "tab:gray" for r in group]
        ax.barh([r.contender for r in group], [r.ms for r in group], color=colors)
        floors = [(i, r.floor_ms) for i, r in enumerate(group) if r.floor_ms]
        if floors:
            ax.scatter(
                [f for _, f in floors],
                [i for i, _ in floors],
                marker="|",
                s=300,
                color="black",
                zorder=3,
                label="floor at that precision (HBM or matmul)",
            )
            ax.legend(loc="lower right", fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"B x K x N = {shape} (ms, lower is better)", fontsize=10)
        for i, r in enumerate(group):
            ax.text(r.ms, i, f" {r.ms:.3f}", va="center", fontsize=8)
    fig.suptitle(f"cupy-fused bench, {meta.get('gpu') or meta.get('cpu')} ({meta['date']})", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)


def write_json(path: str, rows: list[Row], meta: dict) -> None:
    with open(path, "w") as f:
        json.dump({"meta": meta, "rows": [asdict(r) for r in rows]}, f, indent=1)
