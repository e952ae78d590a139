"""Retry rules for the Messages API: which failures retry, and how long to wait."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from time import time

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 8.0


def should_retry(status: int, headers: Mapping[str, str], error_code: str | None = None) -> bool:
    """Whether a failed response may be retried. ``x-should-retry`` always wins."""
    override = headers.get("x-should-retry")
    if override in ("true", "false"):
        return override == "true"
    if status == 429 and error_code == "enforced_spend_limit_reached":
        return False
    return status in RETRY_STATUSES or status >= 500


def server_wait(headers: Mapping[str, str]) -> float | None:
    """The wait the server asked for: ``retry-after-ms``, then ``retry-after`` (seconds or date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return _finite(float(ms) / 1000)
        except ValueError:
            pass
    after = headers.get("retry-after")
    if not after:
        return None
    try:
        return _finite(float(after))
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(after).timestamp() - time(), 0.0)
    except (TypeError, ValueError):
        return None


def _finite(seconds: float) -> float:
    """A wait in seconds, clamped at 0; ``nan``/``inf`` are not waits (ValueError)."""
    if not math.isfinite(seconds):
        raise ValueError(f"not a finite wait: {seconds}")
    return max(seconds, 0.0)


def backoff(attempt: int) -> float:
    """Full-jitter exponential backoff for retry number ``attempt`` (0-based)."""
    return random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_START_S * 2**attempt))  # noqa: S311
