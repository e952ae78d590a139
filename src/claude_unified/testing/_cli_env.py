"""An environment for running the real Claude Code CLI offline against a local fake API.

The environment is built from nothing: inheriting the user's would leak their API key,
config and ``CLAUDECODE`` nesting marker into tests. Only ``PATH`` is taken over, because
the CLI's Bash tool needs it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

if TYPE_CHECKING:
    from .._config import Config
    from ._server import FakeAnthropicServer

__all__ = [
    "DUMMY_KEY",
    "TEST_CLI_ENV_VAR",
    "CliTestEnv",
    "is_loopback",
    "isolated_cli_env",
    "test_cli_path",
]

TEST_CLI_ENV_VAR = "CLAUDE_UNIFIED_TEST_CLI"
DUMMY_KEY = "sk-ant-test"

_QUIET = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_ERROR_REPORTING": "1",
}


def isolated_cli_env(
    base_url: str,
    root: os.PathLike[str] | str,
    *,
    api_key: str = DUMMY_KEY,
    max_retries: int = 0,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Build the CLI's whole environment, with ``HOME`` and ``TMPDIR`` created under ``root``.

    ``base_url`` must point at a loopback host, so a test can never reach a real API.
    ``max_retries`` keeps error tests fast (the CLI's default of 10 retries takes minutes).
    ``extra`` is applied last.
    """
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    base = Path(root).absolute()
    env = {
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": api_key,
        "HOME": str(base / "home"),
        "TMPDIR": str(base / "tmp"),
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        **_QUIET,
        "CLAUDE_CODE_MAX_RETRIES": str(max_retries),
        "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": "1",
        **(extra or {}),
    }
    _require_loopback(env["ANTHROPIC_BASE_URL"])
    for directory in (env["HOME"], env["TMPDIR"]):
        Path(directory).mkdir(parents=True, exist_ok=True)
    return env


def _require_loopback(url: str) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not is_loopback(host):
        raise ValueError(
            f"test base URL must be http(s) on a loopback host (127.0.0.0/8, localhost, ::1), "
            f"got {url!r}"
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def test_cli_path() -> Path | None:
    """The CLI binary named by ``$CLAUDE_UNIFIED_TEST_CLI`` (the pinned version), if set."""
    value = os.environ.get(TEST_CLI_ENV_VAR, "").strip()
    return Path(value).expanduser() if value else None


test_cli_path.__test__ = False  # type: ignore[attr-defined]  # a helper, not a pytest test


class CliTestEnv(msgspec.Struct, frozen=True):
    """An isolated environment for the real CLI: its binary, env, working dir and fake server."""

    cli_path: str
    env: dict[str, str]
    cwd: str
    server: FakeAnthropicServer

    def config(self, **overrides: Any) -> Config:
        """A ``Config`` for the CLI backend in this environment (overrides win)."""
        values: dict[str, Any] = {
            "backend": "cli",
            "cli_path": self.cli_path,
            "env": self.env,
            "inherit_env": False,  # exactly ``env``: nothing of the developer's reaches the CLI
            "cwd": self.cwd,
        }
        values.update(overrides)
        from .._config import Config

        return Config(**values)
