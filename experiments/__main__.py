"""``python -m experiments [--quick] ...``: the same as ``stability reproduce``."""

import sys

from experiments.run import main

sys.exit(main())
