"""Developer and CI sessions. `nox -s ci` is what CI runs: lint, typecheck, tests, docs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["ci"]

CLI_PACKAGE = "@anthropic-ai/claude-code"
CLI_VERSION = "2.1.330"  # pinned exactly: npm picks an older release on Node < 22 otherwise
ROOT = Path(__file__).parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "claude-unified"


def _cli_candidates(prefix: Path) -> list[Path]:
    modules = prefix / "node_modules"
    return [
        modules / ".bin" / "claude",
        modules / "@anthropic-ai" / "claude-code-linux-x64" / "claude",
    ]


def _working(binary: Path) -> bool:
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError:
        return False
    return out.returncode == 0 and out.stdout.startswith(CLI_VERSION)


def install_cli(session: nox.Session) -> Path:
    """Install the pinned Claude Code CLI into a cache folder outside the tree; return its path."""
    prefix = CACHE / f"cli-{CLI_VERSION}"
    for binary in _cli_candidates(prefix):
        if _working(binary):
            return binary
    prefix.mkdir(parents=True, exist_ok=True)
    session.run(
        "npm",
        "install",
        "--prefix",
        str(prefix),
        "--no-audit",
        "--no-fund",
        "--no-save",
        f"{CLI_PACKAGE}@{CLI_VERSION}",
        external=True,
    )
    for binary in _cli_candidates(prefix):
        if _working(binary):
            return binary
    session.error(f"the pinned CLI {CLI_PACKAGE}@{CLI_VERSION} did not install into {prefix}")
    raise AssertionError  # unreachable: session.error raises


def _install(session: nox.Session, *groups: str) -> None:
    """The project (editable) and its development dependency groups (PEP 735, pyproject's
    ``[dependency-groups]``); ``pip install --group`` needs pip 25.1 or newer."""
    session.install("--upgrade", "pip>=25.1")
    session.install("-e", ".", *(arg for group in groups for arg in ("--group", group)))


def _pytest(session: nox.Session, *args: str) -> None:
    cli = install_cli(session)
    session.run("pytest", *args, env={"CLAUDE_UNIFIED_TEST_CLI": str(cli)})


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Unit and integration tests, including the real CLI at the pinned version."""
    _install(session, "test")
    _pytest(session, *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.8")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "noxfile.py")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    _install(session, "lint")
    session.run("mypy")


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    _install(session, "docs")
    session.run("mkdocs", "build", "--strict", "--site-dir", str(ROOT / "site"))


# The peers the benchmarks compare against, pinned so that tables from different runs compare.
BENCH_PEERS = ("anthropic==2.12.0", "claude-agent-sdk==0.2.187", "claudestream==0.15.3")
PEER_ROWS = "1,2,4,5,6"  # the benchmark rows that have peers among their contenders


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Side-by-side performance against the peers; prints the table and writes
    docs/performance.md. `nox -s bench -- --quick` is the short run; `-- --rows 1,2` picks rows."""
    session.install("-e", ".", *BENCH_PEERS)
    cli = install_cli(session)
    env = {"CLAUDE_UNIFIED_TEST_CLI": str(cli)}
    session.run("python", "-m", "benchmarks", *session.posargs, env=env)
    if "--rows" in session.posargs or "--no-write" in session.posargs:
        return  # a partial run: the side-by-side section needs the whole document
    # the peers' current releases beside the pinned ones (their dependencies stay the venv's)
    current = CACHE / "bench-peers-current"
    names = [peer.partition("==")[0] for peer in BENCH_PEERS]
    session.run(
        "python", "-m", "pip", "install", "--quiet", "--upgrade", "--no-deps",
        "--target", str(current), *names,
    )  # fmt: skip
    quick = ["--quick"] if "--quick" in session.posargs else []
    session.run(
        "python", "-m", "benchmarks", *quick, "--rows", PEER_ROWS, "--peers", str(current), env=env
    )


@nox.session(python="3.11")
def ci(session: nox.Session) -> None:
    """Everything CI checks, in one environment: lint, typecheck, tests, docs."""
    _install(session, "lint", "docs")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("mypy")
    _pytest(session, "-q")
    # the benchmarks must keep working; quick mode, our own rows, no timing verdicts enforced
    session.run("python", "-m", "benchmarks", "--quick", "--rows", "1,2,3,4", "--no-write")
    session.run("mkdocs", "build", "--strict", "--site-dir", str(ROOT / "site"))
