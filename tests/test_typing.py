"""The type hints are checked: mypy on the package (the front and the faces strict, pyproject.toml's [tool.mypy])
and on a user's code calling the public API with the documented types (tests/typing/user_code.py) passes; calls
with wrong types (tests/typing/wrong_calls.py) are reported, each on its line with its code; the user's code runs
and gets what the checker was told; the Literal hints are the tables' names."""

import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from cupy_fused import api, checks, precision

ROOT = Path(__file__).resolve().parents[1]
TYPING = ROOT / "tests" / "typing"


def mypy(cache, *paths):
    pytest.importorskip("mypy")
    command = [sys.executable, "-m", "mypy", "--cache-dir", str(cache), "--no-color-output", *map(str, paths)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("mypy-cache")


def test_the_package_and_a_users_code_type_check(cache):
    """pyproject.toml's files: cupy_fused and tests/typing/user_code.py (the first run, cold: about 30 s)."""
    result = mypy(cache)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "user_code.py" not in result.stdout and "Success" in result.stdout


def test_wrong_calls_are_reported(cache):
    path = TYPING / "wrong_calls.py"
    expected = {
        (number, code)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for code in re.findall(r"# error: \[([\w-]+)\]", line)
    }
    assert len(expected) >= 10
    result = mypy(cache, path.relative_to(ROOT))
    assert result.returncode == 1, result.stdout + result.stderr
    reported = {
        (int(number), code)
        for number, code in re.findall(
            r"^tests/typing/wrong_calls\.py:(\d+): error: .*\[([\w-]+)\]$", result.stdout, re.M
        )
    }
    assert reported == expected, result.stdout


def test_the_users_code_runs_as_typed():
    for module in ("torch", "dask.array"):
        pytest.importorskip(module)
    result = subprocess.run([sys.executable, str(TYPING / "user_code.py")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_literal_hints_are_the_tables_names():
    assert sorted(get_args(api.Precision)) == sorted(precision.TABLE)
    assert get_args(api.Method) == checks.METHODS
