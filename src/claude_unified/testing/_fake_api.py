"""The fake Messages API's logic, independent of HTTP.

It reads requests leniently (any model, ``role:"system"`` items and unknown keys are fine), picks
the scripted step for a request (rules, then the queue, then a default scheme keyed on the last
user message), estimates tokens and emulates prompt caching.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeAlias

import msgspec

from claude_unified.testing._script import (
    ErrorReply,
    Reply,
    Step,
    error,
    reply,
    tool_call,
)

__all__ = [
    "DEFAULT_MODEL",
    "ApiRequest",
    "Match",
    "PromptCache",
    "RecordedRequest",
    "Script",
    "TokenPlan",
    "count_tokens",
    "default_step",
    "last_user_text",
    "parse_request",
]

JsonObject: TypeAlias = dict[str, Any]

DEFAULT_MODEL = "claude-fake"
"""The model a reply names when the request names none."""

# --------------------------------------------------------------------------- request model


class ApiMessage(msgspec.Struct, frozen=True):
    role: str = ""
    content: str | list[JsonObject] = ""


class ApiRequest(msgspec.Struct, frozen=True):
    """The parts of a create (or count_tokens) body the fake looks at; other keys are ignored."""

    model: str = ""
    max_tokens: int | None = None
    stream: bool | None = None
    system: str | list[JsonObject] | None = None
    messages: list[ApiMessage] = []
    tools: list[JsonObject] | None = None
    cache_control: JsonObject | None = None


class _CacheControl(msgspec.Struct, frozen=True):
    type: str = "ephemeral"
    ttl: str = "5m"


class _Marked(msgspec.Struct, frozen=True):
    """The cache marker of any block or tool definition."""

    cache_control: _CacheControl | None = None


class _BlockView(msgspec.Struct, frozen=True):
    """A lenient typed view of a user content block (text, tool_result, image …)."""

    type: str = ""
    text: str = ""
    content: str | list[JsonObject] = ""
    is_error: bool = False


class RecordedRequest(msgspec.Struct, frozen=True):
    """One request the fake received. ``headers`` keys are lowercase; ``json`` is ``None`` when
    the body is not a JSON object."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: JsonObject | None
    last_user_text: str = ""


request_decoder = msgspec.json.Decoder(ApiRequest)
json_object_decoder = msgspec.json.Decoder(JsonObject)
_encoder = msgspec.json.Encoder()
_canonical_encoder = msgspec.json.Encoder(order="sorted")


def _view(block: JsonObject) -> _BlockView:
    return msgspec.convert(block, _BlockView)


def _text_of(content: str | list[JsonObject]) -> str:
    """String content as-is; block content as its text blocks joined by newlines."""
    if isinstance(content, str):
        return content
    return "\n".join(view.text for view in map(_view, content) if view.type == "text")


def _last_user(body: ApiRequest) -> ApiMessage | None:
    return next((m for m in reversed(body.messages) if m.role == "user"), None)


def last_user_text(body: ApiRequest) -> str:
    """The text of the last ``user`` message (``""`` when there is none)."""
    last = _last_user(body)
    return _text_of(last.content) if last else ""


def parse_request(raw: bytes) -> tuple[dict[str, Any] | None, ApiRequest | None, str]:
    """The body as a JSON object, as a lenient request, and its last user text; ``None`` (and
    ``""``) where it is not one."""
    try:
        data = json_object_decoder.decode(raw)
    except msgspec.DecodeError:  # also raised for valid JSON that is not an object
        return None, None, ""
    try:
        body = request_decoder.decode(raw)
        text = last_user_text(body)  # fails unless the last user message's blocks are objects
    except msgspec.ValidationError:
        return data, None, ""
    return data, body, text


def count_tokens(body: ApiRequest) -> int:
    """The count_tokens estimate: encoded tools, system and messages ÷ 4, at least 1."""
    return max(1, len(_encoder.encode((body.tools, body.system, body.messages))) // 4)


# --------------------------------------------------------------------------- default scheme


def _tool_results(content: str | list[JsonObject]) -> list[_BlockView]:
    if isinstance(content, str):
        return []
    return [view for view in map(_view, content) if view.type == "tool_result"]


def _command(line: str) -> Reply | None:
    """The tool call a ``BASH:`` / ``WRITE:`` / ``TOOL:`` line asks for, if any."""
    verb, _, rest = line.partition(": ")
    if verb == "BASH" and rest:
        return tool_call(
            "Bash", {"command": rest, "description": "run command"}, text="I'll use Bash."
        )
    if verb == "WRITE" and rest:
        path, _, text = rest.partition(" ")
        return tool_call("Write", {"file_path": path, "content": text}, text="I'll use Write.")
    if verb == "TOOL" and rest:
        name, _, raw = rest.partition(" ")
        try:
            tool_input = json_object_decoder.decode(raw or "{}")
        except msgspec.DecodeError:
            return None
        return tool_call(name, tool_input, text=f"I'll use {name}.")
    return None


def default_step(body: ApiRequest) -> Reply:
    """The reply when nothing is scripted, keyed on the last user message.

    A ``tool_result`` is acknowledged with its text; a ``BASH:``, ``WRITE:`` or ``TOOL:`` line
    (the last one wins) becomes a tool call; anything else is echoed as ``ECHO: <last line>``.
    """
    last = _last_user(body)
    content = last.content if last else ""
    results = _tool_results(content)
    if results:
        return reply(
            "\n".join(
                f"TOOL_RESULT_SEEN is_error={str(r.is_error).lower()}: {_text_of(r.content)}"
                for r in results
            )
        )
    lines = _text_of(content).rstrip("\n").split("\n")
    for line in reversed(lines):
        step = _command(line.strip())
        if step is not None:
            return step
    return reply(f"ECHO: {lines[-1]}")


# --------------------------------------------------------------------------- scripting

Match: TypeAlias = str | Callable[[RecordedRequest], bool]


@dataclass
class _Rule:
    match: Match
    step: Step
    remaining: int | None

    def matches(self, request: RecordedRequest) -> bool:
        if isinstance(self.match, str):
            return self.match in request.last_user_text
        return self.match(request)


class Script:
    """Thread-safe choice of the step answering a request: rules, then the queue, then the
    default scheme. A ``max_tokens <= 1`` probe that no rule matches gets a tiny reply and leaves
    the queue alone (clients send such probes to validate a model).

    ``strict`` replaces the default scheme: a request nothing scripted answers gets a
    non-retryable 500 naming the problem, and is kept in :attr:`unscripted`."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._queue: deque[Step] = deque()
        self._unscripted: list[RecordedRequest] = []

    @property
    def unscripted(self) -> list[RecordedRequest]:
        """The requests a strict script had nothing for, oldest first (a snapshot)."""
        with self._lock:
            return list(self._unscripted)

    def on(self, match: Match, step: Step, *, times: int | None = None) -> None:
        """Answer requests matching ``match`` with ``step``, at most ``times`` times."""
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        with self._lock:
            self._rules.append(_Rule(match, step, times))

    def queue(self, *steps: Step) -> None:
        """Answer the next requests no rule matches with ``steps``, in order."""
        with self._lock:
            self._queue.extend(steps)

    def reset(self) -> None:
        with self._lock:
            self._rules.clear()
            self._queue.clear()
            self._unscripted.clear()

    def choose(self, request: RecordedRequest, body: ApiRequest) -> Step:
        with self._lock:
            for rule in self._rules:
                if rule.matches(request):
                    self._use(rule)
                    return rule.step
            if body.max_tokens is not None and body.max_tokens <= 1:
                return reply("OK", stop_reason="max_tokens")
            if self._queue:
                return self._queue.popleft()
            if self.strict:
                self._unscripted.append(request)
                return _unscripted_error(request)
        return default_step(body)

    def _use(self, rule: _Rule) -> None:
        if rule.remaining is None:
            return
        rule.remaining -= 1
        if rule.remaining == 0:
            self._rules.remove(rule)


def _unscripted_error(request: RecordedRequest) -> ErrorReply:
    said = request.last_user_text.strip().split("\n")[-1][:80]
    return error(
        500,
        message=(
            "FakeAnthropicServer(strict=True): nothing is scripted for this request (no rule "
            f"matches and the queue is empty); the last user message was {said!r}"
        ),
        headers={"x-should-retry": "false"},
    )


# --------------------------------------------------------------------------- tokens and caching


class TokenPlan(NamedTuple):
    """How a request's prompt tokens split up; the prompt is the sum of the first three."""

    input_tokens: int
    cache_read: int = 0
    cache_write: int = 0
    cache_write_1h: int = 0


class _Item(NamedTuple):
    """One cacheable unit (tool, system block or message block) in prompt order."""

    canonical: bytes
    marker: _CacheControl | None


def _blocks(content: str | list[JsonObject]) -> list[JsonObject]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _item(key: tuple[Any, ...], block: JsonObject) -> _Item:
    without_marker = {name: value for name, value in block.items() if name != "cache_control"}
    marker = msgspec.convert(block, _Marked).cache_control
    return _Item(_canonical_encoder.encode((*key, without_marker)), marker)


def _items(body: ApiRequest) -> list[_Item]:
    """Tools → system → messages, each encoded without its marker (moving a marker must not
    change the prefix) and keyed by its place, so the same blocks split differently differ."""
    items = [_item(("tool",), tool) for tool in body.tools or ()]
    items += [_item(("system",), block) for block in _blocks(body.system or [])]
    for index, msg in enumerate(body.messages):
        items += [_item((msg.role, index), block) for block in _blocks(msg.content)]
    if body.cache_control is not None and body.messages and items:
        automatic = msgspec.convert(body.cache_control, _CacheControl)
        items[-1] = items[-1]._replace(marker=items[-1].marker or automatic)
    return items


class PromptCache:
    """Prompt-cache emulation keyed on hashes of canonical prefixes at breakpoints.

    A request with markers reads the longest prefix stored by an earlier request (checked at
    every block up to its last breakpoint), writes the rest up to that breakpoint, and stores the
    prefix at each of its breakpoints. Entries are evicted least recently used.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._lock = threading.Lock()
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._max_entries = max_entries

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    def plan(self, body: ApiRequest, body_size: int) -> TokenPlan:
        """Split the prompt of a request whose encoded size is ``body_size`` bytes."""
        total = max(1, body_size // 4)
        items = _items(body)
        breakpoints = [i for i, item in enumerate(items) if item.marker is not None]
        if not breakpoints:
            return TokenPlan(total)
        digests, tokens = _prefixes(body.model, items[: breakpoints[-1] + 1])
        with self._lock:
            hit = next((i for i in reversed(range(len(digests))) if digests[i] in self._seen), -1)
            self._store([digests[i] for i in breakpoints] + ([digests[hit]] if hit >= 0 else []))
        read = tokens[hit] if hit >= 0 else 0
        write, write_1h, covered = 0, 0, read
        for i in breakpoints:
            segment = max(0, tokens[i] - covered)
            covered = max(covered, tokens[i])
            write += segment
            marker = items[i].marker
            if marker is not None and marker.ttl == "1h":
                write_1h += segment
        cached = tokens[breakpoints[-1]]
        return TokenPlan(max(total, cached) - cached, read, write, write_1h)

    def _store(self, digests: list[bytes]) -> None:
        for digest in digests:
            self._seen[digest] = None
            self._seen.move_to_end(digest)
        while len(self._seen) > self._max_entries:
            self._seen.popitem(last=False)


def _prefixes(model: str, items: list[_Item]) -> tuple[list[bytes], list[int]]:
    """Rolling digests and token counts of every prefix ending at each item."""
    digest = hashlib.blake2b(model.encode(), digest_size=16).digest()
    size = 0
    digests: list[bytes] = []
    tokens: list[int] = []
    for item in items:
        digest = hashlib.blake2b(digest + item.canonical, digest_size=16).digest()
        size += len(item.canonical)
        digests.append(digest)
        tokens.append(size // 4)
    return digests, tokens
