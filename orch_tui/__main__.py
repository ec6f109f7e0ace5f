"""`python -m orch_tui` behaves exactly like the `orch-tui` console script."""

import sys

from orch_tui.cli import main

sys.exit(main())
