"""`python -m aiops.cli`: the same entry point as the `aiops` console script
(scheduled cron lines run it this way)."""

import sys

from aiops.cli import main

sys.exit(main())
