"""`cupy-fused bench`: our call against its peers, with floors, in one table.

On a GPU (torch needed for the peers): inputs are torch CUDA tensors passed zero-copy; every contender runs on
torch's current stream and is timed with CUDA events on that stream, after warm-up, as the median of many runs,
rotating among input sets when they would fit in L2. The reference is float64. Without a GPU the NumPy backend is
timed with a host clock against torch's CPU path (when torch is there).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

import cupy_fused

KERNELBENCH_SHAPE = (128, 32768, 32768)
CPU_SHAPE = (128, 1024, 1024)
SIGMOID_SUM_SHAPE = (16384, 65536)


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


def _rel_err(out, ref) -> float:
    out = np.asarray(out, np.float64).ravel()
    ref = np.asarray(ref, np.float64).ravel()
    return float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-300))


def _print_table(rows: list[Row], title: str) -> None:
    peers = list(dict.fromkeys(p for r in rows for p in r.speedup))
    head = ["shape B x K x N", "contender", "ms", "TFLOP/s", "GB/s", "rel err"] + [f"vs {p}" for p in peers]
    head += ["floor", "extra MB", "host us", "kernel us"]
    lines = []
    for r in rows:
        cells = [r.shape, r.contender, f"{r.ms:.4f}", f"{r.tflops:.3g}", f"{r.gbps:.0f}",
                 "-" if r.rel_err is None else f"{r.rel_err:.2e}"]
        cells += [f"{r.speedup[p]:.2f}x" if p in r.speedup else "-" for p in peers]
        cells += [r.floor or "-", "-" if r.extra_mb is None else f"{r.extra_mb:.1f}",
                  "-" if r.host_us is None else f"{r.host_us:.1f}", "-" if r.kernel_us is None else f"{r.kernel_us:.1f}"]
        lines.append(cells)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]
    print(f"\n{title}")
    for cells in [head, ["-" * w for w in widths]] + lines:
        print("  ".join(str(c).rjust(w) for c, w in zip(cells, widths)))


def _environment() -> dict:
    env = {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
           "cupy_fused": cupy_fused.__version__, "numpy": np.__version__}
    for name in ("cupy", "torch"):
        try:
            env[name] = __import__(name).__version__
        except ImportError:
            pass
    return env


# ------------------------------------------------------------------------------------------------------------ GPU

# The suite: KernelBench's shape, a large B x N, a square GEMM and the old tiny KernelBench shape; None is the default
# precision. `--shape` replaces it with (shape, every precision).
SUITE = [
    (KERNELBENCH_SHAPE, (None, "ieee", "tf32", "tf32x3")),
    ((16384, 1024, 65536), (None, "tf32")),
    ((4096, 4096, 4096), (None, "tf32")),
    ((128, 10, 20), (None, "tf32")),
]
ALL_PRECISIONS = (None, "ieee", "tf32", "tf32x3", "bf16")
# Forward + backward (cupy_fused.torch) against torch autograd: (shape, our precision).
TRAINING_SUITE = [(KERNELBENCH_SHAPE, None), ((16384, 1024, 65536), "tf32")]


class _GpuTimer:
    def __init__(self, torch):
        self.torch = torch

    def __call__(self, fn, n_inputs: int, warmup: int = 5, reps: int = 30) -> float:
        """Median ms of fn(i) over reps, with an event pair per run on torch's current stream. Runs are queued back
        to back (one synchronize at the end), so host overhead hides behind device work as in a real loop; the
        host time per call is measured separately."""
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
                total += getattr(event, "self_device_time_total", None) or getattr(event, "self_cuda_time_total", 0.0)
        return total / calls if total else None

    def host_us(self, fn, n_inputs: int, calls: int = 300) -> float:
        """Wall time per call of a loop of calls (one synchronize at the end): the host cost when kernels are short."""
        self.torch.cuda.synchronize()
        t = time.perf_counter()
        for i in range(calls):
            fn(i % n_inputs)
        self.torch.cuda.synchronize()
        return (time.perf_counter() - t) / calls * 1e6


def _peak_extra_mb(torch, fn) -> float:
    """Peak device memory (MB, torch's allocator) above what was allocated before one call of fn(0)."""
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn(0)
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


@contextlib.contextmanager
def _torch_tf32(torch, enabled: bool):
    """torch's TF32 switch for the peers' matmuls, off again afterwards (ours never read it)."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False


def _measure_hbm_read(torch, timer) -> float:
    """GB/s of a large on-device sum (bytes read over time)."""
    big = torch.rand(2**30, device="cuda")  # 4 GiB
    ms = timer(lambda i: big.sum(), 1, warmup=3, reps=20)
    del big
    return 4 * 2**30 / ms / 1e6


def _measure_matmul(torch, dtype, tf32: bool, timer) -> float:
    a, b = torch.randn(8192, 8192, device="cuda", dtype=dtype), torch.randn(8192, 8192, device="cuda", dtype=dtype)
    with _torch_tf32(torch, tf32):
        ms = timer(lambda i: a @ b, 1, warmup=3, reps=10)
    return 2 * 8192**3 / ms / 1e9


def _reference(torch, x, w, b):
    """float64 result, over chunks of N so that memory stays bounded."""
    out = torch.zeros(x.shape[0], 1, dtype=torch.float64, device=x.device)
    step = max(1, 2**28 // x.shape[0])
    xd = x.double()
    for s in range(0, w.shape[0], step):
        z = torch.nn.functional.linear(xd, w[s : s + step].double(), b[s : s + step].double())
        out += torch.sigmoid(z).sum(-1, keepdim=True)
    return out


def _progress(done: int, total: int, label: str) -> None:
    width = 30
    filled = width * done // max(total, 1)
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label[:60]:60s}", end="", file=sys.stderr,
          flush=True)


def _bench_training(torch, timer, reps, rates, hbm) -> list[Row]:
    """Forward + backward rows: gradients of x, W and b through cupy_fused.torch against torch autograd."""
    from cupy_fused import torch as cft

    model = lambda x, w, b: torch.sum(torch.sigmoid(torch.nn.functional.linear(x, w, b)), dim=1, keepdim=True)
    rows = []
    for (B, K, N), precision in TRAINING_SUITE:
        label = f"{B} x {K} x {N} fwd+bwd"
        bound = 1 / math.sqrt(K)
        x = torch.randn(B, K, device="cuda", requires_grad=True)
        w = torch.empty(N, K, device="cuda").uniform_(-bound, bound).requires_grad_()
        b = torch.empty(N, device="cuda").uniform_(-bound, bound).requires_grad_()
        g = torch.rand(B, 1, device="cuda")
        flops = 3 * 2 * B * K * N  # forward, grad_x, grad_W (the floor's products; ours recomputes z on top)
        in_bytes = 4 * (2 * (B * K + N * K + N) + 2 * B)
        peer_ms, grads = {}, {}
        leaves = [t.detach().double().requires_grad_() for t in (x, w, b)]
        ref = torch.autograd.grad(model(*leaves), leaves, grad_outputs=g.double())
        del leaves
        # (name, forward rate, backward rate, TF32 flag for torch, function): ours recomputes z in backward
        contenders = [("torch fp32", "ieee", "ieee", False, model), ("torch tf32", "tf32", "tf32", True, model),
                      (f"ours {precision or 'default'}", precision or "tf32x3", cft.backward_precision(precision),
                       False, lambda x, w, b: cft.linear_sigmoid_sum(x, w, b, precision=precision))]
        for name, forward_rate, backward_rate, tf32, f in contenders:
            step = lambda i, f=f: torch.autograd.grad(f(x, w, b), (x, w, b), grad_outputs=g)
            with _torch_tf32(torch, tf32):
                grads[name] = step(0)
                extra = _peak_extra_mb(torch, step)
                ms = timer(step, 1, warmup=2, reps=max(5, reps // 3))
            if name.startswith("torch"):
                peer_ms[name] = ms
            products = 2 * B * K * N
            compute_ms = products / (rates[forward_rate] * 1e9) + 2 * products / (rates[backward_rate] * 1e9)
            floor_ms = max(in_bytes / hbm / 1e6, compute_ms)
            err = max(float((a.double() - r).norm() / r.norm()) for a, r in zip(grads[name], ref))  # worst of three
            rows.append(Row(label, name, ms, flops / ms / 1e9, in_bytes / ms / 1e6, err,
                            {p: v / ms for p, v in peer_ms.items()} if name.startswith("ours") else {},
                            f"{floor_ms / ms:.2f} of fwd+bwd {floor_ms:.3f} ms", floor_ms, extra))
        del x, w, b, grads
        torch.cuda.empty_cache()
    return rows


def _bench_gpu(suite, reps, training=True) -> tuple[list[Row], dict]:
    import torch

    from cupy_fused import _plan

    timer = _GpuTimer(torch)
    torch.manual_seed(0)
    props = torch.cuda.get_device_properties(0)
    hbm = _measure_hbm_read(torch, timer)
    rates = {"ieee": _measure_matmul(torch, torch.float32, False, timer),
             "tf32": _measure_matmul(torch, torch.float32, True, timer),
             "bf16": _measure_matmul(torch, torch.bfloat16, False, timer)}
    rates["tf32x3"] = rates["tf32"] / 3  # three TF32 products per product
    meta = {"gpu": props.name, "hbm_read_gbps": round(hbm)}
    meta.update({f"matmul_{k}_tflops": round(v, 1) for k, v in rates.items()})
    print(f"{props.name}: HBM read {hbm:.0f} GB/s (4 GiB sum); matmul at 8192^3: fp32 {rates['ieee']:.0f}, "
          f"TF32 {rates['tf32']:.0f}, bf16 {rates['bf16']:.0f} TFLOP/s", flush=True)
    l2 = getattr(props, "L2_cache_size", 50 * 2**20)
    model = lambda x, w, b: torch.sum(torch.sigmoid(torch.nn.functional.linear(x, w, b)), dim=1, keepdim=True)
    compiled = torch.compile(model)
    rows = []
    total = sum(4 + 2 * len(precisions) for _, precisions in suite) + 1
    done = 0
    for (B, K, N), precisions in suite:
        label = f"{B} x {K} x {N}"
        in_bytes = 4 * (B * K + N * K + N + B)
        n_inputs = 1 if in_bytes > 2 * l2 else 4
        bound = 1 / math.sqrt(K) if K else 1.0
        sets = [(torch.randn(B, K, device="cuda"),
                 torch.empty(N, K, device="cuda").uniform_(-bound, bound),
                 torch.empty(N, device="cuda").uniform_(-bound, bound)) for _ in range(n_inputs)]
        ref = _reference(torch, *sets[0]).cpu().numpy()
        flops = 2 * B * K * N
        small = flops < 1e9

        contenders = [("torch fp32", "ieee", False, lambda i, s=sets: model(*s[i])),
                      ("torch tf32", "tf32", True, lambda i, s=sets: model(*s[i])),
                      ("compile fp32", "ieee", False, lambda i, s=sets: compiled(*s[i])),
                      ("compile tf32", "tf32", True, lambda i, s=sets: compiled(*s[i]))]
        for precision in precisions:
            auto_method, resolved = _plan.choose(B, K, N, "float32", precision, "auto", 0)
            methods = [auto_method] + ([m for m in ("fused", "cublas") if m != auto_method] if resolved == "tf32" else [])
            for method in methods:
                name = f"ours {precision or 'default'}" + (f"={resolved}" if precision is None else "")
                name += f" ({method}{', auto' if method == auto_method else ''})"
                contenders.append((name, resolved, False, lambda i, s=sets, p=precision, m=method:
                                   cupy_fused.linear_sigmoid_sum(*s[i], precision=p, method=m)))
        peer_ms = {}
        for name, precision, tf32, fn in contenders:
            done += 1
            _progress(done, total, f"{label} {name}")
            with _torch_tf32(torch, tf32):
                out = fn(0).float().cpu().numpy()
                extra = _peak_extra_mb(torch, fn)
                ms = timer(fn, n_inputs, reps=reps)
                host = timer.host_us(fn, n_inputs) if small else None
                kernels = timer.kernel_us(fn, n_inputs) if small else None
            if not name.startswith("ours"):
                peer_ms[name] = ms
            floor_ms, floor_name = max((in_bytes / hbm / 1e6, "HBM"), (flops / (rates[precision] * 1e9), "matmul"))
            rows.append(Row(label, name, ms, flops / ms / 1e9, in_bytes / ms / 1e6, _rel_err(out, ref),
                            {p: v / ms for p, v in peer_ms.items()} if name.startswith("ours") else {},
                            f"{floor_ms / ms:.2f} of {floor_name} {floor_ms:.3f} ms", floor_ms, extra, host, kernels))
        del sets
        torch.cuda.empty_cache()

    rows += _bench_training(torch, timer, reps, rates, hbm) if training else []

    # The reduction alone, over an fp32 z of SIGMOID_SUM_SHAPE: a bandwidth test.
    done += 1
    _progress(done, total, "sigmoid_sum")
    B, N = SIGMOID_SUM_SHAPE
    z, b = torch.randn(B, N, device="cuda"), torch.randn(N, device="cuda")
    ref = torch.sigmoid(z.double() + b.double()).sum(-1, keepdim=True).cpu().numpy()
    z_bytes = 4 * (B * N + N + B)
    ms_torch = timer(lambda i: torch.sigmoid(z + b).sum(-1, keepdim=True), 1, reps=reps)
    ms = timer(lambda i: cupy_fused.sigmoid_sum(z, b), 1, reps=reps)
    out = cupy_fused.sigmoid_sum(z, b).cpu().numpy()
    rows.append(Row(f"sigmoid_sum {B} x {N}", "ours", ms, 0.0, z_bytes / ms / 1e6, _rel_err(out, ref),
                    {"torch fp32": ms_torch / ms}, f"{z_bytes / hbm / 1e6 / ms:.2f} of HBM read", z_bytes / hbm / 1e6))
    print(file=sys.stderr)
    return rows, meta


def plot(rows: list[Row], meta: dict, path: str) -> None:
    """One panel per shape: each contender's time, shortest first, with the floor as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = list(dict.fromkeys(r.shape for r in rows if not r.shape.startswith("sigmoid_sum")))
    fig, axes = plt.subplots(len(shapes), 1, figsize=(9, 2.2 + 0.45 * max(
        sum(r.shape == s for r in rows) for s in shapes) * len(shapes)), squeeze=False)
    for ax, shape in zip(axes[:, 0], shapes):
        group = sorted((r for r in rows if r.shape == shape), key=lambda r: r.ms)
        colors = ["tab:green" if r.contender.startswith("ours") else "tab:gray" for r in group]
        ax.barh([r.contender for r in group], [r.ms for r in group], color=colors)
        floors = [(i, r.floor_ms) for i, r in enumerate(group) if r.floor_ms]
        if floors:
            ax.scatter([f for _, f in floors], [i for i, _ in floors], marker="|", s=300, color="black", zorder=3,
                       label="floor at that precision (HBM or matmul)")
            ax.legend(loc="lower right", fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"B x K x N = {shape} (ms, lower is better)", fontsize=10)
        for i, r in enumerate(group):
            ax.text(r.ms, i, f" {r.ms:.3f}", va="center", fontsize=8)
    fig.suptitle(f"cupy-fused bench, {meta.get('gpu')} ({meta['date']})", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)


# ------------------------------------------------------------------------------------------------------------ CPU

def _bench_cpu(shapes, reps) -> tuple[list[Row], dict]:
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    rows = []
    for B, K, N in shapes:
        label = f"{B} x {K} x {N}"
        bound = 1 / math.sqrt(K) if K else 1.0
        x = rng.standard_normal((B, K), dtype=np.float32)
        w = rng.uniform(-bound, bound, (N, K)).astype(np.float32)
        b = rng.uniform(-bound, bound, N).astype(np.float32)
        z = x.astype(np.float64) @ w.astype(np.float64).T + b
        ref = (1 / (1 + np.exp(-z))).sum(-1, keepdims=True)
        contenders = [("ours numpy", lambda: cupy_fused.linear_sigmoid_sum(x, w, b))]
        if torch is not None:
            xt, wt, bt = map(torch.from_numpy, (x, w, b))
            contenders.insert(0, ("torch cpu", lambda: torch.sum(torch.sigmoid(torch.nn.functional.linear(xt, wt, bt)), 1, keepdim=True)))
        peer_ms = {}
        for name, fn in contenders:
            out = np.asarray(fn())
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1e3)
            ms = statistics.median(times)
            if name.startswith("torch"):
                peer_ms[name] = ms
            rows.append(Row(label, name, ms, 2 * B * K * N / ms / 1e9, 4 * (B * K + N * K + N + B) / ms / 1e6,
                            _rel_err(out, ref), {p: v / ms for p, v in peer_ms.items() if not name.startswith("torch")}))
    return rows, {"gpu": None, "cpu": platform.processor() or platform.machine()}


def _gpu_available() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def main(shapes=None, reps: int = 30, json_path: str | None = None, plot_path: str | None = None) -> int:
    gpu = _gpu_available()
    if gpu:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("cupy-fused bench on a GPU compares against torch; install torch to run it", file=sys.stderr)
            return 2
        suite = [(shape, ALL_PRECISIONS) for shape in shapes] if shapes else SUITE
        rows, meta = _bench_gpu(suite, reps, training=not shapes)
    else:
        print("no GPU found: timing the NumPy backend on the CPU at a CPU-sized shape", flush=True)
        rows, meta = _bench_cpu(shapes or [CPU_SHAPE], reps)
    meta.update(_environment())
    _print_table(rows, f"cupy-fused bench on {meta.get('gpu') or meta.get('cpu')} ({meta['date']}, "
                       + ", ".join(f"{k} {meta[k]}" for k in ("cupy", "torch") if k in meta) + ")")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"meta": meta, "rows": [asdict(r) for r in rows]}, f, indent=1)
    if plot_path:
        plot(rows, meta, plot_path)
    return 0
