"""Row 6: wall time per turn of a multi-turn conversation with the real CLI, through each library,
against the CLI driven over raw pipes. The work runs in ``_cli_turns`` in a child process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from claude_unified.backends._discovery import cli_version

from ._harness import Line, Row, Size, Target, median, note

ROOT = Path(__file__).resolve().parent.parent
PINNED = (
    Path.home() / ".cache" / "claude-unified" / "cli-2.1.330" / "node_modules" / ".bin" / "claude"
)


def _cli() -> str | None:
    named = os.environ.get("CLAUDE_UNIFIED_TEST_CLI", "").strip()
    if named and Path(named).exists():
        return named
    return str(PINNED) if PINNED.exists() else None


REPLAYED = {
    "raw": "a recorded CLI turn, replayed: raw pipes",
    "ours": "a recorded CLI turn, replayed: ours, Conversation.send",
}


def _loopback_only() -> list[str] | None:
    """A prefix that runs a command in a new network namespace with only loopback up."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return None
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        return None
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


def run_worker(cli: str, sessions: int, turns: int, *extra: str) -> tuple[dict[str, Any], str]:
    """Run ``_cli_turns`` in a child process (in a loopback-only network namespace where the
    machine allows): its result, and the CLI's version."""
    prefix = _loopback_only()
    offline = "loopback-only network namespace" if prefix else "telemetry and updates disabled"
    with tempfile.TemporaryDirectory(prefix="claude-unified-bench-") as root:
        argv = [sys.executable, "-m", "benchmarks._cli_turns", f"--cli={cli}", f"--root={root}"]
        argv += [f"--sessions={sessions}", f"--turns={turns}", f"--offline={offline}", *extra]
        env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8", "HOME": root}
        if "PYTHONPATH" in os.environ:  # e.g. another checkout of the package to compare
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        version = ".".join(map(str, anyio.run(partial(cli_version, cli, env=env))))
        note(f"{sessions} session(s) x {turns} turns per contender ({offline}) {' '.join(extra)}")
        done = subprocess.run(
            (prefix or []) + argv,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the CLI worker failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result, version


def later(runs: list[list[float]]) -> list[float]:
    """Turns 2 and later of every session (the first one includes starting the process)."""
    return [t for run in runs for t in run[1:]]


def paired(runs: list[list[float]], base: list[list[float]]) -> list[float]:
    """Each turn ÷ the ``base`` turn of the same session and number, run moments apart."""
    return [
        t / r
        for run, one in zip(runs, base, strict=True)
        for t, r in zip(run[1:], one[1:], strict=True)
    ]


def run(size: Size) -> Row:
    row = Row(6, "CLI turn overhead: the same conversation through the real CLI", "wall per turn")
    cli = _cli()
    if cli is None:
        row.notes.append(
            "skipped: no pinned CLI (set CLAUDE_UNIFIED_TEST_CLI or run `nox -s bench`)"
        )
        row.targets.append(Target("ours ≤ 1.05x raw pipes", "not run", None, "no CLI"))
        return row
    sessions, turns = size.pick(1, 10), size.pick(4, 10)
    result, version = run_worker(cli, sessions, turns)
    times: dict[str, list[list[float]]] = {k: v for k, v in result["times"].items() if v}
    raw = times["raw"]

    labels = {
        "raw": "the CLI alone: raw pipes, our argv and user line",
        "ours": "ours: Conversation.send (CliBackend)",
        "claude_agent_sdk": "claude-agent-sdk: ClaudeSDKClient query + receive_response",
        "claudestream": "claudestream: AsyncSession.send",
    }
    cpu: dict[str, list[list[float]]] = result["cpu"]
    add_lines(row, labels, times, cpu, digits=3)
    row.notes.append(
        "turns 2 and later (median); client CPU: this process's CPU during the turn; ratio: "
        "the median of each turn ÷ the raw-pipes turn of the "
        "same number in the same round (all sessions are open at once and take turns). The peers "
        "start the CLI with flags of their own, so their CLI does slightly different work"
    )
    row.notes.append(f"offline: {result['offline']}; CLI {version} (the pinned one)")
    row.notes += [f"{name}: {why}" for name, why in result["skipped"].items()]
    if "ours" in times:
        row.notes.append(spread(times["ours"], raw))
        factor = median(paired(times["ours"], raw))
        extra = median(later(cpu["ours"])) - median(later(cpu["raw"]))
        own = extra / median(later(times["raw"]))
        row.targets.append(
            Target(
                "ours ≤ 1.05x raw pipes",
                f"{factor:.3f}x",
                factor <= 1.05,
                "separate CLI processes differ by more than that from turn to turn; the CPU "
                f"ours adds per turn over raw pipes is {own * 100:.1f}% of a raw turn",
            )
        )
    goal = "ours ≤ 1.02x raw pipes, a recorded CLI turn replayed"
    replayed(row, cli, (sessions, turns), REPLAYED, goal)
    return row


def replayed(
    row: Row,
    cli: str,
    size: tuple[int, int],
    labels: dict[str, str],
    goal: str,
    *,
    base: str = "raw",
    extra: tuple[str, ...] = (),
) -> None:
    """Turns of the real CLI recorded, and the one of median length replayed at its pace by a
    stand-in for the CLI (``_replay_cli``) to every contender (``labels``), so that every turn
    gets the same bytes at the same times: what a client adds over ``base``, without the CLI's
    own variation from turn to turn."""
    result, _version = run_worker(cli, *size, *extra, "--replay")
    times: dict[str, list[list[float]]] = {k: v for k, v in result["times"].items() if v}
    add_lines(row, labels, times, result["cpu"], digits=4, base=base)
    row.notes.append(
        f"replayed: one turn of the pinned CLI ({result['recorded_s'] * 1e3:.0f} ms, the median "
        f"of {result['recorded_of']} recorded over raw pipes) written back by a small program "
        "that stands in for the CLI, each read of the recording at its recorded offset (after "
        "a request to the client, from the client's answer); the same pairing"
    )
    row.notes += [f"replayed, {name}: {why}" for name, why in result["skipped"].items()]
    if "ours" in times and base in times:
        factor = median(paired(times["ours"], times[base]))
        added = (median(later(times["ours"])) - median(later(times[base]))) * 1e3
        row.targets.append(
            Target(goal, f"{factor:.4f}x ({added:+.2f} ms per turn)", factor <= 1.02)
        )


def spread(runs: list[list[float]], base: list[list[float]]) -> str:
    """How far the real CLI's pace moves the ratio: ours ÷ ``base`` round by round."""
    rounds = sorted(median(paired([run], [one])) for run, one in zip(runs, base, strict=True))
    return (
        f"the real CLI's pace varies from turn to turn: ours ÷ raw pipes, round by round, runs "
        f"from {rounds[0]:.3f}x to {rounds[-1]:.3f}x in this run (middle half "
        f"{rounds[len(rounds) // 4]:.3f}x to {rounds[(3 * len(rounds)) // 4]:.3f}x), more than "
        "a client adds; the replayed turns (the last two lines) take that away"
    )


def add_lines(
    row: Row,
    labels: dict[str, str],
    times: dict[str, list[list[float]]],
    cpu: dict[str, list[list[float]]],
    *,
    digits: int,
    base: str = "raw",
) -> None:
    """A line per contender: its median later turn, and its turns paired with ``base``'s."""
    for name, runs in times.items():
        first = median([run[0] for run in runs])
        row.lines.append(
            Line(
                labels[name],
                f"{median(later(runs)) * 1e3:.{digits - 2}f} ms",
                f"{median(paired(runs, times[base])):.{digits}f}x",
                f"{len(later(runs))} turns; client CPU {median(later(cpu[name])) * 1e3:.2f} ms "
                f"per turn; start + first turn {first * 1e3:.0f} ms",
            )
        )
