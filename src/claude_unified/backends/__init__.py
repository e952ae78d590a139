"""Backends by name. Modules load lazily: importing this package does not import httpx.

Names: ``"api"`` (the Messages API), ``"cli"`` (the Claude Code CLI), ``"auto"``, or any entry
point registered in the group ``claude_unified.backends`` (a callable taking the ``Config``):
the package itself registers ``"fake"`` there, the in-process scripted backend of
``claude_unified.testing``, so that this layer never imports the test kit. What the test kit
installs (overrides, the guard against real backends) lives in ``_registry``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

from . import _registry

if TYPE_CHECKING:  # loaded when a backend is resolved: the pytest plugin imports this package
    from .._config import Config
    from ._protocol import Backend
else:

    def __getattr__(name: str) -> object:
        if name == "Backend":
            from ._protocol import Backend

            return Backend
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ENTRY_POINT_GROUP", "Backend", "resolve_backend"]

ENTRY_POINT_GROUP = "claude_unified.backends"


def resolve_backend(config: Config, explicit: Backend | str | None = None) -> Backend:
    """The backend to use: an explicit instance, an override in force, or one named by config.

    With ``config.record_path`` set, the backend is wrapped in a ``RecordingBackend``.
    """
    backend = _resolve(config, explicit)
    if config.record_path is None:
        return backend
    from ._recording import RecordingBackend

    if isinstance(backend, RecordingBackend):
        return backend
    return RecordingBackend(
        backend, config.record_path, secrets=(config.api_key, config.auth_token)
    )


def _resolve(config: Config, explicit: Backend | str | None) -> Backend:
    if explicit is not None and not isinstance(explicit, str):
        return explicit
    stack = _registry.process_overrides
    override = _registry.backend_override.get() or (stack[-1] if stack else None)
    if override is not None:
        return override(config)
    name = explicit or config.backend
    if name == "auto":
        name = _auto(config)
    if name in ("api", "cli"):
        _registry.check_real_backend(name, config)
    if name == "api":
        from .api import ApiBackend

        return ApiBackend(config)
    if name == "cli":
        from .cli import CliBackend

        return CliBackend(config)
    return _from_entry_point(name, config)


def _auto(config: Config) -> str:
    if config.has_credentials:
        return "api"
    from .._exceptions import CLINotFoundError, ConfigError
    from ._discovery import find_cli

    try:
        find_cli(config.cli_path)  # the same search `claude-unified doctor` reports
    except CLINotFoundError as exc:
        raise ConfigError(
            "no backend is usable: the API backend needs ANTHROPIC_API_KEY or "
            "ANTHROPIC_AUTH_TOKEN, and the CLI backend needs the `claude` command "
            f"(cli_path, or PATH). Set one of them, or choose backend='fake' for tests.\n{exc}",
            field="backend",
        ) from exc
    return "cli"


@cache
def _entry_point(name: str) -> Callable[[Config], object] | None:
    """The factory registered under ``name``, looked up once per process."""
    from importlib.metadata import entry_points  # costly to import: only when needed

    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        factory: Callable[[Config], object] = ep.load()
        return factory
    return None


def _from_entry_point(name: str, config: Config) -> Backend:
    from .._exceptions import ConfigError
    from ._protocol import Backend

    factory = _entry_point(name)
    if factory is not None:
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
