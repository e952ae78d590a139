"""Permission decisions, policies and Claude Code's rule syntax.

Every tool call on either backend is shown to one ``Policy`` as a ``ToolCall`` with a normalized
name (our own tools appear as ``add``, never ``mcp__claude_unified__add``). A policy answers
``Allow``, ``Deny``, ``Ask`` or ``None`` ("no opinion", so ``first_match`` can fall through);
``Policy.evaluate`` turns ``None`` into ``Ask`` for the caller at the top.

Rules use the syntax of Claude Code's ``--allowedTools``, so ``str(rule)`` can be handed to the
CLI (where our own tools must be spelled ``mcp__claude_unified__add``; policies accept both):

=========================  ===================================================================
``Read``                   every call of the tool
``Bash(npm test)``         exactly that command
``Bash(git log:*)``        a command that is ``git log`` or starts with ``git log`` + a space
``Read(src/**)``           a file tool whose path matches the glob (``Edit(/abs/**)`` absolute,
                           ``Write(*.txt)`` without a slash matches the file name anywhere)
``WebFetch(domain:x.io)``  a fetch of a URL on that host (``*.x.io`` for subdomains)
``mcp__srv__tool``         one MCP tool; ``mcp__srv`` (or ``mcp__srv__*``) every tool of a server
=========================  ===================================================================

Bash rules are checked against the command text, not a parsed shell command. An allow rule
never matches a command that chains, pipes, redirects or substitutes (``;``, ``&&``, ``|``,
``>``, ``$(``…); a deny rule matches if any part of such a command matches. Path rules see the
normalized path (``..`` collapsed) but not symlinks; confinement is ``builtin_tools``' job.
"""

from __future__ import annotations

import functools
import glob
import inspect
import os
import posixpath
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import msgspec

__all__ = [
    "BUILTIN_TOOL_NAMES",
    "OWN_MCP_SERVER",
    "READ_ONLY_RULES",
    "Allow",
    "Ask",
    "Decision",
    "Deny",
    "Policy",
    "Rule",
    "ToolCall",
    "allow_all",
    "allow_builtins",
    "allow_list",
    "allow_read_only",
    "callback",
    "default_policy",
    "deny_all",
    "deny_list",
    "first_match",
    "glob_match",
    "normalize_tool_name",
]

OWN_MCP_SERVER = "claude_unified"
_OWN_PREFIX = f"mcp__{OWN_MCP_SERVER}__"

_BUILTINS = (
    "Agent AskUserQuestion Bash BashOutput Edit ExitPlanMode Glob Grep KillShell LS MultiEdit "
    "NotebookEdit NotebookRead Read Skill Task TaskStop TodoWrite ToolSearch WebFetch WebSearch "
    "Write"
)
BUILTIN_TOOL_NAMES: frozenset[str] = frozenset(_BUILTINS.split())
"""Claude Code's built-in tools, as ``allow_builtins()`` allows them."""

_SEARCH_TOOLS = ("Glob", "Grep", "LS")  # their path defaults to the working directory
# The input key that holds the path, for each tool that path rules apply to.
_PATH_KEYS: Mapping[str, str] = {
    **dict.fromkeys(("Read", "Write", "Edit", "MultiEdit"), "file_path"),
    **dict.fromkeys(("NotebookEdit", "NotebookRead"), "notebook_path"),
    **dict.fromkeys(_SEARCH_TOOLS, "path"),
}
_SPECIFIER_TOOLS = frozenset({"Bash", "WebFetch", *_PATH_KEYS})
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]+(?:__\*)?$")
_BASH_UNSAFE = re.compile(r"[;&|\n`<>]|\$\(")
_BASH_SPLIT = re.compile(r"&&|\|\||[;&|\n`()<>]|\$\(")

# --------------------------------------------------------------------------- data


class Allow(msgspec.Struct, frozen=True):
    """Run the tool; ``updated_input`` (if given) replaces the model's input."""

    updated_input: dict[str, Any] | None = None


class Deny(msgspec.Struct, frozen=True):
    """Do not run the tool; the model gets ``message`` as an error result.

    ``interrupt`` also ends the turn.
    """

    message: str = "Denied by the permission policy"
    interrupt: bool = False


class Ask(msgspec.Struct, frozen=True):
    """Let the consumer decide (a ``PermissionRequest`` event)."""


Decision: TypeAlias = Allow | Deny | Ask


class ToolCall(msgspec.Struct, frozen=True):
    """A tool call as policies see it. ``name`` is normalized (see ``normalize_tool_name``)."""

    id: str
    name: str
    input: dict[str, Any]


def normalize_tool_name(name: str) -> str:
    """``mcp__claude_unified__add`` → ``add``; every other name is returned unchanged."""
    return name.removeprefix(_OWN_PREFIX)


# --------------------------------------------------------------------------- rules


class Rule(msgspec.Struct, frozen=True):
    """One permission rule: a tool name and an optional specifier in parentheses."""

    tool: str
    specifier: str | None = None

    def __post_init__(self) -> None:
        text = str(self)
        if not _TOOL_NAME.match(self.tool):
            raise ValueError(f"invalid permission rule {text!r}: bad tool name {self.tool!r}")
        if self.tool.endswith("__*") and not _is_server(self.tool[:-3]):
            raise ValueError(f"invalid permission rule {text!r}: '__*' only follows mcp__SERVER")
        if self.specifier is None:
            return
        if not self.specifier.strip():
            raise ValueError(f"invalid permission rule {text!r}: empty parentheses")
        if self.tool not in _SPECIFIER_TOOLS:
            raise ValueError(
                f"invalid permission rule {text!r}: only Bash, WebFetch and file tools "
                f"({', '.join(sorted(_PATH_KEYS))}) take a specifier"
            )
        if self.tool == "WebFetch" and not self.specifier.startswith("domain:"):
            raise ValueError(f"invalid permission rule {text!r}: use WebFetch(domain:HOST)")
        glob_text = self.specifier.removeprefix("domain:") if self.tool != "Bash" else None
        if glob_text is not None:
            try:
                _glob_regex(glob_text)
            except ValueError as exc:  # built now: a rule that cannot match exactly never runs
                raise ValueError(f"invalid permission rule {text!r}: {exc}") from None

    @classmethod
    def parse(cls, text: str) -> Rule:
        """Parse ``"Bash(git log:*)"``-style text. Raises ``ValueError`` naming the rule."""
        stripped = text.strip()
        if not stripped:
            raise ValueError(f"invalid permission rule {text!r}: empty")
        if "(" not in stripped and ")" not in stripped:
            return cls(stripped)
        head, _, rest = stripped.partition("(")
        if not rest.endswith(")") or not _balanced(rest[:-1]):
            raise ValueError(f"invalid permission rule {text!r}: unbalanced parentheses")
        return cls(head.strip(), rest[:-1])

    def __str__(self) -> str:
        return self.tool if self.specifier is None else f"{self.tool}({self.specifier})"

    def matches(self, call: ToolCall, *, cwd: str | None = None, any_part: bool = False) -> bool:
        """Whether the rule covers ``call``.

        ``cwd`` anchors relative path rules and relative paths (default: the process's working
        directory). ``any_part`` is the deny-rule reading of Bash rules: a compound command
        matches if any of its parts does.
        """
        if not self._matches_name(normalize_tool_name(call.name)):
            return False
        if self.specifier is None:
            return True
        if self.tool == "Bash":
            return _bash_matches(self.specifier, call.input.get("command"), any_part=any_part)
        if self.tool == "WebFetch":
            return _domain_matches(self.specifier.removeprefix("domain:"), call.input.get("url"))
        path = call.input.get(_PATH_KEYS[self.tool])
        if path is None and self.tool in _SEARCH_TOOLS:
            path = "."
        return isinstance(path, str) and _path_matches(self.specifier, path, cwd)

    def _matches_name(self, name: str) -> bool:
        tool = normalize_tool_name(self.tool.removesuffix("__*"))
        if not _is_server(tool):
            return name == tool
        # A server rule covers every tool of that server. Our own tools carry plain names, so
        # our server's rule covers every name that is neither built-in nor another server's.
        if tool == f"mcp__{OWN_MCP_SERVER}":
            return not name.startswith("mcp__") and name not in BUILTIN_TOOL_NAMES
        return name.startswith(f"{tool}__")


def _is_server(tool: str) -> bool:
    """``mcp__srv`` names a whole server; ``mcp__srv__tool`` one of its tools."""
    return tool.startswith("mcp__") and "__" not in tool[5:]


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _bash_matches(specifier: str, command: object, *, any_part: bool) -> bool:
    if not isinstance(command, str):
        return False
    if any_part:
        return any(_command_matches(specifier, part) for part in _BASH_SPLIT.split(command))
    return not _BASH_UNSAFE.search(command) and _command_matches(specifier, command)


def _command_matches(specifier: str, command: str) -> bool:
    """Exact or ``prefix:*`` match, comparing words (runs of whitespace count as one space)."""
    words = " ".join(command.split())
    if specifier.endswith(":*"):
        prefix = " ".join(specifier[:-2].split())
        return bool(words) and (words == prefix or words.startswith(f"{prefix} "))
    return words == " ".join(specifier.split())


def _domain_matches(domain: str, url: object) -> bool:
    if not isinstance(url, str):
        return False
    host = urlsplit(url).hostname
    return host is not None and glob_match(domain.lower(), host.lower())


def _path_matches(pattern: str, path: str, cwd: str | None) -> bool:
    base = cwd if cwd is not None else os.getcwd()
    target = posixpath.normpath(posixpath.join(base, path))  # an absolute path ignores base
    if pattern.startswith("~/"):
        pattern = os.path.expanduser(pattern)
    if "/" not in pattern:
        return glob_match(pattern, posixpath.basename(target))
    if pattern.startswith("//"):  # Claude Code's spelling of an absolute path
        pattern = pattern[1:]
    anchored = pattern if pattern.startswith("/") else posixpath.join(glob.escape(base), pattern)
    return glob_match(posixpath.normpath(anchored), target)


def glob_match(pattern: str, path: str) -> bool:
    """Glob matching on ``/``-separated paths: ``*``, ``?``, ``[...]``, ``**``, ``{a,b}``."""
    return _glob_regex(pattern).fullmatch(path) is not None


@functools.lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """The regular expression of a glob. Raises ``ValueError`` for what it cannot translate
    exactly (a backslash escape, an unclosed ``[`` or ``{``, a stray ``}``): a rule must never
    match more, or less, than it says."""
    return re.compile(_glob_part(pattern, pattern))


def _glob_part(pattern: str, whole: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        i += 1
        if char == "\\":
            raise ValueError(f"glob {whole!r}: backslash escapes are not supported")
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError(f"glob {whole!r}: '[' is never closed")
            body = pattern[i:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        elif char == "{":
            end = _closing_brace(pattern, i, whole)
            choices = _top_level_split(pattern[i:end])
            out.append("(?:" + "|".join(_glob_part(c, whole) for c in choices) + ")")
            i = end + 1
        elif char == "}":
            raise ValueError(f"glob {whole!r}: '}}' without '{{'")
        else:
            out.append(re.escape(char))
    return "".join(out)


def _closing_brace(pattern: str, start: int, whole: str) -> int:
    """The index of the ``}`` closing the ``{`` just before ``start`` (nesting counted)."""
    depth = 1
    for j in range(start, len(pattern)):
        depth += {"{": 1, "}": -1}.get(pattern[j], 0)
        if depth == 0:
            return j
    raise ValueError(f"glob {whole!r}: '{{' is never closed")


def _top_level_split(body: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in body:
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += {"{": 1, "}": -1}.get(char, 0)
        current.append(char)
    parts.append("".join(current))
    return parts


def _parse_rules(rules: Iterable[str | Rule], factory: str) -> tuple[Rule, ...]:
    if isinstance(rules, str):
        raise TypeError(f"{factory}() takes a list of rules, not one string: [{rules!r}]")
    return tuple(rule if isinstance(rule, Rule) else Rule.parse(rule) for rule in rules)


# --------------------------------------------------------------------------- policies


class Policy(ABC):
    """Decides tool calls. ``decide`` may return ``None``: no opinion."""

    @abstractmethod
    async def decide(self, call: ToolCall) -> Decision | None:
        """The decision for ``call``, or ``None`` to leave it to the next policy."""

    async def evaluate(self, call: ToolCall) -> Decision:
        """The decision for ``call``, with "no opinion" read as ``Ask``."""
        decision = await self.decide(call)
        return Ask() if decision is None else decision


class _Fixed(Policy):
    """The same decision for every call."""

    def __init__(self, decision: Decision, label: str):
        self.decision = decision
        self._label = label

    async def decide(self, call: ToolCall) -> Decision | None:
        return self.decision

    def __repr__(self) -> str:
        return self._label


class _AllowRules(Policy):
    def __init__(self, rules: tuple[Rule, ...], cwd: str | None, label: str):
        self.rules = rules
        self.cwd = cwd
        self._label = label

    async def decide(self, call: ToolCall) -> Decision | None:
        if any(rule.matches(call, cwd=self.cwd) for rule in self.rules):
            return Allow()
        return None

    def __repr__(self) -> str:
        return self._label


class _DenyRules(Policy):
    def __init__(self, rules: tuple[Rule, ...], message: str | None, cwd: str | None):
        self.rules = rules
        self.message = message
        self.cwd = cwd

    async def decide(self, call: ToolCall) -> Decision | None:
        for rule in self.rules:
            if rule.matches(call, cwd=self.cwd, any_part=True):
                return Deny(self.message or f"Tool {call.name!r} is denied by the rule {rule}")
        return None

    def __repr__(self) -> str:
        message = "" if self.message is None else f", message={self.message!r}"
        return f"deny_list({[str(r) for r in self.rules]!r}{message})"


CallbackResult: TypeAlias = Decision | bool | None
CallbackFn: TypeAlias = Callable[[str, dict[str, Any]], CallbackResult | Awaitable[CallbackResult]]


class _Callback(Policy):
    def __init__(self, fn: CallbackFn):
        self.fn = fn

    async def decide(self, call: ToolCall) -> Decision | None:
        result = self.fn(call.name, call.input)
        if inspect.isawaitable(result):
            result = await result
        if result is True:
            return Allow()
        if result is False:
            return Deny(f"Tool {call.name!r} is denied by {_name_of(self.fn)}")
        if result is None or isinstance(result, Allow | Deny | Ask):
            return result
        raise TypeError(
            f"permission callback {_name_of(self.fn)} returned {result!r}; "
            "expected Allow, Deny, Ask, True, False or None"
        )

    def __repr__(self) -> str:
        return f"callback({_name_of(self.fn)})"


class _FirstMatch(Policy):
    def __init__(self, policies: tuple[Policy, ...]):
        self.policies = policies

    async def decide(self, call: ToolCall) -> Decision | None:
        for policy in self.policies:
            decision = await policy.decide(call)
            if decision is not None:
                return decision
        return None

    def __repr__(self) -> str:
        return f"first_match({', '.join(map(repr, self.policies))})"


class _Default(Policy):
    def __init__(self, registered: frozenset[str]):
        self.registered = registered

    async def decide(self, call: ToolCall) -> Decision | None:
        return Allow() if normalize_tool_name(call.name) in self.registered else Ask()

    def __repr__(self) -> str:
        return f"default_policy({sorted(self.registered)!r})"


def _name_of(fn: object) -> str:
    return str(getattr(fn, "__qualname__", None) or repr(fn))


def allow_all() -> Policy:
    """Allow every tool call."""
    return _Fixed(Allow(), "allow_all()")


def deny_all(message: str | None = None) -> Policy:
    """Deny every tool call, with ``message`` or a default one."""
    if message is None:
        return _Fixed(Deny("Every tool use is denied by the policy deny_all()"), "deny_all()")
    return _Fixed(Deny(message), f"deny_all(message={message!r})")


def allow_builtins() -> Policy:
    """Allow Claude Code's built-in tools (``BUILTIN_TOOL_NAMES``); no opinion on the rest."""
    rules = tuple(Rule(name) for name in sorted(BUILTIN_TOOL_NAMES))
    return _AllowRules(rules, None, "allow_builtins()")


READ_ONLY_RULES: tuple[str, ...] = (
    *("Read", "Glob", "Grep", "LS", "NotebookRead", "ToolSearch"),
    *(
        f"Bash({command}:*)"
        for command in (
            "cat", "date", "df", "du", "echo", "file", "git diff", "git log", "git show",
            "git status", "grep", "head", "ls", "pwd", "rg", "stat", "tail", "tree", "wc",
            "which", "whoami",
        )
    ),
)  # fmt: skip
"""What ``allow_read_only()`` allows: the tools that only read, and Bash commands that only
read (as allow rules, so a command that chains, pipes or redirects is not covered)."""


def allow_read_only() -> Policy:
    """Allow the calls that only read (``READ_ONLY_RULES``); no opinion on the rest.

    This is the CLI's own habit of running read-only tools without asking, made a policy, so
    it means the same on both backends. Combine it: ``first_match(allow_read_only(), ...)``.
    """
    return _AllowRules(tuple(map(Rule.parse, READ_ONLY_RULES)), None, "allow_read_only()")


def allow_list(rules: Iterable[str | Rule], *, cwd: str | os.PathLike[str] | None = None) -> Policy:
    """Allow calls matching any rule; no opinion on the rest. ``policy.rules`` keeps them."""
    parsed = _parse_rules(rules, "allow_list")
    return _AllowRules(parsed, _fspath(cwd), f"allow_list({[str(r) for r in parsed]!r})")


def deny_list(
    rules: Iterable[str | Rule],
    message: str | None = None,
    *,
    cwd: str | os.PathLike[str] | None = None,
) -> Policy:
    """Deny calls matching any rule (the message names the rule); no opinion on the rest."""
    return _DenyRules(_parse_rules(rules, "deny_list"), message, _fspath(cwd))


def callback(fn: CallbackFn) -> Policy:
    """Ask ``fn(name, input)`` (sync or async) → ``Allow``/``Deny``/``Ask``, a bool, or ``None``.

    Sync functions are called directly on the event loop, so they must be quick.
    """
    return _Callback(fn)


def first_match(*policies: Policy) -> Policy:
    """The first decision any of ``policies`` makes, in order; ``None`` if none has one."""
    for policy in policies:
        if not isinstance(policy, Policy):
            raise TypeError(f"first_match() takes policies, got {policy!r}")
    return _FirstMatch(policies)


def default_policy(registered: Iterable[str]) -> Policy:
    """Allow the tools the user registered; ask about everything else."""
    return _Default(frozenset(normalize_tool_name(name) for name in registered))


def _fspath(path: str | os.PathLike[str] | None) -> str | None:
    return None if path is None else os.fspath(path)
