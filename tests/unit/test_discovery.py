"""Locating the CLI (search order, error listing) and checking its version."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from claude_unified._exceptions import CLINotFoundError, ProcessError
from claude_unified.backends import _discovery
from claude_unified.backends._discovery import (
    MIN_CLI_VERSION,
    check_version,
    cli_version,
    find_cli,
    parse_version,
)


def fake_cli(path: Path, body: str = 'echo "2.1.330 (Claude Code)"') -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An env with an empty PATH dir and a fresh HOME; cwd and system dirs inside tmp_path."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setattr(_discovery, "_SYSTEM_LOCATIONS", (tmp_path / "usr-local-bin",))
    return {"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path / "home")}


def test_explicit_path_beats_everything(tmp_path: Path, sandbox: dict[str, str]) -> None:
    explicit = fake_cli(tmp_path / "custom" / "claude")
    from_env = fake_cli(tmp_path / "env" / "claude")
    fake_cli(tmp_path / "bin" / "claude")
    env = {**sandbox, "CLAUDE_UNIFIED_CLI_PATH": str(from_env)}
    assert find_cli(str(explicit), env=env) == explicit
    assert find_cli(explicit, env=env) == explicit


def test_env_var_beats_path(tmp_path: Path, sandbox: dict[str, str]) -> None:
    from_env = fake_cli(tmp_path / "env" / "claude")
    fake_cli(tmp_path / "bin" / "claude")
    assert find_cli(env={**sandbox, "CLAUDE_UNIFIED_CLI_PATH": str(from_env)}) == from_env


def test_path_beats_known_locations(tmp_path: Path, sandbox: dict[str, str]) -> None:
    on_path = fake_cli(tmp_path / "bin" / "claude")
    fake_cli(tmp_path / "home" / ".claude" / "local" / "claude")
    assert find_cli(env=sandbox) == on_path


def test_path_skips_files_that_are_not_executable(tmp_path: Path, sandbox: dict[str, str]) -> None:
    (tmp_path / "bin" / "claude").write_text("not a program")
    local = fake_cli(tmp_path / "home" / ".claude" / "local" / "claude")
    assert find_cli(env=sandbox) == local


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ("home/.claude/local/claude", "home/.local/bin/claude"),
        ("home/.local/bin/claude", "home/.npm-global/bin/claude"),
        ("home/.npm-global/bin/claude", "usr-local-bin/claude"),
        ("usr-local-bin/claude", "home/node_modules/.bin/claude"),
        ("home/node_modules/.bin/claude", "work/node_modules/.bin/claude"),
    ],
)
def test_known_locations_order(
    tmp_path: Path, sandbox: dict[str, str], earlier: str, later: str
) -> None:
    fake_cli(tmp_path / later)
    assert find_cli(env=sandbox) == tmp_path / later
    fake_cli(tmp_path / earlier)
    assert find_cli(env=sandbox) == tmp_path / earlier


def test_not_found_lists_every_place_and_how_to_install(
    tmp_path: Path, sandbox: dict[str, str]
) -> None:
    with pytest.raises(CLINotFoundError) as excinfo:
        find_cli(env=sandbox)
    message = str(excinfo.value)
    expected_places = [
        "$CLAUDE_UNIFIED_CLI_PATH (not set)",
        str(tmp_path / "home" / ".claude" / "local" / "claude"),
        str(tmp_path / "home" / ".local" / "bin" / "claude"),
        str(tmp_path / "home" / ".npm-global" / "bin" / "claude"),
        str(tmp_path / "usr-local-bin" / "claude"),
        str(tmp_path / "home" / "node_modules" / ".bin" / "claude"),
        str(tmp_path / "work" / "node_modules" / ".bin" / "claude"),
    ]
    for place in expected_places:
        assert place in excinfo.value.searched
        assert f"  - {place}" in message
    assert any(str(tmp_path / "bin") in place for place in excinfo.value.searched)
    assert "npm install -g @anthropic-ai/claude-code" in message
    assert "cli_path" in message
    assert isinstance(excinfo.value, ProcessError)


def test_missing_explicit_path_says_so(tmp_path: Path, sandbox: dict[str, str]) -> None:
    fake_cli(tmp_path / "bin" / "claude")  # must not be used as a fallback
    with pytest.raises(CLINotFoundError, match="cli_path does not exist") as excinfo:
        find_cli(tmp_path / "nope", env=sandbox)
    assert excinfo.value.searched == (str(tmp_path / "nope"),)


def test_explicit_path_that_is_not_executable_says_so(
    tmp_path: Path, sandbox: dict[str, str]
) -> None:
    target = tmp_path / "claude"
    target.write_text("data")
    with pytest.raises(CLINotFoundError, match="is not an executable file"):
        find_cli(target, env=sandbox)
    with pytest.raises(CLINotFoundError, match="is not an executable file"):
        find_cli(tmp_path, env=sandbox)  # a directory


def test_bad_env_var_is_an_error_not_a_fallback(tmp_path: Path, sandbox: dict[str, str]) -> None:
    fake_cli(tmp_path / "bin" / "claude")
    env = {**sandbox, "CLAUDE_UNIFIED_CLI_PATH": str(tmp_path / "gone")}
    with pytest.raises(CLINotFoundError, match=r"\$CLAUDE_UNIFIED_CLI_PATH does not exist"):
        find_cli(env=env)


# --- versions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("2.1.330 (Claude Code)\n", (2, 1, 330)),
        ("2.1.0", (2, 1, 0)),
        ("claude 10.20.30-beta.1", (10, 20, 30)),
    ],
)
def test_parse_version(output: str, expected: tuple[int, int, int]) -> None:
    assert parse_version(output) == expected


@pytest.mark.parametrize("output", ["", "Claude Code", "2.1", "version two"])
def test_parse_version_rejects_garbage(output: str) -> None:
    with pytest.raises(ValueError, match="no version number"):
        parse_version(output)


def test_check_version() -> None:
    assert MIN_CLI_VERSION == (2, 1, 0)
    for fine in [(2, 1, 0), (2, 1, 330), (2, 2, 0), (3, 0, 0)]:
        check_version(fine)
    for old in [(2, 0, 99), (1, 9, 999), (0, 0, 1)]:
        with pytest.raises(ProcessError, match=r"older than the minimum supported 2\.1\.0"):
            check_version(old)
    with pytest.raises(ProcessError, match=r"Claude Code CLI 2\.0\.99 is older"):
        check_version((2, 0, 99))


@pytest.mark.anyio
async def test_cli_version_runs_once_per_binary_and_mtime(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    cli = fake_cli(tmp_path / "claude", f'echo x >> {calls}; echo "2.1.330 (Claude Code)"')
    assert await cli_version(cli) == (2, 1, 330)
    assert await cli_version(str(cli)) == (2, 1, 330)
    assert calls.read_text().count("x") == 1
    stat = cli.stat()
    os.utime(cli, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert await cli_version(cli) == (2, 1, 330)
    assert calls.read_text().count("x") == 2


@pytest.mark.anyio
async def test_cli_version_failure_carries_exit_code_and_stderr(tmp_path: Path) -> None:
    cli = fake_cli(tmp_path / "claude", 'echo "broken install" >&2; exit 2')
    with pytest.raises(ProcessError, match="--version` failed") as excinfo:
        await cli_version(cli)
    assert excinfo.value.exit_code == 2
    assert "broken install" in excinfo.value.stderr_tail


@pytest.mark.anyio
async def test_cli_version_without_a_number(tmp_path: Path) -> None:
    with pytest.raises(ProcessError, match="printed no version"):
        await cli_version(fake_cli(tmp_path / "claude", "echo hello"))


@pytest.mark.anyio
async def test_cli_version_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_discovery, "_VERSION_TIMEOUT", 0.3)
    with pytest.raises(ProcessError, match="did not finish within"):
        await cli_version(fake_cli(tmp_path / "claude", "exec sleep 30"))


@pytest.mark.anyio
async def test_cli_version_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CLINotFoundError, match="cannot be read"):
        await cli_version(tmp_path / "nope")
