"""Config: plain data describing how to reach Claude. Loading it never opens a connection.

Precedence (highest first): keyword arguments → environment → ``claude-unified.toml`` in the
working directory → ``[tool.claude-unified]`` in ``pyproject.toml`` → defaults. Every bad value
raises one ``ConfigError`` naming the field, the value and where it came from.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypedDict
from urllib.parse import urlsplit

import msgspec
from typing_extensions import Unpack

from ._exceptions import ConfigError
from ._mcp_config import McpServerConfig, check_mcp_servers
from ._secrets import redact_url, remember, secret_values
from ._settings import Effort, ServiceTier, ThinkingSetting, closest

__all__ = ["DEFAULT_API_MODEL", "Config", "ConfigFields", "LoadOverrides"]

DEFAULT_API_MODEL = "claude-sonnet-5-5"
_SECRET_FIELDS = frozenset({"api_key", "auth_token"})

PermissionMode = Literal["default", "acceptEdits", "plan", "bypassPermissions", "dontAsk", "auto"]


class _ConfigMeta(msgspec.StructMeta):
    """Makes ``Config(...)`` answer a misspelled or positional argument as ``Config.load`` does:
    a ``ConfigError`` naming the field and the closest valid name, not a bare ``TypeError``."""

    def __call__(cls, *args: object, **fields: Any) -> Any:
        if args:
            raise ConfigError(
                f"Config takes keyword arguments only (got {len(args)} positional); "
                "write Config(model=..., max_tokens=...)",
                source="argument",
            )
        _reject_unknown_fields(fields, {})
        return super().__call__(**fields)


class Config(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, metaclass=_ConfigMeta
):
    """How to talk to Claude. Every field is optional; see the configuration reference.

    ``record_path`` (env ``CLAUDE_UNIFIED_RECORD``) makes every conversation append each frame
    of each exchange to that JSON-lines file, with secrets and machine paths scrubbed, for
    ``claude_unified.testing.ReplayBackend`` to play back in tests.

    Constructing one directly validates every field like :meth:`load` does: a wrong type or
    value raises ``ConfigError`` naming the field.
    """

    backend: str = "auto"
    model: str | None = None
    max_tokens: int = 4096
    system_prompt: str | None = None
    append_system_prompt: str | None = None
    max_turns: int | None = None
    permission_mode: PermissionMode | None = None
    cwd: str | None = None
    stream: bool = True
    # API transport
    api_key: str | None = None
    auth_token: str | None = None
    base_url: str = "https://api.anthropic.com"
    anthropic_version: str = "2023-06-01"
    timeout: float = 600.0
    connect_timeout: float = 5.0
    idle_timeout: float = 120.0
    max_retries: int = 2
    max_retry_wait: float = 120.0
    http2: bool = True
    prompt_caching: bool = True
    betas: tuple[str, ...] = ()
    extra_headers: dict[str, str] = msgspec.field(default_factory=dict)
    # Request settings (see docs/settings.md for what each backend makes of them)
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: tuple[str, ...] = ()
    tool_choice: str | None = None
    thinking: ThinkingSetting = None
    effort: Effort | None = None
    metadata: dict[str, str] | None = None
    service_tier: ServiceTier | None = None
    extra_body: dict[str, Any] = msgspec.field(default_factory=dict)
    max_budget_usd: float | None = None
    # Tool rules, honoured on both backends (and handed to the CLI as its own flags)
    allowed_tools: tuple[str, ...] = ()
    disallowed_tools: tuple[str, ...] = ()
    # CLI transport
    cli_path: str | None = None
    cli_args: tuple[str, ...] = ()
    env: dict[str, str] = msgspec.field(default_factory=dict)
    inherit_env: bool = True
    init_timeout: float = 60.0
    session_id: str | None = None
    resume: str | None = None
    fork_session: bool = False
    add_dirs: tuple[str, ...] = ()
    fallback_model: str | None = None
    tools: tuple[str, ...] | None = None
    setting_sources: tuple[Literal["user", "project", "local"], ...] | None = None
    settings: str | dict[str, Any] | None = None
    agents: dict[str, dict[str, Any]] | None = None
    plugins: tuple[str, ...] = ()
    # External MCP servers (both backends; see docs/mcp.md)
    mcp_servers: dict[str, McpServerConfig] = msgspec.field(default_factory=dict)
    # Testing
    record_path: str | None = None

    def __post_init__(self) -> None:
        _check_types(self)  # quotes no secret (see _shown), and secrets needs the right types
        remember(self.secrets)  # before the checks below, which may quote a value
        _check_positive(
            self, "max_tokens", "timeout", "connect_timeout", "idle_timeout", "init_timeout"
        )
        check_mcp_servers(self.mcp_servers)
        if self.max_budget_usd is not None and self.max_budget_usd < 0:
            raise ConfigError(
                f"max_budget_usd must be 0 or more, got {self.max_budget_usd}",
                field="max_budget_usd",
            )
        if self.tool_choice == "":
            raise ConfigError(
                "tool_choice must be 'auto', 'any', 'none' or a tool name, got ''",
                field="tool_choice",
            )
        if self.max_turns is not None and self.max_turns < 1:
            raise ConfigError(
                f"max_turns must be at least 1, got {self.max_turns}", field="max_turns"
            )
        if self.max_retries < 0:
            raise ConfigError(
                f"max_retries must be 0 or more, got {self.max_retries}", field="max_retries"
            )
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"base_url must start with http:// or https://, got {redact_url(self.base_url)!r}",
                field="base_url",
            )

    def __repr__(self) -> str:
        shown = []
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if value != getattr(_DEFAULTS, name):
                shown.append(f"{name}={_redacted(name, value)}")
        return f"Config({', '.join(shown)})"

    __str__ = __repr__

    @property
    def secrets(self) -> list[str]:
        """Every secret this config holds: never shown in a repr or an error."""
        found = [self.api_key, self.auth_token, urlsplit(self.base_url).password]
        found += secret_values(self.env) + secret_values(self.extra_headers)
        found += [secret for server in self.mcp_servers.values() for secret in server.secrets]
        return [s for s in found if s]

    @property
    def has_credentials(self) -> bool:
        """Whether an API key or a bearer token is set."""
        return bool(self.api_key or self.auth_token)

    def replace(self, **changes: Unpack[ConfigFields]) -> Config:
        """A copy with some fields changed (validated like any other source)."""
        return self.with_changes(changes)

    def with_changes(self, changes: Mapping[str, Any]) -> Config:
        """``replace()`` from a mapping of field names (an unknown name suggests the closest)."""
        return _build(
            {**msgspec.structs.asdict(self), **changes}, dict.fromkeys(changes, "argument")
        )

    @classmethod
    def load(
        cls,
        *,
        cwd: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        config_file: str | os.PathLike[str] | None = None,
        **overrides: Unpack[LoadOverrides],
    ) -> Config:
        """Load from files, environment and keyword arguments (highest precedence)."""
        return cls.load_with_sources(
            cwd=cwd, environ=environ, config_file=config_file, **overrides
        )[0]

    @classmethod
    def load_with_sources(
        cls,
        *,
        cwd: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        config_file: str | os.PathLike[str] | None = None,
        **overrides: Unpack[LoadOverrides],
    ) -> tuple[Config, dict[str, str]]:
        """Like :meth:`load`, also returning where each non-default field came from."""
        root = Path(cwd) if cwd is not None else Path.cwd()
        if config_file is not None and not Path(config_file).is_file():
            raise ConfigError(
                f"config file {config_file} does not exist", field="config_file", source="argument"
            )
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for layer, source in (
            (_from_pyproject(root / "pyproject.toml"), "pyproject.toml [tool.claude-unified]"),
            (_from_toml(Path(config_file) if config_file else root / "claude-unified.toml"), ""),
            (_from_env(env), ""),
            (overrides, "argument"),
        ):
            for name, (value, where) in _with_sources(layer, source).items():
                key = name.replace("-", "_")  # files may spell keys max-tokens
                values[key] = value
                sources[key] = where
        return _build(values, sources), sources


_ENV_FIELDS = {
    "ANTHROPIC_API_KEY": "api_key",
    "ANTHROPIC_AUTH_TOKEN": "auth_token",
    "ANTHROPIC_BASE_URL": "base_url",
    "CLAUDE_UNIFIED_BACKEND": "backend",
    "CLAUDE_UNIFIED_MODEL": "model",
    "CLAUDE_UNIFIED_MAX_TOKENS": "max_tokens",
    "CLAUDE_UNIFIED_MAX_TURNS": "max_turns",
    "CLAUDE_UNIFIED_TIMEOUT": "timeout",
    "CLAUDE_UNIFIED_MAX_RETRIES": "max_retries",
    "CLAUDE_UNIFIED_CLI_PATH": "cli_path",
    "CLAUDE_UNIFIED_PERMISSION_MODE": "permission_mode",
    "CLAUDE_UNIFIED_RECORD": "record_path",
    "CLAUDE_UNIFIED_TEMPERATURE": "temperature",
    "CLAUDE_UNIFIED_TOP_P": "top_p",
    "CLAUDE_UNIFIED_TOP_K": "top_k",
    "CLAUDE_UNIFIED_STOP_SEQUENCES": "stop_sequences",
    "CLAUDE_UNIFIED_TOOL_CHOICE": "tool_choice",
    "CLAUDE_UNIFIED_THINKING": "thinking",
    "CLAUDE_UNIFIED_EFFORT": "effort",
    "CLAUDE_UNIFIED_SERVICE_TIER": "service_tier",
    "CLAUDE_UNIFIED_MAX_BUDGET_USD": "max_budget_usd",
}

_ENV_LISTS = frozenset({"stop_sequences"})
"""Fields whose environment value is a comma-separated list."""


def _env_value(field: str, text: str) -> Any:
    if field in _ENV_LISTS:
        return [part for part in text.split(",") if part]
    if field == "thinking" and text.strip().isdigit():
        return {"budget_tokens": int(text)}  # CLAUDE_UNIFIED_THINKING=4000: a token budget
    return text


def _with_sources(layer: Mapping[str, Any], source: str) -> dict[str, tuple[Any, str]]:
    out: dict[str, tuple[Any, str]] = {}
    for key, value in layer.items():
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], _Where):
            out[key] = (value[0], str(value[1]))
        else:
            out[key] = (value, source)
    return out


class _Where(str):
    """Marks a value's origin inside a layer (used by env and file layers)."""


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    return {
        field: (_env_value(field, env[name]), _Where(f"environment variable {name}"))
        for name, field in _ENV_FIELDS.items()
        if env.get(name)
    }


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # only when a config file is read, not with the package

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", source=str(path)) from exc


def _from_toml(path: Path) -> dict[str, Any]:
    return {k: (v, _Where(str(path))) for k, v in _read_toml(path).items()}


def _from_pyproject(path: Path) -> dict[str, Any]:
    table = _read_toml(path).get("tool", {}).get("claude-unified", {})
    return {k: (v, _Where(f"{path} [tool.claude-unified]")) for k, v in table.items()}


def _build(values: dict[str, Any], sources: Mapping[str, str]) -> Config:
    values = {k.replace("-", "_"): v for k, v in values.items()}
    _reject_unknown_fields(values, sources)
    try:
        return msgspec.convert(values, Config, strict=False)
    except msgspec.ValidationError as exc:
        cause = exc.__cause__
        if isinstance(cause, ConfigError):  # raised by __post_init__
            where = sources.get(cause.field or "", "argument")
            raise ConfigError(f"{cause} (from {where})", field=cause.field, source=where) from exc
        field = _field_of(str(exc))
        where = sources.get(field or "", "argument")
        shown = _shown(field, values.get(field or ""))
        raise ConfigError(
            f"invalid value {shown} for config field {field!r} (from {where}): {exc}",
            field=field,
            source=where,
        ) from exc


def _reject_unknown_fields(names: Mapping[str, object], sources: Mapping[str, str]) -> None:
    fields = Config.__struct_fields__
    for key in names:
        if key not in fields:
            where = sources.get(key, "argument")
            guess = closest(key, fields)
            hint = f"did you mean {guess!r}? " if guess else ""
            raise ConfigError(
                f"unknown config field {key!r} (from {where}); {hint}valid fields: "
                + ", ".join(sorted(fields)),
                field=key,
                source=where,
            )


def _field_of(message: str) -> str | None:
    marker = "`$."
    if marker not in message:
        return None
    rest = message.split(marker, 1)[1]
    return rest.split("`", 1)[0].split("[", 1)[0].split(".", 1)[0]


_SECRET_WORDS = ("key", "token", "secret", "auth", "password", "cookie")


def _redacted(name: str, value: Any) -> str:
    """A field's repr with secrets hidden, including inside ``env`` and ``extra_headers``."""
    if name in _SECRET_FIELDS:
        return "***"
    if name == "base_url" and isinstance(value, str):
        return repr(redact_url(value))
    if isinstance(value, dict):
        return repr(
            {
                k: "***" if any(word in str(k).lower() for word in _SECRET_WORDS) else v
                for k, v in value.items()
            }
        )
    return repr(value)


def _shown(field: str | None, value: Any) -> str:
    """A rejected value as an error quotes it. Mapping fields (``env``, ``extra_headers``) show
    their keys only: a value that failed validation may be a secret under any name."""
    if field in _SECRET_FIELDS:
        return "***"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: ***" for k in value) + "}"
    if field == "base_url" and isinstance(value, str):
        return repr(redact_url(value))
    return repr(value)


class _FieldCheck(NamedTuple):
    name: str
    kind: Any
    default: Any
    plain: frozenset[type] | None  # a value of exactly one of these types needs no conversion
    choices: frozenset[object] | None  # a Literal's values, when the type is one


_PLAIN = frozenset({str, int, float, bool, type(None)})


@cache
def _field_checks() -> tuple[_FieldCheck, ...]:
    checks = []
    for info in msgspec.structs.fields(Config):
        args = typing.get_args(info.type) if typing.get_origin(info.type) in _UNIONS else ()
        members = args or (info.type,)
        literals = [m for m in members if typing.get_origin(m) is Literal]
        rest = frozenset(m for m in members if typing.get_origin(m) is not Literal)
        plain = rest if rest <= _PLAIN else None
        choices = frozenset(v for m in literals for v in typing.get_args(m)) if literals else None
        checks.append(_FieldCheck(info.name, info.type, info.default, plain, choices))
    return tuple(checks)


_UNIONS = (typing.Union, types.UnionType)


def _needs_check(check: _FieldCheck, value: Any) -> bool:
    kind = type(value)
    if check.choices is not None and kind is str:
        return value not in check.choices
    if kind is dict and not value:  # an empty mapping from a default factory
        return False
    return check.plain is None or kind not in check.plain


def _check_types(config: Config) -> None:
    """Check each field against its type, so ``Config(max_tokens="lots")`` fails like a file
    value would, and store the converted value (a list given for a tuple field becomes one).
    Defaults and plain values of the right type are taken as they are (this runs on every
    ``Config``, ``replace()`` included)."""
    for check in _field_checks():
        value = getattr(config, check.name)
        if value is check.default or not _needs_check(check, value):
            continue
        try:
            converted = msgspec.convert(value, check.kind)
        except msgspec.ValidationError as exc:
            shown = _shown(check.name, value)
            raise ConfigError(
                f"invalid value {shown} for config field {check.name!r}: {exc}",
                field=check.name,
            ) from None
        if converted is not value:
            msgspec.structs.force_setattr(config, check.name, converted)


def _check_positive(config: Config, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if value <= 0:
            raise ConfigError(f"{name} must be greater than 0, got {value}", field=name)


class LoadOverrides(TypedDict, total=False):
    """Every ``Config`` field but ``cwd`` as a keyword argument: ``Config.load(cwd=...)`` names
    the directory the files are read from (set the ``cwd`` field in a file or with ``replace``)."""

    backend: str
    model: str | None
    max_tokens: int
    system_prompt: str | None
    append_system_prompt: str | None
    max_turns: int | None
    permission_mode: PermissionMode | None
    stream: bool
    api_key: str | None
    auth_token: str | None
    base_url: str
    anthropic_version: str
    timeout: float
    connect_timeout: float
    idle_timeout: float
    init_timeout: float
    max_retries: int
    max_retry_wait: float
    http2: bool
    prompt_caching: bool
    betas: tuple[str, ...] | list[str]
    extra_headers: dict[str, str]
    temperature: float | None
    top_p: float | None
    top_k: int | None
    stop_sequences: tuple[str, ...] | list[str]
    tool_choice: str | None
    thinking: ThinkingSetting
    effort: Effort | None
    metadata: dict[str, str] | None
    service_tier: ServiceTier | None
    extra_body: dict[str, Any]
    max_budget_usd: float | None
    allowed_tools: tuple[str, ...] | list[str]
    disallowed_tools: tuple[str, ...] | list[str]
    cli_path: str | None
    cli_args: tuple[str, ...] | list[str]
    env: dict[str, str]
    inherit_env: bool
    session_id: str | None
    resume: str | None
    fork_session: bool
    add_dirs: tuple[str, ...] | list[str]
    fallback_model: str | None
    tools: tuple[str, ...] | list[str] | None
    setting_sources: tuple[str, ...] | list[str] | None
    settings: str | dict[str, Any] | None
    agents: dict[str, dict[str, Any]] | None
    plugins: tuple[str, ...] | list[str]
    mcp_servers: Mapping[str, McpServerConfig | Mapping[str, Any]]
    record_path: str | None


class ConfigFields(LoadOverrides, total=False):
    """Every ``Config`` field as a keyword argument (for ``replace`` and ``query``)."""

    cwd: str | None


_DEFAULTS = Config()
