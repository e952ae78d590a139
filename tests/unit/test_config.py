"""Config loading: precedence, error messages naming field and source, secrets, replace()."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from claude_unified._config import Config
from claude_unified._exceptions import ConfigError

SECRET = "sk-ant-api03-SECRET-value-0123456789"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def pyproject(tmp_path: Path, body: str) -> Path:
    return write(
        tmp_path / "pyproject.toml", f'[project]\nname = "x"\n\n[tool.claude-unified]\n{body}'
    )


def local_toml(tmp_path: Path, body: str) -> Path:
    return write(tmp_path / "claude-unified.toml", body)


def test_defaults_with_nothing_set(tmp_path: Path) -> None:
    config = Config.load(cwd=tmp_path, environ={})
    assert config == Config()
    assert config.base_url == "https://api.anthropic.com"
    assert config.max_tokens == 4096
    assert config.max_retries == 2
    assert config.prompt_caching is True
    assert config.api_key is None
    assert not config.has_credentials


def test_precedence_kwargs_env_file_pyproject_defaults(tmp_path: Path) -> None:
    pyproject(
        tmp_path,
        'model = "from-pyproject"\nmax_tokens = 11\ntimeout = 11.0\nmax_retries = 5\n'
        'backend = "cli"\n',
    )
    local_toml(tmp_path, 'model = "from-file"\nmax_tokens = 22\ntimeout = 22.0\n')
    env = {"CLAUDE_UNIFIED_MODEL": "from-env", "CLAUDE_UNIFIED_MAX_TOKENS": "33"}
    config = Config.load(cwd=tmp_path, environ=env, model="from-kwargs")
    assert config.model == "from-kwargs"  # kwargs beat everything
    assert config.max_tokens == 33  # env beats both files
    assert config.timeout == 22.0  # claude-unified.toml beats pyproject
    assert config.max_retries == 5  # pyproject beats defaults
    assert config.backend == "cli"
    assert config.idle_timeout == 120.0  # default

    assert Config.load(cwd=tmp_path, environ=env).model == "from-env"
    assert Config.load(cwd=tmp_path, environ={}).model == "from-file"
    (tmp_path / "claude-unified.toml").unlink()
    assert Config.load(cwd=tmp_path, environ={}).model == "from-pyproject"
    (tmp_path / "pyproject.toml").unlink()
    assert Config.load(cwd=tmp_path, environ={}).model is None


def test_kwargs_can_override_with_none(tmp_path: Path) -> None:
    config = Config.load(cwd=tmp_path, environ={"CLAUDE_UNIFIED_MODEL": "m"}, model=None)
    assert config.model is None


def test_env_values_are_converted(tmp_path: Path) -> None:
    env = {
        "ANTHROPIC_API_KEY": SECRET,
        "ANTHROPIC_AUTH_TOKEN": "tok",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:8080",
        "CLAUDE_UNIFIED_BACKEND": "api",
        "CLAUDE_UNIFIED_MAX_TURNS": "3",
        "CLAUDE_UNIFIED_TIMEOUT": "2.5",
        "CLAUDE_UNIFIED_MAX_RETRIES": "0",
        "CLAUDE_UNIFIED_CLI_PATH": "/opt/claude",
        "CLAUDE_UNIFIED_PERMISSION_MODE": "acceptEdits",
        "CLAUDE_UNIFIED_MAX_TOKENS": "",  # empty means unset
    }
    config = Config.load(cwd=tmp_path, environ=env)
    assert config.api_key == SECRET
    assert config.auth_token == "tok"
    assert config.base_url == "http://127.0.0.1:8080"
    assert config.backend == "api"
    assert config.max_turns == 3
    assert config.timeout == 2.5
    assert config.max_retries == 0
    assert config.cli_path == "/opt/claude"
    assert config.permission_mode == "acceptEdits"
    assert config.max_tokens == 4096
    assert config.has_credentials


def test_explicit_config_file(tmp_path: Path) -> None:
    local_toml(tmp_path, 'model = "ignored"\n')
    other = write(tmp_path / "custom.toml", 'model = "custom"\nbetas = ["a", "b"]\n')
    config = Config.load(cwd=tmp_path, environ={}, config_file=other)
    assert config.model == "custom"
    assert config.betas == ("a", "b")


def test_tables_and_lists_from_files(tmp_path: Path) -> None:
    local_toml(
        tmp_path,
        'add_dirs = ["/a", "/b"]\n[extra_headers]\nx-team = "core"\n[env]\nFOO = "bar"\n',
    )
    config = Config.load(cwd=tmp_path, environ={})
    assert config.add_dirs == ("/a", "/b")
    assert config.extra_headers == {"x-team": "core"}
    assert config.env == {"FOO": "bar"}


# --------------------------------------------------------------------------- errors


def test_bad_type_from_env_names_field_and_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Config.load(cwd=tmp_path, environ={"CLAUDE_UNIFIED_MAX_TOKENS": "lots"})
    error = info.value
    assert error.field == "max_tokens"
    assert error.source == "environment variable CLAUDE_UNIFIED_MAX_TOKENS"
    assert "max_tokens" in str(error)
    assert "CLAUDE_UNIFIED_MAX_TOKENS" in str(error)
    assert "'lots'" in str(error)


def test_bad_type_from_pyproject(tmp_path: Path) -> None:
    path = pyproject(tmp_path, 'max_retries = "many"\n')
    with pytest.raises(ConfigError) as info:
        Config.load(cwd=tmp_path, environ={})
    assert info.value.field == "max_retries"
    assert info.value.source == f"{path} [tool.claude-unified]"
    assert str(path) in str(info.value)


def test_unknown_field_from_file(tmp_path: Path) -> None:
    path = local_toml(tmp_path, "colour = 3\n")
    with pytest.raises(ConfigError) as info:
        Config.load(cwd=tmp_path, environ={})
    assert info.value.field == "colour"
    assert info.value.source == str(path)
    assert "colour" in str(info.value)
    assert str(path) in str(info.value)
    assert "max_tokens" in str(info.value)  # lists the valid fields


def test_unknown_field_from_kwargs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Config.load(cwd=tmp_path, environ={}, colour=3)  # type: ignore[call-arg]
    assert (info.value.field, info.value.source) == ("colour", "argument")


@pytest.mark.parametrize(
    ("env", "kwargs", "field", "source"),
    [
        ({"ANTHROPIC_BASE_URL": "api.anthropic.com"}, {}, "base_url", "ANTHROPIC_BASE_URL"),
        ({}, {"base_url": "ftp://example.com"}, "base_url", "argument"),
        ({"CLAUDE_UNIFIED_MAX_TURNS": "0"}, {}, "max_turns", "CLAUDE_UNIFIED_MAX_TURNS"),
        ({}, {"max_turns": 0}, "max_turns", "argument"),
        ({}, {"max_tokens": -1}, "max_tokens", "argument"),
        ({"CLAUDE_UNIFIED_TIMEOUT": "0"}, {}, "timeout", "CLAUDE_UNIFIED_TIMEOUT"),
        ({"CLAUDE_UNIFIED_MAX_RETRIES": "-1"}, {}, "max_retries", "CLAUDE_UNIFIED_MAX_RETRIES"),
        (
            {"CLAUDE_UNIFIED_PERMISSION_MODE": "yolo"},
            {},
            "permission_mode",
            "CLAUDE_UNIFIED_PERMISSION_MODE",
        ),
    ],
)
def test_invalid_values_name_field_and_source(
    tmp_path: Path, env: dict[str, str], kwargs: dict[str, Any], field: str, source: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Config.load(cwd=tmp_path, environ=env, **kwargs)
    assert info.value.field == field
    assert info.value.source is not None
    assert source in info.value.source
    assert field in str(info.value)
    assert source in str(info.value)


def test_max_turns_zero_from_file(tmp_path: Path) -> None:
    path = local_toml(tmp_path, "max_turns = 0\n")
    with pytest.raises(ConfigError) as info:
        Config.load(cwd=tmp_path, environ={})
    assert info.value.field == "max_turns"
    assert info.value.source == str(path)
    assert "at least 1" in str(info.value)


@pytest.mark.parametrize("name", ["claude-unified.toml", "pyproject.toml"])
def test_invalid_toml(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, "model = \n[[[")
    with pytest.raises(ConfigError) as info:
        Config.load(cwd=tmp_path, environ={})
    assert info.value.source == str(path)
    assert str(path) in str(info.value)
    assert "TOML" in str(info.value)


def test_direct_construction_validates() -> None:
    with pytest.raises(ConfigError) as info:
        Config(connect_timeout=0)
    assert info.value.field == "connect_timeout"


# --------------------------------------------------------------------------- hyphenated keys


def test_hyphenated_keys_in_files(tmp_path: Path) -> None:
    local_toml(tmp_path, "max-tokens = 77\nprompt-caching = false\nmax-retry-wait = 5.0\n")
    config = Config.load(cwd=tmp_path, environ={})
    assert (config.max_tokens, config.prompt_caching, config.max_retry_wait) == (77, False, 5.0)


def test_hyphenated_key_errors_name_their_file(tmp_path: Path) -> None:
    path = local_toml(tmp_path, "max-turns = 0\n")
    with pytest.raises(ConfigError) as info:
        Config.load(cwd=tmp_path, environ={})
    assert info.value.field == "max_turns"
    assert info.value.source == str(path)
    path = local_toml(tmp_path, "no-such-field = 1\n")
    with pytest.raises(ConfigError) as info:
        Config.load(cwd=tmp_path, environ={})
    assert info.value.field == "no_such_field"
    assert info.value.source == str(path)


def test_hyphenated_keys_keep_precedence(tmp_path: Path) -> None:
    pyproject(tmp_path, "max_tokens = 1\n")
    local_toml(tmp_path, "max-tokens = 2\n")
    assert Config.load(cwd=tmp_path, environ={}).max_tokens == 2
    env = {"CLAUDE_UNIFIED_MAX_TOKENS": "3"}
    assert Config.load(cwd=tmp_path, environ=env).max_tokens == 3
    assert Config.load(cwd=tmp_path, environ=env, max_tokens=4).max_tokens == 4


# --------------------------------------------------------------------------- secrets


def test_secrets_are_redacted_in_repr_and_str() -> None:
    config = Config(api_key=SECRET, auth_token="bearer-SECRET-token", model="m")
    for text in (repr(config), str(config), f"{config}", repr([config])):
        assert SECRET not in text
        assert "bearer-SECRET-token" not in text
        assert "api_key=***" in text
        assert "auth_token=***" in text
        assert "model='m'" in text


def test_repr_shows_only_changed_fields() -> None:
    assert repr(Config()) == "Config()"
    assert repr(Config(max_tokens=10)) == "Config(max_tokens=10)"


def test_bad_secret_value_is_not_echoed(tmp_path: Path) -> None:
    local_toml(tmp_path, "api_key = 12345678987654321\n")
    with pytest.raises(ConfigError) as info:
        Config.load(cwd=tmp_path, environ={})
    assert info.value.field == "api_key"
    assert "12345678987654321" not in str(info.value)
    assert "***" in str(info.value)


# --------------------------------------------------------------------------- replace


def test_replace() -> None:
    base = Config(api_key=SECRET, model="a", betas=("x",))
    changed = base.replace(model="b", max_tokens=10)
    assert (changed.model, changed.max_tokens) == ("b", 10)
    assert changed.api_key == SECRET
    assert changed.betas == ("x",)
    assert (base.model, base.max_tokens) == ("a", 4096)
    assert base.replace() == base


def test_replace_validates() -> None:
    base = Config()
    with pytest.raises(ConfigError) as info:
        base.replace(max_turns=0)
    assert (info.value.field, info.value.source) == ("max_turns", "argument")
    with pytest.raises(ConfigError) as info:
        base.replace(nope=True)  # type: ignore[call-arg]
    assert info.value.field == "nope"
    with pytest.raises(ConfigError) as info:
        base.replace(max_tokens="ten")  # type: ignore[arg-type]
    assert info.value.field == "max_tokens"


def test_repr_hides_secrets_inside_env_and_headers() -> None:
    config = Config(
        env={"ANTHROPIC_API_KEY": "sk-hidden-1", "LANG": "C"},
        extra_headers={"Authorization": "Bearer hidden-2", "x-trace": "t1"},
    )
    shown = repr(config)
    assert "sk-hidden-1" not in shown
    assert "hidden-2" not in shown
    assert "'LANG': 'C'" in shown
    assert "'x-trace': 't1'" in shown
