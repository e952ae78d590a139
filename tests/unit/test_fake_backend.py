"""FakeBackend's input-token estimate: a quarter of the history's characters, the same whether
the history grew by appending (counted once per message) or was changed anywhere else."""

from __future__ import annotations

import pytest

from claude_unified import Config, Conversation, Message, Result, TextBlock
from claude_unified.testing import FakeBackend

pytestmark = pytest.mark.anyio


def _estimate(history: list[Message]) -> int:
    return max(1, sum(len(m.text) for m in history) // 4)


async def _input_tokens(conv: Conversation, prompt: str) -> int:
    result = None
    async for event in conv.send(prompt):
        if isinstance(event, Result):
            result = event
    assert result is not None and result.usage is not None
    return result.usage.input_tokens


async def test_each_request_reports_a_quarter_of_the_whole_historys_characters() -> None:
    fake = FakeBackend(echo=True)
    async with Conversation(Config(backend="fake"), backend=fake) as conv:
        for number in range(30):
            tokens = await _input_tokens(conv, f"prompt number {number} " * (number + 1))
            assert tokens == _estimate(list(fake.last_request.history))


async def test_a_history_changed_in_the_middle_is_counted_again() -> None:
    fake = FakeBackend(echo=True)
    async with Conversation(Config(backend="fake"), backend=fake) as conv:
        for number in range(4):
            await _input_tokens(conv, f"a prompt of some length, number {number}")
        conv.history[1] = Message(role="assistant", content=[TextBlock("x" * 4000)])
        tokens = await _input_tokens(conv, "and one more")
        assert tokens == _estimate(list(fake.last_request.history))
        assert tokens > 1000
        conv.history[:] = conv.history[:2]  # shorter than what was counted
        tokens = await _input_tokens(conv, "again")
        assert tokens == _estimate(list(fake.last_request.history))
