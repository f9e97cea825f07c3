"""The command line on a machine without a GPU: info, check and a small bench, end to end; arguments it refuses
(run in-process: they fail while parsing, before any work); the bench's tables, half section and peers (the Triton
kernel and a CUDA graph of each half contender in one `gpu` test)."""

import csv
import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import replace

import pytest

import cupy_fused
import cupy_fused.bench
from cupy_fused import cli
from cupy_fused.backends import instances
from cupy_fused.bench import calls, half, peers, report, timing


def run(*args, code=0, env=None) -> subprocess.CompletedProcess:
    """The command line in a subprocess: stdout and stderr are pipes, not a terminal."""
    result = subprocess.run(
        [sys.executable, "-m", "cupy_fused", *args], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == code, result.stderr
    return result


def run_cli(*args, code=0):
    result = run(*args, code=code)
    return result.stdout + result.stderr


def table_header(out: str) -> list[str]:
    line = next(line for line in out.splitlines() if line.startswith("B x K x N"))
    return re.split(r"\s{2,}", line.strip())


def test_info_shows_versions_and_the_static_choice_for_a_shape():
    out = run_cli("info", "--shape", "128", "32768", "32768")
    assert f"cupy_fused {cupy_fused.__version__}" in out and "kernels:" in out and "tuning:" in out
    assert "float32 precision=None" in out and "fused  tf32x3 sbw::wgmma_small_batch<true, 128" in out
    assert "float32 precision='ieee'" in out and "cublas ieee   cublaslt:68" in out
    small = run_cli("info", "--shape", "8", "4096", "4096")
    assert "fused  ieee   small_batch:bt8" in small  # exact fp32 on CUDA cores at small batches


def test_bench_on_the_cpu_reports_accurate_rows(tmp_path):
    pytest.importorskip("torch")
    saved = tmp_path / "bench.json"
    out = run_cli("bench", "--shape", "16", "64", "48", "--reps", "2", "--json", str(saved))
    assert "no GPU found" in out and "ours numpy" in out and "torch cpu" in out
    data = json.loads(saved.read_text())
    assert data["meta"]["cupy_fused"] == cupy_fused.__version__ and data["meta"]["date"]
    ours = [r for r in data["rows"] if r["contender"] == "ours numpy"]
    assert len(ours) == 1 and ours[0]["rel_err"] < 1e-6 and ours[0]["ms"] > 0


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def test_the_default_cpu_bench_fits_120_columns_and_says_what_it_timed():
    pytest.importorskip("torch")
    result = run("bench", "--shape", "16", "64", "48", "--reps", "3", env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    out, err = result.stdout, result.stderr
    assert max(len(line) for line in out.splitlines()) <= 120
    assert cpu_name() in out and "threads: numpy's BLAS 1, torch " in out and "the median of 3 timed calls" in out
    assert table_header(out) == ["B x K x N", "contender", "ms", "vs best peer", "rel err"]  # empty ones dropped
    # pipes, not a terminal: plain text (no escape codes, no carriage returns), the progress on stderr only
    assert "\x1b" not in out + err and "\r" not in out + err
    assert "cpu [1/9] 16 x 64 x 48: float64 reference" in err and "cpu [" not in out


def test_wide_shows_more_columns():
    out = run("bench", "--shape", "16", "64", "48", "--reps", "2", "--wide").stdout
    assert "TFLOP/s" in table_header(out) and "GB/s" not in table_header(out)  # GB/s: no meaning on a CPU


def test_bench_writes_the_same_rows_to_csv_and_json(tmp_path):
    report_json, report_csv = tmp_path / "bench.json", tmp_path / "bench.csv"
    shapes = ("--shape", "16", "64", "48", "--shape", "8", "32", "16")
    run("bench", *shapes, "--reps", "2", "--json", str(report_json), "--csv", str(report_csv))
    data = json.loads(report_json.read_text())
    lines = report_csv.read_text().splitlines()
    assert [line for line in lines if line.startswith("#")] == [f"# {k}: {v}" for k, v in data["meta"].items()]
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert len(rows) == len(data["rows"]) >= 2
    for got, row in zip(rows, data["rows"]):
        ratios = ("speedup", "loop_speedup")
        fields = {k: v for k, v in row.items() if k not in ratios} | {
            f"{name}.{p}": v for name in ratios for p, v in row[name].items()
        }
        assert set(fields) <= set(got) and got["section"] == "cpu"
        assert {k: v for k, v in got.items() if v != "" and k != "section"} == {
            k: str(v) for k, v in fields.items() if v not in (None, "")
        }


def test_gpu_tables_fit_120_columns_and_wide_shows_every_column(capsys):
    """The suite, half, training and calls tables from rows of the longest labels, as printed to a pipe."""
    peers = ["torch fp32", "torch tf32", "compile fp32", "compile tf32"]
    longest = report.Row(
        shape="16384 x 1024 x 65536 fwd+bwd",
        contender="",
        ms=48.8,
        tflops=45.1,
        gbps=7.0,
        rel_err=4.3e-8,
        floor="0.87 of matmul 42.580 ms",
        floor_ms=42.58,
        extra_mb=8192.0,
        host_us=70.0,
        kernel_us=1.2,
    )
    rows = [
        replace(
            longest,
            contender=name,
            speedup={} if name in peers else dict.fromkeys(peers, 1.5),
        )
        for name in [*peers, "ours default=tf32x3 (fused, auto)", "ours tf32 (cublas)"]
    ]
    rows.append(report.Row("sigmoid_sum 16384 x 65536", "ours", 1.4, 0.0, 3053.0, 4e-8, {"torch fp32": 5.5}, "", 1.4))
    names = ["torch eager fp32", "torch eager tf32", "torch.compile fp32", "torch.compile tf32", "ours default (torch)"]
    names += ["ours tf32 (torch)", "ours default (cupy)", "ours tf32 (cupy)", "ours default (plan)"]
    call_rows = [
        {"shape": shape, "contender": name, "host_us": 48.0, "wall_us": 7396.8, "rel_err": 4e-8}
        for shape in ("4096 x 4096 x 11008", "128 x 10 x 20")
        for name in names
    ]
    training = [  # the training table: short contender names, the loop columns
        replace(longest, contender=name, speedup=speedup, loop_speedup=speedup)
        for name, speedup in (("torch fp32", {}), ("torch tf32", {}), ("ours default", {"torch fp32": 1.25}))
    ] + [  # a half row: the longest label of the section
        replace(longest, shape="16384 x 1024 x 65536 bf16 fwd+bwd", contender=name, speedup=speedup)
        for name, speedup in (("torch bf16", {}), ("ours bf16", {"torch bf16": 0.5}))
    ]
    half_peers = ["torch eager", "torch.compile", "max-autotune", "triton"]
    half_rows = [  # the half table: GPU time from graph replay (one contender timed with events, marked), loop columns
        replace(
            longest,
            shape="16384 x 1024 x 65536 bf16",
            contender=name,
            speedup=speedup,
            loop_speedup=speedup,
            timing="events" if name == "max-autotune" else "graph",
        )
        for name, speedup in [(p, {}) for p in half_peers] + [("ours", dict.fromkeys(half_peers, 1.75))]
    ]
    for wide in (False, True):
        console = report.stdout_console(wide)
        console.print(report.make_table(report.row_columns(rows), rows, wide, grouped=True))
        console.print(calls.table(call_rows, wide))
        console.print(report.make_table(report.row_columns(training, loop=True), training, wide, grouped=True))
        console.print(report.make_table(report.row_columns(half_rows, loop=True), half_rows, wide, grouped=True))
        out = capsys.readouterr().out
        lines = out.splitlines()
        assert any(line.startswith(half_rows[0].shape) and "max-autotune* " in line for line in lines)
        for r in rows + training + half_rows:  # a line per row: no cell wrapped
            assert any(line.startswith(r.shape) and r.contender in line for line in lines)
        assert all(any(line.startswith(r["shape"]) and "7396.8" in line for line in lines) for r in call_rows)
        if not wide:
            assert max(len(line) for line in lines) <= 120
            assert "TFLOP/s" not in out and "torch.compile fp32" not in out
        assert "loop vs peer" in out and "1.25x" in out and "1.75x" in out and "0.0700" in out  # loop columns
    headers = (
        "TFLOP/s",
        "GB/s",
        "vs compile tf32",
        "floor",
        "extra MB",
        "kernel us",
        "torch.compile fp32",
        "vs triton",
    )
    for header in headers:
        assert header in out


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


@pytest.mark.gpu
def test_the_triton_peer_and_every_half_contender_in_a_cuda_graph(tmp_path):
    torch = pytest.importorskip("torch")
    triton = peers.triton_peer()
    if triton is None:
        pytest.skip("triton is not installed")
    for dtype, tolerance in ((torch.float32, 1e-3), (torch.bfloat16, 1e-2), (torch.float16, 1e-2)):
        x, w, b = timing.random_inputs(torch, 33, 200, 300, dtype)  # every tile partial
        out = triton(x, w, b)
        assert out.shape == (33, 1) and out.dtype == dtype
        assert timing.rel_err(out.float().cpu(), timing.reference(torch, x, w, b).cpu()) < tolerance
    # the section in a process of its own: its graphs' memory pools and compiled peers stay out of later tests
    path = tmp_path / "half.json"
    command = [sys.executable, "-m", "cupy_fused", "bench", "--sections", "half", "--shape", "64", "256", "512"]
    result = subprocess.run(command + ["--reps", "3", "--json", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rows = json.loads(path.read_text())["rows"]
    for short in ("bf16", "fp16"):
        mine = [r for r in rows if r["shape"].endswith(short)]
        assert [r["contender"] for r in mine] == ["torch eager", "torch.compile", "triton", "ours"]
        assert all(r["timing"] == "graph" and r["ms"] > 0 and r["host_us"] > 0 and r["rel_err"] < 1e-2 for r in mine)


@pytest.fixture
def bench_must_not_run(monkeypatch):
    def run(*args, **kwargs):
        raise AssertionError("the bench ran although its arguments are refused")

    monkeypatch.setattr(cupy_fused.bench, "main", run)


@pytest.fixture
def bench_arguments(monkeypatch) -> dict:
    """What the CLI passes to the bench (which then does not run)."""
    passed = {}
    monkeypatch.setattr(cupy_fused.bench, "main", lambda *args, **kwargs: passed.update(kwargs) or 0)
    return passed


def test_sections_default_to_all_and_max_autotune_is_passed_on(bench_arguments):
    assert cli.main(["bench"]) == 0
    assert bench_arguments["sections"] == cupy_fused.bench.SECTIONS and not bench_arguments["max_autotune"]
    assert "half" in cupy_fused.bench.SECTIONS
    assert cli.main(["bench", "--sections", "half", "--max-autotune"]) == 0
    assert bench_arguments["sections"] == ("half",) and bench_arguments["max_autotune"]


def test_the_half_sections_shapes_are_well_formed():
    for shapes in (half.HALF_BF16, half.HALF_FP16):
        assert shapes and len(set(shapes)) == len(shapes)
        assert all(len(s) == 3 and all(isinstance(n, int) and n > 0 for n in s) for s in shapes)
    assert [shape for dtype, shape in half.HALF if dtype == "bfloat16"] == half.HALF_BF16
    assert [shape for dtype, shape in half.HALF if dtype == "float16"] == half.HALF_FP16
    assert set(half.SHORT) == {"bfloat16", "float16"}


def test_without_triton_the_triton_peer_is_left_out(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)  # as if it were not installed
    peers.triton_peer.cache_clear()
    try:
        assert peers.triton_peer() is None
    finally:
        peers.triton_peer.cache_clear()


def test_the_half_section_marks_a_contender_it_could_not_capture(monkeypatch):
    """bench_half's flow on CPU tensors with a stand-in timer: the peers (eager in torch.compile's places), then ours
    with its speedups; the second contender's capture fails, so CUDA events time it and its row says so."""
    torch = pytest.importorskip("torch")

    class Timer:
        captures = 0

        def replay_ms(self, fn, n_inputs, replays):
            self.captures += 1
            if self.captures == 2:
                raise RuntimeError("operation not permitted when stream is capturing")
            return 1.0

        def __call__(self, fn, n_inputs, reps):
            return 2.0

        def loop_us(self, fn, n_inputs):
            return 5.0, 10.0

    inputs = lambda torch, B, K, N, dtype: (torch.randn(B, K), torch.rand(N, K) - 0.5, torch.rand(N) - 0.5)
    monkeypatch.setattr(half, "random_inputs", lambda *args: tuple(t.to(args[-1]) for t in inputs(*args)))
    monkeypatch.setattr(half, "torch_compiled", lambda **options: peers.torch_model())
    rates = {"fp16": 100.0}
    rows = half.bench_half(torch, Timer(), [("float16", (4, 16, 8))], 3, rates, 1000.0, 1024, max_autotune=True)
    assert [(r.shape, r.contender, r.timing, r.ms) for r in rows] == [
        ("4 x 16 x 8 fp16", name, timing, ms)
        for name, timing, ms in [
            ("torch eager", "graph", 1.0),
            ("torch.compile", "events", 2.0),
            ("max-autotune", "graph", 1.0),
            ("ours", "graph", 1.0),
        ]
    ]
    ours = rows[-1]
    assert ours.speedup == {"torch eager": 1.0, "torch.compile": 2.0, "max-autotune": 1.0}
    assert ours.loop_speedup == dict.fromkeys(ours.speedup, 1.0) and ours.host_us == 10.0 and ours.rel_err < 1e-2
    assert ours.floor_ms == 2 * (4 * 16 + 8 * 16 + 8 + 4) / 1000.0 / 1e6  # HBM-bound: bytes / HBM read
    assert "torch.compile*" in [column.cell(rows[1]) for column in report.row_columns(rows, loop=True)]


def test_each_torch_model_has_its_own_code_object_and_computes_the_op():
    torch = pytest.importorskip("torch")
    first, second = peers.torch_model(), peers.torch_model()
    assert first.__code__ is not second.__code__  # torch.compile of each: a dynamo cache of its own
    x, w, b = torch.randn(3, 5), torch.randn(4, 5), torch.randn(4)
    torch.testing.assert_close(first(x, w, b), torch.sigmoid(x @ w.T + b).sum(-1, keepdim=True))


@pytest.mark.parametrize("option", ["--json", "--csv", "--plot"])
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
