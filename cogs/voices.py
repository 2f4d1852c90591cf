"""/voices: browse the catalogue, open a voice, preview it and adopt it."""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import NotAdminError, UserFacingError
from bot.limits import LanguageText, QueryText, fit_select_options, link, upload_limit, web_url
from bot.lookups import ensure_lookups
from bot.markdown import as_code, as_typed
from bot.replies import answer, defer_update, token_usable, update
from bot.tree import handle_error, is_admin
from bot.unmixr import Voice
from bot.voice_filters import VoiceFilters, select
from bot.wording import age_label, capability_label, counted
from cogs._options import (
    CAPABILITY_CHOICES,
    CATEGORY_CHOICES,
    GENDER_CHOICES,
    STYLE_CHOICES,
    USE_CASE_CHOICES,
    language_choices,
)

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

log = logging.getLogger(__name__)

PAGE_SIZE = 10
VIEW_TIMEOUT = 600.0
LANGUAGES_SHOWN = 10
# A press acknowledged this way leaves the control's own message as its original response.
_UPDATES_MESSAGE = (
    discord.InteractionResponseType.deferred_message_update,
    discord.InteractionResponseType.message_update,
)


@dataclass(slots=True)
class VoicePageData:
    """One page of voices and where it sits."""

    voices: list[Voice]
    page: int
    total_pages: int
    count: int


def _summary(voice: Voice) -> str:
    # Unmixr lists retired voices too; say so rather than offer a voice that /say would refuse.
    parts = [
        "unavailable" if not voice.is_available else "",
        voice.gender,
        voice.language,
        voice.quality,
        ", ".join(voice.use_cases or []),
    ]
    return " · ".join(part for part in parts if part) or "cloned voice"


def page_embed(data: VoicePageData, filters: VoiceFilters) -> discord.Embed:
    """The embed listing one page of voices."""
    embed = discord.Embed(title="Voices", colour=discord.Colour.blurple())
    if not data.voices:
        embed.description = "No voice matches these filters; try fewer of them."
    for voice in data.voices:
        embed.add_field(name=as_typed(voice.character or voice.uuid), value=as_typed(_summary(voice)), inline=False)
    footer = (
        f"Page {data.page} of {max(data.total_pages, 1)} · {counted(data.count, '{count} voice', '{count} voices')}"
    )
    described = filters.describe()
    embed.set_footer(text=f"{footer} · {described}" if described else footer)
    return embed


def details_embed(voice: Voice) -> discord.Embed:
    """The embed of one voice's details."""
    embed = discord.Embed(title=as_typed(voice.character or voice.uuid), colour=discord.Colour.blurple())
    embed.description = as_typed(voice.description) if voice.description else "No description."
    # Unmixr's URLs are untrusted: Discord refuses an embed whose image is not http(s).
    if web_url(voice.avatar_url):
        embed.set_thumbnail(url=voice.avatar_url)
    for name, value in (
        ("Gender", voice.gender),
        ("Language", voice.language),
        ("Quality", voice.quality),
        ("Age", age_label(voice.age) if voice.age else None),
        ("Personality", ", ".join(voice.personality or [])),
        ("Use cases", ", ".join(voice.use_cases or [])),
        ("Capabilities", ", ".join(capability_label(value) for value in voice.capabilities or [])),
    ):
        if value:
            embed.add_field(name=name, value=as_typed(str(value)))
    locales = list((voice.supported_locales or {}).keys()) or voice.languages
    if locales:
        shown = ", ".join(locales[:LANGUAGES_SHOWN])
        more = f" and {len(locales) - LANGUAGES_SHOWN} more" if len(locales) > LANGUAGES_SHOWN else ""
        embed.add_field(name="Locales", value=as_typed(f"{shown}{more}"), inline=False)
    if web_url(voice.sample_voice_url):
        embed.add_field(name="Sample", value=link("listen", voice.sample_voice_url), inline=False)
    embed.set_footer(text=f"uuid {voice.uuid}")
    return embed


class OwnedView(discord.ui.View):
    """A view only its invoker may use, disabled when it times out, with errors answered in one place."""

    def __init__(self, owner_id: int, origin: discord.Interaction[UnmixrBot]) -> None:
        super().__init__(timeout=VIEW_TIMEOUT)
        self.owner_id = owner_id
        # The interaction whose original response carries this view, then every press of it, newest last.
        self.origin = origin
        self.presses: list[discord.Interaction[Any]] = []

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        """Only the member who ran the command may press these buttons."""
        if interaction.user.id != self.owner_id:
            await answer(
                interaction,
                "These buttons belong to whoever ran this command; run it yourself to browse.",
                ephemeral=True,
            )
            return False
        self.presses.append(interaction)
        return True

    def editor(self) -> discord.Interaction[Any] | None:
        """The newest interaction whose token can still edit this view's message, if any.

        The press timed out last can be 10 minutes after the origin, whose token lives 15: the origin's token
        may be long dead. A press acknowledged by updating this message (deferred or not) edits it through its
        own token; a press answered with a message of its own cannot.
        """
        for press in reversed(self.presses):
            if press.response.type in _UPDATES_MESSAGE and token_usable(press):
                return press
        return self.origin if token_usable(self.origin) else None

    async def on_timeout(self) -> None:
        """Disable every control so nobody presses a dead button, through the newest token still valid."""
        for item in self.children:
            if isinstance(item, discord.ui.Button | discord.ui.Select):
                item.disabled = True
        editor = self.editor()
        if editor is None:
            log.info("the controls of interaction %s outlived every token that could disable them", self.origin.id)
            return
        try:
            await update(editor, view=self)
        except discord.HTTPException:
            log.debug("could not disable the controls of interaction %s", self.origin.id)

    async def on_error(
        self, interaction: discord.Interaction[Any], error: Exception, item: discord.ui.Item[Any]
    ) -> None:
        """Answer errors in controls the same way as in commands."""
        await handle_error(interaction, error)


class VoiceListView(OwnedView):
    """◀ ▶ paging and a select menu that opens one voice."""

    def __init__(
        self, cog: Voices, origin: discord.Interaction[UnmixrBot], filters: VoiceFilters, data: VoicePageData
    ) -> None:
        super().__init__(origin.user.id, origin)
        self.cog = cog
        self.filters = filters
        self.data = data
        self.voice_select = discord.ui.Select[VoiceListView](
            placeholder="Open a voice's details", min_values=1, max_values=1
        )
        self.voice_select.callback = self.open_voice  # type: ignore[method-assign,assignment]
        self.add_item(self.voice_select)
        self.refresh_controls()

    def refresh_controls(self) -> None:
        """Match buttons and the menu to the current page; a single page has no ◀ ▶ at all."""
        if self.data.total_pages <= 1:
            self.remove_item(self.previous_page)
            self.remove_item(self.next_page)
        self.previous_page.disabled = self.data.page <= 1
        self.next_page.disabled = self.data.page >= self.data.total_pages
        options = fit_select_options(
            discord.SelectOption(label=voice.character or voice.uuid, value=voice.uuid, description=_summary(voice))
            for voice in self.data.voices
        )
        self.voice_select.options = options or [discord.SelectOption(label="No voices", value="none")]
        self.voice_select.disabled = not options

    async def _show_page(self, interaction: discord.Interaction[UnmixrBot], page: int) -> None:
        # From memory: a press makes no Unmixr call, and answers by updating the list's own message.
        self.data = self.cog.page_of(interaction.guild_id, self.filters, page)
        self.refresh_controls()
        await update(interaction, embed=page_embed(self.data, self.filters), view=self)

    @discord.ui.button(emoji="◀", style=discord.ButtonStyle.secondary)
    async def previous_page(self, interaction: discord.Interaction[UnmixrBot], button: discord.ui.Button[Any]) -> None:
        """Show the previous page."""
        await self._show_page(interaction, self.data.page - 1)

    @discord.ui.button(emoji="▶", style=discord.ButtonStyle.secondary)
    async def next_page(self, interaction: discord.Interaction[UnmixrBot], button: discord.ui.Button[Any]) -> None:
        """Show the next page."""
        await self._show_page(interaction, self.data.page + 1)

    async def open_voice(self, interaction: discord.Interaction[UnmixrBot]) -> None:
        """Open the chosen voice's details in a new ephemeral message."""
        uuid = self.voice_select.values[0]
        voice = next((v for v in self.data.voices if v.uuid == uuid), None)
        if voice is None:
            raise UserFacingError("That voice is no longer on this page; pick another.")
        view = VoiceDetailsView(self.cog, interaction, voice)
        await answer(interaction, embed=details_embed(voice), view=view, ephemeral=True)


class VoiceDetailsView(OwnedView):
    """Preview, Use as my voice, Set as server default."""

    def __init__(self, cog: Voices, origin: discord.Interaction[UnmixrBot], voice: Voice) -> None:
        super().__init__(origin.user.id, origin)
        self.cog = cog
        self.voice = voice
        self.preview.disabled = web_url(voice.sample_voice_url) is None

    @discord.ui.button(label="Preview", style=discord.ButtonStyle.primary)
    async def preview(self, interaction: discord.Interaction[UnmixrBot], button: discord.ui.Button[Any]) -> None:
        """Send the voice's sample audio."""
        if not self.voice.sample_voice_url or web_url(self.voice.sample_voice_url) is None:
            raise UserFacingError("This voice has no sample; try it with /say instead.")
        # Acknowledged as an update of this message, so this press's token can disable the controls later.
        await defer_update(interaction)
        data = await self.cog.bot.unmixr.download_sample(self.voice.sample_voice_url)
        if len(data) > upload_limit(interaction.filesize_limit):
            # Too large to attach here: a link still lets the member listen.
            where = link("listen to it on Unmixr", self.voice.sample_voice_url)
            await answer(
                interaction,
                f"The sample of **{as_typed(self.voice.character)}** is too large to attach in this server; {where}.",
                ephemeral=True,
            )
            return
        extension = self.voice.sample_voice_url.rsplit(".", 1)[-1].lower()
        extension = extension if extension in ("mp3", "wav", "ogg", "m4a") else "mp3"
        file = discord.File(io.BytesIO(data), filename=f"sample.{extension}")
        await answer(interaction, f"Sample of **{as_typed(self.voice.character)}**", ephemeral=True, files=[file])

    @discord.ui.button(label="Use as my voice", style=discord.ButtonStyle.success)
    async def use_as_mine(self, interaction: discord.Interaction[UnmixrBot], button: discord.ui.Button[Any]) -> None:
        """Make this voice the member's preference in this server."""
        assert interaction.guild_id is not None
        await defer_update(interaction)
        await ensure_lookups(interaction, ephemeral=True, writes=True)
        self.cog.ensure_usable(self.voice, interaction.guild_id)
        await self.cog.bot.storage.set_member_preference(
            interaction.guild_id, interaction.user.id, "voice_id", self.voice.uuid
        )
        await answer(
            interaction, f"Your voice in this server is now **{as_typed(self.voice.character)}**.", ephemeral=True
        )

    @discord.ui.button(label="Set as server default", style=discord.ButtonStyle.secondary)
    async def set_server_default(
        self, interaction: discord.Interaction[UnmixrBot], button: discord.ui.Button[Any]
    ) -> None:
        """Make this voice the server's default (admins only, checked here)."""
        assert interaction.guild_id is not None
        if not is_admin(interaction):
            raise NotAdminError()
        await defer_update(interaction)
        await ensure_lookups(interaction, ephemeral=True, writes=True)
        self.cog.ensure_usable(self.voice, interaction.guild_id)
        old = await self.cog.bot.storage.set_guild_setting(interaction.guild_id, "voice_id", self.voice.uuid)
        old_voice = self.cog.bot.catalogue.get(old, interaction.guild_id) if old else None
        before = f"**{as_typed(old_voice.character)}**" if old_voice else ("not set" if old is None else as_code(old))
        await answer(interaction, f"Server voice: {before} → **{as_typed(self.voice.character)}**.", ephemeral=True)


class Voices(commands.Cog):
    """Browsing voices."""

    def __init__(self, bot: UnmixrBot) -> None:
        self.bot = bot

    def page_of(self, guild_id: int | None, filters: VoiceFilters, page: int) -> VoicePageData:
        """One page of the voices that pass the filters, from memory: the category's voices, or this server's
        clones for `category: clones` (the look-ups were made ready before)."""
        voices = select(self.bot.catalogue.listing(filters.category, guild_id), filters)
        total = max(1, math.ceil(len(voices) / PAGE_SIZE))
        page = min(max(page, 1), total)
        return VoicePageData(voices[(page - 1) * PAGE_SIZE : page * PAGE_SIZE], page, total, len(voices))

    def ensure_usable(self, voice: Voice, guild_id: int) -> None:
        """Refuse a voice this server cannot use (unavailable, or another server's clone)."""
        if self.bot.catalogue.get(voice.uuid, guild_id) is None:
            raise UserFacingError(f"**{as_typed(voice.character)}** cannot be used here; pick an available voice.")

    @app_commands.command(name="voices", description="Browse Unmixr voices.")
    @app_commands.describe(
        category="Voice category (clones: this server's cloned voices)",
        query="Part of a voice's name",
        language="A language or locale such as en or en-US",
        gender="Gender",
        capability="A capability the voice must have",
        style="A speaking style",
        use_case="A use case",
    )
    @app_commands.choices(
        category=CATEGORY_CHOICES,
        gender=GENDER_CHOICES,
        capability=CAPABILITY_CHOICES,
        style=STYLE_CHOICES,
        use_case=USE_CASE_CHOICES,
    )
    async def voices(
        self,
        interaction: discord.Interaction[UnmixrBot],
        category: str | None = None,
        query: QueryText | None = None,
        language: LanguageText | None = None,
        gender: str | None = None,
        capability: str | None = None,
        style: str | None = None,
        use_case: str | None = None,
    ) -> None:
        """List voices matching the filters, ten a page."""
        filters = VoiceFilters(category, query, language, gender, capability, style, use_case)
        # Browsing reads memory only; it defers first only while the catalogue is still loading.
        await ensure_lookups(interaction, ephemeral=True)
        data = self.page_of(interaction.guild_id, filters, 1)
        # Nothing to page through or open: no dead ◀ ▶ and no empty menu.
        view = VoiceListView(self, interaction, filters, data) if data.voices else None
        await answer(interaction, embed=page_embed(data, filters), view=view, ephemeral=True)

    @voices.autocomplete("language")
    async def _language_autocomplete(
        self, interaction: discord.Interaction[UnmixrBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await language_choices(self.bot, interaction, current)


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Voices(bot))
