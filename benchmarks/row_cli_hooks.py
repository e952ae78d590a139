"""Row 9: what judging every CLI tool call costs. Each turn is one call of the CLI's Read tool,
which the CLI runs without asking anyone; the library registers one PreToolUse hook for every
tool so that its policy judges such calls too, at the price of one control round trip per call.
The work runs in ``_cli_turns --tool-turns`` in a child process, like row 6."""

from __future__ import annotations

from ._harness import Row, Size, Target, median
from .row_cli_turns import _cli, add_lines, later, paired, replayed, run_worker, spread

TARGET = "ours ≤ 1.02x raw pipes with the hook"
LABELS = {
    "raw": "raw pipes, no hook: the CLI runs the Read without asking (before)",
    "raw_hook": "raw pipes, one PreToolUse hook for every tool, answered allow",
    "ours": "ours: Conversation.send, a policy that allows Read",
}
REPLAYED = {
    "raw_hook": "a recorded tool-call turn, replayed: raw pipes with the hook",
    "ours": "a recorded tool-call turn, replayed: ours",
}


def run(size: Size) -> Row:
    row = Row(9, "CLI tool-call turns: the hook round trip per call", "wall per turn")
    cli = _cli()
    if cli is None:
        row.notes.append("skipped: no pinned CLI (set CLAUDE_UNIFIED_TEST_CLI)")
        row.targets.append(
            Target("ours ≤ 1.02x raw pipes with the hook", "not run", None, "no CLI")
        )
        return row
    sessions, turns = size.pick(1, 8), size.pick(4, 12)
    result, version = run_worker(cli, sessions, turns, "--tool-turns")
    times: dict[str, list[list[float]]] = {k: v for k, v in result["times"].items() if v}
    cpu: dict[str, list[list[float]]] = result["cpu"]
    skipped: dict[str, str] = result["skipped"]
    if skipped or set(times) != set(LABELS):
        row.notes += [f"{name}: {why}" for name, why in skipped.items()]
        row.targets.append(Target(TARGET, "not run", None))
        return row
    raw, hooked = times["raw"], times["raw_hook"]
    add_lines(row, LABELS, times, cpu, digits=3)
    differences = [
        (h - r) * 1e3
        for hook_run, raw_run in zip(hooked, raw, strict=True)
        for h, r in zip(hook_run[1:], raw_run[1:], strict=True)
    ]
    round_trip = median(differences)
    row.notes.append(
        "turns 2 and later (median); ratio: each turn ÷ the no-hook turn of the same number in the "
        "same round (all sessions are open at once and take turns); every contender's Read is "
        "checked to have run on every turn"
    )
    row.notes.append(
        f"the hook round trip: {round_trip:+.1f} ms per call (median of paired turns, with the "
        f"hook minus without); offline: {result['offline']}; CLI {version}"
    )
    row.notes.append(spread(times["ours"], hooked))
    factor = median(paired(times["ours"], hooked))
    extra = median(later(cpu["ours"])) - median(later(cpu["raw_hook"]))
    row.targets.append(
        Target(
            "the hook round trip per CLI tool call, measured",
            f"{round_trip:+.1f} ms per call",
            True,
        )
    )
    row.targets.append(
        Target(
            TARGET,
            f"{factor:.3f}x",
            factor <= 1.02,
            "separate CLI processes differ by more than that from turn to turn; the CPU ours "
            f"adds per turn over raw pipes is {extra * 1e3:.2f} ms",
        )
    )
    goal = f"{TARGET}, a recorded tool-call turn replayed"
    tools = ("--tool-turns",)
    replayed(row, cli, (sessions, turns), REPLAYED, goal, base="raw_hook", extra=tools)
    return row
