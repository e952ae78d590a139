"""The Python blocks of README.md and docs/*.md, as the docs tests run them.

A fenced ``python`` block runs unless the line just before its fence is a
``<!-- not-run: why -->`` comment (invisible on the rendered page); a block that is not run is
still compiled, so it cannot hold a syntax error either. A block whose first line is a comment
naming a file (``# support.py``) is that file; the unnamed blocks after it on the same page
continue it. A snippet include (``--8<-- "docs/examples/x.py"``) stands for the file's text.
See docs/contributing.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>[^\n`]*)$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(?P<why>.+?)\s*-->\s*$")
_PYTHON = frozenset({"python", "py", "python3"})
_SNIPPET = re.compile(r'^--8<-- "(?P<path>[^"]+)"$')  # pymdownx.snippets, base path: the root
_FILE_NAME = re.compile(r"^# (?P<name>[A-Za-z_][A-Za-z0-9_]*\.py)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced Python block: where it is, its code, and why it is not run (if it is not)."""

    path: Path
    line: int  # 1-based line of the opening fence
    code: str
    not_run: str | None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def file_name(self) -> str | None:
        """The file the block says it is, from a first line such as ``# support.py``."""
        first = _FILE_NAME.match(self.code.split("\n", 1)[0])
        return first["name"] if first else None


def _expand(line: str) -> str:
    """A ``--8<-- "path"`` line (a snippet include) becomes the file it names, as on the site."""
    snippet = _SNIPPET.match(line.strip())
    if snippet is None:
        return line
    return (ROOT / snippet["path"]).read_text(encoding="utf-8").rstrip("\n")


def pages() -> list[Path]:
    """README.md and every page under docs/, found anew on each run."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    """The Python blocks of one Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        language = opening["info"].strip().split(" ")[0].lower()
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        if language in _PYTHON:
            body = [_expand(line[indent:]) for line in lines[i + 1 : end]]
            marker = _NOT_RUN.match(lines[i - 1]) if i > 0 else None
            found.append(Block(path, i + 1, "\n".join(body) + "\n", marker and marker["why"]))
        i = end + 1
    return found
