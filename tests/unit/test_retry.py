"""Retry rules for the Messages API: what retries, how long the server asked to wait, backoff."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from claude_unified.backends._retry import (
    BACKOFF_CAP_S,
    BACKOFF_START_S,
    backoff,
    server_wait,
    should_retry,
)


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529, 599])
def test_retryable_statuses(status: int) -> None:
    assert should_retry(status, {}) is True


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 413, 422])
def test_non_retryable_statuses(status: int) -> None:
    assert should_retry(status, {}) is False


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (400, "true", True),
        (401, "true", True),
        (529, "false", False),
        (429, "false", False),
        (500, "maybe", True),  # not a valid override: the status decides
        (400, "", False),
    ],
)
def test_x_should_retry_wins(status: int, header: str, expected: bool) -> None:
    assert should_retry(status, {"x-should-retry": header}) is expected


def test_x_should_retry_is_case_insensitive_on_httpx_headers() -> None:
    headers = httpx.Headers({"X-Should-Retry": "false"})
    assert should_retry(529, headers) is False


def test_spend_limit_429_is_not_retried() -> None:
    assert should_retry(429, {}, "enforced_spend_limit_reached") is False
    assert should_retry(429, {}, "some_other_code") is True
    # the server's explicit override still wins
    assert should_retry(429, {"x-should-retry": "true"}, "enforced_spend_limit_reached") is True


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "1"}, 0.001),
        ({"retry-after-ms": "250.5"}, 0.2505),
        ({"retry-after": "20"}, 20.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after": "3600"}, 3600.0),  # long waits are honoured, not capped at 60 s
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after-ms": "2000", "retry-after": "30"}, 2.0),  # ms first
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),  # bad ms falls back
        ({"retry-after-ms": "", "retry-after": "4"}, 4.0),
    ],
)
def test_server_wait(headers: dict[str, str], expected: float) -> None:
    assert server_wait(headers) == pytest.approx(expected)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"retry-after": ""},
        {"retry-after": "soon"},
        {"retry-after": "Someday, 99 Foo 2026"},
        {"retry-after": "nan"},
        {"retry-after": "inf"},
        {"retry-after-ms": "nan"},
        {"retry-after-ms": "-inf"},
    ],
)
def test_server_wait_garbage_is_none(headers: dict[str, str]) -> None:
    assert server_wait(headers) is None


def test_server_wait_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    wait = server_wait({"retry-after": format_datetime(when, usegmt=True)})
    assert wait is not None
    assert 28.0 <= wait <= 30.5


def test_server_wait_http_date_in_the_past_is_zero() -> None:
    assert server_wait({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0


def test_server_wait_reads_httpx_headers() -> None:
    headers = httpx.Headers({"Retry-After-Ms": "750"})
    assert server_wait(headers) == pytest.approx(0.75)


@pytest.mark.parametrize("attempt", range(8))
def test_backoff_bounds(attempt: int) -> None:
    ceiling = min(BACKOFF_CAP_S, BACKOFF_START_S * 2**attempt)
    samples = [backoff(attempt) for _ in range(300)]
    assert all(0.0 <= s <= ceiling for s in samples)
    # full jitter spreads over the whole range
    assert max(samples) > ceiling * 0.7
    assert min(samples) < ceiling * 0.3


def test_backoff_starts_at_half_a_second_and_caps_at_eight() -> None:
    assert (BACKOFF_START_S, BACKOFF_CAP_S) == (0.5, 8.0)
    assert max(backoff(0) for _ in range(300)) <= 0.5
    assert max(backoff(30) for _ in range(300)) <= 8.0


def test_backoff_is_fast() -> None:
    started = time.perf_counter()
    for attempt in range(1000):
        backoff(attempt % 10)
    assert time.perf_counter() - started < 0.5
