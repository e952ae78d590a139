"""ToolHost: the one place where a tool call is judged and dispatched, whichever backend asked.

Every tool call takes the same two steps: ``policy.decide(call)`` → Allow | Deny | Ask, then, for
tools the library owns, ``run(call)``. A tool's failure (bad arguments, an exception) becomes an
``is_error`` result with a useful message, never a crash of the turn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import anyio

from ._permissions import (
    Allow,
    Ask,
    Decision,
    Deny,
    Policy,
    ToolCall,
    default_policy,
    normalize_tool_name,
)
from ._tools import Tool, ToolArgumentError, ToolFailed, normalize_output, tool
from .backends._protocol import ToolOutcome, ToolSpec

__all__ = ["ALLOW_BY_DEFAULT", "ASK_BY_DEFAULT", "ToolHost"]

# Built-in tools that change things. The default policy asks before they run even when
# ``builtin_tools()`` registered them, as the CLI does in its default mode; the read-only ones
# (Read, Glob, Grep) are allowed like any other registered tool.
ASK_BY_DEFAULT = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit", "Bash"})
# The CLI's tools the default policy allows without being registered; both touch nothing:
# ToolSearch reads the list of tools (it is how the CLI's model reaches the library's own,
# deferred, tools) and StructuredOutput hands back the answer of ``output=`` (its only way there).
ALLOW_BY_DEFAULT = frozenset({"StructuredOutput", "ToolSearch"})


class ToolHost:
    """Holds the registered tools and the policy; judges and runs tool calls."""

    def __init__(
        self, tools: Iterable[Tool | Callable[..., Any]] = (), policy: Policy | None = None
    ):
        self.tools: dict[str, Tool] = {}
        for item in tools:
            t = item if isinstance(item, Tool) else tool(item)
            if t.name in self.tools:
                raise ValueError(f"two tools are named {t.name!r}; tool names must be unique")
            self.tools[t.name] = t
        trusted = [name for name in self.tools if name not in ASK_BY_DEFAULT]
        trusted += sorted(ALLOW_BY_DEFAULT)
        self.policy: Policy = policy if policy is not None else default_policy(trusted)

    def add_remote(self, tools: Iterable[Tool]) -> None:
        """Register tools served elsewhere (an external MCP server's). They are dispatched like
        the user's own, but the default policy does not trust them: it asks, as the CLI does."""
        for t in tools:
            if t.name in self.tools:
                raise ValueError(f"two tools are named {t.name!r}; tool names must be unique")
            self.tools[t.name] = t

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(ToolSpec(t.name, t.description, t.input_schema) for t in self.tools.values())

    @staticmethod
    def normalize(name: str) -> str:
        return normalize_tool_name(name)

    def owns(self, name: str) -> bool:
        return normalize_tool_name(name) in self.tools

    async def decide(self, call: ToolCall) -> Decision:
        """The policy's decision; a policy with no opinion means Ask."""
        decision = await self.policy.decide(call)
        return Ask() if decision is None else decision

    async def run(self, call: ToolCall) -> ToolOutcome:
        """Run one of the library's tools. Never raises for a tool's own failure."""
        found = self.tools.get(call.name)
        if found is None:
            known = ", ".join(sorted(self.tools)) or "none"
            return ToolOutcome(
                f"Error: no tool named {call.name!r} is available here (registered: {known})",
                is_error=True,
            )
        try:
            content = await found.run(call.input)
        except ToolArgumentError as exc:
            return ToolOutcome(f"Error: {exc}", is_error=True)
        except ToolFailed as exc:
            return ToolOutcome(normalize_output(exc.content), is_error=True)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:  # a tool's own bug must not end the turn
            return ToolOutcome(f"Error: {type(exc).__name__}: {exc}", is_error=True)
        return ToolOutcome(content)


def unanswered_denial(name: str) -> Deny:
    """The decision used when the policy said Ask and nobody answered."""
    return Deny(
        f"Permission to use {name} was not granted: the policy asked, and no answer came. "
        f"Allow it with a policy such as allow_list([{name!r}]), or answer the "
        "PermissionRequest event with conversation.respond(request, Allow())."
    )


def decision_fields(decision: Decision) -> dict[str, Any]:
    """The PermissionDecision event fields for an Allow or Deny."""
    if isinstance(decision, Allow):
        return {"behavior": "allow", "updated_input": decision.updated_input}
    assert isinstance(decision, Deny)
    return {"behavior": "deny", "message": decision.message, "interrupt": decision.interrupt}
