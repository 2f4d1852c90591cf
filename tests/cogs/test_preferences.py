"""End-to-end tests of /preferences: a member's own defaults in one server, and their use by /say."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World
from tests.fakes.discord_server import FakeGuild, FakeInteraction, FakeMember, Response
from tests.fakes.unmixr_catalogue import BRIAN_ID, STEFFAN_ID


def is_answer(response: Response) -> bool:
    """Whether a response carries the interaction's answer (not only an acknowledgement)."""
    if response.status >= 300:
        return False
    return response.kind in ("followup", "edit_original", "edit_followup") or (
        response.kind == "callback" and response.type in (4, 7)
    )


async def preferences(
    world: World,
    subcommand: str,
    options: dict[str, Any] | None = None,
    *,
    member: FakeMember | None = None,
    guild: FakeGuild | None = None,
    **kw: Any,
) -> FakeInteraction:
    """Run a /preferences subcommand (as the plain member unless told) and wait for its answer."""
    guild = guild or world.guild
    channel = world.text if guild is world.guild else next(iter(guild.channels.values()))
    interaction = await world.discord.slash(
        guild, channel, member or world.member, "preferences", options or {}, subcommand=subcommand, **kw
    )
    await interaction.wait_for(is_answer)
    return interaction


async def say(world: World, member: FakeMember, **options: Any) -> dict[str, Any]:
    """Run /say and return the request that reached Unmixr."""
    before = len(world.tts_requests())
    interaction = await world.say(member=member, **options)
    await interaction.wait_for(is_answer)
    assert interaction.files(), interaction.responses
    assert len(world.tts_requests()) == before + 1
    return world.tts_requests()[-1].json


def voice_id(world: World, name: str) -> str:
    """The uuid of a catalogue voice."""
    return next(v["uuid"] for v in world.unmixr.voices if v["character"] == name)


async def test_preferences_command_has_the_documented_subcommands_open_to_everyone(running: World) -> None:
    synced = next(c for c in running.discord.commands[running.guild.id] if c["name"] == "preferences")
    shape = {sub["name"]: [o["name"] for o in sub.get("options") or []] for sub in synced["options"]}
    assert shape == {"voice": ["voice"], "rate": ["rate"], "nickname": ["nickname"], "reset": []}
    assert synced["default_member_permissions"] is None
    assert not any(o.get("required") for sub in synced["options"] for o in sub.get("options") or [])


async def test_voice_preference_answers_old_and_new_privately_and_is_used_by_say(running: World) -> None:
    first = await preferences(running, "voice", {"voice": "Jenny"})
    assert first.ephemeral
    assert first.content() == "Your voice: not set → **Jenny**."
    # A uuid works as well as a name.
    second = await preferences(running, "voice", {"voice": voice_id(running, "Aria")})
    assert second.content() == "Your voice: **Jenny** → **Aria**."
    assert (await say(running, running.member, text="Mine."))["voice_id"] == voice_id(running, "Aria")
    # Nobody else is affected.
    assert (await say(running, running.other, text="Theirs."))["voice_id"] == BRIAN_ID

    cleared = await preferences(running, "voice")
    assert cleared.ephemeral
    assert cleared.content() == "Your voice: **Aria** → cleared (the server's default applies)."
    assert (await say(running, running.member, text="Mine again."))["voice_id"] == BRIAN_ID


async def test_rate_preference_is_used_by_say_and_bad_rates_are_refused(running: World) -> None:
    changed = await preferences(running, "rate", {"rate": "Fast"})
    assert changed.ephemeral
    assert changed.content() == "Your rate: not set → `fast`."
    assert (await say(running, running.member, text="Quickly now."))["speaking_rate"] == "fast"

    refused = await preferences(running, "rate", {"rate": "+300%"})
    assert refused.ephemeral
    assert "-100%" in refused.content() and "+100%" in refused.content()
    stored = await running.bot.storage.get_member_preferences(running.guild.id, running.member.id)
    assert stored.rate == "fast"

    changed = await preferences(running, "rate", {"rate": "-25%"})
    assert changed.content() == "Your rate: `fast` → `-25%`."
    assert (await say(running, running.member, text="Slowly now."))["speaking_rate"] == "-25%"


async def test_a_preference_the_voice_cannot_use_is_dropped_and_the_reply_says_so(running: World) -> None:
    await preferences(running, "rate", {"rate": "+40%"})
    # Steffan (Express) has no speech:rate: the inherited rate is left out, not refused.
    interaction = await running.say(member=running.member, text="Steady pace.", voice="Steffan (Express)")
    await interaction.wait_for(is_answer)
    assert interaction.files()
    request = running.tts_requests()[-1].json
    assert request["voice_id"] == STEFFAN_ID
    assert request.get("speaking_rate") is None
    assert "your preference speed +40%" in interaction.content()


async def test_nickname_preference_is_checked_and_stored(running: World) -> None:
    set_nickname = await preferences(running, "nickname", {"nickname": "  Mel  "})
    assert set_nickname.ephemeral
    assert set_nickname.content() == "Your nickname: not set → `Mel`."
    blank = await preferences(running, "nickname", {"nickname": "   "})
    assert blank.ephemeral and "at least one visible character" in blank.content()
    # Discord's client refuses a value over the option's max_length; one that gets through anyway is refused too.
    with pytest.raises(ValueError, match="32"):
        await preferences(running, "nickname", {"nickname": "n" * 40})
    too_long = await preferences(running, "nickname", {"nickname": "n" * 40}, client_checks=False)
    assert too_long.ephemeral and "at most 32" in too_long.content()
    stored = await running.bot.storage.get_member_preferences(running.guild.id, running.member.id)
    assert stored.nickname == "Mel"


async def test_preferences_are_per_member_per_server(world: World) -> None:
    second = world.discord.add_guild(name="Second Server")
    second.add_text_channel("lobby")
    same_person = second.add_member("Mel Member", user_id=world.member.id, permissions=world.member.permissions)
    await world.start_bot()

    await preferences(world, "voice", {"voice": "Jenny"})
    await preferences(world, "rate", {"rate": "slow"})
    elsewhere = await preferences(world, "voice", {"voice": "Aria"}, member=same_person, guild=second)
    assert elsewhere.content() == "Your voice: not set → **Aria**."

    storage = world.bot.storage
    here = await storage.get_member_preferences(world.guild.id, world.member.id)
    there = await storage.get_member_preferences(second.id, world.member.id)
    other = await storage.get_member_preferences(world.guild.id, world.other.id)
    assert (here.voice_id, here.rate) == (voice_id(world, "Jenny"), "slow")
    assert (there.voice_id, there.rate) == (voice_id(world, "Aria"), None)
    assert (other.voice_id, other.rate) == (None, None)


async def test_reset_clears_every_preference(running: World) -> None:
    await preferences(running, "voice", {"voice": "Jenny"})
    await preferences(running, "rate", {"rate": "+10%"})
    await preferences(running, "nickname", {"nickname": "Mel"})
    reset = await preferences(running, "reset")
    assert reset.ephemeral
    content = reset.content()
    assert content.startswith("Cleared your preferences"), content
    assert "Jenny" in content and "+10%" in content and "Mel" in content
    stored = await running.bot.storage.get_member_preferences(running.guild.id, running.member.id)
    assert (stored.voice_id, stored.rate, stored.nickname) == (None, None, None)
    request = await say(running, running.member, text="Back to defaults.")
    assert request["voice_id"] == BRIAN_ID and request.get("speaking_rate") is None

    again = await preferences(running, "reset")
    assert "no preferences to clear" in again.content()


async def test_unknown_voice_is_refused_with_close_names(running: World) -> None:
    refused = await preferences(running, "voice", {"voice": "Jeny"})
    assert refused.ephemeral
    assert "no voice called “Jeny”" in refused.content()
    assert "Jenny" in refused.content()
    stored = await running.bot.storage.get_member_preferences(running.guild.id, running.member.id)
    assert stored.voice_id is None


async def test_settings_show_marks_the_callers_preferences_as_theirs(running: World) -> None:
    await preferences(running, "voice", {"voice": "Jenny"}, member=running.admin)
    await preferences(running, "nickname", {"nickname": "The Admin"}, member=running.admin)
    shown = await running.slash("settings", {}, subcommand="show", member=running.admin)
    await shown.wait_for(is_answer)
    mine = " ".join(field["value"] for field in shown.embeds()[0]["fields"])
    assert "**Jenny** (yours)" in mine
    assert "`The Admin` (yours)" in mine
