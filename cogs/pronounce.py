"""/pronounce: the server's pronunciation dictionary."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import InvalidOptionError
from bot.i18n import _, command, counted
from bot.i18n.interactions import render
from bot.limits import EMBED_DESCRIPTION, SpokenText, WordText, WordToRemoveText, fit_choices, fit_lines
from bot.lookups import ensure_lookups
from bot.markdown import as_typed
from bot.replies import answer
from bot.storage import MAX_PRONUNCIATIONS, PronunciationLimitError
from bot.tree import require_admin

if TYPE_CHECKING:
    from bot.bot import UnmixrBot


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
        word: WordText,
        spoken: SpokenText,
    ) -> None:
        """Add or replace an entry."""
        require_admin(interaction)
        assert interaction.guild_id is not None
        word, spoken = word.strip(), spoken.strip()
        if not word or not spoken:
            raise InvalidOptionError(_("Both the word and how it is spoken need some text."))
        await ensure_lookups(interaction, ephemeral=True, writes=True)
        try:
            old = await self.bot.storage.add_pronunciation(interaction.guild_id, word, spoken, interaction.user.id)
        except PronunciationLimitError:
            raise InvalidOptionError(
                _(
                    "This server already has {limit} pronunciations, the most it can keep; remove one with {remove} "
                    "first.",
                    limit=MAX_PRONUNCIATIONS,
                    remove=command("pronounce remove"),
                )
            ) from None
        word, spoken = as_typed(word), as_typed(spoken)
        if old is not None:
            changed = _(
                "Pronunciation of “{word}”: “{before}” → “{spoken}”.",
                word=word,
                before=as_typed(old.spoken),
                spoken=spoken,
            )
        else:
            changed = _("Pronunciation of “{word}”: not set → “{spoken}”.", word=word, spoken=spoken)
        await answer(interaction, changed, ephemeral=True)

    @app_commands.command(name="remove", description="Forget a pronunciation (admins).")
    @app_commands.describe(word="The word to forget")
    async def remove(self, interaction: discord.Interaction[UnmixrBot], word: WordToRemoveText) -> None:
        """Remove an entry."""
        require_admin(interaction)
        assert interaction.guild_id is not None
        await ensure_lookups(interaction, ephemeral=True, writes=True)
        old = await self.bot.storage.remove_pronunciation(interaction.guild_id, word.strip())
        if old is None:
            raise InvalidOptionError(
                _(
                    "There is no pronunciation for “{word}”; {list} shows them all.",
                    word=as_typed(word[:50]),
                    list=command("pronounce list"),
                )
            )
        await answer(
            interaction,
            _("Pronunciation of “{word}”: “{spoken}” → not set.", word=as_typed(old.word), spoken=as_typed(old.spoken)),
            ephemeral=True,
        )

    @remove.autocomplete("word")
    async def _word_autocomplete(
        self, interaction: discord.Interaction[UnmixrBot], current: str
    ) -> list[app_commands.Choice[str]]:
        assert interaction.guild_id is not None
        if not self.bot.lookups.ready(interaction.guild_id, interaction.user.id):
            # An autocomplete cannot defer: answer from memory only, and have the entries read for the next key.
            self.bot.spawn(self.bot.lookups.prepare(interaction.guild_id, interaction.user.id), name="pronunciations")
            return []
        wanted = current.casefold()
        entries = await self.bot.storage.list_pronunciations(interaction.guild_id)
        return fit_choices(
            (f"{entry.word} → {entry.spoken}", entry.word) for entry in entries if wanted in entry.word.casefold()
        )

    @app_commands.command(name="list", description="The server's pronunciations.")
    async def list(self, interaction: discord.Interaction[UnmixrBot]) -> None:
        """List every entry."""
        assert interaction.guild_id is not None
        await ensure_lookups(interaction, ephemeral=True)
        entries = await self.bot.storage.list_pronunciations(interaction.guild_id)
        if not entries:
            await answer(
                interaction,
                _(
                    "This server has no pronunciations yet; admins add them with {add}.",
                    add=command("pronounce add"),
                ),
            )
            return
        lines = [f"**{as_typed(entry.word)}** → {as_typed(entry.spoken)}" for entry in entries]
        embed = discord.Embed(
            title=render(
                interaction, _("Pronunciations ({count}/{limit})", count=len(entries), limit=MAX_PRONUNCIATIONS)
            ),
            description=fit_lines(
                lines,
                EMBED_DESCRIPTION,
                lambda left: render(interaction, counted(left, "… and {count} more", "… and {count} more")),
            ),
            colour=discord.Colour.blurple(),
        )
        await answer(interaction, embed=embed, ephemeral=True)


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Pronounce(bot))
