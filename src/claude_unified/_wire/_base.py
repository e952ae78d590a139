"""Shared wire pieces and the open-world decoding helpers every wire decoder uses.

A decoder first tries one typed pass over a whole frame. Only when that pass fails validation
does it fall back: a value whose type is unknown comes back as the raw object, a value of a known
type with a malformed body is a ``ProtocolError`` carrying the bytes.
"""

from __future__ import annotations

from typing import TypeVar, overload

import msgspec

from .._events import CacheCreation, ContentBlock, JsonObject, UnknownBlock
from .._exceptions import ProtocolError


class WireUsage(msgspec.Struct, frozen=True, omit_defaults=True):
    """Usage as sent on the wire: any field may be missing or null (``message_delta``).

    ``extra`` holds every field not modelled here, filled by :func:`with_usage_overflow`."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation: CacheCreation | None = None
    service_tier: str | None = None
    inference_geo: str | None = None
    speed: str | None = None
    server_tool_use: JsonObject | None = None
    output_tokens_details: JsonObject | None = None
    extra: JsonObject | None = None


_USAGE_FIELDS = frozenset(WireUsage.__struct_fields__) - {"extra"}


class _UsageOf(msgspec.Struct):
    usage: JsonObject | None = None


class _MessageUsageOf(msgspec.Struct):
    message: _UsageOf = msgspec.field(default_factory=_UsageOf)


_usage_of = msgspec.json.Decoder(_UsageOf)


_message_usage_of = msgspec.json.Decoder(_MessageUsageOf)


@overload
def with_usage_overflow(
    usage: WireUsage, data: bytes | str | msgspec.Raw, *, nested: bool = False
) -> WireUsage: ...
@overload
def with_usage_overflow(
    usage: WireUsage | None, data: bytes | str | msgspec.Raw, *, nested: bool = False
) -> WireUsage | None: ...
def with_usage_overflow(
    usage: WireUsage | None, data: bytes | str | msgspec.Raw, *, nested: bool = False
) -> WireUsage | None:
    """``usage`` with the fields of ``data``'s usage object it does not model kept in ``extra``.

    ``data`` is the frame ``usage`` was decoded from (its ``usage`` key, or its message's when
    ``nested``). A second, shallow pass over a frame that comes at most twice per message."""
    if usage is None:
        return None
    raw = (_message_usage_of.decode(data).message if nested else _usage_of.decode(data)).usage
    extra = {k: v for k, v in (raw or {}).items() if k not in _USAGE_FIELDS}
    return msgspec.structs.replace(usage, extra=extra) if extra else usage


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
