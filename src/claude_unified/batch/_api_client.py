"""``BatchesClient``: typed calls to the Message Batches API (``/v1/messages/batches``)."""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import AsyncGenerator, Sequence
from typing import Self
from urllib.parse import quote

import anyio
import httpx

from .._config import Config
from ..backends._http import (
    Retry,
    make_client,
    require_credentials,
    retry_delay,
    status_failure,
    transport_failure,
)
from ..backends._retry import backoff
from . import _api_wire as bw

__all__ = ["BatchesClient"]

_BATCHES = "/v1/messages/batches"


def _batch_path(batch_id: str, suffix: str = "") -> str:
    return f"{_BATCHES}/{quote(batch_id, safe='')}{suffix}"


class BatchesClient:
    """Typed calls to ``/v1/messages/batches`` with the ApiBackend's headers, error mapping and
    retries (429, 5xx, 529, timeouts and connection errors, up to ``config.max_retries``)."""

    def __init__(
        self,
        config: Config,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        require_credentials(config, "the Message Batches API")
        self._config = config
        self._owns_client = client is None
        self._client = client or make_client(config, transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it (shielded from cancellation)."""
        if self._owns_client:
            with anyio.CancelScope(shield=True):  # close the pool even when the caller is canceled
                await self._client.aclose()

    # ---------------------------------------------------------------- calls

    async def create(self, requests: Sequence[bw.BatchRequest]) -> bw.MessageBatch:
        """Submit one batch (1 to 100,000 requests, at most 256 MB encoded)."""
        body = bw.encode_create_body(builtins.list(requests))
        return bw.decode_message_batch(await self._call("POST", _BATCHES, content=body))

    async def retrieve(self, batch_id: str) -> bw.MessageBatch:
        """The batch's current state: processing status and request counts."""
        return bw.decode_message_batch(await self._call("GET", _batch_path(batch_id)))

    async def list(
        self, *, limit: int | None = None, after_id: str | None = None, before_id: str | None = None
    ) -> bw.MessageBatchPage:
        """One page of batches, newest first; page on with ``after_id=page.last_id``."""
        params = {
            name: value
            for name, value in (("limit", limit), ("after_id", after_id), ("before_id", before_id))
            if value is not None
        }
        return bw.decode_message_batch_page(await self._call("GET", _BATCHES, params=params))

    async def cancel(self, batch_id: str) -> bw.MessageBatch:
        """Ask the API to cancel a batch; it reports ``canceling`` until running requests end."""
        return bw.decode_message_batch(
            await self._call("POST", _batch_path(batch_id, "/cancel"), content=b"")
        )

    async def delete(self, batch_id: str) -> bw.DeletedMessageBatch:
        """Delete an ended batch and its results."""
        return bw.decode_deleted_batch(await self._call("DELETE", _batch_path(batch_id)))

    async def results(self, batch_id: str) -> AsyncGenerator[bw.BatchResultLine, None]:
        """Stream an ended batch's result lines, in the API's (arbitrary) order.

        The results are read from ``{base_url}/v1/messages/batches/{id}/results`` rather than from
        ``results_url``, so credentials only ever go to the configured base URL. A failure
        mid-stream is retried like any call; lines already yielded are not yielded again.
        """
        seen: set[str] = set()
        attempt = 0
        while True:
            try:
                async with contextlib.aclosing(self._result_lines(batch_id)) as lines:
                    async for line in lines:
                        if line.custom_id not in seen:
                            seen.add(line.custom_id)
                            yield line
            except Retry as retry:
                await anyio.sleep(retry_delay(retry, attempt, self._config, backoff))
                attempt += 1
                continue
            return

    async def _result_lines(self, batch_id: str) -> AsyncGenerator[bw.BatchResultLine, None]:
        path = _batch_path(batch_id, "/results")
        try:
            async with self._client.stream("GET", path) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise status_failure(response.status_code, response.headers, response.content)
                async for text in response.aiter_lines():
                    if text.strip():
                        yield bw.decode_result_line(text)
        except httpx.TransportError as exc:
            raise transport_failure(exc, self._config.base_url) from exc

    async def _call(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: dict[str, str | int] | None = None,
    ) -> bytes:
        attempt = 0
        while True:
            try:
                response = await self._client.request(method, path, content=content, params=params)
            except httpx.TransportError as exc:
                failure: Exception = transport_failure(exc, self._config.base_url)
            else:
                if response.status_code < 400:
                    return response.content
                failure = status_failure(response.status_code, response.headers, response.content)
            if not isinstance(failure, Retry):
                raise failure
            await anyio.sleep(retry_delay(failure, attempt, self._config, backoff))
            attempt += 1
