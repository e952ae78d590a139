"""Parity of retries: the same fault gives the same ``ApiRetry`` events on both transports, in
one vocabulary (``RetryReason``), and the turn then succeeds. Harness: ``test_parity``."""

from __future__ import annotations

import anyio
import pytest

import claude_unified as cu
from claude_unified.testing import drop, error, reply
from claude_unified.testing._script import Step

from .test_parity import TURN_TIMEOUT_S, Side, side
from .test_parity import pytestmark as parity_marks

pytestmark = parity_marks
__all__ = ["side"]  # the fixture, imported for pytest


def retrying_config(side: Side) -> cu.Config:
    """Two retries at most on either transport (the CLI reads its own variable)."""
    if side.cli is not None:
        return side.cli.config(env={**side.cli.env, "CLAUDE_CODE_MAX_RETRIES": "2"})
    return side.config().replace(max_retries=2)


@pytest.mark.parametrize(
    ("fault", "status", "reason"),
    [
        (error(529), 529, "overloaded"),
        (error(429, headers={"retry-after": "1"}), 429, "rate_limit"),
        (error(500), 500, "server_error"),
        (reply("never sent").with_fault(drop()), None, "connection"),
    ],
    ids=["529", "429", "500", "dropped"],
)
async def test_one_fault_then_success(
    side: Side, fault: Step, status: int | None, reason: str
) -> None:
    prompt = f"Please answer despite a {status or 'dropped connection'}."
    side.server.on(prompt, fault, times=1)
    with anyio.fail_after(TURN_TIMEOUT_S):
        async with cu.Conversation(retrying_config(side)) as conv:
            events = [event async for event in conv.send(prompt)]
    retries = [e for e in events if isinstance(e, cu.ApiRetry)]
    assert [(r.attempt, r.status, r.error) for r in retries] == [(1, status, reason)]
    assert retries[0].delay_s > 0
    assert retries[0].detail  # the backend's own word, kept beside the common one
    last = events[-1]
    assert isinstance(last, cu.Result) and not last.is_error
    assert last.text == f"ECHO: {prompt}"
    again = cu.decode_event(cu.encode_event(retries[0]))
    assert again == retries[0]  # round-trips through JSON
