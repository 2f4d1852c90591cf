"""Voice channels end to end: the real bot joins the voice stand-in, which decrypts and measures what it sends."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.audio import opus
from tests.conftest import MEMBER_PERMISSIONS, MOVE_MEMBERS, World
from tests.fakes.discord_server import ChannelOption, RoleOption
from tests.fakes.discord_voice import FakeVoiceServer, VoiceSession

VIEW_CHANNEL = 1 << 10
CONNECT = 1 << 20
SPEAK = 1 << 21


@pytest.fixture
async def speaking(world: World, voice_server: FakeVoiceServer) -> World:
    """The bot running, with the member and the other member in the voice channel."""
    await world.start_bot()
    await world.discord.move_member(world.guild, world.member, world.voice)
    await world.discord.move_member(world.guild, world.other, world.voice)
    return world


async def wait_clips(session: VoiceSession, count: int, timeout: float = 15.0) -> list:
    """Wait until `count` clips have fully arrived (each followed by its silence frames)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        clips = session.clips(gap=0.5)
        silences = sum(1 for packet in session.packets if packet.is_silence) // 5
        if len(clips) >= count and silences >= count:
            return clips
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} clips, got {len(session.clips(gap=0.5))}")


async def test_join_then_say_play_delivers_the_clip(speaking: World, voice_server: FakeVoiceServer) -> None:
    join = await speaking.slash("join")
    await join.wait_final()
    assert join.ephemeral
    assert "Lounge" in join.content() or str(speaking.voice["id"]) in join.content()
    session = await voice_server.wait_for_session(speaking.guild.id)

    play = await speaking.say(text="Hello everyone, this is a test of playback.", play=True)
    await play.wait_final()
    assert play.ephemeral
    assert not play.files()
    assert "Brian" in play.content()

    clips = await wait_clips(session, 1)
    request = speaking.tts_requests()[-1]
    reported = request.json and speaking.unmixr.requests  # the stand-in's reported duration is below
    assert reported
    expected = len(request.json["text"]) / speaking.unmixr.chars_per_second
    assert abs(clips[0].seconds - max(0.5, expected)) < 0.2


async def test_a_replayed_clip_is_sent_from_the_cache_without_an_encoder(
    speaking: World, voice_server: FakeVoiceServer
) -> None:
    text = "The same words, played twice in a row."
    await (await speaking.say(text=text, play=True)).wait_final()
    session = await voice_server.wait_for_session(speaking.guild.id)
    await wait_clips(session, 1)
    started = opus.encodings_started()

    await (await speaking.say(text=text, play=True)).wait_final()

    await wait_clips(session, 2)
    assert opus.encodings_started() == started
    audio = [packet.opus for packet in session.packets if not packet.is_silence]
    assert audio[: len(audio) // 2] == audio[len(audio) // 2 :]


async def test_say_play_joins_the_callers_channel_by_itself(speaking: World, voice_server: FakeVoiceServer) -> None:
    play = await speaking.say(text="Joining on demand.", play=True)
    await play.wait_final()
    assert play.ephemeral, play.content()
    session = await voice_server.wait_for_session(speaking.guild.id)
    clips = await wait_clips(session, 1)
    assert len(clips) == 1


async def test_three_queued_clips_arrive_in_order(speaking: World, voice_server: FakeVoiceServer) -> None:
    texts = ["One.", "Two is a little longer than one.", "Three is the longest of the three clips by far."]
    for text in texts:
        interaction = await speaking.say(text=text, play=True)
        await interaction.wait_final()
    session = await voice_server.wait_for_session(speaking.guild.id)
    clips = await wait_clips(session, 3)
    expected = [max(0.5, len(text) / speaking.unmixr.chars_per_second) for text in texts]
    assert [round(clip.seconds, 1) for clip in clips[:3]] == pytest.approx(expected, abs=0.2)


async def test_skip_and_stop_cut_playback(speaking: World, voice_server: FakeVoiceServer) -> None:
    long_text = "This sentence goes on for quite a while so that it plays for several seconds. " * 2
    first = await speaking.say(text=long_text, play=True)
    await first.wait_final()
    for extra in ("Second clip.", "Third clip."):
        await (await speaking.say(text=extra, play=True)).wait_final()
    session = await voice_server.wait_for_session(speaking.guild.id)
    await asyncio.sleep(0.5)

    skip = await speaking.slash("skip")
    await skip.wait_final()
    assert skip.ephemeral and "Skipped" in skip.content()
    stop = await speaking.slash("stop")
    await stop.wait_final()
    assert stop.ephemeral
    await asyncio.sleep(1.0)
    full_first = len(long_text.strip()) / speaking.unmixr.chars_per_second
    # The first clip was cut short and at most the start of the second one played before /stop.
    assert session.seconds_received() < full_first
    assert speaking.bot.get_cog("Voice").players[speaking.guild.id].idle


async def test_queue_lists_waiting_clips(speaking: World, voice_server: FakeVoiceServer) -> None:
    await (await speaking.say(text="A clip that keeps playing for a few seconds at least.", play=True)).wait_final()
    await (await speaking.say(text="Waiting clip.", play=True)).wait_final()
    queue = await speaking.slash("queue")
    await queue.wait_final()
    assert queue.ephemeral
    assert "Waiting clip" in queue.content()


async def test_play_without_being_in_voice_is_refused(world: World, voice_server: FakeVoiceServer) -> None:
    await world.start_bot()
    play = await world.say(text="Nobody hears this.", play=True)
    await play.wait_final()
    assert play.ephemeral
    assert "voice channel" in play.content().lower()
    assert not world.tts_requests()


@pytest.mark.parametrize(("denied", "name"), [(CONNECT, "Connect"), (SPEAK, "Speak")])
async def test_missing_permission_is_named(world: World, voice_server: FakeVoiceServer, denied: int, name: str) -> None:
    world.guild.set_permission_overwrite(world.voice, role_or_member_id=world.guild.bot_member, allow=0, deny=denied)
    await world.start_bot()
    await world.discord.move_member(world.guild, world.member, world.voice)
    play = await world.say(text="Can you hear me?", play=True)
    await play.wait_final()
    assert play.ephemeral
    assert name in play.content()
    assert not world.tts_requests()
    join = await world.slash("join")
    await join.wait_final()
    assert name in join.content()


@pytest.mark.parametrize(
    ("denied", "missing"),
    [
        (VIEW_CHANNEL, ["View Channel"]),
        (CONNECT, ["Connect"]),
        (VIEW_CHANNEL | CONNECT, ["View Channel and Connect"]),
    ],
)
async def test_join_channel_needs_the_caller_to_see_and_connect_there(
    world: World, voice_server: FakeVoiceServer, denied: int, missing: list[str]
) -> None:
    # The member may not enter the Lounge; the bot could, so it must not take them (or their readouts) there.
    world.guild.set_permission_overwrite(world.voice, role_or_member_id=world.member, allow=0, deny=denied)
    await world.start_bot()
    lounge = ChannelOption(int(world.voice["id"]))
    refused = await world.slash("join", {"channel": lounge}, member=world.member)
    await refused.wait_final()
    assert refused.ephemeral
    for name in missing:
        assert name in refused.content()
    assert "yourself" in refused.content()
    assert world.bot.get_cog("Voice").players == {}
    assert world.guild.bot_member.id not in world.guild.voice_states
    # Someone allowed in the Lounge may still bring the bot there from elsewhere.
    allowed = await world.slash("join", {"channel": lounge}, member=world.other)
    await allowed.wait_final()
    assert "Joined" in allowed.content(), allowed.content()
    await voice_server.wait_for_session(world.guild.id)


async def test_bot_leaves_when_left_alone(world: World, voice_server: FakeVoiceServer) -> None:
    await world.start_bot(voice_alone_seconds=1)
    await world.discord.move_member(world.guild, world.member, world.voice)
    await (await world.slash("join")).wait_final()
    session = await voice_server.wait_for_session(world.guild.id)
    await world.discord.move_member(world.guild, world.member, None)
    await asyncio.wait_for(session.disconnected.wait(), 10)
    assert world.guild.id not in world.bot.get_cog("Voice").players


async def test_bot_leaves_when_idle(world: World, voice_server: FakeVoiceServer) -> None:
    await world.start_bot(voice_idle_seconds=1)
    await world.discord.move_member(world.guild, world.member, world.voice)
    await (await world.slash("join")).wait_final()
    session = await voice_server.wait_for_session(world.guild.id)
    await asyncio.wait_for(session.disconnected.wait(), 10)


async def test_forced_disconnect_clears_the_queue(speaking: World, voice_server: FakeVoiceServer) -> None:
    long_text = "A long clip that would keep playing for a good while if nobody stopped it. " * 2
    await (await speaking.say(text=long_text, play=True)).wait_final()
    await (await speaking.say(text="Queued behind it.", play=True)).wait_final()
    await voice_server.wait_for_session(speaking.guild.id)
    voice_cog = speaking.bot.get_cog("Voice")
    assert speaking.guild.id in voice_cog.players

    await voice_server.force_disconnect(speaking.guild.id)
    for _ in range(100):
        if speaking.guild.id not in voice_cog.players:
            break
        await asyncio.sleep(0.05)
    assert speaking.guild.id not in voice_cog.players
    queue = await speaking.slash("queue")
    await queue.wait_final()
    assert "not in a voice channel" in queue.content()


async def test_busy_in_another_channel_is_refused_unless_move_members(
    speaking: World, voice_server: FakeVoiceServer
) -> None:
    second = speaking.guild.add_voice_channel("Second")
    await speaking.discord.announce_channel(speaking.guild, second)
    await (await speaking.say(text="A clip that keeps the bot busy for a few seconds here.", play=True)).wait_final()
    newcomer = speaking.guild.add_member("Nia Newcomer", permissions=MEMBER_PERMISSIONS)
    await speaking.discord.announce_member(speaking.guild, newcomer)
    await speaking.discord.move_member(speaking.guild, newcomer, second)
    refused = await speaking.slash("join", member=newcomer)
    await refused.wait_final()
    assert refused.ephemeral and "busy" in refused.content()

    mover = speaking.guild.add_member("Max Mover", permissions=MEMBER_PERMISSIONS | MOVE_MEMBERS)
    await speaking.discord.announce_member(speaking.guild, mover)
    await speaking.discord.move_member(speaking.guild, mover, second)
    moved = await speaking.slash("join", {"channel": ChannelOption(int(second["id"]))}, member=mover)
    await moved.wait_final()
    assert "Joined" in moved.content()


async def test_controls_need_the_bots_channel(speaking: World, voice_server: FakeVoiceServer) -> None:
    await (await speaking.slash("join")).wait_final()
    outsider = await speaking.slash("skip", member=speaking.admin)
    await outsider.wait_final()
    assert outsider.ephemeral and "Join" in outsider.content()


async def test_readout_speaks_the_authors_voice_and_cleaned_text(
    speaking: World, voice_server: FakeVoiceServer
) -> None:
    admin_set = await speaking.slash(
        "settings",
        {"channel": ChannelOption(int(speaking.readout["id"]))},
        subcommand="readout-channel",
        member=speaking.admin,
    )
    await admin_set.wait_final()
    pref = await speaking.slash("preferences", {"voice": "Jenny"}, subcommand="voice", member=speaking.member)
    await pref.wait_final()
    await (await speaking.slash("join")).wait_final()
    session = await voice_server.wait_for_session(speaking.guild.id)

    await speaking.discord.post_message(
        speaking.guild, speaking.readout, speaking.member, "Look at https://example.com/page soooooo cool <:party:123>"
    )
    clips = await wait_clips(session, 1)
    assert clips
    request = speaking.tts_requests()[-1]
    jenny = next(v for v in speaking.unmixr.voices if v["character"] == "Jenny")
    assert request.json["voice_id"] == jenny["uuid"]
    assert request.json["text"] == "Mel Member said, Look at link sooo cool party"

    # Same author again within 30 s: no "said" prefix; a skip-prefixed message and a bot are not read.
    await speaking.discord.post_message(speaking.guild, speaking.readout, speaking.member, "Second message")
    await speaking.discord.post_message(speaking.guild, speaking.readout, speaking.member, "!not this one")
    await wait_clips(session, 2)
    texts = [r.json["text"] for r in speaking.tts_requests()]
    assert texts[-1] == "Second message"
    assert not any("not this one" in text for text in texts)
    # Members' messages, as audio and as its Opus encoding, are kept apart: removed within 24 hours.
    await speaking.bot.audio_cache.flush()
    cache = speaking.settings.audio_cache_dir
    assert len(list((cache / "messages").glob("*.audio"))) >= 2
    assert list(cache.glob("*.audio")) == []


async def test_long_text_in_voice_starts_before_the_last_chunk_is_synthesised(
    world: World, voice_server: FakeVoiceServer
) -> None:
    # One upstream request at a time makes the chunks finish one after another, about 2 s apart.
    await world.start_bot(unmixr_max_concurrency=1)
    await world.discord.move_member(world.guild, world.member, world.voice)
    sentence = "Every chunk of this long text is synthesised while the first one is already playing. "
    text = (sentence * 70)[:4500].strip()
    world.unmixr.tts_latency_per_char = 0.001
    await (await world.slash("join")).wait_final()
    session = await voice_server.wait_for_session(world.guild.id)
    play = await world.say(text=text, play=True)
    await play.wait_final()
    for _ in range(300):
        requests = world.tts_requests()
        if session.first_packet_at is not None and len(requests) >= 3 and all(r.finished_at for r in requests):
            break
        await asyncio.sleep(0.05)
    requests = world.tts_requests()
    assert len(requests) >= 3
    assert all(len(r.json["text"]) <= 2000 for r in requests)
    last_finished = max(r.finished_at for r in requests)
    timeline = [(len(r.json["text"]), round(r.started_at, 2), round(r.finished_at, 2)) for r in requests]
    # The stand-ins' timestamps share time.monotonic(): the first packet came before the last chunk was ready.
    assert session.first_packet_at is not None
    assert session.first_packet_at < last_finished, (round(session.first_packet_at, 2), timeline)


async def test_a_full_queue_gets_a_clear_answer(
    speaking: World, voice_server: FakeVoiceServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.audio.player.MAX_QUEUE", 2)
    long_text = "A clip that plays for several seconds so that the queue stays full for a while. " * 2
    for text in (long_text, "Second."):
        await (await speaking.say(text=text, play=True)).wait_final()
    full = await speaking.say(text="Third does not fit.", play=True)
    await full.wait_final()
    assert full.ephemeral
    assert "queue is full" in full.content()


async def test_after_a_restart_the_bot_does_not_believe_it_is_connected(
    speaking: World, voice_server: FakeVoiceServer
) -> None:
    await (await speaking.slash("join")).wait_final()
    await voice_server.wait_for_session(speaking.guild.id)
    bot_id = speaking.discord.application_id
    await speaking.stop_bot()
    # As after a crash: the process is gone but Discord still shows the bot in the channel.
    speaking.guild.voice_states[bot_id] = {"channel_id": str(speaking.voice["id"]), "session_id": "stale"}
    await speaking.start_bot()
    await speaking.discord.wait_until(
        lambda: (speaking.guild.voice_states.get(bot_id) or {}).get("channel_id") is None, timeout=5
    )
    queue = await speaking.slash("queue")
    await queue.wait_final()
    assert "not in a voice channel" in queue.content()


async def test_playback_in_three_servers_does_not_block_the_event_loop(
    world: World, voice_server: FakeVoiceServer
) -> None:
    guilds = [(world.guild, world.voice, world.member)]
    for number in (2, 3):
        guild = world.discord.add_guild(name=f"Server {number}")
        guild.add_text_channel("general")
        voice = guild.add_voice_channel("Lounge")
        member = guild.add_member(f"Listener {number}", permissions=MEMBER_PERMISSIONS)
        guilds.append((guild, voice, member))
    await world.start_bot()
    for guild, voice, member in guilds:
        await world.discord.move_member(guild, member, voice)

    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - started - 0.01)

    ticking = asyncio.create_task(ticker())
    text = "Three servers hear this at the same time, for a good number of seconds of audio. " * 3
    plays = []
    for guild, _voice, member in guilds:
        channel = next(c for c in guild.channels.values() if c["type"] == 0)
        plays.append(await world.discord.slash(guild, channel, member, "say", {"text": text, "play": True}))
    for play in plays:
        await play.wait_final(timeout=20)
        assert play.ephemeral and "Brian" in play.content()
    sessions = [await voice_server.wait_for_session(guild.id) for guild, _voice, _member in guilds]
    await asyncio.sleep(2.0)
    stop.set()
    await ticking
    assert all(session.seconds_received() > 1.0 for session in sessions)
    # Encoding runs in ffmpeg and sending in discord.py's player threads: the loop stays responsive.
    lags.sort()
    print(f"loop lag over {len(lags)} ticks: p50 {lags[len(lags) // 2] * 1000:.1f} ms, max {lags[-1] * 1000:.1f} ms")
    assert lags[-1] < 0.25


async def test_a_dropped_connection_is_rejoined_and_the_queue_kept(
    speaking: World, voice_server: FakeVoiceServer
) -> None:
    long_text = "The first clip is long enough that the connection drops while it is still playing. " * 2
    await (await speaking.say(text=long_text, play=True)).wait_final()
    await (await speaking.say(text="The second clip survives the drop.", play=True)).wait_final()
    first_session = await voice_server.wait_for_session(speaking.guild.id)
    await asyncio.sleep(0.5)
    await voice_server.disconnect(speaking.guild.id, code=1001)  # a network failure, not a kick
    for _ in range(200):
        session = voice_server.sessions.get(speaking.guild.id)
        if session is not None and session is not first_session and session.connected.is_set():
            break
        await asyncio.sleep(0.05)
    second_session = voice_server.sessions[speaking.guild.id]
    assert second_session is not first_session
    assert speaking.guild.id in speaking.bot.get_cog("Voice").players
    clips = await wait_clips(second_session, 1)
    second = len("The second clip survives the drop.") / speaking.unmixr.chars_per_second
    assert clips[-1].seconds == pytest.approx(second, abs=0.2)


async def test_readouts_skip_bots_webhooks_the_ignored_role_and_members_elsewhere(
    speaking: World, voice_server: FakeVoiceServer
) -> None:
    muted = speaking.guild.add_role("Not read")
    await speaking.discord.announce_role(speaking.guild, muted, created=True)
    for subcommand, options in (
        ("readout-channel", {"channel": ChannelOption(int(speaking.readout["id"]))}),
        ("ignore-role", {"role": RoleOption(int(muted["id"]))}),
        ("xsaid", {"enabled": False}),
    ):
        await (await speaking.slash("settings", options, subcommand=subcommand, member=speaking.admin)).wait_final()
    await (await speaking.slash("join")).wait_final()
    session = await voice_server.wait_for_session(speaking.guild.id)

    robot = speaking.guild.add_member("Robo", bot=True, permissions=MEMBER_PERMISSIONS)
    quiet = speaking.guild.add_member("Quinn Quiet", roles=[muted], permissions=MEMBER_PERMISSIONS)
    for newcomer in (robot, quiet):
        await speaking.discord.announce_member(speaking.guild, newcomer)
        await speaking.discord.move_member(speaking.guild, newcomer, speaking.voice)
    post = speaking.discord.post_message
    await post(speaking.guild, speaking.readout, robot, "I am a bot")
    await post(speaking.guild, speaking.readout, speaking.member, "From a webhook", webhook_id=123456789012345678)
    await post(speaking.guild, speaking.readout, quiet, "I have the ignored role")
    await post(speaking.guild, speaking.text, speaking.member, "Wrong channel")
    await post(speaking.guild, speaking.readout, speaking.admin, "The admin is not in the voice channel")
    await post(speaking.guild, speaking.readout, speaking.member, "Only this one is read")
    await wait_clips(session, 1)
    await asyncio.sleep(0.3)
    assert [r.json["text"] for r in speaking.tts_requests()] == ["Only this one is read"]  # no "said": xsaid off


async def test_read_aloud_plays_in_voice_when_the_bot_is_with_the_caller(
    speaking: World, voice_server: FakeVoiceServer
) -> None:
    await (await speaking.slash("join")).wait_final()
    session = await voice_server.wait_for_session(speaking.guild.id)
    message = await speaking.discord.post_message(speaking.guild, speaking.text, speaking.other, "Read this one out.")
    read = await speaking.discord.message_command(speaking.guild, speaking.text, speaking.member, "Read aloud", message)
    await read.wait_final()
    assert read.ephemeral and "Queued at position 1" in read.content()
    assert not read.files()
    await wait_clips(session, 1)
    assert speaking.tts_requests()[-1].json["text"] == "Read this one out."
