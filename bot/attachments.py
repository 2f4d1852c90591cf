"""Reading members' attachments from Discord's CDN as they arrive, so a large one is never held whole in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import aiohttp
import discord

from bot.errors import UserFacingError
from bot.i18n import _

__all__ = ["AttachmentDownloadError", "iter_attachment"]

# Discord's CDN streams steadily; a pause this long means the download is stuck.
READ_TIMEOUT_SECONDS: Final = 30.0


class AttachmentDownloadError(UserFacingError):
    """The attachment could not be read from Discord."""

    def __init__(self) -> None:
        super().__init__(_("The file could not be downloaded from Discord; upload it again."))


async def iter_attachment(session: aiohttp.ClientSession, attachment: discord.Attachment) -> AsyncIterator[bytes]:
    """Yield the attachment's bytes as they arrive, or raise AttachmentDownloadError."""
    # Its own GET rather than Attachment.read(), which joins the whole file in memory on the event loop.
    try:
        async with session.get(
            attachment.url, timeout=aiohttp.ClientTimeout(total=None, sock_read=READ_TIMEOUT_SECONDS)
        ) as response:
            if response.status != 200:
                raise AttachmentDownloadError()
            # Blocks as they arrived, not joined into larger ones: one copy less on the event loop.
            async for block, _ in response.content.iter_chunks():
                yield block
    except (aiohttp.ClientError, TimeoutError):
        raise AttachmentDownloadError() from None
