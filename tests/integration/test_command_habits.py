"""Command-line habits: piped input, per-subcommand flags, the echoing fake backend, shell
completion, an announced doctor probe, and the repl driven through a pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from claude_unified.testing import FakeAnthropicServer, reply, tool_call

from .test_command_line import api_env, bare_env, run


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as srv:
        yield srv


@pytest.fixture
def fake(server: FakeAnthropicServer) -> FakeAnthropicServer:
    server.reset()
    return server


def sent_prompt(server: FakeAnthropicServer) -> object:
    body = server.requests[-1].json
    assert body is not None
    return body["messages"][-1]["content"]


# --------------------------------------------------------------------------- standard input


def test_piped_stdin_is_the_prompt_without_its_trailing_newline(fake: FakeAnthropicServer) -> None:
    done = run("send", env=api_env(fake), stdin="hi\n")
    assert done.returncode == 0, done.stderr
    assert sent_prompt(fake) == "hi"
    assert done.stdout == "ECHO: hi\n"


def test_piped_stdin_is_the_context_of_a_prompt(fake: FakeAnthropicServer) -> None:
    done = run("send", "summarize", env=api_env(fake), stdin="line one\nline two\n\n")
    assert done.returncode == 0, done.stderr
    assert sent_prompt(fake) == "line one\nline two\n\nsummarize"


def test_a_dash_still_reads_stdin_and_a_plain_prompt_ignores_an_empty_one(
    fake: FakeAnthropicServer,
) -> None:
    assert run("stream", "-", env=api_env(fake), stdin="from a dash\r\n").returncode == 0
    assert sent_prompt(fake) == "from a dash"
    assert run("send", "alone", env=api_env(fake), stdin="").returncode == 0
    assert sent_prompt(fake) == "alone"


@pytest.mark.parametrize("stdin", [None, "", "\n\n"])
def test_no_prompt_at_all_is_a_usage_error(stdin: str | None) -> None:
    done = run("send", "--backend", "fake", env=bare_env(), stdin=stdin)
    assert done.returncode == 2
    assert "no prompt: give PROMPT, or pipe it in" in done.stderr
    assert done.stdout == ""


# --------------------------------------------------------------------------- flags


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["count-tokens", "hi", "--allow", "Read"], "--allow"),
        (["count-tokens", "hi", "--max-turns", "3"], "--max-turns"),
        (["doctor", "--system", "terse"], "--system"),
        (["doctor", "--allow", "Read"], "--allow"),
        (["events", "hi", "--json"], "--json"),
        (["repl", "--json"], "--json"),
        (["demo", "--model", "m"], "--model"),
        (["batch", "in.jsonl", "-o", "out.jsonl", "--json"], "--json"),
    ],
)
def test_subcommands_refuse_flags_that_mean_nothing_to_them(argv: list[str], flag: str) -> None:
    done = run(*argv, env=bare_env())
    assert done.returncode == 2
    assert f"unrecognized arguments: {flag}" in done.stderr


def test_the_flags_that_mean_something_still_work(fake: FakeAnthropicServer) -> None:
    argv = ["send", "hi", "--system", "terse", "--allow", "Read", "--max-turns", "2", "--json"]
    done = run(*argv, env=api_env(fake))
    assert done.returncode == 0, done.stderr
    body = fake.requests[-1].json
    assert body is not None
    assert body["system"][0]["text"] == "terse"
    assert '"type":"result"' in done.stdout


# --------------------------------------------------------------------------- the fake backend


def test_backend_fake_echoes_with_no_credentials_and_no_cli() -> None:
    done = run("send", "--backend", "fake", "hello there", env=bare_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello there\n"
    piped = run("stream", "--backend", "fake", env=bare_env(), stdin="from a pipe\n")
    assert piped.stdout.strip() == "from a pipe"


# --------------------------------------------------------------------------- completion


def _complete(script: str, *words: str) -> list[str]:
    line = " ".join(f"'{w}'" for w in words)
    program = (
        f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _claude_unified; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(
        ["bash", "--norc", "-c", program], capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_knows_subcommands_and_their_own_flags() -> None:
    done = run("completion", "bash", env=bare_env())
    assert done.returncode == 0, done.stderr
    script = done.stdout
    assert "complete -o default -F _claude_unified claude-unified" in script
    assert set(_complete(script, "claude-unified", "")) >= {
        "send",
        "stream",
        "events",
        "count-tokens",
        "repl",
        "doctor",
        "demo",
        "batch",
        "completion",
    }
    assert _complete(script, "claude-unified", "co") == ["count-tokens", "completion"]
    count = _complete(script, "claude-unified", "count-tokens", "--")
    assert "--json" in count and "--model" in count and "--allow" not in count
    assert "--offline" in _complete(script, "claude-unified", "doctor", "--o")
    assert _complete(script, "claude-unified", "send", "--backend", "") == [
        "auto",
        "api",
        "cli",
        "fake",
    ]
    shells = _complete(script, "claude-unified", "completion", "")
    assert [w for w in shells if not w.startswith("-")] == ["bash", "zsh"]


def test_zsh_completion_goes_through_bashcompinit() -> None:
    done = run("completion", "zsh", env=bare_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("autoload -U +X bashcompinit && bashcompinit\n")
    assert "_claude_unified()" in done.stdout
    if shutil.which("zsh"):
        subprocess.run(["zsh", "-n", "-c", done.stdout], check=True, timeout=30)
    assert run("completion", "fish", env=bare_env()).returncode == 2


# --------------------------------------------------------------------------- doctor


def _pending(listener: socket.socket) -> bool:
    ready, _, _ = select.select([listener], [], [], 0)
    return bool(ready)


def test_doctor_announces_its_probe_and_offline_makes_none() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        env = bare_env(ANTHROPIC_API_KEY="sk-ant-doctor", ANTHROPIC_BASE_URL=url)
        offline = run("doctor", "--offline", env=env)
        assert offline.returncode == 0, offline.stderr
        assert "not checked (--offline)" in offline.stdout
        assert "connecting to" not in offline.stderr
        assert not _pending(listener)  # nothing connected
        probed = run("doctor", env=env)
        assert probed.returncode == 0, probed.stderr
        port = listener.getsockname()[1]
        assert f"connecting to 127.0.0.1:{port} (TCP only)" in probed.stderr
        assert "--offline skips it" in probed.stderr
        assert _pending(listener)  # and it did connect, after saying so
        assert "sk-ant-doctor" not in probed.stdout + probed.stderr


# --------------------------------------------------------------------------- repl on a terminal


def _own_terminal() -> None:
    """In the child: a new session whose controlling terminal is the pty (stdin), so Ctrl-C
    typed into it is a SIGINT, as on a real terminal."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """The repl on a pseudo-terminal: what it shows, and keys typed into it."""

    def __init__(self, env: dict[str, str], cwd: Path):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "claude_unified", "repl"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "dumb", "NO_COLOR": "1"},
            cwd=cwd,
            preexec_fn=_own_terminal,  # noqa: PLW1509  # the only way to get a controlling tty
        )
        os.close(slave)
        self.seen = ""
        self.looked = 0  # how much of the screen earlier expect() calls have gone past

    def expect(self, text: str, within: float = 60) -> str:
        """Wait for ``text`` to appear after what earlier calls saw; the screen up to it."""
        deadline = time.monotonic() + within
        while text not in self.seen[self.looked :]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"never saw {text!r}; the screen so far:\n{self.seen}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the other side closed
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the repl ended before {text!r}:\n{self.seen}")
                self.seen += chunk.decode("utf-8", "replace")
        self.looked = self.seen.index(text, self.looked) + len(text)
        return self.seen[: self.looked]

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait(self, within: float = 30) -> int:
        """The exit code; what the repl prints meanwhile is read, as a terminal would."""
        deadline = time.monotonic() + within
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"the repl did not exit; the screen:\n{self.seen}")
            self.drain()
        self.drain()
        return self.proc.returncode

    def drain(self) -> None:
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                return
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.seen += chunk.decode("utf-8", "replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)


@pytest.fixture
def terminal(
    fake: FakeAnthropicServer, tmp_path: Path
) -> Iterator[tuple[Terminal, FakeAnthropicServer, Path]]:
    state = tmp_path / "state"
    env = api_env(fake, XDG_STATE_HOME=str(state), HOME=str(tmp_path))
    term = Terminal(env, tmp_path)
    try:
        yield term, fake, state
    finally:
        term.close()


def test_repl_banner_turns_history_and_ctrl_d(
    terminal: tuple[Terminal, FakeAnthropicServer, Path],
) -> None:
    term, _, state = terminal
    screen = term.expect("> ")
    banner = [line for line in screen.splitlines() if "repl:" in line]
    assert len(banner) == 1
    assert "backend api, model claude-sonnet-5-5" in banner[0]
    term.type("first question\r")
    term.expect("ECHO: first question")
    term.expect("> ")
    term.type("\x04")  # Ctrl-D at the prompt
    assert term.wait() == 0
    assert term.seen.endswith("\n")  # the shell's prompt starts on a line of its own
    history = (state / "claude-unified" / "history").read_text()
    assert "first question" in history


def test_repl_ctrl_c_at_the_prompt_leaves_promptly(
    terminal: tuple[Terminal, FakeAnthropicServer, Path],
) -> None:
    term, _, _ = terminal
    term.expect("> ")
    term.type("\x03")  # Ctrl-C at the prompt
    assert term.wait() == 0
    assert "interrupted" not in term.seen
    assert "Traceback" not in term.seen


def test_repl_recalls_history_with_the_up_arrow(
    terminal: tuple[Terminal, FakeAnthropicServer, Path],
) -> None:
    term, fake, _ = terminal
    term.expect("> ")
    term.type("say pelican\r")
    term.expect("ECHO: say pelican")
    term.expect("> ")
    term.type("\x1b[A\r")  # up arrow: the previous line, sent again
    term.expect("ECHO: say pelican\r\n")
    deadline = time.monotonic() + 30
    while len(fake.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r.last_user_text for r in fake.requests[-2:]] == ["say pelican", "say pelican"]
    term.type("/exit\r")
    assert term.wait() == 0


def test_repl_asks_before_it_says_anything_about_a_decision(
    terminal: tuple[Terminal, FakeAnthropicServer, Path],
) -> None:
    term, fake, _ = terminal
    fake.on("write please", tool_call("Write", {"file_path": "x.txt", "content": "hi"}))
    fake.on("TOOL_RESULT", reply("done"))
    term.expect("> ")
    term.type("write please\r")
    screen = term.expect("[y/N] ")
    asked = screen[screen.rindex("write please") :]
    assert "denied" not in asked and "[ask]" not in asked
    term.type("n\r")
    term.expect("[deny] Write (by user)")
    term.expect("> ")
    term.type("\x04")
    assert term.wait() == 0
