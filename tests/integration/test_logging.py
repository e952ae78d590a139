"""Logging: what each layer records, at which level, and that no record carries a secret."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

import claude_unified as cu
from claude_unified._logs import configure_from_env
from claude_unified.testing import FakeAnthropicServer, error, reply
from claude_unified.testing.pytest_plugin import CliTestEnv

SECRET = "sk-ant-log-secret-0123456789"
TOKEN = "tok-log-secret-9876543210"


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="claude_unified")
    return caplog


def messages(records: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in records.records if r.name == logger]


def assert_no_secret(records: pytest.LogCaptureFixture, *secrets: str) -> None:
    assert records.records
    for record in records.records:
        text = f"{record.getMessage()} {record.args!r} {record.__dict__!r}"
        for secret in secrets:
            assert secret not in text, record


@pytest.mark.anyio
async def test_api_requests_and_retries_are_logged_without_secrets(
    records: pytest.LogCaptureFixture,
) -> None:
    with FakeAnthropicServer() as server:
        server.queue(error(529), reply("recovered"))
        config = cu.Config(
            backend="api",
            api_key=SECRET,
            base_url=server.url,
            extra_headers={"x-custom-auth": TOKEN},
        )
        async with cu.Conversation(config) as conv:
            answer = await conv.ask(f"my key is not {TOKEN[:3]}")
    assert answer.text == "recovered"
    http = messages(records, "claude_unified.backends._http")
    responses = [m for m in http if m.startswith("POST /v1/messages -> ")]
    assert len(responses) == 2, http
    assert responses[0].startswith("POST /v1/messages -> 529 (request-id req_")
    assert responses[1].startswith("POST /v1/messages -> 200 (request-id req_")
    assert all(m.endswith("s") and " in " in m for m in responses)
    retries = [m for m in http if "retry 1 of 2" in m]
    assert len(retries) == 1
    assert retries[0].startswith("overloaded_error (status 529): retry 1 of 2 in ")
    assert_no_secret(records, SECRET, TOKEN)


@pytest.mark.anyio
async def test_exhausted_retries_are_logged(records: pytest.LogCaptureFixture) -> None:
    with FakeAnthropicServer() as server:
        server.queue(error(500), error(500))
        config = cu.Config(backend="api", api_key=SECRET, base_url=server.url, max_retries=1)
        async with cu.Conversation(config) as conv:
            with pytest.raises(cu.InternalServerError):
                await conv.ask("hi")
    http = messages(records, "claude_unified.backends._http")
    assert any("no retries left (1 used)" in m for m in http), http


def test_unknown_frames_warn_once_per_kind(
    records: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claude_unified import _normalize
    from claude_unified._normalize import unknown

    monkeypatch.setattr(_normalize, "_warned", set())  # kinds other tests warned about already

    first = unknown("cli", {"type": "system", "subtype": "brand_new_status", "secret": SECRET})
    unknown("cli", {"type": "system", "subtype": "brand_new_status", "secret": SECRET})
    unknown("api", {"type": ["not", "text"]})
    assert first == cu.Unknown(
        "cli", {"type": "system", "subtype": "brand_new_status", "secret": SECRET}
    )
    mine = [r for r in records.records if r.name == "claude_unified._normalize"]
    assert [r.levelno for r in mine] == [logging.WARNING, logging.DEBUG, logging.WARNING]
    assert mine[0].getMessage() == (
        "CLI frame 'system' (subtype 'brand_new_status') is not modelled: "
        "it arrives as Unknown (keys: secret, subtype, type)"
    )
    assert "without a type" in mine[2].getMessage()
    assert_no_secret(records, SECRET)


@pytest.mark.anyio
@pytest.mark.cli
async def test_cli_process_and_control_requests_are_logged_without_secrets(
    claude_cli_env: CliTestEnv, records: pytest.LogCaptureFixture
) -> None:
    settings = msgspec.json.encode({"env": {"MY_SERVICE_TOKEN": TOKEN}}).decode()
    config = claude_cli_env.config(
        api_key=SECRET, cli_args=(f"--settings={settings}",), permission_mode="default"
    )
    async with cu.Conversation(config, policy=cu.allow_list(["Bash(touch:*)"])) as conv:
        await conv.ask("BASH: touch logged.txt")  # raises on a failed turn
    assert Path(claude_cli_env.cwd, "logged.txt").exists()
    process = messages(records, "claude_unified.backends._process")
    started = [m for m in process if m.startswith("started pid ")]
    assert len(started) == 1
    assert "--input-format=stream-json" in started[0]
    assert "--settings=***" in started[0]
    assert any(m.startswith("pid ") and " exited with " in m for m in process), process
    control = messages(records, "claude_unified.backends._control")
    assert any(m.endswith("sent: initialize") for m in control), control
    assert any("(initialize) answered: success" in m for m in control), control
    # the policy's Allow answers the CLI's PreToolUse hook (no can_use_tool follows)
    assert any(m.endswith("received: hook_callback") for m in control), control
    assert any(m.endswith("answered: success") and "(" not in m for m in control), control
    assert_no_secret(records, SECRET, TOKEN)


def test_env_var_switches_a_stderr_handler_on() -> None:
    script = (
        "import claude_unified as cu\n"
        "from claude_unified.testing import FakeAnthropicServer\n"
        "with FakeAnthropicServer() as s:\n"
        f"    c = cu.Config(backend='api', api_key='{SECRET}', base_url=s.url)\n"
        "    print(cu.query_sync('hello', config=c))\n"
    )
    env = {**os.environ, "CLAUDE_UNIFIED_LOG": "debug"}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert "hello" in out.stdout
    assert "DEBUG claude_unified.backends._http: POST /v1/messages -> 200" in out.stderr
    assert SECRET not in out.stderr
    quiet = subprocess.run(
        [sys.executable, "-c", script],
        env={k: v for k, v in os.environ.items() if k != "CLAUDE_UNIFIED_LOG"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert quiet.stderr == ""


def test_configure_from_env_levels_and_idempotence() -> None:
    logger = logging.getLogger("claude_unified")
    level = logger.level
    try:
        handler = configure_from_env({"CLAUDE_UNIFIED_LOG": "INFO"})
        assert handler is not None
        assert logger.level == logging.INFO
        again = configure_from_env({"CLAUDE_UNIFIED_LOG": "debug"})
        assert again is not None
        assert logger.level == logging.DEBUG
        assert handler not in logger.handlers
        assert again in logger.handlers
        assert configure_from_env({}) is None
        assert again not in logger.handlers
        with pytest.warns(
            RuntimeWarning, match="CLAUDE_UNIFIED_LOG='verbose' is not debug or info"
        ):
            assert configure_from_env({"CLAUDE_UNIFIED_LOG": "verbose"}) is None
        assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)
    finally:
        configure_from_env({})
        logger.setLevel(level)
