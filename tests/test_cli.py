"""The command line on a machine without a GPU: info, check and a small bench, end to end; arguments it refuses
(run in-process: they fail while parsing, before any work)."""

import json
import subprocess
import sys

import pytest

import cupy_fused
import cupy_fused.bench
from cupy_fused import cli
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


def refused(capsys, *args) -> str:
    """Run the CLI in-process on arguments it must refuse while parsing: exit status 2; returns its message."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(args))
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"cupy-fused {cupy_fused.__version__}\n"


@pytest.mark.parametrize(
    "args,message",
    [
        (["bench", "--reps", "0"], "argument --reps: expected an int >= 1, got '0'"),
        (["bench", "--reps", "many"], "argument --reps: expected an int >= 1, got 'many'"),
        (["bench", "--shape", "-1", "10", "10"], "argument --shape: expected an int >= 1, got '-1'"),
        (["bench", "--shape", "10", "0", "10"], "argument --shape: expected an int >= 1, got '0'"),
        (["tune", "--shape", "1", "1", "0"], "argument --shape: expected an int >= 1, got '0'"),
        (["info", "--shape", "-5", "10", "10"], "argument --shape: expected an int >= 0, got '-5'"),
    ],
)
def test_sizes_and_reps_are_checked_when_parsed(capsys, args, message):
    assert message in refused(capsys, *args)


@pytest.mark.parametrize(
    "shape,line",
    [
        (("0", "10", "10"), "nothing to launch (an empty result)"),
        (("10", "10", "0"), "nothing to launch (N = 0: zeros)"),
        (("3000000000", "10", "10"), "refused on the GPU: B = prod(x.shape[:-1]) must be below 2**31"),
    ],
)
def test_info_explains_shapes_the_planner_does_not_launch(capsys, shape, line):
    assert cli.main(["info", "--shape", *shape]) == 0
    assert line in capsys.readouterr().out


@pytest.fixture
def bench_must_not_run(monkeypatch):
    def run(*args, **kwargs):
        raise AssertionError("the bench ran although its arguments are refused")

    monkeypatch.setattr(cupy_fused.bench, "main", run)


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_output_files_are_checked_before_the_run(capsys, tmp_path, bench_must_not_run, option):
    missing = tmp_path / "no-such-folder" / "out"
    assert f"{option}: the folder {missing.parent} of '{missing}' does not exist" in refused(
        capsys, "bench", option, str(missing)
    )
    assert f"{option}: '{tmp_path}' is a folder; give a file name" in refused(capsys, "bench", option, str(tmp_path))


def test_plot_without_matplotlib_is_refused_before_the_run(capsys, tmp_path, monkeypatch, bench_must_not_run):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    assert "--plot needs matplotlib" in refused(capsys, "bench", "--plot", str(tmp_path / "times.png"))


def test_bench_on_the_cpu_draws_the_plot(tmp_path):
    pytest.importorskip("matplotlib")
    chart = tmp_path / "times.png"
    run_cli("bench", "--shape", "8", "16", "16", "--reps", "2", "--plot", str(chart))
    assert chart.read_bytes().startswith(b"\x89PNG")
