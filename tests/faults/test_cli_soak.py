"""Soak: many real-CLI sessions, one after another and side by side, leave no process and no fd.

The full run is 200 sequential and 50 concurrent sessions, each opening the real CLI and running
one turn. CI runs a bounded version by default; set ``CLAUDE_UNIFIED_SOAK_SEQUENTIAL`` and
``CLAUDE_UNIFIED_SOAK_CONCURRENT`` (e.g. to 200 and 50) for the full one:
``pytest -m soak tests/faults``.
"""

from __future__ import annotations

import os

import anyio
import pytest

import claude_unified as cu
from claude_unified.testing.pytest_plugin import CliTestEnv

from ._cli_stub import Leftovers

pytestmark = [pytest.mark.anyio, pytest.mark.cli, pytest.mark.soak]

SEQUENTIAL = int(os.environ.get("CLAUDE_UNIFIED_SOAK_SEQUENTIAL", "8"))
CONCURRENT = int(os.environ.get("CLAUDE_UNIFIED_SOAK_CONCURRENT", "4"))
# a session takes under a second here; the suite's 120 s limit would cut a full run short
LIMIT_S = max(120, 3 * (SEQUENTIAL + CONCURRENT))


async def _session(env: CliTestEnv, n: int) -> None:
    async with cu.Conversation(env.config()) as conv:
        reply = await conv.ask(f"soak {n}")
        assert reply.text == f"ECHO: soak {n}"


@pytest.mark.timeout(LIMIT_S)
async def test_sequential_sessions_leave_nothing(claude_cli_env: CliTestEnv) -> None:
    left = Leftovers()
    for n in range(SEQUENTIAL):
        await _session(claude_cli_env, n)
    await left.check()


@pytest.mark.timeout(LIMIT_S)
async def test_concurrent_sessions_leave_nothing(claude_cli_env: CliTestEnv) -> None:
    left = Leftovers()
    async with anyio.create_task_group() as tg:
        for n in range(CONCURRENT):
            tg.start_soon(_session, claude_cli_env, n)
    await left.check()
