"""``python -m stability.cli``: the command line (same as ``python -m stability``)."""

import sys

from stability.cli import main

sys.exit(main())
