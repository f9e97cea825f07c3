"""The bench's training section for a subset of its rows: `training_rows.py [--dtypes bfloat16,float16] [--reps 15]
[--json FILE]`. Runs whichever cupy_fused is first on PYTHONPATH (a copy of an older tree gives the "before")."""

import argparse
import sys

from cupy_fused import bench
from cupy_fused.bench import suites

parser = argparse.ArgumentParser()
parser.add_argument("--dtypes", default="float32,bfloat16,float16")
parser.add_argument("--reps", type=int, default=15)
parser.add_argument("--json")
args = parser.parse_args()
dtypes = args.dtypes.split(",")
suites.TRAINING_SUITE[:] = [row for row in suites.TRAINING_SUITE if row[1] in dtypes]
print(f"cupy_fused from {bench.__file__}", file=sys.stderr)
sys.exit(bench.main(None, args.reps, json_path=args.json, sections=("training",)))
