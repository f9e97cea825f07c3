"""Routing by measurement: the candidates of a shape class are timed once, and the winner is kept.

A shape class (``bucket``) is the dtype, precision, method, alignment and bias of a call with B, K and N rounded up to
powers of two. On the first call of a class (planner.py, tuning on) every candidate is built (compiled in parallel:
NVRTC releases the GIL), run once, then timed as back-to-back calls on the caller's stream with the caller's operands, a
few milliseconds each; the fastest is used and stored. Choices persist per GPU model and package version (and kernel
sources: a digest of kernels/) in a JSON file in the user's cache directory (platformdirs, else $XDG_CACHE_HOME or
~/.cache; or $CUPY_FUSED_CACHE_DIR); a corrupt or foreign file is ignored with a warning. A stored choice that names one
of a call's candidates is used without timing. Nothing is timed while the stream is being captured into a CUDA graph.
"""

from __future__ import annotations

import json
import os
import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

FORMAT = 1
_lock = threading.Lock()
_tables: dict[str, dict] = {}  # path -> {bucket: entry}


def _pow2(v: int) -> int:
    return 1 if v <= 1 else 1 << (v - 1).bit_length()


def bucket(p, precision: str | None, method: str) -> str:
    return (
        f"{p.dtype}|{precision or 'default'}|{method}|{'aligned' if p.aligned else 'unaligned'}|"
        f"{'bias' if p.has_bias else 'nobias'}|B{_pow2(p.rows)}|K{_pow2(p.k)}|N{_pow2(p.n)}"
        + ("|saves" if p.saves else "")
    )


def cache_dir() -> Path:
    if os.environ.get("CUPY_FUSED_CACHE_DIR"):
        return Path(os.environ["CUPY_FUSED_CACHE_DIR"])
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("cupy_fused"))
    except ImportError:
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cupy_fused"


def cache_path(gpu_name: str) -> Path:
    from . import __version__, loader

    slug = re.sub(r"[^A-Za-z0-9]+", "-", gpu_name).strip("-").lower() or "gpu"
    return cache_dir() / f"tuning-{slug}-{__version__}-{loader.sources_digest()}.json"


def _identity(gpu_name: str) -> dict:
    from . import __version__

    return {"format": FORMAT, "gpu": gpu_name, "version": __version__}


def load(gpu_name: str) -> dict:
    """The stored choices for this GPU model and package version ({} when there are none or the file is unusable)."""
    path = cache_path(gpu_name)
    with _lock:
        if str(path) in _tables:
            return _tables[str(path)]
        table: dict = {}
        if path.is_file():
            try:
                data = json.loads(path.read_text())
                if not isinstance(data, dict) or any(data.get(k) != v for k, v in _identity(gpu_name).items()):
                    raise ValueError("it was written for another GPU, package version or format")
                entries = data.get("entries")
                if not isinstance(entries, dict) or not all(
                    isinstance(e, dict) and isinstance(e.get("kernel"), str) for e in entries.values()
                ):
                    raise ValueError("its entries are malformed")
                table = entries
            except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
                warnings.warn(f"cupy_fused: ignoring the tuning cache {path}: {exc}", RuntimeWarning, stacklevel=3)
        _tables[str(path)] = table
        return table


def store(gpu_name: str, key: str, entry: dict) -> None:
    """Add one choice and write the file atomically (a failed write only warns: tuning still works in memory)."""
    path = cache_path(gpu_name)
    table = load(gpu_name)
    with _lock:
        table[key] = entry
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps({**_identity(gpu_name), "entries": table}, indent=1, sort_keys=True))
            os.replace(tmp, path)
        except OSError as exc:
            warnings.warn(f"cupy_fused: could not write the tuning cache {path}: {exc}", RuntimeWarning, stacklevel=3)


def forget() -> None:
    """Drop what this process read of the cache files (tests and `cupy-fused tune --force`)."""
    with _lock:
        _tables.clear()


_spins: dict = {}


def _spin(device_id: int):
    from . import loader
    from .backends.launch import I64, Launch

    if device_id not in _spins:
        _spins[device_id] = Launch(
            loader.function("timing.cu", "spin", device_id), "spin", 1, 1, 0, [(I64, None)], device_id
        )
    return _spins[device_id]


def time_calls(call, stream: int, device_id: int, clock_khz: int) -> tuple[float, float]:
    """(GPU ms, host ms) per call of back-to-back calls on ``stream``, a batch of a few milliseconds. A spin kernel
    holds the stream while the host queues the batch, so that the events around it see the GPU's time alone; the
    host's time per call is the queuing loop's."""
    import time

    from cupy.cuda import runtime

    spin = _spin(device_id)
    start, stop = runtime.eventCreate(), runtime.eventCreate()
    try:

        def batch(reps: int, hold_ms: float) -> tuple[float, float]:
            spin(stream, int(hold_ms * clock_khz))
            runtime.eventRecord(start, stream)
            t = time.perf_counter()
            for _ in range(reps):
                call()
            host = (time.perf_counter() - t) * 1e3 / reps
            runtime.eventRecord(stop, stream)
            runtime.eventSynchronize(stop)
            return runtime.eventElapsedTime(start, stop) / reps, host

        gpu, host = batch(1, 0.2)
        reps = max(3, min(50, int(2.0 / max(gpu, host, 1e-3))))
        hold = 1.5 * host * reps + 0.1
        runs = [batch(reps, hold) for _ in range(2)]
        return min(r[0] for r in runs), min(r[1] for r in runs)
    finally:
        runtime.eventDestroy(start)
        runtime.eventDestroy(stop)


def select(key: str, candidates: list, timer, gpu_name: str, capturing: bool):
    """(candidate, built executable or None, how it was chosen). timer(executable) -> (GPU ms, host ms) per call.

    A call in a loop costs the larger of its GPU and host times: the lowest such cost wins, and among candidates
    within 3% of it the one with the least GPU time (host-bound loops cannot tell them apart; graphs and overlapped
    work can). A candidate that fails to build or run is skipped; the choice then serves this process but is not
    stored, since the failure may pass (a bench once stored an mma.sync kernel at 218 us for 1024 x 4096^2 "tf32"
    while cuBLASLt, which takes 96 us, had failed)."""
    entry = load(gpu_name).get(key)
    if entry is not None:
        for c in candidates:
            if c.kernel == entry["kernel"]:
                return c, None, f"tuning cache ({cache_path(gpu_name).name}: {_times_text(entry)})"
    if capturing:
        return candidates[0], None, "static heuristic (the stream is being captured: nothing is timed)"
    with ThreadPoolExecutor(max_workers=min(8, len(candidates))) as pool:
        built = list(pool.map(_try_build, candidates))
    times, gpu_times, built_ok, failed = {}, {}, [], []
    for c, exe in zip(candidates, built):
        if isinstance(exe, Exception):
            failed.append(f"{c.kernel}: {exe!r}")
            continue
        try:
            gpu, host = timer(exe)
        except Exception as exc:  # noqa: BLE001 - a candidate that cannot run here is skipped, not fatal
            failed.append(f"{c.kernel}: {exc!r}")
            continue
        times[c.kernel], gpu_times[c.kernel] = round(max(gpu, host), 5), round(gpu, 5)
        built_ok.append((c, exe))
    if not built_ok:
        return candidates[0], None, "static heuristic (no candidate could be timed)"
    cheapest = min(times.values())
    chosen, exe = min(
        (ce for ce in built_ok if times[ce[0].kernel] <= 1.03 * cheapest), key=lambda ce: gpu_times[ce[0].kernel]
    )
    entry = {"kernel": chosen.kernel, "ms": times, "gpu_ms": gpu_times}
    if failed:
        return chosen, exe, f"tuned now, not stored ({_times_text(entry)}; failed: {'; '.join(failed)})"
    store(gpu_name, key, entry)
    return chosen, exe, f"tuned now ({_times_text(entry)})"


def _try_build(candidate):
    try:
        return candidate.build()
    except Exception as exc:  # noqa: BLE001
        return exc


def _times_text(entry: dict) -> str:
    times = entry.get("ms") or {}
    shown = sorted(times.items(), key=lambda kv: kv[1])[:4]
    return f"{entry['kernel']}" + ("; " + ", ".join(f"{k} {v * 1000:.1f} us" for k, v in shown) if shown else "")
