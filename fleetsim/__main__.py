"""``python -m fleetsim`` = the ``fleetsim`` command."""

import sys

from fleetsim.app.cli import main

sys.exit(main())
