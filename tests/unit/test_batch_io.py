"""Batch job files (input parsing, sharding, resuming), item conversion and the progress line."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import msgspec
import pytest

from claude_unified import BatchItem, BatchResult, Config, ConfigError, TurnError, Usage
from claude_unified.batch._engine import item_config
from claude_unified.batch._io import (
    ResultWriter,
    finished_ids,
    parse_items,
    parse_shard,
    shard_of,
)
from claude_unified.batch._progress import Progress, format_duration
from claude_unified.batch._run import _to_item


def test_plain_lines_are_prompts_numbered_by_line() -> None:
    items, problems = parse_items(["first prompt\n", "\n", "  second, with spaces  \r\n"])
    assert problems == []
    assert items == [
        BatchItem(id="1", prompt="first prompt"),
        BatchItem(id="3", prompt="  second, with spaces  "),
    ]


def test_json_lines_are_items() -> None:
    line = (
        '{"id": "q1", "prompt": "hi", "system": "s", "model": "m", "max_tokens": 9, '
        '"user_data": {"k": 1}, "metadata": {"user_id": "u"}}'
    )
    items, problems = parse_items([line])
    assert problems == []
    assert items == [
        BatchItem(
            id="q1",
            prompt="hi",
            system="s",
            model="m",
            max_tokens=9,
            user_data={"k": 1},
            metadata={"user_id": "u"},
        )
    ]


@pytest.mark.parametrize(
    "metadata",
    ['{"row": 12}', '{"row": "12"}', '{"user_id": "u", "source": "a.csv"}', '{"user_id": 5}'],
)
def test_echo_data_in_metadata_is_refused_pointing_to_user_data(metadata: str) -> None:
    items, problems = parse_items(['{"id": "old", "prompt": "p", "metadata": ' + metadata + "}"])
    assert items == []
    assert len(problems) == 1
    assert problems[0].line == 1
    assert "metadata" in problems[0].message
    assert "user_data" in problems[0].message


@pytest.mark.parametrize("metadata", [{"row": 12}, {"user_id": "u", "extra": "x"}, {"user_id": 5}])
def test_building_an_item_with_echo_data_in_metadata_fails(metadata: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="user_data") as caught:
        BatchItem(id="x", prompt="p", metadata=metadata)
    assert caught.value.field == "metadata"


def test_an_old_mapping_item_becomes_a_failed_result_pointing_to_user_data() -> None:
    result = _to_item({"id": "old", "prompt": "p", "metadata": {"row": 12}}, 0)
    assert isinstance(result, BatchResult)
    assert result.error is not None
    assert result.error.kind == "invalid_item"
    assert "metadata" in result.error.message and "user_data" in result.error.message


def test_results_carry_user_data_through_the_output_file(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    writer = ResultWriter(out)
    writer.write(BatchResult(id="a", text="t", user_data={"row": 1}))
    writer.close()
    line = out.read_text()
    assert '"user_data":{"row":1}' in line
    assert "metadata" not in line
    assert finished_ids(out)[0] == {"a"}


def test_bad_lines_are_reported_with_their_number_and_skipped() -> None:
    lines = [
        '{"id": "a", "prompt": "ok"}',
        '{"id": "b", "prompt": 5}',
        "{not json",
        '{"id": "c"}',
        '{"id": "d", "prompt": "x", "colour": "red"}',
        "a plain prompt",
    ]
    items, problems = parse_items(lines)
    assert [item.id for item in items] == ["a", "6"]
    assert [p.line for p in problems] == [2, 3, 4, 5]
    assert "$.prompt" in problems[0].message
    assert "prompt" in problems[2].message
    assert "colour" in problems[3].message
    assert str(problems[1]).startswith("line 3: not a valid item")


def test_duplicate_ids_are_reported_and_the_later_one_skipped() -> None:
    items, problems = parse_items(['{"id": "2", "prompt": "json"}', "plain line two"])
    assert items == [BatchItem(id="2", prompt="json")]
    assert len(problems) == 1
    assert problems[0].line == 2
    assert "duplicate id '2' (first on line 1)" in problems[0].message


def test_shards_partition_ids_stably() -> None:
    ids = [f"item-{i}" for i in range(3000)]
    shards = [shard_of(item_id, 3) for item_id in ids]
    assert set(shards) == {0, 1, 2}
    assert all(800 < shards.count(s) < 1200 for s in range(3))
    assert shard_of("item-7", 3) == shard_of("item-7", 3)
    # the hash is fixed by the id alone (first 8 bytes of sha256), so machines agree
    assert shard_of("abc", 1000) == 0xBA7816BF8F01CFEA % 1000


@pytest.mark.parametrize("value", ["3/3", "-1/3", "1", "a/b", "0/0", "1/"])
def test_bad_shard_specs_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="I/N"):
        parse_shard(value)


def test_shard_spec() -> None:
    assert parse_shard("2/5") == (2, 5)


def ok(item_id: str) -> BatchResult:
    return BatchResult(id=item_id, text="fine")


def failed(item_id: str) -> BatchResult:
    return BatchResult(id=item_id, is_error=True, error=TurnError("api_status", "boom", 500))


def test_resume_keeps_successes_and_drops_failures_and_a_torn_last_line(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    writer = ResultWriter(out)
    for result in (ok("a"), failed("b"), ok("c"), ok("a")):
        writer.write(result)
    writer.close()
    with out.open("ab") as handle:
        handle.write(b'{"id":"d","te')  # a crash in the middle of a line
    done, dropped = finished_ids(out)
    assert done == {"a", "c"}
    assert dropped == 3
    decoder = msgspec.json.Decoder(BatchResult)
    assert [decoder.decode(line).id for line in out.read_bytes().splitlines()] == ["a", "c"]
    assert finished_ids(out) == ({"a", "c"}, 0)


def test_resume_of_a_missing_file_finds_nothing(tmp_path: Path) -> None:
    assert finished_ids(tmp_path / "absent.jsonl") == (set(), 0)


def test_items_from_strings_mappings_and_structs() -> None:
    assert _to_item("hello", 4) == BatchItem(id="4", prompt="hello")
    item = BatchItem(id="x", prompt="p")
    assert _to_item(item, 0) is item
    assert _to_item({"id": "m", "prompt": "q", "model": "mm"}, 1) == BatchItem(
        id="m", prompt="q", model="mm"
    )


def test_a_bad_mapping_becomes_a_failed_result() -> None:
    result = _to_item({"id": "broken", "prompt": ["not", "text"]}, 7)
    assert isinstance(result, BatchResult)
    assert result.id == "broken"
    assert result.is_error
    assert result.error is not None
    assert result.error.kind == "invalid_item"
    assert "item 7" in result.error.message
    unnamed = _to_item({"prompt": "no id"}, 3)
    assert isinstance(unnamed, BatchResult)
    assert unnamed.id == "3"


def test_item_config_applies_only_what_the_item_sets() -> None:
    config = Config(model="base", system_prompt="sys", max_tokens=100)
    assert item_config(config, BatchItem(id="1", prompt="p")) is config
    changed = item_config(config, BatchItem(id="1", prompt="p", model="m2", max_tokens=7))
    assert (changed.model, changed.system_prompt, changed.max_tokens) == ("m2", "sys", 7)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_line_counts_tokens_cost_rate_and_eta() -> None:
    clock = Clock()
    progress = Progress(10, io.StringIO(), live=False, clock=clock)
    progress.add(BatchResult(id="1", usage=Usage(input_tokens=100, output_tokens=20), cost_usd=0.5))
    progress.add(failed("2"))
    clock.now = 4.0
    assert progress.line() == (
        "batch: 2/10 done | 1 failed | 120 tokens | $0.5000 | 0.5/s | ETA 16s"
    )


def test_progress_marks_a_cost_with_unknown_prices() -> None:
    progress = Progress(1, io.StringIO(), live=False, clock=Clock())
    progress.add(BatchResult(id="1", usage=Usage(output_tokens=3), cost_usd=None))
    assert "$0.0000+" in progress.line()


def test_plain_progress_prints_only_when_something_changed() -> None:
    stream = io.StringIO()
    progress = Progress(3, stream, live=False, clock=Clock())
    progress.draw()
    progress.draw()
    progress.add(ok("1"))
    progress.draw()
    assert stream.getvalue().count("\n") == 2
    assert "\r" not in stream.getvalue()


def test_live_progress_redraws_one_line() -> None:
    stream = io.StringIO()
    progress = Progress(3, stream, live=True, clock=Clock())
    progress.draw()
    progress.note("a note")
    progress.clear()
    text = stream.getvalue()
    assert text.startswith("\r\x1b[Kbatch: 0/3 done")
    assert "\r\x1b[Ka note\n" in text
    assert text.endswith("\r\x1b[K")


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0.4, "0s"), (42, "42s"), (185, "3m05s"), (7620, "2h07m")]
)
def test_durations(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown
