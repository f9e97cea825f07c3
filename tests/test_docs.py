"""The docs stay true: docs/*.md, CHANGELOG.md and CONTRIBUTING.md checked against the code they describe.

What is checked: the precision table of docs/design.md against cupy_fused.precision.TABLE; every module of the
package named in docs/design.md; every kernel file and kernel template named in docs/kernels.md; in the docs and
CONTRIBUTING.md, every file, folder, link, `cupy_fused.*` name, `module.name` and `namespace::kernel` written in
backticks exists; the CHANGELOG's sections are in order and its top one is "Unreleased" or the package's version;
Markdown lines are at most 120 characters.
"""

import re
from pathlib import Path

import pytest

import cupy_fused
from cupy_fused import precision
from cupy_fused.backends import instances

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DESIGN = DOCS / "design.md"
KERNELS = DOCS / "kernels.md"
CHANGELOG = ROOT / "CHANGELOG.md"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
CURRENT = [*sorted(DOCS.glob("*.md")), CONTRIBUTING]  # what they name must exist (the CHANGELOG names the past)
MARKDOWN = [*CURRENT, CHANGELOG]
PACKAGE = ROOT / "cupy_fused"

# Where bare file names (`fused.py`, `suite_run16.json`) are looked for.
SEARCHED = ["cupy_fused", "kernels", "benchmarks", "scripts", "tests", "examples", "docs"]
FILE_SUFFIXES = (".py", ".cu", ".cuh", ".md", ".sh", ".toml", ".json", ".txt", ".log", ".png")
# Module names of the package that are also the names of other libraries: `torch.compile` is not about ours.
AMBIGUOUS_MODULES = {"torch", "cupy", "numpy", "dask", "jax", "dlpack", "timing"}

pytestmark = pytest.mark.skipif(
    not DOCS.is_dir() and not (ROOT / ".git").exists(), reason="an unpacked sdist without the docs"
)


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def backticked(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def tables(text: str) -> list[list[list[str]]]:
    """The Markdown tables of text: rows of cells (backticks removed), header first, the --- row left out."""
    found, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [cell.strip().replace("`", "") for cell in line.strip().strip("|").split("|")]
            if not all(set(cell) <= set("-: ") for cell in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def precision_table() -> dict[str, dict[str, str]]:
    """docs/design.md's precision table as {precision: {column header: cell}}."""
    found = [t for t in tables(read(DESIGN)) if "cuBLAS compute type" in t[0]]
    assert len(found) == 1, f"docs/design.md must have one table with a 'cuBLAS compute type' column, has {len(found)}"
    header = found[0][0]
    table = found[0]
    rows = {}
    for cells in table[1:]:
        assert len(cells) == len(header), f"a row of the precision table has {len(cells)} cells: {cells}"
        assert cells[0] not in rows, f"precision {cells[0]} listed twice"
        rows[cells[0]] = dict(zip(header, cells))
    return rows


# ------------------------------------------------------------------------------------------------ design.md


def test_precision_table_lists_exactly_the_precisions_of_the_code():
    assert sorted(precision_table()) == sorted(precision.TABLE)


@pytest.mark.parametrize("name", list(precision.TABLE))
def test_precision_row_matches_the_code(name):
    row = precision_table()[name]
    compute_names = {value: key for key, value in vars(precision).items() if key.startswith("CUBLAS_COMPUTE_")}
    expected = precision.TABLE[name]
    assert row["cuBLAS compute type"] == (
        "none" if expected.cublas_compute is None else compute_names[expected.cublas_compute]
    )
    assert row["backward"] == expected.backward
    assert row["fp32-accurate"] == ("yes" if expected.fp32_accurate else "no")


def test_design_names_every_module_of_the_package():
    text = read(DESIGN)
    modules = [
        p.relative_to(ROOT).as_posix()
        for p in PACKAGE.rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py") and "bench" not in p.relative_to(PACKAGE).parts
    ]
    assert modules
    missing = [m for m in modules if f"`{m}`" not in text]
    assert not missing, f"docs/design.md does not describe {missing}"
    assert "`cupy_fused/bench/`" in text


# ----------------------------------------------------------------------------------------------- kernels.md


def test_kernels_doc_names_every_kernel_file():
    text = read(KERNELS)
    files = sorted(p.name for p in (ROOT / "kernels").iterdir() if p.suffix in (".cu", ".cuh"))
    assert files
    missing = [f for f in files if f"`kernels/{f}`" not in text]
    assert not missing, f"docs/kernels.md does not describe {missing}"


def test_kernels_doc_names_every_kernel_template_the_package_launches():
    text = read(KERNELS)
    templates = sorted({name.split("<")[0] for names in instances().values() for name in names})
    missing = [t for t in templates if not re.search(rf"`{re.escape(t)}[`<]", text)]
    assert not missing, f"docs/kernels.md does not name {missing}"


def test_kernel_names_in_the_docs_exist_in_the_sources():
    """`ns::name` with ns a namespace of kernels/ (not `cupy_fused::...`, torch's op namespace)."""
    sources = "\n".join(read(p) for p in sorted((ROOT / "kernels").iterdir()) if p.suffix in (".cu", ".cuh"))
    namespaces = set(re.findall(r"^namespace (\w+)", sources, re.M))
    assert {"fused", "sb", "bw", "cf"} <= namespaces
    unknown = []
    for path in CURRENT:
        for token in backticked(read(path)):
            match = re.match(r"(\w+)::(\w+)", token)
            if match and match[1] in namespaces and not re.search(rf"\b{match[2]}\b", sources):
                unknown.append(f"{path.name}: {token}")
    assert not unknown, f"no such kernel: {unknown}"


# ---------------------------------------------------------------------------------------- names and paths


def _bare_file_names() -> set[str]:
    names = {p.name for p in ROOT.iterdir() if p.is_file()}
    for folder in SEARCHED:
        names |= {p.name for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    return names


def _module_file(stem: str) -> list[Path]:
    files = [p for p in PACKAGE.rglob(f"{stem}.py") if "__pycache__" not in p.parts]
    package = PACKAGE / stem / "__init__.py"
    return files + ([package] if package.is_file() else [])


@pytest.mark.parametrize("doc", CURRENT, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_files_and_links_the_docs_name_exist(doc):
    text = read(doc)
    bare = _bare_file_names()
    missing = []
    for token in backticked(text):
        # a path (`kernels/`, `.ci/run`) or a file name (`fused.py`), not a suffix alone (`.cu`)
        if re.fullmatch(r"(\.?\w[\w.\-]*/)+([\w.\-]+)?|\w[\w.\-]*", token) and (
            "/" in token or token.endswith(FILE_SUFFIXES)
        ):
            if not ((ROOT / token).exists() if "/" in token else token in bare):
                missing.append(token)
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text) + re.findall(r"^\[[^\]]+\]: ([^#\s]+)", text, re.M)
    for target in links:
        if not re.match(r"\w+://", target) and not (doc.parent / target).exists():
            missing.append(target)
    assert not missing, f"{doc.name} names files that do not exist: {missing}"


@pytest.mark.parametrize("doc", CURRENT, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_package_names_the_docs_use_exist(doc):
    """`cupy_fused.a.b` resolves to a module (file or package) and names in it; `planner.candidates` (a module of the
    package, then a name) names something in that module."""
    unknown = []
    for token in backticked(read(doc)):
        if token.endswith(FILE_SUFFIXES):
            continue
        full = re.match(r"cupy_fused((?:\.\w+)+)", token)
        if full:
            parts, path = full[1].split(".")[1:], PACKAGE
            while parts and ((path / parts[0]).is_dir() or (path / f"{parts[0]}.py").is_file()):
                path = path / parts[0] if (path / parts[0]).is_dir() else path / f"{parts[0]}.py"
                parts = parts[1:]
                if path.suffix == ".py":
                    break
            module = path / "__init__.py" if path.is_dir() else path
            names = parts
        else:
            short = re.match(r"(\w+)\.(\w+)", token)
            if not short or short[1] in AMBIGUOUS_MODULES or not _module_file(short[1]):
                continue
            module, names = None, [short[2]]
        sources = [read(module)] if module else [read(p) for p in _module_file(short[1])]
        for name in names:
            if not any(re.search(rf"\b{re.escape(name)}\b", source) for source in sources):
                unknown.append(token)
                break
    assert not unknown, f"{doc.name} names what the package does not have: {unknown}"


# ------------------------------------------------------------------------------------------- CHANGELOG.md


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_changelog_sections_are_in_order_and_the_top_one_is_current():
    text = read(CHANGELOG)
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings, "CHANGELOG.md has no version sections"
    assert headings[0] in ("[Unreleased]", f"[{cupy_fused.__version__}]") or headings[0].startswith(
        f"[{cupy_fused.__version__}] - "
    ), f"the top section is {headings[0]!r}: 'Unreleased' or {cupy_fused.__version__} expected"
    released = headings[1:] if headings[0] == "[Unreleased]" else headings
    versions = []
    for heading in released:
        match = re.fullmatch(r"\[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}", heading)
        assert match, f"a released section must read '[X.Y.Z] - YYYY-MM-DD', got {heading!r}"
        versions.append(_version(match[1]))
    assert versions == sorted(set(versions), reverse=True), f"versions out of order or repeated: {versions}"
    assert all(v <= _version(cupy_fused.__version__) for v in versions), "a release newer than __version__"


# ------------------------------------------------------------------------------------------------- style


# The results tables are kept as the GPU sessions wrote them (moved from the README as they were); a Markdown table
# row cannot be wrapped, so a row of these tables may be longer.
LONG_TABLE_ROWS = {DOCS / "results.md"}


@pytest.mark.parametrize("doc", MARKDOWN, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_markdown_lines_are_at_most_120_characters(doc):
    long = [
        f"{doc.name}:{i}"
        for i, line in enumerate(read(doc).splitlines(), 1)
        if len(line) > 120 and not (doc in LONG_TABLE_ROWS and line.startswith("|"))
    ]
    assert not long, f"lines over 120 characters: {long}"
