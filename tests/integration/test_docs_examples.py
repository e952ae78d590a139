"""The examples of the settings, structured output, budgets and MCP pages run against the fake
server, so the documentation cannot drift from the library."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import claude_unified as cu
from claude_unified.testing import FakeAnthropicServer, message, reply, tool_call

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"


def example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as srv:
        yield srv


def api_config(server: FakeAnthropicServer) -> cu.Config:
    return cu.Config(
        backend="api", api_key="sk-ant-test", base_url=server.url, model="claude-sonnet-5-5"
    )


def bodies(server: FakeAnthropicServer) -> list[dict[str, Any]]:
    return [r.json for r in server.requests if r.path == "/v1/messages" and r.json]


async def test_settings_example(server: FakeAnthropicServer) -> None:
    server.queue(reply("red"), reply("apple"), reply("none needed"))
    answers = await example("settings_example").main(api_config(server))
    assert answers == ["red", "apple", "none needed"]
    first, second, third = bodies(server)
    assert first["temperature"] == 0.2 and first["thinking"]["budget_tokens"] == 4000
    assert second["temperature"] == 1.0 and "thinking" not in second
    assert third["tool_choice"] == {"type": "auto"}
    assert third["output_config"] == {"effort": "low"}


async def test_structured_output_example(
    server: FakeAnthropicServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.queue(reply('{"number": "INV-7", "total": 12.5}'), reply("Sorry, no."))
    module = example("structured_output_example")
    invoice = await module.main(api_config(server))
    assert invoice == module.Invoice("INV-7", 12.5)
    assert "not an invoice: Sorry, no." in capsys.readouterr().out


async def test_budgets_example(server: FakeAnthropicServer) -> None:
    usage = cu.Usage(input_tokens=5000, output_tokens=1000)  # $0.02 on claude-sonnet-5-5
    server.queue(message([cu.TextBlock("Chapter 1 ...")], stop_reason="end_turn", usage=usage))
    kinds = await example("budgets_example").main(api_config(server))
    assert kinds == ["success", "budget_exhausted", "budget_exhausted", "stopped: 0.01"]
    assert len(bodies(server)) == 1


async def test_count_tokens_example(server: FakeAnthropicServer) -> None:
    one_call, next_request = await example("count_tokens_example").main(api_config(server))
    assert 0 < one_call < next_request


async def test_mcp_example(server: FakeAnthropicServer, capsys: pytest.CaptureFixture[str]) -> None:
    server.queue(tool_call("mcp__echo__echo", {"text": "hi"}), reply("It said hi."))
    echo = Path(__file__).parents[1] / "mcp_echo_server.py"
    answer = await example("mcp_example").main(api_config(server), sys.executable, [str(echo)])
    assert answer == "It said hi."
    assert capsys.readouterr().out == 'mcp__echo__echo -> {"result":"> hi"}\n'
    assert [t["name"] for t in bodies(server)[0]["tools"]] == [
        "mcp__echo__echo",
        "mcp__echo__pid",
        "mcp__echo__fail",
    ]
