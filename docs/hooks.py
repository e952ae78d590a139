r"""MkDocs hooks for the claude_unified site.

``on_page_markdown`` replaces the ``<!-- cli-reference -->`` marker in ``cli.md`` with the help
text of the ``claude-unified`` command and of each of its subcommands, generated from
``claude_unified._command._main.build_parser()``, so the reference cannot drift from the
parser. It also unescapes ``\|`` inside code spans of table rows: GitHub needs the escape to
keep ``str \| None`` in one cell, while Python-Markdown already keeps code spans whole and
would show the backslash.
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from claude_unified._command._main import build_parser

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

MARKER = "<!-- cli-reference -->"
_CODE_SPAN = re.compile(r"`[^`\n]*`")
HELP_WIDTH = 88


def _plain(parser: argparse.ArgumentParser) -> str:
    """The parser's help at a fixed width, without colour, whatever terminal builds the docs."""

    def formatter(prog: str) -> argparse.HelpFormatter:
        return argparse.HelpFormatter(prog, width=HELP_WIDTH)

    parser.formatter_class = formatter
    if hasattr(parser, "color"):  # Python 3.14+ may colour help text
        parser.color = False
    return parser.format_help().rstrip()


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _block(title: str, parser: argparse.ArgumentParser) -> str:
    return f"### `{title}`\n\n```text\n{_plain(parser)}\n```\n"


def cli_reference() -> str:
    """Markdown for the command and every subcommand, in the parser's order."""
    parser = build_parser()
    sections = [_block(parser.prog, parser)]
    for name, sub in _subcommands(parser).items():
        sections.append(_block(f"{parser.prog} {name}", sub))
    return "\n".join(sections)


def unescape_table_code(markdown: str) -> str:
    r"""``\|`` becomes ``|`` inside the code spans of table rows (lines starting with ``|``)."""

    def row(line: str) -> str:
        if not line.lstrip().startswith("|"):
            return line
        return _CODE_SPAN.sub(lambda span: span[0].replace("\\|", "|"), line)

    return "\n".join(row(line) for line in markdown.split("\n"))


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Expand the CLI reference marker in ``cli.md``; unescape pipes in table code spans."""
    if page.file.src_uri == "cli.md" and MARKER in markdown:
        markdown = markdown.replace(MARKER, cli_reference())
    return unescape_table_code(markdown)
