"""HTTP pieces shared by every client of the Anthropic API: headers, the pooled client, the
mapping of failures onto the error tree, and the decision to retry."""

from __future__ import annotations

import logging
import platform
import ssl
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import httpx
import msgspec

from .. import _wire as w
from .._config import Config
from .._exceptions import ConfigError, ConnectError, RateLimitError, TimeoutError, status_error
from .._version import __version__
from ._registry import check_real_backend
from ._retry import backoff, server_wait, should_retry

USER_AGENT = f"claude-unified/{__version__} (python {platform.python_version()}; httpx)"

log = logging.getLogger(__name__)
_STARTED = "claude_unified.started"  # request extension: when the request was sent


class Retry(Exception):
    """A failed attempt that may be retried; ``final`` is what to raise when retries run out."""

    def __init__(self, final: Exception, *, status: int | None, wait: float | None, kind: str):
        super().__init__(str(final))
        self.final = final
        self.status = status
        self.wait = wait
        self.kind = kind


def require_credentials(config: Config, user: str) -> None:
    """Raise ``ConfigError`` unless ``config`` has an API key or a bearer token."""
    if not config.has_credentials:
        raise ConfigError(
            f"{user} needs credentials: set ANTHROPIC_API_KEY (or api_key), or "
            "ANTHROPIC_AUTH_TOKEN (or auth_token) for a bearer token",
            field="api_key",
        )


def api_headers(config: Config) -> dict[str, str]:
    """Auth, version and user-agent headers sent on every request."""
    headers = {
        "anthropic-version": config.anthropic_version,
        "content-type": "application/json",
        "accept": "application/json",
        "user-agent": USER_AGENT,
    }
    if config.api_key:
        headers["x-api-key"] = config.api_key
    else:
        headers["authorization"] = f"Bearer {config.auth_token}"
    if config.betas:
        headers["anthropic-beta"] = ",".join(config.betas)
    headers.update(config.extra_headers)
    return headers


def make_client(
    config: Config, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """A pooled client for ``config.base_url`` with the API headers and configured timeouts.

    Without a ``transport`` of the caller's, the client would reach the network: the test
    guard (if installed) is asked first."""
    if transport is None:
        check_real_backend("api", config)
    timeout = httpx.Timeout(config.idle_timeout, connect=config.connect_timeout)
    return httpx.AsyncClient(
        base_url=config.base_url.rstrip("/"),
        headers=api_headers(config),
        timeout=timeout,
        http2=config.http2 and _has_h2(),
        verify=_tls_context(),
        transport=transport,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
        event_hooks={"request": [_note_start], "response": [_log_response]},
    )


async def _note_start(request: httpx.Request) -> None:
    if log.isEnabledFor(logging.DEBUG):
        request.extensions[_STARTED] = time.perf_counter()


async def _log_response(response: httpx.Response) -> None:
    """One DEBUG line per response: method, path (no query), status, request id and the time to
    the response's headers. Headers and bodies are never logged: they carry credentials."""
    started = response.request.extensions.get(_STARTED)
    if started is None or not log.isEnabledFor(logging.DEBUG):
        return
    request = response.request
    log.debug(
        "%s %s -> %d (request-id %s) in %.3fs",
        request.method,
        request.url.path,
        response.status_code,
        response.headers.get("request-id", "-"),
        time.perf_counter() - started,
    )


@cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client, built on first use as httpx would build it
    (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured). Building one loads the whole CA bundle, tens of
    milliseconds and most of a megabyte; one context serves any number of connections."""
    return httpx.create_ssl_context()


def _has_h2() -> bool:
    try:
        import h2  # noqa: F401
    except ImportError:
        return False
    return True


def status_failure(status: int, headers: httpx.Headers, content: bytes) -> Exception:
    """The error for an HTTP error response: a ``Retry`` when it may be retried."""
    parsed = w.decode_error_body(content)
    message = parsed.error.message if parsed else content[:500].decode("utf-8", "replace")
    error_type = parsed.error.type if parsed else None
    request_id = (parsed.request_id if parsed else None) or headers.get("request-id")
    wait = server_wait(headers)
    error = status_error(
        status,
        message or f"HTTP {status}",
        error_type=error_type,
        request_id=request_id,
        retry_after=wait,
    )
    if should_retry(status, headers, _error_code(content)):
        return Retry(error, status=status, wait=wait, kind=error_type or f"http_{status}")
    return error


def connection_failure(exc: httpx.TransportError, url: str) -> Retry:
    what = "could not connect to" if isinstance(exc, httpx.ConnectError) else "lost connection to"
    failure = ConnectError(f"{what} {url}: {exc or type(exc).__name__}", url=url)
    return Retry(failure, status=None, wait=None, kind="connection_error")


def transport_failure(exc: httpx.TransportError, url: str) -> Retry:
    """A timeout or a connection failure, as a retryable attempt."""
    if isinstance(exc, httpx.TimeoutException):
        kind = "connect" if isinstance(exc, httpx.ConnectTimeout) else "idle"
        failure = TimeoutError(f"{kind} timeout talking to {url}", kind=kind)
        return Retry(failure, status=None, wait=None, kind="timeout")
    return connection_failure(exc, url)


def retry_delay(
    retry: Retry, attempt: int, config: Config, backoff: Callable[[int], float] = backoff
) -> float:
    """How long to wait before retry number ``attempt`` (0-based): the server's wait, else
    ``backoff(attempt)``. Raises ``retry.final`` when retries are used up or the server asks for
    a wait longer than ``max_retry_wait``."""
    if attempt >= config.max_retries:
        log.debug("%s: no retries left (%d used)", _what(retry), attempt)
        raise retry.final
    if retry.wait is None:
        delay = backoff(attempt)
    elif retry.wait > config.max_retry_wait:
        if isinstance(retry.final, RateLimitError):
            retry.final.retry_after = retry.wait
        log.debug(
            "%s: the server asks for %.1fs, over max_retry_wait=%gs; not retrying",
            _what(retry),
            retry.wait,
            config.max_retry_wait,
        )
        raise retry.final
    else:
        delay = retry.wait
    log.debug("%s: retry %d of %d in %.3fs", _what(retry), attempt + 1, config.max_retries, delay)
    return delay


def _what(retry: Retry) -> str:
    status = f"status {retry.status}" if retry.status is not None else "no response"
    return f"{retry.kind} ({status})"


class _ErrorCode(msgspec.Struct):
    class _Inner(msgspec.Struct):
        details: dict[str, Any] | None = None

    error: _Inner | None = None


_error_code_decoder = msgspec.json.Decoder(_ErrorCode)


def _error_code(content: bytes) -> str | None:
    try:
        details = _error_code_decoder.decode(content).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if details is None or not details.details:
        return None
    code = details.details.get("error_code")
    return str(code) if code is not None else None
