"""Planning a Message Batches job, with no I/O: custom ids, create bodies, splitting, state.

Custom ids must match ``[a-zA-Z0-9_-]{1,64}`` and be unique within a batch. An item id that
already matches is used as it is; any other id becomes a readable, sanitised prefix plus a
hash of the whole id, so the mapping is deterministic (a restarted job computes the same ids)
and reversible through :class:`CustomIds`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence

import msgspec

from .._config import DEFAULT_API_MODEL, Config
from .._events import Message
from .._settings import RequestSettings
from ..backends._protocol import Exchange
from ..backends.api import encode_body
from ._api_wire import BatchRequest
from ._types import BatchItem, item_config

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_REQUESTS",
    "BatchState",
    "CustomIds",
    "SubmittedBatch",
    "build_request",
    "custom_id_for",
    "decode_state",
    "encode_state",
    "item_model",
    "split_requests",
]

MAX_BATCH_REQUESTS = 100_000
"""The API's limit on requests in one batch."""

MAX_BATCH_BYTES = 256_000_000
"""The API's limit on the encoded size of one create body (256 MB)."""

_VALID_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]+")
_PREFIX_CHARS = 40
_HASH_BYTES = 8
_REQUEST_OVERHEAD = len(b'{"custom_id":"","params":}')
_BODY_OVERHEAD = len(b'{"requests":[]}')
_encoder = msgspec.json.Encoder()


def custom_id_for(item_id: str) -> str:
    """The custom id for an item id: the id itself when the API accepts it, else a sanitised
    prefix (up to 40 characters) and 16 hex digits of a hash of the whole id."""
    if _VALID_ID.fullmatch(item_id):
        return item_id
    digest = hashlib.blake2b(item_id.encode(), digest_size=_HASH_BYTES).hexdigest()
    prefix = _UNSAFE.sub("_", item_id)[:_PREFIX_CHARS].strip("_")
    return f"{prefix}-{digest}" if prefix else digest


class CustomIds:
    """The two-way map between item ids and custom ids for one job.

    Raises ``ValueError`` for a duplicate item id, or when a mapped id collides with another
    item's id (only possible when an item id looks like another's mapped form).
    """

    def __init__(self, item_ids: Sequence[str]):
        self._to_custom: dict[str, str] = {}
        self._to_item: dict[str, str] = {}
        for item_id in item_ids:
            if item_id in self._to_custom:
                raise ValueError(f"duplicate batch item id {item_id!r}")
            custom = custom_id_for(item_id)
            if custom in self._to_item:
                other = self._to_item[custom]
                raise ValueError(
                    f"batch item ids {other!r} and {item_id!r} map to the same custom id "
                    f"{custom!r}; rename one of them"
                )
            self._to_custom[item_id] = custom
            self._to_item[custom] = item_id

    def custom_id(self, item_id: str) -> str:
        return self._to_custom[item_id]

    def item_id(self, custom_id: str) -> str | None:
        """The item id behind a custom id, or ``None`` for a custom id of no item of this job."""
        return self._to_item.get(custom_id)


def item_model(item: BatchItem, config: Config) -> str:
    """The model an item runs on: its own, else the configured one, else the default."""
    return item.model or config.model or DEFAULT_API_MODEL


def _system(item: BatchItem, config: Config) -> str | None:
    """The item's system prompt (replacing ``config.system_prompt``), then the appended one."""
    parts = [p for p in (item.system or config.system_prompt, config.append_system_prompt) if p]
    return "\n\n".join(parts) or None


def build_request(item: BatchItem, custom_id: str, config: Config) -> BatchRequest:
    """One batch request: the same body a single Messages request would send, without
    ``stream``. The item's ``system``, ``model``, ``max_tokens`` and request settings override
    the config's."""
    exchange = Exchange(
        prompt=item.prompt,
        history=(Message(role="user", content=item.prompt),),
        turn_id=custom_id,
        model=item_model(item, config),
        max_tokens=item.max_tokens or config.max_tokens,
        system=_system(item, config),
        stream=False,
        settings=RequestSettings.of(item_config(config, item)),
    )
    params = encode_body(
        exchange, default_model=DEFAULT_API_MODEL, prompt_caching=config.prompt_caching
    )
    return BatchRequest(custom_id, msgspec.Raw(params))


def split_requests(
    requests: Sequence[BatchRequest],
    *,
    max_requests: int = MAX_BATCH_REQUESTS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> Iterator[list[BatchRequest]]:
    """Cut requests, in order, into batches of at most ``max_requests`` requests whose encoded
    create body is at most ``max_bytes``. A request too large for any batch is a ``ValueError``
    (raised before any batch is yielded)."""
    if max_requests < 1:
        raise ValueError(f"max_requests must be at least 1, got {max_requests}")
    sizes = [_REQUEST_OVERHEAD + len(r.custom_id) + len(r.params) for r in requests]
    for request, size in zip(requests, sizes, strict=True):
        if _BODY_OVERHEAD + size > max_bytes:
            raise ValueError(
                f"batch request {request.custom_id!r} encodes to {size} bytes, over the "
                f"{max_bytes}-byte limit of one batch"
            )
    chunk: list[BatchRequest] = []
    used = _BODY_OVERHEAD
    for request, size in zip(requests, sizes, strict=True):
        # every request after the first adds a comma
        if chunk and (len(chunk) == max_requests or used + 1 + size > max_bytes):
            yield chunk
            chunk, used = [], _BODY_OVERHEAD
        used += size + (1 if chunk else 0)
        chunk.append(request)
    if chunk:
        yield chunk


# --------------------------------------------------------------------------- state file


class SubmittedBatch(msgspec.Struct, frozen=True):
    """A batch this job created, and the custom ids of the requests it holds."""

    id: str
    custom_ids: list[str]


class BatchState(msgspec.Struct, frozen=True, kw_only=True):
    """What a job must remember to re-attach after a restart instead of submitting again."""

    version: int = 1
    batches: tuple[SubmittedBatch, ...] = ()


_state_decoder = msgspec.json.Decoder(BatchState)


def encode_state(state: BatchState) -> bytes:
    return _encoder.encode(state) + b"\n"


def decode_state(data: bytes) -> BatchState:
    """Decode a state file; ``ValueError`` (msgspec's) when it is not one."""
    return _state_decoder.decode(data)
