"""The package metadata an index shows, and the development set-up the README promises."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]


def test_the_license_file_is_the_mit_text_and_ships() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]  # hatchling puts it in the sdist and wheel


def test_classifiers_urls_and_keywords() -> None:
    classifiers = set(PROJECT["classifiers"])
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert PROJECT["requires-python"] == ">=3.11"
    assert any(c.startswith("Operating System :: ") for c in classifiers)
    assert {"Homepage", "Documentation", "Source", "Issues", "Changelog"} <= set(PROJECT["urls"])
    assert "claude" in PROJECT["keywords"]


def test_development_dependencies_are_groups_that_nox_installs() -> None:
    extras = set(PROJECT.get("optional-dependencies", {}))
    assert not extras & {"test", "lint", "docs", "dev"}  # extras are for users only
    groups = PYPROJECT["dependency-groups"]
    assert {"test", "lint", "docs"} <= set(groups)
    assert {"include-group": "test"} in groups["lint"]
    assert any(str(d).startswith("mkdocstrings[python]") for d in groups["docs"])
    noxfile = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    assert '"pip>=25.1"' in noxfile  # the first pip with --group
    assert '"--group"' in noxfile


def test_the_readme_opens_for_users_and_keeps_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    opening = readme[: readme.index("## ")]
    assert "pip install claude-unified" in opening
    assert "claude-unified demo" in opening
    assert re.search(r"^pip install -e \. && claude-unified demo", readme, re.MULTILINE)
    assert re.search(r"^pip install nox && nox -s ci", readme, re.MULTILINE)
    assert "nox -s ci" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
