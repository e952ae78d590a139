"""Progress of a batch job on stderr: done/total, failures, tokens, cost, rate and ETA.

On a terminal it is one line redrawn in place (carriage return); otherwise (a log file, CI) a
plain line every couple of seconds while something changes, so logs stay readable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

import anyio

from ._types import BatchResult

__all__ = ["Progress", "format_duration"]

_LIVE_INTERVAL_S = 0.2
_PLAIN_INTERVAL_S = 2.0
_CLEAR_LINE = "\r\x1b[K"


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


class Progress:
    """Counts results as they arrive and shows them on ``stream``."""

    def __init__(
        self,
        total: int,
        stream: TextIO,
        *,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total = total
        self.done = 0
        self.failed = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost = 0.0
        self.cost_known = True
        self.status = ""
        self._stream = stream
        self._live = stream.isatty() if live is None else live
        self._clock = clock
        self._started = clock()
        self._shown: tuple[int, str] | None = None

    def add(self, result: BatchResult) -> None:
        self.done += 1
        self.failed += result.is_error
        usage = result.usage
        self.input_tokens += usage.prompt_tokens
        self.output_tokens += usage.output_tokens
        if result.cost_usd is not None:
            self.cost += result.cost_usd
        elif usage.prompt_tokens or usage.output_tokens:
            self.cost_known = False  # a model without a known price: the cost is a lower bound

    @property
    def elapsed(self) -> float:
        return self._clock() - self._started

    def line(self) -> str:
        """The progress line, e.g. ``512/1000 done | 3 failed | 1,234 tokens | $0.0123 |
        41.2/s | ETA 12s``; a cost ending in ``+`` leaves out models without a known price."""
        parts = [f"{self.done}/{self.total} done", f"{self.failed} failed"]
        parts.append(f"{self.input_tokens + self.output_tokens:,} tokens")
        parts.append(f"${self.cost:.4f}" + ("" if self.cost_known else "+"))
        elapsed = self.elapsed
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts.append(f"{rate:.1f}/s")
        remaining = self.total - self.done
        if remaining and rate > 0:
            parts.append(f"ETA {format_duration(remaining / rate)}")
        if self.status:
            parts.append(self.status)
        return "batch: " + " | ".join(parts)

    def draw(self) -> None:
        """Show the line: redrawn on a terminal, printed when something changed otherwise."""
        if self._live:
            self._stream.write(_CLEAR_LINE + self.line())
        elif self._shown != (self.done, self.status):
            self._stream.write(self.line() + "\n")
        else:
            return
        self._shown = (self.done, self.status)
        self._stream.flush()

    def note(self, text: str) -> None:
        """A message on its own line (above the live line, which is redrawn)."""
        prefix = _CLEAR_LINE if self._live else ""
        self._stream.write(f"{prefix}{text}\n")
        self._stream.flush()
        if self._live:
            self.draw()

    async def run(self) -> None:
        """Redraw until cancelled."""
        interval = _LIVE_INTERVAL_S if self._live else _PLAIN_INTERVAL_S
        while True:
            await anyio.sleep(interval)
            self.draw()

    def clear(self) -> None:
        """Take the live line away (what follows is printed in its place)."""
        if self._live:
            self._stream.write(_CLEAR_LINE)
            self._stream.flush()
