"""A smoke test of the bench's half section on a GPU: two small shapes in bfloat16 and float16, few timed runs; most
of its time goes to torch.compile and the Triton kernel's autotuning (--max-autotune: 10-40 s more a shape).

    PYTHONPATH=$PWD python3 benchmarks/lab/probe_half_bench.py [--max-autotune] [--wide] [--json FILE]
"""

import argparse
import sys

from cupy_fused import bench

SHAPES = [(256, 1024, 1024), (32, 4096, 4096)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-autotune", action="store_true")
    parser.add_argument("--wide", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    return bench.main(
        SHAPES, reps=6, json_path=args.json, sections=("half",), wide=args.wide, max_autotune=args.max_autotune
    )


if __name__ == "__main__":
    sys.exit(main())
