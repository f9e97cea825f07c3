"""The GPU side of planning: which backend and kernel run a signature, and the per-call runner that launches it.

Candidates come from the backends (small_batch, fused, cublas), the statically preferred one first:

* K = 0: the small-batch kernel (nothing to multiply; it sums sigmoid(bias)).
* float32 "tf32x3" / "tf32" (and precision None) on sm_90a with 16-byte aligned rows, 5 <= B <= 64: the small-batch
  wgmma kernel (W's rows as wgmma's M, the batch as its N, both operands by TMA). H100: 32 x 4096 x 11008 tf32x3 in
  70.5 us (1.21x the HBM floor) against 137 for the 64-row tile and 264 for the CUDA-core kernel; at B <= 4 the
  CUDA-core kernel is faster (1 x 4096^2: 28.9 against 33.5 us). Up to B = 128 it is also the first of the tile
  kernels below (fp32-accurate: 128 x 4096 x 11008 144 against 171 us, 128 x 32768^2 2.24 against 2.9-3.3 ms;
  "tf32" with W of 2**28 elements or more: 1.45 against cuBLASLt's 1.53 ms).
* B <= 16 (every dtype and float32 precision): the small-batch CUDA-core kernel. It is exact, and at these batch
  sizes reading W sets its time, so it also serves "tf32" and "bf16" requests, more accurately than asked.
* B * N * K <= 2**20 (tiny problems, launch-bound): one launch of our tile kernels (small-batch kernel up to B = 64).
* float32, precision None (fp32-accurate): "tf32x3" on tensor cores (fused; 64-row tiles up to B = 64 where the
  small-batch wgmma kernel cannot run), else strict fp32 through cuBLAS.
* bfloat16 / float16 on sm_90a with 16-byte aligned rows: the Hopper GEMM core (backends/sm90.py) first, and offered
  only, where its GPU time measured at least level with the rest (_core_offered).
* float32 "ieee", "bf16", float16 / bfloat16 elsewhere, float64: cuBLAS(Lt) into a bounded workspace, then our
  reduction.
* float32 "tf32": our fused TF32 kernels (split-K when the tiles cannot fill the GPU) up to B = 512 when W has at
  least 2**28 elements (only there did they measure as fast as cuBLAS: 1.45-1.51 against 1.53 ms at
  128 x 32768 x 32768; at 65-128 x 4096 x 4096 the small-batch wgmma kernel took 44-49 us against cuBLAS's 35-38),
  cuBLAS otherwise.
* method="fused" / "cublas" restrict the candidates to that method (with "fused", the GEMM core wherever it runs).

With tuning on (tune.py) every candidate of the request is timed on the first call of a shape class and the winner
is kept; with it off the first candidate runs. Every candidate computes at least as accurately as the request.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from . import checks, loader, tune
from .backends import ITEMSIZE, Candidate, Executable, Problem, cublas, fused, sm90, small_batch
from .gemm.kernel import BM as CORE_BM
from .plans import default_precision_candidates, precision_line
from .precision import TABLE

SMALL_BATCH = 16  # batches served by the small-batch kernel without tuning
CUDA_CORE_BATCH = 4  # ... where the small-batch wgmma kernel can run instead
TINY_MACS = 1 << 20
TF32_FUSED_MAX_B = 512
TF32_FUSED_MIN_KN = 1 << 28
CORE_SWAPPED_MIN_KN = 1 << 25  # half inputs up to B = 128: the core first where W has this many elements or more
CORE_TILE_MAX_K = 1024  # ... above B = 128 where K is at most this and (B, N) has CORE_TILE_MIN_BN elements or more
CORE_TILE_MIN_BN = 1 << 26


def tuning_enabled() -> bool:
    return os.environ.get("CUPY_FUSED_TUNE", "1") != "0"


@dataclass
class Choice:
    problem: Problem
    candidate: Candidate | None  # None when there is nothing to compute (B = 0 or N = 0)
    executable: Executable | None  # None with candidate
    prepare: tuple  # (x, w, b): whether each operand is read through a copy
    lines: list


def problem_of(ops, rows: int, k: int, n: int, workspace_bytes: int, save: bool = False) -> tuple[Problem, tuple]:
    """The backends' view of the operands, and which of them they read through a copy (made per call): kernels and
    cuBLAS read rows with unit stride along K and row strides of at least K; torch's negative bit is resolved.
    ``save``: a training forward, which also stores sigmoid'(z)."""
    xo, wo = ops[0], ops[1]
    bo = ops[2] if len(ops) > 2 else None
    ldx = checks.rows_stride(xo.shape, xo.strides)
    x_copy = ldx is None or not (xo.plain and (k <= 1 or xo.strides[-1] == 1) and (rows <= 1 or ldx >= k))
    ldx = k if (ldx is None or x_copy or rows <= 1) else ldx
    w_copy = not (wo.plain and (k <= 1 or wo.strides[1] == 1) and (n <= 1 or wo.strides[0] >= k))
    ldw = k if (w_copy or n <= 1) else wo.strides[0]
    b_copy = bo is not None and not (bo.plain and (n <= 1 or bo.strides[0] == 1))
    item = ITEMSIZE[xo.dtype]
    aligned = (x_copy or xo.aligned) and (w_copy or wo.aligned) and (ldx * item) % 16 == 0 and (ldw * item) % 16 == 0
    device_id = xo.device_id
    assert device_id is not None, "the planner sees operands on a GPU only"
    problem = Problem(
        rows, k, n, xo.dtype, bo is not None, max(ldx, 1), max(ldw, 1), aligned, device_id, workspace_bytes, save
    )
    return problem, (x_copy, w_copy, b_copy)


def _each_kernel_once(cands: list[Candidate]) -> list[Candidate]:
    """The candidates in order, each kernel once (without tensor cores every float32 precision runs the FMA kernel:
    the tuner would build and time it twice)."""
    first: dict[str, Candidate] = {}
    for c in cands:
        first.setdefault(c.kernel, c)
    return list(first.values())


def candidates(p: Problem, precision: str | None, method: str, info, tuning: bool) -> list[Candidate]:
    """Every way to run the request, the statically preferred one first."""
    if p.k == 0:
        return small_batch.candidates(p, info, False)
    out: list[Candidate] = []
    fused_ok, cublas_ok = method in ("auto", "fused"), method in ("auto", "cublas")
    precisions = default_precision_candidates(p.dtype, precision)
    tiny = p.rows * p.n * p.k <= TINY_MACS
    if fused_ok and (p.rows <= SMALL_BATCH or (p.rows <= small_batch.MAX_ROWS and (tuning or tiny))):
        out += small_batch.candidates(p, info, tuning)
    ours_first = tiny or (
        p.dtype == "float32"
        and (
            (precision is None and info.tensor_cores)
            or (precision == "tf32" and p.rows <= TF32_FUSED_MAX_B and p.k * p.n >= TF32_FUSED_MIN_KN)
        )
    )
    ours = _each_kernel_once(
        [c for prec in precisions for c in fused.candidates(p, prec, info, tuning)] if fused_ok else []
    )
    theirs = [c for prec in precisions for c in cublas.candidates(p, prec)] if cublas_ok else []
    offered = method == "fused" or (fused_ok and _core_offered(p, info.sms))
    core = [c for prec in precisions for c in sm90.candidates(p, prec, info, tuning)] if offered else []
    if core:
        return core + out + ours + theirs
    if p.dtype == "float32" and precision is None:  # fp32-accurate: tf32x3 on tensor cores, ieee otherwise
        ours.sort(key=lambda c: c.precision != ("tf32x3" if info.tensor_cores else "ieee"))
    sbw_first = ours and ours[0].kernel.startswith(fused.SmallBatchWgmma.TEMPLATE)
    if sbw_first and CUDA_CORE_BATCH < p.rows <= small_batch.MAX_ROWS and not tiny:
        return ours + out + theirs + core
    out += ours + theirs if ours_first or not theirs else theirs + ours
    return out + core


def _core_offered(p: Problem, sms: int) -> bool:
    """Whether method="auto" offers the GEMM core's forward (half inputs; then first): where its GPU time measured at
    least level with every other candidate's (H100, CUDA-graph replay, bf16): up to B = 128 where W is large and its
    128-row tiles fill at least half the SMs (1 x 8192 x 28672: 156 us against the CUDA-core kernel's 167 and
    cuBLASLt's 169, 32 x 4096 x 14336: 49 against 52; but 128 x 4096 x 4096, W of 2**24 elements: 32 against
    cuBLASLt's 20, and with fewer tiles, even stream-K: 64 x 8192 x 4096, 32 tiles: 38.8 against 34.0, 16 x 16384 x
    2048: 36.9 against 31.2, 1 x 32768 x 1024: 36.6 against 29.6), and above it where z is large against
    the products (16384 x 1024 x 65536: 3.88 ms against 5.58, 16384 x 256 x 16384: 0.45 against 0.86; but 4096^3:
    217 us against 204). Not elsewhere, even for the tuner: it ranks host-bound calls by their wall time, where one
    launch beats cuBLASLt's two, and picked the core at 128 x 4096 x 4096 (32 us of GPU against 20) and 256 x 1024 x
    1024 (22 against 7): slower for a CUDA graph, which pays GPU time only."""
    if p.rows <= sm90.SWAPPED_MAX_ROWS:
        return p.k * p.n >= CORE_SWAPPED_MIN_KN and 2 * -(-p.n // CORE_BM) >= sms
    return p.k <= CORE_TILE_MAX_K and p.rows * p.n >= CORE_TILE_MIN_BN


def choose_linear(
    adapter, ops, operands, stream, out_shape, rows, k, n, precision, method, workspace_bytes, tune_on=None, save=False
) -> Choice:
    """The backend and kernel for a GPU signature. ``operands`` (x, w, b) and ``stream`` are the call's own: the
    tuner times the candidates on them (with ``save``, storing sigmoid'(z) as the plan will)."""
    xo = ops[0]
    p, prepare = problem_of(ops, rows, k, n, workspace_bytes, save)
    if rows == 0 or n == 0:
        what = "nothing to compute: an empty result" if rows == 0 else "N = 0: zeros"
        return Choice(p, None, None, prepare, [f"method: none ({what})"])
    info = loader.device_info(p.device_id)
    tuning = tuning_enabled() if tune_on is None else tune_on
    cands = candidates(p, precision, method, info, tuning)
    if not cands:
        offered = [name for name, row in TABLE.items() if row.cublas_compute is not None]
        raise ValueError(
            f"precision={precision!r} is not available with method={method!r} (cuBLAS offers "
            f"{', '.join(map(repr, offered))}); use method='fused' or 'auto'"
        )
    how = "static heuristic (tuning off: CUPY_FUSED_TUNE=0)" if not tuning else "static heuristic (one candidate)"
    chosen, executable = cands[0], None
    if tuning and len(cands) > 1:
        from cupy.cuda import runtime

        raw = adapter.stream_fn(p.device_id)() if stream is None else adapter.user_stream(stream, p.device_id)[0]

        def timer(exe):
            run = linear_runner(adapter, ops, out_shape, rows, k, n, Choice(p, None, exe, prepare, []), p.saves)
            return tune.time_calls(lambda: run(*operands, stream), raw, p.device_id, info.clock_khz)

        chosen, executable, how = tune.select(
            tune.bucket(p, precision, method), cands, timer, info.name, bool(runtime.streamIsCapturing(raw))
        )
    if executable is None:
        executable = chosen.build()
    lines = [
        f"method: {chosen.method}, {precision_line(xo.dtype, precision, chosen.precision)}",
        f"kernel: {executable.describe()}",
        f"workspace: {executable.workspace_bytes} bytes per call from the caller's allocator",
        f"chosen by: {how}",
    ]
    copies = [name for name, copy in zip(("x", "weight", "bias"), prepare) if copy]
    if copies:
        lines.append(f"copies per call: {', '.join(copies)} (layout the kernels cannot read as is)")
    return Choice(p, chosen, executable, prepare, lines)


def floor_text(rows: int, k: int, n: int, dtype: str, device_id: int) -> str:
    item = ITEMSIZE[dtype]
    nbytes = item * (rows * k + n * k + n + rows)
    info = loader.device_info(device_id)
    return (
        f"reads {nbytes / 1e6:.3g} MB: {nbytes / info.peak_bytes_per_s * 1e6:.3g} us at the memory's peak "
        f"{info.peak_bytes_per_s / 1e12:.2f} TB/s; {2 * rows * k * n / 1e9:.3g} GFLOP"
    )


# ------------------------------------------------------------------------------------------------------- runners


def _device_guard():
    from cupy.cuda import runtime

    return runtime.getDevice, runtime.setDevice


def linear_runner(adapter, ops, out_shape, rows, k, n, choice: Choice, save: bool = False):
    """run(x, w, b, stream) for a GPU signature: the caller's stream, output and workspace from the caller's
    allocator, copies only where the signature needs them, one call into the executable. With ``save`` it returns
    (out, saved), saved (B, N) in x's dtype holding sigmoid'(z)."""
    xo = ops[0]
    device_id = xo.device_id
    empty = adapter.empty_fn(xo.dtype, device_id)
    empty_bytes = adapter.empty_fn("uint8", device_id)
    current = adapter.stream_fn(device_id)
    ptr, prepare = adapter.pointer, adapter.prepare
    get_device, set_device = _device_guard()
    exe = choice.executable
    x_copy, w_copy, b_copy = choice.prepare
    ws_bytes = exe.workspace_bytes if exe is not None else 0
    launch = exe.run if exe is not None else None
    zero = n == 0 and rows > 0
    empty_result = rows == 0
    zero_fill = adapter.zero
    flat = (rows, k)
    empty_saved = adapter.empty_fn(xo.dtype, device_id)
    out_of_memory = adapter.out_of_memory
    item = ITEMSIZE[xo.dtype]
    needs = {
        "output": math.prod(out_shape) * item,
        "sigmoid'(z) saved for backward": rows * n * item if save else 0,
        "workspace": ws_bytes,
        "copy of x": rows * k * item if x_copy else 0,
        "copy of weight": n * k * item if w_copy else 0,
    }

    def body(x, w, b, s):
        try:
            out = empty(out_shape)
            saved = empty_saved((rows, n)) if save else None
            if zero:
                zero_fill(out)
            elif not empty_result:
                compute(x, w, b, s, out, 0 if saved is None else ptr(saved))
        except out_of_memory as exc:
            raise checks.device_memory_error("linear_sigmoid_sum", device_id, needs) from exc
        return (out, saved) if save else out

    def compute(x, w, b, s, out, saved):
        if x_copy:
            x = prepare(x.reshape(flat))
        if w_copy:
            w = prepare(w)
        if b_copy:
            b = prepare(b)
        ws = empty_bytes((ws_bytes,)) if ws_bytes else None
        launch(ptr(x), ptr(w), 0 if b is None else ptr(b), ptr(out), 0 if ws is None else ptr(ws), s, saved)

    def run(x, w, b, stream):
        previous = get_device()
        if stream is None and previous == device_id:  # the hot path
            return body(x, w, b, current())
        if previous != device_id:
            set_device(device_id)
        try:
            if stream is None:
                return body(x, w, b, current())
            raw, context = adapter.user_stream(stream, device_id)
            with context:
                return body(x, w, b, raw)
        finally:
            if previous != device_id:
                set_device(previous)

    return run


def sum_runner(adapter, ops, out_shape, rows, n):
    """run(z, b, stream) for sigmoid_sum on the GPU: the reduction kernel straight over the caller's z."""
    from .backends.reduce import SigmoidSum

    zo = ops[0]
    bo = ops[1] if len(ops) > 1 else None
    device_id = zo.device_id
    ldz = checks.rows_stride(zo.shape, zo.strides)
    z_copy = not (zo.plain and (n <= 1 or zo.strides[-1] == 1) and ldz is not None)
    ldz = n if (z_copy or rows <= 1) else ldz
    b_copy = bo is not None and not (bo.plain and (n <= 1 or bo.strides[0] == 1))
    item = ITEMSIZE[zo.dtype]
    vec = (z_copy or zo.aligned) and (ldz * item) % 16 == 0
    kernel = SigmoidSum(max(rows, 1), max(ldz, 1), zo.dtype, zo.dtype, vec, device_id) if rows and n else None
    empty = adapter.empty_fn(zo.dtype, device_id)
    current = adapter.stream_fn(device_id)
    ptr, prepare = adapter.pointer, adapter.prepare
    get_device, set_device = _device_guard()
    zero_fill = adapter.zero
    flat = (rows, n)

    def body(z, b, s):
        out = empty(out_shape)
        if kernel is None:
            if rows:
                zero_fill(out)
            return out
        if z_copy:
            z = prepare(z.reshape(flat))
        if b_copy:
            b = prepare(b)
        kernel(s, ptr(z), 0 if b is None else ptr(b), 0, 0, ptr(out), 0, n)
        return out

    def run(z, b, stream):
        previous = get_device()
        if previous != device_id:
            set_device(device_id)
        try:
            if stream is None:
                return body(z, b, current())
            raw, context = adapter.user_stream(stream, device_id)
            with context:
                return body(z, b, raw)
        finally:
            if previous != device_id:
                set_device(previous)

    copies = [name for name, copy in (("z", z_copy), ("bias", b_copy)) if copy]
    lines = [f"kernel: {kernel.describe() if kernel else 'none (empty input)'}"]
    if copies:
        lines.append(f"copies per call: {', '.join(copies)}")
    return run, lines
