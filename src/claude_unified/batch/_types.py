"""The data of batch jobs, shared by every way of running them.

``BatchItem`` is one unit of work (an id and a prompt, with optional per-item overrides);
``BatchResult`` is its outcome. One JSON line in, one JSON line out: the same shapes serve
``run_batch`` on either backend and the Message Batches API.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import msgspec

from .._config import Config
from .._events import TurnError, Usage
from .._settings import REQUEST_SETTING_NAMES, Effort, ServiceTier, ThinkingSetting
from .._tools import Tool

if TYPE_CHECKING:
    from .._conversation import RequestOptions

__all__ = ["ITEM_OVERRIDES", "BatchItem", "BatchResult", "Tools", "item_config", "request_options"]

Tools: TypeAlias = Sequence[Tool | Callable[..., Any]]
"""What a batch may be given as tools: ``Tool`` objects or plain functions to wrap."""


class BatchItem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One prompt of a batch. ``id`` must be unique within the batch.

    ``metadata`` is the caller's own, handed back on the item's ``BatchResult``. The request
    settings (``temperature`` … ``extra_body``) and ``max_budget_usd`` override the batch
    config's for this item; left ``None``, the config's apply.
    """

    id: str
    prompt: str
    system: str | None = None
    model: str | None = None
    max_tokens: int | None = None
    metadata: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: tuple[str, ...] | None = None
    tool_choice: str | None = None
    thinking: ThinkingSetting = None
    effort: Effort | None = None
    service_tier: ServiceTier | None = None
    extra_body: dict[str, Any] | None = None
    max_budget_usd: float | None = None


class BatchResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The outcome of one item. ``attempts`` counts requests made for it, retries included;
    ``via`` says how it ran ("api", "cli", "batches_api", …). Batches API prices are half the
    list price and ``cost_usd`` already includes that discount."""

    id: str
    text: str = ""
    is_error: bool = False
    error: TurnError | None = None
    usage: Usage = msgspec.field(default_factory=Usage)
    cost_usd: float | None = None
    duration_s: float = 0.0
    attempts: int = 1
    via: str = "api"
    metadata: dict[str, Any] | None = None


ITEM_OVERRIDES: dict[str, str] = {
    "system": "system_prompt",
    "model": "model",
    "max_tokens": "max_tokens",
    **{
        name: name
        for name in (
            "temperature",
            "top_p",
            "top_k",
            "stop_sequences",
            "tool_choice",
            "thinking",
            "effort",
            "service_tier",
            "extra_body",
            "max_budget_usd",
        )
    },
}
"""BatchItem fields that override a Config field of the item's conversation: item → config."""


def item_config(config: Config, item: BatchItem) -> Config:
    """The batch config with the item's own overrides (system prompt, model, max_tokens,
    request settings, budget) applied."""
    changes = {
        field: value
        for name, field in ITEM_OVERRIDES.items()
        if (value := getattr(item, name)) is not None
    }
    return config.with_changes(changes) if changes else config


def request_options(item: BatchItem) -> RequestOptions:
    """The request settings ``item`` sets, as per-turn options."""
    chosen = {
        name: value
        for name in REQUEST_SETTING_NAMES
        if name in ITEM_OVERRIDES and (value := getattr(item, name)) is not None
    }
    return cast("RequestOptions", chosen)
