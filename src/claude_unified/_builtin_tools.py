"""Read, Write, Edit, Glob, Grep and Bash for the API path, confined to one root directory.

Names and input shapes follow Claude Code's tools of the same names, so a model (and a permission
rule such as ``Read(src/**)``) sees the same thing on both backends. Every path is resolved
against the root and must stay inside it after ``..`` and symlinks are resolved; files are then
opened component by component without following symlinks (``_confined``), so a symlink swapped
in after the check is refused, not followed. Only regular files are read or written. Text output
is bounded by ``max_output`` characters and says how much was cut.

Bash is not a sandbox: the command runs with the root as its working directory, but it can touch
anything the process can. Guard it with a permission policy.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from pathlib import Path
from typing import Annotated, Literal

import anyio
import anyio.to_thread
import msgspec
from msgspec import Meta

from ._bash import run_bash
from ._confined import ConfinedFile, open_beneath
from ._events import ContentBlock, ImageBlock
from ._permissions import glob_match
from ._tools import Tool, ToolError, ToolOutput

__all__ = ["builtin_tools"]

_DEFAULT_READ_LINES = 2000
_MAX_IMAGE_BYTES = 5 * 1024 * 1024
_MAX_BASH_TIMEOUT_S = 600.0
_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}


class _Args(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


_Millis = Annotated[float, Meta(gt=0, description="Timeout in milliseconds (max 600000)")]


class ReadArgs(_Args):
    file_path: Annotated[str, Meta(description="Path of the file to read")]
    offset: Annotated[int, Meta(ge=0, description="Line number to start from (1-based)")] = 1
    limit: Annotated[int, Meta(gt=0, description="Number of lines to read")] = _DEFAULT_READ_LINES


class WriteArgs(_Args):
    file_path: Annotated[str, Meta(description="Path of the file to write")]
    content: Annotated[str, Meta(description="The complete new content of the file")]


class EditArgs(_Args):
    file_path: Annotated[str, Meta(description="Path of the file to modify")]
    old_string: Annotated[str, Meta(description="The exact text to replace")]
    new_string: Annotated[str, Meta(description="The text to put in its place")]
    replace_all: Annotated[bool, Meta(description="Replace every occurrence")] = False


class GlobArgs(_Args):
    pattern: Annotated[str, Meta(description="Glob pattern, e.g. **/*.py")]
    path: Annotated[str | None, Meta(description="Directory to search (default: the root)")] = None


class GrepArgs(_Args):
    pattern: Annotated[str, Meta(description="Python regular expression to search for")]
    path: Annotated[str | None, Meta(description="File or directory to search")] = None
    glob: Annotated[str | None, Meta(description="Only search files matching this glob")] = None
    output_mode: Literal["content", "files_with_matches", "count"] = "files_with_matches"
    ignore_case: Annotated[bool, Meta(description="Case-insensitive search")] = msgspec.field(
        default=False, name="-i"
    )
    line_numbers: Annotated[bool, Meta(description="Line numbers in content mode")] = msgspec.field(
        default=True, name="-n"
    )


class BashArgs(_Args):
    command: Annotated[str, Meta(description="The command to run with /bin/bash -c")]
    timeout: _Millis | None = None
    description: Annotated[str | None, Meta(description="What the command does")] = None


def builtin_tools(
    root: str | os.PathLike[str], *, bash_timeout: float = 120, max_output: int = 30_000
) -> list[Tool]:
    """Read, Write, Edit, Glob, Grep and Bash, confined to ``root``.

    ``bash_timeout`` (seconds) applies when the model gives no ``timeout``; ``max_output`` bounds
    the characters of text any tool returns.
    """
    ws = _Workspace(root, bash_timeout=bash_timeout, max_output=max_output)
    return [
        Tool.from_struct(ReadArgs, ws.read, name="Read", description=_READ),
        Tool.from_struct(WriteArgs, ws.write, name="Write", description=_WRITE),
        Tool.from_struct(EditArgs, ws.edit, name="Edit", description=_EDIT),
        Tool.from_struct(GlobArgs, ws.glob, name="Glob", description=_GLOB),
        Tool.from_struct(GrepArgs, ws.grep, name="Grep", description=_GREP),
        Tool.from_struct(BashArgs, ws.bash, name="Bash", description=_BASH),
    ]


_READ = (
    "Read a file. Text comes back as numbered lines (like cat -n); use offset and limit for "
    f"long files (default: the first {_DEFAULT_READ_LINES} lines). PNG, JPEG, GIF and WebP files "
    "come back as images."
)
_WRITE = "Create or overwrite a file with the given content. Parent directories are created."
_EDIT = (
    "Replace old_string with new_string in a file. old_string must occur exactly once unless "
    "replace_all is true; include surrounding lines to make it unique."
)
_GLOB = "List files matching a glob pattern (e.g. src/**/*.py), most recently modified first."
_GREP = (
    "Search file contents with a Python regular expression. output_mode: files_with_matches "
    "(default), content (matching lines) or count. Hidden files and directories are skipped."
)
_BASH = (
    "Run a shell command with /bin/bash -c in the project root and return its combined stdout "
    "and stderr and its exit code."
)


class _Workspace:
    """The root directory the tools are confined to, and the tools' implementations."""

    def __init__(self, root: str | os.PathLike[str], *, bash_timeout: float, max_output: int):
        self.root = Path(os.path.realpath(root))
        if not self.root.is_dir():
            raise ValueError(f"builtin_tools root {os.fspath(root)!r} is not a directory")
        self.bash_timeout = bash_timeout
        self.max_output = max_output

    # ------------------------------------------------------------------ paths and output

    def resolve(self, path: str) -> Path:
        """The real path of ``path`` (relative to the root), refused if it leaves the root."""
        candidate = Path(path)
        try:
            real = Path(os.path.realpath(self.root / candidate))  # an absolute path ignores root
        except OSError as exc:  # a component changed while it was being resolved
            raise ToolError(f"cannot resolve {path!r}: {exc.strerror}") from None
        if not real.is_relative_to(self.root):
            raise ToolError(f"{path!r} is outside the allowed root {self.root}")
        return real

    def display(self, path: Path) -> str:
        """``path`` relative to the root, keeping symlink names where ``..`` allows."""
        for candidate in (Path(os.path.normpath(path)), Path(os.path.realpath(path))):
            if candidate.is_relative_to(self.root):
                return str(candidate.relative_to(self.root))
        return str(path)

    def bound(self, text: str) -> str:
        if len(text) <= self.max_output:
            return text
        cut = len(text) - self.max_output
        return f"{text[: self.max_output]}\n[output truncated: {cut} of {len(text)} characters cut]"

    def open(self, path: str, *, write: bool = False, create: bool = False) -> ConfinedFile:
        """The regular file at ``path``, checked and opened in one step (see ``_confined``)."""
        target = self.resolve(path)
        relative = target.relative_to(self.root)
        return open_beneath(self.root, relative, write=write, create=create, shown=path)

    # ------------------------------------------------------------------ the tools

    def read(self, args: ReadArgs) -> ToolOutput:
        with self.open(args.file_path) as file:
            data = file.read()
        media_type = _IMAGE_TYPES.get(Path(args.file_path).suffix.lower())
        if media_type is not None:
            return _image(Path(args.file_path).name, data, media_type)
        lines = data.decode("utf-8", errors="replace").splitlines()
        if not lines:
            return f"{args.file_path!r} is empty"
        start = max(args.offset, 1)
        if start > len(lines):
            raise ToolError(f"{args.file_path!r} has {len(lines)} lines; offset {start} is past it")
        end = start - 1 + args.limit
        numbered = [f"{n:>6}\t{line}" for n, line in enumerate(lines[start - 1 : end], start)]
        if end < len(lines):
            numbered.append(f"[{len(lines) - end} more lines; read them with offset={end + 1}]")
        return self.bound("\n".join(numbered))

    def write(self, args: WriteArgs) -> str:
        with self.open(args.file_path, write=True, create=True) as file:
            file.replace(args.content.encode())
            verb = "Created" if file.created else "Updated"
        return f"{verb} {file.relative} ({len(args.content)} characters)"

    def edit(self, args: EditArgs) -> str:
        if not args.old_string:
            raise ToolError("old_string is empty; use Write to create or overwrite a file")
        if args.old_string == args.new_string:
            raise ToolError("old_string and new_string are the same; nothing to change")
        with self.open(args.file_path, write=True) as file:
            try:
                text = file.read().decode()
            except UnicodeDecodeError:
                raise ToolError(f"{args.file_path!r} is not UTF-8 text") from None
            count = text.count(args.old_string)
            if count == 0:
                raise ToolError(f"old_string was not found in {args.file_path!r}")
            if count > 1 and not args.replace_all:
                raise ToolError(
                    f"old_string occurs {count} times in {args.file_path!r}; include more "
                    "context to make it unique, or set replace_all to replace every occurrence"
                )
            file.replace(text.replace(args.old_string, args.new_string).encode())
        return f"Edited {file.relative}: replaced {count} occurrence(s)"

    def glob(self, args: GlobArgs) -> str:
        base = self.resolve(args.path) if args.path else self.root
        if not base.is_dir():
            raise ToolError(f"{args.path!r} is not a directory")
        if os.path.isabs(args.pattern):
            raise ToolError("pattern must be relative; give the directory as path")
        try:
            found = [p for p in base.glob(args.pattern) if p.is_file() and self._inside(p)]
        except ValueError as exc:
            raise ToolError(f"invalid glob pattern {args.pattern!r}: {exc}") from None
        found.sort(key=lambda p: (-p.stat().st_mtime, str(p)))
        if not found:
            return "No files found"
        return self.bound("\n".join(self.display(p) for p in found))

    async def grep(self, args: GrepArgs) -> str:
        """Runs in a worker thread, which a cancellation stops at the next file."""
        stop = threading.Event()
        try:
            return await anyio.to_thread.run_sync(self._grep, args, stop, abandon_on_cancel=True)
        finally:
            stop.set()

    def _grep(self, args: GrepArgs, stop: threading.Event) -> str:
        try:
            regex = re.compile(args.pattern, re.IGNORECASE if args.ignore_case else 0)
        except re.error as exc:
            raise ToolError(f"invalid regular expression {args.pattern!r}: {exc}") from None
        base = self.resolve(args.path) if args.path else self.root
        if not base.exists():
            raise ToolError(f"{args.path!r} does not exist")
        out: list[str] = []
        for file in self._files(base, args.glob):
            if stop.is_set():
                break
            hits = [
                (n, line) for n, line in enumerate(self._text_lines(file), 1) if regex.search(line)
            ]
            if not hits:
                continue
            name = self.display(file)
            if args.output_mode == "files_with_matches":
                out.append(name)
            elif args.output_mode == "count":
                out.append(f"{name}:{len(hits)}")
            else:
                out.extend(
                    f"{name}:{n}:{line}" if args.line_numbers else f"{name}:{line}"
                    for n, line in hits
                )
        return self.bound("\n".join(out)) if out else "No matches found"

    def _text_lines(self, path: Path) -> list[str]:
        """The lines of a text file; none for a binary one (a NUL byte near the start) and none
        for anything but a regular file (a FIFO would block the search forever)."""
        try:
            with open_beneath(self.root, path.relative_to(self.root)) as file:
                data = file.read()
        except ToolError:
            return []
        if b"\0" in data[:8192]:
            return []
        return data.decode("utf-8", errors="replace").splitlines()

    async def bash(self, args: BashArgs) -> str:
        seconds = (
            min(args.timeout / 1000, _MAX_BASH_TIMEOUT_S) if args.timeout else self.bash_timeout
        )
        output, code, timed_out = await run_bash(args.command, self.root, seconds, self.max_output)
        if timed_out:
            raise ToolError(f"{output}\n[timed out after {seconds:g} s; the command was killed]")
        if code != 0:
            raise ToolError(f"{output}\n[exit code {code}]")
        return f"{output}\n[exit code 0]"

    # ------------------------------------------------------------------ helpers

    def _inside(self, path: Path) -> bool:
        return Path(os.path.realpath(path)).is_relative_to(self.root)

    def _files(self, base: Path, pattern: str | None) -> list[Path]:
        """Regular files under ``base`` (or ``base`` itself), skipping hidden ones and escapes."""
        if base.is_file():
            return [base]
        files: list[Path] = []
        for directory, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                path = Path(directory, filename)
                if filename.startswith(".") or not self._inside(path):
                    continue
                relative = path.relative_to(base).as_posix()
                if pattern is None or glob_match(pattern, relative if "/" in pattern else filename):
                    files.append(path)
        return files


def _image(name: str, data: bytes, media_type: str) -> list[ContentBlock]:
    if len(data) > _MAX_IMAGE_BYTES:
        raise ToolError(f"image {name!r} is {len(data)} bytes; the limit is {_MAX_IMAGE_BYTES}")
    encoded = base64.b64encode(data).decode()
    return [ImageBlock(source={"type": "base64", "media_type": media_type, "data": encoded})]
