"""The middle: a Plan per call signature, resolved once, and the cache that finds it again.

A signature is a cheap tuple: each operand's adapter key (library type, shape, strides, dtype, device, alignment
class, library flags) and the options with their types. On a cache miss the operands are validated (checks.py),
the backend and kernel are chosen (static heuristic, or the tuner when tuning is on: tune.py), and everything a call
needs is bound into a runner closure: the executable, the output shape, the copies the kernels need (made per call
only for signatures whose layout needs them), the allocators and the stream lookup of the caller's library. A cache
hit only runs that closure. Because every check depends only on what the signature holds, a cached call can never
skip a check that would fail.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Any

from . import arrays, checks
from .precision import FP32_ACCURATE, TABLE
from .precision import describe as describe_precision

DEFAULT_WORKSPACE_BYTES = 256 * 2**20
CACHE_SIZE = 512


# ------------------------------------------------------------------------------------------------------------ keys


def linear_key(x, weight, bias, precision, method, keepdims, workspace_bytes) -> tuple:
    """The signature of a linear_sigmoid_sum call (TypeError for unhashable options or objects of no library)."""
    return (
        arrays.key(x),
        arrays.key(weight),
        arrays.key(bias),
        precision,
        method,
        keepdims,
        workspace_bytes,
        type(keepdims),
        type(workspace_bytes),
        type(precision),
        type(method),
    )


def sum_key(z, bias, keepdims, workspace_bytes) -> tuple:
    return (
        "sigmoid_sum",
        arrays.key(z),
        arrays.key(bias),
        keepdims,
        workspace_bytes,
        type(keepdims),
        type(workspace_bytes),
    )


class _Cache:
    """Bounded and thread-safe: lookups are one dict read; inserts take a lock and evict the oldest plan."""

    def __init__(self, size: int):
        self._plans: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Any:
        """A Plan (a forward's signature), the backward's runner (backward.py's signatures), or None."""
        return self._plans.get(key)

    def add(self, key: tuple[Any, ...], plan: Any) -> None:
        with self._lock:
            self._plans[key] = plan
            while len(self._plans) > self._size:
                self._plans.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._plans.clear()

    def __len__(self):
        return len(self._plans)


CACHE = _Cache(CACHE_SIZE)


# ------------------------------------------------------------------------------------------------------------ plan


class Plan:
    """A resolved call: ``plan(x, weight, bias=None, *, stream=None)`` (``plan(z, bias=None, *, stream=None)`` for
    sigmoid_sum) runs it on operands of the same signature; anything else is a ValueError naming what changed.
    ``explain()`` (and the repr) says what runs and why: method, kernel and launch shape, precision, workspace, how
    it was chosen, and the floor."""

    def __init__(self, kind: str, key, operands: list, run, lines: list[str], signature):
        self.kind = kind
        self.key = key
        self._operands = {op.name: op for op in operands}  # the validated Operands, for messages
        self._names = ("x", "weight", "bias") if kind == "linear_sigmoid_sum" else ("z", "bias")
        self._run = run
        self._lines = lines
        self._signature = signature  # operands -> key

    def __call__(self, *operands: Any, stream: object = None) -> Any:
        """Runs the plan: ``p(x, weight, bias=None, stream=None)`` (``p(z, bias=None, stream=None)`` for
        sigmoid_sum), operands of the plan's signature; returns what the call it was made for returns."""
        names = self._names
        if not len(names) - 1 <= len(operands) <= len(names):
            raise TypeError(
                f"this {self.kind} plan takes {', '.join(names[:-1])} and optionally bias, got "
                f"{len(operands)} arguments"
            )
        operands = operands + (None,) * (len(names) - len(operands))
        try:
            key = self._signature(*operands)
        except TypeError:
            key = None
        if key != self.key:
            raise ValueError(self._mismatch(operands))
        return self._run(*operands, stream)

    def _mismatch(self, operands) -> str:
        changes = []
        for name, obj in zip(self._names, operands):
            expected = self._operands.get(name)
            if expected is None or obj is None:
                if (expected is None) != (obj is None):
                    changes.append(
                        f"{name}: {'None' if expected is None else 'an array'} -> "
                        f"{'None' if obj is None else 'an array'}"
                    )
                continue
            try:
                got = arrays.describe(name, obj)
            except TypeError as exc:
                changes.append(str(exc))
                continue
            for field in ("library", "shape", "dtype", "device", "strides", "aligned", "plain"):
                before, after = getattr(expected, field), getattr(got, field)
                if before != after:
                    changes.append(f"{name}.{field}: {before} -> {after}")
        detail = "; ".join(changes) or "the array type"
        return f"this plan was made for another signature ({detail}); make one for these operands with cupy_fused.plan"

    def explain(self) -> str:
        """What runs and why, one line each: method, kernel and launch shape, precision, workspace, how it was
        chosen, and the floor (the time the call's bytes and FLOPs need at the device's measured rates)."""
        return "\n".join(self._lines)

    def __repr__(self) -> str:
        return "<cupy_fused.Plan\n  " + "\n  ".join(self._lines) + ">"


# ----------------------------------------------------------------------------------------------------- resolution


def resolve_linear(
    key, x, weight, bias, precision, method, keepdims, workspace_bytes, stream=None, tune=None, save=False
) -> Plan:
    """Validate a linear_sigmoid_sum signature and build its plan (added to the cache when key is not None). With
    ``save`` the plan returns (out, saved): saved (B, N) in x's dtype holds sigmoid'(z) for a training
    step's backward."""
    raw_options = (precision, method, keepdims, workspace_bytes)
    signature = lambda x, w, b: linear_key(x, w, b, *raw_options)
    if getattr(arrays.adapter_for(x), "bridge", False):

        def native_plan(x, w, b, stream):
            native_key = signature(x, w, b)
            found = CACHE.get(native_key)
            return found or resolve_linear(
                native_key, x, w, b, precision, method, keepdims, workspace_bytes, stream, tune, save
            )

        return _bridged(
            "linear_sigmoid_sum", key, ("x", "weight", "bias"), (x, weight, bias), native_plan, signature, stream, save
        )
    ops = [arrays.describe("x", x), arrays.describe("weight", weight)]
    if bias is not None:
        ops.append(arrays.describe("bias", bias))
    checks.same_kind(ops)
    checks.linear_shapes(ops[0], ops[1], ops[2] if bias is not None else None)
    precision = checks.precision(precision)
    method = checks.method(method)
    keepdims = checks.flag("keepdims", keepdims)
    workspace_bytes = checks.workspace_bytes(workspace_bytes)
    xo, wo = ops[0], ops[1]
    n, k = wo.shape
    batch = xo.shape[:-1]
    rows = math.prod(batch)
    out_shape = batch + ((1,) if keepdims else ())
    adapter = arrays.adapter_for(x)
    head = (
        f"linear_sigmoid_sum: {xo.library} {xo.dtype} on {xo.device}; x {xo.shape}, weight {wo.shape}, "
        f"bias {'(N,)' if bias is not None else 'None'}; B={rows} K={k} N={n}"
    )
    if xo.device == "cpu":
        if method != "auto":
            raise ValueError(f"method={method!r} needs GPU arrays; host arrays run on the NumPy backend (use 'auto')")
        if stream is not None:
            _no_stream(xo)(stream)
        from .backends import host

        exe = host.Linear(rows, n, k, xo.dtype, workspace_bytes)
        lines = [
            head,
            f"method: NumPy backend, precision: strict {exe.compute.__name__} (the precision argument "
            "applies to GPU calls)",
            f"kernel: {exe.describe()}",
        ]
        run = _host_linear_runner(adapter, xo, out_shape, rows, k, n, exe, save)
    else:
        checks.gpu_sizes(rows, k, n)
        from . import planner

        choice = planner.choose_linear(
            adapter,
            ops,
            (x, weight, bias),
            stream,
            out_shape,
            rows,
            k,
            n,
            precision,
            method,
            workspace_bytes,
            tune,
            save,
        )
        lines = [head] + choice.lines + [f"floor: {planner.floor_text(rows, k, n, xo.dtype, choice.problem.device_id)}"]
        run = planner.linear_runner(adapter, ops, out_shape, rows, k, n, choice, save)
    plan = Plan("linear_sigmoid_sum", key, ops, run, lines, signature)
    if key is not None:
        CACHE.add(key, plan)
    return plan


def resolve_sum(key, z, bias, keepdims, workspace_bytes) -> Plan:
    raw_options = (keepdims, workspace_bytes)
    signature = lambda z, b: sum_key(z, b, *raw_options)
    if getattr(arrays.adapter_for(z), "bridge", False):

        def native_plan(z, b, stream):
            return CACHE.get(signature(z, b)) or resolve_sum(signature(z, b), z, b, keepdims, workspace_bytes)

        return _bridged("sigmoid_sum", key, ("z", "bias"), (z, bias), native_plan, signature, None, False)
    ops = [arrays.describe("z", z)]
    if bias is not None:
        ops.append(arrays.describe("bias", bias))
    checks.same_kind(ops)
    checks.sum_shapes(ops[0], ops[1] if bias is not None else None)
    keepdims = checks.flag("keepdims", keepdims)
    workspace_bytes = checks.workspace_bytes(workspace_bytes)
    zo = ops[0]
    batch, n = zo.shape[:-1], zo.shape[-1]
    rows = math.prod(batch)
    out_shape = batch + ((1,) if keepdims else ())
    adapter = arrays.adapter_for(z)
    head = (
        f"sigmoid_sum: {zo.library} {zo.dtype} on {zo.device}; z {zo.shape}, "
        f"bias {'(N,)' if bias is not None else 'None'}"
    )
    if zo.device == "cpu":
        from .backends import host

        exe = host.SigmoidSum(rows, n, zo.dtype, workspace_bytes)
        run = _host_sum_runner(adapter, zo, out_shape, rows, n, exe)
        lines = [head, f"kernel: {exe.describe()}"]
    else:
        checks.gpu_sizes(rows, 1, n)
        from . import planner

        run, lines = planner.sum_runner(adapter, ops, out_shape, rows, n)
        lines = [head] + lines
    plan = Plan("sigmoid_sum", key, ops, run, lines, signature)
    if key is not None:
        CACHE.add(key, plan)
    return plan


def _bridged(kind, key, names, objs, native_plan, signature, stream, save) -> Plan:
    """The plan of a signature whose arrays come through a bridge (arrays/dlpack.py): every call reads the operands
    as numpy or cupy arrays without copies, runs the plan of those (cached under their own signature, with their own
    checks) and hands the result back to the operands' library."""
    ops = [arrays.describe(name, obj) for name, obj in zip(names, objs) if obj is not None]
    checks.same_kind(ops)
    library = ops[0].library
    if save:
        checks.trainable(ops[0])
    bridge = arrays.adapter_for(objs[0])
    native, back = bridge.native, bridge.wrapper(objs[0])
    views = [None if obj is None else native(obj) for obj in objs]
    native_adapter, device_id = arrays.adapter_for(views[0]), ops[0].device_id

    def run(*args):
        *operands, stream = args
        if stream is not None:  # the hand-over happens on it too
            if device_id is None:
                _no_stream(ops[0])(stream)
            with native_adapter.user_stream(stream, device_id)[1]:
                return run(*operands, None)
        views = [None if obj is None else native(obj) for obj in operands]
        return back(native_plan(*views, None)._run(*views, None), views)

    if stream is not None and device_id is None:
        _no_stream(ops[0])(stream)
    first = native_plan(*views, stream)  # the native signature is validated now
    lines = [
        f"{kind}: {library} arrays on {ops[0].device}, read as {native_adapter.library} arrays through "
        f"DLPack (no copies); the result goes back through {library}'s from_dlpack"
    ] + first._lines
    plan = Plan(kind, key, ops, run, lines, signature)
    if key is not None:
        CACHE.add(key, plan)
    return plan


# ------------------------------------------------------------------------------------------------ host runners


def _no_stream(op):
    def refuse(stream):
        raise TypeError(f"stream applies to GPU arrays only; the arrays are {op.library} arrays on the CPU")

    return refuse


def _host_linear_runner(adapter, xo, out_shape, rows, k, n, exe, save):
    empty = adapter.empty_fn(xo.dtype, None)
    empty_saved = adapter.empty_fn(xo.dtype, None)
    view = adapter.host_view  # numpy subclasses (np.matrix, ...) are read as plain ndarrays
    refuse = _no_stream(xo)
    flat = (rows, k)

    def compute(x, w, b, stream):
        if stream is not None:
            refuse(stream)
        out = empty(out_shape)
        saved = empty_saved((rows, n)) if save else None
        if rows == 0:
            return out, saved
        o = view(out).reshape(rows)
        if n == 0:
            o[...] = 0
            return out, saved
        x, w, b = view(x), view(w), (None if b is None else view(b))
        exe.run(x.reshape(flat), w, b, o, None if saved is None else view(saved))
        return out, saved

    return compute if save else (lambda x, w, b, stream: compute(x, w, b, stream)[0])


def _host_sum_runner(adapter, zo, out_shape, rows, n, exe):
    empty = adapter.empty_fn(zo.dtype, None)
    view = adapter.host_view
    refuse = _no_stream(zo)

    def run(z, b, stream):
        if stream is not None:
            refuse(stream)
        out = empty(out_shape)
        if rows == 0:
            return out
        o = view(out).reshape(rows)
        if n == 0:
            o[...] = 0
            return out
        exe.run(view(z).reshape(rows, n), None if b is None else view(b), o)
        return out

    return run


def default_precision_candidates(dtype: str, precision: str | None) -> tuple[str, ...]:
    """The precisions a float32 request may be served with (more accurate ones included: see precision.py)."""
    if dtype != "float32":
        return ("ieee",)
    return FP32_ACCURATE if precision is None else (precision,)


def precision_line(dtype: str, requested: str | None, used: str) -> str:
    if dtype != "float32":
        return f"precision: {'fp64 arithmetic' if dtype == 'float64' else 'fp32 accumulation'} ({dtype} inputs)"
    asked = "default" if requested is None else repr(requested)
    note = "" if requested in (None, used) or not TABLE[used].fp32_accurate else " (exact: more accurate than asked)"
    return f"precision: {asked} -> {describe_precision(used)}{note}"
