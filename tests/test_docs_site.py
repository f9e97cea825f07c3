"""The documentation site (docs/) builds with Sphinx with warnings as errors and every cross-reference resolved
(-W --keep-going -n), as CI runs it; and its check of the public API (docs/_ext/public_api.py) reports what is
undocumented: a name without a docstring, a parameter not described, a public method without a docstring, data
without a ``#:`` comment, a name missing from the reference."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

pytestmark = pytest.mark.skipif(not (DOCS / "conf.py").is_file(), reason="an unpacked sdist without the site")


def test_the_site_builds_without_a_warning(tmp_path):
    for module in ("sphinx", "myst_parser", "furo", "torch", "dask"):  # autodoc imports the torch and dask faces
        pytest.importorskip(module)
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html"]
    command += ["-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    api = (tmp_path / "html" / "api.html").read_text()
    for name in ("cupy_fused.linear_sigmoid_sum", "cupy_fused.torch.LinearSigmoidSum", "cupy_fused.dask.Operand"):
        assert f'id="{name}"' in api


@pytest.fixture
def public_api(monkeypatch, tmp_path):
    pytest.importorskip("sphinx")
    monkeypatch.syspath_prepend(str(DOCS / "_ext"))
    monkeypatch.syspath_prepend(str(tmp_path))
    import public_api

    return public_api


def test_the_api_check_reports_what_is_undocumented(public_api, tmp_path):
    (tmp_path / "made_face.py").write_text(
        textwrap.dedent('''
        __all__ = ["documented", "bare", "half", "Layer", "LIMIT", "COUNT"]

        #: documented data
        LIMIT = 1
        COUNT = 2


        def documented(x, *, y=0):
            """Fully documented.

            Args:
                x: an array.
                y: a number.
            """


        def bare(x):
            pass


        def half(x, y):
            """Half documented.

            Args:
                x: described; y is not.
            """


        class Layer:
            """A layer.

            Args:
                size: its size.
            """

            def __init__(self, size):
                self.size = size

            def grad(self):
                pass

            def explain(self):
                """Documented."""
        ''')
    )
    found = public_api.problems(("made_face",), documented={"made_face.documented", "made_face.LIMIT"})
    assert sorted(found) == sorted(
        [
            "made_face.COUNT has no #: comment where it is assigned",
            "made_face.COUNT is public but has no entry in the API reference (docs/api.md)",
            "made_face.Layer is public but has no entry in the API reference (docs/api.md)",
            "made_face.Layer.grad has no docstring",
            "made_face.bare has no docstring",
            "made_face.bare is public but has no entry in the API reference (docs/api.md)",
            "made_face.half is public but has no entry in the API reference (docs/api.md)",
            "made_face.half: parameter 'y' is not described under Args:",
        ]
    )


def test_the_faces_are_documented(public_api):
    for module in ("torch", "dask"):
        pytest.importorskip(module)
    assert public_api.problems() == []
