"""CliBackend: the Claude Code CLI as one long-lived stream-json subprocess per conversation.

A background task reads stdout continuously into an unbounded queue, so a slow consumer never
stalls the CLI's control requests. Lines are decoded with the core's typed decoders; control
requests that need a decision (``can_use_tool``) or a tool run (MCP ``tools/call``) become
``PermissionQuery`` / ``ToolInvocation`` frames the core answers. Use it inside
``async with Conversation(...)``: the reader task lives between ``open()`` and ``aclose()``.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import anyio
import msgspec
from anyio.abc import TaskGroup

from .. import _wire as w
from .._config import Config
from .._events import ContentBlock, JsonObject, UnknownBlock
from .._exceptions import ClaudeError, ConfigError, ProtocolError
from .._settings import RequestSettings, ThinkingConfig, ThinkingSetting
from ._control import ControlChannel
from ._discovery import check_version, cli_version, find_cli
from ._mcp import MCP_CONFIG, McpServer, mcp_config
from ._process import ManagedProcess
from ._protocol import (
    Exchange,
    Frame,
    PermissionAnswer,
    PermissionQuery,
    SessionSpec,
    ToolInvocation,
    ToolOutcome,
)

__all__ = ["CliBackend", "build_argv", "build_env"]

_encoder = msgspec.json.Encoder()
# Variables that make a nested CLI refuse to start or misreport who launched it.
_STRIPPED_ENV = ("CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "CLAUDE_AGENT_SDK_VERSION")
_DEFAULT_BASE_URL = "https://api.anthropic.com"
_EXITED = "the CLI exited before the turn finished"
_CLOSED = "the CLI backend was closed during the turn"


class _Inbox:
    """Frames on their way from the reader task to the turn that yields them: an unbounded
    deque plus a wake-up. The reader never waits for the turn, and a turn that is still busy
    with earlier frames takes the next ones without a pass through the event loop."""

    __slots__ = ("_waiter", "ended", "frames")

    def __init__(self) -> None:
        self.frames: deque[Frame] = deque()
        self.ended: str | None = None  # why no more frames will come
        self._waiter: anyio.Event | None = None

    def put(self, frames: list[Frame]) -> None:
        self.frames.extend(frames)
        self._wake()

    def end(self, why: str) -> None:
        self.ended = self.ended or why
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.set()

    async def wait(self) -> None:
        """Until there is a frame or the end (at once if there is)."""
        while not self.frames and self.ended is None:
            waiter = self._waiter = anyio.Event()
            await waiter.wait()


def build_argv(
    cli: str, session: SessionSpec, config: Config, *, mcp_config_path: str | None = None
) -> list[str]:
    """The CLI's argv. User values use ``--flag=value``; multi-value flags repeat.

    With ``Config.mcp_servers``, the MCP config is the file at ``mcp_config_path``: their
    ``env`` and ``headers`` may hold credentials, which must not show in the process list."""
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


def _agent_flags(config: Config) -> list[str]:
    """Budget, beta headers, tool rules, settings, sub-agents and plugins."""
    flags: list[str] = []
    if config.max_budget_usd is not None:
        flags.append(f"--max-budget-usd={config.max_budget_usd}")
    flags += [f"--betas={b}" for b in config.betas]
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
    """The user's environment, minus what confuses a nested CLI, plus configured values."""
    env = {k: v for k, v in os.environ.items() if k not in _STRIPPED_ENV}
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
        self._tg: TaskGroup | None = None
        self._inbox: _Inbox | None = None
        self._control: ControlChannel | None = None
        self._mcp = McpServer(())
        self._settings = RequestSettings()
        self._mcp_config_path: str | None = None
        self.cli_path: str | None = None
        self.cli_version: str | None = None
        self.server_info: JsonObject = {}

    # ---------------------------------------------------------------- lifecycle

    async def open(self, session: SessionSpec) -> None:
        path = find_cli(self._config.cli_path)
        version = await cli_version(path)
        check_version(version)
        self.cli_path, self.cli_version = str(path), ".".join(map(str, version))
        self._mcp = McpServer(session.tools)
        self._settings = session.settings
        if self._config.mcp_servers:
            self._mcp_config_path = _private_file(
                mcp_config(bool(session.tools), self._config.mcp_servers)
            )
        argv = build_argv(str(path), session, self._config, mcp_config_path=self._mcp_config_path)
        env = build_env(self._config, session)
        try:
            proc = await ManagedProcess.start(
                argv, env=env, cwd=session.cwd, stderr_limit=self._stderr_limit
            )
        except BaseException:
            self._remove_mcp_config()
            raise
        self._proc = proc
        self._control = ControlChannel(proc.send_line)
        self._inbox = _Inbox()
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._read_loop, proc, self._inbox)
        try:
            self.server_info = await self._control.request({"subtype": "initialize", "hooks": None})
        except ClaudeError as exc:
            await self.aclose()
            raise proc.error(f"the CLI did not complete initialize: {exc}") from exc

    async def aclose(self) -> None:
        """Stop the process (its own shutdown ladder is shielded), then the reader task.

        The task group is exited outside any shield: its cancel scope was entered in ``open()``
        and must be the innermost scope when it exits.
        """
        if self._proc is not None:
            await self._proc.aclose()
        self._remove_mcp_config()
        if self._inbox is not None:
            self._inbox.end(_CLOSED)
        if self._tg is not None:
            tg, self._tg = self._tg, None
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)

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
        """Ask the CLI to abort the running turn; it then ends with an error result."""
        if self._control is not None and self._proc is not None and self._proc.returncode is None:
            await self._control.request({"subtype": "interrupt"})

    async def set_model(self, model: str | None) -> None:
        await self._require_control().request({"subtype": "set_model", "model": model})

    async def set_permission_mode(self, mode: str) -> None:
        await self._require_control().request({"subtype": "set_permission_mode", "mode": mode})

    def _require_control(self) -> ControlChannel:
        if self._control is None:
            raise ClaudeError("the CLI backend is not open")
        return self._control

    # ---------------------------------------------------------------- turns

    def exchange(self, request: Exchange) -> AsyncIterator[Frame]:
        return self._exchange(request)

    async def _exchange(self, request: Exchange) -> AsyncIterator[Frame]:
        proc, inbox = self._proc, self._inbox
        if proc is None or inbox is None:
            raise ClaudeError("the CLI backend is not open: use `async with Conversation(...)`")
        changed = _changed_setting(self._settings, request.settings)
        if changed is not None:
            raise ConfigError(
                f"{changed} cannot change from one turn to the next on the CLI backend: the "
                "CLI takes it when its process starts. Set it in the Config, or use "
                "ChatClient / query(), where every call starts its own process.",
                field=changed,
            )
        line = w.OutgoingUserLine(
            w.OutgoingUserMessage("user", _content(request.prompt)), uuid=request.turn_id
        )
        await proc.send_line(_encoder.encode(line))
        frames = inbox.frames  # what follows this turn's result stays for the next turn
        while True:
            if not frames:
                await inbox.wait()
                if not frames:  # the end: reap the process (a no-op once closed)
                    await proc.aclose()
                    raise proc.error(inbox.ended or _CLOSED)
            frame = frames.popleft()
            yield frame
            if isinstance(frame, w.ResultLine):
                return

    # ---------------------------------------------------------------- reader

    async def _read_loop(self, proc: ManagedProcess, inbox: _Inbox) -> None:
        assert self._control is not None
        control = self._control
        try:
            await self._pump(proc, inbox, control)
        finally:
            # however the reader stops (end of output, or cancelled along with its
            # conversation), nobody will read a control response any more
            control.fail_all("the CLI's output is no longer being read")
            inbox.end(_EXITED)

    async def _pump(self, proc: ManagedProcess, inbox: _Inbox, control: ControlChannel) -> None:
        """Decode the lines as they arrive; hand the frames of each read over as one batch
        (one wake-up of the consumer per read, not per line)."""
        while (lines := await proc.receive_lines()) is not None:
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
            text = raw[:2000].decode("utf-8", "replace")
            return w.UnknownLine(raw={"type": "non_json_line", "text": text})
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
            )
        if isinstance(body, w.McpMessageRequest):
            return await self._on_mcp(request_id, body)
        if isinstance(body, w.HookCallbackRequest):
            await control.answer(request_id, {})  # we register no hooks: no opinion
            return None
        await control.answer_error(request_id, f"Unsupported control request subtype: {name}")
        return None

    async def _on_mcp(self, request_id: str, body: w.McpMessageRequest) -> Frame | None:
        control = self._control
        assert control is not None
        try:
            rpc = self._mcp.parse(body.message)
        except msgspec.ValidationError as exc:
            await control.answer_error(request_id, f"invalid MCP message: {exc}")
            return None
        if rpc.method != "tools/call":
            await control.answer(request_id, {"mcp_response": self._mcp.answer(rpc)})
            return None
        params = self._mcp.call_params(rpc)
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


def _changed_setting(session: RequestSettings, turn: RequestSettings) -> str | None:
    if turn == session:
        return None
    names = (*RequestSettings.__struct_fields__,)
    changed = next(n for n in names if getattr(turn, n) != getattr(session, n))
    return "output" if changed == "output_schema" else changed


def _subtype(body: w.ControlRequestBody) -> str:
    """The wire subtype of a typed control request (its msgspec tag)."""
    return str(body.__struct_config__.tag)


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
