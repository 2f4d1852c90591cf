"""Names from members or from Unmixr shown in Discord's markdown: escaped, so each shows exactly as typed.

A display name, nickname, voice or clone name, or pronunciation entry like `[x](https://evil)` would otherwise
render as a masked link (or `**a**` in bold, `# a` as a heading). Every reply that shows such a name passes it
through `as_typed`, or `as_code` where it sits in a code span. Plain-text output (the operator CLI) reads the
same sentences back with `plain`.
"""

from __future__ import annotations

import re
from typing import Final

import discord

__all__ = ["as_code", "as_typed", "plain"]

# What discord.utils.escape_markdown puts a backslash before (and the backslash itself).
_ESCAPED: Final = re.compile(r"\\([\\*_~|`>#\[\]()\-])")


def as_typed(name: str) -> str:
    """The name with Discord's markdown escaped, for message content, embed descriptions, fields and titles."""
    return discord.utils.escape_markdown(name)


def as_code(text: str) -> str:
    """The text in a code span (shown as typed there), or escaped without one if a backtick would end the span."""
    return f"`{text}`" if "`" not in text else as_typed(text)


def plain(text: str) -> str:
    """A reply's sentence for a plain-text reader: bold marks and the escapes of `as_typed` taken out."""
    return _ESCAPED.sub(r"\1", text.replace("**", ""))
