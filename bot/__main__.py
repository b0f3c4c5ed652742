"""``python -m bot``: the ``exalate-bot`` command."""

import sys

from bot.cli.main import main

sys.exit(main())
