"""Row 4: import time of the package against its peers, each in fresh interpreters."""

from __future__ import annotations

import compileall
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from ._harness import Line, Row, Size, Target, median, note

FLOOR = "msgspec, anyio, typing_extensions"
MODULES = {
    "bare interpreter": "",
    "floor: msgspec + anyio + typing_extensions": FLOOR,
    "ours: import claude_unified": "claude_unified",
    "ours, first use: from claude_unified import Config, Conversation": (
        "claude_unified; from claude_unified import Config, Conversation"
    ),
    "anthropic": "anthropic",
    "claude-agent-sdk: claude_agent_sdk": "claude_agent_sdk",
    "claudestream": "claudestream",
    "httpx (the API backend loads it on first use)": "httpx",
    "pytest (what every test run loads)": "pytest",
    "pytest + our pytest plugin": "pytest, claude_unified.testing.pytest_plugin",
}
_HEAVY = ("httpx", "httpx_sse", "h2", "anthropic", "pydantic", "subprocess")


def _time_import(module: str) -> float:
    """CPU seconds (user + system) of a fresh interpreter that imports ``module``: steadier than
    wall time on a shared machine, and the same thing for an import (nothing waits)."""
    return _time_process([sys.executable, "-c", f"import {module}" if module else "pass"])


def _time_process(argv: list[str]) -> float:
    """CPU seconds (user + system) of one run of ``argv``, its output discarded."""
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{argv!r} failed")
    return usage.ru_utime + usage.ru_stime


# the command against the library doing the same: what the command itself adds
_DEMO_SCRIPT = (
    "import anyio; from claude_unified._command._demo import run_demo; "
    "anyio.run(run_demo, lambda event: None)"
)
# the least a help screen made by argparse costs: a parser with nine empty subcommands, printed
_ARGPARSE_HELP = (
    "import argparse, claude_unified; parser = argparse.ArgumentParser(prog='p'); "
    "sub = parser.add_subparsers(dest='c', metavar='C'); "
    "[sub.add_parser(f'c{i}', help='h') for i in range(9)]; parser.format_help()"
)
_ARGPARSE_LINE = "the floor and argparse's least help screen (nine empty subcommands)"


_SCRIPT = Path(sys.executable).with_name("claude-unified")
"""The installed console script, which is what a user runs (``python -m`` adds runpy's imports
on top of it)."""


def _command(*args: str) -> list[str]:
    if _SCRIPT.exists():
        return [str(_SCRIPT), *args]
    return [sys.executable, "-m", "claude_unified", *args]


COMMANDS = {
    "`claude-unified --help`": _command("--help"),
    "floor: `python -c 'import claude_unified'`": [sys.executable, "-c", "import claude_unified"],
    _ARGPARSE_LINE: [
        sys.executable,
        "-c",
        _ARGPARSE_HELP,
    ],
    "`claude-unified demo`": _command("demo"),
    "floor: the demo's conversation from a script": [sys.executable, "-c", _DEMO_SCRIPT],
}


def _command_lines(row: Row, repeats: int) -> None:
    """The command's own cost: process CPU against a floor doing the same without it."""
    times: dict[str, list[float]] = {label: [] for label in COMMANDS}
    for argv in COMMANDS.values():  # warm the caches first
        _time_process(argv)
    for _ in range(repeats):
        for label, argv in COMMANDS.items():
            times[label].append(_time_process(argv))
    mid = {label: median(values) for label, values in times.items()}
    how = (
        "the installed console script"
        if _SCRIPT.exists()
        else "`python -m claude_unified` (no console script next to this interpreter)"
    )
    row.notes.append(f"the command runs as {how}; its ratios: median of per-round ratios")
    pairs = (
        ("`claude-unified --help`", "floor: `python -c 'import claude_unified'`"),
        ("`claude-unified demo`", "floor: the demo's conversation from a script"),
    )
    for ours, floor in pairs:
        shown = (floor, _ARGPARSE_LINE, ours) if "help" in ours else (floor, ours)
        for label in shown:
            row.lines.append(
                Line(
                    label,
                    f"{mid[label] * 1e3:.1f} ms",
                    f"{_paired_ratio(times[label], times[floor]):.2f}x",
                    f"min {min(times[label]) * 1e3:.1f} ms (whole process)",
                )
            )
        # ratios paired within each round (the contenders run in turn): load changes cancel out
        factor = _paired_ratio(times[ours], times[floor])
        argparse_alone = _paired_ratio(times[_ARGPARSE_LINE], times[floor])
        why = ""
        if "help" in ours and argparse_alone > 1.2:
            why = (
                "out of reach with argparse: its least help screen alone makes "
                f"{argparse_alone:.2f}x"
            )
        row.targets.append(Target(f"{ours} ≤ 1.2x its floor", f"{factor:.2f}x", factor <= 1.2, why))


def _paired_ratio(values: list[float], floors: list[float]) -> float:
    return median([v / f for v, f in zip(values, floors, strict=True)])


def _available(module: str) -> bool:
    if not module:
        return True
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, check=False
    )
    return done.returncode == 0


def _loaded_by_us() -> tuple[list[str], int]:
    """Which heavy modules ``import claude_unified`` pulls in, and how many modules in all."""
    probe = (
        "import sys; before = set(sys.modules); import claude_unified; "
        f"print(','.join(m for m in {_HEAVY!r} if m in sys.modules)); "
        "print(len(set(sys.modules) - before))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    heavy, count = out.stdout.splitlines()
    return [m for m in heavy.split(",") if m], int(count)


def _compile_ours() -> None:
    """Write our bytecode cache first (installed peers had theirs written by pip), even where
    PYTHONDONTWRITEBYTECODE is set: otherwise every timed import would compile from source."""
    spec = importlib.util.find_spec("claude_unified")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            compileall.compile_dir(folder, quiet=1)


def run(size: Size) -> Row:
    repeats = size.pick(3, 15)
    modules = {label: mod for label, mod in MODULES.items() if _available(mod)}
    missing = [label for label in MODULES if label not in modules]
    _compile_ours()
    for module in modules.values():  # warm the file system cache before timing
        _time_import(module)
    note(f"row 4: {len(modules)} imports, {repeats} fresh interpreters each")
    times: dict[str, list[float]] = {label: [] for label in modules}
    for _ in range(repeats):
        for label, module in modules.items():
            times[label].append(_time_import(module))
    bare = times["bare interpreter"]
    # an import's cost is its interpreter's run minus a bare interpreter's run, taken at the
    # same point of the round-robin, so load changes on the machine cancel out
    cost = {
        label: sorted(t - b for t, b in zip(values, bare, strict=True))
        for label, values in times.items()
        if label != "bare interpreter"
    }
    floor = median(cost["floor: msgspec + anyio + typing_extensions"])
    row = Row(4, "Import time: CPU of a fresh interpreter per import", "median import cost")
    bare_ms = f"{median(bare) * 1e3:.1f} ms"
    row.lines.append(Line("bare interpreter (`python -c pass`)", bare_ms, "", "subtracted"))
    for label, values in cost.items():
        mid = median(values)
        row.lines.append(
            Line(
                label,
                f"{mid * 1e3:.1f} ms",
                f"{(mid - floor) * 1e3:+.1f} ms",
                f"min {values[0] * 1e3:.1f} ms",
            )
        )
    _command_lines(row, repeats)
    heavy, count = _loaded_by_us()
    row.notes.append("ratio column: difference from the floor")
    row.notes.append(
        f"`import claude_unified` loads {count} modules; of {', '.join(_HEAVY)} it loads: "
        + (", ".join(heavy) or "none")
    )
    row.notes += [f"{label}: not installed" for label in missing]
    ours = median(cost["ours: import claude_unified"])
    first_use = median(cost["ours, first use: from claude_unified import Config, Conversation"])
    row.targets.append(
        Target(
            "ours ≤ floor + 20 ms",
            f"floor {floor * 1e3:.1f} ms, ours {ours * 1e3:.1f} ms ({(ours - floor) * 1e3:+.1f})",
            ours <= floor + 0.020,
        )
    )
    if "pytest + our pytest plugin" in cost:
        # paired within each round, as the bare interpreter is: load changes cancel out
        with_plugin = times["pytest + our pytest plugin"]
        plugin = median(
            [
                p - q
                for p, q in zip(
                    with_plugin, times["pytest (what every test run loads)"], strict=True
                )
            ]
        )
        row.targets.append(
            Target(
                "the pytest plugin (loaded by every pytest run) ≤ pytest + 20 ms",
                f"+{plugin * 1e3:.1f} ms over `import pytest`",
                plugin <= 0.020,
            )
        )
    row.notes.append(
        "names load their module on first use: `from claude_unified import Config, "
        f"Conversation` costs {(first_use - floor) * 1e3:+.1f} ms over the floor"
    )
    row.targets.append(
        Target(
            "`import claude_unified` does not import httpx",
            ", ".join(heavy) or "no heavy module",
            "httpx" not in heavy,
        )
    )
    return row
