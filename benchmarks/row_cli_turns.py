"""Row 6: wall time per turn of a multi-turn conversation with the real CLI, through each library,
against the CLI driven over raw pipes. The work runs in ``_cli_turns`` in a child process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

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


def run(size: Size) -> Row:
    row = Row(6, "CLI turn overhead: the same conversation through the real CLI", "wall per turn")
    cli = _cli()
    if cli is None:
        row.notes.append(
            "skipped: no pinned CLI (set CLAUDE_UNIFIED_TEST_CLI or run `nox -s bench`)"
        )
        row.targets.append(Target("ours ≤ 1.05x raw pipes", "not run", None, "no CLI"))
        return row
    sessions, turns = size.pick(1, 3), size.pick(3, 8)
    prefix = _loopback_only()
    offline = "loopback-only network namespace" if prefix else "telemetry and updates disabled"
    with tempfile.TemporaryDirectory(prefix="claude-unified-bench-") as root:
        argv = [sys.executable, "-m", "benchmarks._cli_turns", f"--cli={cli}", f"--root={root}"]
        argv += [f"--sessions={sessions}", f"--turns={turns}", f"--offline={offline}"]
        env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8", "HOME": root}
        if "PYTHONPATH" in os.environ:  # e.g. another checkout of the package to compare
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        note(f"row 6: {sessions} session(s) x {turns} turns per contender ({offline})")
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
    result = json.loads(done.stdout.strip().splitlines()[-1])
    times: dict[str, list[list[float]]] = result["times"]
    # the first turn of each session also pays the CLI's start of session: reported apart
    later = {name: [t for run in runs for t in run[1:]] for name, runs in times.items() if runs}
    first = {name: [run[0] for run in runs] for name, runs in times.items() if runs}
    raw = median(later["raw"])
    labels = {
        "raw": "the CLI alone: raw pipes, our argv",
        "ours": "ours: Conversation.send (CliBackend)",
        "claude_agent_sdk": "claude-agent-sdk: ClaudeSDKClient query + receive_response",
        "claudestream": "claudestream: AsyncSession.send",
    }
    for name, values in later.items():
        row.lines.append(
            Line(
                labels[name],
                f"{median(values) * 1e3:.0f} ms",
                f"{median(values) / raw:.3f}x",
                f"{len(values)} turns; start + first turn {median(first[name]) * 1e3:.0f} ms",
            )
        )
    row.notes.append(
        "turns 2 and later of each session (median); ratio: ÷ the CLI alone. The peers start the "
        "CLI with their own flags, so their CLI does slightly different work"
    )
    row.notes.append(f"offline: {result['offline']}; CLI {cli}")
    row.notes += [f"{name}: {why}" for name, why in result["skipped"].items()]
    if "ours" in later:
        factor = median(later["ours"]) / raw
        row.targets.append(Target("ours ≤ 1.05x raw pipes", f"{factor:.3f}x", factor <= 1.05))
    return row
