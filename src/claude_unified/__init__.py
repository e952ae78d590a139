"""claude_unified: one typed, async-first interface to Claude over the Messages API or the CLI.

Where things live. The core is at the package root; every other job has its own folder, and
lower layers never import higher ones (``backends`` never imports ``testing``; the core never
imports ``batch`` or ``_command``):

- ``_events``        public events, ``Message``, ``Usage``, content blocks
- ``_exceptions``    the error tree
- ``_config``        ``Config`` and its loading; ``_settings``: request settings and their
  wire forms; ``_output``: structured output (schema, validation)
- ``_wire/``         typed msgspec frames of both wire formats and their decoders
  (``_base`` shared open-world helpers, ``_api`` Messages API events, ``_cli`` stream-json lines)
- ``_normalize``     pure frame → event reducers
- ``_toolhost``      policy check + tool dispatch, the same for every backend
- ``_mcp_config``    ``McpServerConfig`` (``Config.mcp_servers``); ``_mcp_client``: the library
  as the client of those servers on the API path (the ``mcp`` extra, loaded lazily)
- ``_tools``         ``@tool``; ``_builtin_tools``: Read/Write/Edit/Glob/Grep/Bash for the API path
- ``_permissions``   decisions, policies, Claude Code rule syntax
- ``_hooks``         ``@hook``: user functions at fixed points of a turn, on both backends
- ``_pricing``       cost from usage (prices in ``data/pricing.toml``)
- ``_conversation``  ``Conversation``: history, turns; ``_turn`` (``Turn``, ``Reply``, the steps
  both loops share), ``_api_turns`` (the API agent loop), ``_cli_turns`` (the CLI frame loop),
  ``_session`` (saved conversations), ``_files`` (atomic writes)
- ``_sync``          ``SyncConversation``, ``SyncTurn``: blocking facades over one portal thread
- ``_chat``          ``ChatClient``, ``query()``: stateless calls (and their sync forms)
- ``backends/``      ``api`` (HTTP), ``cli`` (subprocess), the ``Backend`` protocol, resolution
  by name and entry point; loaded lazily
- ``batch/``         ``run_batch``, ``iter_batch``: many prompts, one fresh conversation each;
  the Message Batches API
- ``_command/``      the ``claude-unified`` command and its subcommands
- ``testing/``       fake backends, ``FakeAnthropicServer``, record/replay, the pytest plugin
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from ._logs import configure_from_env
from ._version import __version__

if TYPE_CHECKING:
    from ._builtin_tools import builtin_tools
    from ._chat import ChatClient, SyncChatClient, query, query_sync
    from ._config import Config
    from ._conversation import Conversation, Reply, Turn
    from ._events import (
        ApiRetry,
        ContentBlock,
        DocumentBlock,
        Event,
        HookRan,
        ImageBlock,
        Message,
        PermissionDecision,
        PermissionRequest,
        RateLimit,
        RedactedThinking,
        RedactedThinkingBlock,
        Result,
        ServerToolUse,
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
        BudgetExceededError,
        ClaudeError,
        CLINotFoundError,
        ConfigError,
        ConnectError,
        InternalServerError,
        NotFoundError,
        OutputValidationError,
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
    from ._hooks import (
        Hook,
        HookInput,
        HookOutput,
        HookResult,
        PostToolUseInput,
        PreToolUseInput,
        StopInput,
        UserPromptSubmitInput,
        hook,
    )
    from ._mcp_config import McpServerConfig
    from ._permissions import (
        READ_ONLY_RULES,
        Allow,
        Ask,
        Decision,
        Deny,
        Policy,
        ToolCall,
        allow_all,
        allow_builtins,
        allow_list,
        allow_read_only,
        callback,
        default_policy,
        deny_all,
        deny_list,
        first_match,
    )
    from ._settings import ThinkingConfig
    from ._sync import SyncConversation, SyncTurn
    from ._tools import Tool, ToolArgumentError, tool
    from .batch._api_client import BatchesClient
    from .batch._api_run import run_via_batches_api
    from .batch._api_wire import RequestCounts
    from .batch._run import BatchRun, iter_batch, run_batch, run_batch_sync
    from .batch._types import BatchItem, BatchResult

# Public names load their module on first use (see ``_lazy``). Each module's names:
_EXPORTS = {
    ".batch._run": "BatchRun iter_batch run_batch run_batch_sync",
    ".batch._types": "BatchItem BatchResult",
    ".batch._api_run": "run_via_batches_api",
    ".batch._api_client": "BatchesClient",
    ".batch._api_wire": "RequestCounts",
    "._builtin_tools": "builtin_tools",
    "._chat": "ChatClient SyncChatClient query query_sync",
    "._config": "Config",
    "._mcp_config": "McpServerConfig",
    "._conversation": "Conversation Reply Turn",
    "._events": (
        "ApiRetry ContentBlock DocumentBlock Event HookRan ImageBlock Message "
        "PermissionDecision "
        "PermissionRequest RateLimit RedactedThinking RedactedThinkingBlock Result "
        "ServerToolUse ServerToolUseBlock "
        "SessionStarted Text TextBlock TextDelta Thinking ThinkingBlock ThinkingDelta "
        "ToolInputDelta ToolResult ToolResultBlock ToolUse ToolUseBlock TurnError Unknown "
        "UnknownBlock Usage decode_event encode_event"
    ),
    "._exceptions": (
        "APIStatusError AuthenticationError BadRequestError BudgetExceededError ClaudeError "
        "CLINotFoundError ConfigError ConnectError InternalServerError NotFoundError "
        "OutputValidationError OverloadedError "
        "PermissionDeniedError ProcessError ProtocolError RateLimitError "
        "RequestTooLargeError TimeoutError ToolInputError TransportError TurnLimitError"
    ),
    "._hooks": (
        "Hook HookInput HookOutput HookResult PostToolUseInput PreToolUseInput StopInput "
        "UserPromptSubmitInput hook"
    ),
    "._permissions": (
        "READ_ONLY_RULES Allow Ask Decision Deny Policy ToolCall allow_all allow_builtins "
        "allow_list allow_read_only callback default_policy deny_all deny_list first_match"
    ),
    "._settings": "ThinkingConfig",
    "._sync": "SyncConversation SyncTurn",
    "._tools": "Tool ToolArgumentError tool",
}

__all__ = [
    "READ_ONLY_RULES",
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
    "BudgetExceededError",
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
    "Hook",
    "HookInput",
    "HookOutput",
    "HookRan",
    "HookResult",
    "ImageBlock",
    "InternalServerError",
    "McpServerConfig",
    "Message",
    "NotFoundError",
    "OutputValidationError",
    "OverloadedError",
    "PermissionDecision",
    "PermissionDeniedError",
    "PermissionRequest",
    "Policy",
    "PostToolUseInput",
    "PreToolUseInput",
    "ProcessError",
    "ProtocolError",
    "RateLimit",
    "RateLimitError",
    "RedactedThinking",
    "RedactedThinkingBlock",
    "Reply",
    "RequestCounts",
    "RequestTooLargeError",
    "Result",
    "ServerToolUse",
    "ServerToolUseBlock",
    "SessionStarted",
    "StopInput",
    "SyncChatClient",
    "SyncConversation",
    "SyncTurn",
    "Text",
    "TextBlock",
    "TextDelta",
    "Thinking",
    "ThinkingBlock",
    "ThinkingConfig",
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
    "UserPromptSubmitInput",
    "__version__",
    "allow_all",
    "allow_builtins",
    "allow_list",
    "allow_read_only",
    "builtin_tools",
    "callback",
    "decode_event",
    "default_policy",
    "deny_all",
    "deny_list",
    "encode_event",
    "first_match",
    "hook",
    "iter_batch",
    "query",
    "query_sync",
    "run_batch",
    "run_batch_sync",
    "run_via_batches_api",
    "tool",
]


configure_from_env()

if not TYPE_CHECKING:  # hidden from type checkers, which see the imports above
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS, __all__)
