"""``python -m sepconv``: the same as the ``sepconv`` command (see :mod:`sepconv.cli`)."""

import sys

from .cli import main

sys.exit(main())
