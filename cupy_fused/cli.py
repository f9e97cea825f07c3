"""Command line: `cupy-fused info | check | bench` (also `python -m cupy_fused ...`)."""

from __future__ import annotations

import argparse
import sys


def _info(args) -> int:
    import platform

    import numpy

    import cupy_fused
    from cupy_fused import _kernels

    print(f"cupy_fused {cupy_fused.__version__} (python {platform.python_version()}, numpy {numpy.__version__})")
    print(f"kernels: {_kernels.kernel_dir()} ({', '.join(_kernels.kernel_files())})")
    for name in ("cupy", "torch"):
        try:
            print(f"{name} {__import__(name).__version__}")
        except ImportError:
            print(f"{name}: not installed")
    devices = []
    try:
        import cupy

        for i in range(cupy.cuda.runtime.getDeviceCount()):
            props = cupy.cuda.runtime.getDeviceProperties(i)
            devices.append(f"cuda:{i} {props['name'].decode()} (sm_{props['major']}{props['minor']}, "
                           f"{props['multiProcessorCount']} SMs, {props['totalGlobalMem'] / 2**30:.0f} GiB)")
    except Exception:
        pass
    print("devices: " + ("; ".join(devices) if devices else "none (calls on host arrays use the NumPy backend)"))
    if args.shape:
        _print_plan(*args.shape, device_id=0 if devices else None)
    return 0


def _print_plan(B: int, K: int, N: int, device_id) -> None:
    """The method and kernel each dtype and precision would use at this shape on device arrays."""
    from cupy_fused import _fused, _plan

    where = f"cuda:{device_id}" if device_id is not None else "a tensor-core GPU (sm_90a assumed: no GPU here)"
    arch = "sm_90a"
    if device_id is not None:
        from cupy_fused import _kernels

        arch = _kernels.arch_of(device_id)
    print(f"B={B} K={K} N={N} on {where}; host arrays always run on the NumPy backend")
    cases = [("float32", p) for p in (None, "ieee", "tf32", "tf32x3", "bf16")]
    cases += [(d, None) for d in ("float16", "bfloat16", "float64")]
    for dtype, precision in cases:
        method, resolved = _plan.choose(B, K, N, dtype, precision, "auto", device_id)
        if method == "fused":
            kernel = _fused.plan(B, N, K, dtype, resolved, True, True, arch=arch)[0]
        else:
            kernel = "cuBLAS gemmEx + sigmoid_sum"
        if dtype != "float32":
            label = f"{dtype} (precision does not apply)"
        else:
            label = f"{dtype} precision={precision!r}" + (f" (-> {resolved!r})" if precision is None else "")
        print(f"  {label:40s} method={method:6s} {kernel}")


def _check(args) -> int:
    """Compile every kernel instance the package can launch, for each --arch (no GPU needed)."""
    from cupy_fused import _kernels

    failures = 0
    for arch in args.arch:
        for filename, names in _kernels.instances().items():
            try:
                size = len(_kernels.compile_for_arch(filename, names, arch))
                print(f"{arch} {filename}: {len(names)} instances, cubin {size} bytes")
            except _kernels.KernelCompileError as exc:
                failures += 1
                print(exc, file=sys.stderr)
    return 1 if failures else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="cupy-fused", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="versions, devices, and which backend a call would use")
    info.add_argument("--shape", nargs=3, type=int, metavar=("B", "K", "N"))
    check = sub.add_parser("check", help="compile every kernel with NVRTC (no GPU needed)")
    check.add_argument("--arch", nargs="+", default=["sm_80", "sm_90"])
    bench = sub.add_parser("bench", help="time our call against torch, with floors and errors")
    bench.add_argument("--shape", nargs=3, type=int, action="append", metavar=("B", "K", "N"),
                       help="B K N (repeatable); default: the suite (KernelBench's 128 32768 32768 and three more)")
    bench.add_argument("--reps", type=int, default=30, help="timed runs per contender (median reported)")
    bench.add_argument("--json", metavar="FILE", help="also write the rows, GPU name, versions and date to FILE")
    bench.add_argument("--plot", metavar="FILE.png", help="also draw the times as a chart (needs matplotlib)")
    args = parser.parse_args(argv)
    if args.command == "info":
        return _info(args)
    if args.command == "check":
        return _check(args)
    from cupy_fused import _bench

    return _bench.main([tuple(s) for s in args.shape] if args.shape else None, args.reps, args.json, args.plot)


if __name__ == "__main__":
    sys.exit(main())
