"""Tools the library owns: ``@tool``, ``Tool``, schemas, argument validation, output normalization.

A ``Tool`` is the same object on both backends: the API path sends ``definition()`` in the
request and calls ``run()`` for each ``tool_use``; the CLI path lists it from the in-process MCP
server and calls ``run()`` for each ``tools/call``.

Schemas come from msgspec: the function's signature becomes a msgspec Struct type, its JSON schema
(with every ``$ref`` inlined) is the tool's ``input_schema``, and ``msgspec.convert`` into that
same type validates the model's arguments before the function runs. One type drives both, so the
schema the model sees and the checks its arguments pass can never drift apart.
"""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Generic, TypeAlias, cast, overload

import anyio.to_thread
import docstring_parser
import msgspec
from typing_extensions import ParamSpec, TypeVar

from ._events import ContentBlock, DocumentBlock, ImageBlock, TextBlock
from ._exceptions import ClaudeError

__all__ = [
    "Tool",
    "ToolArgumentError",
    "ToolDefinition",
    "ToolError",
    "ToolFailed",
    "ToolOutput",
    "normalize_output",
    "object_schema",
    "tool",
]

P = ParamSpec("P", default=...)
R = TypeVar("R", default=Any)
S = TypeVar("S", bound=msgspec.Struct)

ToolOutput: TypeAlias = str | list[ContentBlock]
Handler: TypeAlias = Callable[[dict[str, Any]], Awaitable[object]]

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_RESULT_BLOCKS = (TextBlock, ImageBlock, DocumentBlock)
_VALIDATION = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED_FIELD = re.compile(
    r"^Object (?P<kind>missing required|contains unknown) field `(?P<name>.*)`$"
)

_output_encoder = msgspec.json.Encoder(enc_hook=str)


class ToolError(ClaudeError):
    """A tool failed in an expected way. The message is written for the model to read."""


class ToolArgumentError(ToolError, ValueError):
    """The arguments of a tool call do not match the tool's parameters."""

    def __init__(self, message: str, *, tool: str, field: str | None = None):
        super().__init__(message)
        self.tool = tool
        self.field = field


class ToolFailed(ToolError):
    """Raised by a handler whose tool reported a failure of its own (an MCP server's
    ``isError`` result): ``content`` becomes the ``is_error`` tool result, unchanged."""

    def __init__(self, content: str | list[ContentBlock]):
        super().__init__("the tool reported an error")
        self.content = content


class ToolDefinition(msgspec.Struct, frozen=True, omit_defaults=True):
    """A tool as the Messages API's ``tools[]`` entry describes it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    cache_control: dict[str, Any] | None = None


class Tool(Generic[P, R]):
    """A named, described, schema-checked callable the model may use.

    Build one with ``@tool``, ``Tool.from_function``, ``Tool.from_struct``, or directly from a
    hand-written schema: ``Tool(name, description, input_schema, handler)`` where ``handler`` is
    an async function taking the argument dict (no validation beyond the dict shape is done then).
    Calling the tool like a function calls the original function.
    """

    __slots__ = ("_function", "_handler", "description", "input_schema", "name")

    def __init__(
        self,
        name: str,
        description: str,
        input_schema: Mapping[str, Any],
        handler: Handler,
        *,
        function: Callable[P, R] | None = None,
    ):
        _check_name(name)
        self.name = name
        self.description = description
        self.input_schema = dict(input_schema)
        self._handler = handler
        self._function = function if function is not None else cast("Callable[P, R]", handler)

    @classmethod
    def from_function(
        cls,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> Tool[P, R]:
        """A tool from a typed function; see :func:`tool`."""
        tool_name = name if name is not None else getattr(fn, "__name__", "")
        _check_name(tool_name)
        doc_summary, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
        text = description if description is not None else doc_summary
        if not text:
            raise TypeError(f"tool {tool_name!r} needs a docstring or description=...")
        signature = inspect.signature(fn)
        args_type = _arguments_struct(tool_name, fn, signature, arg_docs)
        positional = [p.name for p in signature.parameters.values() if p.kind is p.POSITIONAL_ONLY]
        call = _caller(fn)

        async def handler(arguments: dict[str, Any]) -> object:
            values = _convert(tool_name, arguments, args_type)
            kwargs = msgspec.structs.asdict(values)
            args = [kwargs.pop(n) for n in positional]
            return await call(*args, **kwargs)

        return cls(tool_name, text, _schema(tool_name, args_type), handler, function=fn)

    @classmethod
    def from_struct(
        cls,
        args_type: type[S],
        handler: Callable[[S], object],
        *,
        name: str,
        description: str,
    ) -> Tool[[S], object]:
        """A tool whose arguments are one msgspec Struct type, passed to ``handler`` validated.

        Use it when field names are not Python identifiers (``msgspec.field(name="-i")``) or
        when the schema needs constraints (``Annotated[int, msgspec.Meta(ge=1)]``).
        ``handler`` may be sync (run in a worker thread) or async.
        """
        call = _caller(handler)

        async def run_handler(arguments: dict[str, Any]) -> object:
            return await call(_convert(name, arguments, args_type))

        return Tool(name, description, _schema(name, args_type), run_handler, function=handler)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool(name={self.name!r})"

    async def run(self, arguments: Mapping[str, Any]) -> ToolOutput:
        """Validate ``arguments``, call the tool and normalize what it returned.

        Raises ``ToolArgumentError`` for bad arguments; the tool's own exceptions propagate.
        """
        if not isinstance(arguments, Mapping):
            raise ToolArgumentError(
                f"Invalid arguments for tool {self.name!r}: expected a JSON object, "
                f"got {type(arguments).__name__}",
                tool=self.name,
            )
        return normalize_output(await self._handler(dict(arguments)))

    def definition(self, *, cache_control: dict[str, Any] | None = None) -> ToolDefinition:
        """The Messages API definition of this tool."""
        return ToolDefinition(self.name, self.description, self.input_schema, cache_control)


@overload
def tool(fn: Callable[P, R], /) -> Tool[P, R]: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[P, R]], Tool[P, R]]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Tool[..., Any] | Callable[[Callable[..., Any]], Tool[..., Any]]:
    """Turn a typed sync or async function into a :class:`Tool`.

    The name defaults to the function's name, the description to the docstring's first
    paragraph; the docstring's parameter section (Google ``Args:``, NumPy ``Parameters`` or
    Sphinx ``:param name:``) describes the parameters. Every parameter
    needs a type hint; ``*args`` and ``**kwargs`` are not allowed.
    """
    if fn is not None:
        return Tool.from_function(fn, name=name, description=description)

    def decorate(f: Callable[..., Any]) -> Tool[..., Any]:
        return Tool.from_function(f, name=name, description=description)

    return decorate


def normalize_output(value: object) -> ToolOutput:
    """Turn whatever a tool returned into tool-result content.

    ``str`` stays as is, ``None`` becomes ``""``, a text/image/document block or a non-empty list
    of them becomes a block list, and anything else is encoded as JSON text.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, _RESULT_BLOCKS):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, _RESULT_BLOCKS) for v in value):
        return list(value)
    return _output_encoder.encode(value).decode()


# --------------------------------------------------------------------------- building tools


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise TypeError(
            f"invalid tool name {name!r}: use 1-64 characters from letters, digits, '_' and '-'"
        )


def _caller(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """An async callable that awaits ``fn`` if it is async, else runs it in a worker thread."""
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__):
        return cast("Callable[..., Awaitable[Any]]", fn)

    async def in_thread(*args: Any, **kwargs: Any) -> Any:
        # a thread cannot be stopped: on cancellation it is left to finish, its result dropped,
        # so that interrupting a turn never waits for a blocking tool
        call = functools.partial(fn, *args, **kwargs)
        return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)

    return in_thread


def _arguments_struct(
    tool_name: str,
    fn: Callable[..., Any],
    signature: inspect.Signature,
    arg_docs: Mapping[str, str],
) -> type[msgspec.Struct]:
    # A callable object's hints live on its class's __call__.
    annotated = fn if inspect.isroutine(fn) else type(fn).__call__
    try:
        hints = typing.get_type_hints(annotated, include_extras=True)
    except (NameError, TypeError) as exc:
        raise TypeError(f"tool {tool_name!r}: cannot resolve its type hints: {exc}") from exc
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"tool {tool_name!r}: *args and **kwargs are not supported")
        if param.name not in hints:
            raise TypeError(f"tool {tool_name!r}: parameter {param.name!r} needs a type hint")
        hint = hints[param.name]
        if param.name in arg_docs:
            hint = Annotated[hint, msgspec.Meta(description=arg_docs[param.name])]
        if param.default is param.empty:
            fields.append((param.name, hint))
        else:
            fields.append((param.name, hint, param.default))
    try:
        return msgspec.defstruct(
            f"{tool_name}_arguments", fields, kw_only=True, forbid_unknown_fields=True
        )
    except (TypeError, ValueError) as exc:
        raise TypeError(f"tool {tool_name!r}: unsupported parameters: {exc}") from exc


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph, and the parameter descriptions of the docstring's parameter section
    in Google (``Args:``), NumPy (``Parameters`` underlined) or Sphinx (``:param x:``) style."""
    try:
        parsed = docstring_parser.parse(doc)
    except docstring_parser.ParseError:
        parsed = docstring_parser.Docstring()
    described = parsed.description if parsed.description is not None else doc
    summary = " ".join(described.strip().split("\n\n", 1)[0].split())
    arg_docs = {
        param.arg_name: " ".join(param.description.split())
        for param in parsed.params
        if param.args[0] == "param" and param.description
    }
    return summary, arg_docs


def _schema(tool_name: str, args_type: type[msgspec.Struct]) -> dict[str, Any]:
    """The self-contained JSON schema of an arguments Struct (``$defs`` inlined)."""
    return object_schema(args_type, f"tool {tool_name!r}: no JSON schema for its parameters")


def object_schema(kind: type[Any], what: str) -> dict[str, Any]:
    """The self-contained JSON schema of an object type (a msgspec Struct, a dataclass or a
    TypedDict), ``$defs`` inlined; ``what`` starts the message of a ``TypeError``. Tool
    parameters and structured output both take their schemas from here."""
    try:
        raw = msgspec.json.schema(kind)
    except TypeError as exc:
        raise TypeError(f"{what}: {exc}") from exc
    defs: dict[str, Any] = raw.pop("$defs", {})
    schema = cast("dict[str, Any]", _inline(raw, defs, frozenset()))
    if schema.get("type") != "object":
        raise TypeError(f"{what}: not a JSON object type (schema {schema})")
    schema.pop("title", None)
    schema.setdefault("properties", {})
    schema.setdefault("required", [])
    return schema


def _inline(node: object, defs: Mapping[str, Any], seen: frozenset[str]) -> object:
    if isinstance(node, list):
        return [_inline(item, defs, seen) for item in node]
    if not isinstance(node, dict):
        return node
    rest = {key: _inline(value, defs, seen) for key, value in node.items() if key != "$ref"}
    if rest.get("type") == "object" and "properties" in rest and "additionalProperties" not in rest:
        # a dataclass or TypedDict: closed like a Struct's, as the API's strict schemas want
        rest["additionalProperties"] = False
    ref = node.get("$ref")
    if ref is None:
        return rest
    key = str(ref).removeprefix("#/$defs/")
    if key in seen:
        raise TypeError(f"recursive type {key!r} cannot be used in a schema")
    target = cast("dict[str, Any]", _inline(defs[key], defs, seen | {key}))
    return {**target, **rest}


def _convert(tool_name: str, arguments: dict[str, Any], args_type: type[S]) -> S:
    try:
        return msgspec.convert(arguments, args_type, strict=False)
    except msgspec.ValidationError as exc:
        raise _argument_error(tool_name, str(exc)) from None


def _argument_error(tool_name: str, text: str) -> ToolArgumentError:
    """Rephrase a msgspec validation message so it names the tool and the field."""
    match = _VALIDATION.match(text)
    what = match["what"] if match else text
    field = (match["path"] or "").lstrip(".") if match else ""
    named = _NAMED_FIELD.match(what)
    if named:
        field = f"{field}.{named['name']}" if field else named["name"]
        problem = "missing required" if named["kind"] == "missing required" else "unknown"
        detail = f"{problem} field {field!r}"
    elif field:
        detail = f"field {field!r}: {what}"
    else:
        detail = what
    return ToolArgumentError(
        f"Invalid arguments for tool {tool_name!r}: {detail}", tool=tool_name, field=field or None
    )
