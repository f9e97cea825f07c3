#!/usr/bin/env bash
# compute-sanitizer over every kernel instance the package can launch (scripts/sanitize_cases.py): memcheck on all
# shapes, racecheck, initcheck and synccheck on the quick set. On a GPU machine, from the repository root:
#     bash scripts/sanitize.sh [tool ...]        logs: $OUT or ./sanitize_logs; exit 1 if any tool found an error
set -uo pipefail
export PYTHONPATH=$PWD CUPY_FUSED_TUNE=0
out=${OUT:-sanitize_logs}; mkdir -p "$out"
tools=${*:-memcheck racecheck initcheck synccheck}
python3 benchmarks/lab/precompile.py > "$out/precompile.log" 2>&1  # NVRTC outside the sanitizer: it is slow there
failed=0
for tool in $tools; do
    quick=--quick; [ "$tool" = memcheck ] && quick=
    extra=; [ "$tool" = racecheck ] && extra="--racecheck-report hazard"
    start=$SECONDS
    compute-sanitizer --tool "$tool" $extra --print-limit 50 --error-exitcode 3 \
        python3 scripts/sanitize_cases.py $quick > "$out/sanitize_$tool.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] || failed=1
    echo "$tool: exit $rc in $((SECONDS - start)) s; $(grep -E 'sanitize_cases:' "$out/sanitize_$tool.log" | tail -1);" \
        "$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitize_$tool.log" | tail -1)"
done
exit $failed
