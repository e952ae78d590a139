"""The library's logging: one ``claude_unified`` logger with a child per module.

Modules log to ``logging.getLogger(__name__)``. The root of the hierarchy has a ``NullHandler``,
so nothing reaches stderr unless the application configures logging or sets
``CLAUDE_UNIFIED_LOG=debug|info`` (the same idea as the ``anthropic`` SDK's ``ANTHROPIC_LOG``),
which adds one stderr handler. Records never carry secrets: headers are not logged, argv is
redacted, unknown frames are described by their type and keys, not their values.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping

__all__ = ["ENV_VAR", "LOGGER_NAME", "configure_from_env"]

LOGGER_NAME = "claude_unified"
ENV_VAR = "CLAUDE_UNIFIED_LOG"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _EnvHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stderr handler ``CLAUDE_UNIFIED_LOG`` adds; its class marks it as ours."""


def configure_from_env(environ: Mapping[str, str] = os.environ) -> logging.Handler | None:
    """Add a stderr handler at the level ``CLAUDE_UNIFIED_LOG`` names (``debug`` or ``info``).

    Runs when the package is imported. Idempotent: a second call replaces the handler it added.
    An unset variable adds nothing; an unknown value is ignored with a ``RuntimeWarning`` (a
    silent typo would look like a library that logs nothing)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    for handler in [h for h in logger.handlers if isinstance(h, _EnvHandler)]:
        logger.removeHandler(handler)
    value = environ.get(ENV_VAR, "").strip().lower()
    if not value:
        return None
    level = _LEVELS.get(value)
    if level is None:
        choices = " or ".join(_LEVELS)
        warnings.warn(f"{ENV_VAR}={value!r} is not {choices}; ignored", RuntimeWarning, 2)
        return None
    handler = _EnvHandler()
    handler.setFormatter(logging.Formatter(_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler
