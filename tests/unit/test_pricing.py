"""Cost from usage: price lookup, cache multipliers, long-context tier and batch discount."""

from __future__ import annotations

import pytest

from claude_unified._events import CacheCreation, Usage
from claude_unified._pricing import cost_usd, price_for

M = 1_000_000


def test_matches_the_cli_own_figure() -> None:
    # CLI 2.1.330 charged exactly this for its one-shot `-p hello` run
    cost = cost_usd("claude-opus-5-5", Usage(input_tokens=12312, output_tokens=10))
    assert cost == pytest.approx(0.049448, abs=1e-12)


@pytest.mark.parametrize(
    ("model", "input_rate", "output_rate"),
    [
        ("claude-fable-5-2", 8.0, 40.0),
        ("claude-opus-5-5", 4.0, 20.0),
        ("claude-sonnet-5-5", 2.0, 10.0),
        ("claude-sonnet-5", 2.0, 10.0),
        ("claude-haiku-5-5", 0.10, 0.50),
        ("claude-opus-4-8", 5.0, 25.0),
        ("claude-haiku-4-5", 1.0, 5.0),
        ("claude-opus-4-1", 15.0, 75.0),
        ("claude-3-5-haiku", 0.80, 4.0),
        ("claude-3-haiku", 0.25, 1.25),
    ],
)
def test_exact_ids(model: str, input_rate: float, output_rate: float) -> None:
    price = price_for(model)
    assert price is not None
    assert (price.input, price.output) == (input_rate, output_rate)
    # 1000 tokens stays under every long-context threshold
    assert cost_usd(model, Usage(input_tokens=1000)) == pytest.approx(input_rate / 1000)
    assert cost_usd(model, Usage(output_tokens=1000)) == pytest.approx(output_rate / 1000)


@pytest.mark.parametrize(
    ("model", "same_as"),
    [
        ("claude-opus-4-7", "claude-opus-4-8"),
        ("claude-opus-4-6", "claude-opus-4-8"),
        ("claude-opus-4-5-20251101", "claude-opus-4-8"),
        ("claude-sonnet-4-6", "claude-sonnet-4"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-3-7-sonnet-20250219", "claude-sonnet-4"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-opus-4-20250514", "claude-opus-4-1"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("claude-3-haiku-20240307", "claude-3-haiku"),
        ("claude-sonnet-5-5-20261101", "claude-sonnet-5-5"),
        ("claude-sonnet-5-20260601", "claude-sonnet-5"),
        ("claude-opus-5-5[1m]", "claude-opus-5-5"),
    ],
)
def test_family_prefix(model: str, same_as: str) -> None:
    assert price_for(model) is not None
    assert price_for(model) == price_for(same_as)


def test_longest_prefix_wins() -> None:
    sonnet_55, sonnet_5 = price_for("claude-sonnet-5-5-x"), price_for("claude-sonnet-5-x")
    assert sonnet_55 is not None
    assert sonnet_5 is not None
    assert sonnet_55.cache_read == 0.10  # not claude-sonnet-5's 0.20
    assert sonnet_5.cache_read == 0.20


@pytest.mark.parametrize(
    "model", ["gpt-5", "claude-fallback-test", "claude-other-test", "", None, "<synthetic>"]
)
def test_unknown_model_costs_none_not_zero(model: str | None) -> None:
    assert price_for(model) is None
    assert cost_usd(model, Usage(input_tokens=1000, output_tokens=1000)) is None


def test_zero_usage_of_a_known_model_is_zero() -> None:
    assert cost_usd("claude-opus-5-5", Usage()) == 0.0


@pytest.mark.parametrize(
    ("model", "input_rate", "read_rate"),
    [
        ("claude-opus-5-5", 4.0, 0.20),
        ("claude-sonnet-5-5", 2.0, 0.10),
        ("claude-sonnet-5", 2.0, 0.20),
        ("claude-fable-5-2", 8.0, 0.20),
        ("claude-opus-4-8", 5.0, 0.50),
        ("claude-sonnet-4-6", 3.0, 0.30),
    ],
)
def test_cache_write_and_read_multipliers(model: str, input_rate: float, read_rate: float) -> None:
    # all writes 5m: 1.25x input
    five = cost_usd(model, Usage(cache_creation_input_tokens=M))
    assert five == pytest.approx(1.25 * input_rate)
    split_5m = Usage(cache_creation_input_tokens=M, cache_creation=CacheCreation(M, 0))
    assert cost_usd(model, split_5m) == pytest.approx(1.25 * input_rate)
    # 1h writes: 2x input
    hour = Usage(cache_creation_input_tokens=M, cache_creation=CacheCreation(0, M))
    assert cost_usd(model, hour) == pytest.approx(2 * input_rate)
    # reads: the model's own read rate
    assert cost_usd(model, Usage(cache_read_input_tokens=M)) == pytest.approx(read_rate)


def test_full_cost_formula() -> None:
    usage = Usage(
        input_tokens=1000,
        output_tokens=500,
        cache_creation_input_tokens=3000,
        cache_read_input_tokens=7000,
        cache_creation=CacheCreation(
            ephemeral_5m_input_tokens=1000, ephemeral_1h_input_tokens=2000
        ),
    )
    expected = (1000 * 4 + 1000 * 5 + 2000 * 8 + 7000 * 0.20 + 500 * 20) / M
    assert cost_usd("claude-opus-5-5", usage) == pytest.approx(expected)


def test_haiku_5_5_long_context_tier() -> None:
    at_threshold = Usage(input_tokens=60_000, cache_read_input_tokens=40_000, output_tokens=1000)
    assert at_threshold.prompt_tokens == 100_000
    assert cost_usd("claude-haiku-5-5", at_threshold) == pytest.approx(
        (60_000 * 0.10 + 40_000 * 0.01 + 1000 * 0.50) / M
    )
    # one token more and every column switches to the long-context rates
    over = Usage(
        input_tokens=60_001,
        cache_read_input_tokens=40_000,
        cache_creation_input_tokens=10_000,
        cache_creation=CacheCreation(5_000, 5_000),
        output_tokens=1000,
    )
    assert over.prompt_tokens > 100_000
    expected = (60_001 * 0.50 + 40_000 * 0.05 + 5_000 * 0.625 + 5_000 * 1.00 + 1000 * 2.50) / M
    assert cost_usd("claude-haiku-5-5", over) == pytest.approx(expected)


def test_long_context_counts_cache_writes_toward_the_threshold() -> None:
    usage = Usage(input_tokens=1, cache_creation_input_tokens=100_000)
    assert cost_usd("claude-haiku-5-5", usage) == pytest.approx((0.50 + 100_000 * 0.625) / M)


def test_models_without_a_tier_ignore_long_prompts() -> None:
    usage = Usage(input_tokens=500_000)
    assert cost_usd("claude-opus-5-5", usage) == pytest.approx(500_000 * 4 / M)


def test_batch_halves_every_column() -> None:
    usage = Usage(
        input_tokens=1000,
        output_tokens=2000,
        cache_creation_input_tokens=300,
        cache_read_input_tokens=400,
        cache_creation=CacheCreation(100, 200),
    )
    for model in ("claude-opus-5-5", "claude-haiku-5-5", "claude-sonnet-4-6"):
        full = cost_usd(model, usage)
        batch = cost_usd(model, usage, batch=True)
        assert full is not None
        assert batch == pytest.approx(full / 2)
    assert cost_usd("unknown-model", usage, batch=True) is None
