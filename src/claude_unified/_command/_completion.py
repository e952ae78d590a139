"""``claude-unified completion bash|zsh``: a completion script generated from the parser, so it
knows every subcommand and each one's own flags. zsh runs the bash script through
``bashcompinit``, zsh's own bridge for bash completion functions."""

from __future__ import annotations

import argparse

__all__ = ["completion_script"]

# flags whose value is one of these words; the others that take a value complete file names
_VALUES = {"--backend": "auto api cli fake"}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _words(parser: argparse.ArgumentParser) -> str:
    """The flags of a subcommand, and the choices of its positional argument if it has any."""
    words: list[str] = []
    for action in parser._actions:
        words += action.option_strings
        if not action.option_strings and action.choices:
            words += [str(choice) for choice in action.choices]
    return " ".join(words)


def _bash(parser: argparse.ArgumentParser) -> str:
    commands = _subcommands(parser)
    cases = "\n".join(f'        {name}) words="{_words(sub)}" ;;' for name, sub in commands.items())
    values = "\n".join(
        f'        {flag}) COMPREPLY=($(compgen -W "{choices}" -- "$cur")); return ;;'
        for flag, choices in _VALUES.items()
    )
    return f"""# claude-unified completion (bash)
_claude_unified() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" words=""
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "{" ".join(commands)} --help --version" -- "$cur"))
        return
    fi
    case "$prev" in
{values}
        --config|--output|-o) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    case "${{COMP_WORDS[1]}}" in
{cases}
    esac
    if [[ "$cur" == -* || "${{COMP_WORDS[1]}}" == completion ]]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}}
complete -o default -F _claude_unified claude-unified
"""


def completion_script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script for ``shell`` (``"bash"`` or ``"zsh"``)."""
    if shell == "zsh":
        return "autoload -U +X bashcompinit && bashcompinit\n" + _bash(parser)
    return _bash(parser)
