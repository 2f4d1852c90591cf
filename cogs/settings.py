"""/settings: the server's defaults, for admins."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.budget import effective_budget
from bot.choices import FORMAT_CHOICES
from bot.errors import InvalidOptionError, UnknownVoiceError
from bot.i18n import Message, Text, _, command, counted, joined, listing, pgettext
from bot.i18n.interactions import render
from bot.limits import LanguageText, PitchText, RateText, VolumeText
from bot.lookups import ensure_lookups
from bot.markdown import as_code, as_typed
from bot.replies import READOUTS_OFF, answer, defer, defer_update, update
from bot.resolution import BUILTIN_DEFAULTS, MAX_LENGTH_LIMIT, SOURCE_LABELS, resolve_server
from bot.speech import FORMATS
from bot.storage import GuildSettings
from bot.text import ProsodyError, normalize_pitch, normalize_rate, normalize_volume
from bot.tree import handle_error, require_admin
from bot.wording import number
from cogs._options import language_choices, voice_choices

if TYPE_CHECKING:
    from bot.bot import UnmixrBot

# The largest budget a server may set (PRODUCT.md: 1 to 100,000,000 credits).
MAX_BUDGET = 100_000_000
_BUDGET_PERIODS: dict[str, Literal["day", "hour"]] = {"budget": "day", "member_budget": "hour"}
_BUDGET_KINDS: dict[str, Literal["server", "member"]] = {"budget": "server", "member_budget": "member"}

# /settings reset asks first; its buttons work for this long.
RESET_CONFIRM_SECONDS = 60.0
RESET_QUESTION = _(
    "Clear every server setting (voice, language, rate, pitch, volume, intensity, format, max-length, "
    "readout-channel, xsaid, auto-join, ignore-role and both budgets)? Pronunciations are kept. The buttons work for "
    "60 seconds."
)
RESET_NOT_YOURS = _(
    "Only the admin who ran {reset} can confirm it; run it yourself to clear the settings.",
    reset=command("settings reset"),
)
RESET_TIMED_OUT = _(
    "Nothing was cleared: the confirmation timed out. Run {reset} again to clear the settings.",
    reset=command("settings reset"),
)
RESET_CANCELLED = _("Nothing was cleared; every server setting stays as it was.")
RESET_CONFIRM_LABEL = _("Clear every setting")
RESET_CANCEL_LABEL = _("Cancel")

# Each setting as its subcommand is called (the same translations as the commands' names), for lists of settings.
SUBCOMMAND_NAMES: dict[str, Text] = {
    "voice_id": pgettext("command", "voice"),
    "language": pgettext("command", "language"),
    "rate": pgettext("command", "rate"),
    "pitch": pgettext("command", "pitch"),
    "volume": pgettext("command", "volume"),
    "intensity": pgettext("command", "intensity"),
    "format": pgettext("command", "format"),
    "max_length": pgettext("command", "max-length"),
    "readout_channel_id": pgettext("command", "readout-channel"),
    "xsaid": pgettext("command", "xsaid"),
    "auto_join": pgettext("command", "auto-join"),
    "ignore_role_id": pgettext("command", "ignore-role"),
    "budget": pgettext("command", "budget"),
    "member_budget": pgettext("command", "member-budget"),
}
# Each setting as a change names it: "Server readout channel: ... → ...".
SETTING_NAMES: dict[str, Text] = {
    "voice_id": pgettext("setting", "voice"),
    "language": pgettext("setting", "language"),
    "rate": pgettext("setting", "rate"),
    "pitch": pgettext("setting", "pitch"),
    "volume": pgettext("setting", "volume"),
    "intensity": pgettext("setting", "intensity"),
    "format": pgettext("setting", "format"),
    "max_length": pgettext("setting", "max-length"),
    "readout_channel_id": pgettext("setting", "readout channel"),
    "xsaid": pgettext("setting", "xsaid"),
    "auto_join": pgettext("setting", "auto-join"),
    "ignore_role_id": pgettext("setting", "ignored role"),
    "budget": pgettext("setting", "budget"),
    "member_budget": pgettext("setting", "member budget"),
}

log = logging.getLogger(__name__)

LANGUAGE_CODE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")


def _subcommand(name: str) -> Message:
    # A setting added without a name here still reads as its subcommand's English name.
    return SUBCOMMAND_NAMES.get(name) or name.replace("_id", "").replace("_", "-")


def check_language(code: str) -> str:
    """A language code such as en or en-US, or an InvalidOptionError."""
    code = code.strip()
    if not LANGUAGE_CODE.match(code):
        raise InvalidOptionError(_("“{code}” is not a language code; use one like en, en-US or fr-FR.", code=code[:40]))
    return code


def check_prosody(normalize: Any, value: str) -> str:
    """A normalised rate, pitch or volume, or an InvalidOptionError naming the accepted forms."""
    try:
        return str(normalize(value))
    except ProsodyError as error:
        raise InvalidOptionError(error.text) from None


class ResetConfirmation(discord.ui.View):
    """The buttons under /settings reset's question: only whoever asked may press them, for 60 s."""

    def __init__(self, cog: Settings, origin: discord.Interaction[UnmixrBot]) -> None:
        super().__init__(timeout=RESET_CONFIRM_SECONDS)
        self.cog = cog
        self.origin = origin

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        """Only the admin who ran /settings reset may confirm it, and only while still an admin."""
        if interaction.user.id != self.origin.user.id:
            await answer(interaction, RESET_NOT_YOURS, ephemeral=True)
            return False
        require_admin(interaction)
        return True

    async def on_error(
        self, interaction: discord.Interaction[Any], error: Exception, item: discord.ui.Item[Any]
    ) -> None:
        """Answer errors as commands do."""
        await handle_error(interaction, error)

    async def on_timeout(self) -> None:
        """Nothing was pressed in time: say so and disable the buttons."""
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        try:
            await update(self.origin, content=RESET_TIMED_OUT, view=self)
        except discord.HTTPException:
            log.debug("could not disable the reset buttons of interaction %s", self.origin.id)

    @discord.ui.button(label=str(RESET_CONFIRM_LABEL), style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction[UnmixrBot], button: discord.ui.Button[Any]) -> None:
        """Clear the settings and replace the question with what was cleared."""
        assert interaction.guild_id is not None
        # Acknowledged before the view stops: until then the press must still be in discord.py's view store, or
        # the bot's on_interaction would take it for a press on dead controls and answer it too.
        await defer_update(interaction)
        self.stop()
        message = await self.cog.clear_everything(interaction.guild_id)
        await update(interaction, content=message, remove_view=True)

    @discord.ui.button(label=str(RESET_CANCEL_LABEL), style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction[UnmixrBot], button: discord.ui.Button[Any]) -> None:
        """Leave everything as it is."""
        await update(interaction, content=RESET_CANCELLED, remove_view=True)
        self.stop()  # after the answer, as in confirm


@app_commands.default_permissions(manage_guild=True)
class Settings(commands.GroupCog, group_name="settings", group_description="Server defaults (admins)."):
    """Server-level settings."""

    def __init__(self, bot: UnmixrBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[UnmixrBot]) -> bool:  # type: ignore[override]
        """Every /settings subcommand is for admins; checked by the bot, not only by Discord."""
        require_admin(interaction)
        return True

    async def _change(
        self,
        interaction: discord.Interaction[UnmixrBot],
        name: str,
        value: Any,
        shown: Message | None = None,
    ) -> None:
        assert interaction.guild_id is not None
        await defer(interaction, ephemeral=True)
        old = await self.bot.storage.set_guild_setting(interaction.guild_id, name, value)
        new_server = await self.bot.storage.get_guild_settings(interaction.guild_id)
        effective = resolve_server(name, new_server, self.bot.settings.default_voice_id)
        old_text = self._show(name, old, interaction.guild_id) if old is not None else _("not set")
        new_text: Message
        if value is None and name in _BUDGET_PERIODS:
            budget = effective_budget(None, self.bot.guard.operator_limit(_BUDGET_KINDS[name]))
            new_text = _(
                "cleared (now {value}, the {source})",
                value=budget.amount(_BUDGET_PERIODS[name]),
                source=SOURCE_LABELS[budget.source],
            )
        elif value is None:
            now = self._effective(name, effective.value, new_server)
            new_text = _("cleared (now {value}, the {source})", value=now, source=SOURCE_LABELS[effective.source])
        else:
            new_text = shown or self._show(name, value, interaction.guild_id)
        changed = _("Server {setting}: {old} → {new}.", setting=SETTING_NAMES[name], old=old_text, new=new_text)
        if name == "readout_channel_id" and value is not None and not self.bot.readouts_enabled:
            await answer(interaction, joined([changed, "\n-# ", READOUTS_OFF]), ephemeral=True)
            return
        await answer(interaction, changed, ephemeral=True)

    def _effective(self, name: str, value: Any, server: GuildSettings) -> Message:
        if name in _BUDGET_PERIODS:
            budget = effective_budget(getattr(server, name), self.bot.guard.operator_limit(_BUDGET_KINDS[name]))
            return budget.describe(_BUDGET_PERIODS[name])
        # With no voice at any level, the voice is the first prebuilt one for the language: name it.
        if name != "voice_id" or value is not None:
            return self._show(name, value, server.guild_id)
        language = resolve_server("language", server).value or "en-US"
        voice = self.bot.catalogue.default_voice(language)
        if voice is None:
            return _("the first prebuilt voice for {language}", language=language)
        return _(
            "**{voice}**, the first prebuilt voice for {language}", voice=as_typed(voice.character), language=language
        )

    def _show(self, name: str, value: Any, guild_id: int) -> Message:
        if value is None:
            return _("none")
        if name == "voice_id":
            # This server's clones too: a server default may be one of them.
            voice = self.bot.catalogue.get(str(value), guild_id)
            return f"**{as_typed(voice.character)}**" if voice is not None else as_code(str(value))
        if name == "readout_channel_id":
            return f"<#{value}>"
        if name == "ignore_role_id":
            return f"<@&{value}>"
        if name in ("xsaid", "auto_join"):
            return _("on") if value else _("off")
        if name == "budget":
            return counted(value, "{count} credit a day", "{count} credits a day")
        if name == "member_budget":
            return counted(value, "{count} credit an hour", "{count} credits an hour")
        if name == "max_length":
            return counted(value, "{count} character", "{count} characters")
        return as_code(str(value))

    @app_commands.command(name="show", description="Every effective server setting and where it comes from.")
    async def show(self, interaction: discord.Interaction[UnmixrBot]) -> None:
        """List the server's effective settings with their level, and the caller's own preferences."""
        assert interaction.guild_id is not None
        await defer(interaction, ephemeral=True)
        server = await self.bot.storage.get_guild_settings(interaction.guild_id)
        rows = [
            "voice_id",
            "language",
            "rate",
            "pitch",
            "volume",
            "intensity",
            "format",
            "max_length",
            "readout_channel_id",
            "xsaid",
            "auto_join",
            "ignore_role_id",
        ]
        lines: list[Message] = []
        for name in rows:
            resolved = resolve_server(name, server, self.bot.settings.default_voice_id)
            shown = self._effective(name, resolved.value, server)
            lines.append(
                _(
                    "**{setting}**: {value} ({source})",
                    setting=SUBCOMMAND_NAMES[name],
                    value=shown,
                    source=SOURCE_LABELS[resolved.source],
                )
            )
        lines.extend(await self._budget_lines(interaction.guild_id, interaction.user.id))
        preferences = await self.bot.storage.get_member_preferences(interaction.guild_id, interaction.user.id)
        mine: list[Message] = [
            _(
                "**{setting}**: {value} (yours)",
                setting=label,
                value=self._show(name, getattr(preferences, name), interaction.guild_id),
            )
            for label, name in (
                (pgettext("command", "voice"), "voice_id"),
                (pgettext("command", "rate"), "rate"),
                (pgettext("command", "nickname"), "nickname"),
            )
            if getattr(preferences, name) is not None
        ]
        embed = discord.Embed(
            title=render(interaction, _("Server settings")),
            description=render(interaction, joined(lines, "\n")),
            colour=discord.Colour.blurple(),
        )
        embed.add_field(
            name=render(interaction, _("Your preferences")),
            value=render(interaction, joined(mine, "\n") if mine else _("none set")),
            inline=False,
        )
        if not self.bot.readouts_enabled:
            embed.set_footer(text=render(interaction, READOUTS_OFF))
        await answer(interaction, embed=embed, ephemeral=True)

    async def _budget_lines(self, guild_id: int, user_id: int) -> list[Message]:
        """Each budget, where it comes from, and what has been used of it."""
        guard = self.bot.guard
        now = guard.clock()
        server_budget, member_budget = await guard.budgets(guild_id)
        today = await self.bot.storage.usage_for_day(guild_id, now.date())
        mine = await self.bot.storage.member_usage(guild_id, user_id, at=now)
        return [
            _(
                "**{setting}**: {budget}, {used} used today ({source})",
                setting=SUBCOMMAND_NAMES["budget"],
                budget=server_budget.amount("day"),
                used=today.committed,
                source=SOURCE_LABELS[server_budget.source],
            ),
            _(
                "**{setting}**: {budget}, {used} used by you in the last 60 minutes ({source})",
                setting=SUBCOMMAND_NAMES["member_budget"],
                budget=member_budget.amount("hour"),
                used=mine.committed,
                source=SOURCE_LABELS[member_budget.source],
            ),
        ]

    async def _set_budget(
        self, interaction: discord.Interaction[UnmixrBot], kind: Literal["server", "member"], value: int | None
    ) -> None:
        operator = self.bot.guard.operator_limit(kind)
        if value is not None and operator is not None and value > operator:
            if kind == "server":
                refusal = _(
                    "The bot's operator allows at most {operator} credits a day here, so the budget cannot be "
                    "{value}; pick {operator} or less.",
                    operator=operator,
                    value=value,
                )
            else:
                refusal = _(
                    "The bot's operator allows at most {operator} credits an hour here, so the budget cannot be "
                    "{value}; pick {operator} or less.",
                    operator=operator,
                    value=value,
                )
            raise InvalidOptionError(refusal)
        await self._change(interaction, "budget" if kind == "server" else "member_budget", value)

    @app_commands.command(
        name="budget", description="Credits this server may spend per UTC day (leave empty to clear)."
    )
    @app_commands.describe(characters="1 to 100,000,000 credits a day (about one per character)")
    async def budget(
        self,
        interaction: discord.Interaction[UnmixrBot],
        characters: app_commands.Range[int, 1, MAX_BUDGET] | None = None,
    ) -> None:
        """Set or clear the server's daily budget."""
        await self._set_budget(interaction, "server", characters)

    @app_commands.command(
        name="member-budget", description="Credits each member may spend per 60 minutes (leave empty to clear)."
    )
    @app_commands.describe(characters="1 to 100,000,000 credits an hour (about one per character)")
    async def member_budget(
        self,
        interaction: discord.Interaction[UnmixrBot],
        characters: app_commands.Range[int, 1, MAX_BUDGET] | None = None,
    ) -> None:
        """Set or clear each member's hourly budget."""
        await self._set_budget(interaction, "member", characters)

    @app_commands.command(name="voice", description="The server's default voice (leave empty to clear).")
    @app_commands.describe(voice="A voice name or uuid")
    async def voice(self, interaction: discord.Interaction[UnmixrBot], voice: str | None = None) -> None:
        """Set or clear the default voice."""
        found = None
        if voice is not None:
            await ensure_lookups(interaction, ephemeral=True)
            found = self.bot.catalogue.find(voice, interaction.guild_id)
            if found is None:
                raise UnknownVoiceError(voice, self.bot.catalogue.close_names(voice, interaction.guild_id))
        await self._change(
            interaction,
            "voice_id",
            found.uuid if found else None,
            f"**{as_typed(found.character)}**" if found else None,
        )

    @voice.autocomplete("voice")
    async def _voice_autocomplete(
        self, interaction: discord.Interaction[UnmixrBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await voice_choices(self.bot, interaction, current)

    @app_commands.command(name="language", description="The server's default language (leave empty to clear).")
    @app_commands.describe(language="A language or locale such as en or en-US")
    async def language(self, interaction: discord.Interaction[UnmixrBot], language: LanguageText | None = None) -> None:
        """Set or clear the default language."""
        code = check_language(language) if language else None
        # A language no voice speaks would only be dropped from every request later: refuse it now, from memory
        # (not before the catalogue first loads, so that Unmixr being down does not block the setting).
        if code is not None and self.bot.catalogue.loaded and not self.bot.catalogue.speaks(code, interaction.guild_id):
            voices = self.bot.catalogue.voices_for(interaction.guild_id)
            if voices:
                examples = ", ".join(sorted({voice.language for voice in voices if voice.language})[:5])
                raise InvalidOptionError(
                    _("No voice speaks “{code}”; pick a language such as {examples}.", code=code, examples=examples)
                )
        await self._change(interaction, "language", code)

    @language.autocomplete("language")
    async def _language_autocomplete(
        self, interaction: discord.Interaction[UnmixrBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await language_choices(self.bot, interaction, current)

    @app_commands.command(name="rate", description="The server's default speed (leave empty to clear).")
    @app_commands.describe(rate="-100% to +100%, or x-slow, slow, medium, fast, x-fast, default")
    async def rate(self, interaction: discord.Interaction[UnmixrBot], rate: RateText | None = None) -> None:
        """Set or clear the default rate."""
        await self._change(interaction, "rate", check_prosody(normalize_rate, rate) if rate else None)

    @app_commands.command(name="pitch", description="The server's default pitch (leave empty to clear).")
    @app_commands.describe(pitch="-50% to +50%, or x-low, low, medium, high, x-high, default")
    async def pitch(self, interaction: discord.Interaction[UnmixrBot], pitch: PitchText | None = None) -> None:
        """Set or clear the default pitch."""
        await self._change(interaction, "pitch", check_prosody(normalize_pitch, pitch) if pitch else None)

    @app_commands.command(name="volume", description="The server's default volume (leave empty to clear).")
    @app_commands.describe(volume="-100% to +100%, or silent, x-soft, soft, medium, loud, x-loud, default")
    async def volume(self, interaction: discord.Interaction[UnmixrBot], volume: VolumeText | None = None) -> None:
        """Set or clear the default volume."""
        value = check_prosody(normalize_volume, volume) if volume else None
        await self._change(interaction, "volume", value)

    @app_commands.command(name="intensity", description="The server's default intensity (leave empty to clear).")
    @app_commands.describe(intensity="-100 to 100; used only with voices that support intensity")
    async def intensity(
        self,
        interaction: discord.Interaction[UnmixrBot],
        intensity: app_commands.Range[int, -100, 100] | None = None,
    ) -> None:
        """Set or clear the default intensity."""
        if intensity is not None and not -100 <= intensity <= 100:
            raise InvalidOptionError(
                _("Intensity must be a whole number from -100 to 100, not {intensity}.", intensity=str(intensity))
            )
        await self._change(interaction, "intensity", intensity)

    @app_commands.command(name="format", description="The server's default audio format (leave empty to clear).")
    @app_commands.describe(format="mp3, wav or a voice message")
    @app_commands.choices(format=FORMAT_CHOICES)
    async def format(self, interaction: discord.Interaction[UnmixrBot], format: str | None = None) -> None:
        """Set or clear the default format."""
        if format is not None and format not in FORMATS:
            raise InvalidOptionError(_("Format must be mp3, wav or voice-message."))
        await self._change(interaction, "format", format)

    @app_commands.command(name="max-length", description="The longest text the bot will speak (leave empty to clear).")
    @app_commands.describe(length=f"1 to {number(MAX_LENGTH_LIMIT)} characters")
    async def max_length(
        self,
        interaction: discord.Interaction[UnmixrBot],
        length: app_commands.Range[int, 1, MAX_LENGTH_LIMIT] | None = None,
    ) -> None:
        """Set or clear the maximum text length."""
        if length is not None and not 1 <= length <= MAX_LENGTH_LIMIT:
            raise InvalidOptionError(
                _(
                    "The maximum length must be from 1 to {limit} characters, not {length}.",
                    limit=MAX_LENGTH_LIMIT,
                    length=length,
                )
            )
        await self._change(interaction, "max_length", length)

    @app_commands.command(name="readout-channel", description="The channel read aloud in voice (leave empty to clear).")
    @app_commands.describe(channel="A text channel, or a voice channel's chat")
    async def readout_channel(
        self,
        interaction: discord.Interaction[UnmixrBot],
        channel: discord.TextChannel | discord.VoiceChannel | discord.StageChannel | None = None,
    ) -> None:
        """Set or clear the readout channel; refused where the bot could not read the messages."""
        if channel is not None and interaction.guild is not None:
            # Discord sends no messages from a channel the bot cannot view (PRODUCT.md, Voice in Discord's world).
            granted = channel.permissions_for(interaction.guild.me)
            missing = [
                name
                for name, ok in (
                    (pgettext("permission", "View Channel"), granted.view_channel),
                    (pgettext("permission", "Read Message History"), granted.read_message_history),
                )
                if not ok
            ]
            if missing:
                raise InvalidOptionError(
                    _(
                        "I can't read {channel}: I need the {permissions} permission there; ask an admin to grant it, "
                        "or pick another channel.",
                        channel=channel.mention,
                        permissions=listing(missing, conjunction=True),
                    )
                )
        await self._change(interaction, "readout_channel_id", channel.id if channel else None)

    @app_commands.command(name="xsaid", description="Say “<name> said” before readouts (leave empty to clear).")
    @app_commands.describe(enabled="On: announce who wrote each message")
    async def xsaid(self, interaction: discord.Interaction[UnmixrBot], enabled: bool | None = None) -> None:
        """Turn the "<name> said" prefix on or off."""
        await self._change(interaction, "xsaid", enabled)

    @app_commands.command(
        name="auto-join",
        description="Join a member's voice channel when they write in the readout channel (leave empty to clear).",
    )
    @app_commands.describe(enabled="On: a message in the readout channel brings the bot to its author's voice channel")
    async def auto_join(self, interaction: discord.Interaction[UnmixrBot], enabled: bool | None = None) -> None:
        """Turn auto-join on or off: a message in the readout channel brings the bot into its author's channel."""
        await self._change(interaction, "auto_join", enabled)

    @app_commands.command(
        name="ignore-role", description="Members with this role are not read aloud (leave empty to clear)."
    )
    @app_commands.describe(role="The role whose members are not read aloud")
    async def ignore_role(self, interaction: discord.Interaction[UnmixrBot], role: discord.Role | None = None) -> None:
        """Set or clear the ignored role."""
        await self._change(interaction, "ignore_role_id", role.id if role else None)

    @app_commands.command(name="reset", description="Clear every server setting (pronunciations are kept).")
    async def reset(self, interaction: discord.Interaction[UnmixrBot]) -> None:
        """Ask the caller to confirm, then clear every server setting."""
        view = ResetConfirmation(self, interaction)
        view.confirm.label = render(interaction, RESET_CONFIRM_LABEL)
        view.cancel.label = render(interaction, RESET_CANCEL_LABEL)
        await answer(interaction, RESET_QUESTION, view=view, ephemeral=True)

    async def clear_everything(self, guild_id: int) -> Message:
        """Clear every server setting and return the answer naming what was cleared."""
        old = await self.bot.storage.reset_guild_settings(guild_id)
        changed: list[Message] = [
            _("{setting} {value}", setting=_subcommand(name), value=self._show(name, getattr(old, name), guild_id))
            for name in BUILTIN_DEFAULTS
            if getattr(old, name, None) is not None
        ]
        if changed:
            return _(
                "Cleared every server setting ({settings}); the defaults apply again.",
                settings=joined(changed, "; "),
            )
        return _("There were no server settings to clear; the defaults already apply.")

    @commands.Cog.listener()
    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        """A deleted readout channel clears the setting."""
        await self.bot.storage.clear_channel(channel.guild.id, channel.id)

    @commands.Cog.listener()
    async def on_guild_role_delete(self, role: discord.Role) -> None:
        """A deleted ignored role clears the setting."""
        await self.bot.storage.clear_role(role.guild.id, role.id)


async def setup(bot: UnmixrBot) -> None:
    """Load the extension."""
    await bot.add_cog(Settings(bot))
