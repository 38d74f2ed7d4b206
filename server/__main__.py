"""``python -m server``: the ``tutti`` command line (:mod:`server.cli`)."""

import sys

from server.cli import main

sys.exit(main())
