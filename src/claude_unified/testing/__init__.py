"""Test helpers: a scripted fake Messages API and the steps that script it."""

from __future__ import annotations

from claude_unified.testing._fake_api import RecordedRequest
from claude_unified.testing._fake_backend import FakeBackend, FunctionBackend
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
    "Reply",
    "Stall",
    "Step",
    "StreamError",
    "delay",
    "drop",
    "error",
    "malformed",
    "message",
    "render_message",
    "render_stream",
    "reply",
    "stall",
    "stream_error",
    "thinking",
    "tool_call",
    "tool_calls",
]
