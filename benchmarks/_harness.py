"""Timing helpers, result rows and the machine description shared by every benchmark."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata

PACKAGES = (
    "claude-unified",
    "anthropic",
    "claude-agent-sdk",
    "claudestream",
    "httpx",
    "httpx-sse",
    "httpx2",
    "msgspec",
    "anyio",
    "pydantic",
)


@dataclass
class Size:
    """How big a run is: ``quick`` keeps every row to a few seconds."""

    quick: bool

    def pick(self, quick: int, full: int) -> int:
        return quick if self.quick else full


@dataclass
class Line:
    """One contender's measured value in a row's table."""

    name: str
    value: str
    ratio: str = ""
    note: str = ""


@dataclass
class Target:
    """A goal from the issue, and whether this run met it (``None``: not measurable here)."""

    goal: str
    measured: str
    met: bool | None
    why: str = ""


@dataclass
class Row:
    number: int
    title: str
    unit: str
    lines: list[Line] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def markdown(self) -> str:
        out = [f"### {self.number}. {self.title}", ""]
        out += [f"| contender | {self.unit} | ratio | notes |", "|---|---:|---:|---|"]
        out += [f"| {x.name} | {x.value} | {x.ratio} | {x.note} |" for x in self.lines]
        if self.notes:
            out.append("")
            out += [f"- {note}" for note in self.notes]
        out.append("")
        return "\n".join(out)


def verdict(target: Target) -> str:
    if target.met is None:
        return "n/a"
    return "met" if target.met else "**not met**"


def summary(rows: Sequence[Row]) -> str:
    out = ["| row | target | measured | verdict |", "|---|---|---|---|"]
    for row in rows:
        for t in row.targets:
            why = f" ({t.why})" if t.why and t.met is not True else ""
            out.append(f"| {row.number} | {t.goal} | {t.measured}{why} | {verdict(t)} |")
    return "\n".join(out)


# --------------------------------------------------------------------------- statistics


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x" if reference > 0 else "—"


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} µs"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


# --------------------------------------------------------------------------- running contenders

Timed = Callable[[], float]
AsyncTimed = Callable[[], Awaitable[float]]


def interleave(contenders: dict[str, Timed], repeats: int) -> dict[str, list[float]]:
    """Run every contender ``repeats`` times, round-robin, each returning its own elapsed time
    (so setup stays out of the measurement). Garbage is collected before each run."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            gc.collect()
            times[name].append(run())
    return times


async def ainterleave(contenders: dict[str, AsyncTimed], repeats: int) -> dict[str, list[float]]:
    """``interleave`` for coroutine contenders, all on the running event loop."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            gc.collect()
            times[name].append(await run())
    return times


def clock() -> float:
    """Wall time: for runs that span threads or processes."""
    return time.perf_counter()


def cpu_clock() -> float:
    """CPU time of the calling thread: for single-threaded runs, steadier on a shared machine."""
    return time.thread_time()


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    """One line describing where the numbers come from."""
    impl = f"{platform.python_implementation()} {platform.python_version()}"
    packages = ", ".join(f"{name} {_version(name)}" for name in PACKAGES)
    return (
        f"{os.cpu_count()} cores, {_cpu_model()}, {platform.system()} {platform.release()}, "
        f"{impl}; {packages}"
    )


def note(message: str) -> None:
    """Progress on stderr, so stdout stays the table."""
    print(message, file=sys.stderr, flush=True)
