"""The transport layer against the real, pinned Claude Code CLI, plus the isolated test env."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from claude_unified.backends._discovery import check_version, cli_version, find_cli
from claude_unified.backends._process import ManagedProcess
from claude_unified.testing import _cli_env
from claude_unified.testing._cli_env import isolated_cli_env

PINNED = (2, 1, 330)
PINNED_DIR = Path.home() / ".cache" / "claude-unified" / "cli-2.1.330"
INSTALL = (
    "the pinned Claude Code CLI 2.1.330 was not found; install it with "
    f"`npm install --prefix {PINNED_DIR} @anthropic-ai/claude-code@2.1.330` "
    "or point $CLAUDE_UNIFIED_TEST_CLI at it"
)
# Nothing listens here; none of these tests sends a request.
OFFLINE_URL = "http://127.0.0.1:9"


@pytest.fixture
def pinned_cli() -> Path:
    candidates = [_cli_env.test_cli_path(), PINNED_DIR / "node_modules" / ".bin" / "claude"]
    for candidate in candidates:
        if candidate is not None and candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(INSTALL)
    pytest.skip(INSTALL)


def process_group(pgid: int) -> set[int]:
    members = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(stat.rpartition(")")[2].split()[2]) == pgid:
            members.add(int(entry.name))
    return members


@pytest.mark.cli
@pytest.mark.anyio
async def test_version_line_through_managed_process(pinned_cli: Path, tmp_path: Path) -> None:
    env = isolated_cli_env(OFFLINE_URL, tmp_path)
    async with await ManagedProcess.start(
        [str(pinned_cli), "--version"], env=env, cwd=tmp_path
    ) as proc:
        assert await proc.receive_line() == b"2.1.330 (Claude Code)"
        assert await proc.receive_line() is None
        assert await proc.wait() == 0
    assert proc.returncode == 0


@pytest.mark.cli
@pytest.mark.anyio
async def test_cli_version_of_the_pinned_binary(pinned_cli: Path) -> None:
    version = await cli_version(pinned_cli)
    assert version == PINNED
    check_version(version)


@pytest.mark.cli
def test_find_cli_accepts_the_pinned_binary(pinned_cli: Path) -> None:
    assert find_cli(pinned_cli) == pinned_cli.absolute()
    assert find_cli(env={"CLAUDE_UNIFIED_CLI_PATH": str(pinned_cli)}) == pinned_cli.absolute()


@pytest.mark.cli
@pytest.mark.anyio
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_idle_session_exits_cleanly_on_close(pinned_cli: Path, tmp_path: Path) -> None:
    env = isolated_cli_env(OFFLINE_URL, tmp_path)
    argv = [
        str(pinned_cli),
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--no-session-persistence",
    ]
    proc = await ManagedProcess.start(argv, env=env, cwd=tmp_path)
    assert await proc.aclose(grace=10) == 0  # stdin EOF alone ends an idle session
    assert process_group(proc.pid) == set()
    assert await proc.receive_line() is None
    assert (tmp_path / "home").is_dir()


# --- isolated_cli_env (no CLI needed) ---------------------------------------------------------


def test_isolated_env_is_built_from_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-real-user-key")
    monkeypatch.setenv("CLAUDECODE", "1")
    monkeypatch.setenv("PATH", "/opt/tools:/usr/bin")
    env = isolated_cli_env("http://127.0.0.1:8123", tmp_path / "run", max_retries=2)
    assert env == {
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:8123",
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "HOME": str(tmp_path / "run" / "home"),
        "TMPDIR": str(tmp_path / "run" / "tmp"),
        "PATH": "/opt/tools:/usr/bin",
        "LANG": "C.UTF-8",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": "2",
        "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": "1",
    }
    assert Path(env["HOME"]).is_dir()
    assert Path(env["TMPDIR"]).is_dir()


def test_isolated_env_extra_and_api_key(tmp_path: Path) -> None:
    env = isolated_cli_env(
        "http://localhost:1",
        str(tmp_path),
        api_key="sk-ant-other",
        extra={"CLAUDE_CODE_MAX_RETRIES": "1", "API_TIMEOUT_MS": "5000"},
    )
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-other"
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "1"
    assert env["API_TIMEOUT_MS"] == "5000"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.5.6.7",
        "https://localhost:443/prefix",
        "http://[::1]:9000",
        "http://[::ffff:127.0.0.1]:9000",
    ],
)
def test_loopback_urls_are_accepted(tmp_path: Path, url: str) -> None:
    assert isolated_cli_env(url, tmp_path)["ANTHROPIC_BASE_URL"] == url


@pytest.mark.parametrize(
    "url",
    [
        "https://api.anthropic.com",
        "http://10.0.0.1:8080",
        "http://0.0.0.0:8080",
        "http://localhost.example.com",
        "http://[::2]:80",
        "ftp://127.0.0.1",
        "127.0.0.1:8080",
        "",
    ],
)
def test_non_loopback_urls_are_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        isolated_cli_env(url, tmp_path / "root")
    assert not (tmp_path / "root").exists()


def test_extra_cannot_point_the_cli_off_the_machine(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        isolated_cli_env(
            "http://127.0.0.1:1", tmp_path, extra={"ANTHROPIC_BASE_URL": "https://example.com"}
        )


def test_negative_retries_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_retries"):
        isolated_cli_env("http://127.0.0.1:1", tmp_path, max_retries=-1)


def test_test_cli_path_reads_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAUDE_UNIFIED_TEST_CLI", raising=False)
    assert _cli_env.test_cli_path() is None
    monkeypatch.setenv("CLAUDE_UNIFIED_TEST_CLI", "  ")
    assert _cli_env.test_cli_path() is None
    monkeypatch.setenv("CLAUDE_UNIFIED_TEST_CLI", "/opt/claude/bin/claude")
    assert _cli_env.test_cli_path() == Path("/opt/claude/bin/claude")
