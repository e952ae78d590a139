"""Parity: one scenario, two transports, one story.

Every test runs on the ApiBackend (the library runs the agent loop against FakeAnthropicServer)
and on the CliBackend (the real pinned ``claude`` CLI runs the loop against the same server and
consults the library through ``can_use_tool`` and the ``claude_unified`` MCP server). A test
states its expectations once, and the same literal is checked on both transports:

- the normalized events, in order (``*Delta``, ``Unknown``, ``SessionStarted`` and ``ApiRetry``
  left out), with tool names, inputs, permission decisions and results;
- the calls the permission policy received (name and input, in order);
- what the tools left on disk.

Where the CLI itself does something its own way (the wording of its built-in tools' results and
of its interrupt, its input validation of built-in tools, the order in which it streams and runs
several tool calls), the expectation says so with ``side.pick(api=..., cli=...)`` and a comment.
Everything else is the library's job and is expected to be identical.

Every scenario runs on both anyio backends for both transports: a CLI variant costs one real CLI
start (~0.6 s) plus a few turns of ~0.2 s, and the CLI backend's reader task and control
channel are code of their own that the API variants do not exercise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, TypeVar

import anyio
import pytest

import claude_unified as cu
from claude_unified.testing import FakeAnthropicServer, reply, tool_call, tool_calls
from claude_unified.testing.pytest_plugin import CliTestEnv

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize(
        ("anyio_backend", "transport"),
        [
            pytest.param("asyncio", "api", id="api-asyncio"),
            pytest.param("trio", "api", id="api-trio"),
            pytest.param("asyncio", "cli", id="cli-asyncio", marks=pytest.mark.cli),
            pytest.param("trio", "cli", id="cli-trio", marks=pytest.mark.cli),
        ],
    ),
]

T = TypeVar("T")
JsonObject = dict[str, Any]
Step = tuple[Any, ...]

LEAD = "On it."  # the text the model writes before each scripted tool call
TURN_TIMEOUT_S = 30  # a turn that waits for an answer nobody gives must fail, not hang
OWN_PREFIX = "mcp__claude_unified__"
UNANSWERED = (
    "Permission to use {name} was not granted: the policy asked, and no answer came. "
    "Allow it with a policy such as allow_list([{name!r}]), or answer the PermissionRequest "
    "event with conversation.respond(request, Allow())."
)
# What the model reads for a call rejected with interrupt=True (and for the calls of the same
# message then cancelled), on both transports; the Deny's own message stays on the decision.
STOP = (
    "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it "
    "was a file edit, the new_string was NOT written to the file). STOP what you are doing and "
    "wait for the user to tell you how to proceed."
)


# --------------------------------------------------------------------------- harness


class Like:
    """Equal to every string the regular expression matches in full (for the CLI's wording)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern, re.DOTALL)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.pattern.fullmatch(other) is not None

    def __hash__(self) -> int:
        return hash(self.pattern.pattern)

    def __repr__(self) -> str:
        return f"Like({self.pattern.pattern!r})"


@dataclass(frozen=True)
class Side:
    """One transport: its config, the fake server behind it and its working directory."""

    transport: str
    server: FakeAnthropicServer
    cwd: Path
    cli: CliTestEnv | None

    def config(self) -> cu.Config:
        if self.cli is not None:
            return self.cli.config()
        return cu.Config(backend="api", api_key="sk-ant-test", base_url=self.server.url)

    def pick(self, *, api: T, cli: T) -> T:
        """The expectation on this transport where the CLI itself differs (a comment says how)."""
        return cli if self.transport == "cli" else api


@pytest.fixture
def side(
    transport: str,
    fake_anthropic_server: FakeAnthropicServer,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Side:
    if transport == "cli":
        env: CliTestEnv = request.getfixturevalue("claude_cli_env")
        return Side("cli", env.server, Path(env.cwd), env)
    cwd = tmp_path / "work"
    cwd.mkdir()
    return Side("api", fake_anthropic_server, cwd, None)


class Trace(NamedTuple):
    """One turn: its events and the calls the policy received during it."""

    events: list[cu.Event]
    calls: list[tuple[str, JsonObject]]

    @property
    def steps(self) -> list[Step]:
        return [step(e) for e in self.events if not _ignored(e)]

    @property
    def result(self) -> cu.Result:
        last = self.events[-1]
        assert isinstance(last, cu.Result), self.steps
        return last

    def per_tool(self) -> list[list[Step]]:
        """The steps of each tool call (by tool_use_id), in the order of the ToolUse events."""
        order = [e.id for e in self.events if isinstance(e, cu.ToolUse)]
        return [[step(e) for e in self.events if _tool_id(e) == tid] for tid in order]


def _ignored(event: cu.Event) -> bool:
    deltas = (cu.TextDelta, cu.ThinkingDelta, cu.ToolInputDelta)
    return isinstance(event, (*deltas, cu.Unknown, cu.SessionStarted, cu.ApiRetry))


def _tool_id(event: cu.Event) -> str | None:
    if isinstance(event, cu.ToolUse):
        return event.id
    if isinstance(event, cu.PermissionRequest | cu.PermissionDecision | cu.ToolResult):
        return event.tool_use_id
    return None


def _content_text(content: str | list[cu.ContentBlock]) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.text for b in content if isinstance(b, cu.TextBlock))


def step(event: cu.Event) -> Step:
    """An event as a comparable tuple, without the ids the two transports pick differently."""
    match event:
        case cu.Text(text=t):
            return ("Text", t)
        case cu.ToolUse(name=name, input=tool_input):
            return ("ToolUse", name, tool_input)
        case cu.PermissionRequest(name=name, input=tool_input):
            return ("PermissionRequest", name, tool_input)
        case cu.PermissionDecision():
            e = event
            return ("PermissionDecision", e.name, e.behavior, e.decided_by, e.message, e.interrupt)
        case cu.ToolResult(name=name, content=content, is_error=is_error):
            return ("ToolResult", name, is_error, _content_text(content))
        case cu.HookRan(event=hook_event, outcome=outcome, message=message):
            return ("HookRan", hook_event, outcome, message)
        case cu.Result(is_error=is_error, error=error):
            return ("Result", is_error, error.kind if error is not None else None)
    return (type(event).__name__,)


# Expected steps, spelled the way a reader thinks of them.
def text(t: object) -> Step:
    return ("Text", t)


def use(name: str, tool_input: JsonObject) -> Step:
    return ("ToolUse", name, tool_input)


def asked(name: str, tool_input: JsonObject) -> Step:
    return ("PermissionRequest", name, tool_input)


def allowed(name: str, *, by: str = "policy") -> Step:
    return ("PermissionDecision", name, "allow", by, None, False)


def denied(name: str, message: object, *, by: str = "policy", interrupt: bool = False) -> Step:
    return ("PermissionDecision", name, "deny", by, message, interrupt)


def result(name: str, content: object, *, is_error: bool = False) -> Step:
    return ("ToolResult", name, is_error, content)


def seen(content: str, *, is_error: bool = False) -> str:
    """The fake model's answer to one tool result."""
    return f"TOOL_RESULT_SEEN is_error={str(is_error).lower()}: {content}"


def error_seen(side: Side, message: str) -> object:
    """What the model reads for an error one of our own tools returned.

    The CLI defers MCP tools (they are reached through ToolSearch), and to an error such a tool
    returns it appends the tool's schema for the model; the library sends the error as it is.
    """
    plain = seen(message, is_error=True)
    hint = r"\n\nThis tool's input schema was not in your prompt when you called it\..*"
    return side.pick(api=plain, cli=Like(re.escape(plain) + hint))


def end(error_kind: str | None = None) -> Step:
    return ("Result", error_kind is not None, error_kind)


class Session:
    """One Conversation on one transport. Scripts the model; records what the policy sees.

    ``builtins`` gives the API path ``cu.builtin_tools(root=cwd)``; the CLI has its own
    Read/Write/Bash/… Without a ``policy`` the library's default applies to the tools registered
    on this transport, as it would in the Conversation itself.
    """

    def __init__(
        self,
        side: Side,
        *,
        tools: Iterable[cu.Tool] = (),
        policy: cu.Policy | None = None,
        builtins: bool = False,
        hooks: Iterable[cu.Hook] = (),
    ) -> None:
        self.side = side
        own = list(tools)
        self.own = {t.name for t in own}
        registered = own + (
            cu.builtin_tools(root=side.cwd) if builtins and side.transport == "api" else []
        )
        base = policy if policy is not None else cu.default_policy(t.name for t in registered)
        self.calls: list[tuple[str, JsonObject]] = []
        recorder = cu.callback(self._record)
        self.conv = cu.Conversation(
            side.config(),
            tools=registered,
            policy=cu.first_match(recorder, base),
            hooks=list(hooks),
        )

    def _record(self, name: str, tool_input: JsonObject) -> None:
        self.calls.append((name, tool_input))

    async def __aenter__(self) -> Session:
        await self.conv.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.conv.aclose()

    def wire_name(self, name: str) -> str:
        """How the model names a tool: the CLI reaches ours through the MCP server."""
        own_on_cli = self.side.transport == "cli" and name in self.own
        return f"{OWN_PREFIX}{name}" if own_on_cli else name

    def script(self, prompt: str, *calls: tuple[str, JsonObject]) -> None:
        """The model answers ``prompt`` with these tool calls, all in one message.

        The rule is keyed on the prompt, so the CLI's own extra requests cannot consume it;
        the follow-up (the tool results) gets the fake's default acknowledgement.
        """
        wire = [(self.wire_name(name), tool_input) for name, tool_input in calls]
        answer = tool_call(*wire[0], text=LEAD) if len(wire) == 1 else tool_calls(*wire, text=LEAD)
        self.side.server.on(prompt, answer, times=1)

    async def turn(self, prompt: str, *, answer: cu.Allow | cu.Deny | None = None) -> Trace:
        """Run one turn; answer each PermissionRequest with ``answer`` (None: leave it)."""
        start = len(self.calls)
        events: list[cu.Event] = []
        with anyio.fail_after(TURN_TIMEOUT_S):
            async for event in self.conv.send(prompt):
                events.append(event)
                if isinstance(event, cu.PermissionRequest) and answer is not None:
                    self.conv.respond(event, answer)
        trace = Trace(events, self.calls[start:])
        check_tool_event_order(trace)
        return trace


def check_tool_event_order(trace: Trace) -> None:
    """On both transports each tool call reads ToolUse → [PermissionRequest] →
    [PermissionDecision] → ToolResult, each at most once, all under one tool_use_id."""
    rank = {"ToolUse": 0, "PermissionRequest": 1, "PermissionDecision": 2, "ToolResult": 3}
    ids = {e.id for e in trace.events if isinstance(e, cu.ToolUse)}
    for event in trace.events:
        tid = _tool_id(event)
        assert tid is None or tid in ids, f"{event!r} has no ToolUse in this turn"
    for steps in trace.per_tool():
        kinds = [s[0] for s in steps]
        assert kinds[0] == "ToolUse", steps
        assert kinds[-1] == "ToolResult", steps
        assert len(set(kinds)) == len(kinds), steps
        assert [rank[k] for k in kinds] == sorted(rank[k] for k in kinds), steps


def last_user_content(server: FakeAnthropicServer) -> list[JsonObject]:
    body = server.requests[-1].json
    assert body is not None
    last = [m for m in body["messages"] if m["role"] == "user"][-1]
    content = last["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


# --------------------------------------------------------------------------- tools


@cu.tool
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


@cu.tool
def shout(words: str) -> str:
    """Repeat the words in capitals."""
    return words.upper()


@cu.tool
def explode(reason: str) -> str:
    """A tool that always fails."""
    raise ValueError(f"cannot {reason}")


# --------------------------------------------------------------------------- scenarios


async def test_custom_tool_allowed(side: Side) -> None:
    prompt = "Please add 2 and 3."
    async with Session(side, tools=[add]) as session:
        session.script(prompt, ("add", {"a": 2, "b": 3}))
        trace = await session.turn(prompt)
    # the model called `mcp__claude_unified__add` on the CLI and `add` on the API: events say add
    assert trace.steps == [
        text(LEAD),
        use("add", {"a": 2, "b": 3}),
        allowed("add"),
        result("add", "5"),
        text(seen("5")),
        end(),
    ]
    assert trace.calls == [("add", {"a": 2, "b": 3})]
    assert trace.result.text == seen("5")


async def test_custom_tool_denied_by_allow_list(side: Side) -> None:
    prompt = "Please shout hello."
    policy = cu.first_match(cu.allow_list(["add"]), cu.deny_all())
    message = "Every tool use is denied by the policy deny_all()"
    async with Session(side, tools=[add, shout], policy=policy) as session:
        session.script(prompt, ("shout", {"words": "hello"}))
        trace = await session.turn(prompt)
    assert trace.steps == [
        text(LEAD),
        use("shout", {"words": "hello"}),
        denied("shout", message),
        result("shout", message, is_error=True),
        text(seen(message, is_error=True)),
        end(),
    ]
    assert trace.calls == [("shout", {"words": "hello"})]


async def test_deny_with_interrupt_ends_the_turn_and_the_next_one_works(side: Side) -> None:
    prompt, after = "Please add 1 and 2.", "Are you still there?"

    def stop(name: str, tool_input: JsonObject) -> cu.Deny:
        return cu.Deny("stop right there", interrupt=True)

    async with Session(side, tools=[add], policy=cu.callback(stop)) as session:
        session.script(prompt, ("add", {"a": 1, "b": 2}))
        side.server.on(after, reply("Still here."), times=1)
        first = await session.turn(prompt)
        second = await session.turn(after)
    assert first.steps == [
        text(LEAD),
        use("add", {"a": 1, "b": 2}),
        denied("add", "stop right there", interrupt=True),
        result("add", STOP, is_error=True),
        end("interrupted"),
    ]
    assert first.result.text == LEAD
    assert first.result.stop_reason == "tool_use"
    assert first.calls == [("add", {"a": 1, "b": 2})]
    assert second.steps == [text("Still here."), end()]
    assert second.calls == []
    # the next prompt travels in one user message with the rejected tool_result (the CLI also
    # adds its own "[Request interrupted by user for tool use]" line there)
    content = last_user_content(side.server)
    assert content[0]["type"] == "tool_result"
    assert content[0]["is_error"] is True
    assert content[-1]["type"] == "text"
    assert content[-1]["text"] == after


async def test_deny_with_interrupt_cancels_the_other_calls_of_the_message(side: Side) -> None:
    prompt = "Please add twice."

    def stop(name: str, tool_input: JsonObject) -> cu.Deny:
        return cu.Deny("stop right there", interrupt=True)

    async with Session(side, tools=[add], policy=cu.callback(stop)) as session:
        session.script(prompt, ("add", {"a": 1, "b": 2}), ("add", {"a": 3, "b": 4}))
        trace = await session.turn(prompt)
    assert trace.per_tool() == [
        [
            use("add", {"a": 1, "b": 2}),
            denied("add", "stop right there", interrupt=True),
            result("add", STOP, is_error=True),
        ],
        # never judged, never run, never allowed: no PermissionDecision on either transport
        [
            use("add", {"a": 3, "b": 4}),
            result("add", STOP, is_error=True),
        ],
    ]
    assert trace.steps[-1] == end("interrupted")
    assert trace.calls == [("add", {"a": 1, "b": 2})]


async def test_ask_answered_allow(side: Side) -> None:
    prompt = "Please save a note."
    saved: list[str] = []

    @cu.tool
    def save(note: str) -> str:
        """Save a note."""
        saved.append(note)
        return f"saved {note!r}"

    async with Session(side, tools=[save], policy=cu.allow_list(["add"])) as session:
        session.script(prompt, ("save", {"note": "hello"}))
        trace = await session.turn(prompt, answer=cu.Allow())
    assert trace.steps == [
        text(LEAD),
        use("save", {"note": "hello"}),
        asked("save", {"note": "hello"}),
        allowed("save", by="user"),
        result("save", "saved 'hello'"),
        text(seen("saved 'hello'")),
        end(),
    ]
    assert trace.calls == [("save", {"note": "hello"})]
    assert saved == ["hello"]


async def test_ask_answered_deny(side: Side) -> None:
    prompt = "Please create asked.txt."
    command = {"command": "touch asked.txt", "description": "create asked.txt"}
    async with Session(side, policy=cu.allow_list(["Read"]), builtins=True) as session:
        session.script(prompt, ("Bash", command))
        trace = await session.turn(prompt, answer=cu.Deny("not today"))
    assert trace.steps == [
        text(LEAD),
        use("Bash", command),
        asked("Bash", command),
        denied("Bash", "not today", by="user"),
        result("Bash", "not today", is_error=True),
        text(seen("not today", is_error=True)),
        end(),
    ]
    assert trace.calls == [("Bash", command)]
    assert not (side.cwd / "asked.txt").exists()


async def test_ask_left_unanswered_is_denied_with_advice(side: Side) -> None:
    prompt = "Please save another note."

    @cu.tool
    def save(note: str) -> str:
        """Save a note."""
        raise AssertionError("an unanswered Ask must not run the tool")

    message = UNANSWERED.format(name="save")
    async with Session(side, tools=[save], policy=cu.allow_list(["add"])) as session:
        session.script(prompt, ("save", {"note": "hi"}))
        trace = await session.turn(prompt)  # fails after TURN_TIMEOUT_S if it hangs
    assert trace.steps == [
        text(LEAD),
        use("save", {"note": "hi"}),
        asked("save", {"note": "hi"}),
        denied("save", message),
        result("save", message, is_error=True),
        text(seen(message, is_error=True)),
        end(),
    ]
    assert trace.calls == [("save", {"note": "hi"})]


async def test_a_tool_that_raises(side: Side) -> None:
    prompt = "Please explode."
    message = "Error: ValueError: cannot comply"
    async with Session(side, tools=[explode]) as session:
        session.script(prompt, ("explode", {"reason": "comply"}))
        trace = await session.turn(prompt)
    assert trace.steps == [
        text(LEAD),
        use("explode", {"reason": "comply"}),
        allowed("explode"),
        result("explode", message, is_error=True),
        text(error_seen(side, message)),
        end(),
    ]
    assert trace.calls == [("explode", {"reason": "comply"})]


async def test_invalid_arguments_for_a_custom_tool(side: Side) -> None:
    prompt = "Please add two and 3."
    bad = {"a": "two", "b": 3}
    message = "Error: Invalid arguments for tool 'add': field 'a': Expected `int`, got `str`"
    async with Session(side, tools=[add]) as session:
        session.script(prompt, ("add", bad))
        trace = await session.turn(prompt)
    # The CLI does not check an MCP tool's input against its schema: it asks can_use_tool and
    # calls us, so on both transports the policy is asked, allows, and the library's argument
    # validation rejects the call with the same message. Only what the model reads differs
    # (`error_seen`: the CLI appends the schema of a deferred tool to its error).
    assert trace.steps == [
        text(LEAD),
        use("add", bad),
        allowed("add"),
        result("add", message, is_error=True),
        text(error_seen(side, message)),
        end(),
    ]
    assert trace.calls == [("add", bad)]


async def test_invalid_arguments_for_a_builtin_tool(side: Side) -> None:
    prompt = "Please write a file without content."
    bad = {"file_path": str(side.cwd / "empty.txt")}
    async with Session(side, policy=cu.allow_list(["Write"]), builtins=True) as session:
        session.script(prompt, ("Write", bad))
        trace = await session.turn(prompt)
    # The CLI validates its own tools' input before any permission check, so there it neither
    # asks the policy nor decides anything; the library asks first and validates when it runs
    # the tool. Both report an is_error result and write nothing.
    assert trace.steps == side.pick(
        api=[
            text(LEAD),
            use("Write", bad),
            allowed("Write"),
            result(
                "Write",
                "Error: Invalid arguments for tool 'Write': missing required field 'content'",
                is_error=True,
            ),
            text(Like(r"TOOL_RESULT_SEEN is_error=true: .*content.*")),
            end(),
        ],
        cli=[
            text(LEAD),
            use("Write", bad),
            result(
                "Write", Like(r"<tool_use_error>InputValidationError: .*content.*"), is_error=True
            ),
            text(Like(r"TOOL_RESULT_SEEN is_error=true: .*content.*")),
            end(),
        ],
    )
    assert trace.calls == side.pick(api=[("Write", bad)], cli=[])
    assert not (side.cwd / "empty.txt").exists()


async def test_two_tool_calls_in_one_message(side: Side) -> None:
    prompt = "Please add and shout."
    async with Session(side, tools=[add, shout]) as session:
        session.script(prompt, ("add", {"a": 1, "b": 2}), ("shout", {"words": "hi"}))
        trace = await session.turn(prompt)
    per_tool = [
        [use("add", {"a": 1, "b": 2}), allowed("add"), result("add", "3")],
        [use("shout", {"words": "hi"}), allowed("shout"), result("shout", "HI")],
    ]
    final = [text(seen("3") + "\n" + seen("HI")), end()]
    # Parity per tool_use_id, in the same set of events, with decisions and results in call
    # order; the model gets both results, in call order, on both transports (`final`).
    assert trace.per_tool() == per_tool
    assert sorted(trace.steps, key=repr) == sorted(
        [text(LEAD), *per_tool[0], *per_tool[1], *final], key=repr
    )
    assert [s[1] for s in trace.steps if s[0] == "PermissionDecision"] == ["add", "shout"]
    assert [s[1] for s in trace.steps if s[0] == "ToolResult"] == ["add", "shout"]
    assert trace.steps[-2:] == final
    assert trace.calls == [("add", {"a": 1, "b": 2}), ("shout", {"words": "hi"})]
    # The global order differs by nature. The library judges every call in order, then runs
    # the allowed ones concurrently and reports their results in order. The CLI judges and runs
    # each call in turn while the message is still streaming, so where the second ToolUse falls
    # among the first call's events depends on timing there.
    if side.transport == "api":
        assert trace.steps == [
            text(LEAD),
            per_tool[0][0],
            per_tool[1][0],
            per_tool[0][1],
            per_tool[1][1],
            per_tool[0][2],
            per_tool[1][2],
            *final,
        ]


async def test_write_allowed(side: Side) -> None:
    prompt = "Please write note.txt."
    target = side.cwd / "note.txt"
    write = {"file_path": str(target), "content": "hello parity\n"}
    async with Session(side, policy=cu.allow_list(["Write"]), builtins=True) as session:
        session.script(prompt, ("Write", write))
        trace = await session.turn(prompt)
    # The CLI runs its own Write tool, which words its success its own way.
    written = side.pick(
        api="Created note.txt (13 characters)",
        cli=Like(re.escape(f"File created successfully at: {target}") + r".*"),
    )
    assert trace.steps == [
        text(LEAD),
        use("Write", write),
        allowed("Write"),
        result("Write", written),
        text(Like(r"TOOL_RESULT_SEEN is_error=false: .*note\.txt.*")),
        end(),
    ]
    assert trace.calls == [("Write", write)]
    assert target.read_text() == "hello parity\n"


async def test_write_denied(side: Side) -> None:
    prompt = "Please write secret.txt."
    target = side.cwd / "secret.txt"
    write = {"file_path": str(target), "content": "nope"}
    message = "Tool 'Write' is denied by the rule Write"
    async with Session(side, policy=cu.deny_list(["Write"]), builtins=True) as session:
        session.script(prompt, ("Write", write))
        trace = await session.turn(prompt)
    assert trace.steps == [
        text(LEAD),
        use("Write", write),
        denied("Write", message),
        result("Write", message, is_error=True),
        text(seen(message, is_error=True)),
        end(),
    ]
    assert trace.calls == [("Write", write)]
    assert not target.exists()


async def test_async_callback_policy_decides_per_tool(side: Side) -> None:
    first, second = "Please add 4 and 5.", "Please create judged.txt."
    command = {"command": "touch judged.txt", "description": "create judged.txt"}
    judged: list[str] = []

    async def judge(name: str, tool_input: JsonObject) -> cu.Decision:
        await anyio.sleep(0.01)
        judged.append(name)
        return cu.Allow() if name == "add" else cu.Deny(f"{name} is not for today")

    async with Session(side, tools=[add], policy=cu.callback(judge), builtins=True) as session:
        session.script(first, ("add", {"a": 4, "b": 5}))
        session.script(second, ("Bash", command))
        one = await session.turn(first)
        two = await session.turn(second)
    assert one.steps == [
        text(LEAD),
        use("add", {"a": 4, "b": 5}),
        allowed("add"),
        result("add", "9"),
        text(seen("9")),
        end(),
    ]
    assert two.steps == [
        text(LEAD),
        use("Bash", command),
        denied("Bash", "Bash is not for today"),
        result("Bash", "Bash is not for today", is_error=True),
        text(seen("Bash is not for today", is_error=True)),
        end(),
    ]
    assert one.calls == [("add", {"a": 4, "b": 5})]
    assert two.calls == [("Bash", command)]
    assert judged == ["add", "Bash"]
    assert not (side.cwd / "judged.txt").exists()


async def test_bash_rule_allows_touch_but_not_rm(side: Side) -> None:
    first, second = "Please touch x.txt.", "Please remove x.txt."
    touch = {"command": "touch x.txt", "description": "create x.txt"}
    remove = {"command": "rm x.txt", "description": "remove x.txt"}
    policy = cu.allow_list(["Bash(touch:*)"])
    async with Session(side, policy=policy, builtins=True) as session:
        session.script(first, ("Bash", touch))
        session.script(second, ("Bash", remove))
        one = await session.turn(first)
        assert (side.cwd / "x.txt").exists()
        two = await session.turn(second)
    # The CLI runs its own Bash tool, which reports a silent command its own way.
    silent = side.pick(api="\n[exit code 0]", cli="(Bash completed with no output)")
    assert one.steps == [
        text(LEAD),
        use("Bash", touch),
        allowed("Bash"),
        result("Bash", silent),
        text(seen(silent)),
        end(),
    ]
    # `rm x.txt` matches no rule: the policy has no opinion, so it is an Ask nobody answers
    message = UNANSWERED.format(name="Bash")
    assert two.steps == [
        text(LEAD),
        use("Bash", remove),
        asked("Bash", remove),
        denied("Bash", message),
        result("Bash", message, is_error=True),
        text(seen(message, is_error=True)),
        end(),
    ]
    assert one.calls == [("Bash", touch)]
    assert two.calls == [("Bash", remove)]
    assert (side.cwd / "x.txt").exists()


async def test_a_budget_of_zero_sends_no_request(side: Side) -> None:
    """The same end on both: no request, the turn ``budget_exhausted`` (Claude Code refuses to
    start with a budget of 0, so the CLI backend must refuse the turn itself)."""
    async with cu.Conversation(side.config().replace(max_budget_usd=0)) as conv:
        events = [event async for event in conv.send("Please spend nothing.")]
        with pytest.raises(cu.BudgetExceededError):
            await conv.ask("Please spend nothing.")
    assert [step(e) for e in events if not _ignored(e)] == [end("budget_exhausted")]
    assert not [r for r in side.server.requests if r.path == "/v1/messages"]
