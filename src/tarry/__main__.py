"""``python -m tarry``: the same as the ``tarry`` command."""

import sys

from tarry._cli import main

sys.exit(main())
