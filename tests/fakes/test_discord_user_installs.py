"""The Discord stand-in's user installs, driven by the real discord.py: where a command is offered, what its
interactions carry, and the limits on answering them.

Each test names the section of discord/discord-api-docs it follows (application.mdx, "Installation Context";
application-commands.mdx, "Contexts"; receiving-and-responding.mdx; change-log.mdx, "User-Installed Apps General
Availability").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakes import discord_payloads as p
from tests.fakes.discord_server import ClientRefused, FakeDiscord, FakeGuild, FakeMember, use_fake_discord

TOKEN = "test-discord-token"
HEADERS = {"Authorization": f"Bot {TOKEN}"}
EVERYWHERE = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True)
BOTH_INSTALLS = app_commands.AppInstallationType(guild=True, user=True)


class UserAppBot(commands.AutoShardedBot):
    """Global commands: /echo for both installs everywhere, /admin for server installs in servers only."""

    def __init__(self) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.none(),
            allowed_contexts=app_commands.AppCommandContext(guild=True),
            allowed_installs=app_commands.AppInstallationType(guild=True),
        )
        self.seen: dict[str, list[Any]] = defaultdict(list)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None

    async def setup_hook(self) -> None:
        seen = self.seen

        @app_commands.command(name="echo", description="Answer where it was asked")
        @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
        @app_commands.allowed_installs(guilds=True, users=True)
        async def echo(interaction: discord.Interaction, text: str, followups: int = 0) -> None:
            seen["echo"].append(
                {
                    "context": interaction.context,
                    "guild_id": interaction.guild_id,
                    "guild": interaction.guild,
                    "user_integration": interaction.is_user_integration(),
                    "guild_integration": interaction.is_guild_integration(),
                    "app_permissions": interaction.app_permissions,
                    "permissions": interaction.permissions,
                    "shard_id": interaction.guild.shard_id if interaction.guild else 0,
                    "channel": interaction.channel,
                }
            )
            await interaction.response.defer(thinking=True)
            await interaction.edit_original_response(content=f"echo {text}")
            for number in range(followups):
                try:
                    await interaction.followup.send(f"more {number}")
                except discord.HTTPException as error:
                    seen["refused"].append((number, error.status, error.code))

        @app_commands.command(name="admin", description="Server installs only")
        async def admin(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("admin")

        @app_commands.context_menu(name="Read aloud")
        @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
        @app_commands.allowed_installs(guilds=True, users=True)
        async def read_aloud(interaction: discord.Interaction, message: discord.Message) -> None:
            seen["read_aloud"].append((message.content, [user.display_name for user in message.mentions]))
            await interaction.response.send_message(f"reading: {message.content}")

        self.tree.add_command(echo)
        self.tree.add_command(admin)
        self.tree.add_command(read_aloud)


@dataclass
class World:
    fake: FakeDiscord
    guild: FakeGuild
    text: dict[str, Any]
    member: FakeMember
    bot: UserAppBot

    async def sync(self) -> list[app_commands.AppCommand]:
        """What `python -m bot sync` does: the global commands, where install types live."""
        return await self.bot.tree.sync()


@pytest.fixture
async def world() -> AsyncIterator[World]:
    fake = FakeDiscord(token=TOKEN, shard_count=2, max_concurrency=2)
    await fake.start()
    guild = fake.add_guild(name="Bot Server")
    text = guild.add_text_channel("general")
    member = guild.add_member("mel")
    try:
        with use_fake_discord(fake):
            bot = UserAppBot()
            task = asyncio.create_task(bot.start(TOKEN))
            try:
                await fake.wait_until_connected()
                yield World(fake, guild, text, member, bot)
            finally:
                await bot.close()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, 5)
    finally:
        await fake.close()


async def enabled(world: World) -> World:
    """User Install ticked in the Developer Portal, the commands synced globally."""
    world.fake.enable_user_install()
    await world.sync()
    return world


async def test_a_command_carries_user_install_only_once_the_app_supports_it(world: World) -> None:
    # application-commands.mdx, "Installation Context": integration_types may include a context "as long as any
    # included contexts are already supported on the application-level".
    with pytest.raises(discord.HTTPException) as refused:
        await world.sync()
    assert (refused.value.status, refused.value.code) == (400, 50035)
    assert "integration_types" in json.dumps(refused.value.text)
    assert world.fake.commands["global"] == []
    world.fake.wasted_requests()  # a 400 is not counted toward the invalid request limit
    world.fake.enable_user_install()
    await world.sync()
    stored = {command["name"]: command for command in world.fake.commands["global"]}
    assert stored["echo"]["integration_types"] == [0, 1] and stored["echo"]["contexts"] == [0, 1, 2]
    assert stored["admin"]["integration_types"] == [0] and stored["admin"]["contexts"] == [0]
    assert stored["Read aloud"]["integration_types"] == [0, 1]


async def test_install_types_and_contexts_decide_where_a_command_is_offered(world: World) -> None:
    await enabled(world)
    fake = world.fake
    stranger = fake.add_user("stranger")
    friend = fake.add_user("friend")
    dm = fake.open_dm(stranger, friend)
    # Without the user's install, nothing reaches a DM between users (no guild install works there).
    with pytest.raises(ClientRefused, match="not offered"):
        await fake.slash(dm, dm, stranger, "echo", {"text": "hi"})
    fake.install_for_user(stranger)
    # /admin is for servers and server installs: a DM and a server without the bot never show it.
    with pytest.raises(ClientRefused, match="not offered in DMs"):
        await fake.slash(dm, dm, stranger, "admin")
    elsewhere = fake.add_guild(name="No Bot Here", bot=False)
    lobby = elsewhere.add_text_channel("lobby")
    visitor = elsewhere.add_member("visitor", user_id=int(stranger["id"]))
    with pytest.raises(ClientRefused, match="not offered"):
        await fake.slash(elsewhere, lobby, visitor, "admin")
    answered = await fake.slash(dm, dm, stranger, "echo", {"text": "hi"})
    await answered.wait_final()
    assert answered.content() == "echo hi"


async def test_interactions_say_where_they_come_from_and_who_authorised_them(world: World) -> None:
    await enabled(world)
    fake = world.fake
    user = fake.add_user("uma")
    friend = fake.add_user("fred")
    fake.install_for_user(user)
    elsewhere = fake.add_guild(name="No Bot Here", bot=False)
    lobby = elsewhere.add_text_channel("lobby")
    visitor = elsewhere.add_member("uma", user_id=int(user["id"]))
    fake.install_for_user(world.member)
    places = [
        ("bot DM", fake.open_dm(user), None, user),
        ("DM", fake.open_dm(user, friend), None, user),
        ("group DM", fake.add_group_dm(user, friend, name="pals"), None, user),
        ("no-bot server", elsewhere, lobby, visitor),
        ("bot server", world.guild, world.text, world.member),
    ]
    payloads = {}
    for label, place, channel, who in places:
        interaction = await fake.slash(place, channel if channel is not None else place, who, "echo", {"text": label})
        await interaction.wait_final()
        assert interaction.content() == f"echo {label}"
        payloads[label] = interaction.payload
    seen = world.bot.seen["echo"]
    # receiving-and-responding.mdx, "Interaction Context Types" and "Authorizing Integration Owners Object".
    assert [payload["context"] for payload in payloads.values()] == [1, 2, 2, 0, 0]
    assert payloads["bot DM"]["authorizing_integration_owners"] == {"0": "0", "1": user["id"]}
    assert payloads["DM"]["authorizing_integration_owners"] == {"1": user["id"]}
    assert payloads["no-bot server"]["authorizing_integration_owners"] == {"1": user["id"]}
    assert payloads["bot server"]["authorizing_integration_owners"] == {
        "0": str(world.guild.id),
        "1": str(world.member.id),
    }
    # `user` in a DM, `member` and a partial guild in a server, with or without the bot.
    assert "user" in payloads["group DM"] and "member" not in payloads["group DM"]
    assert payloads["no-bot server"]["guild"] == {"id": str(elsewhere.id), "locale": "en-US", "features": []}
    # app_permissions: ATTACH_FILES | EMBED_LINKS | MENTION_EVERYONE in (G)DMs, plus USE_EXTERNAL_EMOJIS in the bot's
    # DM; never Send Voice Messages there.
    assert int(payloads["DM"]["app_permissions"]) == p.ATTACH_FILES | p.EMBED_LINKS | p.MENTION_EVERYONE
    assert int(payloads["bot DM"]["app_permissions"]) == 442368  # the tutorial's sample payload
    assert not seen[1]["app_permissions"].send_voice_messages
    # What discord.py makes of them.
    assert [entry["context"].guild for entry in seen] == [False, False, False, True, True]
    assert [entry["user_integration"] for entry in seen] == [True] * 5
    assert [entry["guild_integration"] for entry in seen] == [False, False, False, False, True]
    assert isinstance(seen[2]["channel"], discord.GroupChannel)
    assert seen[3]["guild"] is not None and seen[3]["guild"].id == elsewhere.id
    assert world.bot.get_guild(elsewhere.id) is None  # never a GUILD_CREATE for it


async def test_a_server_without_the_bot_routes_by_its_shard_and_dms_to_shard_0(world: World) -> None:
    await enabled(world)
    fake = world.fake
    user = fake.add_user("uma")
    fake.install_for_user(user)
    # gateway.mdx, "Sharding Formula": a guild_id decides the shard; events without one go to shard 0.
    elsewhere = next(g for g in (fake.add_guild(name=f"s{n}", bot=False) for n in range(4)) if (g.id >> 22) % 2 == 1)
    lobby = elsewhere.add_text_channel("lobby")
    visitor = elsewhere.add_member("uma", user_id=int(user["id"]))
    dm = fake.open_dm(user)
    for place, channel, who in ((elsewhere, lobby, visitor), (dm, dm, user)):
        interaction = await fake.slash(place, channel, who, "echo", {"text": "route"})
        await interaction.wait_final()
    assert [entry["shard_id"] for entry in world.bot.seen["echo"]] == [1, 0]
    dispatched = {shard: [json.loads(frame) for _seq, frame in fake._shard_sessions[shard].buffer] for shard in (0, 1)}
    assert sum(1 for frame in dispatched[1] if frame["t"] == "INTERACTION_CREATE") == 1
    assert sum(1 for frame in dispatched[0] if frame["t"] == "INTERACTION_CREATE") == 1


async def test_without_use_external_apps_a_user_installs_answers_are_ephemeral(world: World) -> None:
    await enabled(world)
    fake = world.fake
    elsewhere = fake.add_guild(name="Strict Server", bot=False)
    lobby = elsewhere.add_text_channel("lobby")
    allowed = elsewhere.add_member("allowed")
    barred = elsewhere.add_member("barred", permissions=p.DEFAULT_EVERYONE_PERMISSIONS & ~p.USE_EXTERNAL_APPS)
    for who in (allowed, barred):
        fake.install_for_user(who)
    # change-log.mdx, "User-Installed Apps General Availability": Use External Apps "is enabled for servers by
    # default"; where it is off and the app is not installed in the server, "responses will be ephemeral".
    public = await fake.slash(elsewhere, lobby, allowed, "echo", {"text": "out loud"})
    forced = await fake.slash(elsewhere, lobby, barred, "echo", {"text": "out loud", "followups": 1})
    await public.wait_final()
    await forced.wait_final()
    assert not public.ephemeral
    assert all(message["flags"] & p.FLAG_EPHEMERAL for message in forced.messages())
    assert len(forced.messages()) == 2
    # The rule is for apps not installed in the server: in the bot's server, a member without it answers publicly.
    world.guild.everyone_role["permissions"] = str(p.DEFAULT_EVERYONE_PERMISSIONS & ~p.USE_EXTERNAL_APPS)
    fake.install_for_user(world.member)
    here = await fake.slash(world.guild, world.text, world.member, "echo", {"text": "home"})
    await here.wait_final()
    assert not here.ephemeral


async def test_a_user_installs_interaction_takes_at_most_five_follow_ups(world: World) -> None:
    await enabled(world)
    fake = world.fake
    user = fake.add_user("uma")
    fake.install_for_user(user)
    friend = fake.add_user("fred")
    dm = fake.open_dm(user, friend)
    # receiving-and-responding.mdx, "Create Followup Message": at most 5 when the owners object only contains
    # USER_INSTALL; opcodes-and-status-codes.mdx, 40094.
    limited = await fake.slash(dm, dm, user, "echo", {"text": "many", "followups": 6})
    # Webhooks have their own rate limit (5 a window): the last follow-up may wait for it.
    await fake.wait_until(lambda: len(limited.responses) == 8, what="the six follow-ups")
    assert world.bot.seen["refused"] == [(5, 400, 40094)]
    assert len(limited.messages()) == 6  # the answer and five follow-ups
    # A server install is not limited.
    world.bot.seen["refused"].clear()
    unlimited = await fake.slash(world.guild, world.text, world.member, "echo", {"text": "many", "followups": 6})
    await fake.wait_until(lambda: len(unlimited.responses) == 8, what="the six follow-ups")
    assert world.bot.seen["refused"] == []
    assert len(unlimited.messages()) == 7


async def test_read_aloud_in_a_dm_carries_the_message_and_its_mentions(world: World) -> None:
    await enabled(world)
    fake = world.fake
    user = fake.add_user("uma")
    friend = fake.add_user("fred")
    fake.install_for_user(user)
    dm = fake.open_dm(user, friend)
    message = fake.post_private_message(dm, friend, f"hello <@{user['id']}>")
    assert "guild_id" not in message
    interaction = await fake.message_command(dm, dm, user, "Read aloud", message)
    await interaction.wait_final()
    assert world.bot.seen["read_aloud"] == [(f"hello <@{user['id']}>", ["uma"])]


async def test_the_bot_cannot_reach_a_server_it_is_not_in_nor_anyones_dm(world: World) -> None:
    fake = world.fake
    elsewhere = fake.add_guild(name="No Bot Here", bot=False)
    lobby = elsewhere.add_text_channel("lobby")
    dm = fake.open_dm(fake.add_user("uma"), fake.add_user("fred"))
    async with aiohttp.ClientSession() as http:
        for channel_id in (lobby["id"], dm.id):
            url = f"{fake.api_base}/channels/{channel_id}/messages"
            async with http.post(url, json={"content": "hi"}, headers=HEADERS) as response:
                # opcodes-and-status-codes.mdx, 50001 "Missing access".
                assert (response.status, (await response.json())["code"]) == (403, 50001)
        async with http.put(
            f"{fake.api_base}/applications/{fake.application_id}/guilds/{elsewhere.id}/commands",
            json=[],
            headers=HEADERS,
        ) as response:
            assert response.status == 403
    assert len(fake.wasted_requests()) == 3
    assert elsewhere.id not in fake.guilds and world.bot.get_guild(elsewhere.id) is None
