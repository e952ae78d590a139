"""Backends by name. Modules load lazily: importing this package does not import httpx.

Names: ``"api"`` (the Messages API), ``"cli"`` (the Claude Code CLI), ``"fake"`` (an in-process
scripted backend from ``claude_unified.testing``), ``"auto"``, or any entry point registered in
the group ``claude_unified.backends`` (a callable taking the ``Config``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from .._config import Config
from .._exceptions import ConfigError
from ._protocol import Backend

__all__ = ["ENTRY_POINT_GROUP", "Backend", "resolve_backend"]

ENTRY_POINT_GROUP = "claude_unified.backends"

# Set by ``claude_unified.testing.override``: code under test gets this backend whatever it asks.
# The context variable serves tasks; ``process_overrides`` (most recent last) serves threads that
# start without the caller's context: a plain ``threading.Thread``, a thread pool's worker.
backend_override: ContextVar[Callable[[Config], Backend] | None] = ContextVar(
    "claude_unified_backend_override", default=None
)
process_overrides: list[Callable[[Config], Backend]] = []

# Installed by the pytest plugin: called with the backend name ("api" or "cli") and the config
# before a real transport is built, so a test cannot reach a real API by accident.
real_backend_check: Callable[[str, Config], None] | None = None


def resolve_backend(config: Config, explicit: Backend | str | None = None) -> Backend:
    """The backend to use: an explicit instance, an override in force, or one named by config.

    With ``config.record_path`` set, the backend is wrapped in a ``RecordingBackend``.
    """
    backend = _resolve(config, explicit)
    if config.record_path is None:
        return backend
    from ..testing._record import RecordingBackend

    if isinstance(backend, RecordingBackend):
        return backend
    return RecordingBackend(
        backend, config.record_path, secrets=(config.api_key, config.auth_token)
    )


def _resolve(config: Config, explicit: Backend | str | None) -> Backend:
    if explicit is not None and not isinstance(explicit, str):
        return explicit
    override = backend_override.get() or (process_overrides[-1] if process_overrides else None)
    if override is not None:
        return override(config)
    name = explicit or config.backend
    if name == "auto":
        name = _auto(config)
    if name in ("api", "cli") and real_backend_check is not None:
        real_backend_check(name, config)
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
    from .._exceptions import CLINotFoundError
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


def _from_entry_point(name: str, config: Config) -> Backend:
    from importlib.metadata import entry_points  # costly to import: only when needed

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
