"""Every Python block of README.md and docs/*.md runs, against the fake Messages API.

The blocks of one page run in order in one namespace, like a reader pasting them one after the
other into one file. ``Config.load()`` finds a dummy key and ``ANTHROPIC_BASE_URL`` aimed at a
``FakeAnthropicServer``; the CLI backend is the pinned CLI in an isolated environment aimed at
the same server; the working directory is a fresh temporary one.

A page that shows files (a block starting ``# support.py``; the blocks after it continue the
file) has them written out, and its ``test_*.py`` files are run by pytest in a subprocess, in
the same environment. A block that must not run (it needs a real account, say) is marked
``<!-- not-run: why -->`` and is only compiled.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import CodeType

import pytest

from claude_unified.testing.pytest_plugin import CliTestEnv

from ._blocks import ROOT, Block, blocks, pages

PAGES = [page for page in pages() if blocks(page)]


def _compiled(block: Block) -> CodeType:
    try:
        return compile(block.code, block.where, "exec", dont_inherit=True)
    except SyntaxError as exc:
        pytest.fail(f"{block.where}: the block does not compile: {exc}", pytrace=False)


@pytest.fixture
def docs_env(claude_cli_env: CliTestEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliTestEnv]:
    """The process environment a reader of the docs would have, but offline; the logging set-up
    a page makes (``logging.basicConfig`` …) is undone afterwards."""
    for name, value in claude_cli_env.env.items():
        if name not in ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLAUDE_UNIFIED_CLI_PATH", claude_cli_env.cli_path)
    monkeypatch.delenv("CLAUDE_UNIFIED_LOG", raising=False)
    monkeypatch.chdir(claude_cli_env.cwd)
    loggers = [logging.getLogger(), logging.getLogger("claude_unified")]
    saved = [(logger, logger.level, list(logger.handlers)) for logger in loggers]
    try:
        yield claude_cli_env
    finally:
        for logger, level, handlers in saved:
            logger.setLevel(level)
            logger.handlers[:] = handlers


def _run_block(block: Block, code: CodeType, namespace: dict[str, object]) -> None:
    try:
        exec(code, namespace)  # the docs' own code: running it is the point
    except SystemExit as exc:
        if exc.code not in (None, 0):
            pytest.fail(f"{block.where}: exited with {exc.code!r}", pytrace=False)
    except Exception as exc:
        raise AssertionError(f"{block.where}: {type(exc).__name__}: {exc}") from exc


def _run_tests(page: Path, files: dict[str, list[str]], where: Path) -> None:
    for name, parts in files.items():
        (where / name).write_text("\n".join(parts), encoding="utf-8")
    tests = sorted(name for name in files if name.startswith("test_"))
    if not tests:
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(where), *sys.path])}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, f"{page.name}: its tests failed\n{run.stdout}\n{run.stderr}"
    assert " passed" in run.stdout, run.stdout


@pytest.mark.cli
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_examples_run(page: Path, docs_env: CliTestEnv) -> None:
    namespace: dict[str, object] = {"__name__": "__main__"}
    files: dict[str, list[str]] = {}
    current: str | None = None
    for block in blocks(page):
        code = _compiled(block)
        if block.not_run is not None:
            continue
        current = block.file_name or current
        if current is not None:
            files.setdefault(current, []).clear() if block.file_name else None
            files.setdefault(current, []).append(block.code)
        else:
            _run_block(block, code, namespace)
    _run_tests(page, files, Path(docs_env.cwd))
