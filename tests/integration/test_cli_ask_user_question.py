"""The CLI's question tool, answered through ``PermissionRequest.answer_questions``: the answer
reaches the model as the tool's result, on the real CLI."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import claude_unified as cu
from claude_unified.testing import FakeAnthropicServer, tool_call
from claude_unified.testing.pytest_plugin import CliTestEnv

pytestmark = [
    pytest.mark.cli,
    pytest.mark.anyio,
    pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"]),
]

QUESTION = "Which colour should the button be?"
ASKING = {
    "questions": [
        {
            "question": QUESTION,
            "header": "Colour",
            "options": [
                {"label": "red", "description": "warm"},
                {"label": "blue", "description": "cool"},
            ],
            "multiSelect": False,
        }
    ]
}


def tool_results(server: FakeAnthropicServer) -> list[dict[str, Any]]:
    found = []
    for request in server.requests:
        body = request.json or {}
        for message in body.get("messages", []):
            content = message.get("content")
            if isinstance(content, list):
                found += [b for b in content if b.get("type") == "tool_result"]
    return found


async def test_an_answered_question_reaches_the_model(claude_cli_env: CliTestEnv) -> None:
    server = claude_cli_env.server
    prompt = "Please ask me about the colour."
    server.on(prompt, tool_call("AskUserQuestion", ASKING, text="Let me ask."), times=1)
    requests: list[cu.PermissionRequest] = []
    with anyio.fail_after(60):
        async with cu.Conversation(claude_cli_env.config()) as conv:
            events = []
            async for event in conv.send(prompt):
                events.append(event)
                if isinstance(event, cu.PermissionRequest):
                    requests.append(event)
                    conv.respond(event, event.answer_questions({QUESTION: "blue"}))
    assert [r.name for r in requests] == ["AskUserQuestion"]
    assert [q["question"] for q in requests[0].questions] == [QUESTION]
    result = next(e for e in events if isinstance(e, cu.ToolResult))
    assert not result.is_error
    assert f'"{QUESTION}"="blue"' in str(result.content), result.content
    sent = [r for r in tool_results(server) if "blue" in str(r.get("content"))]
    assert sent, tool_results(server)  # the answer went to the model
    assert isinstance(events[-1], cu.Result) and not events[-1].is_error
