"""Command line: `cupy-fused info | check | tune | bench` (also `python -m cupy_fused ...`)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

from . import __version__

DTYPES = ("float32", "float16", "bfloat16", "float64")


def _devices() -> list[str]:
    try:
        import cupy

        out = []
        for i in range(cupy.cuda.runtime.getDeviceCount()):
            props = cupy.cuda.runtime.getDeviceProperties(i)
            out.append(
                f"cuda:{i} {props['name'].decode()} (sm_{props['major']}{props['minor']}, "
                f"{props['multiProcessorCount']} SMs, {props['totalGlobalMem'] / 2**30:.0f} GiB)"
            )
        return out
    except Exception:  # noqa: BLE001 - no CUDA driver or device
        return []


def _info(args) -> int:
    import platform

    import numpy

    import cupy_fused
    from cupy_fused import loader, tune

    print(f"cupy_fused {cupy_fused.__version__} (python {platform.python_version()}, numpy {numpy.__version__})")
    print(f"kernels: {loader.kernel_dir()} ({', '.join(loader.kernel_files())})")
    for name in ("cupy", "torch"):
        try:
            print(f"{name} {__import__(name).__version__}")
        except ImportError:
            print(f"{name}: not installed")
    devices = _devices()
    print("devices: " + ("; ".join(devices) if devices else "none (calls on host arrays use the NumPy backend)"))
    print(f"tuning: {'on' if _tuning() else 'off'} (CUPY_FUSED_TUNE), cache folder {tune.cache_dir()}")
    if args.shape:
        B, K, N = args.shape
        _explain_shape(B, K, N, devices=bool(devices))
    return 0


def _tuning() -> bool:
    from cupy_fused import planner

    return planner.tuning_enabled()


def _contiguous_problem(B: int, K: int, N: int, dtype: str):
    """The planner's view of contiguous operands with a bias on device 0 (what `info` and `tune` describe)."""
    from cupy_fused.backends import ITEMSIZE, Problem

    return Problem(B, K, N, dtype, True, K, K, (K * ITEMSIZE[dtype]) % 16 == 0, 0, 256 * 2**20)


def _explain_shape(B: int, K: int, N: int, devices: bool) -> None:
    """For each dtype and precision: what cuda:0 would run at this shape (the static choice, and the tuned choice
    when the cache holds the shape class), without allocating anything."""
    from cupy_fused import checks, loader, planner, tune

    if devices:
        info = loader.device_info(0)
        where = f"cuda:0 ({info.name})"
    else:
        info = loader.DeviceInfo("NVIDIA H100 80GB HBM3", "sm_90a", 132, True, 3.35e12)
        where = "an H100 (sm_90a, 132 SMs) assumed: no GPU here"
    print(f"B={B} K={K} N={N} on {where}; contiguous operands with a bias; host arrays run on the NumPy backend")
    if B == 0 or N == 0:
        print(f"  every dtype and precision: nothing to launch ({'an empty result' if B == 0 else 'N = 0: zeros'})")
        return
    try:
        checks.gpu_sizes(B, K, N)
    except ValueError as exc:
        print(f"  refused on the GPU: {exc}")
        return
    stored = tune.load(info.name)
    cases = [("float32", p) for p in (None, "ieee", "tf32", "tf32x3", "bf16")] + [(d, None) for d in DTYPES[1:]]
    for dtype, precision in cases:
        p = _contiguous_problem(B, K, N, dtype)
        label = f"{dtype} precision={precision!r}" if dtype == "float32" else f"{dtype} (precision does not apply)"
        try:
            first = planner.candidates(p, precision, "auto", info, False)[0]
        except IndexError:
            print(f"  {label:38s} no candidate")
            continue
        line = f"  {label:38s} static: {first.method:6s} {first.precision:6s} {first.kernel}"
        entry = stored.get(tune.bucket(p, precision, "auto"))
        if entry:
            times = ", ".join(
                f"{k} {v * 1000:.1f} us" for k, v in sorted(entry["ms"].items(), key=lambda kv: kv[1])[:3]
            )
            line += f"\n  {'':38s} tuned:  {entry['kernel']} ({times})"
        print(line)


def _check(args) -> int:
    """Compile every kernel instance the package can launch, for each --arch (no GPU needed)."""
    from cupy_fused import loader
    from cupy_fused.backends import instances

    failures = 0
    unknown = set(args.file or ()) - set(instances())
    if unknown:
        print(
            f"--file: no kernel file {sorted(unknown)}; the files are {', '.join(sorted(instances()))}", file=sys.stderr
        )
        return 2
    for arch in args.arch:
        for filename, names in instances().items():
            if args.file and filename not in args.file:
                continue
            try:
                size = len(loader.compile_for_arch(filename, names, arch))
                print(f"{arch} {filename}: {len(names)} instances, cubin {size} bytes")
            except loader.KernelCompileError as exc:
                failures += 1
                print(exc, file=sys.stderr)
    return 1 if failures else 0


def _tune(args) -> int:
    """Time the candidates of each shape class on cuda:0 and store the winners."""
    if not _devices():
        print("cupy-fused tune needs a CUDA device", file=sys.stderr)
        return 2
    import cupy

    import cupy_fused
    from cupy_fused import tune

    if args.force:
        tune.forget()
    for B, K, N in args.shape:
        for precision in args.precision or [None]:
            rng = cupy.random.default_rng(0)
            x = rng.standard_normal((B, K), dtype=cupy.float32).astype(args.dtype)
            w = ((rng.random((N, K), dtype=cupy.float32) * 2 - 1) / max(K, 1) ** 0.5).astype(args.dtype)
            b = ((rng.random(N, dtype=cupy.float32) * 2 - 1) / max(K, 1) ** 0.5).astype(args.dtype)
            if args.force:
                _drop(tune, B, K, N, args.dtype, precision)
            plan = cupy_fused.plan(x, w, b, precision=precision, tune=True)
            print(plan.explain(), end="\n\n")
            del x, w, b
    return 0


def _drop(tune, B, K, N, dtype, precision):
    from cupy_fused import loader

    p = _contiguous_problem(B, K, N, dtype)
    tune.load(loader.device_info(0).name).pop(tune.bucket(p, precision, "auto"), None)


def _int_at_least(minimum: int):
    """An argparse type: an int >= minimum (argparse puts the option's name before the message)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an int >= {minimum}, got {text!r}")
        return value

    return parse


def _check_output_files(bench: argparse.ArgumentParser, args) -> None:
    """--json, --csv and --plot are written after the run: before it, refuse a path in a missing folder or naming a
    folder, and --plot without matplotlib."""
    for option, path in (("--json", args.json), ("--csv", args.csv), ("--plot", args.plot)):
        if path is None:
            continue
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            bench.error(f"{option}: the folder {folder} of {path!r} does not exist")
        if os.path.isdir(path):
            bench.error(f"{option}: {path!r} is a folder; give a file name")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        bench.error("--plot needs matplotlib: pip install 'cupy-fused[plot]' (or leave --plot out)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="cupy-fused", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="versions, devices, tuning cache, and what a call of a shape would run")
    info.add_argument(
        "--shape", nargs=3, type=_int_at_least(0), metavar=("B", "K", "N"), help="B K N (0 allowed, as in calls)"
    )
    check = sub.add_parser("check", help="compile every kernel with NVRTC (no GPU needed)")
    check.add_argument("--arch", nargs="+", default=["sm_80", "sm_90", "sm_90a"])
    check.add_argument("--file", nargs="+", help="only these kernel files (default: all)")
    tune_cmd = sub.add_parser("tune", help="time the candidates of shape classes and store the winners")
    tune_cmd.add_argument(
        "--shape", nargs=3, type=_int_at_least(1), action="append", required=True, metavar=("B", "K", "N")
    )
    tune_cmd.add_argument("--dtype", default="float32", choices=[d for d in DTYPES if d != "bfloat16"])
    tune_cmd.add_argument("--precision", action="append", choices=["ieee", "tf32", "tf32x3", "bf16"])
    tune_cmd.add_argument("--force", action="store_true", help="time again even when the cache holds the class")
    bench = sub.add_parser("bench", help="time our calls against torch, with floors and errors")
    bench.add_argument(
        "--shape",
        nargs=3,
        type=_int_at_least(1),
        action="append",
        metavar=("B", "K", "N"),
        help="B K N (repeatable); default: the suite (KernelBench's 128 32768 32768 and three more) and the half "
        "section's shapes (there in bfloat16 and float16 each)",
    )
    bench.add_argument("--reps", type=_int_at_least(1), default=30, help="timed runs per contender (median reported)")
    bench.add_argument(
        "--sections",
        default="suite,half,training,calls",
        help="comma-separated: suite, half, training, calls (GPU only; default all)",
    )
    bench.add_argument(
        "--max-autotune",
        action="store_true",
        help="the half section also times torch.compile(mode='max-autotune-no-cudagraphs') (10-40 s of autotuning "
        "a shape)",
    )
    bench.add_argument(
        "--wide", action="store_true", help="every column in the tables (default: the essential ones, in 120 columns)"
    )
    bench.add_argument("--json", metavar="FILE", help="also write the rows, GPU name, versions and date to FILE")
    bench.add_argument(
        "--csv",
        metavar="FILE",
        help="also write every field of every row to FILE, one line per row with its section first, a column "
        "speedup.<peer> per peer; the meta (GPU or CPU, versions, date) comes before the header as '# key: value' "
        "lines (pandas.read_csv(FILE, comment='#'))",
    )
    bench.add_argument("--plot", metavar="FILE.png", help="also draw the suite's times as a chart (needs matplotlib)")
    args = parser.parse_args(argv)
    if args.command == "info":
        return _info(args)
    if args.command == "check":
        return _check(args)
    if args.command == "tune":
        return _tune(args)
    from cupy_fused import bench as bench_module

    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = set(sections) - set(bench_module.SECTIONS)
    if unknown:
        bench.error(f"--sections: unknown {sorted(unknown)}; choose from {', '.join(bench_module.SECTIONS)}")
    _check_output_files(bench, args)
    return bench_module.main(
        [tuple(s) for s in args.shape] if args.shape else None,
        args.reps,
        json_path=args.json,
        csv_path=args.csv,
        plot_path=args.plot,
        sections=sections,
        wide=args.wide,
        max_autotune=args.max_autotune,
    )


if __name__ == "__main__":
    sys.exit(main())
