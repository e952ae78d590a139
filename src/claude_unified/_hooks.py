"""Hooks: user functions that run at fixed points of a turn, the same way on both backends.

``@hook(event, matcher=...)`` turns a sync or async function of one typed input into a ``Hook``.
On the API path the core calls hooks in its agent loop; on the CLI path the same functions answer
the CLI's ``hook_callback`` control requests. Either way they run here, through ``HookSet.run``:
in registration order, each bounded by its timeout, and each call is reported as a ``HookRan``
event. A hook that raises, times out or returns something it should not is a failed hook:
``HookRan(outcome="error")``, and where there is something to refuse (a tool call, a prompt) it
is refused with the error text. A failure never becomes a protocol error.

Only ``PreToolUse``, ``PostToolUse``, ``UserPromptSubmit`` and ``Stop`` exist on both backends.
The CLI's other events (``CLI_ONLY_EVENTS``) are passed to the CLI; on the API they are a
``ConfigError`` naming the event when the conversation opens.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeAlias

import anyio
import anyio.to_thread
import msgspec

from . import _wire as w
from ._events import HookRan, JsonObject
from ._exceptions import ConfigError
from ._permissions import Allow, Deny, Rule, ToolCall

__all__ = [
    "BOTH_EVENTS",
    "CLI_ONLY_EVENTS",
    "DEFAULT_HOOK_TIMEOUT_S",
    "Hook",
    "HookInput",
    "HookOutput",
    "HookResult",
    "HookSet",
    "HookTally",
    "PostToolUseInput",
    "PreToolUseInput",
    "StopInput",
    "UserPromptSubmitInput",
    "cli_hook_input",
    "hook",
]

BOTH_EVENTS = ("PreToolUse", "PostToolUse", "UserPromptSubmit", "Stop")
CLI_ONLY_EVENTS = (
    "Notification",
    "PermissionRequest",
    "PostToolUseFailure",
    "PreCompact",
    "SessionEnd",
    "SessionStart",
    "SubagentStart",
    "SubagentStop",
)
_TOOL_EVENTS = frozenset({"PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest"})
DEFAULT_HOOK_TIMEOUT_S = 60.0


# --------------------------------------------------------------------------- inputs and outputs


class HookInput(msgspec.Struct, frozen=True, kw_only=True):
    """What every hook gets. CLI-only events get exactly this; ``raw`` is the CLI's input."""

    event: str
    session_id: str | None = None
    raw: JsonObject = msgspec.field(default_factory=dict)


class PreToolUseInput(HookInput, frozen=True, kw_only=True):
    """A tool call about to be judged by the policy (``name`` normalized, as policies see it)."""

    tool_use_id: str
    name: str
    input: JsonObject


class PostToolUseInput(HookInput, frozen=True, kw_only=True):
    """A tool call that ran. ``response`` is the tool's output as the backend has it: on the API
    the tool result's content; on the CLI the CLI's ``tool_response`` (for its built-in tools an
    object such as ``{"stdout": ..., "stderr": ...}``)."""

    tool_use_id: str
    name: str
    input: JsonObject
    response: Any = None


class UserPromptSubmitInput(HookInput, frozen=True, kw_only=True):
    """A prompt about to be sent to the model (its text)."""

    prompt: str


class StopInput(HookInput, frozen=True, kw_only=True):
    """The model ended its turn. ``stop_hook_active``: a Stop hook already continued it once."""

    stop_hook_active: bool = False
    last_message: str = ""


class HookOutput(msgspec.Struct, frozen=True, kw_only=True):
    """What a hook can say besides allow/deny.

    ``additional_context`` is shown to the model (UserPromptSubmit, PostToolUse);
    ``system_message`` is for the user (reported in ``HookRan``); on a Stop hook, ``stop=False``
    with a ``reason`` continues the turn, and the model reads the reason.
    """

    additional_context: str | None = None
    system_message: str | None = None
    stop: bool | None = None
    reason: str | None = None


HookResult: TypeAlias = Allow | Deny | HookOutput
HookFn: TypeAlias = Callable[[Any], "HookResult | Awaitable[HookResult | None] | None"]


# --------------------------------------------------------------------------- the decorator


class Hook:
    """A function registered for one event (made by ``@hook``); calling it calls the function."""

    def __init__(
        self, fn: HookFn, event: str, matcher: str | Sequence[str] | None, timeout: float
    ) -> None:
        if event not in BOTH_EVENTS and event not in CLI_ONLY_EVENTS:
            known = ", ".join((*BOTH_EVENTS, *CLI_ONLY_EVENTS))
            raise ValueError(f"unknown hook event {event!r}; known events: {known}")
        if timeout <= 0:
            raise ValueError(f"hook timeout must be > 0 seconds, got {timeout!r}")
        self.fn = fn
        self.event = event
        self.timeout = float(timeout)
        self.name = str(getattr(fn, "__qualname__", None) or repr(fn))
        self.rules: tuple[Rule, ...] = ()
        self.cli_matcher: str | None = None
        if matcher is not None and event in _TOOL_EVENTS:
            texts = [matcher] if isinstance(matcher, str) else list(matcher)
            self.rules = tuple(Rule.parse(text) for text in texts)
        elif matcher is not None:
            if event in BOTH_EVENTS:
                raise ValueError(f"a {event} hook takes no matcher (it is not about a tool)")
            if not isinstance(matcher, str):
                raise TypeError(f"the matcher of a {event} hook is one string, got {matcher!r}")
            self.cli_matcher = matcher  # e.g. PreCompact "manual"/"auto": the CLI matches it
        self._async = inspect.iscoroutinefunction(fn)

    def __call__(self, payload: Any) -> Any:
        return self.fn(payload)

    def __repr__(self) -> str:
        rules = f", matcher={[str(r) for r in self.rules]!r}" if self.rules else ""
        return f"hook({self.event!r}{rules})({self.name})"

    def applies(self, call: ToolCall | None) -> bool:
        """Whether the hook's matcher covers ``call`` (no matcher: every call)."""
        if not self.rules or call is None:
            return True
        return any(rule.matches(call) for rule in self.rules)

    async def invoke(self, payload: HookInput) -> object:
        """Run the function within the timeout. Sync functions run in a worker thread, so a slow
        one cannot stall the event loop past its timeout (the thread is then abandoned)."""
        with anyio.fail_after(self.timeout):
            if self._async:
                return await self.fn(payload)  # type: ignore[misc]
            return await anyio.to_thread.run_sync(self.fn, payload, abandon_on_cancel=True)


def hook(
    event: str,
    matcher: str | Sequence[str] | None = None,
    *,
    timeout: float = DEFAULT_HOOK_TIMEOUT_S,
) -> Callable[[HookFn], Hook]:
    """Register a function for ``event``; give the result to ``Conversation(hooks=[...])``.

    ``matcher`` (tool events only) is a permission rule or a list of them (``"Bash"``,
    ``"Bash(git:*)"``, ``"Write(src/**)"``), matched exactly as policies match. The function
    gets the event's input and returns ``None`` (no opinion), ``Allow``, ``Deny`` or
    ``HookOutput``. ``timeout`` bounds each call, in seconds.
    """

    def decorate(fn: HookFn) -> Hook:
        return Hook(fn, event, matcher, timeout)

    return decorate


# --------------------------------------------------------------------------- running them


class HookTally:
    """What the hooks of one event said, combined: the first Deny (or failure) wins; Allows
    chain their updated input; outputs accumulate."""

    __slots__ = (
        "allowed",
        "contexts",
        "continue_reason",
        "denied",
        "system_messages",
        "updated_input",
    )

    def __init__(self) -> None:
        self.denied: str | None = None
        self.allowed = False
        self.updated_input: JsonObject | None = None
        self.contexts: list[str] = []
        self.system_messages: list[str] = []
        self.continue_reason: str | None = None

    @property
    def context(self) -> str | None:
        return "\n".join(self.contexts) or None

    @property
    def system_message(self) -> str | None:
        return "\n".join(self.system_messages) or None


class HookSet:
    """The hooks of one conversation, by event."""

    def __init__(self, hooks: Iterable[Hook] = ()) -> None:
        self.hooks: tuple[Hook, ...] = tuple(hooks)
        for item in self.hooks:
            if not isinstance(item, Hook):
                raise TypeError(
                    f"hooks=[...] takes functions decorated with @hook(event), got {item!r}"
                )

    def __bool__(self) -> bool:
        return bool(self.hooks)

    def has(self, event: str) -> bool:
        return any(h.event == event for h in self.hooks)

    def cli_only(self) -> list[str]:
        """The events registered here that only the CLI has, in registration order."""
        return list(dict.fromkeys(h.event for h in self.hooks if h.event in CLI_ONLY_EVENTS))

    def refuse_cli_only(self, backend: str) -> None:
        """Raise ``ConfigError`` naming the CLI-only events registered here, on a backend that
        drives its own tool loop (the API path), which never reaches them."""
        cli_only = self.cli_only()
        if cli_only:
            plural = len(cli_only) > 1
            raise ConfigError(
                f"the {', '.join(cli_only)} hook event{'s' if plural else ''} "
                f"exist{'' if plural else 's'} only on the CLI backend, and this "
                f"conversation uses the {backend} backend; remove those hooks or use "
                "backend='cli'",
                field="hooks",
            )

    def registrations(self) -> list[tuple[str, str | None, float]]:
        """What the CLI must call back for: (event, CLI matcher, timeout seconds). PreToolUse is
        always there: it is how the policy judges every call, read-only ones included."""
        found: dict[tuple[str, str | None], float] = {("PreToolUse", None): _POLICY_WAIT_S}
        for h in self.hooks:
            key = (h.event, h.cli_matcher)
            found[key] = max(found.get(key, 0.0), h.timeout + _CLI_TIMEOUT_MARGIN_S)
        return [(event, matcher, timeout) for (event, matcher), timeout in found.items()]

    async def run(
        self,
        payload: HookInput,
        tally: HookTally,
        *,
        call: ToolCall | None = None,
        cli_matcher: str | None = None,
    ) -> list[HookRan]:
        """Run the event's hooks in order; fill ``tally``; return one ``HookRan`` per hook run.

        For PreToolUse, an ``Allow(updated_input)`` hands the new input to the next hook and a
        Deny ends the run.
        """
        ran: list[HookRan] = []
        for h in self.hooks:
            if h.event != payload.event or not h.applies(call) or h.cli_matcher != cli_matcher:
                continue
            ran.append(await _run_one(h, payload, tally, call))
            if tally.denied is not None:
                break
            if tally.updated_input is not None and isinstance(payload, PreToolUseInput):
                payload = msgspec.structs.replace(payload, input=tally.updated_input)
                call = msgspec.structs.replace(call, input=tally.updated_input) if call else None
        return ran


async def _run_one(h: Hook, payload: HookInput, tally: HookTally, call: ToolCall | None) -> HookRan:
    tool_use_id = call.id if call is not None else None
    try:
        result = await h.invoke(payload)
    except anyio.get_cancelled_exc_class():
        raise
    except TimeoutError:
        return _failed(h, payload, tally, tool_use_id, f"did not answer within {h.timeout:g}s")
    except Exception as exc:  # a hook's own bug refuses what it guards, nothing more
        return _failed(h, payload, tally, tool_use_id, f"raised {type(exc).__name__}: {exc}")
    ran = _take(h, payload.event, result, tally, tool_use_id)
    if ran is not None:
        return ran
    expected = "None, Allow, Deny or HookOutput"
    return _failed(h, payload, tally, tool_use_id, f"returned {result!r}; expected {expected}")


def _take(
    h: Hook, event: str, result: object, tally: HookTally, tool_use_id: str | None
) -> HookRan | None:
    """Add what one hook returned to ``tally``; None if it returned something else."""
    name = h.name
    if result is None:
        return HookRan(event, name, "none", tool_use_id)
    if isinstance(result, Deny):
        tally.denied = result.message
        return HookRan(event, name, "deny", tool_use_id, message=result.message)
    if isinstance(result, Allow):
        tally.allowed = True
        if result.updated_input is not None:
            tally.updated_input = result.updated_input
        return HookRan(event, name, "allow", tool_use_id, updated_input=result.updated_input)
    if isinstance(result, HookOutput):
        if result.additional_context:
            tally.contexts.append(result.additional_context)
        if result.system_message:
            tally.system_messages.append(result.system_message)
        if event == "Stop" and result.stop is False:
            tally.continue_reason = result.reason or "Continue."
        return HookRan(
            event,
            name,
            "output",
            tool_use_id,
            message=result.reason,
            additional_context=result.additional_context,
            system_message=result.system_message,
            stop=result.stop,
        )
    return None


def _failed(
    h: Hook, payload: HookInput, tally: HookTally, tool_use_id: str | None, what: str
) -> HookRan:
    message = f"The {payload.event} hook {h.name} failed: it {what}"
    if payload.event in ("PreToolUse", "UserPromptSubmit"):
        tally.denied = message
    return HookRan(
        event=payload.event, hook=h.name, outcome="error", tool_use_id=tool_use_id, message=message
    )


def cli_hook_input(raw: JsonObject, normalize: Callable[[str], str]) -> HookInput:
    """The typed input of a CLI ``hook_callback`` (tool names normalized, as policies see
    them). An input this version cannot read becomes a plain ``HookInput`` of its event."""
    try:
        data = msgspec.convert(raw, w.WireHookInput)
    except msgspec.ValidationError:
        return HookInput(event=str(raw.get("hook_event_name", "")), raw=raw)
    base: dict[str, Any] = {"event": data.hook_event_name, "session_id": data.session_id}
    tool: dict[str, Any] = {
        "tool_use_id": data.tool_use_id or "",
        "name": normalize(data.tool_name or ""),
        "input": data.tool_input or {},
    }
    if data.hook_event_name == "PreToolUse":
        return PreToolUseInput(raw=raw, **base, **tool)
    if data.hook_event_name == "PostToolUse":
        return PostToolUseInput(raw=raw, response=data.tool_response, **base, **tool)
    if data.hook_event_name == "UserPromptSubmit":
        return UserPromptSubmitInput(raw=raw, prompt=data.prompt or "", **base)
    if data.hook_event_name == "Stop":
        last = data.last_assistant_message or ""
        return StopInput(raw=raw, stop_hook_active=data.stop_hook_active, last_message=last, **base)
    return HookInput(raw=raw, **base)


# The CLI gives up on a hook after its registered timeout; ours must fire first, so the CLI
# waits a little longer. The policy's PreToolUse never waits for a person (an Ask is answered
# through can_use_tool), but a slow policy callback may take a while.
_CLI_TIMEOUT_MARGIN_S = 5.0
_POLICY_WAIT_S = 600.0
