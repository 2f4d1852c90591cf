"""Reading members' attachments from Discord's CDN a slice at a time, so a large one is never held whole in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import aiohttp
import discord

from bot.errors import UserFacingError

__all__ = ["AttachmentDownloadError", "iter_attachment"]

SLICE_BYTES: Final = 1 << 20
# Discord's CDN streams steadily; a pause this long means the download is stuck.
READ_TIMEOUT_SECONDS: Final = 30.0


class AttachmentDownloadError(UserFacingError):
    """The attachment could not be read from Discord."""

    def __init__(self) -> None:
        super().__init__("The file could not be downloaded from Discord; upload it again.")


async def iter_attachment(session: aiohttp.ClientSession, attachment: discord.Attachment) -> AsyncIterator[bytes]:
    """Yield the attachment's bytes in slices of at most SLICE_BYTES, or raise AttachmentDownloadError."""
    # Its own GET rather than Attachment.read(), which joins the whole file in memory on the event loop.
    try:
        async with session.get(
            attachment.url, timeout=aiohttp.ClientTimeout(total=None, sock_read=READ_TIMEOUT_SECONDS)
        ) as response:
            if response.status != 200:
                raise AttachmentDownloadError()
            async for chunk in response.content.iter_chunked(SLICE_BYTES):
                yield chunk
    except (aiohttp.ClientError, TimeoutError):
        raise AttachmentDownloadError() from None
