"""``override()``: code that builds its own conversations gets the test's backend."""

from __future__ import annotations

import threading

import anyio
import pytest

import claude_unified as cu
from claude_unified.backends import _registry, resolve_backend
from claude_unified.testing import FakeBackend, FunctionBackend, override, reply

pytestmark = pytest.mark.anyio


async def summarize(text: str) -> str:
    """Code under test: it builds its conversation from the environment's config."""
    async with cu.Conversation(cu.Config.load()) as conv:
        return (await conv.ask(f"Summarize: {text}")).text


async def test_an_instance_serves_every_conversation_in_turn() -> None:
    fake = FakeBackend([reply("one"), reply("two")])
    with override(backend=fake):
        assert await summarize("a") == "one"
        assert await summarize("b") == "two"
    assert [r.prompt for r in fake.requests] == ["Summarize: a", "Summarize: b"]
    assert fake.remaining == 0


async def test_a_factory_gets_each_conversations_config() -> None:
    seen: list[cu.Config] = []

    def make(config: cu.Config) -> FakeBackend:
        seen.append(config)
        return FakeBackend([reply(f"model {config.model}")])

    with override(backend=make):
        async with cu.Conversation(cu.Config(model="m-1")) as conv:
            answer = await conv.ask("hi")
    assert answer.text == "model m-1"
    assert [c.model for c in seen] == ["m-1"]


def test_nested_overrides_restore_in_order() -> None:
    outer, inner = FakeBackend(), FakeBackend()
    config = cu.Config(backend="fake")
    with override(backend=outer):
        with override(backend=inner):
            assert resolve_backend(config) is inner
        assert resolve_backend(config) is outer
    assert resolve_backend(config) is not outer
    assert _registry.backend_override.get() is None
    assert _registry.process_overrides == []


def test_the_same_factory_twice_unwinds_cleanly() -> None:
    def make(config: cu.Config) -> FakeBackend:
        return FakeBackend()

    with override(backend=make), override(backend=FunctionBackend(lambda r: "x")):
        with override(backend=make):
            assert isinstance(resolve_backend(cu.Config()), FakeBackend)
        assert isinstance(resolve_backend(cu.Config()), FunctionBackend)
    assert _registry.process_overrides == []


def test_an_override_reaches_threads_that_do_not_share_the_context() -> None:
    """A new thread, or a thread pool's worker, starts with a fresh context."""
    fake = FakeBackend([reply("from a thread")])
    answers: list[str] = []

    def in_thread() -> None:
        answers.append(anyio.run(summarize, "x"))

    with override(backend=fake):
        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join(10)
    assert answers == ["from a thread"]


def test_anything_else_is_refused() -> None:
    with pytest.raises(TypeError, match="needs a Backend or a factory"), override(backend=42):  # type: ignore[arg-type]
        pass
