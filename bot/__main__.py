"""Entry point: `python -m bot` runs the bot; subcommands are the operator's tools."""

from __future__ import annotations

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
