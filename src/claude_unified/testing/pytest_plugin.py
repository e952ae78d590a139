"""pytest plugin (entry point ``pytest11``): fixtures for testing code that uses claude_unified.

- ``claude_fake``: a ``FakeBackend`` installed with ``override`` for the test; queue its steps.
- ``claude_function``: installs ``FunctionBackend(fn)`` for the test; usable as a decorator.
- ``fake_anthropic_server``: a running ``FakeAnthropicServer``, with ``ANTHROPIC_BASE_URL`` and a
  dummy ``ANTHROPIC_API_KEY`` pointing at it for the duration of the test.
- ``claude_cli_env``: everything needed to run the real ``claude`` CLI offline against that
  server (throwaway HOME and TMPDIR, dummy key, telemetry off, low retries) as a ``CliTestEnv``.

The ``live`` marker lets a test use a real backend. Live tests are skipped unless the run asks
for them with ``--live`` or ``CLAUDE_UNIFIED_LIVE=1``. In every other test, building an API or
CLI backend, an HTTP client of the API (the Message Batches client too) or spawning the CLI
aimed anywhere but loopback raises ``ConfigError`` at once, before any connection is made.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from ..backends import _registry
from ._cli_env import DUMMY_KEY, CliTestEnv, is_loopback

if TYPE_CHECKING:
    from .._config import Config
    from ..backends._protocol import Exchange
    from ._fake_backend import FakeBackend, FunctionBackend, StepFunction
    from ._script import Step
    from ._server import FakeAnthropicServer

# Only what the marker and the guard need loads with the plugin, which every pytest run of every
# project that has the library installed loads; fixtures import the fakes when they are used.
__all__ = ["DUMMY_KEY", "CliTestEnv"]

_REAL_API = "https://api.anthropic.com"
# Any of these makes the CLI talk to a cloud provider, whatever ANTHROPIC_BASE_URL says.
_CLOUD_SWITCHES = ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_USE_FOUNDRY")
LIVE_ENV_VAR = "CLAUDE_UNIFIED_LIVE"
_TRUE = ("1", "true", "yes", "on")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("claude_unified").addoption(
        "--live",
        action="store_true",
        default=False,
        help=f"run tests marked live (they use a real Claude backend); or set {LIVE_ENV_VAR}=1",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "live: the test may use a real Claude backend (API or CLI) off this machine"
    )


def _live_wanted(config: pytest.Config) -> bool:
    return bool(config.getoption("live")) or (
        os.environ.get(LIVE_ENV_VAR, "").strip().lower() in _TRUE
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``live`` tests unless ``--live`` or ``CLAUDE_UNIFIED_LIVE=1`` asks for them."""
    if _live_wanted(config):
        return
    skip = pytest.mark.skip(reason=f"a live test: run with --live or {LIVE_ENV_VAR}=1")
    for item in items:
        if item.get_closest_marker("live") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _claude_unified_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Outside ``live`` tests, refuse real backends that would leave the machine."""
    live = request.node.get_closest_marker("live") is not None
    previous = _registry.real_backend_check
    _registry.real_backend_check = None if live else _refuse_remote
    try:
        yield
    finally:
        _registry.real_backend_check = previous


def _refuse_remote(name: str, config: Config) -> None:
    """Raise ``ConfigError`` (a library error: it may be raised inside an event loop, a worker
    thread or the sync facade, where a test framework's own exception would do harm)."""
    target = _remote_target(name, config)
    if target is not None:
        from .._exceptions import ConfigError

        raise ConfigError(
            f"claude_unified: this test would use the real {name} backend aimed at {target}. "
            "Mark it @pytest.mark.live if it should reach a real API, or use the claude_fake "
            "or claude_function fixture (in-process) or fake_anthropic_server (loopback HTTP).",
            field="backend",
            source="the claude_unified pytest guard",
        )


def _remote_target(name: str, config: Config) -> str | None:
    """Where the backend would connect, when that is not loopback (``None`` when it is)."""
    if name == "api":
        url = config.base_url
    else:
        from ..backends._discovery import find_cli
        from ..backends._protocol import SessionSpec

        find_cli(config.cli_path)  # no CLI, no connection: let discovery report the real problem
        from ..backends.cli import build_env

        env = build_env(config, SessionSpec(env=config.env))
        switched = [v for v in _CLOUD_SWITCHES if env.get(v, "").lower() not in ("", "0", "false")]
        if switched:
            return f"a cloud provider ({', '.join(switched)} is set)"
        url = env.get("ANTHROPIC_BASE_URL") or _REAL_API
    return None if is_loopback(urlsplit(url).hostname or "") else url


@pytest.fixture
def claude_fake() -> Iterator[FakeBackend]:
    """A FakeBackend that every conversation built in the test gets; queue its steps."""
    from ._fake_backend import FakeBackend
    from ._override import override

    fake = FakeBackend()
    with override(backend=fake):
        yield fake


@pytest.fixture
def claude_function() -> Iterator[Callable[[StepFunction], FunctionBackend]]:
    """Installs a function as the model for the test and returns its ``FunctionBackend``; works
    as a decorator::

        def test_echo(claude_function):
            @claude_function
            def model(request: Exchange) -> str:
                return f"you said {request.prompt}"

            ...
            assert model.requests[0].prompt == "hi"

    Installing another function later in the test replaces the first. The backend is installed
    when the fixture is set up, so the override is entered and left in the same context.
    """
    from .._exceptions import ClaudeError
    from ._fake_backend import FunctionBackend
    from ._override import override

    functions: list[StepFunction] = []

    def current(request: Exchange) -> Step | str | Awaitable[Step | str]:
        if not functions:
            raise ClaudeError("claude_function: no model function yet; call claude_function(fn)")
        return functions[-1](request)

    backend = FunctionBackend(current)

    def install(fn: StepFunction) -> FunctionBackend:
        functions.append(fn)
        return backend

    with override(backend=backend):
        yield install


@pytest.fixture
def fake_anthropic_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropicServer]:
    """A running FakeAnthropicServer; ANTHROPIC_BASE_URL points at it during the test."""
    from ._server import FakeAnthropicServer

    with FakeAnthropicServer() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", DUMMY_KEY)
        monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
        yield server


def _cli_for_tests() -> Path:
    from .._exceptions import CLINotFoundError
    from ..backends._discovery import find_cli
    from ._cli_env import test_cli_path

    pinned = test_cli_path()
    if pinned is not None:
        if not pinned.exists():
            pytest.fail(f"CLAUDE_UNIFIED_TEST_CLI points at {pinned}, which does not exist")
        return pinned
    try:
        return find_cli()
    except CLINotFoundError as exc:
        message = (
            "the claude CLI is needed for this test and was not found. Install the pinned "
            "version (nox installs it for you: `nox -s tests`), or set CLAUDE_UNIFIED_TEST_CLI "
            f"to a claude binary. Details: {exc}"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def claude_cli_env(fake_anthropic_server: FakeAnthropicServer, tmp_path: Path) -> CliTestEnv:
    """The real CLI, isolated, aimed at ``fake_anthropic_server``. In CI a missing CLI fails."""
    from ._cli_env import isolated_cli_env

    cli = _cli_for_tests()
    env = isolated_cli_env(fake_anthropic_server.url, tmp_path / "cli")
    work = tmp_path / "work"
    work.mkdir()
    return CliTestEnv(str(cli), env, str(work), fake_anthropic_server)
