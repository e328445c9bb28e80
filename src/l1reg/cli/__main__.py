"""``python -m l1reg.cli``: the same as the ``l1reg`` command."""

import sys

from l1reg.cli import main

sys.exit(main())
