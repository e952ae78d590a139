"""Saving a conversation to JSON and continuing it later, on either backend.

An API conversation is its history, so the file holds every message. A CLI conversation lives in
the CLI's own session store, so the file holds its session id and continuing it means resuming
that session. The same two calls serve both: ``conv.save(path)`` and ``Conversation.restore(path)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from ._events import Message
from ._exceptions import ConfigError
from ._files import write_atomically

__all__ = ["SavedConversation", "read_saved", "write_saved"]

FORMAT_VERSION = 1


class SavedConversation(msgspec.Struct, frozen=True, kw_only=True):
    """What ``Conversation.save`` writes."""

    format_version: int = FORMAT_VERSION
    backend: str
    session_id: str | None = None
    model: str | None = None
    history: list[Message] = msgspec.field(default_factory=list)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(SavedConversation)


def write_saved(path: str | os.PathLike[str], saved: SavedConversation) -> None:
    """Write atomically: a crash mid-write never leaves a truncated file behind."""
    write_atomically(path, msgspec.json.format(_encoder.encode(saved)))


def read_saved(path: str | os.PathLike[str]) -> SavedConversation:
    try:
        saved = _decoder.decode(Path(path).read_bytes())
    except FileNotFoundError as exc:
        raise ConfigError(f"no saved conversation at {path}", field="path") from exc
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"{path} is not a saved conversation: {exc}", field="path") from exc
    if saved.format_version != FORMAT_VERSION:
        raise ConfigError(
            f"{path} has format version {saved.format_version}; this version reads "
            f"{FORMAT_VERSION}",
            field="path",
        )
    return saved
