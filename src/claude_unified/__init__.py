"""claude_unified: one typed, async-first interface to Claude over the Messages API or the CLI.

Where things live:

- ``_events``        public events, ``Message``, ``Usage``, content blocks
- ``_wire``          typed msgspec frames of both wire formats and their decoders
- ``_normalize``     pure frame → event reducers
- ``_conversation``  ``Conversation``, ``Turn``, ``Reply``: history, turns, the API agent loop
- ``_batch``         ``run_batch``, ``iter_batch``: many prompts, one fresh conversation each
  (``_batch_types`` its data, ``_batch_limiter`` rate-limit backoff, ``_batch_engine`` how items
  run, ``_batch_cli`` the CLI pool, ``_batch_command`` the ``batch`` command with ``_batch_io``
  and ``_batch_progress``)
- ``_chat``          ``ChatClient``, ``query()``: stateless calls (and their sync forms)
- ``_sync``          ``SyncConversation``, ``SyncTurn``: blocking facades over one portal thread
- ``_toolhost``      policy check + tool dispatch, the same for every backend
- ``_tools``         ``@tool``; ``_builtin_tools``: Read/Write/Edit/Glob/Grep/Bash for the API path
- ``_permissions``   decisions, policies, Claude Code rule syntax
- ``_config``        ``Config`` and its loading
- ``_exceptions``    the error tree
- ``_pricing``       cost from usage (prices in ``data/pricing.toml``)
- ``backends``       ``api`` (HTTP), ``cli`` (subprocess), the ``Backend`` protocol; loaded lazily
- ``testing``        fake backends, ``FakeAnthropicServer``, the pytest plugin
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._batch import BatchRun, iter_batch, run_batch, run_batch_sync
    from ._batch_types import BatchItem, BatchResult
    from ._batches_api import run_via_batches_api
    from ._batches_client import BatchesClient
    from ._batches_wire import RequestCounts
    from ._builtin_tools import builtin_tools
    from ._chat import ChatClient, SyncChatClient, query, query_sync
    from ._config import Config
    from ._conversation import Conversation, Reply, Turn
    from ._events import (
        ApiRetry,
        ContentBlock,
        DocumentBlock,
        Event,
        ImageBlock,
        Message,
        PermissionDecision,
        PermissionRequest,
        RateLimit,
        RedactedThinkingBlock,
        Result,
        ServerToolUseBlock,
        SessionStarted,
        Text,
        TextBlock,
        TextDelta,
        Thinking,
        ThinkingBlock,
        ThinkingDelta,
        ToolInputDelta,
        ToolResult,
        ToolResultBlock,
        ToolUse,
        ToolUseBlock,
        TurnError,
        Unknown,
        UnknownBlock,
        Usage,
        decode_event,
        encode_event,
    )
    from ._exceptions import (
        APIStatusError,
        AuthenticationError,
        BadRequestError,
        ClaudeError,
        CLINotFoundError,
        ConfigError,
        ConnectError,
        InternalServerError,
        NotFoundError,
        OverloadedError,
        PermissionDeniedError,
        ProcessError,
        ProtocolError,
        RateLimitError,
        RequestTooLargeError,
        TimeoutError,
        ToolInputError,
        TransportError,
        TurnLimitError,
    )
    from ._permissions import (
        Allow,
        Ask,
        Decision,
        Deny,
        Policy,
        ToolCall,
        allow_all,
        allow_builtins,
        allow_list,
        callback,
        default_policy,
        deny_all,
        deny_list,
        first_match,
    )
    from ._sync import SyncConversation, SyncTurn
    from ._tools import Tool, ToolArgumentError, tool

# Public names load their module on first use (PEP 562), so `import claude_unified` costs little
# and a program pays only for the parts it uses. Each module's exported names, space-separated:
_EXPORTS = {
    "._batch": "BatchRun iter_batch run_batch run_batch_sync",
    "._batch_types": "BatchItem BatchResult",
    "._batches_api": "run_via_batches_api",
    "._batches_client": "BatchesClient",
    "._batches_wire": "RequestCounts",
    "._builtin_tools": "builtin_tools",
    "._chat": "ChatClient SyncChatClient query query_sync",
    "._config": "Config",
    "._conversation": "Conversation Reply Turn",
    "._events": (
        "ApiRetry ContentBlock DocumentBlock Event ImageBlock Message PermissionDecision "
        "PermissionRequest RateLimit RedactedThinkingBlock Result ServerToolUseBlock "
        "SessionStarted Text TextBlock TextDelta Thinking ThinkingBlock ThinkingDelta "
        "ToolInputDelta ToolResult ToolResultBlock ToolUse ToolUseBlock TurnError Unknown "
        "UnknownBlock Usage decode_event encode_event"
    ),
    "._exceptions": (
        "APIStatusError AuthenticationError BadRequestError ClaudeError CLINotFoundError "
        "ConfigError ConnectError InternalServerError NotFoundError OverloadedError "
        "PermissionDeniedError ProcessError ProtocolError RateLimitError "
        "RequestTooLargeError TimeoutError ToolInputError TransportError TurnLimitError"
    ),
    "._permissions": (
        "Allow Ask Decision Deny Policy ToolCall allow_all allow_builtins allow_list "
        "callback default_policy deny_all deny_list first_match"
    ),
    "._sync": "SyncConversation SyncTurn",
    "._tools": "Tool ToolArgumentError tool",
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names.split()}

__all__ = [
    "APIStatusError",
    "Allow",
    "ApiRetry",
    "Ask",
    "AuthenticationError",
    "BadRequestError",
    "BatchItem",
    "BatchResult",
    "BatchRun",
    "BatchesClient",
    "CLINotFoundError",
    "ChatClient",
    "ClaudeError",
    "Config",
    "ConfigError",
    "ConnectError",
    "ContentBlock",
    "Conversation",
    "Decision",
    "Deny",
    "DocumentBlock",
    "Event",
    "ImageBlock",
    "InternalServerError",
    "Message",
    "NotFoundError",
    "OverloadedError",
    "PermissionDecision",
    "PermissionDeniedError",
    "PermissionRequest",
    "Policy",
    "ProcessError",
    "ProtocolError",
    "RateLimit",
    "RateLimitError",
    "RedactedThinkingBlock",
    "Reply",
    "RequestCounts",
    "RequestTooLargeError",
    "Result",
    "ServerToolUseBlock",
    "SessionStarted",
    "SyncChatClient",
    "SyncConversation",
    "SyncTurn",
    "Text",
    "TextBlock",
    "TextDelta",
    "Thinking",
    "ThinkingBlock",
    "ThinkingDelta",
    "TimeoutError",
    "Tool",
    "ToolArgumentError",
    "ToolCall",
    "ToolInputDelta",
    "ToolInputError",
    "ToolResult",
    "ToolResultBlock",
    "ToolUse",
    "ToolUseBlock",
    "TransportError",
    "Turn",
    "TurnError",
    "TurnLimitError",
    "Unknown",
    "UnknownBlock",
    "Usage",
    "__version__",
    "allow_all",
    "allow_builtins",
    "allow_list",
    "builtin_tools",
    "callback",
    "decode_event",
    "default_policy",
    "deny_all",
    "deny_list",
    "encode_event",
    "first_match",
    "iter_batch",
    "query",
    "query_sync",
    "run_batch",
    "run_batch_sync",
    "run_via_batches_api",
    "tool",
]


if set(__all__) != {*_WHERE, "__version__"}:  # a name added to one list but not the other
    differ = set(__all__) ^ {*_WHERE, "__version__"}
    raise ImportError(f"claude_unified: __all__ and _EXPORTS disagree about {sorted(differ)}")

if not TYPE_CHECKING:  # hidden from type checkers, which see the imports above

    def __getattr__(name: str) -> Any:
        module = _WHERE.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(module, __name__), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
