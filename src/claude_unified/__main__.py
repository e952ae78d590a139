"""``python -m claude_unified`` runs the ``claude-unified`` command."""

import sys

from ._command._main import main

sys.exit(main())
