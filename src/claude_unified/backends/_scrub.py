"""Scrubbing recordings: secrets become ``<secret>``, machine paths become placeholders.

Paths are replaced by ``<cwd>``, ``<home>`` and ``<tmp>`` (longest first, so a working directory
under the temp dir is ``<cwd>``), and a replay puts the replaying machine's own paths back.
Whole lines are scrubbed as encoded JSON, where every value appears in its escaped form.
Streamed chunks are scrubbed as the one text they form: a path cut by a chunk boundary is
recorded as slices (``<cwd:0:12>`` then ``<cwd:12:>``), so that a replay on the same machine
streams exactly the recorded chunks, and one elsewhere streams its own path.
"""

from __future__ import annotations

import itertools
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import msgspec

from .._secrets import API_KEY_PATTERN, MIN_SECRET_LEN, secret_values
from ._protocol import SessionSpec

__all__ = ["Scrubber"]

_BEARER = r"(?i:(?<=bearer )[A-Za-z0-9._~+/=\-]{16,})"
_PLACEHOLDER = re.compile(rb"<(cwd|home|tmp)(?::(\d+):(\d*))?>")
_encoder = msgspec.json.Encoder()


def _escaped(text: str) -> str:
    """``text`` as it appears inside a JSON string."""
    return _encoder.encode(text)[1:-1].decode()


class _Patterns:
    """One regex for secrets and machine paths in text of one form: raw, or JSON-escaped."""

    def __init__(self, paths: Mapping[str, str], secrets: Iterable[str], *, json: bool):
        form = _escaped if json else str
        self._name_of = {form(path): name for path, name in paths.items()}
        known = sorted({form(s) for s in secrets}, key=len, reverse=True)
        alternatives = [
            f"(?P<secret>{'|'.join([*map(re.escape, known), API_KEY_PATTERN, _BEARER])})"
        ]
        if self._name_of:
            ordered = "|".join(map(re.escape, sorted(self._name_of, key=len, reverse=True)))
            # Not inside a longer path or word; in JSON an escape such as \n may come before it.
            before = r"(?:(?<![\w.\-])|(?<=\\[bfnrt]))" if json else r"(?<![\w.\-])"
            alternatives.append(rf"{before}(?P<path>{ordered})(?![\w.\-])")
        self.regex = re.compile("|".join(alternatives))

    def name(self, match: re.Match[str]) -> str:
        return self._name_of[match.group("path")] if match.lastgroup == "path" else "secret"


class Scrubber:
    """Scrubbing for one session: its cwd, HOME and TMPDIR (the session's own and the
    process's), the given secrets, and secret-looking environment values."""

    def __init__(self, session: SessionSpec, secrets: Iterable[str | None] = ()):
        self._local: dict[str, str] = {}
        paths: dict[str, str] = {}
        for name, path in _machine_paths(session):
            self._local.setdefault(name, path)
            for variant in (path, os.path.realpath(path)):
                paths.setdefault(variant, name)
        values = [*secrets, *secret_values(session.env), *secret_values(os.environ)]
        found = {v for v in values if v and len(v) >= MIN_SECRET_LEN}
        self._json = _Patterns(paths, found, json=True)
        self._raw = _Patterns(paths, found, json=False)

    def scrub(self, data: bytes) -> bytes:
        """Scrub encoded JSON."""
        json = self._json
        return json.regex.sub(lambda m: f"<{json.name(m)}>", data.decode()).encode()

    def scrub_chunks(self, chunks: Sequence[str]) -> list[str]:
        """Scrub streamed chunks as one text, keeping one result per chunk."""
        joined = "".join(chunks)
        starts = list(itertools.accumulate(map(len, chunks), initial=0))
        out = [""] * len(chunks)
        copied = 0
        for match in self._raw.regex.finditer(joined):
            for i, lo, hi in _overlaps(copied, match.start(), starts):
                out[i] += joined[copied + lo : copied + hi]
            _place(self._raw.name(match), _overlaps(match.start(), match.end(), starts), out)
            copied = match.end()
        for i, lo, hi in _overlaps(copied, len(joined), starts):
            out[i] += joined[copied + lo : copied + hi]
        return out

    def restore(self, data: bytes) -> bytes:
        """Put this machine's paths back where encoded JSON has placeholders."""

        def local(match: re.Match[bytes]) -> bytes:
            path = self._local.get(match.group(1).decode())
            if path is None:
                return match.group(0)
            if match.group(2) is not None:
                path = path[int(match.group(2)) : int(match.group(3)) if match.group(3) else None]
            return _escaped(path).encode()

        return _PLACEHOLDER.sub(local, data)


def _overlaps(start: int, end: int, starts: list[int]) -> list[tuple[int, int, int]]:
    """For the span ``[start, end)`` of the joined text: each chunk it covers, as (chunk index,
    offset of the covered part within the span, end of that part)."""
    found = []
    for i, (chunk_start, chunk_end) in enumerate(itertools.pairwise(starts)):
        lo, hi = max(start, chunk_start), min(end, chunk_end)
        if lo < hi:
            found.append((i, lo - start, hi - start))
    return found


def _place(name: str, pieces: list[tuple[int, int, int]], out: list[str]) -> None:
    """Put a placeholder where a match lay: whole when one chunk holds it; when boundaries cut
    it, a secret goes whole to the first chunk and a path becomes one slice per chunk."""
    if len(pieces) == 1 or name == "secret":
        out[pieces[0][0]] += f"<{name}>"
        return
    for i, lo, hi in pieces[:-1]:
        out[i] += f"<{name}:{lo}:{hi}>"
    i, lo, _ = pieces[-1]
    out[i] += f"<{name}:{lo}:>"


def _machine_paths(session: SessionSpec) -> list[tuple[str, str]]:
    """(placeholder name, path) pairs, the session's own value before the process's for each."""
    candidates = [
        ("cwd", os.path.abspath(session.cwd) if session.cwd else os.getcwd()),
        ("home", session.env.get("HOME")),
        ("home", os.environ.get("HOME") or str(Path.home())),
        ("tmp", session.env.get("TMPDIR")),
        ("tmp", tempfile.gettempdir()),
    ]
    return [(name, p) for name, p in candidates if p and Path(p).parent != Path(p)]
