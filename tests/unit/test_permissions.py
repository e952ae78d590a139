"""Decisions, policies and Claude Code's rule syntax."""

from __future__ import annotations

from typing import Any

import pytest

from claude_unified._permissions import (
    BUILTIN_TOOL_NAMES,
    OWN_MCP_SERVER,
    Allow,
    Ask,
    Decision,
    Deny,
    Policy,
    Rule,
    ToolCall,
    allow_all,
    allow_builtins,
    allow_list,
    allow_read_only,
    callback,
    default_policy,
    deny_all,
    deny_list,
    first_match,
    glob_match,
    normalize_tool_name,
)

CWD = "/work/project"


def call(name: str, **tool_input: Any) -> ToolCall:
    return ToolCall(id="toolu_1", name=name, input=tool_input)


def bash(command: str) -> ToolCall:
    return call("Bash", command=command)


def matches(rule: str, tool_call: ToolCall, *, any_part: bool = False) -> bool:
    return Rule.parse(rule).matches(tool_call, cwd=CWD, any_part=any_part)


# --------------------------------------------------------------------------- names and data


def test_normalize_tool_name() -> None:
    assert OWN_MCP_SERVER == "claude_unified"
    assert normalize_tool_name("mcp__claude_unified__add") == "add"
    assert normalize_tool_name("add") == "add"
    assert normalize_tool_name("mcp__calc__add") == "mcp__calc__add"
    assert normalize_tool_name("Read") == "Read"


def test_decisions_are_frozen_values() -> None:
    assert Allow() == Allow(updated_input=None)
    assert Deny().message
    assert Deny("no").interrupt is False
    assert Ask() == Ask()
    with pytest.raises(AttributeError):
        Deny("no").message = "yes"  # type: ignore[misc]


# --------------------------------------------------------------------------- rule parsing


@pytest.mark.parametrize(
    ("text", "tool", "specifier"),
    [
        ("Read", "Read", None),
        ("Bash(git log:*)", "Bash", "git log:*"),
        ("Bash(npm test)", "Bash", "npm test"),
        ("Bash(echo (hi))", "Bash", "echo (hi)"),
        ("Read(src/**)", "Read", "src/**"),
        ("Edit(/abs/**)", "Edit", "/abs/**"),
        ("WebFetch(domain:example.com)", "WebFetch", "domain:example.com"),
        ("mcp__srv__tool", "mcp__srv__tool", None),
        ("mcp__srv", "mcp__srv", None),
        ("mcp__srv__*", "mcp__srv__*", None),
        ("  Write(*.txt)  ", "Write", "*.txt"),
    ],
)
def test_rule_parse_and_str_round_trip(text: str, tool: str, specifier: str | None) -> None:
    rule = Rule.parse(text)
    assert rule == Rule(tool, specifier)
    assert str(rule) == text.strip()
    assert Rule.parse(str(rule)) == rule


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("Bash(git log", "unbalanced"),
        ("Bash(git log))", "unbalanced"),
        ("Bash)(", "unbalanced"),
        ("Read)", "unbalanced"),
        ("Bash()", "empty parentheses"),
        ("(ls)", "bad tool name"),
        ("Two Words", "bad tool name"),
        ("Task(Explore)", "take a specifier"),
        ("WebFetch(example.com)", "domain:HOST"),
        ("Read__*", "only follows mcp__SERVER"),
    ],
)
def test_invalid_rules_raise_value_error_naming_the_rule(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        Rule.parse(text)
    assert repr(text) in str(info.value)


def test_rules_are_validated_when_built_directly() -> None:
    with pytest.raises(ValueError, match="empty parentheses"):
        Rule("Bash", "")


# --------------------------------------------------------------------------- rule matching


def test_bare_rule_matches_every_call_of_the_tool() -> None:
    assert matches("Read", call("Read", file_path="/anything"))
    assert matches("Bash", bash("rm -rf /"))
    assert not matches("Read", call("Write", file_path="a"))


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("git log", True),
        ("git log --oneline -5", True),
        ("  git   log  -p ", True),
        ("git logx", False),
        ("git status", False),
        ("git", False),
        ("git log && rm -rf /", False),
        ("git log; rm -rf /", False),
        ("git log | sh", False),
        ("git log > out.txt", False),
        ("git log $(rm -rf /)", False),
        ("git log `rm -rf /`", False),
        ("git log\nrm -rf /", False),
    ],
)
def test_bash_prefix_rule(command: str, expected: bool) -> None:
    assert matches("Bash(git log:*)", bash(command)) is expected


def test_bash_exact_rule() -> None:
    assert matches("Bash(npm test)", bash("npm test"))
    assert not matches("Bash(npm test)", bash("npm test --watch"))
    assert not matches("Bash(npm test)", bash("npm tests"))
    assert not matches("Bash(npm test)", call("Bash"))


@pytest.mark.parametrize(
    "command",
    ["rm -rf /", "echo hi && rm -rf /", "ls; rm x", "cat a | rm b", "echo $(rm x)", "(rm x)"],
)
def test_deny_reading_of_bash_rules_matches_any_part(command: str) -> None:
    assert matches("Bash(rm:*)", bash(command), any_part=True)


def test_deny_reading_still_respects_word_boundaries() -> None:
    assert not matches("Bash(rm:*)", bash("echo rmdir && rmdir x"), any_part=True)


@pytest.mark.parametrize(
    ("rule", "path", "expected"),
    [
        ("Read(src/**)", "/work/project/src/a.py", True),
        ("Read(src/**)", "/work/project/src/deep/er/a.py", True),
        ("Read(src/**)", "src/a.py", True),
        ("Read(src/**)", "/work/project/lib/a.py", False),
        ("Read(src/**)", "/work/project/src/../secret.txt", False),
        ("Read(src/**)", "/elsewhere/src/a.py", False),
        ("Read(./src/*.py)", "src/a.py", True),
        ("Read(./src/*.py)", "src/sub/a.py", False),
        ("Edit(/abs/**)", "/abs/x/y.txt", True),
        ("Edit(/abs/**)", "/work/project/abs/x", False),
        ("Edit(//abs/*)", "/abs/x", True),
        ("Write(*.txt)", "/work/project/notes/a.txt", True),
        ("Write(*.txt)", "/tmp/b.txt", True),
        ("Write(*.txt)", "a.md", False),
        ("Write(**/*.{md,txt})", "docs/readme.md", True),
        ("Write(**/*.{md,txt})", "docs/readme.rst", False),
        ("Write(data/[!.]*)", "data/x", True),
        ("Write(data/[!.]*)", "data/.x", False),
    ],
)
def test_path_rules(rule: str, path: str, expected: bool) -> None:
    tool = Rule.parse(rule).tool
    assert matches(rule, call(tool, file_path=path)) is expected


def test_path_rules_use_each_tools_path_key() -> None:
    assert matches("NotebookEdit(*.ipynb)", call("NotebookEdit", notebook_path="a.ipynb"))
    assert matches("Grep(src/**)", call("Grep", pattern="x", path="src/pkg"))
    assert matches("Glob(/work/project)", call("Glob", pattern="*.py"))  # no path: the cwd
    assert not matches("Read(src/**)", call("Read"))
    assert not matches("Read(src/**)", call("Read", file_path=3))


def test_home_relative_path_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/user")
    assert matches("Read(~/notes/**)", call("Read", file_path="/home/user/notes/a"))


def test_relative_path_rules_default_to_the_process_cwd(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rule = Rule.parse("Read(src/**)")
    assert rule.matches(call("Read", file_path=f"{tmp_path}/src/a"))
    assert not rule.matches(call("Read", file_path="/other/src/a"))


@pytest.mark.parametrize(
    ("rule", "url", "expected"),
    [
        ("WebFetch(domain:example.com)", "https://example.com/a", True),
        ("WebFetch(domain:example.com)", "https://EXAMPLE.com:8443/a", True),
        ("WebFetch(domain:example.com)", "https://api.example.com/", False),
        ("WebFetch(domain:example.com)", "https://example.com.evil.io/", False),
        ("WebFetch(domain:*.example.com)", "https://api.example.com/", True),
        ("WebFetch(domain:example.com)", "not a url", False),
    ],
)
def test_webfetch_domain_rules(rule: str, url: str, expected: bool) -> None:
    assert matches(rule, call("WebFetch", url=url, prompt="summarize")) is expected


def test_mcp_tool_and_server_rules() -> None:
    assert matches("mcp__srv__tool", call("mcp__srv__tool"))
    assert not matches("mcp__srv__tool", call("mcp__srv__other"))
    assert matches("mcp__srv", call("mcp__srv__other"))
    assert matches("mcp__srv__*", call("mcp__srv__other"))
    assert not matches("mcp__srv", call("mcp__srv2__tool"))
    assert not matches("mcp__srv", call("Read"))


def test_own_tools_match_plain_and_qualified_rules() -> None:
    for rule in ("add", "mcp__claude_unified__add"):
        assert matches(rule, call("add"))
        assert matches(rule, call("mcp__claude_unified__add"))
        assert not matches(rule, call("sub"))
    assert matches("mcp__claude_unified", call("add"))
    assert not matches("mcp__claude_unified", call("Read"))
    assert not matches("mcp__claude_unified", call("mcp__srv__tool"))


def test_glob_match() -> None:
    assert glob_match("**/*.py", "a.py")
    assert glob_match("**/*.py", "x/y/a.py")
    assert not glob_match("*.py", "x/a.py")
    assert glob_match("a?c", "abc")
    assert not glob_match("a?c", "a/c")
    assert glob_match("[ab]x", "bx")
    assert glob_match("a.b", "a.b")
    assert not glob_match("a.b", "axb")


# --------------------------------------------------------------------------- policies


@pytest.mark.anyio
async def test_allow_all_and_deny_all() -> None:
    assert await allow_all().decide(call("Bash", command="x")) == Allow()
    assert await deny_all().decide(call("Read")) == Deny(
        "Every tool use is denied by the policy deny_all()"
    )
    assert await deny_all("nope").decide(call("Read")) == Deny("nope")


@pytest.mark.anyio
async def test_allow_builtins() -> None:
    policy = allow_builtins()
    assert {"Read", "Write", "Edit", "Glob", "Grep", "Bash", "WebFetch", "Task"} <= (
        BUILTIN_TOOL_NAMES
    )
    for name in ("Read", "Bash", "WebSearch", "TodoWrite"):
        assert await policy.decide(call(name)) == Allow()
    assert await policy.decide(call("add")) is None
    assert await policy.decide(call("mcp__srv__tool")) is None


@pytest.mark.anyio
async def test_allow_list_allows_matches_and_has_no_opinion_otherwise() -> None:
    policy = allow_list(["Read", "Bash(git log:*)"])
    assert await policy.decide(call("Read", file_path="x")) == Allow()
    assert await policy.decide(bash("git log -1")) == Allow()
    assert await policy.decide(bash("git push")) is None
    assert await policy.evaluate(bash("git push")) == Ask()


@pytest.mark.anyio
async def test_allow_list_exposes_rules_for_the_cli() -> None:
    policy = allow_list(["Read", Rule("Bash", "git log:*")])
    assert [str(r) for r in policy.rules] == ["Read", "Bash(git log:*)"]  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_deny_list_names_the_rule() -> None:
    policy = deny_list(["Bash(rm:*)", "Write(/etc/**)"])
    decision = await policy.decide(bash("ls && rm -rf x"))
    assert isinstance(decision, Deny)
    assert "Bash(rm:*)" in decision.message
    assert await policy.decide(call("Write", file_path="/etc/passwd")) == Deny(
        "Tool 'Write' is denied by the rule Write(/etc/**)"
    )
    assert await policy.decide(bash("ls")) is None
    assert await deny_list(["Bash"], "no shell").decide(bash("ls")) == Deny("no shell")


@pytest.mark.anyio
async def test_relative_rules_use_the_policy_cwd(tmp_path: Any) -> None:
    policy = allow_list(["Read(src/**)"], cwd=tmp_path)
    assert await policy.decide(call("Read", file_path=str(tmp_path / "src" / "a"))) == Allow()
    assert await policy.decide(call("Read", file_path="/elsewhere/src/a")) is None


def test_rule_lists_reject_a_single_string() -> None:
    with pytest.raises(TypeError, match="list of rules"):
        allow_list("Read")
    with pytest.raises(ValueError, match="unbalanced"):
        deny_list(["Bash(rm"])


@pytest.mark.anyio
async def test_sync_callback_results() -> None:
    answers: dict[str, Any] = {
        "yes": True,
        "no": False,
        "skip": None,
        "edit": Allow(updated_input={"x": 1}),
        "ask": Ask(),
    }
    seen: list[tuple[str, dict[str, Any]]] = []

    def decide(name: str, tool_input: dict[str, Any]) -> Decision | bool | None:
        seen.append((name, tool_input))
        return answers[name]  # type: ignore[no-any-return]

    policy = callback(decide)
    assert await policy.decide(call("yes", a=1)) == Allow()
    assert seen == [("yes", {"a": 1})]
    denied = await policy.decide(call("no"))
    assert isinstance(denied, Deny)
    assert "decide" in denied.message
    assert await policy.decide(call("skip")) is None
    assert await policy.decide(call("edit")) == Allow(updated_input={"x": 1})
    assert await policy.decide(call("ask")) == Ask()


@pytest.mark.anyio
async def test_async_callback_and_normalized_name() -> None:
    async def only_add(name: str, tool_input: dict[str, Any]) -> Decision | None:
        return Allow() if name == "add" else Deny("only add")

    policy = callback(only_add)
    assert await policy.decide(call("add")) == Allow()
    assert await policy.decide(call("sub")) == Deny("only add")


@pytest.mark.anyio
async def test_callback_with_a_wrong_return_type_fails_clearly() -> None:
    policy = callback(lambda name, tool_input: "yes")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="returned 'yes'; expected Allow, Deny, Ask"):
        await policy.decide(call("x"))


@pytest.mark.anyio
async def test_first_match_falls_through_no_opinion() -> None:
    policy = first_match(deny_list(["Bash(rm:*)"]), allow_list(["Bash"]), deny_all("last"))
    assert isinstance(await policy.decide(bash("rm x")), Deny)
    assert await policy.decide(bash("ls")) == Allow()
    assert await policy.decide(call("Read")) == Deny("last")
    assert await first_match(allow_list(["Read"])).decide(call("Write")) is None
    assert await first_match(allow_list(["Read"])).evaluate(call("Write")) == Ask()


def test_first_match_rejects_non_policies() -> None:
    with pytest.raises(TypeError, match="takes policies"):
        first_match([allow_all()])  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_default_policy_allows_registered_tools_and_asks_otherwise() -> None:
    policy = default_policy(["add", "mcp__claude_unified__mul"])
    assert await policy.decide(call("add")) == Allow()
    assert await policy.decide(call("mul")) == Allow()
    assert await policy.decide(call("Bash", command="ls")) == Ask()


def my_fn(name: str, tool_input: dict[str, Any]) -> bool:
    return True


@pytest.mark.parametrize(
    ("policy", "text"),
    [
        (allow_all(), "allow_all()"),
        (deny_all(), "deny_all()"),
        (deny_all("x"), "deny_all(message='x')"),
        (allow_builtins(), "allow_builtins()"),
        (allow_list(["Read", "Bash(git log:*)"]), "allow_list(['Read', 'Bash(git log:*)'])"),
        (deny_list(["Bash(rm:*)"]), "deny_list(['Bash(rm:*)'])"),
        (deny_list(["Bash"], "no"), "deny_list(['Bash'], message='no')"),
        (callback(my_fn), "callback(my_fn)"),
        (default_policy(["b", "a"]), "default_policy(['a', 'b'])"),
        (
            first_match(allow_list(["Read"]), callback(my_fn)),
            "first_match(allow_list(['Read']), callback(my_fn))",
        ),
    ],
)
def test_reprs(policy: Policy, text: str) -> None:
    assert repr(policy) == text


@pytest.mark.anyio
async def test_custom_policy_subclass() -> None:
    class ReadOnly(Policy):
        async def decide(self, call: ToolCall) -> Decision | None:
            return Allow() if call.name == "Read" else None

    policy = first_match(ReadOnly(), deny_all("no"))
    assert await policy.decide(call("Read")) == Allow()
    assert await policy.decide(call("Write")) == Deny("no")


@pytest.mark.anyio
async def test_allow_read_only_allows_reads_and_read_only_commands_only() -> None:
    policy = allow_read_only()
    assert repr(policy) == "allow_read_only()"
    for name in ("Read", "Glob", "Grep", "LS", "NotebookRead", "ToolSearch"):
        assert await policy.decide(call(name)) == Allow()
    for command in ("cat a.txt", "ls -la", "git status", "git log --oneline", "grep -r x ."):
        assert await policy.decide(bash(command)) == Allow()
    # writes, and read-only commands that chain, pipe, redirect or substitute: no opinion
    for command in ("rm a", "cat a; rm -rf b", "ls > out.txt", "git status && curl x", "cat $(id)"):
        assert await policy.decide(bash(command)) is None
    for name in ("Write", "Edit", "WebFetch", "add"):
        assert await policy.decide(call(name)) is None


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("src/{gen,{build,dist}}/**", "src/gen/a.py", True),
        ("src/{gen,{build,dist}}/**", "src/build/a.py", True),
        ("src/{gen,{build,dist}}/**", "src/dist/x/y", True),
        ("src/{gen,{build,dist}}/**", "src/{build/a.py", False),
        ("src/{gen,{build,dist}}/**", "src/other/a.py", False),
        ("{a,b{c,d}e}.txt", "bde.txt", True),
        ("{a,b{c,d}e}.txt", "bce.txt", True),
        ("{a,b{c,d}e}.txt", "b.txt", False),
    ],
)
def test_nested_braces_are_translated_exactly(pattern: str, path: str, expected: bool) -> None:
    assert glob_match(pattern, path) is expected


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        (r"Write(src/\{gen\}/**)", "backslash escapes"),
        ("Write(src/{gen,build/**)", "never closed"),
        ("Read(src/gen}/**)", "without"),
        ("Edit(src/[ab/**)", "never closed"),
        ("WebFetch(domain:{a,b.io)", "never closed"),
    ],
)
def test_rules_the_glob_translator_cannot_read_fail_when_built(rule: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Rule.parse(rule)
    with pytest.raises(ValueError, match=why):
        deny_list([rule])


def test_each_claude_code_rule_form_builds() -> None:
    forms = [
        "Read", "Bash(npm test)", "Bash(git log:*)", "Read(src/**)", "Edit(/abs/**)",
        "Edit(//abs/**)", "Write(*.txt)", "Read(~/notes/**)", "WebFetch(domain:python.org)",
        "WebFetch(domain:*.python.org)", "mcp__srv__tool", "mcp__srv", "mcp__srv__*",
        "mcp__claude_unified__add", "Write(src/{gen,{build,dist}}/**)", "Grep(src/[!.]*)",
    ]  # fmt: skip
    assert [str(Rule.parse(f)) for f in forms] == forms
