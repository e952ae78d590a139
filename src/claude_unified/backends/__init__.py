"""Backends by name. Modules load lazily: importing this package does not import httpx.

Names: ``"api"`` (the Messages API), ``"cli"`` (the Claude Code CLI), ``"fake"`` (an in-process
scripted backend from ``claude_unified.testing``), ``"auto"``, or any entry point registered in
the group ``claude_unified.backends`` (a callable taking the ``Config``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from contextvars import ContextVar
from importlib.metadata import entry_points

from .._config import Config
from .._exceptions import ConfigError
from ._protocol import Backend

__all__ = ["ENTRY_POINT_GROUP", "Backend", "resolve_backend"]

ENTRY_POINT_GROUP = "claude_unified.backends"

# Set by ``claude_unified.testing.override``: code under test gets this backend whatever it asks.
backend_override: ContextVar[Callable[[Config], Backend] | None] = ContextVar(
    "claude_unified_backend_override", default=None
)


def resolve_backend(config: Config, explicit: Backend | str | None = None) -> Backend:
    """The backend to use: an explicit instance, an override in force, or one named by config."""
    if explicit is not None and not isinstance(explicit, str):
        return explicit
    override = backend_override.get()
    if override is not None:
        return override(config)
    name = explicit or config.backend
    if name == "auto":
        name = _auto(config)
    if name == "api":
        from .api import ApiBackend

        return ApiBackend(config)
    if name == "cli":
        from .cli import CliBackend

        return CliBackend(config)
    if name == "fake":
        from ..testing._fake_backend import FakeBackend

        return FakeBackend()
    return _from_entry_point(name, config)


def _auto(config: Config) -> str:
    if config.has_credentials:
        return "api"
    if config.cli_path or shutil.which("claude"):
        return "cli"
    raise ConfigError(
        "no backend is usable: the API backend needs ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN, "
        "and the CLI backend needs the `claude` command on PATH (or cli_path). "
        "Set one of them, or choose backend='fake' for tests.",
        field="backend",
    )


def _from_entry_point(name: str, config: Config) -> Backend:
    found = entry_points(group=ENTRY_POINT_GROUP, name=name)
    for ep in found:
        factory: Callable[[Config], object] = ep.load()
        backend = factory(config)
        if not isinstance(backend, Backend):
            raise ConfigError(
                f"entry point {name!r} in {ENTRY_POINT_GROUP} did not return a Backend",
                field="backend",
            )
        return backend
    raise ConfigError(
        f"unknown backend {name!r}: use 'auto', 'api', 'cli', 'fake' or an entry point "
        f"registered in the group {ENTRY_POINT_GROUP!r}",
        field="backend",
    )
