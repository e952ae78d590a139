"""A child process with line-oriented stdio, a bounded stderr buffer and a shutdown ladder.

The CLI backend talks to ``claude`` in JSON lines over stdin/stdout. This module knows nothing
about that protocol. It does four things:

* spawns the child in its own process group, with an explicit env and cwd;
* splits stdout into lines of any size, at a cost linear in the line's size;
* keeps the last bytes of stderr, so errors can show them;
* makes sure the child, and everything it started, is gone and reaped after ``aclose``.

stderr is drained by a small daemon thread that reads a plain pipe. A task would need a task
group that outlives ``start()``, and callers open and close sessions from unrelated scopes.

"Everything it started" includes processes that left the child's process group: the CLI runs
each Bash command with ``setsid``, so killing its group misses them, and when the CLI dies they
are re-parented to init. On Linux the same thread therefore notes the child's descendants once a
second (``/proc/<pid>/task/*/children``: a few small reads, no scan of every process), and
``aclose`` kills those still running, recognised by pid *and* start time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType

import anyio
from anyio.abc import Process

from claude_unified._exceptions import ProcessError

__all__ = ["LineTooLongError", "ManagedProcess", "redact_argv"]

_READ_CHUNK = 1 << 20  # bytes asked for per stdout read; pipes usually hand over 64 KiB
_STDERR_CHUNK = 1 << 16
_EXIT_REPORT_WAIT = 1.0  # after a failed write, how long to wait for the exit code
_STDERR_JOIN_WAIT = 1.0  # after exit, how long to wait for the last stderr bytes
_TRACK_EVERY_S = 1.0  # how often the child's descendants are noted (Linux)
_PROC = "/proc"
_SIGKILL: int = getattr(signal, "SIGKILL", signal.SIGTERM)  # Windows has no SIGKILL

_SECRET_FLAG = re.compile(r"key|token|secret|password|credential|auth", re.IGNORECASE)
_INLINE_CONFIG_FLAGS = frozenset({"--mcp-config", "--settings"})
_MAX_ARG_CHARS = 200
_REDACTED = "***"

log = logging.getLogger(__name__)


class LineTooLongError(ProcessError):
    """A stdout line was longer than ``max_line_bytes``.

    The whole line has been read and thrown away, so the next ``receive_line`` returns the
    line after it: the stream stays usable.
    """

    def __init__(self, message: str, *, size: int, limit: int, argv: Sequence[str] = ()):
        super().__init__(message, argv=argv)
        self.size = size
        self.limit = limit


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Return a copy of ``argv`` that is safe to log and to put in exceptions.

    Values of flags whose name mentions a key, token, secret, password, credential or auth
    become ``***``, and so do inline JSON values of ``--mcp-config``/``--settings`` (they may
    hold server credentials). Any other value over 200 characters is cut short with a marker.
    """
    redacted: list[str] = []
    pending_flag = ""
    for arg in argv:
        if arg.startswith("-") and len(arg) > 1:
            flag, has_value, value = arg.partition("=")
            redacted.append(f"{flag}={_redact_value(flag, value)}" if has_value else arg)
            pending_flag = "" if has_value else flag
        else:
            redacted.append(_redact_value(pending_flag, arg))
            pending_flag = ""
    return redacted


def _redact_value(flag: str, value: str) -> str:
    if flag and _SECRET_FLAG.search(flag):
        return _REDACTED
    if flag in _INLINE_CONFIG_FLAGS and value.lstrip().startswith("{"):
        return _REDACTED
    if len(value) > _MAX_ARG_CHARS:
        return f"{value[:_MAX_ARG_CHARS]}...[{len(value) - _MAX_ARG_CHARS} more chars]"
    return value


def _start_time(pid: int) -> str | None:
    """The start time of ``pid`` (field 22 of its stat), ``None`` when it no longer exists."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19].decode() if len(fields) > 19 else None


def _children_of(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"{_PROC}/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"{_PROC}/{pid}/task/{task}/children", "rb") as f:
                found += [int(child) for child in f.read().split()]
        except OSError:
            continue
    return found


class _Descendants:
    """Processes below ``root``, as (pid, start time), kept after they are re-parented."""

    def __init__(self, root: int):
        self._root = root
        self._known: dict[int, str] = {}
        self._lock = threading.Lock()

    @staticmethod
    def supported() -> bool:
        return sys.platform.startswith("linux") and os.path.exists(f"{_PROC}/self/task")

    def refresh(self) -> None:
        """Note every process now below the root or below one noted before."""
        with self._lock:
            alive = {p: t for p, t in self._known.items() if _start_time(p) == t}
            todo = [self._root, *alive]
            while todo:
                for child in _children_of(todo.pop()):
                    if child not in alive and (started := _start_time(child)) is not None:
                        alive[child] = started
                        todo.append(child)
            self._known = alive

    def kill(self) -> None:
        """SIGKILL every noted process still running (the same process: same start time), with
        its process group when it leads one; never this process or its group."""
        self.refresh()
        own_group = os.getpgrp()
        with self._lock:
            known, self._known = self._known, {}
        for pid, started in known.items():
            if pid == os.getpid() or _start_time(pid) != started:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(pid) == pid != own_group:
                    os.killpg(pid, _SIGKILL)
                else:
                    os.kill(pid, _SIGKILL)


class _StderrRing:
    """The last ``limit`` bytes a pipe delivered, filled by a daemon thread until EOF.

    With ``tick``, the thread also calls it whenever ``_TRACK_EVERY_S`` have passed.
    """

    def __init__(self, fd: int, limit: int, name: str, tick: Callable[[], None] | None = None):
        self._limit = limit
        self._buffer = bytearray()
        self._lock = threading.Lock()
        self._tick = tick
        self._thread = threading.Thread(target=self._drain, args=(fd,), name=name, daemon=True)
        self._thread.start()

    def _drain(self, fd: int) -> None:
        try:
            while chunk := self._read(fd):
                self._append(chunk)
        except OSError:
            pass  # the pipe is unusable; what was read so far stays available
        finally:
            os.close(fd)

    def _read(self, fd: int) -> bytes:
        tick = self._tick
        if tick is not None:
            while not select.select([fd], [], [], _TRACK_EVERY_S)[0]:
                tick()
        return os.read(fd, _STDERR_CHUNK)

    def _append(self, chunk: bytes) -> None:
        with self._lock:
            self._buffer += chunk[-self._limit :]
            excess = len(self._buffer) - self._limit
            if excess > 0:
                del self._buffer[:excess]

    def tail(self, max_chars: int) -> str:
        with self._lock:
            data = bytes(self._buffer)
        text = data.decode("utf-8", errors="replace").rstrip()
        return text[-max_chars:] if max_chars > 0 else ""

    async def join(self) -> None:
        """Wait briefly for EOF, so a tail read right after exit holds the last words."""
        if self._thread.is_alive():
            await anyio.to_thread.run_sync(self._thread.join, _STDERR_JOIN_WAIT)


class ManagedProcess:
    """A child process speaking lines on stdin/stdout; create it with :meth:`start`.

    One task may read and any number may write: ``send_line`` calls never interleave.
    Always finish with ``aclose()`` (or ``async with``), which never leaves a zombie.
    """

    def __init__(
        self,
        process: Process,
        *,
        argv: list[str],
        stderr: _StderrRing,
        max_line_bytes: int | None,
        descendants: _Descendants | None = None,
    ):
        if process.stdin is None or process.stdout is None:
            raise ValueError("the process needs stdin and stdout pipes")
        self._process = process
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._argv = argv
        self._stderr = stderr
        self._descendants = descendants
        self._max_line_bytes = max_line_bytes
        self._write_lock = anyio.Lock()
        # uncontended (one reader), so taking it need not yield to the event loop
        self._read_lock = anyio.Lock(fast_acquire=True)
        self._stdin_problem: str | None = None  # why send_line must refuse, once it must
        # stdout framing: the unread rest of the last chunk, then the current line's pieces
        self._chunk = b""
        self._pos = 0
        self._pieces: list[bytes] = []
        self._pieces_size = 0
        self._skipped: int | None = None  # bytes of an oversize line thrown away so far
        self._ready: deque[bytes] = deque()  # split off, not yet returned by receive_line
        self._deferred: LineTooLongError | None = None  # raised after the lines before it
        self._eof = False
        self._closing = False
        self._closed = anyio.Event()

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | os.PathLike[str] | None,
        stderr_limit: int = 64 * 1024,
        redact: Callable[[Sequence[str]], list[str]] | None = None,
        max_line_bytes: int | None = None,
    ) -> ManagedProcess:
        """Spawn ``argv`` in a new process group with exactly ``env`` and ``cwd``.

        ``stderr_limit`` bounds the stderr bytes kept; ``max_line_bytes`` (default: no limit)
        makes longer stdout lines raise :class:`LineTooLongError`. ``redact`` turns argv into
        what errors may show (default :func:`redact_argv`).
        """
        if not argv:
            raise ValueError("argv must name a program")
        if stderr_limit < 1:
            raise ValueError("stderr_limit must be positive")
        shown = (redact or redact_argv)(argv)
        read_fd, write_fd = os.pipe()
        try:
            process = await anyio.open_process(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=write_fd,
                cwd=cwd,
                env=dict(env),
                start_new_session=True,
            )
        except OSError as exc:
            os.close(read_fd)
            raise _spawn_error(exc, shown, cwd) from exc
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        tracked = _Descendants(process.pid) if _Descendants.supported() else None
        ring = _StderrRing(
            read_fd,
            stderr_limit,
            name=f"claude-unified-stderr-{process.pid}",
            tick=tracked.refresh if tracked is not None else None,
        )
        log.debug("started pid %d: %s", process.pid, shlex.join(shown))
        return cls(
            process, argv=shown, stderr=ring, max_line_bytes=max_line_bytes, descendants=tracked
        )

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """The exit status, negative for a signal; ``None`` while it runs."""
        return self._process.returncode

    @property
    def argv(self) -> list[str]:
        """The redacted argv: safe to log."""
        return list(self._argv)

    def stderr_tail(self, max_chars: int = 4000) -> str:
        """The last ``max_chars`` characters of stderr (bounded by ``stderr_limit`` bytes)."""
        return self._stderr.tail(max_chars)

    def error(self, message: str) -> ProcessError:
        """A ``ProcessError`` carrying the exit code or signal, stderr tail and argv."""
        code = self.returncode
        killed = code is not None and code < 0
        return ProcessError(
            message,
            exit_code=None if killed else code,
            signal=-code if code is not None and killed else None,
            stderr_tail=self.stderr_tail(),
            argv=self._argv,
        )

    async def receive_line(self) -> bytes | None:
        """The next stdout line without its ``\\n``; ``None`` at end of output.

        A last line with no newline is returned too. Lines have no size limit unless
        ``max_line_bytes`` was given; then a longer line is skipped and raises
        :class:`LineTooLongError`.
        """
        if not self._ready:
            lines = await self.receive_lines()
            if lines is None:
                return None
            self._ready.extend(lines)
        return self._ready.popleft()

    async def receive_lines(self) -> list[bytes] | None:
        """Every complete stdout line that has arrived (at least one: waits for it), in order;
        ``None`` at end of output. As :meth:`receive_line`, one line at a time, but one wait
        per chunk read instead of one per line.

        An oversize line raises :class:`LineTooLongError` once the lines before it have been
        returned.
        """
        async with self._read_lock:
            if self._ready:
                lines = list(self._ready)
                self._ready.clear()
                return lines
            if self._deferred is not None:
                error, self._deferred = self._deferred, None
                raise error
            lines = []
            while True:
                end = self._chunk.find(b"\n", self._pos)
                if end < 0:
                    if lines:
                        return lines
                    self._add_piece(self._chunk[self._pos :])
                    self._chunk, self._pos = b"", 0
                    chunk = await self._read_chunk()
                    if chunk is None:
                        has_partial = bool(self._pieces) or self._skipped is not None
                        return [self._finish_line()] if has_partial else None
                    self._chunk, self._pos = chunk, 0
                    continue
                self._add_piece(self._chunk[self._pos : end])
                self._pos = end + 1
                try:
                    lines.append(self._finish_line())
                except LineTooLongError as exc:
                    if not lines:
                        raise
                    self._deferred = exc
                    return lines

    def _add_piece(self, piece: bytes) -> None:
        if not piece:
            return
        if self._skipped is not None:
            self._skipped += len(piece)
            return
        self._pieces.append(piece)
        self._pieces_size += len(piece)
        if self._max_line_bytes is not None and self._pieces_size > self._max_line_bytes:
            self._skipped = self._pieces_size
            self._pieces.clear()
            self._pieces_size = 0

    def _finish_line(self) -> bytes:
        if self._skipped is not None:
            size, self._skipped = self._skipped, None
            raise LineTooLongError(
                f"a stdout line of {size} bytes exceeded max_line_bytes={self._max_line_bytes}"
                " and was skipped",
                size=size,
                limit=self._max_line_bytes or 0,
                argv=self._argv,
            )
        line = b"".join(self._pieces)
        self._pieces.clear()
        self._pieces_size = 0
        return line

    async def _read_chunk(self) -> bytes | None:
        if self._eof:
            return None
        try:
            return await self._stdout.receive(_READ_CHUNK)
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._eof = True
            return None

    async def send_line(self, data: bytes) -> None:
        """Write ``data`` and a newline as one unit with respect to other ``send_line`` calls.

        A send cancelled while writing leaves stdin unusable (later sends raise), because part
        of the line may already be in the pipe and anything sent after it would be garbled.
        A send cancelled before it gets the write lock does no harm.
        """
        if b"\n" in data or not data.strip():
            raise ValueError("send_line takes one non-blank line, without its newline")
        async with self._write_lock:
            if self._stdin_problem is None and self.returncode is not None:
                self._stdin_problem = "the process has exited"
                await self._stderr.join()
            if self._stdin_problem is not None:
                raise self._write_error()
            try:
                await self._stdin.send(data + b"\n")
            except anyio.ClosedResourceError as exc:
                self._stdin_problem = "stdin is closed"
                raise self._write_error() from exc
            except (anyio.BrokenResourceError, OSError) as exc:
                self._stdin_problem = "the pipe is broken"
                with anyio.move_on_after(_EXIT_REPORT_WAIT):  # let a dying child report its code
                    await self.wait()
                raise self._write_error() from exc
            except BaseException:
                self._stdin_problem = "an earlier write was interrupted part-way"
                raise

    def _write_error(self) -> ProcessError:
        return self.error(f"cannot write to stdin: {self._stdin_problem}")

    async def close_stdin(self) -> None:
        """Close the child's stdin (its end-of-input signal). Safe to call more than once."""
        if self._stdin_problem == "stdin is closed":
            return
        self._stdin_problem = "stdin is closed"
        await self._stdin.aclose()

    async def wait(self) -> int:
        """Wait for the child to exit and for its last stderr bytes; return the exit status."""
        code = await self._process.wait()
        await self._stderr.join()
        return code

    async def aclose(self, *, grace: float = 5.0, term_timeout: float = 5.0) -> int | None:
        """Stop the child and reap it; return its exit status. Safe to call more than once.

        The ladder: close stdin, wait ``grace`` seconds for a clean exit, SIGTERM the process
        group, wait ``term_timeout``, SIGKILL the group, then always reap. It runs shielded,
        so a cancelled caller still leaves no zombie and no orphan behind.
        """
        if self._closing:
            await self._closed.wait()
            return self.returncode
        self._closing = True
        try:
            with anyio.CancelScope(shield=True):
                await self._shutdown(grace, term_timeout)
        finally:
            self._closed.set()
        return self.returncode

    async def _shutdown(self, grace: float, term_timeout: float) -> None:
        if self._descendants is not None and self.returncode is None:
            self._descendants.refresh()  # the tree is whole while the child runs
        await self.close_stdin()
        if not await self._exited_within(grace):
            self._signal_group(signal.SIGTERM)
            if not await self._exited_within(term_timeout):
                self._signal_group(_SIGKILL)
        await self._process.wait()
        # Helpers the leader started may outlive it in its group (keeping the group id in use),
        # or in sessions of their own: they are orphans now, so they go too.
        self._signal_group(_SIGKILL)
        if self._descendants is not None:
            self._descendants.kill()
        await self._process.aclose()
        await self._stderr.join()
        log.debug("pid %d exited with %s", self._process.pid, self._process.returncode)

    async def _exited_within(self, seconds: float) -> bool:
        with anyio.move_on_after(seconds):
            await self._process.wait()
        return self.returncode is not None

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if sys.platform == "win32":
                self._process.kill()  # no process groups; TerminateProcess either way
            else:
                os.killpg(self._process.pid, signum)

    async def __aenter__(self) -> ManagedProcess:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _spawn_error(
    exc: OSError, shown: Sequence[str], cwd: str | os.PathLike[str] | None
) -> ProcessError:
    where = f" in {os.fspath(cwd)!r}" if cwd is not None else ""
    reason = exc.strerror or str(exc)
    return ProcessError(f"could not start {shlex.join(shown)}{where}: {reason}", argv=shown)
