"""/clone: make a voice from a recording, for this server only."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.audio import AudioError, extract_audio, probe
from bot.errors import UserFacingError
from bot.replies import answer, defer
from bot.tree import admin_only
from bot.unmixr import Voice

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

log = logging.getLogger(__name__)

MAX_CLONE_BYTES = 120_000_000
MIN_CLONE_SECONDS = 30.0
MAX_CLONE_SECONDS = 80.0


class CloneCheckError(UserFacingError):
    """The recording failed a check made before anything is uploaded."""


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
        name: app_commands.Range[str, 1, 100],
        consent: bool,
        description: app_commands.Range[str, 0, 500] | None = None,
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
        if audio.size > MAX_CLONE_BYTES:
            raise CloneCheckError(
                f"The file is {audio.size / 1_000_000:.1f} MB but a clone recording can be at most 120 MB; "
                "trim or compress it."
            )
        await defer(interaction, ephemeral=True)
        data = await self._download(audio)
        upload, filename, content_type, seconds = await self._check_recording(data, audio.filename)
        result = await self.bot.unmixr.clone_voice(
            audio=upload,
            filename=filename,
            name=name,
            description=description or None,
            content_type=content_type,
        )
        await self.bot.storage.add_cloned_voice(
            result.voice_id, interaction.guild_id, name, description or None, interaction.user.id
        )
        self.bot.catalogue.add_clone(
            interaction.guild_id, Voice(uuid=result.voice_id, character=name, description=description or None)
        )
        self.bot.spawn(self.bot.catalogue.refresh(), name="catalogue-refresh-after-clone")
        await answer(
            interaction,
            f"Cloned **{name}** from {seconds:.1f} s of audio; use it now with `/say voice:{name}` "
            "(only in this server).",
            ephemeral=True,
        )

    async def _download(self, attachment: discord.Attachment) -> bytes:
        try:
            data = await attachment.read()
        except (discord.HTTPException, aiohttp.ClientError):
            raise CloneCheckError("The file could not be downloaded from Discord; upload it again.") from None
        if len(data) > MAX_CLONE_BYTES:
            raise CloneCheckError(
                f"The file is {len(data) / 1_000_000:.1f} MB but a clone recording can be at most 120 MB; "
                "trim or compress it."
            )
        return data

    async def _check_recording(self, data: bytes, filename: str) -> tuple[bytes, str, str, float]:
        """Probe the file as media (never trusting its declared type) and measure its duration."""
        try:
            info = await probe(data)
        except AudioError:
            raise CloneCheckError(
                "The file could not be decoded as audio or video; upload an mp3, wav, m4a, ogg or a video with sound."
            ) from None
        if not info.has_audio:
            kind = "a video without sound" if info.has_video else "not audio"
            raise CloneCheckError(f"The file is {kind}; upload a recording of the speaker (30 to 80 seconds).")
        if info.duration is None:
            raise CloneCheckError("The recording's length could not be measured; upload it as mp3 or wav.")
        if info.duration < MIN_CLONE_SECONDS:
            raise CloneCheckError(
                f"The recording is {info.duration:.1f} s long but a clone needs at least 30 s; upload a longer one."
            )
        if info.duration > MAX_CLONE_SECONDS:
            raise CloneCheckError(
                f"The recording is {info.duration:.1f} s long but a clone can use at most 80 s; trim it."
            )
        stem = filename.rsplit(".", 1)[0] or "recording"
        if info.has_video:
            try:
                extracted = await extract_audio(data)
            except AudioError:
                raise CloneCheckError("The video's sound could not be extracted; upload the audio alone.") from None
            return extracted, f"{stem}.mp3", "audio/mpeg", info.duration
        content_type = f"audio/{(info.format_name or 'mpeg').split(',')[0]}"
        return data, filename, content_type, info.duration


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Clone(bot))
