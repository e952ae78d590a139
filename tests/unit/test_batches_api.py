"""Message Batches without a server: custom ids, create bodies, splitting, result lines and their
conversion, the state file, and BatchesClient's retries over an in-memory transport."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from claude_unified._config import Config
from claude_unified._events import UnknownBlock
from claude_unified._exceptions import (
    BadRequestError,
    ConfigError,
    ConnectError,
    InternalServerError,
    ProtocolError,
)
from claude_unified._wire import ErrorBody, ErrorDetail
from claude_unified.batch._api_plan import (
    CustomIds,
    build_request,
    custom_id_for,
    split_requests,
)
from claude_unified.batch._api_run import BatchesClient, batch_result, run_via_batches_api
from claude_unified.batch._api_wire import (
    BatchRequest,
    CanceledResult,
    ErroredResult,
    ExpiredResult,
    SucceededResult,
    UnknownResult,
    decode_result_line,
    encode_create_body,
)
from claude_unified.batch._types import BatchItem

CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
CONFIG = Config(api_key="sk-ant-test", base_url="http://batches.test", model="claude-sonnet-5-5")
_json = msgspec.json.Decoder()

# --------------------------------------------------------------------------- custom ids


@pytest.mark.parametrize("item_id", ["a", "job-1", "UPPER_lower-09", "x" * 64])
def test_valid_ids_are_used_as_they_are(item_id: str) -> None:
    assert custom_id_for(item_id) == item_id


@pytest.mark.parametrize("item_id", ["", "has space", "ünï", "a/b", "x" * 65, "line\nbreak", "#"])
def test_other_ids_map_to_valid_deterministic_ids(item_id: str) -> None:
    mapped = custom_id_for(item_id)
    assert CUSTOM_ID.fullmatch(mapped)
    assert mapped == custom_id_for(item_id)  # a restarted job computes the same id
    assert mapped != custom_id_for(item_id + "!")


def test_mapped_ids_keep_a_readable_prefix() -> None:
    assert custom_id_for("report 2024.pdf").startswith("report_2024_pdf-")
    assert re.fullmatch(r"[0-9a-f]{16}", custom_id_for("ü"))


def test_custom_ids_round_trip_and_reject_duplicates_and_collisions() -> None:
    ids = CustomIds(["plain", "with space", "ünï"])
    for item_id in ("plain", "with space", "ünï"):
        assert ids.item_id(ids.custom_id(item_id)) == item_id
    assert ids.item_id("unknown") is None
    with pytest.raises(ValueError, match="duplicate"):
        CustomIds(["a", "a"])
    with pytest.raises(ValueError, match="same custom id"):
        CustomIds(["with space", custom_id_for("with space")])


# --------------------------------------------------------------------------- create bodies


def params_of(request: BatchRequest) -> dict[str, Any]:
    decoded: dict[str, Any] = _json.decode(request.params)
    return decoded


def test_a_request_is_a_messages_body_without_stream() -> None:
    config = CONFIG.replace(system_prompt="sys", append_system_prompt="more", max_tokens=100)
    params = params_of(build_request(BatchItem(id="a", prompt="hello"), "a", config))
    assert params["model"] == "claude-sonnet-5-5"
    assert params["max_tokens"] == 100
    assert params["messages"] == [{"role": "user", "content": "hello"}]
    assert params["system"] == [
        {"type": "text", "text": "sys\n\nmore", "cache_control": {"type": "ephemeral"}}
    ]
    assert params["cache_control"] == {"type": "ephemeral"}
    assert "stream" not in params


def test_item_fields_override_the_config() -> None:
    item = BatchItem(id="a", prompt="p", system="own", model="claude-haiku-4-5", max_tokens=7)
    config = CONFIG.replace(system_prompt="sys", prompt_caching=False)
    params = params_of(build_request(item, "a", config))
    assert (params["model"], params["max_tokens"]) == ("claude-haiku-4-5", 7)
    assert params["system"] == [{"type": "text", "text": "own"}]
    assert "cache_control" not in params


def test_without_any_model_the_default_model_is_used() -> None:
    params = params_of(
        build_request(BatchItem(id="a", prompt="p"), "a", CONFIG.replace(model=None))
    )
    assert params["model"] == "claude-sonnet-5-5"


# --------------------------------------------------------------------------- splitting


def requests(count: int, prompt_size: int = 10) -> list[BatchRequest]:
    return [
        build_request(BatchItem(id=f"r{n}", prompt="p" * prompt_size), f"r{n}", CONFIG)
        for n in range(count)
    ]


def test_splits_by_request_count() -> None:
    chunks = list(split_requests(requests(7), max_requests=3))
    assert [len(chunk) for chunk in chunks] == [3, 3, 1]
    assert [r.custom_id for chunk in chunks for r in chunk] == [f"r{n}" for n in range(7)]


def test_splits_by_encoded_size_exactly_at_the_limit() -> None:
    batch = requests(6)
    two = len(encode_create_body(batch[:2]))
    chunks = list(split_requests(batch, max_bytes=two))
    assert [len(chunk) for chunk in chunks] == [2, 2, 2]
    assert all(len(encode_create_body(chunk)) <= two for chunk in chunks)
    assert [len(c) for c in split_requests(batch, max_bytes=two - 1)] == [1] * 6


def test_a_request_too_large_for_any_batch_is_refused_up_front() -> None:
    batch = [*requests(1), *requests(1, prompt_size=5000)]
    one = len(encode_create_body(batch[:1]))
    with pytest.raises(ValueError, match="over the"):
        next(split_requests(batch, max_bytes=one + 100))
    with pytest.raises(ValueError, match="at least 1"):
        next(split_requests(batch, max_requests=0))


def test_everything_fits_one_batch_by_default() -> None:
    assert len(list(split_requests(requests(50)))) == 1
    assert list(split_requests([])) == []


# --------------------------------------------------------------------------- result lines


def line(result: dict[str, Any], custom_id: str = "job-1") -> bytes:
    return msgspec.json.encode({"custom_id": custom_id, "result": result})


MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-5-5",
    "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 9, "output_tokens": 2},
}


def test_decodes_every_documented_result_type() -> None:
    succeeded = decode_result_line(line({"type": "succeeded", "message": MESSAGE}))
    assert succeeded.custom_id == "job-1"
    assert isinstance(succeeded.result, SucceededResult)
    assert succeeded.result.message.usage.input_tokens == 9
    failure = {"type": "error", "error": {"type": "invalid_request_error", "message": "m"}}
    errored = decode_result_line(line({"type": "errored", "error": failure}))
    assert isinstance(errored.result, ErroredResult)
    assert errored.result.error.error.type == "invalid_request_error"
    assert isinstance(decode_result_line(line({"type": "canceled"})).result, CanceledResult)
    assert isinstance(decode_result_line(line({"type": "expired"})).result, ExpiredResult)


def test_unknown_result_types_and_blocks_are_kept_raw() -> None:
    unknown = decode_result_line(line({"type": "deferred", "until": "later"}))
    assert unknown.result == UnknownResult({"type": "deferred", "until": "later"})
    strange = {**MESSAGE, "content": [{"type": "hologram", "x": 1}, {"type": "text", "text": "t"}]}
    decoded = decode_result_line(line({"type": "succeeded", "message": strange}))
    assert isinstance(decoded.result, SucceededResult)
    assert decoded.result.message.content[0] == UnknownBlock(raw={"type": "hologram", "x": 1})


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        line({"type": "succeeded", "message": {"content": "not a list"}}),
        line({"type": "errored", "error": "not an object"}),
        b'{"result": {"type": "canceled"}}',
    ],
)
def test_malformed_result_lines_are_protocol_errors(data: bytes) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_result_line(data)
    assert caught.value.raw == data


def test_result_conversion() -> None:
    item = BatchItem(id="a b", prompt="p", user_data={"k": 1})
    succeeded = decode_result_line(line({"type": "succeeded", "message": MESSAGE})).result
    ok = batch_result(item, succeeded, CONFIG)
    assert (ok.id, ok.text, ok.is_error, ok.via) == ("a b", "hi", False, "batches_api")
    assert ok.user_data == {"k": 1}
    assert ok.cost_usd == pytest.approx((9 * 2 + 2 * 10) / 1e6 / 2)
    odd = batch_result(item, ErroredResult(ErrorBody(ErrorDetail("brand_new_error"))), CONFIG)
    assert odd.error is not None
    assert (odd.error.kind, odd.error.status_code) == ("api_status", 500)
    unknown = batch_result(item, UnknownResult({"type": "deferred"}), CONFIG)
    assert unknown.error is not None
    assert unknown.error.kind == "unknown_result"
    assert "deferred" in unknown.error.message


# --------------------------------------------------------------------------- state file


@pytest.mark.anyio
async def test_a_corrupt_state_file_is_a_config_error(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json")
    # a loopback URL: the client is made before the state file is read, and the test guard
    # refuses a client aimed off the machine
    config = CONFIG.replace(base_url="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="not a batch state file") as caught:
        await run_via_batches_api([BatchItem(id="a", prompt="p")], config, state_path=state)
    assert caught.value.field == "state_path"


@pytest.mark.anyio
async def test_duplicate_item_ids_are_refused_before_any_request() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        await run_via_batches_api(
            [BatchItem(id="a", prompt="p"), BatchItem(id="a", prompt="q")], CONFIG
        )


# --------------------------------------------------------------------------- client retries

BATCH = {
    "id": "msgbatch_01",
    "type": "message_batch",
    "processing_status": "ended",
    "request_counts": {"processing": 0, "succeeded": 1, "errored": 0, "canceled": 0, "expired": 0},
}
NO_WAIT = {"retry-after-ms": "0"}


def error_response(status: int, kind: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"type": "error", "error": {"type": kind, "message": "m"}, "request_id": "req_1"}
    return httpx.Response(status, json=body, headers=headers)


def client_with(
    responses: list[Callable[[httpx.Request], httpx.Response]], *, max_retries: int = 2
) -> tuple[BatchesClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses[min(len(seen), len(responses)) - 1](request)

    config = CONFIG.replace(max_retries=max_retries)
    return BatchesClient(config, transport=httpx.MockTransport(handle)), seen


@pytest.mark.anyio
async def test_client_retries_overloaded_and_rate_limited_calls() -> None:
    client, seen = client_with(
        [
            lambda _: error_response(529, "overloaded_error", NO_WAIT),
            lambda _: error_response(429, "rate_limit_error", NO_WAIT),
            lambda _: httpx.Response(200, json=BATCH),
        ]
    )
    async with client:
        batch = await client.retrieve("msgbatch_01")
    assert batch.ended
    assert len(seen) == 3
    assert seen[0].url.path == "/v1/messages/batches/msgbatch_01"
    assert seen[0].headers["x-api-key"] == "sk-ant-test"


@pytest.mark.anyio
async def test_client_errors_map_onto_the_error_tree() -> None:
    client, seen = client_with([lambda _: error_response(400, "invalid_request_error")])
    async with client:
        with pytest.raises(BadRequestError) as bad:
            await client.cancel("msgbatch_01")
    assert (bad.value.request_id, len(seen)) == ("req_1", 1)

    client, seen = client_with([lambda _: error_response(500, "api_error", NO_WAIT)])
    async with client:
        with pytest.raises(InternalServerError):
            await client.list(limit=1)
    assert len(seen) == 3  # the first try and max_retries=2 retries
    assert seen[0].url.params["limit"] == "1"


@pytest.mark.anyio
async def test_client_retries_connection_errors_then_gives_up() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, seen = client_with([refuse], max_retries=0)
    async with client:
        with pytest.raises(ConnectError):
            await client.retrieve("msgbatch_01")
    assert len(seen) == 1


class _BrokenAfter(httpx.AsyncByteStream):
    """Sends ``lines``, then fails like a dropped connection when ``fail`` is set."""

    def __init__(self, lines: list[bytes], *, fail: bool):
        self._lines = lines
        self._fail = fail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._lines:
            yield chunk
        if self._fail:
            raise httpx.ReadError("connection reset")


@pytest.mark.anyio
async def test_results_resume_after_a_dropped_stream_without_repeating_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("claude_unified.batch._api_client.backoff", lambda attempt: 0.0)
    one = line({"type": "canceled"}, "one") + b"\n"
    two = line({"type": "expired"}, "two") + b"\n"
    client, seen = client_with(
        [
            lambda _: httpx.Response(200, stream=_BrokenAfter([one], fail=True)),
            lambda _: httpx.Response(200, stream=_BrokenAfter([two, b"\n", one], fail=False)),
        ]
    )
    async with client:
        lines = [result.custom_id async for result in client.results("msgbatch_01")]
    assert lines == ["one", "two"]
    assert len(seen) == 2
    assert seen[0].url.path == "/v1/messages/batches/msgbatch_01/results"
