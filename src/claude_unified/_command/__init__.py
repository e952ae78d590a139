"""The ``claude-unified`` command: ``_main`` parses arguments and runs one subcommand; each of
the larger subcommands (``batch``, ``repl``, ``demo``, ``doctor``, raw frames) has a module of its
own, loaded only when it runs; ``_exit_codes`` holds the exit codes they all use."""
