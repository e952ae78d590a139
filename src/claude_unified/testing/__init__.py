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
        CommentStall,
        Delay,
        Drip,
        Drop,
        ErrorReply,
        Fault,
        Gzip,
        Malformed,
        Raw,
        Reply,
        Reset,
        Stall,
        Step,
        StreamError,
        comment_stall,
        delay,
        drip,
        drop,
        error,
        gzip,
        malformed,
        message,
        raw,
        render_message,
        render_stream,
        reply,
        reset,
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
        "CommentStall Delay Drip Drop ErrorReply Fault Gzip Malformed Raw Reply Reset Stall Step "
        "StreamError comment_stall delay drip drop error gzip malformed message raw "
        "render_message render_stream reply reset stall stream_error thinking tool_call "
        "tool_calls"
    ),
    "._server": "FakeAnthropicServer",
}

__all__ = [
    "CommentStall",
    "Delay",
    "Drip",
    "Drop",
    "ErrorReply",
    "FakeAnthropicServer",
    "FakeBackend",
    "Fault",
    "FunctionBackend",
    "Gzip",
    "Malformed",
    "Raw",
    "RecordedRequest",
    "RecordingBackend",
    "ReplayBackend",
    "ReplayMismatch",
    "Reply",
    "Reset",
    "Stall",
    "Step",
    "StreamError",
    "check_backend",
    "comment_stall",
    "delay",
    "drip",
    "drop",
    "error",
    "gzip",
    "malformed",
    "message",
    "override",
    "raw",
    "render_message",
    "render_stream",
    "reply",
    "reset",
    "stall",
    "stream_error",
    "thinking",
    "tool_call",
    "tool_calls",
]


if not TYPE_CHECKING:  # hidden from type checkers, which see the imports above
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS, __all__)
