"""Sphinx extension of this site: the build fails (a warning; an error under ``-W``) when a public name of the faces
(``__all__`` of cupy_fused, cupy_fused.torch and cupy_fused.dask) has no docstring, a parameter its docstring does
not describe, a public method or property without a docstring, or no entry in the rendered API reference
(docs/api.md). It also points references to a name's defining module (``cupy_fused.plans.Plan``, as type hints
render) at the public name the reference documents (``cupy_fused.Plan``).

``problems(faces, documented)`` is the check itself; tests/test_docs_site.py runs it on a module made to fail.
"""

from __future__ import annotations

import importlib
import inspect
import re
from types import ModuleType
from typing import Any

FACES = ("cupy_fused", "cupy_fused.torch", "cupy_fused.dask")
# Classes users get from the package and never construct: their constructor's parameters are not part of the API
# (the reference shows no constructor signature for them).
MADE_BY_THE_PACKAGE = {"cupy_fused.Plan": "made by cupy_fused.plan"}


def _own_doc(obj: Any) -> str:
    """The docstring written for obj itself (a class does not count its bases' docstrings)."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


def _attribute_docs(module: ModuleType) -> dict[str, str]:
    """Module-level ``#:`` comments (how data such as __version__ is documented), by name."""
    from sphinx.pycode import ModuleAnalyzer

    try:
        found = ModuleAnalyzer.for_module(module.__name__).find_attr_docs()
    except Exception:  # noqa: BLE001 - no source to read: nothing is documented that way
        return {}
    return {name: "\n".join(lines).strip() for (scope, name), lines in found.items() if scope == ""}


def _undescribed(obj: Any, doc: str) -> list[str]:
    """Parameters of a function (a class: the __init__ it defines) that the docstring's ``Args:`` does not
    describe."""
    if inspect.isclass(obj) and "__init__" not in vars(obj):
        return []
    try:
        signature = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
    except (TypeError, ValueError):
        return []
    missing = []
    for name, parameter in signature.parameters.items():
        if name in ("self", "cls") or parameter.kind is parameter.VAR_POSITIONAL:
            continue
        if not re.search(rf"^\s+\**{re.escape(name)}( \([^)]*\))?:", doc, re.M):
            missing.append(name)
    return missing


def _members(cls: type) -> list[tuple[str, Any]]:
    """The public methods and properties a class defines itself (not those it inherits)."""
    return [
        (name, value)
        for name, value in vars(cls).items()
        if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, property))
    ]


def problems(faces: tuple[str, ...] = FACES, documented: set[str] | None = None) -> list[str]:
    """What is undocumented in the faces; ``documented``: the names the rendered reference holds (None: not
    checked)."""
    found = []
    for face in faces:
        module = importlib.import_module(face)
        data_docs = _attribute_docs(module)
        for name in module.__all__:
            obj = getattr(module, name)
            full = f"{face}.{name}"
            if documented is not None and full not in documented:
                found.append(f"{full} is public but has no entry in the API reference (docs/api.md)")
            if not (inspect.isclass(obj) or callable(obj)):
                if not data_docs.get(name):
                    found.append(f"{full} has no #: comment where it is assigned")
                continue
            doc = _own_doc(obj)
            if not doc:
                found.append(f"{full} has no docstring")
                continue
            if full not in MADE_BY_THE_PACKAGE:
                found += [f"{full}: parameter {p!r} is not described under Args:" for p in _undescribed(obj, doc)]
            if inspect.isclass(obj):
                for member, value in _members(obj):
                    target = value.fget if isinstance(value, property) else value
                    if not _own_doc(target):
                        found.append(f"{full}.{member} has no docstring")
    return found


def _check(app: Any, env: Any) -> None:
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    documented = set(env.get_domain("py").objects)
    for problem in problems(documented=documented):
        logger.warning(problem, type="public_api")


def _public_names() -> dict[str, str]:
    """``module.qualname`` of each public object where it is defined -> the public name the reference uses."""
    names = {}
    for face in FACES:
        module = importlib.import_module(face)
        for name in module.__all__:
            obj = getattr(module, name)
            if hasattr(obj, "__module__") and hasattr(obj, "__qualname__"):
                names.setdefault(f"{obj.__module__}.{obj.__qualname__}", f"{face}.{name}")
    return names


def _resolve_public(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    public = _public_names().get(node.get("reftarget", ""))
    if public is None:
        return None
    node["reftarget"] = public
    return env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder, node["reftype"], public, node, contnode)


def setup(app: Any) -> dict[str, Any]:
    app.connect("env-check-consistency", _check)
    app.connect("missing-reference", _resolve_public)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
