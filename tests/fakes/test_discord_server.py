"""The Discord stand-in, driven by the real, unpatched discord.py AutoShardedBot."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
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
    ClientRefused,
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
        # What /act does, by name: each test puts the Discord calls it wants to check here.
        self.actions: dict[str, Callable[[discord.Interaction], Awaitable[None]]] = {}

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

        @app_commands.command(name="act", description="Run a test's action")
        async def act(
            interaction: discord.Interaction,
            what: app_commands.Range[str, 1, 40],
            note: app_commands.Range[str, 1, 10] = "x",
        ) -> None:
            try:
                await self.actions[what](interaction)
            except discord.HTTPException as error:
                seen["refused"].append((error.status, error.code, error.text))

        @act.autocomplete("what")
        async def act_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            try:
                await self.actions[current](interaction)
            except discord.HTTPException as error:
                seen["refused"].append((error.status, error.code, error.text))
            return []

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
        self.tree.add_command(act, guild=guild)
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
    assert set(synced) == {"tts", "menu", "act", "Read aloud"}
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


async def test_stickers_attachments_forwards_and_silent_messages_reach_discord_py_as_discord_sends_them(
    world: World,
) -> None:
    fake, bot = world.fake, world.bot
    other_guild = fake.add_guild(name="Elsewhere")
    elsewhere = other_guild.add_text_channel("news")
    original = await fake.post_message(
        world.guild,
        world.text,
        world.alice,
        "the forwarded words",
        attachments=[("cat.png", b"\x89PNG", "image/png")],
        stickers=["party parrot"],
    )
    await fake.post_message(world.guild, world.text, world.alice, "", stickers=["party parrot", "wave"])
    await fake.post_message(
        world.guild,
        world.text,
        world.alice,
        "",
        attachments=[("clip.mp4", b"mp4", "video/mp4"), ("notes.pdf", b"%PDF", "application/pdf")],
    )
    await fake.post_message(world.guild, world.text, world.alice, "", forward=original)
    await fake.post_message(world.guild, world.text, world.alice, "shh", silent=True)
    await fake.wait_until(lambda: len(bot.seen["message"]) == 5)
    _, stickers, files, forwarded, silent = bot.seen["message"]
    assert [sticker.name for sticker in stickers.stickers] == ["party parrot", "wave"]
    assert [(a.filename, a.content_type) for a in files.attachments] == [
        ("clip.mp4", "video/mp4"),
        ("notes.pdf", "application/pdf"),
    ]
    # message.mdx, "Forwards": a FORWARD reference and a snapshot of the message as it was, without its author.
    assert forwarded.content == "" and forwarded.reference is not None
    assert forwarded.reference.type is discord.MessageReferenceType.forward
    assert forwarded.reference.message_id == int(original["id"])
    assert forwarded.flags.forwarded
    [snapshot] = forwarded.message_snapshots
    assert snapshot.content == "the forwarded words"
    assert [a.filename for a in snapshot.attachments] == ["cat.png"]
    assert [sticker.name for sticker in snapshot.stickers] == ["party parrot"]
    raw = fake.message(int(forwarded.id))["message_snapshots"][0]["message"]
    assert "author" not in raw and "id" not in raw
    assert silent.flags.suppress_notifications and silent.content == "shh"
    # Discord refuses what its documentation refuses.
    with pytest.raises(ValueError, match="at most 3 stickers"):
        await fake.post_message(world.guild, world.text, world.alice, "", stickers=["a", "b", "c", "d"])
    poll = await fake.post_message(other_guild, elsewhere, world.alice, "a poll")
    fake.messages[int(poll["id"])]["poll"] = {"question": {"text": "?"}}
    with pytest.raises(ValueError, match="only a basic message can be forwarded"):
        await fake.post_message(world.guild, world.text, world.alice, "", forward=fake.messages[int(poll["id"])])


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
                original = await fake.post_message(guild, text, member, "secret words")
                await fake.wait_until(lambda: bool(limited.seen["message"]))
                assert limited.seen["message"][0].content == ""
                # A forward's copy of the content is content too.
                await fake.post_message(guild, text, member, "", forward=original)
                await fake.wait_until(lambda: len(limited.seen["message"]) == 2)
                [snapshot] = limited.seen["message"][1].message_snapshots
                assert snapshot.content == ""


async def test_guilds_are_spread_over_shards() -> None:
    # StandInBot identifies every shard at once, which max_concurrency 2 allows (shards 0 and 1: two buckets).
    async with FakeDiscord(token=TOKEN, shard_count=2, max_concurrency=2) as fake:
        first, second = fake.add_guild(name="one"), fake.add_guild(name="two")
        assert {first.shard_id, second.shard_id} == {0, 1}
        with use_fake_discord(fake):
            bot = StandInBot(first.id)
            async with running(bot, fake):
                shards = sorted(entry["d"]["shard"] for entry in fake.gateway_log if entry["op"] == 2)
                assert shards == [[0, 2], [1, 2]]
                assert fake.identify_refusals == []
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


# ---------------------------------------------------------------- Discord's rules, as Discord answers them

Action = Callable[[discord.Interaction], Awaitable[None]]


async def act(world: World, action: Action, **options: Any) -> Any:
    """Run /act with `action` as what the bot does; return the interaction."""
    name = f"action{len(world.bot.actions)}"
    world.bot.actions[name] = action
    return await world.fake.slash(world.guild, world.text, world.alice, "act", {"what": name, **options})


def errors_at(body: dict[str, Any] | None, path: str) -> list[str]:
    """The error codes Discord's nested `errors` object holds at a dotted path."""
    assert body is not None and body["code"] == 50035 and body["message"] == "Invalid Form Body", body
    node: Any = body["errors"]
    for key in path.split("."):
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return [error["code"] for error in node.get("_errors", [])]


async def refusal(world: World, action: Action) -> tuple[Any, Any]:
    """Run an action whose first call Discord refuses; return (the refused response, the interaction)."""
    interaction = await act(world, action)
    refused = await interaction.wait_for(lambda r: r.status >= 400)
    await world.fake.wait_until(lambda: bool(world.bot.seen["refused"]), what="discord.py to raise")
    return refused, interaction


def big_embed(**kwargs: Any) -> discord.Embed:
    return discord.Embed(**kwargs)


def with_fields(count: int, name: str = "n", value: str = "v") -> discord.Embed:
    embed = discord.Embed(title="t")
    for _ in range(count):
        embed.add_field(name=name, value=value)
    return embed


EMBED_CASES: list[tuple[str, discord.Embed, str, str]] = [
    ("title", discord.Embed(title="t" * 257), "embeds.0.title", "BASE_TYPE_MAX_LENGTH"),
    ("description", discord.Embed(description="d" * 4097), "embeds.0.description", "BASE_TYPE_MAX_LENGTH"),
    ("26 fields", with_fields(26), "embeds.0.fields", "BASE_TYPE_MAX_LENGTH"),
    ("field name", with_fields(1, name="n" * 257), "embeds.0.fields.0.name", "BASE_TYPE_MAX_LENGTH"),
    ("field value", with_fields(1, value="v" * 1025), "embeds.0.fields.0.value", "BASE_TYPE_MAX_LENGTH"),
    ("blank field value", with_fields(1, value="   "), "embeds.0.fields.0.value", "BASE_TYPE_REQUIRED"),
    ("footer", discord.Embed(title="t").set_footer(text="f" * 2049), "embeds.0.footer.text", "BASE_TYPE_MAX_LENGTH"),
    ("author", discord.Embed(title="t").set_author(name="a" * 257), "embeds.0.author.name", "BASE_TYPE_MAX_LENGTH"),
    (
        "6,000 in all",
        discord.Embed(description="d" * 4000).set_footer(text="f" * 2001),
        "embeds",
        "MAX_EMBED_SIZE_EXCEEDED",
    ),
    (
        "javascript: thumbnail",
        discord.Embed(title="t").set_thumbnail(url="javascript:alert(1)"),
        "embeds.0.thumbnail.url",
        "URL_TYPE_INVALID_SCHEME",
    ),
    (
        "ftp: image",
        discord.Embed(title="t").set_image(url="ftp://files.example/a.png"),
        "embeds.0.image.url",
        "URL_TYPE_INVALID_SCHEME",
    ),
    (
        "relative thumbnail",
        discord.Embed(title="t").set_thumbnail(url="/avatars/a.png"),
        "embeds.0.thumbnail.url",
        "URL_TYPE_INVALID_SCHEME",
    ),
    (
        "malformed thumbnail",
        discord.Embed(title="t").set_thumbnail(url="https://exa mple.com/a.png"),
        "embeds.0.thumbnail.url",
        "URL_TYPE_INVALID_URL",
    ),
    ("title link", discord.Embed(title="t", url="ftp://example.com"), "embeds.0.url", "URL_TYPE_INVALID_SCHEME"),
]


async def test_embeds_over_any_limit_are_refused_as_discord_refuses_them(world: World) -> None:
    for case, embed, path, code in EMBED_CASES:
        world.bot.seen["refused"].clear()

        async def send(interaction: discord.Interaction, embed: discord.Embed = embed) -> None:
            await interaction.response.send_message(embed=embed)

        refused, _ = await refusal(world, send)
        assert refused.status == 400, case
        assert errors_at(refused.error, f"data.{path}") == [code], (case, refused.error)
        assert world.bot.seen["refused"][0][:2] == (400, 50035), case


async def test_what_discord_accepts_at_the_limits_goes_through(world: World) -> None:
    embed = discord.Embed(title="t" * 256, description="  " + "d" * 4096 + "  ")  # trimmed before counting
    embed.set_thumbnail(url="attachment://avatar.png").set_image(url="https://cdn.example/a.png")
    for _ in range(6):
        embed.add_field(name="n" * 100, value="v" * 100)
    embed.set_footer(text="f" * (6000 - 256 - 4096 - 6 * 200))
    sent: list[discord.Embed] = [embed]

    async def send(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("c" * 2000, embed=sent[0])

    interaction = await act(world, send)
    await interaction.wait_final()
    assert [r.status for r in interaction.responses] == [200]
    assert len(interaction.embeds()[0]["fields"]) == 6


async def test_a_refused_callback_does_not_acknowledge_the_interaction(world: World) -> None:
    async def send(interaction: discord.Interaction) -> None:
        try:
            await interaction.response.send_message("x" * 2001)
        finally:
            await interaction.response.send_message("x" * 2000)

    interaction = await act(world, send)
    await interaction.wait_final()
    refused, accepted = interaction.responses
    assert refused.status == 400 and errors_at(refused.error, "data.content") == ["BASE_TYPE_MAX_LENGTH"]
    assert refused.error["errors"]["data"]["content"]["_errors"][0]["message"] == "Must be 2000 or fewer in length."
    assert accepted.status == 200 and interaction.content() == "x" * 2000


async def test_follow_ups_edits_and_channel_messages_are_checked_too(world: World) -> None:
    async def deferred(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        try:
            await interaction.edit_original_response(embed=discord.Embed(title="t").set_thumbnail(url="ftp://x.y/a"))
        finally:
            await interaction.followup.send("x" * 2001)

    interaction = await act(world, deferred)
    await world.fake.wait_until(lambda: len(world.bot.seen["refused"]) == 1)
    await interaction.wait_for(lambda r: r.kind == "followup")
    edit, followup = interaction.responses[1:]
    # Webhook bodies are the message itself: their paths have no "data." in front.
    assert edit.kind == "edit_original" and errors_at(edit.error, "embeds.0.thumbnail.url") == [
        "URL_TYPE_INVALID_SCHEME"
    ]
    assert followup.status == 400 and errors_at(followup.error, "content") == ["BASE_TYPE_MAX_LENGTH"]
    channel = world.bot.get_channel(int(world.text["id"]))
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as raised:
        await channel.send(embed=with_fields(1, value="v" * 1025))
    assert (raised.value.status, raised.value.code) == (400, 50035)


def view_with(*items: discord.ui.Item[Any]) -> discord.ui.View:
    view = discord.ui.View()
    for item in items:
        view.add_item(item)
    return view


def select(options: list[tuple[str, str]], **kwargs: Any) -> discord.ui.Select[Any]:
    return discord.ui.Select(
        options=[discord.SelectOption(label=label, value=value) for label, value in options], **kwargs
    )


COMPONENT_CASES: list[tuple[str, Callable[[], discord.ui.View], str, str]] = [
    (
        "button label",
        lambda: view_with(discord.ui.Button(label="b" * 81, custom_id="b")),
        "components.0.components.0.label",
        "BASE_TYPE_MAX_LENGTH",
    ),
    (
        "custom_id",
        lambda: view_with(discord.ui.Button(label="b", custom_id="c" * 101)),
        "components.0.components.0.custom_id",
        "BASE_TYPE_BAD_LENGTH",
    ),
    (
        "duplicate custom_id",
        lambda: view_with(
            discord.ui.Button(label="a", custom_id="same"), discord.ui.Button(label="b", custom_id="same")
        ),
        "components.0.components.1.custom_id",
        "COMPONENT_CUSTOM_ID_DUPLICATED",
    ),
    (
        "duplicate select values",
        lambda: view_with(select([("One", "v"), ("Two", "v")], custom_id="s")),
        "components.0.components.0.options.1.value",
        "SELECT_COMPONENT_OPTION_VALUE_DUPLICATED",
    ),
    (
        "option label",
        lambda: view_with(select([("l" * 101, "v")], custom_id="s")),
        "components.0.components.0.options.0.label",
        "BASE_TYPE_BAD_LENGTH",
    ),
    (
        "option value",
        lambda: view_with(select([("l", "v" * 101)], custom_id="s")),
        "components.0.components.0.options.0.value",
        "BASE_TYPE_BAD_LENGTH",
    ),
    (
        "placeholder",
        lambda: view_with(select([("l", "v")], custom_id="s", placeholder="p" * 151)),
        "components.0.components.0.placeholder",
        "BASE_TYPE_MAX_LENGTH",
    ),
    (
        "select without options",
        lambda: view_with(select([], custom_id="s")),
        "components.0.components.0.options",
        "BASE_TYPE_BAD_LENGTH",
    ),
]


async def test_components_over_any_limit_are_refused(world: World) -> None:
    for case, make_view, path, code in COMPONENT_CASES:
        world.bot.seen["refused"].clear()
        view = make_view()

        async def send(interaction: discord.Interaction, view: discord.ui.View = view) -> None:
            await interaction.response.send_message("menu", view=view)

        refused, _ = await refusal(world, send)
        assert errors_at(refused.error, f"data.{path}") == [code], (case, refused.error)


def test_structural_component_rules() -> None:
    button = {"type": 2, "style": 1, "label": "b", "custom_id": "b"}
    six_rows = [{"type": 1, "components": [{**button, "custom_id": f"b{i}"}]} for i in range(6)]
    assert p.message_errors({"components": six_rows})["components"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    wide = [{"type": 1, "components": [{**button, "custom_id": f"b{i}"} for i in range(6)]}]
    assert p.message_errors({"components": wide})["components.0"][0]["code"] == "COMPONENT_LAYOUT_WIDTH_EXCEEDED"
    options = [{"label": str(i), "value": str(i)} for i in range(26)]
    many = [{"type": 1, "components": [{"type": 3, "custom_id": "s", "options": options}]}]
    assert p.message_errors({"components": many})["components.0.components.0.options"][0]["code"] == (
        "BASE_TYPE_BAD_LENGTH"
    )
    link = [{"type": 1, "components": [{"type": 2, "style": 5, "label": "go", "url": "javascript:alert(1)"}]}]
    assert p.message_errors({"components": link})["components.0.components.0.url"][0]["code"] == (
        "URL_TYPE_INVALID_SCHEME"
    )
    ten = [{"title": "t"}] * 11
    assert p.message_errors({"embeds": ten}, "data.")["data.embeds"][0]["code"] == "BASE_TYPE_MAX_LENGTH"


async def test_autocomplete_choices_over_any_limit_are_refused(world: World) -> None:
    cases = [
        ([app_commands.Choice(name="n" * 101, value="v")], "data.choices.0.name", "BASE_TYPE_BAD_LENGTH"),
        ([app_commands.Choice(name="", value="v")], "data.choices.0.name", "BASE_TYPE_BAD_LENGTH"),
        ([app_commands.Choice(name="n", value="v" * 101)], "data.choices.0.value", "BASE_TYPE_MAX_LENGTH"),
    ]
    for choices, path, code in cases:

        async def suggest(interaction: discord.Interaction, choices: list[Any] = choices) -> None:
            await interaction.response.autocomplete(choices)

        name = f"action{len(world.bot.actions)}"
        world.bot.actions[name] = suggest
        interaction = await world.fake.autocomplete(world.guild, world.text, world.alice, "act", {"what": name}, "what")
        refused = await interaction.wait_for(lambda r: r.status >= 400)
        assert errors_at(refused.error, path) == [code], (path, refused.error)


async def test_attachments_over_the_interaction_limit_get_discords_413(world: World) -> None:
    async def upload(interaction: discord.Interaction) -> None:
        size = interaction.filesize_limit + 1
        await interaction.response.send_message(file=discord.File(io.BytesIO(b"x" * size), filename="big.mp3"))

    interaction = await act(world, upload)
    refused = await interaction.wait_for(lambda r: r.status >= 400)
    assert (refused.status, refused.error) == (413, {"message": "Request entity too large", "code": 40005})
    assert interaction.acknowledged_at is None


def test_the_deadline_is_on_by_default() -> None:
    assert FakeDiscord().callback_deadline == 3.0


async def test_the_3_s_start_when_discord_creates_the_interaction_not_when_the_bot_receives_it(world: World) -> None:
    # receiving-and-responding.mdx, "Responding to an Interaction": 3 s from creation; delivery takes part of it.
    assert world.fake.delivery_delay == 0.5
    received: list[float] = []

    async def slow(interaction: discord.Interaction) -> None:
        received.append(asyncio.get_running_loop().time())
        await asyncio.sleep(2.6)  # under 3 s after the bot received it, over 3 s after Discord created it
        try:
            await interaction.response.defer()
        finally:
            await interaction.followup.send("too late")

    interaction = await act(world, slow)
    # The interaction's id carries its creation at Discord, half a second before it was dispatched.
    created = discord.utils.snowflake_time(interaction.id).timestamp()
    assert 0.4 < time.time() - created < 1.5
    await world.fake.wait_until(lambda: len(world.bot.seen["refused"]) == 1, timeout=10)
    late, followup = interaction.responses
    assert (late.kind, late.status, late.error) == ("callback", 404, {"message": "Unknown interaction", "code": 10062})
    assert late.at - interaction.created_at > 3.0 > late.at - interaction.created_at - world.fake.delivery_delay
    assert (followup.status, followup.error["code"]) == (404, 10015)
    # The follow-up's refusal is what reached the command last: the token died with the deadline.
    assert world.bot.seen["refused"] == [(404, 10015, "Unknown Webhook")]


async def test_a_token_past_its_15_minutes_gets_401_invalid_webhook_token_counted_as_invalid(world: World) -> None:
    # receiving-and-responding.mdx: "Interaction tokens are valid for 15 minutes"; the stand-in's lifetime is
    # scaled down here, on the one clock the bot and discord.py use too (there is no moving it forward).
    world.fake.token_lifetime = 1.5

    async def deferred(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True)
        await asyncio.sleep(1.3)  # 1.8 s after its creation at Discord
        try:
            await interaction.followup.send("much later")
        finally:
            await interaction.edit_original_response(content="edited later")

    interaction = await act(world, deferred)
    await interaction.wait_for(lambda r: r.kind == "callback")
    await world.fake.wait_until(lambda: len(world.bot.seen["refused"]) == 1)
    await interaction.wait_for(lambda r: r.kind == "edit_original")
    expired = {"message": "Invalid Webhook Token", "code": 50027}
    assert [(r.kind, r.status, r.error) for r in interaction.responses[1:]] == [
        ("followup", 401, expired),
        ("edit_original", 401, expired),
    ]
    assert world.bot.seen["refused"] == [(401, 50027, "Invalid Webhook Token")]
    # rate-limits.mdx, "Invalid Request Limit": each 401 counts toward banning the IP.
    assert [(r.method, r.status, r.code) for r in world.fake.wasted_requests()] == [
        ("POST", 401, 50027),
        ("PATCH", 401, 50027),
    ]


async def test_option_values_outside_the_schema_are_never_sent_by_the_client(world: World) -> None:
    fake = world.fake
    before = len(fake.interactions)
    with pytest.raises(ClientRefused, match="registered lengths are 1-10"):
        await fake.slash(world.guild, world.text, world.alice, "act", {"what": "x", "note": "n" * 11})
    with pytest.raises(ClientRefused):
        await fake.autocomplete(world.guild, world.text, world.alice, "act", {"what": "w" * 41}, "what")
    assert len(fake.interactions) == before
    assert len(fake.client_refusals) == 2
    # A client that bypasses the schema (client_checks=False) does reach the bot.
    sent: list[str] = []

    async def record(interaction: discord.Interaction) -> None:
        sent.append(interaction.namespace.note)
        await interaction.response.send_message("ok")

    world.bot.actions["record"] = record
    bypass = await fake.slash(
        world.guild, world.text, world.alice, "act", {"what": "record", "note": "n" * 11}, client_checks=False
    )
    await bypass.wait_final()
    assert sent == ["n" * 11]
