"""``python -m stability``: the command line."""

import sys

from stability.cli import main

sys.exit(main())
