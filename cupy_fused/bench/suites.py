"""The GPU suite (large shapes, every precision and method worth comparing, the reduction alone), the forward +
backward rows, and the CPU fallback, each against its peers in the same run; the GPU's floors for every section."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import cupy_fused
from cupy_fused.precision import PrecisionName

from .half import SHORT, bench_half
from .peers import torch_compiled, torch_model, triton_peer
from .report import Row, cpu_environment, progress
from .timing import (
    GpuTimer,
    measure_hbm_read,
    measure_matmul,
    peak_extra_mb,
    random_inputs,
    reference,
    rel_err,
    torch_tf32,
)

KERNELBENCH_SHAPE = (128, 32768, 32768)
CPU_SHAPE = (128, 1024, 1024)
SIGMOID_SUM_SHAPE = (16384, 65536)

# The suite: KernelBench's shape, a large B x N, a square GEMM and the old tiny KernelBench shape; None is the default
# precision. `--shape` replaces it with (shape, every precision).
SUITE = [
    (KERNELBENCH_SHAPE, (None, "ieee", "tf32", "tf32x3")),
    ((16384, 1024, 65536), (None, "tf32")),
    ((4096, 4096, 4096), (None, "tf32")),
    ((128, 10, 20), (None, "tf32")),
]
ALL_PRECISIONS = (None, "ieee", "tf32", "tf32x3", "bf16")
# Forward + backward (cupy_fused.torch) against torch autograd: (shape, dtype, our precision). float32 rows also
# time torch with TF32; half rows time torch autograd in the same dtype.
TRAINING_SUITE: list[tuple[tuple[int, int, int], str, PrecisionName | None]] = [
    (KERNELBENCH_SHAPE, "float32", None),
    (KERNELBENCH_SHAPE, "float32", "tf32"),
    ((512, 2048, 3000), "float32", None),
    ((256, 1024, 4096), "float32", None),
    ((32, 4096, 11008), "float32", None),
    ((4096, 4096, 4096), "float32", None),
    ((4096, 4096, 4096), "float32", "tf32"),
    ((16384, 1024, 65536), "float32", "tf32"),
    *(
        (shape, dtype, None)
        for dtype in ("bfloat16", "float16")
        for shape in (
            (1024, 4096, 4096),
            KERNELBENCH_SHAPE,
            (4096, 4096, 4096),
            (8192, 1024, 8192),
            (16384, 1024, 65536),
        )
    ),
]


def training_reps(reps: int) -> int:
    """Timed runs of a training step: a third of the forward's, at least 5."""
    return max(5, reps // 3)


def bench_training(torch, timer, reps, rates, hbm) -> list[Row]:
    """Forward + backward rows: gradients of x, W and b through cupy_fused.torch against torch autograd."""
    from cupy_fused import torch as cft
    from cupy_fused.backward import backward_precision

    model = torch_model()
    rows = []
    with progress("training", sum(4 if d == "float32" else 3 for _, d, _ in TRAINING_SUITE)) as step:
        for (B, K, N), dtype, precision in TRAINING_SUITE:  # a step each: the reference and the contenders
            half = SHORT.get(dtype)
            label = f"{B} x {K} x {N} {half + ' ' if half else ''}fwd+bwd"
            torch_dtype = getattr(torch, dtype)
            x, w, b = (t.requires_grad_() for t in random_inputs(torch, B, K, N, torch_dtype))
            g = torch.rand(B, 1, device="cuda", dtype=torch_dtype)
            flops = 3 * 2 * B * K * N  # forward, grad_x, grad_W (the floor's products; ours recomputes z on top)
            in_bytes = torch_dtype.itemsize * (2 * (B * K + N * K + N) + 2 * B)
            peer_ms, peer_loop_us, grads = {}, {}, {}
            step(f"{label}: float64 reference")
            leaves = [t.detach().double().requires_grad_() for t in (x, w, b)]
            ref = torch.autograd.grad(model(*leaves), leaves, grad_outputs=g.double())
            del leaves
            ours = lambda x, w, b: cft.linear_sigmoid_sum(x, w, b, precision=precision)
            # (name, forward rate, backward rate, TF32 flag for torch, function): ours recomputes z in backward
            if half:
                contenders = [(f"torch {half}", half, half, False, model), (f"ours {half}", half, half, False, ours)]
            else:
                rate = precision or "tf32x3"
                contenders = [
                    ("torch fp32", "ieee", "ieee", False, model),
                    ("torch tf32", "tf32", "tf32", True, model),
                    (f"ours {precision or 'default'}", rate, backward_precision(precision), False, ours),
                ]
            for name, forward_rate, backward_rate, tf32, f in contenders:
                step(f"{label}: {name}")
                forward_backward = lambda i, f=f: torch.autograd.grad(f(x, w, b), (x, w, b), grad_outputs=g)
                with torch_tf32(torch, tf32):
                    grads[name] = forward_backward(0)
                    extra = peak_extra_mb(torch, forward_backward)
                    ms = timer(forward_backward, 1, warmup=2, reps=training_reps(reps))
                    loop_us = timer.loop_us(forward_backward, 1)[1]
                if name.startswith("torch"):
                    peer_ms[name], peer_loop_us[name] = ms, loop_us
                products = 2 * B * K * N
                compute_ms = products / (rates[forward_rate] * 1e9) + 2 * products / (rates[backward_rate] * 1e9)
                floor_ms = max(in_bytes / hbm / 1e6, compute_ms)
                err = max(float((a.double() - r).norm() / r.norm()) for a, r in zip(grads[name], ref))  # worst of three
                rows.append(
                    Row.timed(
                        label,
                        name,
                        ms,
                        flops,
                        in_bytes,
                        err,
                        peer_ms,
                        floor_ms,
                        "fwd+bwd",
                        extra_mb=extra,
                        peer_loop_us=peer_loop_us,
                        host_us=loop_us,
                    )
                )
            del grads
            torch.cuda.empty_cache()
    return rows


def bench_gpu(suite, reps, training=True, half=(), max_autotune=False) -> tuple[list[Row], list[Row], list[Row], dict]:
    """The rows of the suite, of the half section (its cases: (dtype, shape)) and of training, and the meta: the GPU
    and its floors, measured first."""
    import torch

    timer = GpuTimer(torch)
    torch.manual_seed(0)
    props = torch.cuda.get_device_properties(0)
    hbm = measure_hbm_read(torch, timer)
    rates = {
        "ieee": measure_matmul(torch, torch.float32, False, timer),
        "tf32": measure_matmul(torch, torch.float32, True, timer),
        "bf16": measure_matmul(torch, torch.bfloat16, False, timer),
        "fp16": measure_matmul(torch, torch.float16, False, timer),
    }
    rates["tf32x3"] = rates["tf32"] / 3  # three TF32 products per product
    meta = {"gpu": props.name, "hbm_read_gbps": round(hbm)}
    meta.update({f"matmul_{k}_tflops": round(v, 1) for k, v in rates.items()})
    l2 = getattr(props, "L2_cache_size", 50 * 2**20)
    suite_rows = bench_suite(torch, timer, suite, reps, rates, hbm, l2) if suite else []
    half_rows = bench_half(torch, timer, half, reps, rates, hbm, l2, max_autotune) if half else []
    training_rows = bench_training(torch, timer, reps, rates, hbm) if training else []
    return suite_rows, half_rows, training_rows, meta


def bench_suite(torch, timer, suite, reps, rates, hbm, l2) -> list[Row]:
    """Each shape of the suite: the peers (torch's four, the Triton kernel in TF32 where triton is installed), then
    ours at each precision; then the reduction alone."""
    model, triton = torch_model(), triton_peer()
    compiled = {tf32: torch_compiled() for tf32 in (False, True)}  # a TF32 switch would recompile one
    rows = []
    # a shape's steps: the reference and plans, the peers, ours at each precision (at tf32 twice: auto and the other
    # method); the last step: the reduction alone
    n_peers = 4 + (triton is not None)
    steps = sum(1 + n_peers + len(precisions) + precisions.count("tf32") for _, precisions in suite) + 1
    with progress("suite", steps) as step:
        for (B, K, N), precisions in suite:
            label = f"{B} x {K} x {N}"
            step(f"{label}: float64 reference and plans")
            in_bytes = 4 * (B * K + N * K + N + B)
            n_inputs = 1 if in_bytes > 2 * l2 else 4
            sets = [random_inputs(torch, B, K, N) for _ in range(n_inputs)]
            ref = reference(torch, *sets[0]).cpu().numpy()
            flops = 2 * B * K * N
            small = flops < 1e9

            contenders: list[tuple[str, str, bool, Callable[..., Any]]] = [
                ("torch fp32", "ieee", False, lambda i, s=sets: model(*s[i])),
                ("torch tf32", "tf32", True, lambda i, s=sets: model(*s[i])),
                ("compile fp32", "ieee", False, lambda i, s=sets: compiled[False](*s[i])),
                ("compile tf32", "tf32", True, lambda i, s=sets: compiled[True](*s[i])),
            ]
            if triton is not None:
                contenders.append(("triton tf32", "tf32", False, lambda i, s=sets: triton(*s[i])))
            for precision in precisions:
                auto = cupy_fused.plan(*sets[0], precision=precision)
                auto_method, resolved = plan_choice(auto)
                methods = ["auto"] + (
                    [m for m in ("fused", "cublas") if m != auto_method] if precision == "tf32" else []
                )
                for method in methods:
                    name = f"ours {precision or 'default'}" + (f"={resolved}" if precision is None else "")
                    name += f" ({auto_method}, auto)" if method == "auto" else f" ({method})"
                    contenders.append(
                        (
                            name,
                            resolved,
                            False,
                            lambda i, s=sets, p=precision, m=method: cupy_fused.linear_sigmoid_sum(
                                *s[i], precision=p, method=m
                            ),
                        )
                    )
            peer_ms = {}
            for name, precision, tf32, fn in contenders:
                step(f"{label}: {name}")
                with torch_tf32(torch, tf32):
                    out = fn(0).float().cpu().numpy()
                    extra = peak_extra_mb(torch, fn)
                    ms = timer(fn, n_inputs, reps=reps)
                    host = timer.loop_us(fn, n_inputs)[1] if small else None
                    kernels = timer.kernel_us(fn, n_inputs) if small else None
                if not name.startswith("ours"):
                    peer_ms[name] = ms
                floor_ms, floor_name = max((in_bytes / hbm / 1e6, "HBM"), (flops / (rates[precision] * 1e9), "matmul"))
                rows.append(
                    Row.timed(
                        label,
                        name,
                        ms,
                        flops,
                        in_bytes,
                        rel_err(out, ref),
                        peer_ms,
                        floor_ms,
                        floor_name,
                        extra_mb=extra,
                        host_us=host,
                        kernel_us=kernels,
                    )
                )
            del sets
            torch.cuda.empty_cache()

        # The reduction alone, over an fp32 z of SIGMOID_SUM_SHAPE: a bandwidth test.
        B, N = SIGMOID_SUM_SHAPE
        step(f"sigmoid_sum {B} x {N}")
        z, b = torch.randn(B, N, device="cuda"), torch.randn(N, device="cuda")
        ref = torch.sigmoid(z.double() + b.double()).sum(-1, keepdim=True).cpu().numpy()
        z_bytes = 4 * (B * N + N + B)
        ms_torch = timer(lambda i: torch.sigmoid(z + b).sum(-1, keepdim=True), 1, reps=reps)
        ms = timer(lambda i: cupy_fused.sigmoid_sum(z, b), 1, reps=reps)
        out = cupy_fused.sigmoid_sum(z, b).cpu().numpy()
        rows.append(
            Row(
                f"sigmoid_sum {B} x {N}",
                "ours",
                ms,
                0.0,
                z_bytes / ms / 1e6,
                rel_err(out, ref),
                {"torch fp32": ms_torch / ms},
                f"{z_bytes / hbm / 1e6 / ms:.2f} of HBM read",
                z_bytes / hbm / 1e6,
            )
        )
    return rows


def bench_cpu(shapes, reps) -> tuple[list[Row], dict]:
    """The NumPy backend against torch's CPU path (when torch is there): host-clock medians of reps calls."""
    try:
        import torch
    except ImportError:  # torch is optional here: the NumPy backend alone
        torch = None  # type: ignore[assignment]
    rng = np.random.default_rng(0)
    rows = []
    contenders_per_shape = 2 if torch is not None else 1
    with progress("cpu", len(shapes) * (1 + contenders_per_shape * (1 + reps))) as step:  # reference, warm-up, reps
        for B, K, N in shapes:
            label = f"{B} x {K} x {N}"
            step(f"{label}: float64 reference")
            bound = 1 / math.sqrt(K) if K else 1.0
            x = rng.standard_normal((B, K), dtype=np.float32)
            w = rng.uniform(-bound, bound, (N, K)).astype(np.float32)
            b = rng.uniform(-bound, bound, N).astype(np.float32)
            z = x.astype(np.float64) @ w.astype(np.float64).T + b
            ref = (1 / (1 + np.exp(-z))).sum(-1, keepdims=True)
            contenders = [("ours numpy", lambda: cupy_fused.linear_sigmoid_sum(x, w, b))]
            if torch is not None:
                xt, wt, bt = map(torch.from_numpy, (x, w, b))
                contenders.insert(
                    0,
                    (
                        "torch cpu",
                        lambda: torch.sum(torch.sigmoid(torch.nn.functional.linear(xt, wt, bt)), 1, keepdim=True),
                    ),
                )
            peer_ms = {}
            for name, fn in contenders:
                step(f"{label}: {name}")
                out = np.asarray(fn())
                times = []
                for _ in range(reps):
                    step(f"{label}: {name}")
                    t = time.perf_counter()
                    fn()
                    times.append((time.perf_counter() - t) * 1e3)
                ms = statistics.median(times)
                if name.startswith("torch"):
                    peer_ms[name] = ms
                rows.append(
                    Row(
                        label,
                        name,
                        ms,
                        2 * B * K * N / ms / 1e9,
                        4 * (B * K + N * K + N + B) / ms / 1e6,
                        rel_err(out, ref),
                        {p: v / ms for p, v in peer_ms.items() if not name.startswith("torch")},
                    )
                )
    meta = {"gpu": None, **cpu_environment()}
    if torch is not None:
        meta["torch_threads"] = torch.get_num_threads()
    return rows, meta


def plan_choice(plan) -> tuple[str, str]:
    """(method, precision used) from a plan's explanation."""
    line = next(text for text in plan.explain().splitlines() if text.startswith("method: "))
    method = line.split(",")[0].removeprefix("method: ")
    used = line.split("-> ")[-1].split(":")[0] if "-> " in line else line.split("precision: ")[-1].split(" ")[0]
    return method, used.strip("'")
