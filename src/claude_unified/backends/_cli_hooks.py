"""The CLI's hook protocol: the ``hooks`` of ``initialize`` and the answers to ``hook_callback``.

The core says what to register and how to answer (``HookRegistration``, ``HookAnswer``); this
module spells it the CLI's way. Matching of tool names is the core's (it matches hooks with the
same rules as policies), so tool events are registered for every tool.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from .._events import JsonObject
from ._protocol import HookAnswer, HookRegistration

__all__ = ["hook_output", "initialize_hooks"]


class _Matcher(msgspec.Struct, frozen=True):
    matcher: str | None
    callback_ids: list[str] = msgspec.field(name="hookCallbackIds")
    timeout: float = 60.0


class _Specific(msgspec.Struct, frozen=True, omit_defaults=True, rename="camel"):
    hook_event_name: str
    permission_decision: str | None = None
    permission_decision_reason: str | None = None
    updated_input: JsonObject | None = None
    additional_context: str | None = None


class _Output(msgspec.Struct, frozen=True, omit_defaults=True, rename="camel"):
    decision: str | None = None
    reason: str | None = None
    system_message: str | None = None
    hook_specific_output: _Specific | None = None


def initialize_hooks(registrations: Iterable[HookRegistration]) -> dict[str, Any] | None:
    """The ``hooks`` field of ``initialize``: ``{event: [{matcher, hookCallbackIds, timeout}]}``."""
    found: dict[str, list[_Matcher]] = {}
    for r in registrations:
        found.setdefault(r.event, []).append(_Matcher(r.matcher, [r.callback_id], r.timeout_s))
    return msgspec.to_builtins(found) if found else None


def hook_output(answer: HookAnswer) -> JsonObject:
    """The ``hook_callback`` response for ``answer`` (``{}``: no opinion)."""
    specific = None
    if answer.permission is not None or answer.additional_context is not None:
        specific = _Specific(
            answer.event,
            permission_decision=answer.permission,
            permission_decision_reason=answer.reason if answer.permission else None,
            updated_input=answer.updated_input,
            additional_context=answer.additional_context,
        )
    output = _Output(
        decision="block" if answer.block else None,
        reason=answer.reason if answer.block else None,
        system_message=answer.system_message,
        hook_specific_output=specific,
    )
    built: JsonObject = msgspec.to_builtins(output)
    return built
