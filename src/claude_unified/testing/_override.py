"""``override()``: make code under test use a given backend, whatever its config says."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .._config import Config
from ..backends import _registry
from ..backends._protocol import Backend

__all__ = ["override"]


@contextmanager
def override(*, backend: Backend | Callable[[Config], Backend]) -> Iterator[None]:
    """Within the block, every ``Conversation`` (or other client) resolving its backend from a
    config gets ``backend``: an instance, shared by every conversation, or a factory called
    with each conversation's ``Config``. Nestable (the innermost wins); restored on exit.

    A plain ``with`` works around async code too. The override reaches tasks and the sync
    facades through the context, and threads that start without it (a ``threading.Thread``, a
    thread pool's worker) through a process-wide fallback.
    """
    factory = _factory(backend)
    token = _registry.backend_override.set(factory)
    _registry.process_overrides.append(factory)
    try:
        yield
    finally:
        stack = _registry.process_overrides
        del stack[len(stack) - 1 - stack[::-1].index(factory)]  # the innermost, if used twice
        _registry.backend_override.reset(token)


def _factory(backend: Backend | Callable[[Config], Backend]) -> Callable[[Config], Backend]:
    if isinstance(backend, type) or not isinstance(backend, Backend):  # a class is a factory
        if not callable(backend):
            raise TypeError(f"override(backend=...) needs a Backend or a factory, got {backend!r}")
        return backend
    instance = backend
    return lambda _config: instance
