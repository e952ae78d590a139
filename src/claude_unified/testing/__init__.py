"""Test helpers: fake backends and a fake Messages API, the steps that script them, ``override``
for code that builds its own conversations, recording and replay, and ``check_backend``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from claude_unified.backends._recording import RecordingBackend
    from claude_unified.testing._conformance import check_backend
    from claude_unified.testing._fake_api import RecordedRequest
    from claude_unified.testing._fake_backend import FakeBackend, FunctionBackend
    from claude_unified.testing._override import override
    from claude_unified.testing._replay import ReplayBackend, ReplayMismatch
    from claude_unified.testing._script import (
        Delay,
        Drop,
        ErrorReply,
        Fault,
        Malformed,
        Reply,
        Stall,
        Step,
        StreamError,
        delay,
        drop,
        error,
        malformed,
        message,
        render_message,
        render_stream,
        reply,
        stall,
        stream_error,
        thinking,
        tool_call,
        tool_calls,
    )
    from claude_unified.testing._server import FakeAnthropicServer

# Names load their module on first use (see ``claude_unified._lazy``): the pytest plugin, loaded
# by every pytest run where the library is installed, imports this package and must stay light.
_EXPORTS = {
    "..backends._recording": "RecordingBackend",
    "._conformance": "check_backend",
    "._fake_api": "RecordedRequest",
    "._fake_backend": "FakeBackend FunctionBackend",
    "._override": "override",
    "._replay": "ReplayBackend ReplayMismatch",
    "._script": (
        "Delay Drop ErrorReply Fault Malformed Reply Stall Step StreamError delay drop error "
        "malformed message render_message render_stream reply stall stream_error thinking "
        "tool_call tool_calls"
    ),
    "._server": "FakeAnthropicServer",
}

__all__ = [
    "Delay",
    "Drop",
    "ErrorReply",
    "FakeAnthropicServer",
    "FakeBackend",
    "Fault",
    "FunctionBackend",
    "Malformed",
    "RecordedRequest",
    "RecordingBackend",
    "ReplayBackend",
    "ReplayMismatch",
    "Reply",
    "Stall",
    "Step",
    "StreamError",
    "check_backend",
    "delay",
    "drop",
    "error",
    "malformed",
    "message",
    "override",
    "render_message",
    "render_stream",
    "reply",
    "stall",
    "stream_error",
    "thinking",
    "tool_call",
    "tool_calls",
]


if not TYPE_CHECKING:  # hidden from type checkers, which see the imports above
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS, __all__)
