"""Mentioned members missing from discord.py's cache: asked of Discord once per (server, member) in 10 minutes."""

from __future__ import annotations

import time

from bot.mentions import LOOKUP_SECONDS
from tests.conftest import MEMBER_PERMISSIONS, World

# A user id no server of the stand-in knows.
STRANGER = 345678901234567890


def member_lookups(world: World) -> list[str]:
    """The paths of the member look-ups the bot made over REST, in order."""
    return [r.path for r in world.discord.requests if r.method == "GET" and "/members/" in r.path]


def spoken(world: World) -> str:
    """The text of the last request sent to Unmixr."""
    return str(world.tts_requests()[-1].json["text"])


async def test_a_mentioned_member_is_looked_up_once_and_the_answer_kept_found_or_not(running: World) -> None:
    text = f"Thanks <@{running.other.id}> and <@{STRANGER}>, see you tomorrow."
    first = await running.say(text=text)
    await first.wait_final()
    assert spoken(running) == "Thanks Otto Other and someone, see you tomorrow."
    guild = running.guild.id
    assert sorted(member_lookups(running)) == sorted(
        [f"/guilds/{guild}/members/{running.other.id}", f"/guilds/{guild}/members/{STRANGER}"]
    )
    # Again, by someone else and with other words around the same mentions: no REST call at all.
    again = await running.say(member=running.admin, text=f"Hello <@{STRANGER}> and <@!{running.other.id}>.")
    await again.wait_final()
    assert spoken(running) == "Hello someone and Otto Other."
    assert len(member_lookups(running)) == 2
    # Ten minutes on, each is asked again, once.
    lookups = running.bot.member_lookups
    lookups.clock = lambda: time.monotonic() + LOOKUP_SECONDS
    later = await running.say(text=text)
    await later.wait_final()
    assert len(member_lookups(running)) == 4


async def test_each_server_looks_its_own_members_up(world: World) -> None:
    elsewhere = world.discord.add_guild(name="Elsewhere")
    channel = elsewhere.add_text_channel("general")
    speaker = elsewhere.add_member("Sam Speaker", permissions=MEMBER_PERMISSIONS)
    await world.start_bot()
    said = await world.say(text=f"Hi <@{world.other.id}>.")
    await said.wait_final()
    elsewhere_said = await world.discord.slash(elsewhere, channel, speaker, "say", {"text": f"Hi <@{world.other.id}>."})
    await elsewhere_said.wait_final()
    # Otto is no member there: the other server asks Discord itself, and says "someone".
    assert spoken(world) == "Hi someone."
    assert member_lookups(world) == [
        f"/guilds/{world.guild.id}/members/{world.other.id}",
        f"/guilds/{elsewhere.id}/members/{world.other.id}",
    ]
