"""Parity of the one policy over the calls the CLI counts as read-only.

The CLI runs Read, Glob, Grep and read-only Bash commands (``cat``, ``ls``, ``git status``)
without asking ``can_use_tool``. The library registers a PreToolUse hook for every tool, so the
same policy judges these calls too: a deny means nothing runs, on both transports, with the same
events. Harness and notation: ``test_parity``.
"""

from __future__ import annotations

from typing import Any

import claude_unified as cu

from .test_parity import (
    LEAD,
    UNANSWERED,
    Like,
    Session,
    Side,
    allowed,
    asked,
    denied,
    end,
    result,
    seen,
    side,
    text,
    use,
)
from .test_parity import pytestmark as parity_marks

pytestmark = parity_marks
__all__ = ["side"]  # the fixture, imported for pytest

SECRET = "TOP-SECRET-4711"


def reads(side: Side) -> list[tuple[str, str, dict[str, Any]]]:
    """(prompt, tool, input) for each read the CLI would run without asking.

    CLI 2.1.330 has no Glob and Grep tools (it answers "No such tool available" and points the
    model at Bash); there the same searches go through Bash, which is judged the same way.
    """
    path = str(side.cwd / "secret.txt")
    searches = side.pick(
        api=[
            ("Please glob for text files.", "Glob", {"pattern": "*.txt"}),
            ("Please grep for the secret.", "Grep", {"pattern": "SECRET", "path": str(side.cwd)}),
        ],
        cli=[],
    )
    return [
        ("Please read the secret.", "Read", {"file_path": path}),
        *searches,
        (
            "Please find text files.",
            "Bash",
            {"command": "find . -name '*.txt'", "description": "f"},
        ),
        ("Please grep the files.", "Bash", {"command": "grep -r SECRET .", "description": "g"}),
        ("Please cat the secret.", "Bash", {"command": "cat secret.txt", "description": "cat"}),
        ("Please list the files.", "Bash", {"command": "ls", "description": "list"}),
        ("Please show git status.", "Bash", {"command": "git status", "description": "status"}),
    ]


def _nothing_leaked(side: Side, traces: list[Any]) -> None:
    for trace in traces:
        assert SECRET not in repr(trace.events)
    for request in side.server.requests:
        assert SECRET not in request.body.decode("utf-8", "replace")


async def _deny_every_read(side: Side, policy: cu.Policy, message_of: Any) -> None:
    (side.cwd / "secret.txt").write_text(f"{SECRET}\n")
    calls = reads(side)
    async with Session(side, policy=policy, builtins=True) as session:
        for prompt, name, tool_input in calls:
            session.script(prompt, (name, tool_input))
        traces = [await session.turn(prompt) for prompt, _, _ in calls]
    for trace, (_, name, tool_input) in zip(traces, calls, strict=True):
        message = message_of(name, tool_input)
        assert trace.steps == [
            text(LEAD),
            use(name, tool_input),
            denied(name, message),
            result(name, message, is_error=True),
            text(seen(message, is_error=True)),
            end(),
        ]
        assert trace.calls == [(name, tool_input)]
    _nothing_leaked(side, traces)


async def test_deny_all_refuses_the_read_only_calls(side: Side) -> None:
    message = "Every tool use is denied by the policy deny_all()"
    await _deny_every_read(side, cu.deny_all(), lambda name, tool_input: message)


async def test_deny_list_refuses_the_read_only_calls(side: Side) -> None:
    rules = ["Read", "Glob", "Grep", "Bash(cat:*)", "Bash(ls:*)", "Bash(git status:*)"]
    rules += ["Bash(find:*)", "Bash(grep:*)"]

    def message(name: str, tool_input: dict[str, Any]) -> str:
        if name != "Bash":
            return f"Tool {name!r} is denied by the rule {name}"
        command = tool_input["command"]
        prefix = "git status" if command.startswith("git ") else command.split()[0]
        return f"Tool 'Bash' is denied by the rule Bash({prefix}:*)"

    await _deny_every_read(side, cu.deny_list(rules), message)


async def test_deny_list_of_read_alone(side: Side) -> None:
    (side.cwd / "secret.txt").write_text(f"{SECRET}\n")
    prompt, name, tool_input = reads(side)[0]
    message = "Tool 'Read' is denied by the rule Read"
    async with Session(side, policy=cu.deny_list(["Read"]), builtins=True) as session:
        session.script(prompt, (name, tool_input))
        trace = await session.turn(prompt)
    assert trace.steps == [
        text(LEAD),
        use("Read", tool_input),
        denied("Read", message),
        result("Read", message, is_error=True),
        text(seen(message, is_error=True)),
        end(),
    ]
    _nothing_leaked(side, [trace])


async def test_callback_deny_refuses_the_read_only_calls(side: Side) -> None:
    def never(name: str, tool_input: dict[str, Any]) -> bool:
        return False

    qualname = never.__qualname__
    await _deny_every_read(
        side, cu.callback(never), lambda name, _: f"Tool {name!r} is denied by {qualname}"
    )


async def test_default_policy_asks_before_the_cli_reads(side: Side) -> None:
    # the default: the user's tools run, anything else is asked; the CLI's Read is no exception
    (side.cwd / "secret.txt").write_text(f"{SECRET}\n")
    prompt, name, tool_input = reads(side)[0]
    message = UNANSWERED.format(name="Read")
    async with Session(side) as session:
        session.script(prompt, (name, tool_input))
        trace = await session.turn(prompt)
    assert trace.steps == [
        text(LEAD),
        use("Read", tool_input),
        asked("Read", tool_input),
        denied("Read", message),
        result("Read", message, is_error=True),
        text(seen(message, is_error=True)),
        end(),
    ]
    _nothing_leaked(side, [trace])


async def test_a_permission_request_for_a_read_can_be_allowed(side: Side) -> None:
    (side.cwd / "secret.txt").write_text(f"{SECRET}\n")
    prompt, name, tool_input = reads(side)[0]
    async with Session(side, builtins=True, policy=cu.allow_list(["add"])) as session:
        session.script(prompt, (name, tool_input))
        trace = await session.turn(prompt, answer=cu.Allow())
    assert trace.steps[:4] == [
        text(LEAD),
        use("Read", tool_input),
        asked("Read", tool_input),
        allowed("Read", by="user"),
    ]
    assert [s[0] for s in trace.steps[4:]] == ["ToolResult", "Text", "Result"]
    assert SECRET in str(trace.steps[4])  # asked once, decided once, then it ran


async def test_allow_read_only_runs_reads_and_asks_the_rest(side: Side) -> None:
    (side.cwd / "secret.txt").write_text(f"{SECRET}\n")
    read_prompt, _, read_input = reads(side)[0]
    cat_prompt, _, cat_input = next(r for r in reads(side) if "cat " in str(r[2]))
    rm_prompt = "Please remove the secret."
    rm_input = {"command": "rm secret.txt", "description": "remove"}
    async with Session(side, policy=cu.allow_read_only(), builtins=True) as session:
        session.script(read_prompt, ("Read", read_input))
        session.script(cat_prompt, ("Bash", cat_input))
        session.script(rm_prompt, ("Bash", rm_input))
        read = await session.turn(read_prompt)
        cat = await session.turn(cat_prompt)
        rm = await session.turn(rm_prompt)
    # each tool words its output its own way; both show the file's text
    for trace, name, tool_input in ((read, "Read", read_input), (cat, "Bash", cat_input)):
        assert trace.steps == [
            text(LEAD),
            use(name, tool_input),
            allowed(name),
            result(name, Like(rf".*{SECRET}.*")),
            text(Like(rf"TOOL_RESULT_SEEN is_error=false: .*{SECRET}.*")),
            end(),
        ]
    message = UNANSWERED.format(name="Bash")
    assert rm.steps == [
        text(LEAD),
        use("Bash", rm_input),
        asked("Bash", rm_input),
        denied("Bash", message),
        result("Bash", message, is_error=True),
        text(seen(message, is_error=True)),
        end(),
    ]
    assert (side.cwd / "secret.txt").exists()
