"""``claude-unified doctor``: which backends are usable here, and why not.

Secrets are never printed: only whether they are set and where they came from.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import anyio
import msgspec

from .._config import Config
from .._exceptions import ClaudeError
from .._version import __version__

__all__ = ["DoctorReport", "diagnose"]

_SECRETS = frozenset({"api_key", "auth_token"})
_CONNECT_TIMEOUT_S = 3.0


class BackendCheck(msgspec.Struct, frozen=True):
    usable: bool
    details: list[str]


class DoctorReport(msgspec.Struct, frozen=True):
    version: str
    python: str
    api: BackendCheck
    cli: BackendCheck
    auto_backend: str | None
    config: dict[str, str]

    def render(self) -> str:
        lines = [f"claude-unified {self.version} (python {self.python})", ""]
        for name, check in (("API backend", self.api), ("CLI backend", self.cli)):
            lines.append(f"{name}: {'usable' if check.usable else 'not usable'}")
            lines += [f"  {detail}" for detail in check.details]
        lines.append(f"backend 'auto' picks: {self.auto_backend or 'nothing (see above)'}")
        lines.append("configuration (non-default values):")
        lines += [f"  {line}" for line in self.config.values()] or ["  (all defaults)"]
        return "\n".join(lines)


async def diagnose(
    config: Config,
    sources: dict[str, str],
    *,
    probe: bool = True,
    announce: Callable[[str], None] = lambda text: None,
) -> DoctorReport:
    """The report. ``probe`` connects to the base URL (TCP only) to check it is reachable, and
    says so through ``announce`` first: nothing is contacted unannounced."""
    api = await _check_api(config, sources, probe, announce)
    cli = await _check_cli(config)
    auto = "api" if config.has_credentials else ("cli" if cli.usable else None)
    return DoctorReport(
        version=__version__,
        python=platform.python_version(),
        api=api,
        cli=cli,
        auto_backend=auto,
        config={name: _describe(config, name, where) for name, where in sorted(sources.items())},
    )


def _describe(config: Config, name: str, where: str) -> str:
    value = "*** (set)" if name in _SECRETS else repr(getattr(config, name, None))
    return f"{name} = {value}  [from {where}]"


async def _check_api(
    config: Config, sources: dict[str, str], probe: bool, announce: Callable[[str], None]
) -> BackendCheck:
    details = []
    if config.api_key:
        details.append(f"API key: set (from {sources.get('api_key', 'argument')})")
    elif config.auth_token:
        details.append(f"bearer token: set (from {sources.get('auth_token', 'argument')})")
    else:
        details.append("credentials: missing; set ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN")
    if not probe:
        details.append(f"base URL {config.base_url}: not checked (--offline)")
        return BackendCheck(usable=config.has_credentials, details=details)
    reachable, note = await _reachable(config.base_url, announce)
    details.append(f"base URL {config.base_url}: {note}")
    return BackendCheck(usable=config.has_credentials and reachable, details=details)


async def _reachable(url: str, announce: Callable[[str], None]) -> tuple[bool, str]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    announce(f"connecting to {host}:{port} (TCP only) to check the base URL; --offline skips it")
    started = time.monotonic()
    try:
        with anyio.fail_after(_CONNECT_TIMEOUT_S):
            stream = await anyio.connect_tcp(host, port)
    except (OSError, TimeoutError) as exc:
        return False, f"unreachable ({type(exc).__name__}: {exc})"
    await stream.aclose()
    return True, f"reachable (TCP connect in {time.monotonic() - started:.2f}s)"


async def _check_cli(config: Config) -> BackendCheck:
    from ..backends._discovery import check_version, cli_version, find_cli

    try:
        path = find_cli(config.cli_path)
        version = await cli_version(path)
        check_version(version)
    except ClaudeError as exc:
        return BackendCheck(usable=False, details=str(exc).splitlines())
    return BackendCheck(
        usable=True, details=[f"claude: {path} (version {'.'.join(map(str, version))})"]
    )
