"""Request settings: what shapes one model request beyond the prompt (sampling, stop sequences,
tool choice, extended thinking, effort, metadata, service tier, raw extra fields, the output
schema). ``Config`` holds the defaults; a call may override them; each backend maps them to its
wire (the API's request body, the CLI's flags) or refuses a setting it cannot honour.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Any, Literal, TypeAlias

import msgspec

from ._events import JsonObject
from ._exceptions import BudgetExceededError, ConfigError

__all__ = [
    "REQUEST_SETTING_NAMES",
    "Effort",
    "RequestSettings",
    "ServiceTier",
    "ThinkingConfig",
    "ThinkingSetting",
    "closest",
    "reject_unknown",
]

Effort: TypeAlias = Literal["low", "medium", "high", "xhigh", "max"]
ServiceTier: TypeAlias = Literal["auto", "standard_only"]


class ThinkingConfig(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Extended thinking with a token budget (``thinking={"type": "enabled", ...}`` on the API).

    ``display`` chooses how thinking text comes back (``"summarized"`` or ``"omitted"``); the
    model's default when ``None``.
    """

    budget_tokens: int
    display: Literal["summarized", "omitted"] | None = None

    def __post_init__(self) -> None:
        if self.budget_tokens < 1:
            raise ConfigError(
                f"thinking budget_tokens must be at least 1, got {self.budget_tokens}",
                field="thinking",
            )


ThinkingSetting: TypeAlias = ThinkingConfig | Literal["adaptive", "disabled"] | None
"""``ThinkingConfig(budget_tokens=N)``, ``"adaptive"`` (the model decides), ``"disabled"``, or
``None`` (the backend's default)."""


class RequestSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The settings of one request, resolved from the config and the call's overrides."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: tuple[str, ...] = ()
    tool_choice: str | None = None
    thinking: ThinkingSetting = None
    effort: Effort | None = None
    metadata: dict[str, str] | None = None
    service_tier: ServiceTier | None = None
    extra_body: dict[str, Any] = msgspec.field(default_factory=dict)
    max_budget_usd: float | None = None
    output_schema: JsonObject | None = None

    @classmethod
    def of(cls, source: object, output_schema: JsonObject | None = None) -> RequestSettings:
        """The settings held by ``source`` (a ``Config``), with an optional output schema."""
        values = {name: getattr(source, name) for name in REQUEST_SETTING_NAMES}
        return cls(**values, output_schema=output_schema)

    def body_fields(self) -> JsonObject:
        """The Messages API body fields these settings add (``extra_body`` not included)."""
        body: JsonObject = {}
        for name in ("temperature", "top_p", "top_k", "metadata", "service_tier"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        if self.stop_sequences:
            body["stop_sequences"] = list(self.stop_sequences)
        if self.tool_choice is not None:
            body["tool_choice"] = tool_choice_body(self.tool_choice)
        if self.thinking is not None:
            body["thinking"] = thinking_body(self.thinking)
        output: JsonObject = {}
        if self.effort is not None:
            output["effort"] = self.effort
        if self.output_schema is not None:
            output["format"] = {"type": "json_schema", "schema": self.output_schema}
        if output:
            body["output_config"] = output
        return body


REQUEST_SETTING_NAMES: tuple[str, ...] = tuple(
    name for name in RequestSettings.__struct_fields__ if name != "output_schema"
)
"""The ``Config`` fields that are request settings (each may be overridden per call), the
spending cap included: it is the request's own on the CLI (its flag), and the conversation's
check before the request on the API."""

_CHOICE_KEYWORDS = frozenset({"auto", "any", "none"})


def tool_choice_body(choice: str) -> JsonObject:
    """``"auto"``/``"any"``/``"none"`` as themselves; anything else names the one tool to use."""
    if choice in _CHOICE_KEYWORDS:
        return {"type": choice}
    return {"type": "tool", "name": choice}


def thinking_body(thinking: ThinkingConfig | str) -> JsonObject:
    if isinstance(thinking, ThinkingConfig):
        return {"type": "enabled", **msgspec.to_builtins(thinking)}
    return {"type": thinking}


def closest(name: str, known: Collection[str]) -> str | None:
    """The known name most like ``name`` (a likely misspelling), if any is close."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return match[0] if match else None


def reject_unknown(given: Mapping[str, object], known: Collection[str], what: str) -> None:
    """Raise ``ConfigError`` for the first name in ``given`` that is not in ``known``."""
    for name in given:
        if name not in known:
            guess = closest(name, known)
            hint = f"; did you mean {guess!r}?" if guess else ""
            raise ConfigError(
                f"unknown {what} {name!r}{hint} (valid: {', '.join(sorted(known))})",
                field=name,
                source="argument",
            )


def refuse_spent_budget(budget: float | None, spent_usd: float, within: str) -> None:
    """Before a request, on every path: ``BudgetExceededError`` once ``budget`` is spent
    (``spent_usd`` so far ``within`` the named scope; a budget of 0 allows no request)."""
    if budget is None or spent_usd < budget:
        return
    if budget == 0:
        message = f"max_budget_usd=0 allows no request in this {within}; raise it to go on"
    else:
        message = (
            f"max_budget_usd={budget:g} is spent (${spent_usd:.6f} so far in this {within}); "
            "raise max_budget_usd to go on"
        )
    raise BudgetExceededError(message, max_budget_usd=budget)
