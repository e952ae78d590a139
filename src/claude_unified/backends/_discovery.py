"""Finding the ``claude`` executable and checking its version.

Search order: an explicit path, then ``$CLAUDE_UNIFIED_CLI_PATH``, then ``PATH``, then the
places the installers use. An explicit path or the env var is a statement of intent, so when
it is wrong we fail instead of quietly picking some other binary.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

import anyio

from claude_unified._exceptions import CLINotFoundError, ProcessError

__all__ = [
    "CLI_PATH_ENV_VAR",
    "MIN_CLI_VERSION",
    "check_version",
    "cli_version",
    "find_cli",
    "parse_version",
]

CLI_PATH_ENV_VAR = "CLAUDE_UNIFIED_CLI_PATH"
MIN_CLI_VERSION = (2, 1, 0)

INSTALL_HINT = (
    "Install it with `npm install -g @anthropic-ai/claude-code`, or pass cli_path= "
    f"(or set ${CLI_PATH_ENV_VAR}) to point at an existing binary."
)

# On Windows npm puts a `.cmd` shim on PATH; run the real `claude.exe` instead.
_EXE_NAME = "claude.exe" if sys.platform == "win32" else "claude"
_SYSTEM_LOCATIONS: tuple[Path, ...] = () if sys.platform == "win32" else (Path("/usr/local/bin"),)
_VERSION_TIMEOUT = 10.0
_VERSION_PATTERN = re.compile(r"(\d+)\.(\d+)\.(\d+)")

Version = tuple[int, int, int]
_version_cache: dict[tuple[str, int], Version] = {}


def find_cli(
    explicit: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> Path:
    """Locate the Claude Code CLI; raise ``CLINotFoundError`` listing every place searched.

    ``env`` (default ``os.environ``) supplies ``$CLAUDE_UNIFIED_CLI_PATH``, ``PATH`` and
    ``HOME``.
    """
    environ = os.environ if env is None else env
    if explicit is not None:
        return _require_executable(Path(explicit), "cli_path")
    configured = environ.get(CLI_PATH_ENV_VAR)
    if configured:
        return _require_executable(Path(configured), f"${CLI_PATH_ENV_VAR}")
    search_path = environ.get("PATH", "")
    found = shutil.which(_EXE_NAME, path=search_path)
    if found:
        return Path(found).absolute()
    candidates = _known_locations(environ)
    for candidate in candidates:
        if _is_executable(candidate):
            return candidate
    searched = [
        f"${CLI_PATH_ENV_VAR} (not set)",
        f"{_EXE_NAME!r} on PATH ({search_path or 'empty'})",
        *(str(candidate) for candidate in candidates),
    ]
    listing = "\n".join(f"  - {place}" for place in searched)
    raise CLINotFoundError(
        f"Claude Code CLI not found. Searched:\n{listing}\n{INSTALL_HINT}", searched=searched
    )


def _known_locations(environ: Mapping[str, str]) -> list[Path]:
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    if sys.platform == "win32":
        package_exe = Path("node_modules", "@anthropic-ai", "claude-code", "bin", _EXE_NAME)
        appdata = Path(environ.get("APPDATA") or home / "AppData" / "Roaming")
        return [
            home / ".claude" / "local" / _EXE_NAME,
            appdata / "npm" / package_exe,
            home / package_exe,
            Path.cwd() / package_exe,
        ]
    return [
        home / ".claude" / "local" / _EXE_NAME,
        home / ".local" / "bin" / _EXE_NAME,
        home / ".npm-global" / "bin" / _EXE_NAME,
        *(directory / _EXE_NAME for directory in _SYSTEM_LOCATIONS),
        home / "node_modules" / ".bin" / _EXE_NAME,
        Path.cwd() / "node_modules" / ".bin" / _EXE_NAME,
    ]


def _require_executable(path: Path, source: str) -> Path:
    path = path.expanduser().absolute()
    if not path.exists():
        problem = "does not exist"
    elif not _is_executable(path):
        problem = "is not an executable file"
    else:
        return path
    raise CLINotFoundError(
        f"Claude Code CLI from {source} {problem}: {path}\n{INSTALL_HINT}", searched=[str(path)]
    )


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def parse_version(text: str) -> Version:
    """Read ``major.minor.patch`` from ``claude --version`` output (``2.1.330 (Claude Code)``)."""
    match = _VERSION_PATTERN.search(text)
    if match is None:
        raise ValueError(f"no version number in {text!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def check_version(version: Version, minimum: Version = MIN_CLI_VERSION) -> None:
    """Raise ``ProcessError`` if ``version`` is older than ``minimum``."""
    if version < minimum:
        raise ProcessError(
            f"Claude Code CLI {_format(version)} is older than the minimum supported "
            f"{_format(minimum)}; upgrade with `npm install -g @anthropic-ai/claude-code@latest`"
        )


async def cli_version(
    path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
) -> Version:
    """The version reported by ``path --version``, cached per (real path, mtime)."""
    target = anyio.Path(path)
    try:
        stat = await target.stat()
        real = await target.resolve()
    except OSError as exc:
        raise CLINotFoundError(
            f"Claude Code CLI {os.fspath(path)} cannot be read: {exc.strerror or exc}",
            searched=[os.fspath(path)],
        ) from exc
    key = (str(real), stat.st_mtime_ns)
    if key not in _version_cache:
        _version_cache[key] = await _run_version(os.fspath(path), env)
    return _version_cache[key]


async def _run_version(path: str, env: Mapping[str, str] | None) -> Version:
    argv = [path, "--version"]
    try:
        with anyio.fail_after(_VERSION_TIMEOUT):
            result = await anyio.run_process(argv, check=False, env=env)
    except TimeoutError:
        raise ProcessError(
            f"`{path} --version` did not finish within {_VERSION_TIMEOUT:g} s", argv=argv
        ) from None
    except OSError as exc:
        raise ProcessError(f"could not run {path}: {exc.strerror or exc}", argv=argv) from exc
    stdout = result.stdout.decode("utf-8", errors="replace")
    if result.returncode != 0:
        raise ProcessError(
            f"`{path} --version` failed",
            exit_code=result.returncode,
            stderr_tail=result.stderr.decode("utf-8", errors="replace")[-4000:],
            argv=argv,
        )
    try:
        return parse_version(stdout)
    except ValueError as exc:
        raise ProcessError(f"`{path} --version` printed no version: {stdout!r}", argv=argv) from exc


def _format(version: Version) -> str:
    return ".".join(str(part) for part in version)
