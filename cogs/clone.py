"""/clone: make a voice from a recording, for this server only."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.attachments import iter_attachment
from bot.audio.recording import MAX_BYTES, check_recording, too_large
from bot.clones import may_have_made_it
from bot.errors import UserFacingError
from bot.i18n import Fixed, _, command, counted
from bot.limits import DescriptionText, NameText
from bot.lookups import ensure_lookups
from bot.markdown import as_typed
from bot.replies import answer, defer
from bot.storage import CloneNameTakenError, CloneQuotaError, clone_name_key
from bot.tree import admin_only
from bot.unmixr import UnmixrError, Voice

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

log = logging.getLogger(__name__)


def quota_reached(count: int, limit: int) -> UserFacingError:
    """The answer for a server that has made (or is making) as many clones as it may."""
    return UserFacingError(
        counted(
            count,
            "This server has {count} cloned voice (including any still being made) and may make at most {limit}, "
            "so it cannot clone another; the bot's operator can raise MAX_CLONES_PER_SERVER.",
            "This server has {count} cloned voices (including any still being made) and may make at most {limit}, "
            "so it cannot clone another; the bot's operator can raise MAX_CLONES_PER_SERVER.",
            limit=limit,
        )
    )


def name_taken(name: str) -> UserFacingError:
    """The answer for a name this server already uses for a clone (or for one being made)."""
    return UserFacingError(
        _(
            "This server already has a cloned voice named “{name}” (or one being made); choose another name.",
            name=discord.utils.escape_markdown(name),
        )
    )


def awaiting(name: str) -> UserFacingError:
    """The answer for an upload that timed out: Unmixr may still make the voice, so nothing is given back yet."""
    return UserFacingError(
        _(
            "Unmixr did not answer in time and may still make the voice, so this server's clone slot and the name "
            "“{name}” stay reserved: the bot adds the voice here by itself if it appears in Unmixr's list, and "
            "frees both if it has not appeared within 10 minutes.",
            name=discord.utils.escape_markdown(name),
        )
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
                _(
                    "Cloning needs the speaker's consent: get their permission, then run {clone} again with "
                    "consent: True.",
                    clone=command("clone"),
                )
            )
        name = name.strip()
        if not name:
            raise UserFacingError(_("The new voice needs a name with some visible characters."))
        if audio.size > MAX_BYTES:
            raise too_large(audio.size)
        limit = self.bot.settings.max_clones_per_server
        # Counting and taking a slot are database calls: on a remote database the gate defers first.
        await ensure_lookups(interaction, ephemeral=True, writes=True)
        names = await self.bot.storage.clone_names(interaction.guild_id)
        if len(names) >= limit:
            raise quota_reached(len(names), limit)
        if clone_name_key(name) in {clone_name_key(taken) for taken in names}:
            raise name_taken(name)
        await defer(interaction, ephemeral=True)
        # Downloaded and probed only now, after the defer: both may take a while for a large file.
        recording = await check_recording(
            iter_attachment(self.bot.session, audio), audio.filename, server=interaction.guild_id
        )
        # The slot (and the name with it) is taken atomically just before the upload, so uploads at once cannot
        # pass the quota, or take one name, together.
        try:
            slot = await self.bot.storage.take_clone_slot(
                interaction.guild_id, limit, name=name, description=description or None, created_by=interaction.user.id
            )
        except CloneQuotaError as full:
            await recording.close()
            raise quota_reached(full.count, full.limit) from None
        except CloneNameTakenError:
            await recording.close()
            raise name_taken(name) from None
        sent_at = self.bot.clones.now()
        try:
            result = await self.bot.unmixr.clone_voice(
                audio=recording.audio,
                filename=recording.filename,
                name=name,
                description=description or None,
                content_type=recording.content_type,
            )
        except UnmixrError as error:
            if not may_have_made_it(error):
                await self.bot.storage.release_clone_slot(slot)
                raise
            # No answer: the voice may exist all the same. The slot and the name stay reserved for it.
            found = await self.bot.clones.timed_out(slot, sent_at)
            if found is None:
                raise awaiting(name) from None
            await answer(
                interaction,
                _(
                    "Unmixr answered too late, but it made the voice: cloned **{name}**; choose it as the voice in "
                    "{say} now (only in this server).",
                    name=discord.utils.escape_markdown(name),
                    say=command("say"),
                ),
                ephemeral=True,
            )
            return
        except BaseException:
            await self.bot.storage.release_clone_slot(slot)
            raise
        finally:
            await recording.close()  # streamed from disk, never held whole in memory
        await self.bot.storage.add_cloned_voice(
            result.voice_id, interaction.guild_id, name, description or None, interaction.user.id, slot_id=slot
        )
        await self.bot.catalogue.add_clone(
            interaction.guild_id, Voice(uuid=result.voice_id, character=name, description=description or None)
        )
        await answer(
            interaction,
            _(
                "Cloned **{name}** from {seconds} s of audio; choose it as the voice in {say} now (only in this "
                "server).",
                name=as_typed(name),
                seconds=Fixed(recording.seconds),
                say=command("say"),
            ),
            ephemeral=True,
        )


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Clone(bot))
