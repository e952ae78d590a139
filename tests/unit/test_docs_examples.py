"""The runnable examples of the docs run, and their assertions hold.

An example is a ``python`` code block that ends with ``anyio.run(main)``: it talks to a
``FakeAnthropicServer`` on loopback only, so it runs anywhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _examples() -> list[tuple[str, str]]:
    found = []
    for page in ("hooks.md", "permissions.md"):
        for i, code in enumerate(_BLOCK.findall((DOCS / page).read_text(encoding="utf-8"))):
            if code.rstrip().endswith("anyio.run(main)"):
                found.append((f"{page}#{i}", code))
    return found


EXAMPLES = _examples()


def test_each_page_has_a_runnable_example() -> None:
    assert {name.partition("#")[0] for name, _ in EXAMPLES} == {"hooks.md", "permissions.md"}


@pytest.mark.parametrize(("name", "code"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_example_runs(name: str, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(code, name, "exec"), {"__name__": "__docs__"})
