"""``python -m bot``: the same command line as the ``sms-bridge`` script."""

import sys

from bot.cli import main

sys.exit(main())
