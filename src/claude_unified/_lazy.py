"""Lazy re-exports (PEP 562) for a package's public names, so that importing the package costs
little and a program pays only for the parts it uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, namespace: dict[str, Any], exports: Mapping[str, str], public: list[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps each module (relative to
    the package) to its exported names, space-separated; ``public`` is the package's ``__all__``.
    A name is imported on first use and then cached in the package's ``namespace``.

    Raises ``ImportError`` at once when ``exports`` and ``public`` disagree, so a name added to one
    list but not the other cannot ship."""
    where = {name: module for module, names in exports.items() for name in names.split()}
    differ = (set(public) ^ set(where)) - {"__version__"}
    if differ:
        raise ImportError(f"{package}: __all__ and its exports disagree about {sorted(differ)}")

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(public)  # the public names only, not the package's own machinery

    return __getattr__, __dir__
