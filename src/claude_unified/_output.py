"""Structured output: the JSON schema sent for a requested type, and the reply validated into it.

The type is a msgspec Struct, a dataclass or a TypedDict. Its schema comes from the same code as
tool schemas (``_tools.object_schema``), with ``additionalProperties: false`` on every object,
as the API's structured outputs require. The reply's text is decoded and validated with
``msgspec.convert``: what the model sees and what its reply must pass are one type.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from ._events import JsonObject
from ._exceptions import OutputValidationError
from ._tools import object_schema

__all__ = ["output_schema", "parse_output"]

T = TypeVar("T")

_json = msgspec.json.Decoder()


def output_schema(kind: type[Any]) -> JsonObject:
    """The JSON schema a structured reply of type ``kind`` must match."""
    name = getattr(kind, "__name__", repr(kind))
    schema = object_schema(kind, f"output type {name} has no JSON schema")
    _close_objects(schema)
    return schema


def _close_objects(node: object) -> None:
    if isinstance(node, list):
        for item in node:
            _close_objects(item)
    elif isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _close_objects(value)


def parse_output(raw_text: str, kind: type[T]) -> T:
    """The reply ``raw_text`` as a ``kind``; ``OutputValidationError`` when it is not one."""
    try:
        value = _json.decode(raw_text)
    except msgspec.DecodeError as exc:
        raise OutputValidationError(raw_text, [f"not JSON: {exc}"]) from None
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise OutputValidationError(raw_text, [str(exc)]) from None
