"""Batch jobs against FakeAnthropicServer (library and command line) and on the real CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import pytest

import claude_unified as cu
from claude_unified.backends._protocol import Exchange, SessionSpec
from claude_unified.backends.cli import CliBackend
from claude_unified.batch._cli_pool import CliPool
from claude_unified.batch._io import shard_of
from claude_unified.batch._types import ItemSetup
from claude_unified.testing import FakeAnthropicServer, error, reply, stall
from claude_unified.testing.pytest_plugin import CliTestEnv

_results = msgspec.json.Decoder(cu.BatchResult)


@pytest.fixture
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer(max_recorded=5000) as srv:
        yield srv


def api_config(server: FakeAnthropicServer, **overrides: Any) -> cu.Config:
    return cu.Config(backend="api", api_key="sk-ant-test", base_url=server.url, **overrides)


def prompt(i: int) -> str:
    return f"item <{i}>"


# --------------------------------------------------------------------------- library, API path


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # heavy: one event loop is enough
@pytest.mark.anyio
async def test_a_thousand_items_with_faults_are_each_accounted_for_once(
    server: FakeAnthropicServer,
) -> None:
    rate_limited = {i for i in range(1000) if i % 10 == 3}
    server_errors = {i for i in range(1000) if i % 10 == 7}
    rejected = {i for i in range(1000) if i % 50 == 0}
    for i in rate_limited:
        server.on(f"<{i}>", error(429, headers={"retry-after-ms": "5"}), times=1)
    for i in server_errors:
        server.on(f"<{i}>", error(500, headers={"retry-after-ms": "5"}), times=1)
    for i in rejected:
        server.on(f"<{i}>", error(400, message=f"bad item {i}"))
    seen: list[str] = []

    results = await cu.run_batch(
        [prompt(i) for i in range(1000)],
        api_config(server, max_retries=4),
        concurrency=32,
        on_result=lambda result: seen.append(result.id),
    )

    assert [r.id for r in results] == [str(i) for i in range(1000)]
    assert Counter(seen) == Counter(str(i) for i in range(1000))
    for i, result in enumerate(results):
        assert result.is_error == (i in rejected), result
        assert result.via == "api"
        if i in rejected:
            assert result.error is not None
            assert result.error.status_code == 400
            assert result.attempts == 1
        else:
            assert result.text == f"ECHO: {prompt(i)}"
            assert result.attempts == (2 if i in rate_limited | server_errors else 1)
            assert result.usage.output_tokens > 0
    assert len(server.requests) == 1000 + len(rate_limited) + len(server_errors)


@pytest.mark.anyio
async def test_a_429_storm_lowers_the_permitted_concurrency(server: FakeAnthropicServer) -> None:
    # the storm: the first attempt of each of the first 60 items is rate limited
    for i in range(60):
        server.on(f"<{i}>", error(429, headers={"retry-after-ms": "10"}), times=1)
    async with cu.iter_batch(
        [prompt(i) for i in range(120)], api_config(server), concurrency=16
    ) as run:
        results = [result async for result in run]

    assert len(results) == 120
    assert not [r for r in results if r.is_error]
    assert sum(r.attempts - 1 for r in results) == 60
    permits = [count for _, count in run.limiter.history]
    assert permits[0] == 16
    # halved once per window of items (16 -> 8 -> 4 -> 2 -> 1), not once per 429
    assert permits[: permits.index(1) + 1] == [16, 8, 4, 2, 1]
    # after the storm, successes grow it back slowly: about one permit per window
    assert 1 < run.limiter.permits < 16
    assert permits[-1] == run.limiter.permits


@pytest.mark.anyio
async def test_items_of_every_shape_with_overrides_and_async_callbacks(
    server: FakeAnthropicServer,
) -> None:
    seen: list[str] = []

    async def on_result(result: cu.BatchResult) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(result.id)

    items: list[Any] = [
        "a plain prompt",
        cu.BatchItem(
            id="custom",
            prompt="with overrides",
            system="Answer in French.",
            model="claude-haiku-5-5",
            max_tokens=77,
            user_data={"row": 12},
            metadata={"user_id": "u-12"},
        ),
        {"id": "mapped", "prompt": "from a mapping"},
        {"id": "broken", "prompt": 42},
        cu.BatchItem(id="custom", prompt="the same id again"),
    ]
    results = await cu.run_batch(items, api_config(server), on_result=on_result)

    assert [r.id for r in results] == ["0", "custom", "mapped", "broken", "custom"]
    assert sorted(seen) == sorted(r.id for r in results)
    plain, custom, mapped, broken, duplicate = results
    assert plain.text == "ECHO: a plain prompt"
    assert custom.text == "ECHO: with overrides"
    assert custom.user_data == {"row": 12}
    assert mapped.text == "ECHO: from a mapping"
    assert broken.error is not None
    assert broken.error.kind == "invalid_item"
    assert duplicate.error is not None
    assert duplicate.error.kind == "duplicate_id"
    assert len(server.requests) == 3
    body = next(r.json for r in server.requests if "overrides" in r.last_user_text)
    assert body is not None
    assert body["model"] == "claude-haiku-5-5"
    assert body["max_tokens"] == 77
    assert body["metadata"] == {"user_id": "u-12"}  # the request setting; user_data is not sent
    assert "row" not in str(body)
    assert body["system"][0]["text"] == "Answer in French."
    assert len(body["messages"]) == 1  # a fresh conversation: no other item's history


@pytest.mark.anyio
async def test_every_item_shares_one_http_client(
    server: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claude_unified.backends import _http

    made: list[object] = []
    original = _http.make_client

    def counting(*args: Any, **kwargs: Any) -> Any:
        client = original(*args, **kwargs)
        made.append(client)
        return client

    monkeypatch.setattr(_http, "make_client", counting)
    results = await cu.run_batch([prompt(i) for i in range(20)], api_config(server))
    assert all(not r.is_error for r in results)
    assert len(made) == 1


@pytest.mark.anyio
async def test_stop_takes_no_new_items_and_lets_those_in_flight_finish(
    server: FakeAnthropicServer,
) -> None:
    server.latency = 0.05
    results = []
    async with cu.iter_batch(
        [prompt(i) for i in range(40)], api_config(server), concurrency=3
    ) as run:
        async for result in run:
            results.append(result)
            run.stop()
    started = {r.last_user_text for r in server.requests}
    assert 3 <= len(results) < 40
    assert {prompt(int(r.id)) for r in results} == started
    assert not [r for r in results if r.is_error]


@pytest.mark.anyio
async def test_leaving_early_cancels_the_items_still_running(
    server: FakeAnthropicServer,
) -> None:
    server.on("slow", reply("never finishes").with_fault(stall(60, after_events=2)))
    items = ["quick", *(f"slow {i}" for i in range(8))]
    with anyio.fail_after(10):
        async with cu.iter_batch(items, api_config(server), concurrency=4) as run:
            async for result in run:
                assert result.text == "ECHO: quick"
                break
    await anyio.sleep(0.3)  # requests written before the cancellation may still arrive
    seen = {r.last_user_text for r in server.requests}
    # the first four, perhaps the one started when "quick" finished, and nothing after
    assert "quick" in seen
    assert seen <= set(items[:5])


@pytest.mark.anyio
async def test_an_exception_in_on_result_ends_the_batch(server: FakeAnthropicServer) -> None:
    def explode(result: cu.BatchResult) -> None:
        raise RuntimeError(f"cannot store {result.id}")

    with pytest.raises(RuntimeError, match="cannot store"):
        await cu.run_batch(["a", "b", "c"], api_config(server), on_result=explode)


def test_run_batch_sync(server: FakeAnthropicServer) -> None:
    seen: list[str] = []
    results = cu.run_batch_sync(
        ["one", "two"], api_config(server), on_result=lambda r: seen.append(r.id)
    )
    assert [r.text for r in results] == ["ECHO: one", "ECHO: two"]
    assert sorted(seen) == ["0", "1"]


@pytest.mark.anyio
async def test_other_backends_get_a_conversation_per_item(claude_function: Any) -> None:
    def model(request: Exchange) -> str:
        return f"{len(request.history)} message(s): {request.prompt}"

    claude_function(model)

    results = await cu.run_batch(["a", "b", "c"], cu.Config(backend="fake"))
    assert [r.text for r in results] == [f"1 message(s): {p}" for p in "abc"]
    assert {r.via for r in results} == {"fake"}


# --------------------------------------------------------------------------- the command


def command_env(server: FakeAnthropicServer, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_UNIFIED_"))
    }
    env.update(ANTHROPIC_API_KEY="sk-ant-test", ANTHROPIC_BASE_URL=server.url, **extra)
    return env


def batch_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "claude_unified", "batch", *args]


def run_batch_command(
    server: FakeAnthropicServer, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        batch_argv(*args),
        env=command_env(server),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_prompts(path: Path, count: int) -> None:
    path.write_text("".join(f"{prompt(i)}\n" for i in range(count)), encoding="utf-8")


def read_results(path: Path) -> list[cu.BatchResult]:
    return [_results.decode(line) for line in path.read_bytes().splitlines()]


def wait_for_lines(path: Path, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        assert proc.poll() is None, "the batch ended before it could be interrupted"
        time.sleep(0.02)
    pytest.fail(f"{path} never reached {count} lines")


def start_batch(server: FakeAnthropicServer, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        batch_argv(*args),
        env=command_env(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_job_resumes_without_losing_or_repeating_items(
    server: FakeAnthropicServer, tmp_path: Path
) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    write_prompts(source, 200)
    server.latency = 0.01
    proc = start_batch(server, str(source), "-o", str(out), "-j", "4")
    wait_for_lines(out, 25, proc)
    proc.kill()
    proc.communicate(timeout=10)
    first = out.read_bytes().count(b"\n")
    assert first < 200

    done = run_batch_command(server, str(source), "-o", str(out), "-j", "8", "--resume")
    assert done.returncode == 0, done.stderr
    assert f"resuming: {first} items already done, {200 - first} to run" in done.stderr
    results = read_results(out)
    assert Counter(r.id for r in results) == Counter(str(i) for i in range(1, 201))
    assert all(not r.is_error for r in results)
    assert {r.text for r in results} == {f"ECHO: {prompt(i)}" for i in range(200)}


def test_resume_runs_failed_items_again_and_keeps_one_line_per_id(
    server: FakeAnthropicServer, tmp_path: Path
) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    write_prompts(source, 5)
    server.on("<2>", error(400), times=1)
    failed = run_batch_command(server, str(source), "-o", str(out))
    assert failed.returncode == 1
    assert "4 succeeded, 1 failed" in failed.stderr

    again = run_batch_command(server, str(source), "-o", str(out), "--resume")
    assert again.returncode == 0, again.stderr
    assert "1 failed or unfinished lines removed" in again.stderr
    results = read_results(out)
    assert sorted(r.id for r in results) == ["1", "2", "3", "4", "5"]
    assert all(not r.is_error for r in results)


def test_an_existing_output_needs_resume(server: FakeAnthropicServer, tmp_path: Path) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    write_prompts(source, 1)
    out.write_text('{"id":"x"}\n')
    done = run_batch_command(server, str(source), "-o", str(out))
    assert done.returncode == 2
    assert "use --resume" in done.stderr
    assert out.read_text() == '{"id":"x"}\n'


def test_bad_input_lines_are_reported_and_skipped(
    server: FakeAnthropicServer, tmp_path: Path
) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(
        "\n".join(
            [
                '{"id": "a", "prompt": "fine json"}',
                '{"id": "b", "prompt": null}',
                "a plain prompt",
                '{"id": "c", "prompt": "unterminated',
                '{"id": "a", "prompt": "same id"}',
                "",
                "another plain prompt",
            ]
        )
        + "\n"
    )
    done = run_batch_command(server, str(source), "-o", str(out))
    assert done.returncode == 1  # lines were skipped
    assert f"{source}: line 2: not a valid item" in done.stderr
    assert f"{source}: line 4: not a valid item" in done.stderr
    assert f"{source}: line 5: duplicate id 'a' (first on line 1); skipped" in done.stderr
    assert "3 succeeded, 0 failed; 3 input lines skipped" in done.stderr
    results = {r.id: r.text for r in read_results(out)}
    assert results == {
        "a": "ECHO: fine json",
        "3": "ECHO: a plain prompt",
        "7": "ECHO: another plain prompt",
    }


def test_ctrl_c_lets_items_in_flight_finish_then_summarises(
    server: FakeAnthropicServer, tmp_path: Path
) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    write_prompts(source, 60)
    server.latency = 0.04
    proc = start_batch(server, str(source), "-o", str(out), "-j", "4")
    wait_for_lines(out, 4, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)

    assert proc.returncode == 130, err
    assert "stopping: no new items" in err
    assert "items not done; run again with --resume" in err
    results = read_results(out)
    started = {r.last_user_text for r in server.requests}
    assert len(results) < 60
    assert {prompt(int(r.id) - 1) for r in results} == started  # everything started finished
    assert all(not r.is_error for r in results)


def test_a_second_ctrl_c_aborts_items_in_flight(
    server: FakeAnthropicServer, tmp_path: Path
) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("fast one\nfast two\n" + "".join(f"slow {i}\n" for i in range(10)))
    server.on("slow", reply("never finishes").with_fault(stall(60, after_events=2)))
    proc = start_batch(server, str(source), "-o", str(out), "-j", "4")
    wait_for_lines(out, 2, proc)
    time.sleep(0.3)  # the slow items are in flight, stalled
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)

    assert time.monotonic() - started < 10
    assert proc.returncode == 130, err
    assert "aborting the items in flight" in err
    assert "2 of 12 items done" in err
    assert "aborted with 10 items not done" in err
    assert sorted(r.id for r in read_results(out)) == ["1", "2"]


def test_shards_partition_one_file_exactly(server: FakeAnthropicServer, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    write_prompts(source, 40)
    shards = []
    for index in range(3):
        out = tmp_path / f"out-{index}.jsonl"
        done = run_batch_command(server, str(source), "-o", str(out), "--shard", f"{index}/3")
        assert done.returncode == 0, done.stderr
        ids = [r.id for r in read_results(out)]
        assert all(shard_of(item_id, 3) == index for item_id in ids)
        shards.append(set(ids))
    assert all(shards)
    assert sum(len(s) for s in shards) == 40
    assert set().union(*shards) == {str(i) for i in range(1, 41)}


def test_bad_shard_is_a_usage_error(server: FakeAnthropicServer, tmp_path: Path) -> None:
    done = run_batch_command(server, "in.txt", "-o", str(tmp_path / "o"), "--shard", "3/3")
    assert done.returncode == 2
    assert "0 <= I < N" in done.stderr


def test_via_the_batches_api(server: FakeAnthropicServer, tmp_path: Path) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    write_prompts(source, 5)
    done = run_batch_command(server, str(source), "-o", str(out), "--via-batches-api")
    assert done.returncode == 0, done.stderr
    results = read_results(out)
    assert sorted(r.id for r in results) == ["1", "2", "3", "4", "5"]
    assert {r.via for r in results} == {"batches_api"}
    assert {r.text for r in results} == {f"ECHO: {prompt(i)}" for i in range(5)}
    assert any(r.path == "/v1/messages/batches" for r in server.requests)
    assert (tmp_path / "out.jsonl.batches.json").exists()


def test_progress_lines_when_stderr_is_not_a_terminal(
    server: FakeAnthropicServer, tmp_path: Path
) -> None:
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    write_prompts(source, 30)
    server.latency = 0.03
    done = run_batch_command(server, str(source), "-o", str(out), "-j", "2")
    assert done.returncode == 0, done.stderr
    progress = [line for line in done.stderr.splitlines() if line.startswith("batch: ")]
    assert progress, done.stderr  # the job takes more than 2 s: at least one periodic line
    assert "\r" not in done.stderr
    assert all("/30 done" in line and "ETA" in line for line in progress)
    assert "30 of 30 items done: 30 succeeded, 0 failed" in done.stderr


# --------------------------------------------------------------------------- the real CLI


@pytest.mark.cli
@pytest.mark.anyio
async def test_cli_items_reuse_warm_processes_with_a_fresh_context(
    claude_cli_env: CliTestEnv,
) -> None:
    server = claude_cli_env.server
    items: list[Any] = [f"cli item <{i}>" for i in range(5)]
    items.append(cu.BatchItem(id="haiku", prompt="cli item <haiku>", model="claude-haiku-5-5"))
    async with cu.iter_batch(items, claude_cli_env.config(), concurrency=2) as run:
        results = {r.id: r async for r in run}

    assert run.via == "cli"
    # six items on (at most) the two warm processes: no start per item
    assert 1 <= run.processes_started <= 2
    assert {r.via for r in results.values()} == {"cli"}
    for i in range(5):
        assert results[str(i)].text == f"ECHO: cli item <{i}>"
        assert not results[str(i)].is_error
        assert results[str(i)].cost_usd
    turns = [r for r in server.requests if "cli item <" in r.last_user_text]
    for request in turns:
        body = request.body.decode()
        assert body.count("cli item <") == 1  # no earlier item in its context
    haiku = next(r for r in turns if "<haiku>" in r.last_user_text)
    assert haiku.json is not None
    assert haiku.json["model"] == "claude-haiku-5-5"
    assert all(r.json and r.json["model"] != "claude-haiku-5-5" for r in turns if r is not haiku)


@pytest.fixture
def cli_pids(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pid of every CLI process the test opens, in order."""
    pids: list[int] = []
    original_open = CliBackend.open

    async def recording_open(self: CliBackend, session: SessionSpec) -> None:
        await original_open(self, session)
        assert self.pid is not None
        pids.append(self.pid)

    monkeypatch.setattr(CliBackend, "open", recording_open)
    return pids


@pytest.mark.cli
@pytest.mark.anyio
async def test_a_cli_process_that_cannot_start_fails_its_item_once(
    claude_cli_env: CliTestEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start that fails is reported to the item that asked for it, and only once: the item
    must not see the pool change before the failure is recorded and start another."""
    starts: Counter[str | None] = Counter()
    original_open = CliBackend.open

    async def open_or_fail(self: CliBackend, session: SessionSpec) -> None:
        starts[session.system_prompt] += 1
        await original_open(self, session)  # a real process, which closing it must stop
        if session.system_prompt == "doomed":
            raise cu.ProcessError("the CLI could not start (for the test)")

    monkeypatch.setattr(CliBackend, "open", open_or_fail)
    items = [
        cu.BatchItem(id="doomed", prompt="x", system="doomed"),
        cu.BatchItem(id="ok", prompt="y"),
    ]
    with anyio.fail_after(60):
        results = {
            r.id: r for r in await cu.run_batch(items, claude_cli_env.config(), concurrency=1)
        }
    doomed = results["doomed"]
    assert doomed.error is not None and doomed.error.kind == "ProcessError"
    assert "could not start" in doomed.error.message
    assert starts["doomed"] == 1
    assert results["ok"].text == "ECHO: y"


@pytest.mark.cli
@pytest.mark.anyio
async def test_cli_pool_keys_processes_by_system_prompt_and_retires_worn_ones(
    claude_cli_env: CliTestEnv, cli_pids: list[int]
) -> None:
    pids = cli_pids
    items = [
        cu.BatchItem(id="1", prompt="plain one"),
        cu.BatchItem(id="2", prompt="plain two"),
        cu.BatchItem(id="3", prompt="plain three"),
        cu.BatchItem(id="4", prompt="terse one", system="Be terse."),
    ]
    texts = []
    async with CliPool(claude_cli_env.config(), 1, ItemSetup(), max_uses=2) as pool:
        for item in items:
            await pool.turn(
                item, lambda e: texts.append(e.text) if isinstance(e, cu.Result) else None
            )
        # 1 and 2 share a process; 3 needs a new one (max_uses); 4 another system prompt
        assert pool.processes_started == 3
    assert texts == [f"ECHO: {item.prompt}" for item in items]
    assert len(pids) == 3
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # every process is gone (and reaped) once the pool is closed
    server = claude_cli_env.server
    systems = {
        r.last_user_text.rsplit("\n", 1)[-1]: r.body.decode().count("Be terse.")
        for r in server.requests
        if r.json and r.json.get("system")
    }
    assert systems["terse one"] == 1
    assert systems["plain one"] == 0


@pytest.mark.cli
@pytest.mark.anyio
async def test_cancelling_a_cli_batch_ends_turns_and_processes(
    claude_cli_env: CliTestEnv, cli_pids: list[int]
) -> None:
    pids = cli_pids
    claude_cli_env.server.on("slow", reply("late").with_fault(stall(60, after_events=2)))
    items = ["fast one", "slow a", "slow b", "slow c"]
    results = []
    with anyio.fail_after(30):
        with anyio.CancelScope() as scope:
            async with cu.iter_batch(items, claude_cli_env.config(), concurrency=2) as run:
                async for result in run:
                    results.append(result)
                    await anyio.sleep(0.5)  # the slow items are stalled mid-turn now
                    scope.cancel()
    assert [r.text for r in results] == ["ECHO: fast one"]
    assert pids
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_command_sends_item_metadata_returns_user_data_and_refuses_old_metadata(
    server: FakeAnthropicServer, tmp_path: Path
) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [
        '{"id": "new", "prompt": "tagged", "metadata": {"user_id": "u-5"}, '
        '"user_data": {"row": 5}}',
        '{"id": "old", "prompt": "echo data", "metadata": {"row": 6}}',
    ]
    source.write_text("\n".join(lines) + "\n")
    done = run_batch_command(server, str(source), "-o", str(out))
    assert done.returncode == 1  # the old-style line was skipped, saying what to do
    problem = next(line for line in done.stderr.splitlines() if "line 2:" in line)
    assert "metadata" in problem and "user_data" in problem
    (result,) = read_results(out)
    assert (result.id, result.user_data) == ("new", {"row": 5})
    (body,) = [r.json for r in server.requests if r.path == "/v1/messages"]
    assert body is not None and body["metadata"] == {"user_id": "u-5"}
