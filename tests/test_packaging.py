"""A built wheel carries the kernels, and the installed package finds them (not the repository's copy)."""

import os
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


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci_command.startswith("python3 -m venv .venv") and "pytest" in ci_command
    assert f"```bash\n{ci_command}\n```" in readme
