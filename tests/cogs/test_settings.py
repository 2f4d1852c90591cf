"""End-to-end tests of /settings: the command's shape, every subcommand, show, reset, and settings resolution."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from bot.storage import Storage
from cogs.settings import RESET_QUESTION
from tests.cogs.test_say import add_clone_upstream
from tests.conftest import ADMIN_PERMISSIONS, World
from tests.fakes.discord_server import (
    ChannelOption,
    FakeInteraction,
    FakeMember,
    Response,
    RoleOption,
    iter_components,
)
from tests.fakes.unmixr_catalogue import BRIAN_ID

SETTINGS_OPTIONS = {
    "show": [],
    "voice": ["voice"],
    "language": ["language"],
    "rate": ["rate"],
    "pitch": ["pitch"],
    "volume": ["volume"],
    "intensity": ["intensity"],
    "format": ["format"],
    "max-length": ["length"],
    "readout-channel": ["channel"],
    "xsaid": ["enabled"],
    "auto-join": ["enabled"],
    "ignore-role": ["role"],
    "budget": ["characters"],
    "member-budget": ["characters"],
    "reset": [],
}
MANAGE_GUILD = str(1 << 5)


def is_answer(response: Response) -> bool:
    """Whether a response carries the interaction's answer (not only an acknowledgement)."""
    if response.status >= 300:
        return False
    return response.kind in ("followup", "edit_original", "edit_followup") or (
        response.kind == "callback" and response.type in (4, 7)
    )


async def settings(
    world: World, subcommand: str, options: dict[str, Any] | None = None, *, member: FakeMember | None = None, **kw: Any
) -> FakeInteraction:
    """Run a /settings subcommand (as the admin unless told) and wait for its answer."""
    interaction = await world.slash("settings", options, subcommand=subcommand, member=member or world.admin, **kw)
    await interaction.wait_for(is_answer)
    return interaction


def show_lines(interaction: FakeInteraction) -> dict[str, str]:
    """The `/settings show` embed's server lines by label, plus "yours" for the member's own preferences."""
    embed = interaction.embeds()[0]
    lines: dict[str, str] = {}
    for line in embed["description"].splitlines():
        label, _, rest = line.partition(": ")
        lines[label.strip("*")] = rest
    lines["yours"] = " ".join(field["value"] for field in embed.get("fields") or [])
    return lines


def command(world: World, name: str) -> dict[str, Any]:
    """The command as the bot synced it to the test server."""
    return next(c for c in world.discord.commands[world.guild.id] if c["name"] == name and c.get("type", 1) == 1)


async def test_settings_command_has_exactly_the_documented_subcommands_and_options(running: World) -> None:
    synced = command(running, "settings")
    subcommands = {option["name"]: option for option in synced["options"]}
    assert {name: [o["name"] for o in sub.get("options") or []] for name, sub in subcommands.items()} == (
        SETTINGS_OPTIONS
    )
    assert all(sub["type"] == 1 for sub in subcommands.values())
    # Every option may be left out: that is how a setting is cleared.
    assert not any(o.get("required") for sub in subcommands.values() for o in sub.get("options") or [])
    types = {name: sub["options"][0]["type"] for name, sub in subcommands.items() if sub.get("options")}
    assert types == {
        "voice": 3,
        "language": 3,
        "rate": 3,
        "pitch": 3,
        "volume": 3,
        "intensity": 4,
        "format": 3,
        "max-length": 4,
        "readout-channel": 7,
        "xsaid": 5,
        "auto-join": 5,
        "ignore-role": 8,
        "budget": 4,
        "member-budget": 4,
    }
    assert str(synced["default_member_permissions"]) == MANAGE_GUILD
    assert command(running, "pronounce")["default_member_permissions"] is None
    assert command(running, "preferences")["default_member_permissions"] is None


async def test_every_change_answers_privately_with_the_old_and_new_value(world: World) -> None:
    role = world.guild.add_role("Muted")
    await world.start_bot()
    guild_id = world.guild.id
    readout, text = world.readout["id"], world.text["id"]
    # subcommand, option, first value, how it is shown, second value, how it is shown, shown once cleared
    cases: list[tuple[str, str, Any, str, Any, str, str]] = [
        ("voice", "voice", "Jenny", "**Jenny**", "Brian", "**Brian**", "**Brian**"),
        ("language", "language", "en-GB", "`en-GB`", "fr-FR", "`fr-FR`", "`en-US`"),
        ("rate", "rate", "+20%", "`+20%`", "SLOW", "`slow`", "`default`"),
        ("pitch", "pitch", "-10%", "`-10%`", "high", "`high`", "`default`"),
        ("volume", "volume", "+50%", "`+50%`", "x-loud", "`x-loud`", "`default`"),
        ("intensity", "intensity", 40, "`40`", -20, "`-20`", "none"),
        ("format", "format", "wav", "`wav`", "mp3", "`mp3`", "`mp3`"),
        ("max-length", "length", 500, "500 characters", 1000, "1,000 characters", "6,000 characters"),
        (
            "readout-channel",
            "channel",
            ChannelOption(readout),
            f"<#{readout}>",
            ChannelOption(text),
            f"<#{text}>",
            "none",
        ),
        ("xsaid", "enabled", False, "off", True, "on", "on"),
        ("auto-join", "enabled", True, "on", False, "off", "off"),
        ("ignore-role", "role", RoleOption(int(role["id"])), f"<@&{role['id']}>", None, "", "none"),
    ]
    for subcommand, option, first, first_shown, second, second_shown, cleared in cases:
        label = {"ignore-role": "ignored role", "readout-channel": "readout channel"}.get(subcommand, subcommand)
        set_first = await settings(world, subcommand, {option: first})
        assert set_first.ephemeral, subcommand
        assert set_first.content() == f"Server {label}: not set → {first_shown}.", subcommand
        previous = first_shown
        if second is not None:
            set_second = await settings(world, subcommand, {option: second})
            assert set_second.ephemeral, subcommand
            assert set_second.content() == f"Server {label}: {first_shown} → {second_shown}.", subcommand
            previous = second_shown
        cleared_answer = await settings(world, subcommand)
        assert cleared_answer.ephemeral, subcommand
        content = cleared_answer.content()
        assert content.startswith(f"Server {label}: {previous} → cleared (now {cleared}"), content
        assert "built-in default" in content, content
    stored = await world.bot.storage.get_guild_settings(guild_id)
    assert all(getattr(stored, name) is None for name in ("voice_id", "rate", "readout_channel_id", "xsaid"))
    assert world.tts_requests() == []


async def test_bad_values_are_refused_with_the_accepted_forms_and_nothing_is_stored(running: World) -> None:
    before = len(running.unmixr.requests)
    cases: list[tuple[str, dict[str, Any], list[str]]] = [
        ("rate", {"rate": "+300%"}, ["-100%", "+100%", "x-slow"]),
        ("rate", {"rate": "fast!!"}, ["-100%", "+100%", "x-fast"]),
        ("pitch", {"pitch": "+60%"}, ["-50%", "+50%", "x-high"]),
        ("volume", {"volume": "loudest"}, ["-100%", "+100%", "x-loud"]),
        ("max-length", {"length": 0}, ["1", "6,000", "not 0"]),
        ("max-length", {"length": 7000}, ["1", "6,000", "7,000"]),
        ("intensity", {"intensity": 101}, ["-100", "100"]),
        ("language", {"language": "not a language"}, ["not a language code", "en-US"]),
        ("language", {"language": "xx-YY"}, ["No voice speaks “xx-YY”", "en-GB"]),
    ]
    for subcommand, options, expected in cases:
        interaction = await settings(running, subcommand, options, client_checks=False)
        content = interaction.content()
        assert interaction.ephemeral, options
        assert all(part in content for part in expected), content
        assert content.count(". ") == 0 and content.endswith("."), f"not one sentence: {content}"
    unknown = await settings(running, "voice", {"voice": "Nobody Atall"})
    assert unknown.ephemeral
    assert "no voice called “Nobody Atall”" in unknown.content()
    stored = await running.bot.storage.get_guild_settings(running.guild.id)
    assert stored == type(stored)(guild_id=running.guild.id)
    # A bare language matches its regions.
    bare = await settings(running, "language", {"language": "fr"})
    assert bare.content() == "Server language: not set → `fr`."
    # The catalogue is in memory: none of this needed Unmixr.
    assert running.unmixr.requests[before:] == []


async def test_show_lists_every_effective_value_with_its_level_and_the_callers_own_preferences(world: World) -> None:
    jenny = next(v["uuid"] for v in world.unmixr.voices if v["character"] == "Jenny")
    await world.start_bot(default_voice_id=jenny)
    await settings(world, "rate", {"rate": "+20%"})
    await settings(world, "readout-channel", {"channel": ChannelOption(world.readout["id"])})
    await settings(world, "xsaid", {"enabled": False})
    preference = await world.slash("preferences", {"voice": "Brian"}, subcommand="voice", member=world.admin)
    await preference.wait_for(is_answer)

    shown = await settings(world, "show")
    assert shown.ephemeral
    lines = show_lines(shown)
    assert set(SETTINGS_OPTIONS) - {"show", "reset"} <= set(lines)
    assert lines["voice"] == "**Jenny** (bot operator's default)"
    assert lines["language"] == "`en-US` (built-in default)"
    assert lines["rate"] == "`+20%` (server setting)"
    assert lines["pitch"] == "`default` (built-in default)"
    assert lines["volume"] == "`default` (built-in default)"
    assert lines["intensity"] == "none (built-in default)"
    assert lines["format"] == "`mp3` (built-in default)"
    assert lines["max-length"] == "6,000 characters (built-in default)"
    assert lines["readout-channel"] == f"<#{world.readout['id']}> (server setting)"
    assert lines["xsaid"] == "off (server setting)"
    assert lines["auto-join"] == "off (built-in default)"
    assert lines["ignore-role"] == "none (built-in default)"
    assert "**Brian** (yours)" in lines["yours"]

    # Another admin sees the same server values but not the first admin's preferences.
    other_admin = world.guild.add_member("Second Admin", permissions=world.admin.permissions)
    theirs = show_lines(await settings(world, "show", member=other_admin))
    assert theirs["rate"] == lines["rate"]
    assert "Brian" not in theirs["yours"]


async def test_show_names_the_built_in_voice_when_no_level_sets_one(running: World) -> None:
    lines = show_lines(await settings(running, "show"))
    assert lines["voice"].startswith("**Brian**")
    assert lines["voice"].endswith("(built-in default)")
    # Brian speaks French too (other_languages), but a native French voice comes first for fr-FR.
    await settings(running, "language", {"language": "fr-FR"})
    lines = show_lines(await settings(running, "show"))
    assert lines["voice"] == "**Amelie**, the first prebuilt voice for fr-FR (built-in default)"


async def test_reset_clears_every_server_setting_but_keeps_pronunciations(running: World) -> None:
    await settings(running, "voice", {"voice": "Jenny"})
    await settings(running, "rate", {"rate": "-10%"})
    await settings(running, "max-length", {"length": 300})
    await settings(running, "xsaid", {"enabled": False})
    added = await running.slash(
        "pronounce", {"word": "Unmixr", "spoken": "un mixer"}, subcommand="add", member=running.admin
    )
    await added.wait_for(is_answer)

    asked = await settings(running, "reset")
    assert asked.ephemeral
    assert asked.content() == str(RESET_QUESTION)
    # Nothing is cleared before the admin confirms.
    assert (await running.bot.storage.get_guild_settings(running.guild.id)).rate == "-10%"
    reset = await press(running, asked, "Clear every setting")
    content = reset.content()
    assert content.startswith("Cleared every server setting"), content
    assert "Jenny" in content and "-10%" in content
    assert buttons(reset) == []

    stored = await running.bot.storage.get_guild_settings(running.guild.id)
    assert stored == type(stored)(guild_id=running.guild.id)
    lines = show_lines(await settings(running, "show"))
    assert all(lines[name].endswith("(built-in default)") for name in SETTINGS_OPTIONS if name not in ("show", "reset"))

    said = await running.say(text="Unmixr works. " + "x" * 400)
    await said.wait_for(is_answer)
    assert said.files(), said.responses
    request = running.tts_requests()[-1].json
    assert request["voice_id"] == BRIAN_ID
    assert "speaking_rate" not in request or request["speaking_rate"] in (None, "default")
    assert request["pronunciation_dict"] == {"Unmixr": "un mixer"}

    again = await press(running, await settings(running, "reset"), "Clear every setting")
    assert "no server settings to clear" in again.content()


def buttons(interaction: FakeInteraction) -> list[dict[str, Any]]:
    """The buttons of the interaction's message as it is now."""
    message = interaction.final_message()
    assert message is not None
    return [component for component in iter_components(message.get("components") or []) if component["type"] == 2]


async def press(
    world: World, asked: FakeInteraction, label: str, *, member: FakeMember | None = None, **kwargs: Any
) -> FakeInteraction:
    """Press a button of /settings reset's question by its label; wait for the answer."""
    [button] = [button for button in buttons(asked) if button["label"] == label]
    message = asked.final_message()
    assert message is not None
    pressed = await world.discord.click(
        message, button["custom_id"], member or world.admin, guild=world.guild, channel=world.text, **kwargs
    )
    await pressed.wait_final()
    return pressed


async def test_reset_asks_first_and_cancel_keeps_everything(running: World) -> None:
    await settings(running, "rate", {"rate": "+10%"})
    asked = await settings(running, "reset")
    assert [(button["label"], button.get("disabled", False)) for button in buttons(asked)] == [
        ("Clear every setting", False),
        ("Cancel", False),
    ]
    cancelled = await press(running, asked, "Cancel")
    assert cancelled.content() == "Nothing was cleared; every server setting stays as it was."
    assert buttons(cancelled) == []
    assert (await running.bot.storage.get_guild_settings(running.guild.id)).rate == "+10%"


async def test_only_the_admin_who_asked_can_confirm_a_reset(running: World) -> None:
    await settings(running, "rate", {"rate": "+10%"})
    other_admin = running.guild.add_member("Other Admin", permissions=ADMIN_PERMISSIONS)
    await running.discord.announce_member(running.guild, other_admin)
    asked = await settings(running, "reset")
    # Discord shows an ephemeral message to its caller only; the bot refuses a press from anyone else anyway.
    refused = await press(running, asked, "Clear every setting", member=other_admin, client_checks=False)
    assert refused.ephemeral
    command_id = running.discord.registered_command(running.guild, "settings")["id"]
    assert refused.content() == (
        f"Only the admin who ran </settings reset:{command_id}> can confirm it; run it yourself to clear the settings."
    )
    assert (await running.bot.storage.get_guild_settings(running.guild.id)).rate == "+10%"
    confirmed = await press(running, asked, "Clear every setting")
    assert confirmed.content().startswith("Cleared every server setting")


async def test_an_unconfirmed_reset_times_out_with_its_buttons_disabled(
    running: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # discord.py loads each extension as a module of its own: shorten the wait in the one the bot runs.
    loaded = sys.modules["cogs.settings"]
    assert loaded.RESET_CONFIRM_SECONDS == 60
    monkeypatch.setattr(loaded, "RESET_CONFIRM_SECONDS", 0.5)
    await settings(running, "rate", {"rate": "+10%"})
    asked = await settings(running, "reset")
    await running.discord.wait_until(
        lambda: asked.content().startswith("Nothing was cleared: the confirmation timed out"), timeout=10
    )
    assert [button.get("disabled") for button in buttons(asked)] == [True, True]
    assert (await running.bot.storage.get_guild_settings(running.guild.id)).rate == "+10%"


async def test_resolution_order_option_then_preference_then_server_then_operator_then_built_in(world: World) -> None:
    voices = {v["character"]: v["uuid"] for v in world.unmixr.voices}
    await world.start_bot(default_voice_id=voices["Aria"])

    async def said(**options: Any) -> dict[str, Any]:
        interaction = await world.say(member=world.member, **options)
        await interaction.wait_for(is_answer)
        assert interaction.files(), interaction.responses
        return world.tts_requests()[-1].json

    # Operator's voice, built-in rate.
    request = await said(text="First of all.")
    assert request["voice_id"] == voices["Aria"]
    assert request.get("speaking_rate") is None
    # Server defaults beat the operator.
    await settings(world, "voice", {"voice": "Jenny"})
    await settings(world, "rate", {"rate": "+10%"})
    request = await said(text="Second of all.")
    assert (request["voice_id"], request["speaking_rate"]) == (voices["Jenny"], "+10%")
    # The member's preferences beat the server.
    for subcommand, value in (("voice", {"voice": "Davis"}), ("rate", {"rate": "+30%"})):
        preference = await world.slash("preferences", value, subcommand=subcommand, member=world.member)
        await preference.wait_for(is_answer)
    request = await said(text="Third of all.")
    assert (request["voice_id"], request["speaking_rate"]) == (voices["Davis"], "+30%")
    # Another member still gets the server's values.
    interaction = await world.say(member=world.other, text="Fourth of all.")
    await interaction.wait_for(is_answer)
    request = world.tts_requests()[-1].json
    assert (request["voice_id"], request["speaking_rate"]) == (voices["Jenny"], "+10%")
    # The command's own options beat everything.
    request = await said(text="Fifth of all.", voice="Brian", rate="-20%")
    assert (request["voice_id"], request["speaking_rate"]) == (BRIAN_ID, "-20%")
    # With the server voice and the member's preferences cleared, the operator's voice is back.
    await settings(world, "voice")
    reset = await world.slash("preferences", {}, subcommand="reset", member=world.member)
    await reset.wait_for(is_answer)
    request = await said(text="Sixth of all.")
    assert (request["voice_id"], request["speaking_rate"]) == (voices["Aria"], "+10%")


async def test_built_in_voice_speaks_the_server_language(running: World) -> None:
    interaction = await running.say(text="Hello there.")
    await interaction.wait_for(is_answer)
    assert running.tts_requests()[-1].json["voice_id"] == BRIAN_ID
    await settings(running, "language", {"language": "de-DE"})
    interaction = await running.say(text="Guten Tag.")
    await interaction.wait_for(is_answer)
    request = running.tts_requests()[-1].json
    # Brian comes first and speaks German too, but the native German voice is preferred.
    hans = next(voice["uuid"] for voice in running.unmixr.voices if voice["character"] == "Hans")
    assert (request["voice_id"], request["language"]) == (hans, "de-DE")


async def test_server_format_intensity_and_max_length_apply_to_say(running: World) -> None:
    await settings(running, "format", {"format": "wav"})
    await settings(running, "intensity", {"intensity": 30})
    await settings(running, "max-length", {"length": 20})
    too_long = await running.say(text="This sentence is longer than twenty.")
    await too_long.wait_for(is_answer)
    assert too_long.ephemeral
    assert "20" in too_long.content() and "36" in too_long.content()
    assert running.tts_requests() == []

    said = await running.say(text="Short enough.")
    await said.wait_for(is_answer)
    [(filename, data)] = said.files()
    assert filename.endswith(".wav") and data[:4] == b"RIFF"
    request = running.tts_requests()[-1].json
    assert (request["output_type"], request["intensity"]) == ("wav", 30)

    # Jenny has no intensity: the inherited server value is dropped for her, and the reply says so.
    jenny = await running.say(text="Short enough too.", voice="Jenny")
    await jenny.wait_for(is_answer)
    assert jenny.files()
    assert "intensity" not in running.tts_requests()[-1].json or running.tts_requests()[-1].json["intensity"] is None
    assert "intensity 30" in jenny.content()


async def test_deleting_the_readout_channel_or_ignored_role_clears_the_setting(world: World) -> None:
    role = world.guild.add_role("Quiet")
    spare = world.guild.add_role("Spare")
    spare_channel = world.guild.add_text_channel("spare")
    await world.start_bot()
    storage, guild_id = world.bot.storage, world.guild.id
    await settings(world, "readout-channel", {"channel": ChannelOption(world.readout["id"])})
    await settings(world, "ignore-role", {"role": RoleOption(int(role["id"]))})

    # Deleting some other channel or role changes nothing.
    await world.discord.delete_channel(world.guild, spare_channel)
    await world.discord.delete_role(world.guild, spare)
    await asyncio.sleep(0.2)
    stored = await storage.get_guild_settings(guild_id)
    assert (stored.readout_channel_id, stored.ignore_role_id) == (int(world.readout["id"]), int(role["id"]))

    await world.discord.delete_channel(world.guild, world.readout)
    await world.discord.delete_role(world.guild, role)

    async def cleared() -> bool:
        current = await storage.get_guild_settings(guild_id)
        return current.readout_channel_id is None and current.ignore_role_id is None

    for _ in range(100):
        if await cleared():
            break
        await asyncio.sleep(0.02)
    assert await cleared()
    lines = show_lines(await settings(world, "show"))
    assert lines["readout-channel"] == "none (built-in default)"
    assert lines["ignore-role"] == "none (built-in default)"


async def test_a_clone_as_the_server_voice_is_shown_by_its_name(world: World) -> None:
    clone_id = add_clone_upstream(world.unmixr, "Narrator Nell")
    async with await Storage.open(world.settings.database_path) as storage:
        await storage.add_cloned_voice(clone_id, world.guild.id, "Narrator Nell", None, world.admin.id)
    await world.start_bot()
    await world.discord.wait_until(lambda: world.bot.catalogue.has_server(world.guild.id), what="the clones read")
    changed = await settings(world, "voice", {"voice": "Narrator Nell"})
    assert "**Narrator Nell**" in changed.content()
    lines = show_lines(await settings(world, "show"))
    assert lines["voice"] == "**Narrator Nell** (server setting)"
    reset = await press(world, await settings(world, "reset"), "Clear every setting")
    assert "voice **Narrator Nell**" in reset.content()
