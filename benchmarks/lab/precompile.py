"""Compile every kernel instance for this machine's GPU in parallel threads (NVRTC releases the GIL), so that
CuPy's kernel cache on disk is full before tests or benches start: a fresh device machine otherwise compiles the
instances one by one as calls first need them.

    PYTHONPATH=$PWD python3 benchmarks/lab/precompile.py [--threads 16]
"""

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from cupy_fused import loader
from cupy_fused.backends import instances


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    jobs = [(f, n) for f, names in instances().items() for n in names]
    start = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        failures = [r for r in pool.map(lambda job: _compile(*job), jobs) if r]
    print(
        f"compiled {len(jobs)} instances for {loader.arch_of(0)} in {time.perf_counter() - start:.0f} s; "
        f"{len(failures)} failed",
        *failures,
        sep="\n",
    )


def _compile(filename, name):
    try:
        loader.function(filename, name, 0)
    except Exception as exc:  # noqa: BLE001 - reported
        return f"{filename} {name}: {exc}"
    return None


if __name__ == "__main__":
    main()
