"""The command line on a machine without a GPU: info, check and a small bench, end to end."""

import json
import subprocess
import sys

import pytest

import cupy_fused
from cupy_fused.backends import instances


def run_cli(*args, code=0):
    result = subprocess.run([sys.executable, "-m", "cupy_fused", *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == code, result.stderr
    return result.stdout + result.stderr


def test_info_shows_versions_and_the_static_choice_for_a_shape():
    out = run_cli("info", "--shape", "128", "32768", "32768")
    assert f"cupy_fused {cupy_fused.__version__}" in out and "kernels:" in out and "tuning:" in out
    assert "float32 precision=None" in out and "fused  tf32x3 fused::wgmma_tile<true" in out
    assert "float32 precision='ieee'" in out and "cublas ieee   cublaslt:68" in out
    small = run_cli("info", "--shape", "8", "4096", "4096")
    assert "fused  ieee   small_batch:bt8" in small  # exact fp32 on CUDA cores at small batches


def test_bench_on_the_cpu_reports_accurate_rows(tmp_path):
    pytest.importorskip("torch")
    report = tmp_path / "bench.json"
    out = run_cli("bench", "--shape", "16", "64", "48", "--reps", "2", "--json", str(report))
    assert "no GPU found" in out and "ours numpy" in out and "torch cpu" in out
    data = json.loads(report.read_text())
    assert data["meta"]["cupy_fused"] == cupy_fused.__version__ and data["meta"]["date"]
    ours = [r for r in data["rows"] if r["contender"] == "ours numpy"]
    assert len(ours) == 1 and ours[0]["rel_err"] < 1e-6 and ours[0]["ms"] > 0


def test_check_compiles_the_kernels_of_a_file():  # every file and arch: test_kernels.py
    out = run_cli("check", "--arch", "sm_80", "sm_90a", "--file", "sigmoid_sum.cu")
    count = len(instances()["sigmoid_sum.cu"])
    assert (
        f"sm_80 sigmoid_sum.cu: {count} instances" in out and "sm_90a sigmoid_sum.cu" in out and "fused_mma" not in out
    )
    assert "no kernel file ['nope.cu']" in run_cli("check", "--file", "nope.cu", code=2)


def test_tune_needs_a_gpu_and_sections_are_checked():
    assert "needs a CUDA device" in run_cli("tune", "--shape", "1", "64", "64", code=2)
    assert "unknown ['nope']" in run_cli("bench", "--sections", "calls,nope", code=2)
