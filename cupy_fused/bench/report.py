"""Rows, the tables and progress bars (drawn by rich), and the JSON, CSV and chart files of a bench run."""

from __future__ import annotations

import contextlib
import csv
import datetime
import json
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
from rich import box
from rich.console import Console, JustifyMethod
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import cupy_fused


@dataclass
class Row:
    shape: str
    contender: str
    ms: float
    tflops: float
    gbps: float
    rel_err: float | None
    speedup: dict = field(default_factory=dict)  # over each peer: peer_ms / ms
    floor: str = ""  # "x.xx of <floor> <ms>": the larger of bytes / HBM read and FLOPs / matmul rate at the precision
    floor_ms: float | None = None
    extra_mb: float | None = None  # peak device memory above the inputs during one call
    host_us: float | None = None  # wall time per call of back-to-back calls (small shapes, training steps, half)
    loop_speedup: dict = field(default_factory=dict)  # over each peer, in wall time per call: peer / ours
    kernel_us: float | None = None  # summed kernel time per call (small shapes)
    timing: str | None = None  # half: ms from a CUDA graph's replay ("graph") or events around each call ("events")

    @classmethod
    def timed(
        cls, shape, contender, ms, flops, in_bytes, err, peer_ms, floor_ms, floor_name, peer_loop_us=None, **extra
    ):
        """A GPU row from its measurements: rates, speedups over the peers (for our contenders; with
        ``peer_loop_us`` and ``host_us`` also in wall time per call of a loop) and the floor."""
        ours = contender.startswith("ours")
        speedup = {p: v / ms for p, v in peer_ms.items()} if ours else {}
        if ours and peer_loop_us:
            extra["loop_speedup"] = {p: v / extra["host_us"] for p, v in peer_loop_us.items()}
        floor = f"{floor_ms / ms:.2f} of {floor_name} {floor_ms:.3f} ms"
        return cls(shape, contender, ms, flops / ms / 1e9, in_bytes / ms / 1e6, err, speedup, floor, floor_ms, **extra)


@dataclass(frozen=True)
class Column:
    """A table column: its header, the text of a record's cell ("" for none) and whether only --wide shows it."""

    header: str
    cell: Callable
    wide: bool = False
    justify: JustifyMethod = "right"


def number(value: float | None, spec: str, suffix: str = "") -> str:
    """A cell's text: the value formatted, or "" for None."""
    return "" if value is None else format(value, spec) + suffix


def row_columns(rows: list[Row], on_gpu: bool = True, loop: bool = False) -> list[Column]:
    """The columns of the suite, half, training and CPU tables; ``loop`` (half, training): host_us is the wall time
    per call or step of back-to-back ones, shown with its ratio to the best peer's. A contender timed with events
    where the others replayed a graph is marked "*"."""
    peers = list(dict.fromkeys(p for r in rows for p in r.speedup))
    each_peer = [
        Column(f"vs {p}", lambda r, p=p: number(r.speedup.get(p), ".2f", "x"), wide=True)
        for p in (peers if len(peers) > 1 else [])  # one peer: "vs best peer" is its column
    ]
    # GB/s: bytes over time, the HBM's rate on a GPU; through a CPU's caches it means nothing
    gbps = [Column("GB/s", lambda r: f"{r.gbps:.0f}", wide=True)] if on_gpu else []
    return [
        Column("B x K x N", lambda r: r.shape, justify="left"),
        Column("contender", lambda r: r.contender + ("*" if r.timing == "events" else ""), justify="left"),
        Column("ms", lambda r: f"{r.ms:.4f}"),
        Column("TFLOP/s", lambda r: f"{r.tflops:.3g}", wide=True),
        *gbps,
        Column("vs best peer", lambda r: number(min(r.speedup.values(), default=None), ".2f", "x")),
        *each_peer,
        Column("rel err", lambda r: number(r.rel_err, ".2e")),
        Column("of floor", lambda r: number(None if r.floor_ms is None else r.floor_ms / r.ms, ".2f")),
        Column("floor", lambda r: r.floor, wide=True),
        Column("extra MB", lambda r: number(r.extra_mb, ".1f"), wide=True),
        *(
            [
                Column("loop ms", lambda r: number(None if r.host_us is None else r.host_us / 1e3, ".4f")),
                Column("loop vs peer", lambda r: number(min(r.loop_speedup.values(), default=None), ".2f", "x")),
            ]
            if loop
            else [Column("host us", lambda r: number(r.host_us, ".1f"), wide=True)]
        ),
        Column("kernel us", lambda r: number(r.kernel_us, ".1f"), wide=True),
    ]


def make_table(columns: list[Column], records: list, wide: bool, grouped: bool = False) -> Table:
    """The essential columns (all with ``wide``) that have a cell in some record; ``grouped``: a blank line after
    each run of records with the same first cell (a shape)."""
    shown = [c for c in columns if (wide or not c.wide) and any(c.cell(r) for r in records)]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in shown:
        table.add_column(column.header, justify=column.justify)
    cells = [[column.cell(r) for column in shown] for r in records]
    for row, following in zip(cells, cells[1:] + [None]):
        table.add_row(*row, end_section=grouped and following is not None and following[0] != row[0])
    return table


def stdout_console(wide: bool) -> Console:
    """The console of the tables. Not on a terminal (a pipe, a file): 120 columns, not rich's 80, and room for the
    wide tables to keep a line per row."""
    console = Console(markup=False, highlight=False, emoji=False)
    if not console.is_terminal:
        console.width = 1000 if wide else 120
    return console


@contextlib.contextmanager
def progress(title: str, total: int):
    """Yields step(label), to call as each of ``total`` steps begins. On stderr: a bar on a terminal, gone when
    done, redrawn at each step only (a refresh thread would take the GIL from the timed loops); elsewhere (pipes,
    logs) a plain line for each new label."""
    console = Console(stderr=True, markup=False, highlight=False, emoji=False)
    started, last_label = 0, None
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        redirect_stdout=False,  # the tables' stream stays apart
        auto_refresh=False,
        transient=True,
        disable=not console.is_interactive,
    ) as bar:
        task = bar.add_task(title, total=total)

        def step(label: str) -> None:
            nonlocal started, last_label
            started += 1
            if console.is_interactive:
                bar.update(task, completed=started - 1, description=f"{title}: {label}", refresh=True)
            elif label != last_label:
                console.print(f"{title} [{started}/{total}] {label}")
            last_label = label

        yield step


def cpu_environment() -> dict:
    """The CPU's name (/proc/cpuinfo, else platform) and the threads numpy's BLAS (OpenBLAS) starts: as
    OPENBLAS_NUM_THREADS or OMP_NUM_THREADS say, else one per CPU that this process may use."""
    name = None
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    settings = [os.environ.get(variable, "") for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")]
    threads = next((int(s) for s in settings if s.isdigit() and int(s) > 0), cpus)
    return {"cpu": name or platform.processor() or platform.machine(), "threads": threads}


def write_csv(path: str, rows_by_section: dict[str, list], meta: dict) -> None:
    """One line per row of each section (Rows or dicts): the section's name first, every field, each speedup as a
    column "speedup.<peer>" or "loop_speedup.<peer>" (pandas.json_normalize's names); before the header, the meta as
    "# key: value" lines."""
    records = []
    for section, rows in rows_by_section.items():
        for row in rows:
            record = {"section": section, **(asdict(row) if isinstance(row, Row) else row)}
            for name in ("speedup", "loop_speedup"):
                record.update({f"{name}.{peer}": value for peer, value in record.pop(name, {}).items()})
            records.append(record)
    with open(path, "w", newline="") as f:
        f.writelines(f"# {key}: {value}\n" for key, value in meta.items() if key != "calls")  # calls: rows here
        writer = csv.DictWriter(f, list(dict.fromkeys(key for record in records for key in record)))
        writer.writeheader()
        writer.writerows(records)


def environment() -> dict:
    env = {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "cupy_fused": cupy_fused.__version__,
        "numpy": np.__version__,
    }
    for name in ("cupy", "torch", "triton"):
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
