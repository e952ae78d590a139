"""The data of batch jobs, shared by every way of running them.

``BatchItem`` is one unit of work (an id and a prompt, with optional per-item overrides);
``BatchResult`` is its outcome. One JSON line in, one JSON line out: the same shapes serve
``run_batch`` on either backend and the Message Batches API.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import msgspec

from .._events import TurnError, Usage
from .._tools import Tool

__all__ = ["BatchItem", "BatchResult", "Tools"]

Tools: TypeAlias = Sequence[Tool | Callable[..., Any]]
"""What a batch may be given as tools: ``Tool`` objects or plain functions to wrap."""


class BatchItem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One prompt of a batch. ``id`` must be unique within the batch."""

    id: str
    prompt: str
    system: str | None = None
    model: str | None = None
    max_tokens: int | None = None
    metadata: dict[str, Any] | None = None


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
