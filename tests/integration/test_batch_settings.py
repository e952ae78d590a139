"""Request settings and budgets in batch runs: per item and for the whole run, on the API
(over HTTP to FakeAnthropicServer), the Message Batches API and the real CLI's warm pool."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest

import claude_unified as cu
from claude_unified.batch._api_plan import build_request
from claude_unified.testing import FakeAnthropicServer, message
from claude_unified.testing.pytest_plugin import CliTestEnv

pytestmark = pytest.mark.anyio


@pytest.fixture
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as srv:
        yield srv


def api_config(server: FakeAnthropicServer, **overrides: Any) -> cu.Config:
    base = cu.Config(backend="api", api_key="sk-ant-test", base_url=server.url)
    return base.with_changes({"model": "claude-sonnet-5-5", **overrides})


def bodies(server: FakeAnthropicServer) -> dict[str, dict[str, Any]]:
    """Each request body by the prompt it carried."""
    sent = [r.json for r in server.requests if r.path == "/v1/messages" and r.json]
    return {b["messages"][-1]["content"]: b for b in sent}


def costly(text: str) -> Any:  # $0.012 on claude-sonnet-5-5
    usage = cu.Usage(input_tokens=1000, output_tokens=1000)
    return message([cu.TextBlock(text)], stop_reason="end_turn", usage=usage)


async def test_item_settings_reach_the_wire(server: FakeAnthropicServer) -> None:
    items: list[cu.BatchItem | dict[str, Any]] = [
        cu.BatchItem(
            id="a",
            prompt="pa",
            temperature=0.1,
            stop_sequences=("X",),
            thinking=cu.ThinkingConfig(budget_tokens=1024),
            tool_choice="none",
            metadata={"user_id": "item-a"},
        ),
        {"id": "b", "prompt": "pb", "effort": "low", "thinking": "adaptive"},
        cu.BatchItem(id="c", prompt="pc"),
    ]
    config = api_config(server, temperature=0.9, metadata={"user_id": "from-config"})
    results = await cu.run_batch(items, config)
    assert [r.is_error for r in results] == [False, False, False]
    sent = bodies(server)
    assert sent["pa"]["temperature"] == 0.1
    assert sent["pa"]["stop_sequences"] == ["X"]
    assert sent["pa"]["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert sent["pa"]["tool_choice"] == {"type": "none"}
    assert sent["pa"]["metadata"] == {"user_id": "item-a"}
    assert sent["pc"]["metadata"] == {"user_id": "from-config"}  # the config's, not overridden
    assert (sent["pb"]["output_config"], sent["pb"]["thinking"]) == (
        {"effort": "low"},
        {"type": "adaptive"},
    )
    assert sent["pb"]["temperature"] == sent["pc"]["temperature"] == 0.9


async def test_bad_item_setting_fails_that_item_only(server: FakeAnthropicServer) -> None:
    results = await cu.run_batch(
        [{"id": "bad", "prompt": "p", "effort": "enormous"}, "fine"], api_config(server)
    )
    assert results[0].is_error and results[0].error is not None
    assert results[0].error.kind == "invalid_item"
    assert not results[1].is_error


async def test_item_budget(server: FakeAnthropicServer) -> None:
    results = await cu.run_batch(
        [cu.BatchItem(id="free", prompt="p0", max_budget_usd=0.0), "p1"], api_config(server)
    )
    assert results[0].error is not None and results[0].error.kind == "budget_exhausted"
    assert not results[1].is_error
    assert set(bodies(server)) == {"p1"}  # the spent item sent nothing


async def test_run_budget_stops_starting_items(server: FakeAnthropicServer) -> None:
    for i in range(5):
        server.on(f"p{i}", costly(f"r{i}"))
    prompts = [f"p{i}" for i in range(5)]
    async with cu.iter_batch(
        prompts, api_config(server), concurrency=1, max_budget_usd=0.02
    ) as run:
        results = {r.id: r async for r in run}
    assert [results[str(i)].is_error for i in range(5)] == [False, False, True, True, True]
    for i in (2, 3, 4):
        error = results[str(i)].error
        assert error is not None and error.kind == "budget_exhausted"
        assert results[str(i)].via == "budget"
    assert run.spent_usd == pytest.approx(0.024)
    assert set(bodies(server)) == {"p0", "p1"}


def test_run_budget_must_not_be_negative(server: FakeAnthropicServer) -> None:
    with pytest.raises(ValueError, match="max_budget_usd"):
        cu.iter_batch(["x"], api_config(server), max_budget_usd=-1)


def test_batches_api_requests_carry_item_settings() -> None:
    config = cu.Config(backend="api", api_key="k", top_k=5)
    item = cu.BatchItem(
        id="a", prompt="p", temperature=0.3, effort="max", metadata={"user_id": "u-9"}
    )
    params = msgspec_decode(build_request(item, "a", config).params)
    assert (params["temperature"], params["top_k"]) == (0.3, 5)
    assert params["metadata"] == {"user_id": "u-9"}
    assert params["output_config"] == {"effort": "max"}
    assert "stream" not in params


def msgspec_decode(raw: Any) -> dict[str, Any]:
    import msgspec

    return msgspec.json.decode(bytes(raw), type=dict[str, Any])


@pytest.mark.cli
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # real processes: one loop is enough
async def test_cli_pool_per_item_process_settings(claude_cli_env: CliTestEnv) -> None:
    items = [
        cu.BatchItem(id="ok", prompt="hello"),
        cu.BatchItem(id="effort", prompt="x", effort="max"),  # a process restarted for it
        cu.BatchItem(id="after", prompt="y"),
        cu.BatchItem(id="budget", prompt="z", max_budget_usd=1.0),
        cu.BatchItem(id="meta", prompt="w", metadata={"user_id": "u"}),
    ]
    results = {r.id: r for r in await cu.run_batch(items, claude_cli_env.config(), concurrency=1)}
    assert (results["ok"].text, results["effort"].text, results["after"].text) == (
        "ECHO: hello",
        "ECHO: x",
        "ECHO: y",
    )
    sent = {
        r.last_user_text.split("\n")[-1]: r.json
        for r in claude_cli_env.server.requests
        if r.path == "/v1/messages" and r.json
    }
    assert sent["x"]["output_config"]["effort"] == "max"
    assert sent["y"].get("output_config") == sent["hello"].get("output_config")  # the CLI's own
    assert results["budget"].text == "ECHO: z"  # a process started with the item's budget
    meta = results["meta"]  # the same refusal as Config.metadata on the CLI
    assert meta.is_error and meta.error is not None and meta.error.kind == "ConfigError"
    assert meta.error.message.startswith("metadata cannot be honoured by the CLI backend")


@pytest.mark.cli
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # real processes: one loop is enough
async def test_cli_pool_item_budgets(claude_cli_env: CliTestEnv) -> None:
    # claude-opus-5-5 (the CLI's default): 1,000 in + 1,000 out = $0.024 a turn
    claude_cli_env.server.on("spend", costly("spent"))
    items = [cu.BatchItem(id=f"a{i}", prompt="spend", max_budget_usd=0.03) for i in range(3)]
    items += [
        cu.BatchItem(id="tight", prompt="spend", max_budget_usd=0.01),
        cu.BatchItem(id="after", prompt="spend", max_budget_usd=0.03),
        cu.BatchItem(id="uncapped", prompt="spend"),
    ]
    config = claude_cli_env.config()
    async with cu.iter_batch(items, config, concurrency=1) as run:
        results = {r.id: r async for r in run}
    # each item has the whole budget: three $0.024 items in one process under a $0.03 cap
    for name in ("a0", "a1", "a2", "after", "uncapped"):
        assert (results[name].text, results[name].is_error) == ("spent", False), name
        assert results[name].cost_usd == pytest.approx(0.024)
    tight = results["tight"]
    assert tight.error is not None and tight.error.kind == "budget_exhausted"
    # one process per budget in turn: the warm one started with the config's (no budget) makes
    # room for a0, which a1 and a2 reuse; then tight, after and uncapped each need another
    assert run.processes_started == 5
    # a budget of 0 allows no request (and the CLI refuses to start with it): the item fails
    # at once, and nothing reaches the API
    sent = len(claude_cli_env.server.requests)
    with anyio.fail_after(30):
        nothing = await cu.run_batch(
            [cu.BatchItem(id="zero", prompt="spend", max_budget_usd=0)], config, concurrency=1
        )
    assert nothing[0].error is not None and nothing[0].error.kind == "budget_exhausted"
    assert len(claude_cli_env.server.requests) == sent
    with_budget = cu.BatchItem(id="b", prompt="spend", max_budget_usd=0.03)
    capped = config.replace(max_budget_usd=0.01)  # the config's budget caps each item too
    over = await cu.run_batch([with_budget, "spend"], capped, concurrency=1)
    assert (over[0].text, over[0].is_error) == ("spent", False)
    assert over[1].error is not None and over[1].error.kind == "budget_exhausted"
