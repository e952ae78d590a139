"""CliBackend: the Claude Code CLI as one long-lived stream-json subprocess per conversation.

A background task reads stdout continuously into an unbounded queue, so a slow consumer never
stalls the CLI's control requests. Lines are decoded with the core's typed decoders; control
requests that need a decision (``can_use_tool``) or a tool run (MCP ``tools/call``) become
``PermissionQuery`` / ``ToolInvocation`` frames the core answers. The reader task lives between
``open()`` and ``aclose()``, which may be called from any scopes and tasks.

Every turn ends with the CLI's ``result`` line. A turn abandoned before it (cancelled, timed out)
still owes its result: the next turn first skips what is left of it, so answers never shift by
one. A CLI that stays silent past ``idle_timeout`` (or a turn past ``timeout``) is interrupted;
one that does not even answer the interrupt is stopped.

Settings the CLI takes as process flags (``thinking``, ``effort``, the output schema) follow the
turn: a turn whose settings differ from those the running process has applies them with a
control request where the CLI has one (a thinking budget, thinking off, or back to the
process's own: ``set_max_thinking_tokens``), and otherwise stops the process cleanly after the
previous turn and starts a new one with the turn's flags and ``--resume <session id>``: the
same session, its history resent by the CLI, the hooks and tools registered again.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import anyio
import msgspec

from .. import _wire as w
from .._config import Config
from .._events import ContentBlock, JsonObject, UnknownBlock
from .._exceptions import (
    ClaudeError,
    ConfigError,
    ProtocolError,
    TimeoutError,
)
from .._settings import RequestSettings, ThinkingConfig, ThinkingSetting, refuse_spent_budget
from ._cli_hooks import hook_output, initialize_hooks
from ._control import ControlChannel
from ._detached import Detached
from ._discovery import check_version, cli_version, find_cli
from ._mcp import MCP_CONFIG, InvalidMcpMessage, McpServer, mcp_config
from ._process import ManagedProcess
from ._protocol import (
    Exchange,
    Frame,
    HookAnswer,
    HookQuery,
    PermissionAnswer,
    PermissionContext,
    PermissionQuery,
    SessionSpec,
    ToolInvocation,
    ToolOutcome,
)
from ._registry import check_real_backend
from ._wakeup import Wakeup

__all__ = ["CLEAR_COMMAND", "CliBackend", "build_argv", "build_env"]

log = logging.getLogger(__name__)
_encoder = msgspec.json.Encoder()
# Variables that make a nested CLI refuse to start or misreport who launched it.
_STRIPPED_ENV = ("CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "CLAUDE_AGENT_SDK_VERSION")
_DEFAULT_BASE_URL = "https://api.anthropic.com"
_EXITED = "the CLI exited before the turn finished"
_CLOSED = "the CLI backend was closed during the turn"
_ABANDONED = "the turn was abandoned"
INTERRUPT_WAIT_S = 5.0  # how long the CLI may take to acknowledge an interrupt
CLEAR_COMMAND = "/clear"
"""Claude Code answers it itself, with no request: the history is dropped and its cost
counters start again from zero (so no budget holds it back)."""


class _Inbox:
    """Frames on their way from the reader task to the turn that yields them: an unbounded
    deque plus a wake-up. The reader never waits for the turn, and a turn that is still busy
    with earlier frames takes the next ones without a pass through the event loop."""

    __slots__ = ("_wakeup", "ended", "frames", "heard")

    def __init__(self) -> None:
        self.frames: deque[Frame] = deque()
        self.ended: str | None = None  # why no more frames will come
        self.heard = time.monotonic()  # when the last stdout line (of any kind) arrived
        self._wakeup = Wakeup()

    def put(self, frames: list[Frame]) -> None:
        self.frames.extend(frames)
        self._wakeup.set()

    def end(self, why: str) -> None:
        self.ended = self.ended or why
        self._wakeup.set()

    async def wait(self, seconds: float) -> None:
        """Until there is a frame or the end (at once if there is), at most ``seconds``."""
        if not self.frames and self.ended is None:
            await self._wakeup.wait(seconds)


class _Clock:
    """The limits of one turn's waits for the CLI: ``idle_timeout`` without a stdout line, and
    ``timeout`` of waiting in all. Time the consumer spends between frames counts for neither.
    Only spans of time are taken, so the plain monotonic clock serves (a C call, where the event
    loop's clock costs a backend lookup on every read)."""

    __slots__ = ("idle", "total", "waited")

    def __init__(self, config: Config):
        self.idle, self.total = config.idle_timeout, config.timeout
        self.waited = 0.0

    async def wait(self, inbox: _Inbox) -> None:
        """Until ``inbox`` has a frame or has ended; ``TimeoutError`` when a limit is reached."""
        start = time.monotonic()
        try:
            while not inbox.frames and inbox.ended is None:
                now = time.monotonic()
                idle_left = max(inbox.heard, start) + self.idle - now
                total_left = self.total - self.waited - (now - start)
                if min(idle_left, total_left) <= 0:
                    raise _timeout(self, idle=idle_left <= total_left)
                await inbox.wait(min(idle_left, total_left))
        finally:
            self.waited += time.monotonic() - start


def _timeout(clock: _Clock, *, idle: bool) -> TimeoutError:
    if idle:
        message = f"the CLI printed nothing for idle_timeout={clock.idle:g}s"
    else:
        message = f"the CLI turn took longer than timeout={clock.total:g}s"
    return TimeoutError(message, kind="idle" if idle else "total")


def build_argv(
    cli: str,
    session: SessionSpec,
    config: Config,
    *,
    mcp_config_path: str | None = None,
    spent_usd: float = 0.0,
) -> list[str]:
    """The CLI's argv. User values use ``--flag=value``; multi-value flags repeat.

    With ``Config.mcp_servers``, the MCP config is the file at ``mcp_config_path``: their
    ``env`` and ``headers`` may hold credentials, which must not show in the process list.
    ``spent_usd`` is what the session's earlier processes spent: the budget flag is what is
    left of ``max_budget_usd``."""
    argv = [
        cli,
        "-p",
        "--input-format=stream-json",
        "--output-format=stream-json",
        "--verbose",
        "--include-partial-messages",
        "--permission-prompt-tool=stdio",
    ]
    if config.mcp_servers:
        if mcp_config_path is None:
            raise ValueError("Config.mcp_servers is given to the CLI in a file: pass its path")
        argv.append(f"--mcp-config={mcp_config_path}")
    elif session.tools:
        argv.append(f"--mcp-config={MCP_CONFIG}")
    options: list[tuple[str, Any]] = [
        ("--model", session.model),
        ("--fallback-model", config.fallback_model),
        ("--max-turns", session.max_turns),
        ("--system-prompt", session.system_prompt),
        ("--append-system-prompt", session.append_system_prompt),
        ("--permission-mode", session.permission_mode),
        ("--session-id", session.session_id if not session.resume else None),
        ("--resume", session.resume),
    ]
    argv += [f"{flag}={value}" for flag, value in options if value is not None]
    if session.fork_session:
        argv.append("--fork-session")
    argv += [f"--add-dir={d}" for d in config.add_dirs]
    argv += _setting_flags(session.settings)
    argv += _budget_flags(session.settings.max_budget_usd, spent_usd)
    argv += _agent_flags(config)
    argv += list(session.extra_args)
    return argv


_NO_CLI_FLAG = (
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "tool_choice",
    "metadata",
    "service_tier",
    "extra_body",
)
"""Request settings Claude Code 2.1.330 has no flag, setting or variable for."""


def unsupported_setting(settings: RequestSettings) -> str | None:
    """The first request setting in ``settings`` that the CLI cannot honour, if any."""
    return next((name for name in _NO_CLI_FLAG if _is_set(getattr(settings, name))), None)


def _is_set(value: object) -> bool:
    return value is not None and value not in ((), {})


def _refusal(name: str) -> ConfigError:
    return ConfigError(
        f"{name} cannot be honoured by the CLI backend: Claude Code has no flag, setting or "
        f"environment variable for it. Use the API backend, or leave {name} unset.",
        field=name,
    )


def _setting_flags(settings: RequestSettings) -> list[str]:
    name = unsupported_setting(settings)
    if name is not None:
        raise _refusal(name)
    flags = _thinking_flags(settings.thinking)
    if settings.effort is not None:
        flags.append(f"--effort={settings.effort}")
    if settings.output_schema is not None:
        flags.append(f"--json-schema={_json(settings.output_schema)}")
    return flags


def _thinking_flags(thinking: ThinkingSetting) -> list[str]:
    """The CLI's own mapping (as its bundled SDK does it): a budget is ``--max-thinking-tokens``,
    the modes are ``--thinking``."""
    if thinking is None:
        return []
    if isinstance(thinking, ThinkingConfig):
        flags = [f"--max-thinking-tokens={thinking.budget_tokens}"]
        if thinking.display is not None:
            flags.append(f"--thinking-display={thinking.display}")
        return flags
    return [f"--thinking={thinking}"]


def _budget_flags(budget: float | None, spent_usd: float) -> list[str]:
    """What is left of ``budget``; none when nothing is left, as the CLI refuses to start with
    a budget of 0 (no turn is sent then: the backend refuses it first)."""
    left = None if budget is None else budget - spent_usd
    return [] if left is None or left <= 0 else [f"--max-budget-usd={left}"]


def _agent_flags(config: Config) -> list[str]:
    """Beta headers, tool rules, settings, sub-agents and plugins."""
    flags: list[str] = [f"--betas={b}" for b in config.betas]
    flags += [f"--allowedTools={rule}" for rule in config.allowed_tools]
    flags += [f"--disallowedTools={rule}" for rule in config.disallowed_tools]
    if config.tools is not None:
        flags.append(f"--tools={','.join(config.tools)}")
    if config.setting_sources is not None:
        flags.append(f"--setting-sources={','.join(config.setting_sources)}")
    if config.settings is not None:
        value = config.settings
        flags.append(f"--settings={value if isinstance(value, str) else _json(value)}")
    if config.agents is not None:
        flags.append(f"--agents={_json(config.agents)}")
    flags += [f"--plugin-dir={path}" for path in config.plugins]
    return flags


def _json(value: object) -> str:
    return _encoder.encode(value).decode()


def build_env(config: Config, session: SessionSpec) -> dict[str, str]:
    """The user's environment (none with ``inherit_env=False``), minus what confuses a nested
    CLI, plus configured values."""
    inherited = os.environ if config.inherit_env else {}
    env = {k: v for k, v in inherited.items() if k not in _STRIPPED_ENV}
    if config.api_key:
        env["ANTHROPIC_API_KEY"] = config.api_key
    if config.auth_token:
        env["ANTHROPIC_AUTH_TOKEN"] = config.auth_token
    if config.base_url.rstrip("/") != _DEFAULT_BASE_URL:
        env["ANTHROPIC_BASE_URL"] = config.base_url
    env.update(session.env)
    return env


class CliBackend:
    """Drives ``claude -p --input-format stream-json …`` for one conversation."""

    name = "cli"
    drives_tool_loop = True

    def __init__(self, config: Config, *, stderr_limit: int = 64 * 1024):
        self._config = config
        self._stderr_limit = stderr_limit
        self._proc: ManagedProcess | None = None
        self._reader: Detached | None = None
        self._inbox: _Inbox | None = None
        self._owed = 0  # turns sent whose result line has not been taken yet
        self._control: ControlChannel | None = None
        self._mcp = McpServer(())
        self._settings = RequestSettings()  # the flags the running process was started with
        self._thinking: ThinkingSetting = None  # the thinking it applies now
        self._spec: SessionSpec | None = None  # while open
        self._session_id: str | None = None  # the session's id, once known
        self._model: tuple[str | None] | None = None  # set by set_model, for a new process
        self._mode: str | None = None  # set by set_permission_mode, likewise
        self._mcp_config_path: str | None = None
        self._spent = (0.0, 0.0)  # what earlier processes of the session spent; this one
        self.restarts = 0
        """How many times the process was restarted for a turn's settings."""
        self.restart_ms: float | None = None
        """How long the last restart took: stopping the old process to the new one's
        ``initialize`` answer, in milliseconds."""
        self.cli_path: str | None = None
        self.cli_version: str | None = None
        self.server_info: JsonObject = {}

    # ---------------------------------------------------------------- lifecycle

    async def open(self, session: SessionSpec) -> None:
        check_real_backend("cli", self._config)
        path = find_cli(self._config.cli_path)
        version = await cli_version(path)
        check_version(version)
        self.cli_path, self.cli_version = str(path), ".".join(map(str, version))
        self._mcp = McpServer(session.tools)
        self._session_id = None if session.fork_session else session.session_id or session.resume
        if self._config.mcp_servers:
            self._mcp_config_path = _private_file(
                mcp_config(bool(session.tools), self._config.mcp_servers)
            )
        try:
            await self._start(session)
        except BaseException:
            self._remove_mcp_config()
            raise
        self._spec = session

    async def _start(self, session: SessionSpec) -> None:
        """Start a process for ``session`` and complete ``initialize`` (hooks registered);
        a failure or a cancellation leaves nothing running."""
        assert self.cli_path is not None
        argv = build_argv(
            self.cli_path,
            session,
            self._config,
            mcp_config_path=self._mcp_config_path,
            spent_usd=self._spent[0],
        )
        env = build_env(self._config, session)
        self._proc = self._inbox = None
        proc = await ManagedProcess.start(
            argv, env=env, cwd=session.cwd, stderr_limit=self._stderr_limit
        )
        self._proc = proc
        self._settings, self._thinking = session.settings, session.settings.thinking
        control = self._control = ControlChannel(proc.send_line)
        inbox = self._inbox = _Inbox()
        self._reader = Detached(lambda: self._read_loop(proc, inbox, control))
        self._reader.start()
        try:
            self.server_info = await control.request(
                {"subtype": "initialize", "hooks": initialize_hooks(session.hooks)},
                timeout_s=self._config.init_timeout,
            )
        except ClaudeError as exc:
            await self._stop_process()
            raise proc.error(f"the CLI did not complete initialize: {exc}") from exc
        except BaseException:  # cancelled while starting: leave nothing running
            await self._stop_process()
            self._proc = self._inbox = None  # the next turn starts a process again
            raise

    async def aclose(self) -> None:
        """Stop the process (its shutdown ladder is shielded), then the reader task."""
        self._spec = None
        await self._stop_process()
        self._remove_mcp_config()

    async def _stop_process(self) -> None:
        """Stop the process cleanly (stdin closed, then the shielded ladder) and its reader."""
        if self._proc is not None:
            await self._proc.aclose()
        if self._inbox is not None:
            self._inbox.end(_CLOSED)
        if self._reader is not None:
            reader, self._reader = self._reader, None
            await reader.aclose()

    def _remove_mcp_config(self) -> None:
        if self._mcp_config_path is not None:
            path, self._mcp_config_path = self._mcp_config_path, None
            os.unlink(path)

    async def terminate(self) -> None:
        """Stop the CLI process now (shielded); ``aclose()`` still releases the reader."""
        if self._proc is not None:
            await self._proc.aclose(grace=0.5)

    @property
    def pid(self) -> int | None:
        """The CLI's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    async def interrupt(self) -> None:
        """Ask the CLI to abort the running turn; it then ends with an error result.

        A CLI that does not acknowledge within ``INTERRUPT_WAIT_S`` is hung: it is stopped, and
        the turn (and every later one) fails with a ``ProcessError`` saying so.
        """
        proc, control = self._proc, self._control
        if control is None or proc is None or proc.returncode is not None:
            return
        try:
            await control.request({"subtype": "interrupt"}, timeout_s=INTERRUPT_WAIT_S)
        except TimeoutError:
            await self._stop(f"the CLI did not answer an interrupt within {INTERRUPT_WAIT_S:g}s")

    async def _stop(self, why: str) -> None:
        """Stop the process now (shielded) and end the frames with ``why``."""
        if self._inbox is not None:
            self._inbox.end(f"{why}, so it was stopped")
        await self.terminate()

    async def set_model(self, model: str | None) -> None:
        await self._require_control().request({"subtype": "set_model", "model": model})
        self._model = (model,)

    async def set_permission_mode(self, mode: str) -> None:
        await self._require_control().request({"subtype": "set_permission_mode", "mode": mode})
        self._mode = mode

    def _require_control(self) -> ControlChannel:
        if self._control is None:
            raise ClaudeError("the CLI backend is not open")
        return self._control

    # ---------------------------------------------------------------- turns

    def exchange(self, request: Exchange) -> AsyncIterator[Frame]:
        return self._exchange(request)

    async def _exchange(self, request: Exchange) -> AsyncIterator[Frame]:
        if self._spec is None:
            raise ClaudeError("the CLI backend is not open: use `async with Conversation(...)`")
        unsupported = unsupported_setting(request.settings)
        if unsupported is not None:
            raise _refusal(unsupported)
        if request.prompt != CLEAR_COMMAND:  # as on the API path; the CLI takes no budget of 0
            refuse_spent_budget(request.settings.max_budget_usd, sum(self._spent), "session")
        clock = _Clock(self._config)
        proc, inbox = await self._process_for(request.settings, clock)
        line = w.OutgoingUserLine(
            w.OutgoingUserMessage("user", _content(request.prompt)), uuid=request.turn_id
        )
        await proc.send_line(_encoder.encode(line))
        self._owed += 1
        frames = inbox.frames  # what follows this turn's result stays for the next turn
        while True:
            if not frames:
                await self._next(proc, inbox, clock)
            frame = frames.popleft()
            if w.ends_turn(frame):
                self._owed -= 1  # before the yield: the consumer may stop at this frame
                self._note_session(frame)
                yield frame
                return
            yield frame

    # ---------------------------------------------------------------- per-turn settings

    async def _process_for(
        self, settings: RequestSettings, clock: _Clock
    ) -> tuple[ManagedProcess, _Inbox]:
        """The process to run a turn with ``settings`` on, its earlier turns finished: the
        running one when it has those settings or a control request gives them, else a new
        one resuming the session. A process that has exited is kept: the turn then fails,
        saying why, as it would have with the same settings."""
        proc, inbox = self._proc, self._inbox
        if proc is None or inbox is None:  # a restart was cancelled: start one now
            await self._restart(settings)
        else:
            if self._owed:
                await self._skip_abandoned(proc, inbox, clock)
            if (
                settings != self._applied()
                and proc.returncode is None
                and not await self._set_thinking(settings)
            ):
                await self._restart(settings)
        proc, inbox = self._proc, self._inbox
        assert proc is not None
        assert inbox is not None
        return proc, inbox

    def _applied(self) -> RequestSettings:
        """The settings the running process applies now."""
        return msgspec.structs.replace(self._settings, thinking=self._thinking)

    async def _set_thinking(self, settings: RequestSettings) -> bool:
        """Apply a change of thinking alone with ``set_max_thinking_tokens``, where it can say
        it (a budget, off, or back to the process's own); False when it cannot."""
        if msgspec.structs.replace(settings, thinking=self._thinking) != self._applied():
            return False
        tokens = _thinking_tokens(settings.thinking, self._settings.thinking)
        if tokens is _NO_CONTROL:
            return False
        try:
            await self._require_control().request(
                {"subtype": "set_max_thinking_tokens", "max_thinking_tokens": tokens}
            )
        except ClaudeError as exc:
            log.debug("set_max_thinking_tokens refused (%s): restarting instead", exc)
            return False
        self._thinking = settings.thinking
        return True

    async def _restart(self, settings: RequestSettings) -> None:
        """Stop the process after its last turn and start one with ``settings`` that resumes
        the session (``--resume`` keeps its id); cancelling it leaves no process running, and
        the next turn starts one."""
        spec = self._spec
        assert spec is not None
        started = anyio.current_time()
        await self._stop_process()
        self._owed = 0
        self._spent = (sum(self._spent), 0.0)  # the budget covers the whole session
        resume = self._session_id
        spec = msgspec.structs.replace(
            spec,
            settings=settings,
            session_id=None if resume else spec.session_id,
            resume=resume or spec.resume,
            fork_session=spec.fork_session and not resume,
            model=self._model[0] if self._model is not None else spec.model,
            permission_mode=self._mode or spec.permission_mode,
        )
        await self._start(spec)
        self.restarts += 1
        self.restart_ms = (anyio.current_time() - started) * 1000
        log.debug(
            "restarted the CLI for a turn's settings in %.0f ms (session %s)",
            self.restart_ms,
            resume,
        )

    def _note_session(self, frame: Frame) -> None:
        """From a turn's result: the session's id, and what this process has spent."""
        if isinstance(frame, w.ResultLine):
            if frame.session_id:
                self._session_id = frame.session_id
            if frame.total_cost_usd is not None:  # cumulative over the process
                self._spent = (self._spent[0], frame.total_cost_usd)

    async def _next(self, proc: ManagedProcess, inbox: _Inbox, clock: _Clock) -> None:
        """Until there is a frame; at the end of output reap the process and raise why. On a
        timeout the CLI is interrupted (or stopped, if it does not answer) before raising."""
        try:
            await clock.wait(inbox)
        except TimeoutError:
            with anyio.CancelScope(shield=True):
                await self.interrupt()
            raise
        if not inbox.frames:
            await proc.aclose()  # a no-op once closed
            raise proc.error(inbox.ended or _CLOSED)

    async def _skip_abandoned(self, proc: ManagedProcess, inbox: _Inbox, clock: _Clock) -> None:
        """Take what is left of turns abandoned before their result, up to that result.

        Nobody listens to those turns any more: a permission they ask for is denied and a tool
        call fails, both saying the turn was abandoned. A CLI that does not finish them within
        the limits is stopped.
        """
        frames = inbox.frames
        while self._owed:
            if not frames:
                try:
                    await clock.wait(inbox)
                except TimeoutError as exc:
                    await self._stop(f"the CLI did not finish an abandoned turn: {exc}")
                    raise
                if not frames:
                    await proc.aclose()
                    raise proc.error(inbox.ended or _CLOSED)
            frame = frames.popleft()
            if w.ends_turn(frame):
                self._owed -= 1
                self._note_session(frame)
            elif isinstance(frame, PermissionQuery):
                await frame.reply(PermissionAnswer("deny", message=_ABANDONED))
            elif isinstance(frame, ToolInvocation):
                await frame.reply(ToolOutcome(_ABANDONED, is_error=True))
            elif isinstance(frame, HookQuery):
                await frame.reply(frame.refusal(_ABANDONED))

    # ---------------------------------------------------------------- reader

    async def _read_loop(
        self, proc: ManagedProcess, inbox: _Inbox, control: ControlChannel
    ) -> None:
        try:
            await self._pump(proc, inbox, control)
        except ClaudeError as exc:  # e.g. an answer could not be written: the CLI is gone
            inbox.end(f"the CLI's output could not be handled: {exc}")
        finally:
            # however the reader stops (end of output, or cancelled along with its
            # conversation), nobody will read a control response any more
            control.fail_all("the CLI's output is no longer being read")
            inbox.end(_EXITED)

    async def _pump(self, proc: ManagedProcess, inbox: _Inbox, control: ControlChannel) -> None:
        """Decode the lines as they arrive; hand the frames of each read over as one batch
        (one wake-up of the consumer per read, not per line)."""
        while (lines := await proc.receive_lines()) is not None:
            inbox.heard = time.monotonic()
            frames: list[Frame] = []
            for raw in lines:
                frame = await self._on_line(raw, control)
                if frame is not None:
                    frames.append(frame)
            if frames:
                inbox.put(frames)

    async def _on_line(self, raw: bytes, control: ControlChannel) -> Frame | None:
        if not raw.strip():
            return None
        try:
            line = w.decode_cli_line(raw)
        except ProtocolError:
            unknown = _undecodable(raw)
            request_id = unknown.raw.get("request_id")
            if unknown.raw.get("type") == "control_request" and isinstance(request_id, str):
                # no body, or one that is not an object: still answered, or the CLI waits
                await control.answer_error(request_id, "Malformed control request")
            return unknown
        if isinstance(line, w.ControlResponseLine):
            control.resolve(line.response)
        elif isinstance(line, w.ControlCancelLine):
            control.withdraw(line.request_id)
        elif isinstance(line, w.ControlRequestLine):
            return await self._on_request(line)
        else:
            return line
        return None

    async def _on_request(self, line: w.ControlRequestLine) -> Frame | None:
        """Answer what needs no decision; turn the rest into frames for the core."""
        control, request_id, body = self._control, line.request_id, line.request
        assert control is not None
        name = body.name if isinstance(body, w.UnknownControlRequest) else _subtype(body)
        control.received(request_id, name)
        if isinstance(body, w.CanUseToolRequest):
            return PermissionQuery(
                body.tool_use_id or request_id,
                body.tool_name,
                body.input,
                _permission_reply(control, request_id, body.input),
                PermissionContext(
                    body.blocked_path, body.decision_reason or None, body.permission_suggestions
                ),
            )
        if isinstance(body, w.McpMessageRequest):
            return await self._on_mcp(request_id, body)
        if isinstance(body, w.HookCallbackRequest):

            async def answer_hook(answer: HookAnswer) -> None:
                await control.answer(request_id, hook_output(answer))

            return HookQuery(body.callback_id, body.input, answer_hook)
        await control.answer_error(request_id, f"Unsupported control request subtype: {name}")
        # answered, and shown: a new (or malformed) request must not pass unnoticed
        return w.UnknownLine(
            raw={"type": "control_request", "request_id": request_id, "request": body.raw}
        )

    async def _on_mcp(self, request_id: str, body: w.McpMessageRequest) -> Frame | None:
        control = self._control
        assert control is not None
        try:
            rpc = self._mcp.parse(body.message)
            params = self._mcp.call_params(rpc) if rpc.method == "tools/call" else None
        except InvalidMcpMessage as exc:
            await control.answer(request_id, {"mcp_response": exc.response})
            return None
        if params is None:
            await control.answer(request_id, {"mcp_response": self._mcp.answer(rpc)})
            return None
        tool_use_id = str(params.meta.get("claudecode/toolUseId", request_id))

        async def reply(outcome: ToolOutcome) -> None:
            await control.answer(request_id, {"mcp_response": self._mcp.call_result(rpc, outcome)})

        return ToolInvocation(tool_use_id, params.name, params.arguments, reply)


def _private_file(data: bytes) -> str:
    """Write ``data`` to a new file only its owner can read; the caller removes it."""
    fd, path = tempfile.mkstemp(prefix="claude-unified-mcp-", suffix=".json")
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    return path


_NO_CONTROL = object()


def _thinking_tokens(wanted: ThinkingSetting, launched: ThinkingSetting) -> object:
    """``set_max_thinking_tokens``'s value for ``wanted`` in a process started with
    ``launched``: ``null`` restores the launch setting, 0 turns thinking off, N is a budget
    (with the launch display). ``_NO_CONTROL`` when it cannot say it ("adaptive", another
    display, or the CLI's default once the process was started with another setting)."""
    if wanted == launched:
        return None
    if wanted == "disabled":
        return 0
    if isinstance(wanted, ThinkingConfig):
        display = launched.display if isinstance(launched, ThinkingConfig) else None
        if wanted.display == display:  # the display stays what the process started with
            return wanted.budget_tokens
    return _NO_CONTROL


def _subtype(body: w.ControlRequestBody) -> str:
    """The wire subtype of a typed control request (its msgspec tag)."""
    return str(body.__struct_config__.tag)


def _undecodable(raw: bytes) -> w.UnknownLine:
    """A line the typed decoders refuse, whole: a JSON object as itself (a known type with an
    unexpected shape included), anything else as text."""
    try:
        return w.UnknownLine(raw=w.decode_json_object(raw))
    except ProtocolError:
        return w.UnknownLine(raw={"type": "non_json_line", "text": raw.decode("utf-8", "replace")})


def _permission_reply(control: ControlChannel, request_id: str, original: JsonObject) -> Any:
    async def reply(answer: PermissionAnswer) -> None:
        payload: dict[str, Any]
        if answer.behavior == "allow":
            payload = {"behavior": "allow", "updatedInput": answer.updated_input or original}
        else:
            payload = {"behavior": "deny", "message": answer.message or "Denied"}
            if answer.interrupt:
                payload["interrupt"] = True
        await control.answer(request_id, payload)

    return reply


def _content(prompt: str | list[ContentBlock]) -> str | list[Any]:
    if isinstance(prompt, str):
        return prompt
    return [b.raw if isinstance(b, UnknownBlock) else b for b in prompt]
