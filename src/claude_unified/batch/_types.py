"""The data of batch jobs, shared by every way of running them.

``BatchItem`` is one unit of work (an id and a prompt, with optional per-item overrides);
``BatchResult`` is its outcome. One JSON line in, one JSON line out: the same shapes serve
``run_batch`` on either backend and the Message Batches API.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import msgspec

from .._config import Config
from .._events import TurnError, Usage
from .._exceptions import ConfigError
from .._hooks import Hook
from .._permissions import Policy
from .._settings import REQUEST_SETTING_NAMES, Effort, ServiceTier, ThinkingSetting
from .._tools import Tool

if TYPE_CHECKING:
    from .._conversation import Conversation, RequestOptions
    from ..backends._protocol import Backend

__all__ = [
    "ITEM_OVERRIDES",
    "BatchItem",
    "BatchResult",
    "ItemSetup",
    "Tools",
    "check_item_metadata",
    "item_config",
    "metadata_hint",
    "request_options",
]

METADATA_KEYS = frozenset({"user_id"})
"""The keys the Messages API accepts in a request's ``metadata``."""

_MOVED = (
    "BatchItem.metadata is the API's request metadata, which takes only "
    "{'user_id': <string>}; data of your own to get back on the result goes in user_data now "
    "(it was metadata before)"
)


def check_item_metadata(metadata: object) -> None:
    """Refuse an item ``metadata`` the API would not accept, most likely echo data written for
    the field's old meaning: the error names the field and the one to use instead."""
    if not isinstance(metadata, dict):
        raise ConfigError(f"{_MOVED}; got {type(metadata).__name__}", field="metadata")
    extra = sorted(str(key) for key in metadata if key not in METADATA_KEYS)
    if extra:
        raise ConfigError(f"{_MOVED}; got key(s) {', '.join(map(repr, extra))}", field="metadata")
    if not all(isinstance(value, str) for value in metadata.values()):
        raise ConfigError(f"{_MOVED}; user_id must be a string", field="metadata")


def metadata_hint(exc: msgspec.DecodeError) -> str:
    """A decoding error's text, with the migration hint when it is about ``metadata`` (a value
    of the wrong type is refused before the item's own check can say so)."""
    text = str(exc)
    if "`$.metadata" in text and "user_data" not in text:
        return f"{text} ({_MOVED})"
    return text


Tools: TypeAlias = Sequence[Tool | Callable[..., Any]]
"""What a batch may be given as tools: ``Tool`` objects or plain functions to wrap."""


@dataclass(frozen=True)
class ItemSetup:
    """What every item's conversation is given: the tools, the policy and the hooks."""

    tools: Tools = ()
    policy: Policy | None = None
    hooks: Sequence[Hook] = ()

    def conversation(self, config: Config, backend: Backend | None = None) -> Conversation:
        """A fresh conversation for one item (or one pooled CLI process)."""
        from .._conversation import Conversation

        return Conversation(
            config, backend=backend, tools=self.tools, policy=self.policy, hooks=self.hooks
        )


class BatchItem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One prompt of a batch. ``id`` must be unique within the batch.

    ``user_data`` is the caller's own, handed back unchanged on the item's ``BatchResult``. The
    request settings (``temperature`` … ``extra_body``, ``metadata`` included: the API's request
    metadata, ``{"user_id": ...}``) and ``max_budget_usd`` override the batch config's for this
    item; left ``None``, the config's apply.
    """

    id: str
    prompt: str
    system: str | None = None
    model: str | None = None
    max_tokens: int | None = None
    user_data: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
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

    def __post_init__(self) -> None:
        if self.metadata is not None:
            check_item_metadata(self.metadata)


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
    user_data: dict[str, Any] | None = None


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
            "metadata",
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
