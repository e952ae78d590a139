"""The pytest plugin, exercised the way a user's test suite meets it (pytester)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

ONE_EVENT_LOOP = """
import pytest


@pytest.fixture
def anyio_backend():
    return "asyncio"
"""

CODE_UNDER_TEST = """
import claude_unified as cu


async def summarize(text: str) -> str:
    async with cu.Conversation(cu.Config.load()) as conv:
        return (await conv.ask(f"Summarize: {text}")).text


def summarize_sync(text: str) -> str:
    with cu.SyncConversation(cu.Config.load()) as conv:
        return conv.ask(f"Summarize: {text}").text
"""

FIXTURE_TESTS = """
import pytest

from claude_unified.backends import _registry
from claude_unified.testing import reply
from summarizer import summarize, summarize_sync


def test_claude_fake_reaches_sync_code(claude_fake):
    claude_fake.queue(reply("Summed up in a thread."))
    assert summarize_sync("long text") == "Summed up in a thread."


@pytest.mark.anyio
async def test_claude_fake(claude_fake):
    claude_fake.queue(reply("A short summary."), reply("Another."))
    assert await summarize("long text") == "A short summary."
    assert await summarize("more text") == "Another."
    assert [r.prompt for r in claude_fake.requests] == [
        "Summarize: long text",
        "Summarize: more text",
    ]


@pytest.mark.anyio
async def test_claude_function(claude_function):
    @claude_function
    def model(request):
        return f"{len(request.prompt)} characters"

    assert await summarize("abc") == "14 characters"

    @claude_function
    async def terse(request):
        return "ok"

    assert await summarize("abc") == "ok"
    assert terse is model
    assert len(model.requests) == 2


@pytest.mark.anyio
async def test_fake_anthropic_server(fake_anthropic_server):
    fake_anthropic_server.queue(reply("Served over HTTP."))
    assert await summarize("x") == "Served over HTTP."
    assert fake_anthropic_server.requests[-1].path == "/v1/messages"


def test_nothing_is_left_installed():
    assert _registry.process_overrides == []
    assert _registry.backend_override.get() is None
"""

GUARD_TESTS = """
import socket

import pytest

import claude_unified as cu
from claude_unified.backends import resolve_backend
from claude_unified.backends.api import ApiBackend
from claude_unified.backends.cli import CliBackend

attempts = []
REMOTE_API = dict(backend="api", api_key="x", base_url="https://api.anthropic.com")


@pytest.fixture(autouse=True)
def no_connections(monkeypatch):
    def connect(self, address):
        attempts.append(address)
        raise OSError("this test may not connect anywhere")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


@pytest.fixture
def cli(tmp_path):
    path = tmp_path / "claude"
    path.write_text("#!/bin/sh\\nexit 1\\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.anyio
async def test_api_off_the_machine_is_refused():
    async with cu.Conversation(cu.Config(**REMOTE_API)) as conv:
        await conv.ask("hi")


def test_cli_without_a_loopback_base_url_is_refused(cli):
    resolve_backend(cu.Config(backend="cli", cli_path=cli))


def test_cli_on_a_cloud_provider_is_refused(cli):
    env = {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "CLAUDE_CODE_USE_BEDROCK": "1"}
    resolve_backend(cu.Config(backend="cli", cli_path=cli, env=env))


def test_loopback_targets_pass(cli):
    api = cu.Config(backend="api", api_key="x", base_url="http://localhost:9")
    assert isinstance(resolve_backend(api), ApiBackend)
    local = cu.Config(backend="cli", cli_path=cli, env={"ANTHROPIC_BASE_URL": "http://[::1]:9"})
    assert isinstance(resolve_backend(local), CliBackend)


@pytest.mark.live
def test_live_gets_past_the_guard():
    assert isinstance(resolve_backend(cu.Config(**REMOTE_API)), ApiBackend)


def test_no_connection_was_attempted():
    assert attempts == []
"""


def test_fixtures_give_code_under_test_a_scripted_model(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(ONE_EVENT_LOOP)
    pytester.makepyfile(summarizer=CODE_UNDER_TEST, test_fixtures=FIXTURE_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_the_guard_stops_real_backends_outside_live_tests(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(ONE_EVENT_LOOP)
    pytester.makepyfile(test_guard=GUARD_TESTS)
    result = pytester.runpytest("--strict-markers", "--live", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=3)
    output = result.stdout.str()
    assert "would use the real api backend aimed at https://api.anthropic.com" in output
    assert "would use the real cli backend aimed at https://api.anthropic.com" in output
    assert "aimed at a cloud provider (CLAUDE_CODE_USE_BEDROCK is set)" in output
    # each of the three failures says how to mark a live test (newer pytest versions repeat
    # the message in the short summary, so count at least three)
    assert output.count("Mark it @pytest.mark.live if it should reach a real API") >= 3
    assert "use the claude_fake or claude_function fixture" in output


def test_the_live_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.live: the test may use a real Claude backend*"])


LIVE_TESTS = """
import pytest


@pytest.mark.live
def test_reaches_the_real_api():
    print("LIVE RAN")


@pytest.mark.live
class TestLiveSuite:
    def test_one(self):
        print("LIVE CLASS RAN")


def test_ordinary():
    pass
"""


def test_live_tests_are_skipped_unless_asked_for(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLAUDE_UNIFIED_LIVE", raising=False)
    pytester.makepyfile(test_live=LIVE_TESTS)
    skipped = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    skipped.assert_outcomes(passed=1, skipped=2)
    skipped.stdout.fnmatch_lines(["*a live test: run with --live or CLAUDE_UNIFIED_LIVE=1*"])
    assert "LIVE RAN" not in skipped.stdout.str()

    asked = pytester.runpytest("-p", "no:cacheprovider", "--live", "-s")
    asked.assert_outcomes(passed=3)
    assert "LIVE RAN" in asked.stdout.str()

    monkeypatch.setenv("CLAUDE_UNIFIED_LIVE", "1")
    by_env = pytester.runpytest("-p", "no:cacheprovider", "-s")
    by_env.assert_outcomes(passed=3)
    assert "LIVE CLASS RAN" in by_env.stdout.str()

    monkeypatch.setenv("CLAUDE_UNIFIED_LIVE", "0")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1, skipped=2)


def test_the_live_option_is_documented_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--live*run tests marked live*"])
