"""Cost of a request from its usage. Prices live in ``data/pricing.toml`` (data, easy to update).

An unknown model costs ``None``, never 0: a wrong zero is worse than an honest unknown.
"""

from __future__ import annotations

from functools import cache

import msgspec

from ._events import Usage

__all__ = ["Price", "cost_usd", "price_for"]


class _Rates(msgspec.Struct, frozen=True):
    input: float
    output: float
    cache_read: float
    cache_write_5m: float | None = None
    cache_write_1h: float | None = None


class _LongContext(_Rates, frozen=True):
    threshold: int = 0


class Price(_Rates, frozen=True):
    prefix: list[str] = msgspec.field(default_factory=list)
    long_context: _LongContext | None = None


class _PriceFile(msgspec.Struct, frozen=True):
    models: dict[str, Price]


@cache
def _table() -> _PriceFile:
    import tomllib  # both load on the first price lookup, not with the package
    from importlib import resources

    text = resources.files("claude_unified").joinpath("data/pricing.toml").read_text("utf-8")
    return msgspec.convert(tomllib.loads(text), _PriceFile)


def price_for(model: str | None) -> Price | None:
    """The price entry for a model id: exact id, else the longest matching family prefix."""
    if not model:
        return None
    table = _table().models
    if model in table:
        return table[model]
    best: tuple[int, Price] | None = None
    for key, price in table.items():
        for prefix in price.prefix or [key]:
            if model.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), price)
    return best[1] if best else None


def cost_usd(model: str | None, usage: Usage, *, batch: bool = False) -> float | None:
    """USD cost of one request's usage (``batch`` applies the Message Batches 50% discount)."""
    price = price_for(model)
    if price is None:
        return None
    rates: _Rates = price
    if price.long_context and usage.prompt_tokens > price.long_context.threshold:
        rates = price.long_context
    write_5m = rates.cache_write_5m if rates.cache_write_5m is not None else rates.input * 1.25
    write_1h = rates.cache_write_1h if rates.cache_write_1h is not None else rates.input * 2
    split = usage.cache_creation
    w1h = split.ephemeral_1h_input_tokens if split else 0
    w5m = usage.cache_creation_input_tokens - w1h
    total = (
        usage.input_tokens * rates.input
        + w5m * write_5m
        + w1h * write_1h
        + usage.cache_read_input_tokens * rates.cache_read
        + usage.output_tokens * rates.output
    ) / 1_000_000
    return total / 2 if batch else total
