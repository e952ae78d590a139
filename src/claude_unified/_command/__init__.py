"""The ``claude-unified`` command: ``_main`` parses the arguments with ``_parser`` (which is all
``--help`` loads) and runs one subcommand from ``_commands``; the larger subcommands (``batch``,
``repl``, ``demo``, ``doctor``, raw frames) have a module of their own, loaded only when they
run; ``_exit_codes`` holds the exit codes they all use."""
