"""Typed msgspec frames of the Message Batches API, and their decoders.

Result lines are decoded like every other frame (see ``_wire``): one typed pass first; when it
fails validation, the line is taken apart so that an unknown result type (or an unknown content
block inside a succeeded message) is kept raw instead of being an error.
"""

from __future__ import annotations

from typing import TypeAlias, TypeVar

import msgspec

from .. import _wire as w
from .._events import JsonObject
from .._exceptions import ProtocolError

__all__ = [
    "BatchRequest",
    "BatchResultLine",
    "BatchResultOutcome",
    "CanceledResult",
    "DeletedMessageBatch",
    "ErroredResult",
    "ExpiredResult",
    "MessageBatch",
    "MessageBatchPage",
    "RequestCounts",
    "SucceededResult",
    "UnknownResult",
    "decode_deleted_batch",
    "decode_message_batch",
    "decode_message_batch_page",
    "decode_result_line",
    "encode_create_body",
]

# --------------------------------------------------------------------------- requests


class BatchRequest(msgspec.Struct, frozen=True):
    """One request of a batch. ``params`` is an encoded Messages create body (no ``stream``)."""

    custom_id: str
    params: msgspec.Raw


class _CreateBody(msgspec.Struct, frozen=True):
    requests: list[BatchRequest]


_encoder = msgspec.json.Encoder()


def encode_create_body(requests: list[BatchRequest]) -> bytes:
    """The body of ``POST /v1/messages/batches``."""
    return _encoder.encode(_CreateBody(requests))


# --------------------------------------------------------------------------- batches


class RequestCounts(msgspec.Struct, frozen=True):
    """How many requests of a batch are in each state (the sum is the batch's size)."""

    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0

    @property
    def total(self) -> int:
        """All requests of the batch, in any state."""
        return self.processing + self.succeeded + self.errored + self.canceled + self.expired

    def __add__(self, other: RequestCounts) -> RequestCounts:
        """Counts of two batches together (a job split into several batches)."""
        return RequestCounts(
            self.processing + other.processing,
            self.succeeded + other.succeeded,
            self.errored + other.errored,
            self.canceled + other.canceled,
            self.expired + other.expired,
        )


class MessageBatch(msgspec.Struct, frozen=True):
    """A batch as the API reports it. ``processing_status`` is ``"in_progress"``,
    ``"canceling"`` or ``"ended"``; timestamps are RFC 3339 strings."""

    id: str
    processing_status: str
    request_counts: RequestCounts = msgspec.field(default_factory=RequestCounts)
    created_at: str | None = None
    expires_at: str | None = None
    ended_at: str | None = None
    cancel_initiated_at: str | None = None
    archived_at: str | None = None
    results_url: str | None = None
    type: str = "message_batch"

    @property
    def ended(self) -> bool:
        return self.processing_status == "ended"


class MessageBatchPage(msgspec.Struct, frozen=True):
    """One page of ``GET /v1/messages/batches``, newest first."""

    data: list[MessageBatch]
    has_more: bool = False
    first_id: str | None = None
    last_id: str | None = None


class DeletedMessageBatch(msgspec.Struct, frozen=True):
    id: str
    type: str = "message_batch_deleted"


# --------------------------------------------------------------------------- results


class _Outcome(msgspec.Struct, frozen=True, tag_field="type"):
    pass


class SucceededResult(_Outcome, frozen=True, tag="succeeded"):
    message: w.MessageResponse


class ErroredResult(_Outcome, frozen=True, tag="errored"):
    error: w.ErrorBody = msgspec.field(default_factory=w.ErrorBody)


class CanceledResult(_Outcome, frozen=True, tag="canceled"):
    pass


class ExpiredResult(_Outcome, frozen=True, tag="expired"):
    pass


class UnknownResult(_Outcome, frozen=True, tag="unknown_result"):
    """A result type this version does not model, kept whole."""

    raw: JsonObject


BatchResultOutcome: TypeAlias = (
    SucceededResult | ErroredResult | CanceledResult | ExpiredResult | UnknownResult
)


class BatchResultLine(msgspec.Struct, frozen=True):
    """One line of a batch's results file."""

    custom_id: str
    result: BatchResultOutcome


class _RawResultLine(msgspec.Struct):
    custom_id: str
    result: msgspec.Raw


class _RawSucceeded(msgspec.Struct):
    message: msgspec.Raw


_KNOWN_RESULTS = frozenset({"succeeded", "errored", "canceled", "expired"})

_T = TypeVar("_T")

_result_line = msgspec.json.Decoder(BatchResultLine)
_raw_result_line = msgspec.json.Decoder(_RawResultLine)
_raw_succeeded = msgspec.json.Decoder(_RawSucceeded)
_message_batch = msgspec.json.Decoder(MessageBatch)
_message_batch_page = msgspec.json.Decoder(MessageBatchPage)
_deleted_batch = msgspec.json.Decoder(DeletedMessageBatch)
_json_object = msgspec.json.Decoder(JsonObject)


def decode_result_line(data: bytes | str) -> BatchResultLine:
    """Decode one results line; an unknown result type becomes ``UnknownResult``."""
    try:
        return _result_line.decode(data)
    except msgspec.ValidationError as exc:
        return _decode_result_line_slow(data, exc)
    except msgspec.DecodeError as exc:
        raise w.malformed("batch result line", data, exc) from exc


def _decode_result_line_slow(data: bytes | str, exc: msgspec.ValidationError) -> BatchResultLine:
    try:
        line = _raw_result_line.decode(data)
        kind = w.type_of(line.result, "batch result")
        if kind == "succeeded":
            message = _raw_succeeded.decode(line.result).message
            return BatchResultLine(
                line.custom_id, SucceededResult(w.decode_message_response(bytes(message)))
            )
    except (msgspec.ValidationError, ProtocolError) as inner:
        raise w.malformed("batch result line", data, inner) from inner
    if kind in _KNOWN_RESULTS:
        raise w.malformed("batch result line", data, exc) from exc
    return BatchResultLine(line.custom_id, UnknownResult(_json_object.decode(line.result)))


def _decode(decoder: msgspec.json.Decoder[_T], data: bytes, what: str) -> _T:
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise w.malformed(what, data, exc) from exc


def decode_message_batch(data: bytes) -> MessageBatch:
    return _decode(_message_batch, data, "message batch")


def decode_message_batch_page(data: bytes) -> MessageBatchPage:
    return _decode(_message_batch_page, data, "message batch list")


def decode_deleted_batch(data: bytes) -> DeletedMessageBatch:
    return _decode(_deleted_batch, data, "deleted message batch")
