"""``python -m svarinn_daemon``."""

import sys

from svarinn_daemon.cli import main

sys.exit(main())
