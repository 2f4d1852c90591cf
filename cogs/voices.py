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

from bot.choices import CAPABILITY_CHOICES, CATEGORY_CHOICES, GENDER_CHOICES, STYLE_CHOICES, USE_CASE_CHOICES
from bot.errors import NotAdminError, ServerOnlyError, UserFacingError
from bot.i18n import Language, Message, _, command, counted, listing, pgettext
from bot.i18n.interactions import language_of, render
from bot.limits import LanguageText, QueryText, fit_select_options, link, upload_limit, web_url
from bot.lookups import ensure_lookups
from bot.markdown import as_code, as_typed
from bot.reach import is_user_install, server_id
from bot.replies import answer, defer_update, token_usable, update
from bot.tree import handle_error, is_admin
from bot.unmixr import Voice
from bot.voice_filters import VoiceFilters, select
from bot.wording import age_label, capability_label
from cogs._options import language_choices

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

log = logging.getLogger(__name__)

PREVIEW = _("Preview")
USE_AS_MINE = _("Use as my voice")
SET_AS_DEFAULT = _("Set as server default")

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


def _summary(voice: Voice, language: Language) -> str:
    # Unmixr lists retired voices too; say so rather than offer a voice that /say would refuse.
    parts = [
        language.text(_("unavailable")) if not voice.is_available else "",
        voice.gender,
        voice.language,
        voice.quality,
        ", ".join(voice.use_cases or []),
    ]
    return " · ".join(part for part in parts if part) or language.text(_("cloned voice"))


def page_embed(data: VoicePageData, filters: VoiceFilters, language: Language) -> discord.Embed:
    """The embed listing one page of voices, in the member's language."""
    embed = discord.Embed(title=language.text(_("Voices")), colour=discord.Colour.blurple())
    if not data.voices:
        embed.description = language.text(_("No voice matches these filters; try fewer of them."))
    for voice in data.voices:
        embed.add_field(
            name=as_typed(voice.character or voice.uuid), value=as_typed(_summary(voice, language)), inline=False
        )
    footer = counted(
        data.count,
        "Page {page} of {pages} · {count} voice",
        "Page {page} of {pages} · {count} voices",
        page=data.page,
        pages=max(data.total_pages, 1),
    )
    described = language.value(filters.describe())
    shown = language.text(footer)
    embed.set_footer(text=f"{shown} · {described}" if described else shown)
    return embed


def details_embed(voice: Voice, language: Language) -> discord.Embed:
    """The embed of one voice's details, in the member's language."""
    embed = discord.Embed(title=as_typed(voice.character or voice.uuid), colour=discord.Colour.blurple())
    embed.description = as_typed(voice.description) if voice.description else language.text(_("No description."))
    # Unmixr's URLs are untrusted: Discord refuses an embed whose image is not http(s).
    if web_url(voice.avatar_url):
        embed.set_thumbnail(url=voice.avatar_url)
    capabilities = listing([capability_label(value) for value in voice.capabilities or []])
    for name, value in (
        (_("Gender"), voice.gender),
        (_("Language"), voice.language),
        (_("Quality"), voice.quality),
        (_("Age"), language.value(age_label(voice.age)) if voice.age else None),
        (_("Personality"), ", ".join(voice.personality or [])),
        (_("Use cases"), ", ".join(voice.use_cases or [])),
        (_("Capabilities"), language.value(capabilities) if voice.capabilities else None),
    ):
        if value:
            embed.add_field(name=language.text(name), value=as_typed(str(value)))
    locales = list((voice.supported_locales or {}).keys()) or voice.languages
    if locales:
        shown = ", ".join(locales[:LANGUAGES_SHOWN])
        if len(locales) > LANGUAGES_SHOWN:
            left = len(locales) - LANGUAGES_SHOWN
            shown = language.text(
                counted(left, "{locales} and {count} more", "{locales} and {count} more", locales=shown)
            )
        embed.add_field(name=language.text(_("Locales")), value=as_typed(shown), inline=False)
    if web_url(voice.sample_voice_url):
        listen = link(language.text(_("listen")), voice.sample_voice_url)
        embed.add_field(name=language.text(_("Sample")), value=listen, inline=False)
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
        # Only the owner presses these controls: the owner's language is the view's.
        self.language = language_of(origin)

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        """Only the member who ran the command may press these buttons."""
        if interaction.user.id != self.owner_id:
            await answer(
                interaction,
                _("These buttons belong to whoever ran this command; run it yourself to browse."),
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
            placeholder=self.language.text(_("Open a voice's details")), min_values=1, max_values=1
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
            discord.SelectOption(
                label=voice.character or voice.uuid, value=voice.uuid, description=_summary(voice, self.language)
            )
            for voice in self.data.voices
        )
        no_voices = discord.SelectOption(label=self.language.text(_("No voices")), value="none")
        self.voice_select.options = options or [no_voices]
        self.voice_select.disabled = not options

    async def _show_page(self, interaction: discord.Interaction[UnmixrBot], page: int) -> None:
        # From memory: a press makes no Unmixr call, and answers by updating the list's own message.
        self.data = self.cog.page_of(server_id(interaction), self.filters, page)
        self.refresh_controls()
        await update(interaction, embed=page_embed(self.data, self.filters, self.language), view=self)

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
            raise UserFacingError(_("That voice is no longer on this page; pick another."))
        view = VoiceDetailsView(self.cog, interaction, voice)
        await answer(interaction, embed=details_embed(voice, self.language), view=view, ephemeral=True)


class VoiceDetailsView(OwnedView):
    """Preview, Use as my voice, Set as server default."""

    def __init__(self, cog: Voices, origin: discord.Interaction[UnmixrBot], voice: Voice) -> None:
        super().__init__(origin.user.id, origin)
        self.cog = cog
        self.voice = voice
        self.preview.disabled = web_url(voice.sample_voice_url) is None
        self.preview.label = self.language.text(PREVIEW)
        self.use_as_mine.label = self.language.text(USE_AS_MINE)
        self.set_server_default.label = self.language.text(SET_AS_DEFAULT)
        if is_user_install(origin):
            # No server here to set a default for (PRODUCT.md, Reach: nothing that needs a server is offered).
            self.remove_item(self.set_server_default)

    @discord.ui.button(label=str(PREVIEW), style=discord.ButtonStyle.primary)
    async def preview(self, interaction: discord.Interaction[UnmixrBot], button: discord.ui.Button[Any]) -> None:
        """Send the voice's sample audio."""
        if not self.voice.sample_voice_url or web_url(self.voice.sample_voice_url) is None:
            raise UserFacingError(_("This voice has no sample; try it with {say} instead.", say=command("say")))
        # Acknowledged as an update of this message, so this press's token can disable the controls later.
        await defer_update(interaction)
        data = await self.cog.bot.unmixr.download_sample(self.voice.sample_voice_url)
        if len(data) > upload_limit(interaction.filesize_limit):
            # Too large to attach here: a link still lets the member listen.
            where = link(render(interaction, _("listen to it on Unmixr")), self.voice.sample_voice_url)
            await answer(
                interaction,
                _(
                    "The sample of **{voice}** is too large to attach in this server; {link}.",
                    voice=as_typed(self.voice.character),
                    link=where,
                ),
                ephemeral=True,
            )
            return
        extension = self.voice.sample_voice_url.rsplit(".", 1)[-1].lower()
        extension = extension if extension in ("mp3", "wav", "ogg", "m4a") else "mp3"
        file = discord.File(io.BytesIO(data), filename=f"sample.{extension}")
        sample = _("Sample of **{voice}**", voice=as_typed(self.voice.character))
        await answer(interaction, sample, ephemeral=True, files=[file])

    @discord.ui.button(label=str(USE_AS_MINE), style=discord.ButtonStyle.success)
    async def use_as_mine(self, interaction: discord.Interaction[UnmixrBot], button: discord.ui.Button[Any]) -> None:
        """Make this voice the member's preference in this server (the user's account-wide one for a user install)."""
        await defer_update(interaction)
        await ensure_lookups(interaction, ephemeral=True, writes=True)
        self.cog.ensure_usable(self.voice, server_id(interaction))
        if is_user_install(interaction):
            await self.cog.bot.storage.set_user_preference(interaction.user.id, "voice_id", self.voice.uuid)
            await answer(
                interaction,
                _(
                    "Your voice for this app in DMs and servers without it is now **{voice}**.",
                    voice=as_typed(self.voice.character),
                ),
                ephemeral=True,
            )
            return
        assert interaction.guild_id is not None
        await self.cog.bot.storage.set_member_preference(
            interaction.guild_id, interaction.user.id, "voice_id", self.voice.uuid
        )
        await answer(
            interaction,
            _("Your voice in this server is now **{voice}**.", voice=as_typed(self.voice.character)),
            ephemeral=True,
        )

    @discord.ui.button(label=str(SET_AS_DEFAULT), style=discord.ButtonStyle.secondary)
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
        before: Message = (
            f"**{as_typed(old_voice.character)}**" if old_voice else (_("not set") if old is None else as_code(old))
        )
        changed = _(
            "Server {setting}: {old} → {new}.",
            setting=pgettext("setting", "voice"),
            old=before,
            new=f"**{as_typed(self.voice.character)}**",
        )
        await answer(interaction, changed, ephemeral=True)


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

    def ensure_usable(self, voice: Voice, guild_id: int | None) -> None:
        """Refuse a voice this server (or a user install) cannot use (unavailable, or another server's clone)."""
        if self.bot.catalogue.get(voice.uuid, guild_id) is None:
            raise UserFacingError(
                _("**{voice}** cannot be used here; pick an available voice.", voice=as_typed(voice.character))
            )

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
        if category == "clones" and is_user_install(interaction):
            raise ServerOnlyError(
                _("Cloned voices belong to the servers that made them; here, browse another category instead.")
            )
        # Browsing reads memory only; it defers first only while the catalogue is still loading.
        await ensure_lookups(interaction, ephemeral=True)
        data = self.page_of(server_id(interaction), filters, 1)
        # Nothing to page through or open: no dead ◀ ▶ and no empty menu.
        view = VoiceListView(self, interaction, filters, data) if data.voices else None
        await answer(interaction, embed=page_embed(data, filters, language_of(interaction)), view=view, ephemeral=True)

    @voices.autocomplete("language")
    async def _language_autocomplete(
        self, interaction: discord.Interaction[UnmixrBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await language_choices(self.bot, interaction, current)


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Voices(bot))
