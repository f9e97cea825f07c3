"""The command line on a machine without a GPU: info, check and a small bench, end to end."""

import json
import subprocess
import sys

import pytest


def run_cli(*args):
    result = subprocess.run([sys.executable, "-m", "cupy_fused", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_info_shows_versions_and_the_plan_for_a_shape():
    out = run_cli("info", "--shape", "128", "32768", "32768")
    assert "cupy_fused 0.1.0" in out and "kernels:" in out
    assert "float32 precision=None (-> 'tf32x3')" in out and "method=fused" in out
    assert "float32 precision='ieee'" in out and "method=cublas" in out


def test_bench_on_the_cpu_reports_accurate_rows(tmp_path):
    pytest.importorskip("torch")
    report = tmp_path / "bench.json"
    out = run_cli("bench", "--shape", "16", "64", "48", "--reps", "2", "--json", str(report))
    assert "no GPU found" in out and "ours numpy" in out and "torch cpu" in out
    data = json.loads(report.read_text())
    assert data["meta"]["cupy_fused"] == "0.1.0" and data["meta"]["date"]
    ours = [r for r in data["rows"] if r["contender"] == "ours numpy"]
    assert len(ours) == 1 and ours[0]["rel_err"] < 1e-6 and ours[0]["ms"] > 0


def test_check_compiles_every_kernel_for_one_arch():
    out = run_cli("check", "--arch", "sm_80")
    assert "sm_80 sigmoid_sum.cu" in out and "sm_80 fused_linear_sigmoid_sum.cu" in out
