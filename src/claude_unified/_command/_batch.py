"""``claude-unified batch INPUT.jsonl -o OUT.jsonl``: a batch job from the command line.

Every result is appended to OUT and flushed as it completes, so a crash loses only the items in
flight; ``--resume`` then runs what OUT does not hold as successful. The first Ctrl-C stops
taking new items and lets those in flight finish; a second one aborts them. Either way the
results so far are flushed and a summary is printed.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path

import anyio

from .._config import Config
from .._exceptions import ConfigError
from .._permissions import Policy
from ..batch._io import ResultWriter, finished_ids, read_items, shard_of
from ..batch._progress import Progress, format_duration
from ..batch._run import iter_batch
from ..batch._types import BatchItem, BatchResult
from ._exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_TURN_FAILED, EXIT_USAGE

__all__ = ["batch_command"]

_PREFIX = "claude-unified: batch:"


class _Job:
    """What the job has seen so far: skipped lines, progress, and how it ended."""

    def __init__(self, skipped: int, progress: Progress, writer: ResultWriter):
        self.skipped = skipped
        self.progress = progress
        self.interrupts = 0
        self._writer = writer

    def record(self, result: BatchResult) -> None:
        self._writer.write(result)
        self.progress.add(result)

    def exit_code(self) -> int:
        if self.interrupts:
            return EXIT_INTERRUPTED
        return EXIT_TURN_FAILED if self.progress.failed or self.skipped else EXIT_OK

    def summary(self, out: str) -> list[str]:
        p = self.progress
        elapsed = p.elapsed
        rate = p.done / elapsed if elapsed > 0 else 0.0
        cost = f"${p.cost:.4f}" + ("" if p.cost_known else " (some models have no known price)")
        lines = [
            f"{_PREFIX} {p.done} of {p.total} items done: {p.done - p.failed} succeeded, "
            f"{p.failed} failed; {self.skipped} input lines skipped",
            f"{_PREFIX} {p.input_tokens:,} tokens in, {p.output_tokens:,} out; cost {cost}; "
            f"{format_duration(elapsed)} ({rate:.1f} items/s); results in {out}",
        ]
        if p.done < p.total:
            lines.append(
                f"{_PREFIX} {'aborted' if self.interrupts > 1 else 'stopped'} with "
                f"{p.total - p.done} items not done; run again with --resume to finish them"
            )
        return lines


async def batch_command(args: argparse.Namespace, config: Config, policy: Policy | None) -> int:
    """Run the batch command; returns the exit code."""
    runner = _via_batches_api() if args.via_batches_api else _run_here(args.jobs, policy)
    prepared = _prepare(args)
    if prepared is None:
        return EXIT_USAGE
    items, skipped, writer = prepared
    job = _Job(skipped, Progress(len(items), sys.stderr), writer)
    try:
        await _supervised(job, partial(runner, items, config, args.output))
    finally:
        writer.close()
        job.progress.clear()
        for line in job.summary(args.output):
            sys.stderr.write(line + "\n")
    return job.exit_code()


def _prepare(args: argparse.Namespace) -> tuple[list[BatchItem], int, ResultWriter] | None:
    """The items to run, how many input lines were skipped, and the open output; ``None``
    (after saying why) when the job cannot start."""
    try:
        items, problems = read_items(args.input)
    except (OSError, UnicodeDecodeError) as exc:
        _say(f"cannot read {args.input}: {exc}")
        return None
    for problem in problems:
        _say(f"{args.input}: {problem}")
    if args.shard is not None:
        shard, shards = args.shard
        items = [item for item in items if shard_of(item.id, shards) == shard]
    out = Path(args.output)
    if args.resume:
        done, dropped = finished_ids(out)
        items = [item for item in items if item.id not in done]
        removed = f" ({dropped} failed or unfinished lines removed from {out})" if dropped else ""
        _say(f"resuming: {len(done)} items already done, {len(items)} to run{removed}")
    elif out.exists() and out.stat().st_size > 0:
        _say(f"{out} already holds results: use --resume to continue it, or remove it")
        return None
    try:
        return items, len(problems), ResultWriter(out)
    except OSError as exc:
        _say(f"cannot write {out}: {exc}")
        return None


def _say(text: str) -> None:
    sys.stderr.write(f"{_PREFIX} {text}\n")


# --------------------------------------------------------------------------- running


class _Controls:
    """What Ctrl-C does to a runner: ``stop`` takes no new items, ``abort`` cancels the rest."""

    def __init__(self) -> None:
        self.stop: Callable[[], None] = lambda: None
        self.abort: Callable[[], None] = lambda: None


JobRunner = Callable[[_Job, _Controls], Awaitable[None]]
Runner = Callable[[Sequence[BatchItem], Config, str, _Job, _Controls], Awaitable[None]]


async def _supervised(job: _Job, runner: JobRunner) -> None:
    """Run with the progress display and Ctrl-C handling around it."""
    controls = _Controls()
    with anyio.CancelScope() as abort:
        controls.abort = abort.cancel
        async with anyio.create_task_group() as tg:
            tg.start_soon(job.progress.run)
            tg.start_soon(_watch_interrupts, job, controls)
            await runner(job, controls)
            tg.cancel_scope.cancel()


async def _watch_interrupts(job: _Job, controls: _Controls) -> None:
    with anyio.open_signal_receiver(signal.SIGINT) as signals:
        async for _ in signals:
            job.interrupts += 1
            if job.interrupts == 1:
                job.progress.note(
                    f"{_PREFIX} stopping: no new items; waiting for those in flight "
                    "(Ctrl-C again to abort them)"
                )
                controls.stop()
            else:
                job.progress.note(f"{_PREFIX} aborting the items in flight")
                controls.abort()


def _run_here(jobs: int | None, policy: Policy | None) -> Runner:
    """Items run on this machine, over the configured backend."""

    async def run(
        items: Sequence[BatchItem], config: Config, out: str, job: _Job, controls: _Controls
    ) -> None:
        async with iter_batch(items, config, concurrency=jobs, policy=policy) as batch:
            controls.stop = batch.stop
            async for result in batch:
                job.record(result)

    return run


def _via_batches_api() -> Runner:
    """Items submitted to the Message Batches API. The job's batches are recorded next to OUT,
    so a rerun (``--resume``) re-attaches to them instead of paying twice."""
    try:
        from ..batch._api_run import RequestCounts, run_via_batches_api
    except ImportError as exc:
        raise ConfigError(
            "--via-batches-api needs the Message Batches engine, which this installation "
            f"lacks ({exc})",
            field="via_batches_api",
        ) from exc

    async def run(
        items: Sequence[BatchItem], config: Config, out: str, job: _Job, controls: _Controls
    ) -> None:
        def show(counts: RequestCounts) -> None:
            job.progress.status = (
                f"server: {counts.succeeded} succeeded, {counts.errored} errored, "
                f"{counts.processing} processing"
            )

        cancel = anyio.Event()
        controls.stop = cancel.set
        await run_via_batches_api(
            items,
            config,
            on_result=job.record,
            progress=show,
            state_path=f"{out}.batches.json",
            cancel_event=cancel,
        )

    return run
