"""The Message Batches API path over real loopback HTTP: ``run_via_batches_api`` and
``BatchesClient`` against FakeAnthropicServer, and the official SDK against the same fake."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import anyio
import httpx
import msgspec
import pytest
from anthropic.types.messages import MessageBatchSucceededResult

from claude_unified._config import Config
from claude_unified._events import Usage
from claude_unified._exceptions import NotFoundError
from claude_unified._pricing import cost_usd
from claude_unified.batch._api_plan import build_request, custom_id_for
from claude_unified.batch._api_run import BatchesClient, RequestCounts, run_via_batches_api
from claude_unified.batch._api_wire import BatchRequest, SucceededResult
from claude_unified.batch._types import BatchItem, BatchResult
from claude_unified.testing import FakeAnthropicServer, RecordedRequest, error, reply

MODEL = "claude-sonnet-5-5"
CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")


@pytest.fixture
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as fake:
        yield fake


@pytest.fixture
def config(server: FakeAnthropicServer) -> Config:
    return Config(api_key="sk-ant-test", base_url=server.url, model=MODEL, max_retries=0)


@pytest.fixture
async def client(config: Config) -> AsyncIterator[BatchesClient]:
    async with BatchesClient(config) as batches:
        yield batches


async def run(work: list[BatchItem], config: Config, **options: Any) -> list[BatchResult]:
    """``run_via_batches_api`` polling every few milliseconds; a job that never ends fails."""
    with anyio.fail_after(10):
        return await run_via_batches_api(work, config, poll_initial=0.01, poll_max=0.04, **options)


def items(count: int, prefix: str = "job") -> list[BatchItem]:
    return [BatchItem(id=f"{prefix}-{n}", prompt=f"question {n}") for n in range(count)]


def creates(server: FakeAnthropicServer) -> list[RecordedRequest]:
    return [r for r in server.requests if (r.method, r.path) == ("POST", "/v1/messages/batches")]


def created_custom_ids(request: RecordedRequest) -> list[str]:
    assert request.json is not None
    return [entry["custom_id"] for entry in request.json["requests"]]


# --------------------------------------------------------------------------- run_via_batches_api


@pytest.mark.anyio
async def test_submit_poll_and_collect_a_mix_of_outcomes(
    server: FakeAnthropicServer, config: Config, client: BatchesClient
) -> None:
    server.on("question 1", error(400, message="prompt is too long"))
    server.on("question 3", error(529))
    server.batches.processing_s = 0.25
    seen: list[BatchResult] = []
    counts: list[RequestCounts] = []

    async def record(result: BatchResult) -> None:  # async callbacks are awaited
        seen.append(result)

    work = [*items(5), BatchItem(id="meta", prompt="tagged", user_data={"row": 7})]
    results = await run(work, config, on_result=record, progress=counts.append)

    assert [r.id for r in results] == [item.id for item in work]
    assert sorted(r.id for r in seen) == sorted(item.id for item in work)
    assert all(r.via == "batches_api" for r in results)
    for n in (0, 2, 4):
        assert results[n].text == f"ECHO: question {n}"
        assert not results[n].is_error
        assert results[n].usage.output_tokens >= 1
    assert results[5].user_data == {"row": 7}
    bad, overloaded = results[1], results[3]
    assert bad.is_error
    assert bad.error is not None
    assert (bad.error.kind, bad.error.status_code) == ("api_status", 400)
    assert "prompt is too long" in bad.error.message
    assert overloaded.error is not None
    assert overloaded.error.status_code == 529
    # progress: requests leave "processing" over time, and the last report is the final tally
    assert counts[0].processing > 0
    assert [c.processing for c in counts] == sorted((c.processing for c in counts), reverse=True)
    assert counts[-1] == RequestCounts(succeeded=4, errored=2)
    assert len(creates(server)) == 1


@pytest.mark.anyio
async def test_results_are_matched_by_custom_id_not_by_order(
    server: FakeAnthropicServer, config: Config, client: BatchesClient
) -> None:
    work = items(12)
    results = await run(work, config)
    assert [r.text for r in results] == [f"ECHO: question {n}" for n in range(12)]

    (batch_id,) = server.batches.ids
    served = [line.custom_id async for line in client.results(batch_id)]
    assert sorted(served) == sorted(item.id for item in work)
    assert served != [item.id for item in work]  # the fake never serves them in input order


@pytest.mark.anyio
async def test_splits_into_several_batches_past_the_limits(
    server: FakeAnthropicServer, config: Config
) -> None:
    work = items(5)
    results = await run(work, config, max_requests=2)
    assert [len(created_custom_ids(r)) for r in creates(server)] == [2, 2, 1]
    assert [r.text for r in results] == [f"ECHO: question {n}" for n in range(5)]

    server.reset()
    one = len(msgspec.json.encode(build_request(work[0], "job-0", config)))
    results = await run(work, config, max_bytes=2 * one + 40)
    sizes = [len(r.body) for r in creates(server)]
    assert len(sizes) == 3
    assert max(sizes) <= 2 * one + 40
    assert not any(r.is_error for r in results)


@pytest.mark.anyio
async def test_resumes_from_the_state_file_without_submitting_again(
    server: FakeAnthropicServer, config: Config, tmp_path: Path
) -> None:
    state = tmp_path / "job.state.json"
    server.batches.processing_s = None  # held until finish()
    work = items(3)

    with anyio.CancelScope() as scope:  # the "restart": the first run dies while polling
        await run(work, config, state_path=state, progress=lambda _: scope.cancel())
    assert scope.cancelled_caught
    saved = msgspec.json.decode(state.read_bytes())
    assert [b["id"] for b in saved["batches"]] == server.batches.ids
    assert saved["batches"][0]["custom_ids"] == ["job-0", "job-1", "job-2"]

    server.batches.finish()
    results = await run(work, config, state_path=state)
    assert [r.text for r in results] == [f"ECHO: question {n}" for n in range(3)]
    assert len(creates(server)) == 1
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary file behind


@pytest.mark.anyio
async def test_resume_submits_only_the_items_no_recorded_batch_holds(
    server: FakeAnthropicServer, config: Config, client: BatchesClient, tmp_path: Path
) -> None:
    work = items(4)
    first = await client.create([build_request(item, item.id, config) for item in work[:2]])
    state = tmp_path / "state.json"
    state.write_bytes(
        msgspec.json.encode({"batches": [{"id": first.id, "custom_ids": ["job-0", "job-1"]}]})
    )
    results = await run(work, config, state_path=state)
    assert [r.text for r in results] == [f"ECHO: question {n}" for n in range(4)]
    assert [created_custom_ids(r) for r in creates(server)] == [
        ["job-0", "job-1"],
        ["job-2", "job-3"],
    ]
    saved = msgspec.json.decode(state.read_bytes())
    assert [b["id"] for b in saved["batches"]] == server.batches.ids


@pytest.mark.anyio
async def test_cancel_event_cancels_open_batches_and_keeps_what_finished(
    server: FakeAnthropicServer, config: Config
) -> None:
    server.batches.processing_s = None
    cancel = anyio.Event()

    def halfway(counts: RequestCounts) -> None:
        if not cancel.is_set():
            server.batches.finish(limit=2)  # two requests finish, then the user cancels
            cancel.set()

    results = await run(items(5), config, progress=halfway, cancel_event=cancel)
    assert [r.is_error for r in results] == [False, False, True, True, True]
    assert results[0].text == "ECHO: question 0"
    assert {r.error.kind for r in results if r.error} == {"canceled"}
    cancels = [r for r in server.requests if r.path.endswith("/cancel")]
    assert len(cancels) == 1


@pytest.mark.anyio
async def test_a_cancel_before_submission_submits_nothing(
    server: FakeAnthropicServer, config: Config
) -> None:
    cancel = anyio.Event()
    cancel.set()
    results = await run(items(2), config, cancel_event=cancel)
    assert not creates(server)
    assert [r.error.kind for r in results if r.error] == ["canceled", "canceled"]


@pytest.mark.anyio
async def test_expired_requests_are_errors_of_kind_expired(
    server: FakeAnthropicServer, config: Config
) -> None:
    server.batches.processing_s = None
    results = await run(items(2), config, progress=lambda _: server.batches.expire())
    assert [r.error.kind for r in results if r.error] == ["expired", "expired"]


@pytest.mark.anyio
async def test_cost_is_half_the_list_price(server: FakeAnthropicServer, config: Config) -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=100_000, cache_read_input_tokens=200_000)
    server.queue(reply("priced", usage=usage), reply("priced", usage=usage))
    results = await run(
        [BatchItem(id="a", prompt="x"), BatchItem(id="b", prompt="y", model="claude-haiku-4-5")],
        config,
    )
    # sonnet-5-5: 2 in + 0.10 cache read + 10 out per million tokens; haiku-4-5: 1, 0.10, 5
    assert results[0].cost_usd == pytest.approx((2.0 + 0.02 + 1.0) / 2)
    assert results[1].cost_usd == pytest.approx((1.0 + 0.02 + 0.5) / 2)
    list_price = cost_usd(MODEL, usage)
    assert list_price is not None
    assert results[0].cost_usd == pytest.approx(list_price / 2)
    got = results[0].usage
    assert (got.input_tokens, got.output_tokens, got.cache_read_input_tokens) == (
        1_000_000,
        100_000,
        200_000,
    )


@pytest.mark.anyio
async def test_ids_the_api_would_reject_round_trip(
    server: FakeAnthropicServer, config: Config
) -> None:
    odd = ["file one.txt", "ünïcödé", "x" * 100, "", "a/b", "ok_id-1"]
    work = [BatchItem(id=item_id, prompt=f"prompt {n}") for n, item_id in enumerate(odd)]
    results = await run(work, config)
    assert [r.id for r in results] == odd
    assert [r.text for r in results] == [f"ECHO: prompt {n}" for n in range(len(odd))]
    sent = created_custom_ids(creates(server)[0])
    assert all(CUSTOM_ID.fullmatch(custom_id) for custom_id in sent)
    assert sent == [custom_id_for(item_id) for item_id in odd]
    assert sent[-1] == "ok_id-1"


@pytest.mark.anyio
async def test_per_item_overrides_reach_the_request(
    server: FakeAnthropicServer, config: Config
) -> None:
    work = [
        BatchItem(id="plain", prompt="p"),
        BatchItem(id="own", prompt="q", system="be brief", model="claude-haiku-4-5", max_tokens=9),
        BatchItem(id="tagged", prompt="r", metadata={"user_id": "u-1"}, user_data={"row": 3}),
    ]
    await run(work, config.replace(system_prompt="default system"))
    assert creates(server)[0].json is not None
    plain, own, tagged = (r["params"] for r in creates(server)[0].json["requests"])  # type: ignore[index]
    assert (plain["model"], plain["max_tokens"]) == (MODEL, 4096)
    assert plain["system"][0]["text"] == "default system"
    assert (own["model"], own["max_tokens"], own["system"][0]["text"]) == (
        "claude-haiku-4-5",
        9,
        "be brief",
    )
    assert "stream" not in plain
    assert tagged["metadata"] == {"user_id": "u-1"}
    assert "metadata" not in plain
    assert "row" not in str(tagged)  # user_data stays with the caller


# --------------------------------------------------------------------------- BatchesClient


@pytest.mark.anyio
async def test_client_lifecycle_list_cancel_and_delete(
    server: FakeAnthropicServer, config: Config, client: BatchesClient
) -> None:
    server.batches.processing_s = None
    made = [
        await client.create([BatchRequest("r", build_request(item, "r", config).params)])
        for item in items(3)
    ]
    assert [b.processing_status for b in made] == ["in_progress"] * 3
    assert made[0].request_counts == RequestCounts(processing=1)
    assert made[0].results_url is None

    page = await client.list(limit=2)
    assert [b.id for b in page.data] == [made[2].id, made[1].id]  # newest first
    assert page.has_more
    rest = await client.list(limit=2, after_id=page.last_id)
    assert [b.id for b in rest.data] == [made[0].id]
    assert not rest.has_more
    newer = await client.list(before_id=made[0].id)
    assert [b.id for b in newer.data] == [made[2].id, made[1].id]

    with pytest.raises(NotFoundError):
        [line async for line in client.results(made[0].id)]  # not ended yet
    canceling = await client.cancel(made[0].id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None
    ended = await client.retrieve(made[0].id)
    assert ended.ended
    assert ended.request_counts == RequestCounts(canceled=1)
    assert ended.results_url == f"{server.url}/v1/messages/batches/{made[0].id}/results"
    deleted = await client.delete(made[0].id)
    assert (deleted.id, deleted.type) == (made[0].id, "message_batch_deleted")
    with pytest.raises(NotFoundError):
        await client.retrieve(made[0].id)
    server.batches.finish()
    lines = [line async for line in client.results(made[1].id)]
    assert isinstance(lines[0].result, SucceededResult)
    assert lines[0].result.message.content


@pytest.mark.anyio
async def test_client_sends_the_api_headers(
    server: FakeAnthropicServer, config: Config, client: BatchesClient
) -> None:
    await client.list()
    headers = server.requests[-1].headers
    assert headers["x-api-key"] == "sk-ant-test"
    assert headers["anthropic-version"] == config.anthropic_version
    assert headers["user-agent"].startswith("claude-unified/")


# --------------------------------------------------------------------------- the fake's validation


@pytest.mark.parametrize(
    ("requests", "complaint"),
    [
        ([], "1 to 3 requests"),
        ([{"custom_id": "a"}, {"custom_id": "b"}, {"custom_id": "c"}, {"custom_id": "d"}], "got 4"),
        ([{"custom_id": "a"}, {"custom_id": "a"}], "not unique"),
        ([{"custom_id": "has space"}], "must match"),
        ([{"custom_id": "x" * 65}], "must match"),
        ([{"custom_id": "a", "params": []}], "params"),
    ],
)
def test_the_fake_rejects_invalid_creates(
    server: FakeAnthropicServer, requests: list[dict[str, Any]], complaint: str
) -> None:
    server.batches.max_requests = 3
    params = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    body = {"requests": [{"params": params, **r} for r in requests]}
    with httpx.Client(base_url=server.url) as http:
        response = http.post("/v1/messages/batches", json=body)
    assert response.status_code == 400
    answer = response.json()
    assert answer["type"] == "error"
    assert answer["error"]["type"] == "invalid_request_error"
    assert complaint in answer["error"]["message"]
    assert not server.batches.ids


def test_the_fake_refuses_to_delete_an_open_batch(server: FakeAnthropicServer) -> None:
    server.batches.processing_s = None
    params = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=server.url) as http:
        created = http.post(
            "/v1/messages/batches", json={"requests": [{"custom_id": "a", "params": params}]}
        ).json()
        assert http.delete(f"/v1/messages/batches/{created['id']}").status_code == 400
        assert http.get("/v1/messages/batches/msgbatch_nope").status_code == 404
        assert http.get("/v1/messages/batches?limit=0").status_code == 400


# --------------------------------------------------------------------------- the official SDK


def test_official_sdk_creates_retrieves_and_reads_results(server: FakeAnthropicServer) -> None:
    server.on("fail me", error(400, message="bad params"))
    sdk = anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test", max_retries=0)

    def params(text: str) -> Any:
        return {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": text}]}

    batch = sdk.messages.batches.create(
        requests=[
            {"custom_id": "ok", "params": params("hi")},
            {"custom_id": "ko", "params": params("fail me")},
        ]
    )
    assert batch.type == "message_batch"
    assert batch.request_counts.processing + batch.request_counts.succeeded == 2

    retrieved = sdk.messages.batches.retrieve(batch.id)
    assert retrieved.processing_status == "ended"
    assert retrieved.request_counts.succeeded == 1
    assert retrieved.request_counts.errored == 1
    assert retrieved.ended_at is not None
    assert retrieved.expires_at > retrieved.created_at

    results = {line.custom_id: line.result for line in sdk.messages.batches.results(batch.id)}
    ok = results["ok"]
    assert isinstance(ok, MessageBatchSucceededResult)
    assert ok.message.content[0].type == "text"
    assert ok.message.content[0].text == "ECHO: hi"
    ko = results["ko"]
    assert ko.type == "errored"
    assert ko.error.error.type == "invalid_request_error"

    listed = sdk.messages.batches.list(limit=10)
    assert [b.id for b in listed.data] == [batch.id]
    deleted = sdk.messages.batches.delete(batch.id)
    assert deleted.type == "message_batch_deleted"
