"""The secrets this process knows, and their removal from every message the library makes.

Each ``Config`` hands its secrets over when it is made (API key, bearer token, the password of
``base_url``, secret-looking ``env`` and ``extra_headers`` values); secret-looking environment
variables of the process count too, as does anything shaped like an Anthropic API key. Every
``ClaudeError`` scrubs its message and text attributes when it is made, so a key echoed back by
the server (a 401 body) or by the CLI (its stderr) never shows in an error, whichever path
raised it. Values shorter than ``MIN_SECRET_LEN`` are not treated as secrets: replacing them
would garble messages without protecting anything.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "API_KEY_PATTERN",
    "MIN_SECRET_LEN",
    "REDACTED",
    "redact_url",
    "remember",
    "scrub",
    "secret_name",
    "secret_values",
]

API_KEY_PATTERN = r"sk-ant-[A-Za-z0-9_\-]+"
MIN_SECRET_LEN = 8
REDACTED = "***"
_SECRET_NAME = re.compile(r"(?i)(KEY|TOKEN|SECRET|PASSWORD|AUTHORIZATION|COOKIE)$")
_ALWAYS = re.compile(API_KEY_PATTERN)


class _Known:
    """The secrets remembered so far, and one regex for them (compiled again when they grow)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._compiled: tuple[frozenset[str], re.Pattern[str]] = (frozenset(), _ALWAYS)

    def add(self, values: set[str]) -> None:
        with self._lock:
            self._values = self._values | values  # a new set: pattern() reads without a lock

    def pattern(self) -> re.Pattern[str]:
        env = (v for v in secret_values(os.environ) if len(v) >= MIN_SECRET_LEN)
        secrets = frozenset({*self._values, *env})
        known, pattern = self._compiled
        if secrets != known:
            longest_first = sorted(secrets, key=len, reverse=True)
            pattern = re.compile("|".join([*map(re.escape, longest_first), API_KEY_PATTERN]))
            self._compiled = (secrets, pattern)
        return pattern


_KNOWN = _Known()


@lru_cache(maxsize=4096)  # asked for every environment variable whenever an error is made
def secret_name(name: str) -> bool:
    """Whether a variable or header of this name holds a secret (``*_KEY``, ``*TOKEN`` …)."""
    return _SECRET_NAME.search(name.replace("-", "_")) is not None


def secret_values(mapping: Mapping[str, str]) -> list[str]:
    """The values of ``mapping`` stored under secret-looking names."""
    return [value for name, value in mapping.items() if secret_name(str(name))]


def remember(values: Iterable[str | None]) -> None:
    """Treat ``values`` as secrets from now on, in every message of every error."""
    _KNOWN.add({v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LEN})


def scrub(text: str) -> str:
    """``text`` with every known secret replaced by ``***``."""
    if not text:
        return text
    return _KNOWN.pattern().sub(REDACTED, text)


def redact_url(url: str) -> str:
    """``url`` with the password of its user part, if any, replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{parts.username or ''}:{REDACTED}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))
