"""/clone: make a voice from a recording, for this server only."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.attachments import iter_attachment
from bot.audio.recording import MAX_BYTES, check_recording, too_large
from bot.errors import UserFacingError
from bot.limits import DescriptionText, NameText
from bot.lookups import ensure_lookups
from bot.replies import answer, defer
from bot.storage import CloneNameTakenError, CloneQuotaError
from bot.tree import admin_only
from bot.unmixr import Voice
from bot.wording import counted, number

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

log = logging.getLogger(__name__)


def quota_reached(count: int, limit: int) -> UserFacingError:
    """The answer for a server that has made (or is making) as many clones as it may."""
    made = counted(count, "This server has {count} cloned voice", "This server has {count} cloned voices")
    return UserFacingError(
        f"{made} (including any still uploading) and may make at most {number(limit)}, so it cannot clone another; "
        "the bot's operator can raise MAX_CLONES_PER_SERVER."
    )


def name_taken(name: str) -> UserFacingError:
    """The answer for a name this server's clones already use."""
    shown = discord.utils.escape_markdown(name)
    return UserFacingError(
        f"This server already has a cloned voice called “{shown}” (names are compared without regard to case); "
        "pick another name."
    )


class Clone(commands.Cog):
    """Voice cloning."""

    def __init__(self, bot: UnmixrBot) -> None:
        self.bot = bot

    @app_commands.command(name="clone", description="Clone a voice from a 30-80 s recording (admins).")
    @app_commands.describe(
        audio="A recording of one speaker, 30 to 80 seconds (audio, or video with sound)",
        name="The new voice's name",
        description="A short description",
        consent="The speaker agreed to have their voice cloned",
    )
    @app_commands.default_permissions(manage_guild=True)
    @admin_only()
    async def clone(
        self,
        interaction: discord.Interaction[UnmixrBot],
        audio: discord.Attachment,
        name: NameText,
        consent: bool,
        description: DescriptionText | None = None,
    ) -> None:
        """Check the recording locally, then upload it once."""
        assert interaction.guild_id is not None
        if not consent:
            raise UserFacingError(
                "Cloning needs the speaker's consent: get their permission, then run /clone again with consent: True."
            )
        name = name.strip()
        if not name:
            raise UserFacingError("The new voice needs a name with some visible characters.")
        if audio.size > MAX_BYTES:
            raise too_large(audio.size)
        limit = self.bot.settings.max_clones_per_server
        # Counting and taking a slot are database calls: on a remote database the gate defers first.
        await ensure_lookups(interaction, ephemeral=True, writes=True)
        made = await self.bot.storage.count_cloned_voices(interaction.guild_id)
        if made >= limit:
            raise quota_reached(made, limit)
        if await self.bot.storage.clone_name_taken(interaction.guild_id, name):
            raise name_taken(name)
        await defer(interaction, ephemeral=True)
        # Downloaded and probed only now, after the defer: both may take a while for a large file.
        recording = await check_recording(iter_attachment(self.bot.session, audio), audio.filename)
        # The slot is taken atomically just before the upload, so uploads at once cannot pass the quota together.
        try:
            slot = await self.bot.storage.take_clone_slot(interaction.guild_id, limit, name=name)
        except CloneQuotaError as full:
            raise quota_reached(full.count, full.limit) from None
        except CloneNameTakenError:
            # Another upload of this name began meanwhile (in this process or another).
            raise name_taken(name) from None
        try:
            result = await self.bot.unmixr.clone_voice(
                audio=recording.audio,
                filename=recording.filename,
                name=name,
                description=description or None,
                content_type=recording.content_type,
            )
        except BaseException:
            await self.bot.storage.release_clone_slot(slot)
            raise
        await self.bot.storage.add_cloned_voice(
            result.voice_id, interaction.guild_id, name, description or None, interaction.user.id, slot_id=slot
        )
        self.bot.catalogue.add_clone(
            interaction.guild_id, Voice(uuid=result.voice_id, character=name, description=description or None)
        )
        await answer(
            interaction,
            f"Cloned **{name}** from {recording.seconds:.1f} s of audio; use it now with `/say voice:{name}` "
            "(only in this server).",
            ephemeral=True,
        )


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Clone(bot))
