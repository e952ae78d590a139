"""Read, Write, Edit, Glob, Grep and Bash, each in a temporary root, and their confinement."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from claude_unified._builtin_tools import builtin_tools
from claude_unified._events import ImageBlock
from claude_unified._tools import Tool, ToolArgumentError, ToolError, ToolOutput


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    return project


@pytest.fixture
def tools(root: Path) -> dict[str, Tool]:
    return {t.name: t for t in builtin_tools(root)}


async def run(tools: dict[str, Tool], name: str, **arguments: Any) -> ToolOutput:
    return await tools[name].run(arguments)


async def text(tools: dict[str, Tool], name: str, **arguments: Any) -> str:
    out = await run(tools, name, **arguments)
    assert isinstance(out, str)
    return out


def test_names_and_input_shapes(tools: dict[str, Tool]) -> None:
    assert list(tools) == ["Read", "Write", "Edit", "Glob", "Grep", "Bash"]
    schema = {name: t.input_schema for name, t in tools.items()}
    assert schema["Read"]["required"] == ["file_path"]
    assert set(schema["Read"]["properties"]) == {"file_path", "offset", "limit"}
    assert schema["Write"]["required"] == ["file_path", "content"]
    assert schema["Edit"]["required"] == ["file_path", "old_string", "new_string"]
    assert schema["Edit"]["properties"]["replace_all"]["default"] is False
    assert set(schema["Glob"]["properties"]) == {"pattern", "path"}
    assert set(schema["Grep"]["properties"]) == {
        "pattern",
        "path",
        "glob",
        "output_mode",
        "-i",
        "-n",
    }
    output_mode = schema["Grep"]["properties"]["output_mode"]
    assert sorted(output_mode["enum"]) == ["content", "count", "files_with_matches"]
    assert output_mode["default"] == "files_with_matches"
    assert set(schema["Bash"]["properties"]) == {"command", "timeout", "description"}
    assert all(t.description for t in tools.values())


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a directory"):
        builtin_tools(tmp_path / "missing")


# --------------------------------------------------------------------------- Read


@pytest.mark.anyio
async def test_read_numbers_lines_like_cat_n(tools: dict[str, Tool], root: Path) -> None:
    (root / "a.txt").write_text("first\nsecond\nthird\n")
    assert (
        await text(tools, "Read", file_path="a.txt")
        == "     1\tfirst\n     2\tsecond\n     3\tthird"
    )
    absolute = await text(tools, "Read", file_path=str(root / "a.txt"))
    assert absolute.startswith("     1\tfirst")


@pytest.mark.anyio
async def test_read_offset_and_limit(tools: dict[str, Tool], root: Path) -> None:
    (root / "n.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    out = await text(tools, "Read", file_path="n.txt", offset=4, limit=2)
    assert out == "     4\tline 4\n     5\tline 5\n[5 more lines; read them with offset=6]"
    assert (await text(tools, "Read", file_path="n.txt", offset=10)) == "    10\tline 10"
    with pytest.raises(ToolError, match="has 10 lines; offset 11 is past it"):
        await run(tools, "Read", file_path="n.txt", offset=11)
    with pytest.raises(ToolArgumentError, match="field 'limit'"):
        await run(tools, "Read", file_path="n.txt", limit=0)


@pytest.mark.anyio
async def test_read_errors_and_empty_file(tools: dict[str, Tool], root: Path) -> None:
    (root / "empty.txt").write_text("")
    (root / "dir").mkdir()
    assert await text(tools, "Read", file_path="empty.txt") == "'empty.txt' is empty"
    with pytest.raises(ToolError, match=r"'nope.txt' does not exist"):
        await run(tools, "Read", file_path="nope.txt")
    with pytest.raises(ToolError, match="is a directory"):
        await run(tools, "Read", file_path="dir")


@pytest.mark.anyio
async def test_read_image_returns_an_image_block(tools: dict[str, Tool], root: Path) -> None:
    (root / "pic.PNG").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    out = await run(tools, "Read", file_path="pic.PNG")
    assert out == [
        ImageBlock(source={"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgpmYWtl"})
    ]


@pytest.mark.anyio
async def test_read_output_is_bounded(root: Path) -> None:
    tools = {t.name: t for t in builtin_tools(root, max_output=100)}
    (root / "big.txt").write_text("x" * 50 + "\n" + "y" * 200 + "\n")
    out = await text(tools, "Read", file_path="big.txt")
    assert out.startswith("     1\t" + "x" * 50)
    assert out.endswith("[output truncated: 165 of 265 characters cut]")


# --------------------------------------------------------------------------- Write and Edit


@pytest.mark.anyio
async def test_write_creates_and_overwrites(tools: dict[str, Tool], root: Path) -> None:
    out = await text(tools, "Write", file_path="sub/dir/new.txt", content="hello\r\nworld")
    assert out == "Created sub/dir/new.txt (12 characters)"
    assert (root / "sub/dir/new.txt").read_bytes() == b"hello\r\nworld"
    out = await text(tools, "Write", file_path=str(root / "sub/dir/new.txt"), content="é")
    assert out == "Updated sub/dir/new.txt (1 characters)"
    assert (root / "sub/dir/new.txt").read_text(encoding="utf-8") == "é"
    with pytest.raises(ToolError, match="is a directory"):
        await run(tools, "Write", file_path="sub", content="x")


@pytest.mark.anyio
async def test_edit_replaces_a_unique_string(tools: dict[str, Tool], root: Path) -> None:
    (root / "code.py").write_bytes(b"a = 1\r\nb = 2\r\n")
    out = await text(tools, "Edit", file_path="code.py", old_string="b = 2", new_string="b = 3")
    assert out == "Edited code.py: replaced 1 occurrence(s)"
    assert (root / "code.py").read_bytes() == b"a = 1\r\nb = 3\r\n"


@pytest.mark.anyio
async def test_edit_failures_are_clear(tools: dict[str, Tool], root: Path) -> None:
    (root / "f.txt").write_text("x x x")
    with pytest.raises(ToolError, match=r"old_string was not found in 'f\.txt'"):
        await run(tools, "Edit", file_path="f.txt", old_string="y", new_string="z")
    with pytest.raises(ToolError, match=r"occurs 3 times in 'f\.txt'.*replace_all"):
        await run(tools, "Edit", file_path="f.txt", old_string="x", new_string="z")
    with pytest.raises(ToolError, match="are the same"):
        await run(tools, "Edit", file_path="f.txt", old_string="x", new_string="x")
    with pytest.raises(ToolError, match="old_string is empty"):
        await run(tools, "Edit", file_path="f.txt", old_string="", new_string="x")
    with pytest.raises(ToolError, match="does not exist"):
        await run(tools, "Edit", file_path="g.txt", old_string="x", new_string="y")
    assert (root / "f.txt").read_text() == "x x x"


@pytest.mark.anyio
async def test_edit_replace_all(tools: dict[str, Tool], root: Path) -> None:
    (root / "f.txt").write_text("x x x")
    out = await text(
        tools, "Edit", file_path="f.txt", old_string="x", new_string="yy", replace_all=True
    )
    assert out == "Edited f.txt: replaced 3 occurrence(s)"
    assert (root / "f.txt").read_text() == "yy yy yy"


# --------------------------------------------------------------------------- Glob and Grep


def _tree(root: Path) -> None:
    for rel, body in {
        "src/a.py": "import os\nprint('Hello')\n",
        "src/pkg/b.py": "hello = 1\nHELLO = 2\n",
        "src/notes.md": "nothing here\n",
        "README.md": "Say hello\n",
        ".hidden/c.py": "hello\n",
        "bin.dat": "hello\0binary",
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)


@pytest.mark.anyio
async def test_glob_lists_files_newest_first(tools: dict[str, Tool], root: Path) -> None:
    _tree(root)
    os.utime(root / "src/a.py", (1_000, 1_000))
    os.utime(root / "src/pkg/b.py", (2_000, 2_000))
    assert await text(tools, "Glob", pattern="**/*.py", path="src") == "src/pkg/b.py\nsrc/a.py"
    assert await text(tools, "Glob", pattern="*.md") == "README.md"
    assert await text(tools, "Glob", pattern="*.rs") == "No files found"
    with pytest.raises(ToolError, match="pattern must be relative"):
        await run(tools, "Glob", pattern="/etc/*")
    with pytest.raises(ToolError, match="is not a directory"):
        await run(tools, "Glob", pattern="*", path="README.md")


@pytest.mark.anyio
async def test_grep_modes(tools: dict[str, Tool], root: Path) -> None:
    _tree(root)
    assert await text(tools, "Grep", pattern="hello") == "README.md\nsrc/pkg/b.py"
    assert await text(tools, "Grep", pattern="hello", **{"-i": True}) == (
        "README.md\nsrc/a.py\nsrc/pkg/b.py"
    )
    assert await text(tools, "Grep", pattern="(?i)hello", output_mode="count") == (
        "README.md:1\nsrc/a.py:1\nsrc/pkg/b.py:2"
    )
    assert await text(tools, "Grep", pattern="hel+o", path="src", output_mode="content") == (
        "src/pkg/b.py:1:hello = 1"
    )
    out = await text(
        tools, "Grep", pattern="hello", output_mode="content", path="src/pkg/b.py", **{"-n": False}
    )
    assert out == "src/pkg/b.py:hello = 1"
    assert await text(tools, "Grep", pattern="nomatch") == "No matches found"


@pytest.mark.anyio
async def test_grep_glob_filter(tools: dict[str, Tool], root: Path) -> None:
    _tree(root)
    assert await text(tools, "Grep", pattern="(?i)hello", glob="*.py") == "src/a.py\nsrc/pkg/b.py"
    assert await text(tools, "Grep", pattern="(?i)hello", glob="src/pkg/*.{py,md}") == (
        "src/pkg/b.py"
    )
    assert await text(tools, "Grep", pattern=".", glob="*.md") == "README.md\nsrc/notes.md"


@pytest.mark.anyio
async def test_grep_errors(tools: dict[str, Tool]) -> None:
    with pytest.raises(ToolError, match="invalid regular expression '\\('"):
        await run(tools, "Grep", pattern="(")
    with pytest.raises(ToolError, match="does not exist"):
        await run(tools, "Grep", pattern="x", path="missing")
    with pytest.raises(ToolArgumentError, match="field 'output_mode'"):
        await run(tools, "Grep", pattern="x", output_mode="lines")


# --------------------------------------------------------------------------- confinement


@pytest.fixture
def outside(root: Path) -> Path:
    secret = root.parent / "secret.txt"
    secret.write_text("top secret\n")
    return secret


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("Read", {"file_path": "../secret.txt"}),
        ("Read", {"file_path": "sub/../../secret.txt"}),
        ("Read", {"file_path": "OUTSIDE"}),
        ("Write", {"file_path": "../new.txt", "content": "x"}),
        ("Write", {"file_path": "OUTSIDE", "content": "x"}),
        ("Edit", {"file_path": "OUTSIDE", "old_string": "top", "new_string": "x"}),
        ("Glob", {"pattern": "*", "path": ".."}),
        ("Grep", {"pattern": "secret", "path": "OUTSIDE"}),
    ],
)
async def test_paths_outside_the_root_are_refused(
    tools: dict[str, Tool], outside: Path, name: str, arguments: dict[str, Any]
) -> None:
    arguments = {k: str(outside) if v == "OUTSIDE" else v for k, v in arguments.items()}
    with pytest.raises(ToolError, match="is outside the allowed root"):
        await tools[name].run(arguments)
    assert await anyio.Path(outside).read_text() == "top secret\n"
    assert not (outside.parent / "new.txt").exists()


@pytest.mark.anyio
async def test_symlinks_pointing_outside_are_refused(
    tools: dict[str, Tool], root: Path, outside: Path
) -> None:
    (root / "link.txt").symlink_to(outside)
    (root / "linkdir").symlink_to(outside.parent)
    with pytest.raises(ToolError, match="outside the allowed root"):
        await run(tools, "Read", file_path="link.txt")
    with pytest.raises(ToolError, match="outside the allowed root"):
        await run(tools, "Write", file_path="linkdir/secret.txt", content="pwned")
    with pytest.raises(ToolError, match="outside the allowed root"):
        await run(tools, "Edit", file_path="link.txt", old_string="top", new_string="x")
    assert await anyio.Path(outside).read_text() == "top secret\n"
    assert await text(tools, "Glob", pattern="**/*.txt") == "No files found"
    assert await text(tools, "Grep", pattern="secret") == "No matches found"


@pytest.mark.anyio
async def test_symlinks_inside_the_root_are_fine(tools: dict[str, Tool], root: Path) -> None:
    (root / "real.txt").write_text("inside\n")
    (root / "alias.txt").symlink_to(root / "real.txt")
    assert await text(tools, "Read", file_path="alias.txt") == "     1\tinside"
    assert await text(tools, "Glob", pattern="../project/*.txt") == "alias.txt\nreal.txt"


# --------------------------------------------------------------------------- Bash


@pytest.mark.anyio
async def test_bash_runs_in_the_root_with_combined_output(
    tools: dict[str, Tool], root: Path
) -> None:
    out = await text(tools, "Bash", command="pwd; echo err >&2", description="where am I")
    assert out == f"{await anyio.Path(root).resolve()}\nerr\n\n[exit code 0]"


@pytest.mark.anyio
async def test_bash_failure_reports_exit_code_and_output(tools: dict[str, Tool]) -> None:
    with pytest.raises(ToolError) as info:
        await run(tools, "Bash", command="echo partial; exit 3")
    assert str(info.value) == "partial\n\n[exit code 3]"


@pytest.mark.anyio
async def test_bash_timeout_kills_the_command(tools: dict[str, Tool], root: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"timed out after 0\.3 s; the command was killed") as info:
        await run(tools, "Bash", command="echo before; sleep 10; echo finished", timeout=300)
    assert time.monotonic() - started < 1.2  # no wait for output once the process group is killed
    assert str(info.value).startswith("before\n")
    assert "finished" not in str(info.value)


@pytest.mark.anyio
async def test_bash_default_timeout(root: Path) -> None:
    tools = {t.name: t for t in builtin_tools(root, bash_timeout=0.2)}
    with pytest.raises(ToolError, match=r"timed out after 0\.2 s"):
        await run(tools, "Bash", command="sleep 10")


def _gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" in status.read_text()
    except FileNotFoundError:
        return True


@pytest.mark.anyio
async def test_bash_background_jobs_do_not_outlive_the_call(
    tools: dict[str, Tool], root: Path
) -> None:
    started = time.monotonic()
    out = await text(tools, "Bash", command="sleep 30 & echo $! > pid.txt; echo started")
    assert out == "started\n\n[exit code 0]"
    assert time.monotonic() - started < 0.9  # the background job is killed when bash exits
    pid = int((root / "pid.txt").read_text())
    for _ in range(50):
        if _gone(pid):
            break
        await anyio.sleep(0.05)
    assert _gone(pid)


@pytest.mark.anyio
async def test_bash_output_is_bounded_keeping_head_and_tail(root: Path) -> None:
    tools = {t.name: t for t in builtin_tools(root, max_output=20)}
    out = await text(
        tools, "Bash", command="printf HEAD; head -c 5000 /dev/zero | tr '\\0' x; printf TAIL"
    )
    head, note, tail = out.split("\n", 2)
    assert head == "HEADxxxxxx"
    assert note == "[output truncated: 4988 of 5008 bytes cut]"
    assert tail == "xxxxxxTAIL\n[exit code 0]"
