"""The API reference covers every public name, and every public name documents itself."""

from __future__ import annotations

import importlib.util
import inspect
import re
from types import ModuleType

import pytest

import claude_unified
import claude_unified.backends
import claude_unified.testing

from ._blocks import ROOT

PACKAGES = [claude_unified, claude_unified.testing, claude_unified.backends]


def _public(package: ModuleType) -> list[tuple[str, object]]:
    return [(n, getattr(package, n)) for n in package.__all__ if n != "__version__"]


def _undocumented(name: str, obj: object) -> list[str]:
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return []  # type aliases and constants are documented on their pages
    missing = [] if (obj.__doc__ or "").strip() else [name]
    if inspect.isclass(obj):
        for member, value in vars(obj).items():
            if member.startswith("_"):
                continue
            target = value.fget if isinstance(value, property) else value
            if inspect.isfunction(target) and not (target.__doc__ or "").strip():
                missing.append(f"{name}.{member}")
    return missing


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_public_class_and_function_has_a_docstring(package: ModuleType) -> None:
    missing = [m for name, obj in _public(package) for m in _undocumented(name, obj)]
    assert missing == []


def test_the_reference_page_renders_every_public_package() -> None:
    page = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    rendered = set(re.findall(r"^::: (\S+)$", page, flags=re.MULTILINE))
    assert rendered == {p.__name__ for p in PACKAGES}


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tables_render_pipes_in_code_without_a_stray_backslash() -> None:
    """A ``|`` in a table cell's code is written ``\\|`` (GitHub needs it); the site shows ``|``."""
    from markdown import Markdown

    source = "| field | type |\n|---|---|\n| `model` | `str \\| None` |\n\n`a \\| b` stays\n"
    html = Markdown(extensions=["tables"]).convert(_hooks().unescape_table_code(source))
    assert "<td><code>str | None</code></td>" in html
    assert "\\" not in html.split("</table>")[0]
    assert "<code>a \\| b</code>" in html  # outside tables nothing changes
