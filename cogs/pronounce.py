"""/pronounce: the server's pronunciation dictionary."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import InvalidOptionError
from bot.replies import answer
from bot.storage import MAX_PRONUNCIATIONS, MAX_SPOKEN_LENGTH, MAX_WORD_LENGTH, PronunciationLimitError
from bot.tree import require_admin

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

# Embed descriptions hold 4,096 characters; long dictionaries are listed up to that.
LIST_LIMIT = 3900


class Pronounce(commands.GroupCog, group_name="pronounce", group_description="How words are spoken here."):
    """The pronunciation dictionary; the group has no default permission so `list` stays open to all."""

    def __init__(self, bot: UnmixrBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="add", description="Say a word differently (admins).")
    @app_commands.describe(word="The word as written", spoken="How it should be spoken")
    async def add(
        self,
        interaction: discord.Interaction[UnmixrBot],
        word: app_commands.Range[str, 1, MAX_WORD_LENGTH],
        spoken: app_commands.Range[str, 1, MAX_SPOKEN_LENGTH],
    ) -> None:
        """Add or replace an entry."""
        require_admin(interaction)
        assert interaction.guild_id is not None
        word, spoken = word.strip(), spoken.strip()
        if not word or not spoken:
            raise InvalidOptionError("Both the word and how it is spoken need some text.")
        if len(word) > MAX_WORD_LENGTH:
            raise InvalidOptionError(f"A word can be at most {MAX_WORD_LENGTH} characters; this one has {len(word)}.")
        if len(spoken) > MAX_SPOKEN_LENGTH:
            raise InvalidOptionError(
                f"The spoken form can be at most {MAX_SPOKEN_LENGTH} characters; this one has {len(spoken)}."
            )
        try:
            old = await self.bot.storage.add_pronunciation(interaction.guild_id, word, spoken, interaction.user.id)
        except PronunciationLimitError:
            raise InvalidOptionError(
                f"This server already has {MAX_PRONUNCIATIONS} pronunciations, the most it can keep; "
                "remove one with `/pronounce remove` first."
            ) from None
        before = f"“{old.spoken}”" if old is not None else "not set"
        await answer(interaction, f"Pronunciation of “{word}”: {before} → “{spoken}”.", ephemeral=True)

    @app_commands.command(name="remove", description="Forget a pronunciation (admins).")
    @app_commands.describe(word="The word to forget")
    async def remove(self, interaction: discord.Interaction[UnmixrBot], word: str) -> None:
        """Remove an entry."""
        require_admin(interaction)
        assert interaction.guild_id is not None
        old = await self.bot.storage.remove_pronunciation(interaction.guild_id, word.strip())
        if old is None:
            raise InvalidOptionError(f"There is no pronunciation for “{word[:50]}”; `/pronounce list` shows them all.")
        await answer(interaction, f"Pronunciation of “{old.word}”: “{old.spoken}” → not set.", ephemeral=True)

    @remove.autocomplete("word")
    async def _word_autocomplete(
        self, interaction: discord.Interaction[UnmixrBot], current: str
    ) -> list[app_commands.Choice[str]]:
        assert interaction.guild_id is not None
        wanted = current.casefold()
        entries = await self.bot.storage.list_pronunciations(interaction.guild_id)
        return [
            app_commands.Choice(name=f"{entry.word} → {entry.spoken}"[:100], value=entry.word)
            for entry in entries
            if wanted in entry.word.casefold()
        ][:25]

    @app_commands.command(name="list", description="The server's pronunciations.")
    async def list(self, interaction: discord.Interaction[UnmixrBot]) -> None:
        """List every entry."""
        assert interaction.guild_id is not None
        entries = await self.bot.storage.list_pronunciations(interaction.guild_id)
        if not entries:
            await answer(interaction, "This server has no pronunciations yet; admins add them with `/pronounce add`.")
            return
        lines: list[str] = []
        size = 0
        for entry in entries:
            line = f"**{discord.utils.escape_markdown(entry.word)}** → {discord.utils.escape_markdown(entry.spoken)}"
            if size + len(line) + 1 > LIST_LIMIT:
                lines.append(f"… and {len(entries) - len(lines)} more")
                break
            lines.append(line)
            size += len(line) + 1
        embed = discord.Embed(
            title=f"Pronunciations ({len(entries)}/{MAX_PRONUNCIATIONS})",
            description="\n".join(lines),
            colour=discord.Colour.blurple(),
        )
        await answer(interaction, embed=embed, ephemeral=True)


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Pronounce(bot))
