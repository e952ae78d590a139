"""The error tree. Every exception the library raises on purpose is a ``ClaudeError``.

::

    ClaudeError
    ├── ConfigError                 bad configuration: names the field, the value and its source
    ├── TransportError              the transport itself failed
    │   ├── ConnectError            could not reach the API (after retries), names the URL
    │   ├── TimeoutError            connect / idle / total timeout
    │   └── ProcessError            the CLI process died: exit code, signal, stderr tail, argv
    │       └── CLINotFoundError    no ``claude`` binary: where we looked, how to install
    ├── APIStatusError              the API answered with an error status (HTTP or mid-stream)
    │   ├── BadRequestError (400)  AuthenticationError (401)  PermissionDeniedError (403)
    │   ├── NotFoundError (404)    RequestTooLargeError (413)  RateLimitError (429)
    │   └── InternalServerError (5xx)   OverloadedError (529)
    ├── ProtocolError               a frame we could not decode: carries the raw bytes
    │   └── ToolInputError          a tool_use block whose JSON input does not parse
    ├── TurnLimitError              the agent loop hit ``max_turns``
    ├── BudgetExceededError         the turn stopped at ``max_budget_usd``
    └── OutputValidationError       a structured reply does not match the requested type

Secrets never appear in messages: every message and text attribute is scrubbed of the known
secrets when the error is made (see ``_secrets``), argv is redacted before it is stored, and no
exception holds a header mapping.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from ._secrets import redact_url, scrub

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "CLINotFoundError",
    "ClaudeError",
    "ConfigError",
    "ConnectError",
    "InternalServerError",
    "NotFoundError",
    "OutputValidationError",
    "OverloadedError",
    "PermissionDeniedError",
    "ProcessError",
    "ProtocolError",
    "RateLimitError",
    "RequestTooLargeError",
    "TimeoutError",
    "ToolInputError",
    "TransportError",
    "TurnLimitError",
    "status_error",
]


class ClaudeError(Exception):
    """Base of every error raised by claude_unified.

    ``partial_text`` holds whatever text the failed turn had produced, so nothing the model
    already said is lost when a turn fails half-way.
    """

    partial_text: str = ""

    def __init__(self, *args: object) -> None:
        super().__init__(*(scrub(a) if isinstance(a, str) else a for a in args))

    def __str__(self) -> str:
        return scrub(super().__str__())


class ConfigError(ClaudeError, ValueError):
    """A configuration value is missing or invalid."""

    def __init__(self, message: str, *, field: str | None = None, source: str | None = None):
        super().__init__(message)
        self.field = field
        self.source = source


class TransportError(ClaudeError):
    """The transport (HTTP connection or CLI process) failed."""


class ConnectError(TransportError):
    """The API could not be reached."""

    def __init__(self, message: str, *, url: str):
        super().__init__(message)
        self.url = scrub(redact_url(url))


class TimeoutError(TransportError, builtins.TimeoutError):
    """A connect, idle or total timeout expired. ``kind`` says which.

    Also a subclass of the builtin ``TimeoutError``, so ``except TimeoutError`` catches it
    whichever of the two names is in scope."""

    def __init__(self, message: str, *, kind: str):
        super().__init__(message)
        self.kind = kind


class ProcessError(TransportError):
    """The CLI process ended unexpectedly or misbehaved."""

    def __init__(
        self,
        message: str,
        *,
        exit_code: int | None = None,
        signal: int | None = None,
        stderr_tail: str = "",
        argv: Sequence[str] = (),
    ):
        details = [message]
        if exit_code is not None:
            details.append(f"exit code {exit_code}")
        if signal is not None:
            details.append(f"killed by signal {signal}")
        if stderr_tail:
            details.append(f"stderr tail:\n{stderr_tail}")
        super().__init__("; ".join(details[:3]) + ("\n" + details[3] if len(details) > 3 else ""))
        self.exit_code = exit_code
        self.signal = signal
        self.stderr_tail = scrub(stderr_tail)
        self.argv = tuple(map(scrub, argv))


class CLINotFoundError(ProcessError):
    """No usable ``claude`` executable was found."""

    def __init__(self, message: str, *, searched: Sequence[str] = ()):
        super().__init__(message)
        self.searched = tuple(searched)


class APIStatusError(ClaudeError):
    """The API returned an error, over HTTP or as an ``error`` event inside a stream."""

    status_code: int

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_type: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.error_type = error_type
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        base = super().__str__()
        kind = f" {self.error_type}" if self.error_type else ""
        rid = f" (request-id {self.request_id})" if self.request_id else ""
        return f"{self.status_code}{kind}: {base}{rid}"


class BadRequestError(APIStatusError):
    """400: the request was malformed."""


class AuthenticationError(APIStatusError):
    """401: the key or token was rejected."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this resource."""


class NotFoundError(APIStatusError):
    """404: no such model or endpoint."""


class RequestTooLargeError(APIStatusError):
    """413: the request body is over the limit."""


class RateLimitError(APIStatusError):
    """429: rate limited. ``retry_after`` is the server's requested wait in seconds."""


class InternalServerError(APIStatusError):
    """5xx: the API failed."""


class OverloadedError(InternalServerError):
    """529: the API is overloaded."""


class ProtocolError(ClaudeError):
    """A frame or line could not be decoded. ``raw`` is the offending bytes."""

    def __init__(self, message: str, *, raw: bytes = b""):
        super().__init__(message)
        self.raw = raw


class ToolInputError(ProtocolError):
    """A ``tool_use`` block's streamed JSON input did not parse."""

    def __init__(self, message: str, *, index: int, tool_name: str, raw: bytes):
        super().__init__(message, raw=raw)
        self.index = index
        self.tool_name = tool_name


class TurnLimitError(ClaudeError):
    """The agent loop reached ``max_turns`` without the model finishing."""

    def __init__(self, message: str, *, max_turns: int):
        super().__init__(message)
        self.max_turns = max_turns


class BudgetExceededError(ClaudeError):
    """The conversation's spend reached ``max_budget_usd``; the turn stopped before the next
    request (API) or the CLI stopped it (``error_max_budget_usd``)."""

    def __init__(self, message: str, *, max_budget_usd: float | None = None):
        super().__init__(message)
        self.max_budget_usd = max_budget_usd


class OutputValidationError(ClaudeError, ValueError):
    """The model's structured reply is not valid JSON of the requested type. ``raw_text`` is
    the reply as it came; ``errors`` says what did not match."""

    def __init__(self, raw_text: str, errors: Sequence[str]):
        self.raw_text = raw_text
        self.errors = list(errors)
        super().__init__(f"the reply does not match the requested output type: {'; '.join(errors)}")


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: RequestTooLargeError,
    429: RateLimitError,
    529: OverloadedError,
}

# Mid-stream ``error`` events carry only a type; these map them onto the HTTP status they mean.
ERROR_TYPE_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def status_error(
    status_code: int,
    message: str,
    *,
    error_type: str | None = None,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> APIStatusError:
    """Build the most specific ``APIStatusError`` subclass for a status code."""
    cls = _STATUS_CLASSES.get(status_code)
    if cls is None:
        cls = InternalServerError if status_code >= 500 else APIStatusError
    return cls(
        message,
        status_code=status_code,
        error_type=error_type,
        request_id=request_id,
        retry_after=retry_after,
    )
