"""How request settings and agent options become Claude Code flags, or a ConfigError."""

from __future__ import annotations

from typing import Any

import pytest

import claude_unified as cu
from claude_unified._settings import RequestSettings
from claude_unified.backends._protocol import SessionSpec
from claude_unified.backends.cli import _NO_CONTROL, _thinking_tokens, build_argv


def argv(request: RequestSettings | None = None, **fields: Any) -> list[str]:
    config = cu.Config(backend="cli").with_changes(fields)
    session = SessionSpec(settings=request or RequestSettings.of(config))
    return build_argv("claude", session, config)


def test_supported_settings_become_flags() -> None:
    flags = argv(
        thinking=cu.ThinkingConfig(budget_tokens=3000, display="summarized"),
        effort="xhigh",
        max_budget_usd=0.5,
        betas=["b1", "b2"],
        allowed_tools=["Read", "Bash(git log:*)"],
        disallowed_tools=["Write"],
        tools=["Bash", "Read"],
        setting_sources=["user", "project"],
        settings={"model": "opus"},
        agents={"rev": {"description": "Reviews", "prompt": "Review."}},
        plugins=["/p/a", "/p/b"],
        add_dirs=["/d"],
    )
    for flag in [
        "--max-thinking-tokens=3000",
        "--thinking-display=summarized",
        "--effort=xhigh",
        "--max-budget-usd=0.5",
        "--betas=b1",
        "--betas=b2",
        "--allowedTools=Read",
        "--allowedTools=Bash(git log:*)",
        "--disallowedTools=Write",
        "--tools=Bash,Read",
        "--setting-sources=user,project",
        '--settings={"model":"opus"}',
        '--agents={"rev":{"description":"Reviews","prompt":"Review."}}',
        "--plugin-dir=/p/a",
        "--plugin-dir=/p/b",
        "--add-dir=/d",
    ]:
        assert flag in flags


@pytest.mark.parametrize(("mode", "flag"), [("adaptive", "adaptive"), ("disabled", "disabled")])
def test_thinking_modes(mode: str, flag: str) -> None:
    assert f"--thinking={flag}" in argv(thinking=mode)


def test_empty_tools_means_none_and_a_settings_path_passes_through() -> None:
    flags = argv(tools=[], settings="/etc/claude.json")
    assert "--tools=" in flags
    assert "--settings=/etc/claude.json" in flags


def test_defaults_add_no_flags() -> None:
    base = argv()
    assert not [f for f in base if f.split("=")[0] in ("--effort", "--thinking", "--tools")]


def test_output_schema_becomes_json_schema() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    flags = argv(RequestSettings(output_schema=schema))
    assert (
        '--json-schema={"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}'
        in flags
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("temperature", 0.0),  # a zero is a setting too
        ("top_p", 0.5),
        ("top_k", 5),
        ("stop_sequences", ["END"]),
        ("tool_choice", "any"),
        ("metadata", {"user_id": "u"}),
        ("service_tier", "auto"),
        ("extra_body", {"x": 1}),
    ],
)
def test_settings_the_cli_cannot_honour_fail(name: str, value: Any) -> None:
    with pytest.raises(cu.ConfigError, match=f"{name} cannot be honoured by the CLI") as info:
        argv(**{name: value})
    assert info.value.field == name


def test_a_restarted_process_gets_what_is_left_of_the_budget() -> None:
    config = cu.Config(backend="cli", max_budget_usd=0.5)
    session = SessionSpec(settings=RequestSettings.of(config))
    assert "--max-budget-usd=0.5" in build_argv("claude", session, config)
    left = build_argv("claude", session, config, spent_usd=0.2)
    assert [a for a in left if a.startswith("--max-budget-usd=")] == ["--max-budget-usd=0.3"]


BUDGET = cu.ThinkingConfig(budget_tokens=2000)
SHOWN = cu.ThinkingConfig(budget_tokens=2000, display="summarized")


@pytest.mark.parametrize(
    ("wanted", "launched", "tokens"),
    [
        (BUDGET, None, 2000),  # a budget
        ("disabled", None, 0),  # off
        ("disabled", BUDGET, 0),
        (None, None, None),  # back to the process's own: null
        (BUDGET, BUDGET, None),
        ("adaptive", "adaptive", None),
        (cu.ThinkingConfig(budget_tokens=3000, display="summarized"), SHOWN, 3000),
    ],
)
def test_thinking_changes_a_control_request_can_make(
    wanted: Any, launched: Any, tokens: int | None
) -> None:
    assert _thinking_tokens(wanted, launched) == tokens


@pytest.mark.parametrize(
    ("wanted", "launched"),
    [
        ("adaptive", None),  # only the flag says adaptive
        (None, BUDGET),  # the CLI's default, once started with a budget
        (SHOWN, BUDGET),  # another display
        (BUDGET, SHOWN),
    ],
)
def test_thinking_changes_that_need_a_restart(wanted: Any, launched: Any) -> None:
    assert _thinking_tokens(wanted, launched) is _NO_CONTROL
