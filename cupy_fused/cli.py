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
        B, K, N = args.shape
        print(f"a float32 call at B={B} K={K} N={N}: host arrays run on the NumPy backend; "
              + ("device arrays on the GPU: cuBLAS matmul + sigmoid_sum kernel" if devices else "no GPU here"))
    return 0


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
                       help="B K N (repeatable); default: KernelBench's 128 32768 32768 on a GPU")
    bench.add_argument("--reps", type=int, default=30, help="timed runs per contender (median reported)")
    bench.add_argument("--json", metavar="FILE", help="also write the rows, GPU name, versions and date to FILE")
    args = parser.parse_args(argv)
    if args.command == "info":
        return _info(args)
    if args.command == "check":
        return _check(args)
    from cupy_fused import _bench

    return _bench.main([tuple(s) for s in args.shape] if args.shape else None, args.reps, args.json)


if __name__ == "__main__":
    sys.exit(main())
