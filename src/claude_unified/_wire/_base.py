"""Shared wire pieces and the open-world decoding helpers every wire decoder uses.

A decoder first tries one typed pass over a whole frame. Only when that pass fails validation
does it fall back: a value whose type is unknown comes back as the raw object, a value of a known
type with a malformed body is a ``ProtocolError`` carrying the bytes.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from .._events import CacheCreation, ContentBlock, JsonObject, UnknownBlock
from .._exceptions import ProtocolError


class WireUsage(msgspec.Struct, frozen=True, omit_defaults=True):
    """Usage as sent on the wire: any field may be missing or null (``message_delta``)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation: CacheCreation | None = None


class ErrorDetail(msgspec.Struct, frozen=True):
    type: str = "api_error"
    message: str = ""


class ErrorBody(msgspec.Struct, frozen=True):
    """``{"type":"error","error":{…},"request_id":…}`` — the body of an API error."""

    error: ErrorDetail = msgspec.field(default_factory=ErrorDetail)
    request_id: str | None = None


class _Envelope(msgspec.Struct):
    type: str = ""


_T = TypeVar("_T")


json_object_decoder = msgspec.json.Decoder(JsonObject)


_envelope = msgspec.json.Decoder(_Envelope)


_block: msgspec.json.Decoder[ContentBlock] = msgspec.json.Decoder(ContentBlock)


_error_body = msgspec.json.Decoder(ErrorBody)


_KNOWN_BLOCKS = frozenset(
    {
        "text",
        "image",
        "document",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "server_tool_use",
    }
)


def malformed(what: str, data: bytes | str, exc: Exception) -> ProtocolError:
    raw = data.encode() if isinstance(data, str) else bytes(data)
    return ProtocolError(f"malformed {what}: {exc}", raw=raw)


def as_bytes(data: bytes | str | msgspec.Raw) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


def type_of(data: bytes | str | msgspec.Raw, what: str) -> str:
    try:
        return _envelope.decode(data).type
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise malformed(what, as_bytes(data), exc) from exc


def decode_open(
    data: bytes | msgspec.Raw,
    typed: msgspec.json.Decoder[_T],
    known: frozenset[str],
    what: str,
) -> _T | JsonObject:
    """Decode one value of an open union: typed when its type is known, else the raw object."""
    try:
        return typed.decode(data)
    except msgspec.ValidationError as exc:
        if type_of(data, what) in known:
            raise malformed(what, as_bytes(data), exc) from exc
        return json_object_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise malformed(what, as_bytes(data), exc) from exc


def decode_block(data: bytes | msgspec.Raw) -> ContentBlock:
    """Decode one content block; an unknown block type becomes ``UnknownBlock``."""
    value = decode_open(data, _block, _KNOWN_BLOCKS, "content block")
    return UnknownBlock(raw=value) if isinstance(value, dict) else value


def decode_blocks(raws: list[msgspec.Raw]) -> list[ContentBlock]:
    return [decode_block(raw) for raw in raws]


def decode_error_body(data: bytes) -> ErrorBody | None:
    """Decode an API error body; ``None`` when it is not the API's JSON shape (e.g. an edge 413)."""
    try:
        return _error_body.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def decode_json_object(data: bytes) -> JsonObject:
    """Decode a JSON object (used only where the shape really is open: raw passthrough)."""
    try:
        return json_object_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise malformed("JSON object", data, exc) from exc
