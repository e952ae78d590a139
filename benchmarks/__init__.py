"""Side-by-side performance runs of claude_unified against its peers.

Run them with ``nox -s bench`` (``nox -s bench -- --quick`` for the short CI-sized run). Every
comparison runs all of its contenders in one process run, interleaved, and reports ratios; the
result table is printed and written to ``docs/performance.md``.
"""
