"""Request settings as Config fields: types, loading from env and files, typed overrides."""

from __future__ import annotations

import typing
from pathlib import Path

import msgspec
import pytest

import claude_unified as cu
from claude_unified._config import ConfigFields, LoadOverrides
from claude_unified._conversation import RequestOptions
from claude_unified._settings import REQUEST_SETTING_NAMES, RequestSettings


def test_the_typed_overrides_name_every_field() -> None:
    assert set(typing.get_type_hints(ConfigFields)) == set(cu.Config.__struct_fields__)
    assert set(typing.get_type_hints(LoadOverrides)) == set(cu.Config.__struct_fields__) - {"cwd"}
    assert set(typing.get_type_hints(RequestOptions)) == set(REQUEST_SETTING_NAMES)
    assert set(REQUEST_SETTING_NAMES) <= set(cu.Config.__struct_fields__)


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"max_tokens": "lots"}, "max_tokens"),
        ({"temperature": "warm"}, "temperature"),
        ({"thinking": "sometimes"}, "thinking"),
        ({"thinking": {"budget_tokens": 0}}, "thinking"),
        ({"effort": "huge"}, "effort"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"metadata": {"user_id": 5}}, "metadata"),
        ({"max_budget_usd": -1.0}, "max_budget_usd"),
        ({"tool_choice": ""}, "tool_choice"),
        ({"api_key": 12345}, "api_key"),
    ],
)
def test_direct_construction_validates(fields: dict[str, object], name: str) -> None:
    with pytest.raises(cu.ConfigError) as info:
        cu.Config(**fields)  # type: ignore[arg-type]
    assert info.value.field == name
    assert "12345" not in str(info.value)


def test_direct_construction_normalizes() -> None:
    config = cu.Config(stop_sequences=["END"], thinking={"budget_tokens": 9}, timeout=5)  # type: ignore[arg-type]
    assert config.stop_sequences == ("END",)
    assert config.thinking == cu.ThinkingConfig(budget_tokens=9)
    assert config.timeout == 5.0 and isinstance(config.timeout, float)


def test_environment_variables(tmp_path: Path) -> None:
    config = cu.Config.load(
        cwd=tmp_path,
        environ={
            "CLAUDE_UNIFIED_TEMPERATURE": "0.25",
            "CLAUDE_UNIFIED_TOP_K": "7",
            "CLAUDE_UNIFIED_STOP_SEQUENCES": "END,STOP",
            "CLAUDE_UNIFIED_THINKING": "4000",
            "CLAUDE_UNIFIED_EFFORT": "high",
            "CLAUDE_UNIFIED_MAX_BUDGET_USD": "1.5",
            "CLAUDE_UNIFIED_TOOL_CHOICE": "any",
            "CLAUDE_UNIFIED_SERVICE_TIER": "auto",
        },
    )
    assert (config.temperature, config.top_k, config.stop_sequences) == (0.25, 7, ("END", "STOP"))
    assert config.thinking == cu.ThinkingConfig(budget_tokens=4000)
    assert (config.effort, config.max_budget_usd, config.tool_choice) == ("high", 1.5, "any")
    assert config.service_tier == "auto"
    adaptive = cu.Config.load(cwd=tmp_path, environ={"CLAUDE_UNIFIED_THINKING": "adaptive"})
    assert adaptive.thinking == "adaptive"


def test_config_file(tmp_path: Path) -> None:
    (tmp_path / "claude-unified.toml").write_text(
        'temperature = 0.5\nstop-sequences = ["END"]\ntool_choice = "add"\n'
        'allowed_tools = ["Read"]\n[thinking]\nbudget_tokens = 2048\ndisplay = "omitted"\n'
        '[metadata]\nuser_id = "u1"\n[extra_body]\ninference_geo = "eu"\n'
        '[agents.reviewer]\ndescription = "Reviews"\nprompt = "Review."\n'
    )
    config = cu.Config.load(cwd=tmp_path, environ={})
    assert config.thinking == cu.ThinkingConfig(budget_tokens=2048, display="omitted")
    assert (config.temperature, config.stop_sequences, config.tool_choice) == (0.5, ("END",), "add")
    assert config.metadata == {"user_id": "u1"}
    assert config.extra_body == {"inference_geo": "eu"}
    assert config.agents == {"reviewer": {"description": "Reviews", "prompt": "Review."}}
    assert config.allowed_tools == ("Read",)


def test_bad_file_value_names_field_and_file(tmp_path: Path) -> None:
    path = tmp_path / "claude-unified.toml"
    path.write_text('effort = "enormous"\n')
    with pytest.raises(cu.ConfigError) as info:
        cu.Config.load(cwd=tmp_path, environ={})
    assert info.value.field == "effort"
    assert info.value.source == str(path)


def test_unknown_field_suggests_the_closest(tmp_path: Path) -> None:
    with pytest.raises(cu.ConfigError, match="did you mean 'temperature'"):
        cu.Config.load(cwd=tmp_path, environ={}, temprature=0.1)  # type: ignore[call-arg]
    with pytest.raises(cu.ConfigError, match="did you mean 'max_budget_usd'"):
        cu.Config().replace(max_budget=1.0)  # type: ignore[call-arg]
    with pytest.raises(cu.ConfigError) as info:
        cu.Config().replace(zzzz=1)  # type: ignore[call-arg]
    assert "did you mean" not in str(info.value)


def test_request_settings_body_fields() -> None:
    settings = RequestSettings(
        temperature=0.0, tool_choice="none", output_schema={"type": "object"}, effort="low"
    )
    assert settings.body_fields() == {
        "temperature": 0.0,
        "tool_choice": {"type": "none"},
        "output_config": {
            "effort": "low",
            "format": {"type": "json_schema", "schema": {"type": "object"}},
        },
    }
    assert RequestSettings().body_fields() == {}


def test_result_kind_is_derived_and_round_trips() -> None:
    ok = cu.Result()
    assert ok.kind == "success"
    budget = cu.Result(is_error=True, error=cu.TurnError("budget_exhausted", "spent"))
    assert budget.kind == "budget_exhausted"
    other = cu.Result(is_error=True, error=cu.TurnError("api_status", "boom", 500))
    assert other.kind == "error"
    assert cu.Result(is_error=True).kind == "error"
    for result in (ok, budget, other):
        assert cu.decode_event(cu.encode_event(result)) == result
    assert msgspec.json.decode(cu.encode_event(budget))["kind"] == "budget_exhausted"


def test_direct_construction_names_an_unknown_field_and_the_closest() -> None:
    with pytest.raises(cu.ConfigError) as info:
        cu.Config(max_tokenz=5)  # type: ignore[call-arg]
    assert (info.value.field, info.value.source) == ("max_tokenz", "argument")
    assert "did you mean 'max_tokens'?" in str(info.value)
    assert not isinstance(info.value, TypeError)


def test_direct_construction_refuses_positional_arguments() -> None:
    with pytest.raises(cu.ConfigError, match="keyword arguments only"):
        cu.Config("claude-sonnet-5-5")  # type: ignore[call-arg]


def test_direct_construction_still_makes_a_config() -> None:
    config = cu.Config(model="m", max_tokens=7)
    assert type(config) is cu.Config
    assert (config.model, config.max_tokens) == ("m", 7)
    assert config == msgspec.convert({"model": "m", "max_tokens": 7}, cu.Config)
