"""The CLI control protocol, host side: requests we send, and answering the CLI's requests.

Requests we send get unique ids and are matched to their responses by id, with a timeout. Every
request the CLI sends is answered exactly once (success or error), unless the CLI withdraws it
with ``control_cancel_request``; an answer to a withdrawn request is dropped.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from itertools import count

import anyio
import msgspec

from .._events import JsonObject
from .._exceptions import ClaudeError, TimeoutError
from .._wire import ControlResponseBody, OutgoingControlRequest, OutgoingControlResponse

__all__ = ["ControlChannel", "ControlRequestError"]

_encoder = msgspec.json.Encoder()
CONTROL_TIMEOUT_S = 60.0

log = logging.getLogger(__name__)


class ControlRequestError(ClaudeError):
    """The CLI answered a control request with an error."""

    def __init__(self, subtype: str, message: str, code: str | None):
        super().__init__(f"the CLI refused {subtype}: {message}")
        self.subtype = subtype
        self.code = code


class _Pending:
    __slots__ = ("done", "response")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.response: ControlResponseBody | None = None


class ControlChannel:
    """Sends control requests over ``send_line`` and resolves their responses."""

    def __init__(self, send_line: Callable[[bytes], Awaitable[None]]):
        self._send_line = send_line
        self._ids = count(1)
        self._pending: dict[str, _Pending] = {}
        self._withdrawn: set[str] = set()
        self._closed: str | None = None

    async def request(
        self, body: JsonObject, *, timeout_s: float = CONTROL_TIMEOUT_S
    ) -> JsonObject:
        """Send one control request and wait for its response payload."""
        if self._closed is not None:
            raise ControlRequestError(str(body.get("subtype")), self._closed, None)
        request_id = f"req_{next(self._ids)}_{secrets.token_hex(4)}"
        pending = self._pending[request_id] = _Pending()
        subtype = str(body.get("subtype"))
        log.debug("control request %s sent: %s", request_id, subtype)
        try:
            await self._send_line(_encoder.encode(OutgoingControlRequest(request_id, body)))
            with anyio.move_on_after(timeout_s) as scope:
                await pending.done.wait()
            if scope.cancelled_caught:
                raise TimeoutError(
                    f"the CLI did not answer {subtype} within {timeout_s:g}s", kind="control"
                )
        finally:
            self._pending.pop(request_id, None)
        response = pending.response
        assert response is not None
        log.debug("control request %s (%s) answered: %s", request_id, subtype, response.subtype)
        if response.subtype == "error":
            raise ControlRequestError(
                subtype, response.error or "unknown error", response.error_code
            )
        return response.response or {}

    def resolve(self, response: ControlResponseBody) -> None:
        """Deliver a ``control_response`` line to whoever is waiting for it."""
        pending = self._pending.get(response.request_id)
        if pending is not None:
            pending.response = response
            pending.done.set()

    def fail_all(self, error: str) -> None:
        """No response can come any more: every waiting and every later request fails."""
        self._closed = error
        for request_id, pending in list(self._pending.items()):
            pending.response = ControlResponseBody(request_id, "error", error=error)
            pending.done.set()

    def received(self, request_id: str, subtype: str) -> None:
        """Note a control request from the CLI (logged; its answer comes from the backend)."""
        log.debug("control request %s received: %s", request_id, subtype)

    def withdraw(self, request_id: str) -> None:
        """The CLI cancelled one of its requests: its answer must not be sent."""
        log.debug("control request %s withdrawn by the CLI", request_id)
        self._withdrawn.add(request_id)

    async def answer(self, request_id: str, payload: JsonObject) -> None:
        await self._reply(ControlResponseBody(request_id, "success", response=payload))

    async def answer_error(self, request_id: str, message: str) -> None:
        await self._reply(ControlResponseBody(request_id, "error", error=message))

    async def _reply(self, body: ControlResponseBody) -> None:
        if body.request_id in self._withdrawn:
            self._withdrawn.discard(body.request_id)
            return
        log.debug("control request %s answered: %s", body.request_id, body.subtype)
        await self._send_line(_encoder.encode(OutgoingControlResponse(body)))
