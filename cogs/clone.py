"""/clone: make a voice from a recording, for this server only."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.audio import AudioError, duration, extract_audio, probe
from bot.errors import UserFacingError
from bot.limits import DescriptionText, NameText
from bot.replies import answer, defer
from bot.tree import admin_only
from bot.unmixr import Voice

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

log = logging.getLogger(__name__)

MAX_CLONE_BYTES = 120_000_000
MIN_CLONE_SECONDS = 30.0
MAX_CLONE_SECONDS = 80.0
# Encoders pad a few frames: an 80 s recording saved as mp3 decodes to about 80.05 s. It is still 80 s.
CODEC_PADDING_SECONDS = 0.1
# Decoding less than this share of the length a file's header claims means the file was cut short.
TRUNCATION_RATIO = 0.9
UNDECODABLE = "The file could not be decoded: it looks damaged or cut short; export the recording again and upload it."


class CloneCheckError(UserFacingError):
    """The recording failed a check made before anything is uploaded."""


def too_large(size: int) -> CloneCheckError:
    """The answer for a recording over the upload limit, with its measured size."""
    return CloneCheckError(
        f"The file is {size / 1_000_000:.1f} MB ({size} bytes) but a clone recording can be at most 120 MB "
        f"({MAX_CLONE_BYTES} bytes); trim or compress it."
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
        if audio.size > MAX_CLONE_BYTES:
            raise too_large(audio.size)
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
            raise too_large(len(data))
        return data

    async def _check_recording(self, data: bytes, filename: str) -> tuple[bytes, str, str, float]:
        """Probe the file as media (never trusting its declared type) and measure its duration by decoding it."""
        try:
            info = await probe(data)
        except AudioError:
            raise CloneCheckError(UNDECODABLE) from None
        if not info.has_audio:
            if info.has_video:
                raise CloneCheckError(
                    "The file is a video without sound; upload a recording of the speaker (30 to 80 seconds)."
                )
            if _looks_like_media(data):
                raise CloneCheckError(UNDECODABLE)
            raise CloneCheckError(
                "The file is not audio (it could not be decoded as audio or video); upload an mp3, wav, m4a, ogg "
                "or a video with sound."
            )
        stem = filename.rsplit(".", 1)[0] or "recording"
        upload, upload_name, content_type = data, filename, _content_type(info.format_name)
        try:
            if info.has_video:
                upload = await extract_audio(data)
                upload_name, content_type = f"{stem}.mp3", "audio/mpeg"
            # Decoded, not read from the header: a file cut short still claims its full length there.
            seconds = await duration(upload)
        except AudioError:
            raise CloneCheckError(UNDECODABLE) from None
        claimed = info.duration
        if claimed is not None and seconds < claimed * TRUNCATION_RATIO and claimed - seconds > 1:
            raise CloneCheckError(
                f"The file could not be decoded completely: only {seconds:.1f} s of its {claimed:.1f} s play, "
                "so it looks cut short; upload the whole recording."
            )
        if seconds < MIN_CLONE_SECONDS - CODEC_PADDING_SECONDS:
            raise CloneCheckError(
                f"The recording is {seconds:.1f} s long but a clone needs at least 30 s; upload a longer one."
            )
        if seconds > MAX_CLONE_SECONDS + CODEC_PADDING_SECONDS:
            raise CloneCheckError(f"The recording is {seconds:.1f} s long but a clone can use at most 80 s; trim it.")
        return upload, upload_name, content_type, seconds


# Containers a recording comes in: a file that starts like one but cannot be read is damaged, not "not audio".
_MEDIA_SIGNATURES = (b"ID3", b"OggS", b"fLaC", b"RIFF", b"FORM", b"#!AMR", b"\x1a\x45\xdf\xa3", b"\x30\x26\xb2\x75")
_CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg", "flac": "audio/flac", "mov": "audio/mp4"}


def _looks_like_media(data: bytes) -> bool:
    """Whether the data starts like an audio or video file (mp3, wav, ogg, flac, mp4/m4a, webm...)."""
    if data.startswith(_MEDIA_SIGNATURES) or data[4:8] == b"ftyp":
        return True
    # An mp3 or AAC frame's sync word.
    return len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0


def _content_type(format_name: str | None) -> str:
    """The MIME type for ffprobe's format name, as the reference's examples send it (audio/mpeg for mp3)."""
    return _CONTENT_TYPES.get((format_name or "").split(",")[0], "application/octet-stream")


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Clone(bot))
