"""/voices: browse the catalogue, open a voice, preview it and adopt it."""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import NotAdminError, UserFacingError
from bot.limits import LanguageText, QueryText, fit_select_options, link, one_page, upload_limit, web_url
from bot.lookups import ensure_lookups
from bot.replies import answer, defer, defer_update, update
from bot.tree import handle_error, is_admin
from bot.unmixr import UnmixrError, Voice
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


@dataclass(slots=True)
class VoiceFilters:
    """The filters of one /voices listing."""

    category: str | None = None
    query: str | None = None
    language: str | None = None
    gender: str | None = None
    capability: str | None = None
    style: str | None = None
    use_case: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """The filters as a short line."""
        parts = [
            f"{name}: {value}"
            for name, value in (
                ("category", self.category),
                ("query", self.query),
                ("language", self.language),
                ("gender", self.gender),
                ("capability", self.capability),
                ("style", self.style),
                ("use case", self.use_case),
            )
            if value
        ]
        return " · ".join(parts)


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
        embed.add_field(name=voice.character or voice.uuid, value=_summary(voice), inline=False)
    footer = (
        f"Page {data.page} of {max(data.total_pages, 1)} · {counted(data.count, '{count} voice', '{count} voices')}"
    )
    described = filters.describe()
    embed.set_footer(text=f"{footer} · {described}" if described else footer)
    return embed


def details_embed(voice: Voice) -> discord.Embed:
    """The embed of one voice's details."""
    embed = discord.Embed(title=voice.character or voice.uuid, colour=discord.Colour.blurple())
    embed.description = voice.description or "No description."
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
            embed.add_field(name=name, value=str(value))
    locales = list((voice.supported_locales or {}).keys()) or voice.languages
    if locales:
        shown = ", ".join(locales[:LANGUAGES_SHOWN])
        more = f" and {len(locales) - LANGUAGES_SHOWN} more" if len(locales) > LANGUAGES_SHOWN else ""
        embed.add_field(name="Locales", value=f"{shown}{more}", inline=False)
    if web_url(voice.sample_voice_url):
        embed.add_field(name="Sample", value=link("listen", voice.sample_voice_url), inline=False)
    embed.set_footer(text=f"uuid {voice.uuid}")
    return embed


class OwnedView(discord.ui.View):
    """A view only its invoker may use, disabled when it times out, with errors answered in one place."""

    def __init__(self, owner_id: int, origin: discord.Interaction[UnmixrBot]) -> None:
        super().__init__(timeout=VIEW_TIMEOUT)
        self.owner_id = owner_id
        self.origin = origin

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        """Only the member who ran the command may press these buttons."""
        if interaction.user.id != self.owner_id:
            await answer(
                interaction,
                "These buttons belong to whoever ran this command; run it yourself to browse.",
                ephemeral=True,
            )
            return False
        return True

    async def on_timeout(self) -> None:
        """Disable every control so nobody presses a dead button."""
        for item in self.children:
            if isinstance(item, discord.ui.Button | discord.ui.Select):
                item.disabled = True
        try:
            await update(self.origin, view=self)
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
        await defer_update(interaction)
        try:
            data = await self.cog.fetch_page(interaction.guild_id, self.filters, page)
        except UnmixrError as error:
            log.warning("Unmixr error while paging /voices: %s", error.message)
            # A private follow-up: editing the list would leave the error stuck above every later page.
            await answer(interaction, error.message, ephemeral=True)
            return
        self.data = data
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
        await defer(interaction, ephemeral=True)
        data = await self.cog.bot.unmixr.download_sample(self.voice.sample_voice_url)
        if len(data) > upload_limit(interaction.filesize_limit):
            # Too large to attach here: a link still lets the member listen.
            where = link("listen to it on Unmixr", self.voice.sample_voice_url)
            await answer(
                interaction,
                f"The sample of **{self.voice.character}** is too large to attach in this server; {where}.",
                ephemeral=True,
            )
            return
        extension = self.voice.sample_voice_url.rsplit(".", 1)[-1].lower()
        extension = extension if extension in ("mp3", "wav", "ogg", "m4a") else "mp3"
        file = discord.File(io.BytesIO(data), filename=f"sample.{extension}")
        await answer(interaction, f"Sample of **{self.voice.character}**", ephemeral=True, files=[file])

    @discord.ui.button(label="Use as my voice", style=discord.ButtonStyle.success)
    async def use_as_mine(self, interaction: discord.Interaction[UnmixrBot], button: discord.ui.Button[Any]) -> None:
        """Make this voice the member's preference in this server."""
        assert interaction.guild_id is not None
        await ensure_lookups(interaction, ephemeral=True, writes=True)
        self.cog.ensure_usable(self.voice, interaction.guild_id)
        await self.cog.bot.storage.set_member_preference(
            interaction.guild_id, interaction.user.id, "voice_id", self.voice.uuid
        )
        await answer(interaction, f"Your voice in this server is now **{self.voice.character}**.", ephemeral=True)

    @discord.ui.button(label="Set as server default", style=discord.ButtonStyle.secondary)
    async def set_server_default(
        self, interaction: discord.Interaction[UnmixrBot], button: discord.ui.Button[Any]
    ) -> None:
        """Make this voice the server's default (admins only, checked here)."""
        assert interaction.guild_id is not None
        if not is_admin(interaction):
            raise NotAdminError()
        await ensure_lookups(interaction, ephemeral=True, writes=True)
        self.cog.ensure_usable(self.voice, interaction.guild_id)
        old = await self.cog.bot.storage.set_guild_setting(interaction.guild_id, "voice_id", self.voice.uuid)
        old_voice = self.cog.bot.catalogue.get(old, interaction.guild_id) if old else None
        before = f"**{old_voice.character}**" if old_voice else ("not set" if old is None else f"`{old}`")
        await answer(interaction, f"Server voice: {before} → **{self.voice.character}**.", ephemeral=True)


class Voices(commands.Cog):
    """Browsing voices."""

    def __init__(self, bot: UnmixrBot) -> None:
        self.bot = bot

    async def fetch_page(self, guild_id: int | None, filters: VoiceFilters, page: int) -> VoicePageData:
        """One page of voices: from Unmixr, or this server's clones for `category: clones`."""
        if filters.category == "clones":
            assert guild_id is not None
            await self.bot.catalogue.prepare(guild_id)  # both callers have deferred already
            clones = self.bot.catalogue.guild_clones(guild_id)
            if filters.query:
                wanted = filters.query.casefold()
                clones = [voice for voice in clones if wanted in (voice.character or "").casefold()]
            total = max(1, math.ceil(len(clones) / PAGE_SIZE))
            page = min(max(page, 1), total)
            return VoicePageData(clones[(page - 1) * PAGE_SIZE : page * PAGE_SIZE], page, total, len(clones))
        result = await self.bot.unmixr.voice_list(
            category=filters.category,
            query=filters.query,
            language=filters.language,
            gender=filters.gender,
            capabilities=filters.capability,
            styles=filters.style,
            use_case=filters.use_case,
            page=max(page, 1),
            page_size=PAGE_SIZE,
        )
        return VoicePageData(
            # An upstream that ignores page_size must not overflow the embed or the menu.
            voices=one_page(result.results, PAGE_SIZE),
            page=result.current_page or page,
            total_pages=result.total_page or 1,
            count=result.count or len(result.results),
        )

    def ensure_usable(self, voice: Voice, guild_id: int) -> None:
        """Refuse a voice this server cannot use (unavailable, or another server's clone)."""
        if self.bot.catalogue.get(voice.uuid, guild_id) is None:
            raise UserFacingError(f"**{voice.character}** cannot be used here; pick an available voice.")

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
        await defer(interaction, ephemeral=True)
        try:
            data = await self.fetch_page(interaction.guild_id, filters, 1)
        except UnmixrError as error:
            if error.code == 404:
                data = VoicePageData([], 1, 1, 0)
            else:
                raise
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
