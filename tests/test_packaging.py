"""A built wheel carries the kernels, and the installed package finds them (not the repository's copy)."""

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
    )
    (path,) = out.glob("cupy_fused-*.whl")
    return path


def test_wheel_contains_every_kernel_source(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {p.name for p in (ROOT / "kernels").iterdir() if p.suffix in (".cu", ".cuh")}
    assert sources and {f"cupy_fused/kernels/{s}" for s in sources} <= names
    assert "cupy_fused/py.typed" in names
    assert any(n.endswith("entry_points.txt") for n in names)


def test_installed_package_finds_its_kernels(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)], check=True
    )
    code = "from cupy_fused import loader; print(loader.kernel_dir()); print(*loader.kernel_files())"
    env = dict(os.environ, PYTHONPATH=str(target))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    kernel_dir, files = result.stdout.splitlines()
    assert Path(kernel_dir) == target / "cupy_fused" / "kernels"
    assert files.split() == sorted(p.name for p in (ROOT / "kernels").glob("*.cu"))


def readme_test_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Tests\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```bash\n(python3 -m venv .+)\n```$", section, re.M)


def test_ci_runs_the_readme_no_gpu_test_line():
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci_command.startswith("python3 -m venv .venv") and ci_command.endswith("&& python -m pytest")
    assert readme_test_lines()[0] == ci_command


def test_each_readme_test_line_installs_one_cuda_toolkit():
    """The no-GPU line pairs CuPy's CUDA 12 libraries with torch's CPU build; each GPU line pairs CuPy with the
    torch extra of its own toolkit (the install section's rule), so pip downloads one toolkit and never
    backtracks."""
    lines = readme_test_lines()
    extras = [set(re.search(r'-e "\.\[([\w,-]+)\]"', line)[1].split(",")) for line in lines]
    assert len(lines) == 3
    assert {"test", "docs", "dask", "jax"} <= set.intersection(*extras)
    no_gpu, cuda13, cuda12 = extras
    assert "cuda12" in no_gpu and not any(e.startswith("torch-") for e in no_gpu) and "torch==" in lines[0]
    assert {"cuda13", "torch-cu13"} <= cuda13 and not {"cuda12", "torch-cu12"} & cuda13
    assert {"cuda12", "torch-cu12"} <= cuda12 and not {"cuda13", "torch-cu13"} & cuda12
    assert all("torch==" not in line for line in lines[1:])
