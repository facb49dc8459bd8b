"""``python -m fleetsim`` = the ``fleetsim`` command."""

import sys

from fleetsim.cli import main

sys.exit(main())
