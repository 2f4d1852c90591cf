"""The Discord stand-in, driven by the real, unpatched discord.py AutoShardedBot."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
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
from tests.fakes.discord_server import (
    ChannelOption,
    FakeDiscord,
    FakeGuild,
    FakeMember,
    find_component,
    use_fake_discord,
)

TOKEN = "test-discord-token"


class MenuView(discord.ui.View):
    """A button and a select, recording what reaches their callbacks."""

    def __init__(self, seen: dict[str, list[Any]]) -> None:
        super().__init__(timeout=60)
        self.seen = seen

    @discord.ui.button(label="Next", custom_id="menu:next")
    async def next_page(self, interaction: discord.Interaction, button: discord.ui.Button[MenuView]) -> None:
        self.seen["button"].append(interaction.user.id)
        await interaction.response.edit_message(content="page 2", view=self)

    @discord.ui.select(
        custom_id="menu:pick",
        options=[discord.SelectOption(label="One", value="one"), discord.SelectOption(label="Two", value="two")],
    )
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select[MenuView]) -> None:
        self.seen["select"].append(list(select.values))
        await interaction.response.send_message(f"picked {select.values[0]}", ephemeral=True)


class StandInBot(commands.AutoShardedBot):
    """A small bot using the features the product needs from Discord."""

    def __init__(self, guild_id: int, *, message_content: bool = True) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.voice_states = True
        intents.guild_messages = True
        intents.message_content = message_content
        super().__init__(command_prefix=commands.when_mentioned, intents=intents)
        self.guild_id = guild_id
        self.seen: dict[str, list[Any]] = defaultdict(list)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # The default sleeps 5 s before every IDENTIFY but the first.
        return None

    async def setup_hook(self) -> None:
        seen = self.seen
        tts = app_commands.Group(name="tts", description="Speech commands")

        @tts.command(name="speak", description="Speak some text")
        async def speak(interaction: discord.Interaction, text: str, voice: str | None = None) -> None:
            await interaction.response.defer(thinking=True)
            audio = discord.File(io.BytesIO(b"ID3-" + text.encode()), filename="speech.mp3")
            await interaction.followup.send(f"spoke {text} as {voice}", file=audio)

        @speak.autocomplete("voice")
        async def voice_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            if current == "many":
                return [app_commands.Choice(name=f"voice {n}", value=f"v{n}") for n in range(30)]
            names = ["Alice", "Alina", "Bob"]
            return [app_commands.Choice(name=n, value=n.lower()) for n in names if n.lower().startswith(current)]

        @tts.command(name="quiet", description="Answer privately after thinking")
        async def quiet(interaction: discord.Interaction, public_followup: bool = False) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            if public_followup:
                await interaction.followup.send("asked to be public", ephemeral=False)
            else:
                await interaction.edit_original_response(content="done quietly")

        @tts.command(name="fail", description="Fail after a public defer")
        async def fail(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.delete_original_response()
            await interaction.followup.send("that went wrong", ephemeral=True)

        @tts.command(name="upload", description="Upload a recording")
        async def upload(interaction: discord.Interaction, audio: discord.Attachment, consent: bool) -> None:
            data = await audio.read()
            seen["upload"].append((audio.filename, audio.content_type, data, consent))
            digest = hashlib.sha256(data).hexdigest()[:12]
            await interaction.response.send_message(f"{len(data)} bytes {digest}", ephemeral=True)

        @tts.command(name="channel", description="Pick a channel")
        async def pick_channel(interaction: discord.Interaction, channel: discord.TextChannel) -> None:
            await interaction.response.send_message(f"channel {channel.name}")

        @app_commands.command(name="menu", description="Show a menu")
        async def menu(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pick one", view=MenuView(seen))

        @app_commands.context_menu(name="Read aloud")
        async def read_aloud(interaction: discord.Interaction, message: discord.Message) -> None:
            seen["read_aloud"].append(message.content)
            await interaction.response.send_message(f"reading: {message.content}", ephemeral=True)

        guild = discord.Object(self.guild_id)
        self.tree.add_command(tts, guild=guild)
        self.tree.add_command(menu, guild=guild)
        self.tree.add_command(read_aloud, guild=guild)
        await self.tree.sync(guild=guild)

    async def on_message(self, message: discord.Message) -> None:
        self.seen["message"].append(message)

    async def on_shard_resumed(self, shard_id: int) -> None:
        self.seen["resumed"].append(shard_id)

    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        self.seen["voice"].append((member.id, after.channel.id if after.channel else None))

    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        self.seen["channel_delete"].append(channel.id)

    async def on_guild_role_delete(self, role: discord.Role) -> None:
        self.seen["role_delete"].append(role.id)

    async def on_socket_event_type(self, event_type: str) -> None:
        self.seen["events"].append(event_type)


@dataclass
class World:
    fake: FakeDiscord
    guild: FakeGuild
    text: dict[str, Any]
    voice: dict[str, Any]
    alice: FakeMember
    bot: StandInBot


@contextlib.asynccontextmanager
async def running(bot: commands.AutoShardedBot, fake: FakeDiscord) -> AsyncIterator[None]:
    """Run the bot until the stand-in has sent every shard its guilds; close it afterwards."""
    task = asyncio.create_task(bot.start(TOKEN))
    try:
        await fake.wait_until(
            lambda: task.done() or all(event.is_set() for event in fake.ready.values()), what="the bot to connect"
        )
        if task.done():
            task.result()
        yield
    finally:
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    fake = FakeDiscord(token=TOKEN)
    await fake.start()
    guild = fake.add_guild(name="Test Server")
    text = guild.add_text_channel("general")
    voice = guild.add_voice_channel("Lounge")
    alice = guild.add_member("alice")
    try:
        with use_fake_discord(fake):
            bot = StandInBot(guild.id)
            async with running(bot, fake):
                yield World(fake, guild, text, voice, alice, bot)
    finally:
        await fake.close()


async def test_startup_calls_and_command_sync(world: World) -> None:
    fake = world.fake
    paths = [(r.method, r.path) for r in fake.requests]
    assert ("GET", "/users/@me") in paths
    assert ("GET", "/oauth2/applications/@me") in paths
    assert ("GET", "/gateway/bot") in paths
    assert ("PUT", f"/applications/{fake.application_id}/guilds/{world.guild.id}/commands") in paths
    synced = {command["name"]: command for command in fake.commands[world.guild.id]}
    assert set(synced) == {"tts", "menu", "Read aloud"}
    assert all(command["id"].isdigit() for command in synced.values())
    assert synced["Read aloud"]["type"] == 3
    identify = next(entry for entry in fake.gateway_log if entry["op"] == 2)
    assert identify["d"]["shard"] == [0, 1]
    assert identify["d"]["token"] == "<redacted>"
    assert identify["d"]["intents"] & p.INTENT_MESSAGE_CONTENT
    assert world.bot.get_guild(world.guild.id) is not None
    assert fake.unknown_routes == []


async def test_deferred_slash_then_followup_with_file(world: World) -> None:
    fake, guild = world.fake, world.guild
    interaction = await fake.slash(
        guild, world.text, world.alice, "tts", {"text": "hello", "voice": "alice"}, subcommand="speak"
    )
    final = await interaction.wait_final()
    assert [(r.kind, r.type) for r in interaction.responses] == [("callback", 5), ("followup", None)]
    assert final.files == [("speech.mp3", b"ID3-hello")]
    assert interaction.content() == "spoke hello as alice"
    assert interaction.files() == [("speech.mp3", b"ID3-hello")]
    assert not interaction.ephemeral
    # The first follow-up after a defer resolves the "thinking" message rather than adding one.
    assert final.message_id == interaction.original_id
    assert interaction.acknowledged_at is not None and interaction.acknowledged_at >= interaction.created_at
    attachment = interaction.final_message()["attachments"][0]  # type: ignore[index]
    async with aiohttp.ClientSession() as session, session.get(attachment["url"]) as served:
        assert await served.read() == b"ID3-hello"
        assert served.headers["Content-Type"] == "audio/mpeg"


async def test_ephemeral_defer_then_edit_original(world: World) -> None:
    interaction = await world.fake.slash(world.guild, world.text, world.alice, "tts", subcommand="quiet")
    await interaction.wait_final()
    assert [(r.kind, r.type) for r in interaction.responses] == [("callback", 5), ("edit_original", None)]
    assert interaction.content() == "done quietly"
    assert interaction.ephemeral
    assert interaction.final_message()["flags"] & p.FLAG_LOADING == 0  # type: ignore[index]


async def test_first_followup_keeps_the_ephemeral_flag_of_the_defer(world: World) -> None:
    interaction = await world.fake.slash(
        world.guild, world.text, world.alice, "tts", {"public_followup": True}, subcommand="quiet"
    )
    await interaction.wait_final()
    assert interaction.content() == "asked to be public"
    assert interaction.ephemeral
    assert len(interaction.messages()) == 1


async def test_delete_then_ephemeral_followup_makes_a_new_message(world: World) -> None:
    interaction = await world.fake.slash(world.guild, world.text, world.alice, "tts", subcommand="fail")
    await interaction.wait_final()
    kinds = [(r.kind, r.type) for r in interaction.responses]
    assert kinds == [("callback", 5), ("delete_original", None), ("followup", None)]
    assert interaction.content() == "that went wrong"
    assert interaction.ephemeral
    assert [m["content"] for m in interaction.messages()] == ["that went wrong"]
    assert interaction.original_id in world.fake.deleted_message_ids


async def test_files_over_the_interaction_limit_are_refused(world: World) -> None:
    interaction = await world.fake.slash(
        world.guild, world.text, world.alice, "tts", {"text": "too long"}, subcommand="speak", attachment_size_limit=8
    )
    refused = await interaction.wait_for(lambda r: r.kind == "followup")
    assert refused.status == 413
    assert refused.error == {"message": "Request entity too large", "code": 40005}


async def test_attachment_option_is_served_and_read_by_the_bot(world: World) -> None:
    fake = world.fake
    recording = bytes(range(256)) * 40
    interaction = await fake.slash(
        world.guild,
        world.text,
        world.alice,
        "tts",
        {"consent": True},
        subcommand="upload",
        attachments={"audio": ("voice.ogg", recording, "audio/ogg")},
    )
    await interaction.wait_final()
    assert world.bot.seen["upload"] == [("voice.ogg", "audio/ogg", recording, True)]
    assert interaction.content() == f"{len(recording)} bytes {hashlib.sha256(recording).hexdigest()[:12]}"
    assert interaction.ephemeral


async def test_channel_option_resolves_to_the_guild_channel(world: World) -> None:
    interaction = await world.fake.slash(
        world.guild,
        world.text,
        world.alice,
        "tts",
        {"channel": ChannelOption(int(world.text["id"]))},
        subcommand="channel",
    )
    await interaction.wait_final()
    assert interaction.content() == "channel general"


async def test_slash_refuses_what_discord_clients_cannot_send(world: World) -> None:
    with pytest.raises(ValueError, match="required"):
        await world.fake.slash(world.guild, world.text, world.alice, "tts", {}, subcommand="upload")
    with pytest.raises(ValueError, match="no option"):
        await world.fake.slash(world.guild, world.text, world.alice, "tts", {"nope": 1}, subcommand="speak")


async def test_autocomplete_choices_are_recorded_and_checked(world: World) -> None:
    fake = world.fake
    interaction = await fake.autocomplete(
        world.guild, world.text, world.alice, "tts", {"text": "hi", "voice": "ali"}, "voice", subcommand="speak"
    )
    await interaction.wait_final()
    assert interaction.choices() == [{"name": "Alice", "value": "alice"}, {"name": "Alina", "value": "alina"}]
    too_many = await fake.autocomplete(
        world.guild, world.text, world.alice, "tts", {"voice": "many"}, "voice", subcommand="speak"
    )
    rejected = await too_many.wait_for()
    assert rejected.status == 400
    assert rejected.error is not None
    assert rejected.error["errors"] == {
        "data": {
            "choices": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 25 or fewer in length."}]}
        }
    }


async def test_button_and_select_reach_the_view(world: World) -> None:
    fake, guild = world.fake, world.guild
    menu = await fake.slash(guild, world.text, world.alice, "menu")
    await menu.wait_final()
    message = menu.final_message()
    assert message is not None and find_component(message, "menu:next") is not None
    press = await fake.click(message, "menu:next", world.alice, guild=guild, channel=world.text)
    await press.wait_final()
    assert world.bot.seen["button"] == [world.alice.id]
    assert [(r.kind, r.type) for r in press.responses] == [("callback", 7)]
    assert fake.message(int(message["id"]))["content"] == "page 2"
    pick = await fake.click(
        message, "menu:pick", world.alice, guild=guild, channel=world.text, component_type=3, values=["two"]
    )
    await pick.wait_final()
    assert world.bot.seen["select"] == [["two"]]
    assert pick.content() == "picked two" and pick.ephemeral
    with pytest.raises(ValueError, match="no component"):
        await fake.click(message, "menu:missing", world.alice, guild=guild, channel=world.text)


async def test_message_context_menu_gets_the_target_message(world: World) -> None:
    fake = world.fake
    posted = await fake.post_message(world.guild, world.text, world.alice, "read this please")
    interaction = await fake.message_command(world.guild, world.text, world.alice, "Read aloud", posted)
    await interaction.wait_final()
    assert world.bot.seen["read_aloud"] == ["read this please"]
    assert interaction.content() == "reading: read this please"


async def test_message_create_reaches_on_message(world: World) -> None:
    fake, bot = world.fake, world.bot
    await fake.post_message(world.guild, world.text, world.alice, f"hi <@{fake.application_id}>")
    await fake.wait_until(lambda: bool(bot.seen["message"]))
    message = bot.seen["message"][0]
    assert message.content == f"hi <@{fake.application_id}>"
    assert message.author.id == world.alice.id
    assert message.channel.id == int(world.text["id"])
    assert [user.id for user in message.mentions] == [fake.application_id]


async def test_bot_channel_message_with_file_is_recorded(world: World) -> None:
    fake, bot = world.fake, world.bot
    channel = bot.get_channel(int(world.text["id"]))
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send(
        "here <@123>",
        file=discord.File(io.BytesIO(b"RIFF"), filename="a.wav"),
        allowed_mentions=discord.AllowedMentions.none(),
    )
    recorded = fake.channel_messages[channel.id][0]
    assert recorded["id"] == str(sent.id)
    assert recorded["files"] == [("a.wav", b"RIFF")]
    assert recorded["payload"]["allowed_mentions"] == {"parse": []}
    assert recorded["mentions"] == []
    assert sent.attachments[0].filename == "a.wav"
    await sent.edit(content="edited")
    assert fake.message(sent.id)["content"] == "edited"
    await sent.delete()
    assert fake.channel_messages[channel.id] == []


async def test_voice_state_update_from_the_bot(world: World) -> None:
    fake, bot, guild = world.fake, world.bot, world.guild
    joins: list[tuple[int, int, str, str]] = []
    fake.on_voice_connect(lambda *args: joins.append(args))
    fake.voice_endpoint = "127.0.0.1:1"
    cached = bot.get_guild(guild.id)
    assert cached is not None
    lounge = cached.get_channel(int(world.voice["id"]))
    assert isinstance(lounge, discord.VoiceChannel)
    await cached.change_voice_state(channel=lounge)
    await fake.wait_until(lambda: "VOICE_SERVER_UPDATE" in bot.seen["events"])
    session = fake.session_for(0)
    assert session is not None
    assert joins == [(guild.id, lounge.id, session.session_id, joins[0][3])]
    assert cached.me.voice is not None and cached.me.voice.channel == lounge
    await cached.change_voice_state(channel=None)
    await fake.wait_until(lambda: (fake.application_id, None) in bot.seen["voice"])
    assert fake.application_id not in guild.voice_states


async def test_members_moving_and_guild_deletions_are_dispatched(world: World) -> None:
    fake, bot, guild = world.fake, world.bot, world.guild
    await fake.move_member(guild, world.alice, world.voice)
    await fake.wait_until(lambda: bool(bot.seen["voice"]))
    assert bot.seen["voice"] == [(world.alice.id, int(world.voice["id"]))]
    role = guild.add_role("readers")
    await fake.announce_role(guild, role, created=True)
    await fake.delete_role(guild, role)
    await fake.delete_channel(guild, world.text)
    await fake.wait_until(lambda: bool(bot.seen["channel_delete"]) and bool(bot.seen["role_delete"]))
    assert bot.seen["channel_delete"] == [int(world.text["id"])]
    assert bot.seen["role_delete"] == [int(role["id"])]


async def test_resume_replays_what_was_missed(world: World) -> None:
    fake, bot = world.fake, world.bot
    await fake.disconnect_gateway(4000)
    await fake.post_message(world.guild, world.text, world.alice, "sent while away")
    await fake.wait_until(lambda: fake.resume_counts.get(0) == 1 and bool(bot.seen["resumed"]))
    await fake.wait_until(lambda: bool(bot.seen["message"]))
    assert bot.seen["message"][0].content == "sent while away"
    assert fake.identify_counts == {0: 1}
    assert bot.seen["resumed"] == [0]


async def test_message_content_refused_raises_privileged_intents_required() -> None:
    async with FakeDiscord(token=TOKEN, message_content_allowed=False) as fake:
        guild = fake.add_guild()
        text = guild.add_text_channel("general")
        member = guild.add_member("bob")
        with use_fake_discord(fake):
            refused = StandInBot(guild.id)
            with pytest.raises(discord.PrivilegedIntentsRequired):
                await asyncio.wait_for(refused.start(TOKEN), 10)
            assert refused.is_closed()
            assert fake.close_codes == [(0, 4014)]
            # Without the intent the bot connects, and Discord blanks message content.
            limited = StandInBot(guild.id, message_content=False)
            async with running(limited, fake):
                await fake.post_message(guild, text, member, "secret words")
                await fake.wait_until(lambda: bool(limited.seen["message"]))
                assert limited.seen["message"][0].content == ""


async def test_guilds_are_spread_over_shards() -> None:
    async with FakeDiscord(token=TOKEN, shard_count=2) as fake:
        first, second = fake.add_guild(name="one"), fake.add_guild(name="two")
        assert {first.shard_id, second.shard_id} == {0, 1}
        with use_fake_discord(fake):
            bot = StandInBot(first.id)
            async with running(bot, fake):
                shards = sorted(entry["d"]["shard"] for entry in fake.gateway_log if entry["op"] == 2)
                assert shards == [[0, 2], [1, 2]]
                await fake.wait_until(lambda: bot.get_guild(second.id) is not None)
                assert bot.get_guild(first.id).shard_id == first.shard_id  # type: ignore[union-attr]
                assert bot.get_guild(second.id).shard_id == second.shard_id  # type: ignore[union-attr]


async def test_rest_auth_unknown_routes_and_json_content_type() -> None:
    async with FakeDiscord(token=TOKEN) as fake, aiohttp.ClientSession() as session:
        async with session.get(f"{fake.api_base}/users/@me", headers={"Authorization": "Bot wrong"}) as refused:
            assert refused.status == 401
        headers = {"Authorization": f"Bot {TOKEN}"}
        async with session.get(f"{fake.api_base}/users/@me", headers=headers) as me:
            assert me.headers["Content-Type"] == "application/json"
            assert (await me.json())["id"] == str(fake.application_id)
        async with session.get(f"{fake.api_base}/no/such/route", headers=headers) as missing:
            assert missing.status == 404
            assert await missing.json() == {"message": "Unknown route", "code": 0}
        assert fake.unknown_routes == [("GET", "/no/such/route")]


async def test_reconnect_request_makes_the_client_resume(world: World) -> None:
    fake = world.fake
    await fake.request_reconnect()
    await fake.wait_until(lambda: fake.resume_counts.get(0) == 1 and bool(world.bot.seen["resumed"]))
    assert fake.identify_counts == {0: 1}
    await fake.post_message(world.guild, world.text, world.alice, "after reconnect")
    await fake.wait_until(lambda: bool(world.bot.seen["message"]))
    assert world.bot.seen["message"][0].content == "after reconnect"
