"""The files of a batch job: JSONL input, JSONL output, resuming, and sharding.

Input: one item per line. A line starting with ``{`` is a JSON ``BatchItem``; any other
non-blank line is a prompt whose id is its line number. A line that cannot be an item is reported
(with its number) and skipped, and so is a repeated id. Output: one ``BatchResult`` per line,
written and flushed as each item completes, so a crash loses only items still in flight.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import msgspec

from .._files import write_atomically
from ._types import BatchItem, BatchResult, metadata_hint

__all__ = [
    "InputProblem",
    "ResultWriter",
    "finished_ids",
    "parse_items",
    "parse_shard",
    "read_items",
    "shard_of",
]

_item_decoder = msgspec.json.Decoder(BatchItem)
_result_decoder = msgspec.json.Decoder(BatchResult)
_encoder = msgspec.json.Encoder()


class InputProblem(msgspec.Struct, frozen=True):
    """An input line that was skipped, and why."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def parse_items(lines: Iterable[str]) -> tuple[list[BatchItem], list[InputProblem]]:
    """The items of ``lines`` (numbered from 1) and the problems of the lines that are not."""
    items: list[BatchItem] = []
    problems: list[InputProblem] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        try:
            item = _parse_line(text, number)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            problems.append(InputProblem(number, f"not a valid item: {metadata_hint(exc)}"))
            continue
        if item.id in first_line:
            message = f"duplicate id {item.id!r} (first on line {first_line[item.id]}); skipped"
            problems.append(InputProblem(number, message))
            continue
        first_line[item.id] = number
        items.append(item)
    return items, problems


def _parse_line(text: str, number: int) -> BatchItem:
    if text.lstrip().startswith("{"):
        return _item_decoder.decode(text)
    return BatchItem(id=str(number), prompt=text)


def read_items(path: str | os.PathLike[str]) -> tuple[list[BatchItem], list[InputProblem]]:
    """``parse_items`` over a UTF-8 file."""
    with open(path, encoding="utf-8") as handle:
        return parse_items(handle)


# --------------------------------------------------------------------------- sharding


def shard_of(item_id: str, shards: int) -> int:
    """The shard (0-based) an item belongs to: a stable hash of its id, the same on every
    machine and every run, so N machines split one file and their outputs concatenate."""
    digest = hashlib.sha256(item_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def parse_shard(value: str) -> tuple[int, int]:
    """``"I/N"`` (0-based ``I`` < ``N``) as ``(I, N)``; ValueError otherwise."""
    index, sep, count = value.partition("/")
    try:
        shard, shards = int(index), int(count)
    except ValueError:
        shard = shards = -1
    if not sep or shards < 1 or not 0 <= shard < shards:
        raise ValueError(f"--shard wants I/N with 0 <= I < N, such as 0/3; got {value!r}")
    return shard, shards


# --------------------------------------------------------------------------- output


def finished_ids(path: str | os.PathLike[str]) -> tuple[set[str], int]:
    """For ``--resume``: the ids with a successful result in ``path``, after rewriting it to
    hold only those (first occurrence of each). Failed results are dropped, since their items
    run again, and so is an unfinished last line left by a crash. Returns the ids and how many
    lines were dropped. The rewrite is atomic: a crash leaves the old file or the new one."""
    target = Path(path)
    if not target.exists():
        return set(), 0
    data = target.read_bytes()
    kept: list[bytes] = []
    done: set[str] = set()
    total = 0
    for line in data.splitlines(keepends=True):
        total += 1
        result = _decoded(line) if line.endswith(b"\n") else None
        if result is not None and not result.is_error and result.id not in done:
            done.add(result.id)
            kept.append(line)
    if len(kept) != total:
        write_atomically(target, b"".join(kept))
    return done, total - len(kept)


def _decoded(line: bytes) -> BatchResult | None:
    try:
        return _result_decoder.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


class ResultWriter:
    """Appends results to a JSONL file, one line each, flushed as soon as it is written."""

    def __init__(self, path: str | os.PathLike[str]):
        self._handle: IO[bytes] = open(path, "ab")  # noqa: SIM115 - closed by close()

    def write(self, result: BatchResult) -> None:
        self._handle.write(_encoder.encode(result) + b"\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
