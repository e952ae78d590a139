"""The package's shape: no import circles, and the layers import only downwards.

Every import statement counts, including those under ``TYPE_CHECKING`` and inside functions: a
circle through a lazy import is still a circle in the design. The lazy re-export maps of the
public packages (``claude_unified``, ``claude_unified.testing``) are left out as sources: they
name everything and import nothing until a name is used.
"""

from __future__ import annotations

import ast
from pathlib import Path

import claude_unified

PACKAGE = Path(claude_unified.__file__).parent
RE_EXPORT_MAPS = {"claude_unified", "claude_unified.testing"}


def _module_name(path: Path) -> str:
    parts = ["claude_unified", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _target(name: str) -> str | None:
    """The project module an import of ``name`` loads (a name in a module counts as the module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> set[str]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            target = _target(name) if name.startswith("claude_unified") else None
            if target is not None and target != module:
                found.add(target)
    return found


GRAPH = {m: _imports(m) for m in MODULES if m not in RE_EXPORT_MAPS}


def _cycles() -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in GRAPH.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return groups


def test_there_are_no_import_circles() -> None:
    assert _cycles() == []


def _edges_into(source_prefix: str, target_prefix: str) -> list[str]:
    return sorted(
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        if m == source_prefix or m.startswith(source_prefix + ".")
        for t in targets
        if t == target_prefix or t.startswith(target_prefix + ".")
    )


def test_backends_never_import_the_test_kit() -> None:
    assert _edges_into("claude_unified.backends", "claude_unified.testing") == []


def test_the_core_never_imports_the_command_or_batch_jobs() -> None:
    # the modules at the package root, but for ``__main__`` (``python -m``: it runs the command)
    core = [m for m in GRAPH if MODULES[m].parent == PACKAGE and m != "claude_unified.__main__"]
    for higher in ("claude_unified._command", "claude_unified.batch"):
        assert [e for m in core for e in _edges_into(m, higher)] == []


def test_the_graph_sees_the_imports() -> None:
    # the checks above mean something only if imports are found at all
    assert "claude_unified._events" in GRAPH["claude_unified._normalize"]
    assert "claude_unified._wire" in GRAPH["claude_unified.backends.api"]
    assert "claude_unified.batch._cli_pool" in GRAPH["claude_unified.batch._engine"]


def test_dir_shows_only_the_public_names() -> None:
    assert dir(claude_unified) == sorted(claude_unified.__all__)
    from claude_unified import testing

    assert dir(testing) == sorted(testing.__all__)


def test_the_timeout_error_is_also_the_builtin_one() -> None:
    import builtins

    assert issubclass(claude_unified.TimeoutError, builtins.TimeoutError)
    assert issubclass(claude_unified.TimeoutError, claude_unified.TransportError)
