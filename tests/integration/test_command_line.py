"""The ``claude-unified`` command, run as a subprocess against FakeAnthropicServer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

import claude_unified as cu
from claude_unified.testing import FakeAnthropicServer, error, reply, stall, tool_call
from claude_unified.testing.pytest_plugin import CliTestEnv


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as srv:
        yield srv


@pytest.fixture
def fake(server: FakeAnthropicServer) -> FakeAnthropicServer:
    server.reset()
    return server


def bare_env(**extra: str) -> dict[str, str]:
    """The environment with no credentials, no CLI on PATH and no project config."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "CLAUDE_UNIFIED_")) and k != "PATH"
    }
    env["PATH"] = os.path.dirname(sys.executable)
    env.update(extra)
    return env


def api_env(server: FakeAnthropicServer, **extra: str) -> dict[str, str]:
    values = {"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": server.url}
    return bare_env(**{**values, **extra})


def run(
    *args: str, env: dict[str, str], stdin: str | None = None, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claude_unified", *args],
        env=env,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


def test_demo_needs_no_credentials_and_no_cli(tmp_path: Path) -> None:
    done = run("demo", env=bare_env(NO_COLOR="1"), cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "2 + 3 = 5." in done.stdout
    assert "[tool] add" in done.stderr
    assert "[deny] Write" in done.stderr
    assert "\x1b[" not in done.stderr


def test_send_prints_the_reply(fake: FakeAnthropicServer) -> None:
    fake.queue(reply("Paris is the capital."))
    done = run("send", "Capital of France?", "--model", "claude-haiku-5-5", env=api_env(fake))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Paris is the capital.\n"
    body = fake.requests[-1].json
    assert body is not None
    assert body["model"] == "claude-haiku-5-5"
    assert body["messages"][-1]["content"] == "Capital of France?"


def test_prompt_from_stdin_and_system_flag(fake: FakeAnthropicServer) -> None:
    fake.queue(reply("ok"))
    done = run("send", "-", "--system", "Be terse.", env=api_env(fake), stdin="from stdin\n")
    assert done.returncode == 0, done.stderr
    body = fake.requests[-1].json
    assert body is not None
    assert body["messages"][-1]["content"] == "from stdin"  # no trailing newline
    assert body["system"][0]["text"] == "Be terse."


def test_stream_prints_text_as_it_arrives(fake: FakeAnthropicServer) -> None:
    fake.queue(reply("streamed words here"))
    done = run("stream", "hi", env=api_env(fake))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "streamed words here"


def test_json_lines_are_events(fake: FakeAnthropicServer) -> None:
    fake.queue(tool_call("add", {"a": 1, "b": 2}), reply("3"))
    done = run("stream", "add", "--json", "--allow", "add", env=api_env(fake))
    events = [cu.decode_event(line) for line in done.stdout.splitlines()]
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "SessionStarted"
    assert "ToolUse" in kinds
    decision = next(e for e in events if isinstance(e, cu.PermissionDecision))
    # `add` is not a tool of the command line, so allowing it leads to an is_error result
    assert decision.behavior == "allow"
    assert isinstance(events[-1], cu.Result)


def test_events_command_prints_every_event(fake: FakeAnthropicServer) -> None:
    fake.queue(reply("x"))
    done = run("events", "hi", env=api_env(fake))
    assert done.returncode == 0, done.stderr
    events = [cu.decode_event(line) for line in done.stdout.splitlines()]
    assert isinstance(events[-1], cu.Result)
    assert events[-1].text == "x"


def test_events_raw_prints_wire_frames(fake: FakeAnthropicServer) -> None:
    fake.queue(reply("raw text"))
    done = run("events", "hi", "--raw", env=api_env(fake))
    assert done.returncode == 0, done.stderr
    frames = [msgspec.json.decode(line) for line in done.stdout.splitlines()]
    kinds = [f["frame"] for f in frames]
    assert kinds[0] == "ResponseStarted"
    assert "MessageStartEvent" in kinds
    assert kinds[-1] == "MessageStopEvent"
    deltas = [f["value"]["delta"]["text"] for f in frames if f["frame"] == "ContentBlockDeltaEvent"]
    assert "".join(deltas) == "raw text"


def test_count_tokens(fake: FakeAnthropicServer) -> None:
    done = run("count-tokens", "how many tokens is this?", env=api_env(fake))
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 0
    assert fake.requests[-1].path == "/v1/messages/count_tokens"


def test_failed_turn_exits_1_with_one_line(fake: FakeAnthropicServer) -> None:
    fake.on("fail", error(529))
    done = run("send", "fail", env=api_env(fake, CLAUDE_UNIFIED_MAX_RETRIES="0"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("claude-unified: error:")
    assert "529" in lines[0]


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    done = run("send", "hi", "--config", str(tmp_path / "nope.toml"), env=bare_env())
    assert done.returncode == 2
    assert "nope.toml does not exist" in done.stderr


def test_configuration_error_exits_2() -> None:
    done = run("send", "hi", env=bare_env(CLAUDE_UNIFIED_MAX_TOKENS="many"))
    assert done.returncode == 2
    assert "max_tokens" in done.stderr
    assert "CLAUDE_UNIFIED_MAX_TOKENS" in done.stderr


def test_no_backend_usable_says_what_to_set() -> None:
    done = run("send", "hi", env=bare_env())
    assert done.returncode == 2
    assert "ANTHROPIC_API_KEY" in done.stderr
    assert "claude" in done.stderr


def test_version_flag() -> None:
    done = run("--version", env=bare_env())
    assert done.returncode == 0
    assert done.stdout.strip() == f"claude-unified {cu.__version__}"


def test_repl_multi_turn_with_a_permission_prompt_answered(
    fake: FakeAnthropicServer, tmp_path: Path
) -> None:
    fake.on("first", reply("hello from turn one"))
    fake.on("write please", tool_call("Write", {"file_path": "x.txt", "content": "hi"}))
    done = run(
        "repl",
        "--files",
        env=api_env(fake, NO_COLOR="1"),
        stdin="first\nwrite please\ny\n/exit\n",
        cwd=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert "hello from turn one" in done.stdout
    assert "Allow Write" in done.stderr
    assert "[allow] Write (by user)" in done.stderr
    # with --files, on the API path the repl brings Write, confined to its working directory
    assert (tmp_path / "x.txt").read_text() == "hi"
    assert "TOOL_RESULT_SEEN is_error=false" in done.stdout


def test_write_needs_allow_on_the_command_line(fake: FakeAnthropicServer, tmp_path: Path) -> None:
    fake.on("save it", tool_call("Write", {"file_path": "y.txt", "content": "z"}))
    denied = run("send", "save it", "--files", env=api_env(fake), cwd=str(tmp_path))
    assert not (tmp_path / "y.txt").exists()
    assert "[ask] Write" in denied.stderr
    allowed = run(
        "send", "save it", "--files", "--allow", "Write", env=api_env(fake), cwd=str(tmp_path)
    )
    assert allowed.returncode == 0, allowed.stderr
    assert (tmp_path / "y.txt").read_text() == "z"


def test_no_file_is_reachable_without_files(fake: FakeAnthropicServer, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("TOP-SECRET-CONTENT")
    fake.on("read it", tool_call("Read", {"file_path": str(tmp_path / "secret.txt")}))
    done = run("send", "read it", "--json", env=api_env(fake), cwd=str(tmp_path))
    results = [
        e for e in map(msgspec.json.decode, done.stdout.splitlines()) if e["type"] == "tool_result"
    ]
    assert results, done.stdout
    assert all(r["is_error"] for r in results)
    assert "TOP-SECRET-CONTENT" not in done.stdout + done.stderr
    started = next(
        e
        for e in map(msgspec.json.decode, done.stdout.splitlines())
        if e["type"] == "session_started"
    )
    assert started["tools"] == []  # nothing was offered to the model
    read = run("send", "read it", "--files", "--json", env=api_env(fake), cwd=str(tmp_path))
    assert "TOP-SECRET-CONTENT" in read.stdout  # asked for: Read runs by the default policy


def test_repl_ctrl_c_interrupts_the_turn_not_the_repl(fake: FakeAnthropicServer) -> None:
    fake.on("slow", reply("begins and then stalls").with_fault(stall(30, after_events=4)))
    fake.on("after", reply("still here"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_unified", "repl"],
        env=api_env(fake, NO_COLOR="1"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("slow\n")
    proc.stdin.flush()
    assert proc.stdout.read(6) == "begins"  # the turn is streaming, then stalls
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate("after\n", timeout=30)  # closes stdin: the repl then ends
    assert proc.returncode == 0, err
    assert "[interrupting]" in err
    assert "still here" in out


def test_doctor_reports_without_printing_secrets(fake: FakeAnthropicServer) -> None:
    env = api_env(fake, ANTHROPIC_API_KEY="sk-ant-doctor-secret", CLAUDE_UNIFIED_MODEL="m1")
    done = run("doctor", env=env)
    assert done.returncode == 0, done.stderr
    assert "sk-ant-doctor-secret" not in done.stdout
    assert "API backend: usable" in done.stdout
    assert "from environment variable ANTHROPIC_API_KEY" in done.stdout
    assert "model = 'm1'  [from environment variable CLAUDE_UNIFIED_MODEL]" in done.stdout
    assert "CLI backend: not usable" in done.stdout  # PATH has no claude here


def test_doctor_json_and_cli_found(fake: FakeAnthropicServer, claude_cli_env: CliTestEnv) -> None:
    env = api_env(fake, CLAUDE_UNIFIED_CLI_PATH=claude_cli_env.cli_path)
    done = run("doctor", "--json", env=env)
    report = msgspec.json.decode(done.stdout)
    assert report["cli"]["usable"] is True
    assert "2.1.330" in report["cli"]["details"][0]
    assert report["auto_backend"] == "api"
