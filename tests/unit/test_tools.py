"""@tool, Tool: schemas, validation, calling, output normalization and decoration-time errors."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any, Literal, TypedDict

import msgspec
import pytest

from claude_unified._events import ImageBlock, TextBlock
from claude_unified._exceptions import ClaudeError
from claude_unified._tools import (
    Tool,
    ToolArgumentError,
    ToolDefinition,
    ToolError,
    normalize_output,
    tool,
)


class Point(msgspec.Struct):
    """A point on the grid."""

    x: int
    y: int = 0


class Options(TypedDict):
    verbose: bool


@dataclasses.dataclass
class Box:
    width: float
    height: float


class Node(msgspec.Struct):
    value: int
    children: list[Node] = []


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    The sum is exact.
    """
    return a + b


@tool(name="fancy-search", description="Search for things.")
async def search(
    query: str,
    limit: int = 10,
    tags: list[str] | None = None,
    mode: Literal["fast", "thorough"] = "fast",
) -> dict[str, Any]:
    """Ignored, because description= wins."""
    return {"query": query, "limit": limit, "tags": tags, "mode": mode}


@tool
def place(point: Point, options: Options, boxes: list[Box], note: str | None = None) -> str:
    """Place boxes at a point.

    Args:
        point: Where to put them.
        options: How to report
            what happened.
        boxes (list[Box]): The boxes.

    Returns:
        A summary.
    """
    assert isinstance(point, Point)
    assert all(isinstance(b, Box) for b in boxes)
    area = sum(b.width * b.height for b in boxes)
    return f"{point.x},{point.y} verbose={options['verbose']} area={area} note={note}"


def _walk(node: object) -> list[object]:
    if isinstance(node, dict):
        return [node, *(item for value in node.values() for item in _walk(value))]
    if isinstance(node, list):
        return [item for value in node for item in _walk(value)]
    return [node]


# --------------------------------------------------------------------------- schemas


def test_simple_schema_name_and_description() -> None:
    assert isinstance(add, Tool)
    assert add.name == "add"
    assert add.description == "Add two integers."
    assert add.input_schema == {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
        "additionalProperties": False,
    }


def test_schema_defaults_optional_literal_and_list() -> None:
    assert search.name == "fancy-search"
    assert search.description == "Search for things."
    props = search.input_schema["properties"]
    assert search.input_schema["required"] == ["query"]
    assert props["query"] == {"type": "string"}
    assert props["limit"] == {"type": "integer", "default": 10}
    assert props["tags"]["default"] is None
    assert {"type": "array", "items": {"type": "string"}} in props["tags"]["anyOf"]
    assert {"type": "null"} in props["tags"]["anyOf"]
    assert props["mode"] == {"enum": ["fast", "thorough"], "default": "fast"}


def test_nested_schema_is_inlined_and_documented() -> None:
    schema = place.input_schema
    assert all(
        "$ref" not in node and "$defs" not in node
        for node in _walk(schema)
        if isinstance(node, dict)
    )
    props = schema["properties"]
    assert props["point"]["type"] == "object"
    assert props["point"]["properties"] == {
        "x": {"type": "integer"},
        "y": {"type": "integer", "default": 0},
    }
    assert props["point"]["description"] == "Where to put them."  # Args wins over the docstring
    assert props["options"]["description"] == "How to report what happened."
    assert props["options"]["required"] == ["verbose"]
    assert props["boxes"]["description"] == "The boxes."
    assert props["boxes"]["items"]["properties"]["width"] == {"type": "number"}
    assert schema["required"] == ["point", "options", "boxes"]
    assert place.description == "Place boxes at a point."


def test_tool_without_parameters_has_an_object_schema() -> None:
    @tool
    def ping() -> str:
        """Answer pong."""
        return "pong"

    assert ping.input_schema["type"] == "object"
    assert ping.input_schema["properties"] == {}
    assert ping.input_schema["required"] == []


def test_recursive_types_are_rejected() -> None:
    def walk(tree: Node) -> int:
        """Walk a tree."""
        return tree.value

    with pytest.raises(TypeError, match="recursive type 'Node'"):
        tool(walk)


def test_definition_encodes_like_the_api_expects() -> None:
    definition = add.definition()
    assert isinstance(definition, ToolDefinition)
    assert msgspec.json.decode(msgspec.json.encode(definition)) == {
        "name": "add",
        "description": "Add two integers.",
        "input_schema": add.input_schema,
    }
    cached = msgspec.to_builtins(add.definition(cache_control={"type": "ephemeral"}))
    assert cached["cache_control"] == {"type": "ephemeral"}


# --------------------------------------------------------------------------- calling


@pytest.mark.anyio
async def test_sync_tool_runs_in_a_worker_thread() -> None:
    seen: list[int] = []

    @tool
    def where(n: int) -> int:
        """Record the thread."""
        seen.append(threading.get_ident())
        return n * 2

    assert await where.run({"n": 21}) == "42"
    assert seen and seen[0] != threading.get_ident()


@pytest.mark.anyio
async def test_async_tool_is_awaited_and_defaults_apply() -> None:
    out = await search.run({"query": "cats", "tags": ["a", "b"]})
    assert isinstance(out, str)
    assert msgspec.json.decode(out) == {
        "query": "cats",
        "limit": 10,
        "tags": ["a", "b"],
        "mode": "fast",
    }


@pytest.mark.anyio
async def test_nested_arguments_are_converted_before_the_call() -> None:
    out = await place.run(
        {
            "point": {"x": 3},
            "options": {"verbose": True},
            "boxes": [{"width": 2, "height": 3}, {"width": 1.5, "height": 2}],
        }
    )
    assert out == "3,0 verbose=True area=9.0 note=None"


@pytest.mark.anyio
async def test_numeric_strings_are_accepted_for_numbers() -> None:
    assert await add.run({"a": "2", "b": 3}) == "5"


@pytest.mark.anyio
async def test_positional_only_parameters_are_passed_positionally() -> None:
    @tool
    def sub(a: int, b: int, /) -> int:
        """Subtract."""
        return a - b

    assert await sub.run({"a": 5, "b": 3}) == "2"


@pytest.mark.anyio
async def test_exceptions_from_the_function_propagate_unchanged() -> None:
    boom = RuntimeError("boom")

    @tool
    async def fail() -> None:
        """Fail."""
        raise boom

    with pytest.raises(RuntimeError) as info:
        await fail.run({})
    assert info.value is boom


@pytest.mark.anyio
async def test_callable_object_with_async_call() -> None:
    class Doubler:
        async def __call__(self, n: int) -> int:
            return n * 2

    doubler = Tool.from_function(Doubler(), name="double", description="Double a number.")
    assert await doubler.run({"n": 4}) == "8"


def test_tool_stays_callable_like_the_function() -> None:
    assert add(2, 3) == 5


# --------------------------------------------------------------------------- validation


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("arguments", "field", "text"),
    [
        ({"a": "x", "b": 1}, "a", "field 'a': Expected `int`, got `str`"),
        ({"a": 1}, "b", "missing required field 'b'"),
        ({"a": 1, "b": 2, "c": 3}, "c", "unknown field 'c'"),
        ({"a": 1.5, "b": 2}, "a", "field 'a': Expected `int`, got `float`"),
    ],
)
async def test_invalid_arguments_name_tool_and_field(
    arguments: dict[str, Any], field: str, text: str
) -> None:
    with pytest.raises(ToolArgumentError) as info:
        await add.run(arguments)
    assert info.value.tool == "add"
    assert info.value.field == field
    assert str(info.value) == f"Invalid arguments for tool 'add': {text}"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("arguments", "field", "text"),
    [
        ({"point": {"x": "a"}}, "point.x", "Expected `int`, got `str`"),
        ({"point": {}}, "point.x", "missing required field 'point.x'"),
        ({"boxes": [{"width": 1, "height": "tall"}]}, "boxes[0].height", "Expected `float`"),
        ({"options": {"verbose": "maybe"}}, "options.verbose", "Expected `bool`"),
    ],
)
async def test_nested_validation_errors_give_the_path(
    arguments: dict[str, Any], field: str, text: str
) -> None:
    valid: dict[str, Any] = {"point": {"x": 1}, "options": {"verbose": False}, "boxes": []}
    with pytest.raises(ToolArgumentError) as info:
        await place.run({**valid, **arguments})
    assert info.value.field == field
    assert "tool 'place'" in str(info.value)
    assert text in str(info.value)


@pytest.mark.anyio
async def test_literal_violation_is_reported() -> None:
    with pytest.raises(ToolArgumentError, match=r"field 'mode': Invalid enum value 'slow'"):
        await search.run({"query": "q", "mode": "slow"})


@pytest.mark.anyio
async def test_non_object_arguments_are_rejected() -> None:
    with pytest.raises(ToolArgumentError, match="expected a JSON object, got list"):
        await add.run([1, 2])  # type: ignore[arg-type]


def test_argument_error_is_a_claude_error() -> None:
    assert issubclass(ToolArgumentError, ToolError)
    assert issubclass(ToolError, ClaudeError)


# --------------------------------------------------------------------------- output


def test_normalize_output() -> None:
    text = TextBlock(text="hi")
    image = ImageBlock(source={"type": "base64", "media_type": "image/png", "data": "AA=="})
    assert normalize_output("plain") == "plain"
    assert normalize_output(None) == ""
    assert normalize_output(text) == [text]
    assert normalize_output([text, image]) == [text, image]
    assert normalize_output({"a": [1, 2]}) == '{"a":[1,2]}'
    assert normalize_output(7) == "7"
    assert normalize_output([]) == "[]"
    assert normalize_output([1, "x"]) == '[1,"x"]'
    assert normalize_output(Point(1, 2)) == '{"x":1,"y":2}'
    assert normalize_output({"where": Path("/tmp/x")}) == '{"where":"/tmp/x"}'


@pytest.mark.anyio
async def test_run_normalizes_block_results() -> None:
    @tool
    def picture() -> TextBlock:
        """Return a block."""
        return TextBlock(text="a picture")

    assert await picture.run({}) == [TextBlock(text="a picture")]


# --------------------------------------------------------------------------- other constructors


@pytest.mark.anyio
async def test_tool_from_explicit_schema() -> None:
    received: list[dict[str, Any]] = []

    async def handler(arguments: dict[str, Any]) -> str:
        received.append(arguments)
        return "done"

    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    manual = Tool("manual", "Hand-written schema.", schema, handler)
    assert manual.input_schema == schema
    assert await manual.run({"q": "x"}) == "done"
    assert received == [{"q": "x"}]


class Flags(msgspec.Struct, forbid_unknown_fields=True):
    pattern: str
    ignore_case: bool = msgspec.field(default=False, name="-i")


@pytest.mark.anyio
async def test_tool_from_struct_uses_wire_names() -> None:
    def handler(flags: Flags) -> str:
        return f"{flags.pattern}:{flags.ignore_case}"

    grep = Tool.from_struct(Flags, handler, name="grep", description="Search.")
    assert set(grep.input_schema["properties"]) == {"pattern", "-i"}
    assert "title" not in grep.input_schema
    assert await grep.run({"pattern": "x", "-i": True}) == "x:True"
    with pytest.raises(ToolArgumentError, match="unknown field 'ignore_case'"):
        await grep.run({"pattern": "x", "ignore_case": True})


# --------------------------------------------------------------------------- decoration errors


def test_missing_type_hint_is_rejected() -> None:
    def untyped(a, b: int) -> int:  # type: ignore[no-untyped-def]
        """Untyped."""
        return int(a) + b

    with pytest.raises(TypeError, match="parameter 'a' needs a type hint"):
        tool(untyped)


@pytest.mark.parametrize("kind", ["args", "kwargs"])
def test_variadic_parameters_are_rejected(kind: str) -> None:
    def star(*args: int) -> int:
        """Star."""
        return sum(args)

    def double_star(**kwargs: int) -> int:
        """Double star."""
        return sum(kwargs.values())

    with pytest.raises(TypeError, match=r"\*args and \*\*kwargs are not supported"):
        tool(star if kind == "args" else double_star)


@pytest.mark.parametrize("name", ["", "has space", "dot.name", "x" * 65, "ünïcode"])
def test_bad_names_are_rejected(name: str) -> None:
    with pytest.raises(TypeError, match="invalid tool name"):
        tool(name=name)(add)


def test_lambda_is_rejected_for_its_name() -> None:
    with pytest.raises(TypeError, match="invalid tool name '<lambda>'"):
        tool(lambda: None)


def test_missing_description_is_rejected() -> None:
    def quiet(a: int) -> int:
        return a

    with pytest.raises(TypeError, match="needs a docstring or description"):
        tool(quiet)
    assert tool(description="Quiet.")(quiet).description == "Quiet."


def test_types_without_a_json_schema_are_rejected() -> None:
    def opaque(value: object) -> int:
        """Takes anything."""
        return 1

    with pytest.raises(TypeError, match="tool 'opaque': no JSON schema for its parameters"):
        tool(opaque)


def test_unresolvable_hint_is_rejected() -> None:
    class Local(msgspec.Struct):
        a: int

    def uses_local(value: Local) -> int:
        """Uses a type defined in a function."""
        return value.a

    with pytest.raises(TypeError, match="cannot resolve its type hints"):
        tool(uses_local)


# --------------------------------------------------------------------------- docstring styles


@tool
def numpy_style(city: str, days: int = 3) -> str:
    """Forecast the weather.

    Parameters
    ----------
    city : str
        The city, as its
        English name.
    days : int, optional
        How many days ahead.

    Returns
    -------
    str
        The forecast.
    """
    return f"{city} {days}"


@tool
def sphinx_style(city: str, days: int = 3) -> str:
    """Forecast the weather.

    :param city: The city, as its
        English name.
    :param int days: How many days ahead.
    :returns: The forecast.
    :raises ValueError: never.
    """
    return f"{city} {days}"


@tool
def google_style(city: str, days: int = 3) -> str:
    """Forecast the weather
    for a city.

    Args:
        city (str): The city, as its
            English name.
        days: How many days ahead.

    Raises:
        ValueError: never.
    """
    return f"{city} {days}"


@pytest.mark.parametrize("styled", [numpy_style, sphinx_style, google_style])
def test_parameter_descriptions_in_every_docstring_style(styled: Tool) -> None:
    props = styled.input_schema["properties"]
    assert props["city"]["description"] == "The city, as its English name."
    assert props["days"]["description"] == "How many days ahead."
    assert set(props) == {"city", "days"}  # Returns/Raises entries are not parameters
    assert styled.description.startswith("Forecast the weather")


def test_a_docstring_without_parameters_still_describes_the_tool() -> None:
    @tool
    def ping(host: str) -> str:
        """Ping a host.

        Nothing else is said here: Args are not listed.
        """
        return host

    assert ping.description == "Ping a host."
    assert "description" not in ping.input_schema["properties"]["host"]


@dataclasses.dataclass
class _Inner:
    size: int


class _Shape(TypedDict):
    inner: _Inner
    label: str


def test_nested_objects_are_closed_like_the_top_level() -> None:
    @tool
    def draw(shape: _Shape, inners: list[_Inner], tags: dict[str, int]) -> str:
        """Draw a shape."""
        return "ok"

    schema = draw.input_schema
    props = schema["properties"]
    assert schema["additionalProperties"] is False
    assert props["shape"]["additionalProperties"] is False
    assert props["shape"]["properties"]["inner"]["additionalProperties"] is False
    assert props["inners"]["items"]["additionalProperties"] is False
    assert props["tags"]["additionalProperties"] == {"type": "integer"}  # a map stays a map
    objects = [n for n in _walk(schema) if isinstance(n, dict) and n.get("type") == "object"]
    assert all("additionalProperties" in n for n in objects)
