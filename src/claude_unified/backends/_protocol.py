"""The Backend protocol: what a transport must do, and the frames it hands to the core.

A backend moves bytes. It frames its transport, decodes each frame with the core's typed
decoders, and yields frames. It never decides a permission, never runs a tool and never builds a
public event: when the CLI asks "may I use this tool?" or "run this tool of yours", the backend
yields a ``PermissionQuery`` or ``ToolInvocation`` carrying a ``reply`` coroutine, and the core
decides and replies.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias, TypeVar, runtime_checkable

import msgspec

from .._events import ContentBlock, JsonObject, Message
from .._settings import RequestSettings
from .._wire import ApiEvent, CliLine, MessageResponse

T = TypeVar("T")


class ToolSpec(msgspec.Struct, frozen=True, omit_defaults=True):
    """A tool the library owns, as offered to the model."""

    name: str
    description: str
    input_schema: JsonObject


class HookRegistration(msgspec.Struct, frozen=True):
    """An event the backend's agent loop must call the core back for (``HookQuery``)."""

    event: str
    matcher: str | None
    timeout_s: float
    callback_id: str


class SessionSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a backend needs to open a session. Built by the core from ``Config``."""

    model: str | None = None
    max_tokens: int = 4096
    system_prompt: str | None = None
    append_system_prompt: str | None = None
    max_turns: int | None = None
    permission_mode: str | None = None
    cwd: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    session_id: str | None = None
    resume: str | None = None
    fork_session: bool = False
    env: Mapping[str, str] = msgspec.field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    settings: RequestSettings = msgspec.field(default_factory=RequestSettings)
    hooks: tuple[HookRegistration, ...] = ()


class Exchange(msgspec.Struct, frozen=True, kw_only=True):
    """One request: the new user content and, for stateless transports, the whole history."""

    prompt: str | list[ContentBlock]
    history: Sequence[Message]
    turn_id: str
    model: str | None = None
    max_tokens: int = 4096
    system: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    stream: bool = True
    extra_body: Mapping[str, Any] | None = None
    settings: RequestSettings = msgspec.field(default_factory=RequestSettings)


class RetryNotice(msgspec.Struct, frozen=True):
    """The transport is about to retry a failed request."""

    attempt: int
    max_retries: int
    delay_s: float
    status: int | None
    error: str


class ResponseStarted(msgspec.Struct, frozen=True):
    """An HTTP response began: its request id and any rate-limit headers."""

    request_id: str | None
    rate_limits: dict[str, str]


class ToolOutcome(msgspec.Struct, frozen=True):
    content: str | list[ContentBlock]
    is_error: bool = False


class PermissionAnswer(msgspec.Struct, frozen=True):
    """The core's answer to a ``PermissionQuery``, in transport-neutral form."""

    behavior: str  # "allow" | "deny"
    message: str | None = None
    interrupt: bool = False
    updated_input: JsonObject | None = None


class PermissionContext(msgspec.Struct, frozen=True):
    """What the backend's agent loop knows about why it asks (the CLI's ``can_use_tool``)."""

    blocked_path: str | None = None
    decision_reason: str | None = None
    suggestions: list[JsonObject] | None = None


class PermissionQuery(msgspec.Struct, frozen=True):
    """The backend's agent loop wants to use a tool; the core must answer via ``reply``."""

    tool_use_id: str
    name: str
    input: JsonObject
    reply: Callable[[PermissionAnswer], Awaitable[None]]
    context: PermissionContext = PermissionContext()


class HookAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """The core's answer to a ``HookQuery``, in transport-neutral form.

    ``permission`` answers a PreToolUse (``ask`` hands the call on to the permission query);
    ``block`` with ``reason`` refuses what the event is about (Stop: the turn goes on, and the
    model reads the reason); ``additional_context`` is for the model.
    """

    event: str
    permission: str | None = None  # "allow" | "deny" | "ask"
    reason: str | None = None
    updated_input: JsonObject | None = None
    block: bool = False
    additional_context: str | None = None
    system_message: str | None = None


class HookQuery(msgspec.Struct, frozen=True):
    """The backend's agent loop reached a registered hook event; the core answers via ``reply``.

    ``input`` is the event's data as the backend has it (``hook_event_name``, ``tool_name``…).
    """

    callback_id: str
    input: JsonObject
    reply: Callable[[HookAnswer], Awaitable[None]]

    def refusal(self, reason: str) -> HookAnswer:
        """The answer for a hook nobody will judge (its turn was abandoned): a PreToolUse is
        denied with ``reason``, any other event gets no opinion."""
        event = str(self.input.get("hook_event_name", ""))
        if event == "PreToolUse":
            return HookAnswer(event=event, permission="deny", reason=reason)
        return HookAnswer(event=event)


class ToolInvocation(msgspec.Struct, frozen=True):
    """The backend's agent loop calls one of the library's tools; the core runs it."""

    tool_use_id: str
    name: str
    input: JsonObject
    reply: Callable[[ToolOutcome], Awaitable[None]]


Frame: TypeAlias = (
    ApiEvent
    | MessageResponse
    | RetryNotice
    | ResponseStarted
    | CliLine
    | PermissionQuery
    | ToolInvocation
    | HookQuery
)


class FrameBatches(Protocol):
    """The frames of one exchange, a network read at a time. A backend may offer this as
    ``exchange_batches(request)`` beside ``exchange``: the core then takes each read's frames
    together (an async generator of lists qualifies)."""

    def __aiter__(self) -> AsyncIterator[list[Frame]]: ...

    def __anext__(self) -> Awaitable[list[Frame]]: ...

    def aclose(self) -> Awaitable[None]: ...


@runtime_checkable
class Backend(Protocol):
    """A transport. ``drives_tool_loop`` is True when the transport runs the agent loop itself
    (the CLI) and consults the core through ``PermissionQuery``/``ToolInvocation`` frames."""

    name: str
    drives_tool_loop: bool

    async def open(self, session: SessionSpec) -> None:
        """Start the transport for one conversation (the CLI backend starts its process)."""

    def exchange(self, request: Exchange) -> AsyncIterator[Frame]:
        """Send one request and yield the frames of its answer, ending with the turn's end."""

    async def interrupt(self) -> None:
        """Stop the exchange in progress; it then ends without raising."""

    async def aclose(self) -> None:
        """Release everything the transport holds; safe to call more than once."""


BackendFactory: TypeAlias = Callable[..., Backend]


@contextlib.asynccontextmanager
async def closing(items: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Iterate ``items`` (an exchange's frames, a turn's events) and close them on the way out
    (a ``break``, an error, a cancellation), on this task: async generators left to the garbage
    collector are closed later, elsewhere, each on its own (at loop shutdown all at once, which
    fails for generators nested in one another), and may hold a connection until then.
    Iterators without ``aclose`` (a third-party backend's) are left as they are."""
    try:
        yield items
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()
