"""Tests for the voice stand-in, alone and with the real discord.py voice client connected to it."""

from __future__ import annotations

import array
import asyncio
import io
import itertools
import json
import socket
import ssl
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import davey
import discord
import nacl.secret
import pytest
import yarl

from tests.fakes import dave
from tests.fakes.discord_server import FakeDiscord, FakeGuild
from tests.fakes.discord_voice import (
    SILENCE_FRAME,
    XCHACHA_MODE,
    FakeVoiceServer,
    ReceivedPacket,
    VoiceSession,
)

TONE_HERTZ = 440


# ---------------------------------------------------------------- a minimal voice client for unit tests


class RawVoiceClient:
    """Speaks the voice protocol by hand, the way discord.py 2.7.1 does, to test the server alone."""

    def __init__(self, server: FakeVoiceServer, http: aiohttp.ClientSession) -> None:
        self.server = server
        self.http = http
        self.websocket: aiohttp.ClientWebSocketResponse | None = None
        self.udp: socket.socket | None = None
        self.ssrc = 0
        self.key = b""
        self.counter = 0
        self.sequence = 0

    async def open(self) -> dict[str, Any]:
        self.websocket = await self.http.ws_connect(
            f"wss://{self.server.endpoint}/?v=8", ssl=self.server.client_ssl_context()
        )
        return await self.receive()

    async def send(self, op: int, data: Any) -> None:
        assert self.websocket is not None
        await self.websocket.send_str(json.dumps({"op": op, "d": data}))

    async def receive(self) -> dict[str, Any]:
        assert self.websocket is not None
        message = await asyncio.wait_for(self.websocket.receive(), 2.0)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        return json.loads(message.data)

    async def closed_with(self) -> int | None:
        assert self.websocket is not None
        message = await asyncio.wait_for(self.websocket.receive(), 2.0)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
        return self.websocket.close_code

    async def identify(self, guild_id: int, session_id: str = "session", token: str = "voice-token") -> dict[str, Any]:
        payload = {
            "server_id": str(guild_id),
            "user_id": "42",
            "session_id": session_id,
            "token": token,
            "max_dave_protocol_version": 1,
        }
        await self.send(0, payload)
        return await self.receive()

    async def discover_ip(self, ready: dict[str, Any]) -> bytes:
        loop = asyncio.get_running_loop()
        self.ssrc = ready["ssrc"]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.setblocking(False)
        await loop.sock_connect(self.udp, (ready["ip"], ready["port"]))
        request = bytearray(74)
        struct.pack_into(">HHI", request, 0, 1, 70, self.ssrc)
        await loop.sock_sendall(self.udp, request)
        return await asyncio.wait_for(loop.sock_recv(self.udp, 2048), 2.0)

    async def select(self, mode: str = XCHACHA_MODE) -> dict[str, Any]:
        assert self.udp is not None
        address, port = self.udp.getsockname()
        await self.send(1, {"protocol": "udp", "data": {"address": address, "port": port, "mode": mode}})
        description = await self.receive()
        self.key = bytes(description["d"]["secret_key"])
        return description

    def packet(self, opus: bytes, *, extension: bytes = b"") -> bytes:
        """Build an aead_xchacha20_poly1305_rtpsize packet like discord.py does, optionally with an extension."""
        self.sequence += 1
        header = bytearray(12)
        header[0] = 0x90 if extension else 0x80
        header[1] = 0x78
        struct.pack_into(">HII", header, 2, self.sequence, self.sequence * 960, self.ssrc)
        plaintext = opus
        if extension:
            # The extension preamble stays in the clear; its body is encrypted with the payload.
            header += struct.pack(">HH", 0xBEDE, len(extension) // 4)
            plaintext = extension + opus
        nonce = bytearray(24)
        struct.pack_into(">I", nonce, 0, self.counter)
        self.counter += 1
        ciphertext = nacl.secret.Aead(self.key).encrypt(plaintext, bytes(header), bytes(nonce)).ciphertext
        return bytes(header) + ciphertext + bytes(nonce[:4])

    async def send_packets(self, packets: list[bytes]) -> None:
        assert self.udp is not None
        loop = asyncio.get_running_loop()
        for packet in packets:
            await loop.sock_sendall(self.udp, packet)

    async def close(self) -> None:
        if self.websocket is not None:
            await self.websocket.close()
        if self.udp is not None:
            self.udp.close()


@pytest.fixture
async def voice_server() -> AsyncIterator[FakeVoiceServer]:
    """The server with DAVE off: these tests are about the transport (handshake, UDP, resume, close codes)."""
    server = FakeVoiceServer(dave=False)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def wait_for(predicate: Any, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def sent_packet(opus: bytes, at: float) -> ReceivedPacket:
    return ReceivedPacket(sequence=0, timestamp=0, ssrc=1, opus=opus, received_at=at, counter=0)


# ---------------------------------------------------------------- the server alone


@pytest.mark.parametrize("maker", ["cryptography", "openssl"])
async def test_certificate_is_valid_for_127_0_0_1_only_when_trusted_and_close_frees_everything(
    maker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if maker == "openssl":
        # Without the optional cryptography package the server falls back to the openssl command.
        monkeypatch.setitem(sys.modules, "cryptography", None)
    server = FakeVoiceServer()
    await server.start()
    host, port = server.endpoint.split(":")
    assert host == "127.0.0.1"
    assert server.cert_path.is_file()

    trusting = server.client_ssl_context()
    trusting.verify_flags |= ssl.VERIFY_X509_STRICT
    _, writer = await asyncio.open_connection(host, int(port), ssl=trusting, server_hostname="127.0.0.1")
    certificate = writer.get_extra_info("peercert")
    assert ("IP Address", "127.0.0.1") in certificate["subjectAltName"]
    writer.close()
    await writer.wait_closed()

    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection(host, int(port), ssl=ssl.create_default_context(), server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection(host, int(port), ssl=trusting, server_hostname="localhost")

    directory = server.cert_path.parent
    await server.close()
    assert not directory.exists()
    with pytest.raises(OSError):
        await asyncio.open_connection(host, int(port))


async def test_handshake_discovers_the_clients_address_and_decrypts_rtpsize_packets(
    voice_server: FakeVoiceServer, http: aiohttp.ClientSession
) -> None:
    client = RawVoiceClient(voice_server, http)
    try:
        hello = await client.open()
        assert hello["op"] == 8
        assert hello["d"]["heartbeat_interval"] > 0

        ready = await client.identify(guild_id=7)
        assert ready["op"] == 2
        assert ready["d"]["ip"] == "127.0.0.1"
        assert ready["d"]["port"] == voice_server.udp_port
        assert ready["d"]["modes"][0] == XCHACHA_MODE

        answer = await client.discover_ip(ready["d"])
        assert client.udp is not None
        address, port = client.udp.getsockname()
        assert len(answer) == 74
        assert struct.unpack_from(">HHI", answer, 0) == (2, 70, client.ssrc)
        assert answer[8:72].rstrip(b"\0").decode() == address
        assert struct.unpack_from(">H", answer, 72)[0] == port

        description = await client.select()
        assert description["op"] == 4
        assert description["d"]["mode"] == XCHACHA_MODE
        assert description["d"]["dave_protocol_version"] == 0
        assert len(description["d"]["secret_key"]) == 32

        await client.send(3, {"t": 123456, "seq_ack": description["seq"]})
        ack = await client.receive()
        assert ack == {"op": 6, "d": {"t": 123456}}
        await client.send(5, {"speaking": 1, "delay": 0, "ssrc": client.ssrc})

        session = await voice_server.wait_for_session(7)
        audio = [bytes([0xFC, index]) for index in range(3)]
        packets = [client.packet(frame) for frame in audio]
        packets.append(client.packet(b"\xfc\x09", extension=b"\x10\x01\x02\x03"))
        tampered = bytearray(client.packet(b"\xfc\xff"))
        tampered[14] ^= 0xFF
        packets.append(bytes(tampered))
        packets += [client.packet(SILENCE_FRAME) for _ in range(5)]
        await client.send_packets(packets)
        await wait_for(lambda: len(session.packets) + session.undecryptable == 10)

        assert [packet.opus for packet in session.packets[:4]] == [*audio, b"\xfc\x09"]
        assert session.undecryptable == 1
        assert [packet.sequence for packet in session.packets] == [1, 2, 3, 4, 6, 7, 8, 9, 10]
        assert {packet.ssrc for packet in session.packets} == {client.ssrc}
        assert [clip.frames for clip in session.clips()] == [4]
        assert session.seconds_received() == pytest.approx(0.08)
        assert session.heartbeats == 1
        assert session.last_seq_ack == description["seq"]
        assert [flags for _, flags in session.speaking_events] == [1]
        assert session.udp_address == (address, port)
        assert session.max_dave_protocol_version == 1
        assert "voice-token" not in repr(session)
    finally:
        await client.close()


async def test_identify_with_credentials_fakediscord_did_not_hand_out_is_refused(
    voice_server: FakeVoiceServer, http: aiohttp.ClientSession
) -> None:
    voice_server.expect(guild_id=7, channel_id=8, session_id="gateway-session", token="handed-out")
    client = RawVoiceClient(voice_server, http)
    try:
        await client.open()
        await client.send(0, {"server_id": "7", "user_id": "42", "session_id": "gateway-session", "token": "guessed"})
        assert await client.closed_with() == 4004
        assert 7 not in voice_server.sessions
    finally:
        await client.close()

    client = RawVoiceClient(voice_server, http)
    try:
        await client.open()
        ready = await client.identify(guild_id=7, session_id="gateway-session", token="handed-out")
        assert ready["op"] == 2
        assert voice_server.sessions[7].channel_id == 8
    finally:
        await client.close()


async def test_unsupported_mode_and_messages_before_identify_close_the_socket(
    voice_server: FakeVoiceServer, http: aiohttp.ClientSession
) -> None:
    client = RawVoiceClient(voice_server, http)
    try:
        await client.open()
        await client.send(5, {"speaking": 1, "delay": 0, "ssrc": 1})
        assert await client.closed_with() == 4003
    finally:
        await client.close()

    client = RawVoiceClient(voice_server, http)
    try:
        await client.open()
        await client.discover_ip((await client.identify(guild_id=7))["d"])
        await client.send(1, {"protocol": "udp", "data": {"address": "127.0.0.1", "port": 1, "mode": "plain"}})
        assert await client.closed_with() == 4016
    finally:
        await client.close()


async def test_resume_reattaches_the_session_and_a_wrong_token_is_refused(
    voice_server: FakeVoiceServer, http: aiohttp.ClientSession
) -> None:
    first = RawVoiceClient(voice_server, http)
    await first.open()
    await first.discover_ip((await first.identify(guild_id=7, session_id="s", token="t"))["d"])
    await first.select()
    session = await voice_server.wait_for_session(7)
    await first.close()
    await asyncio.wait_for(session.disconnected.wait(), 2.0)
    assert not session.closed_by_server

    second = RawVoiceClient(voice_server, http)
    try:
        await second.open()
        await second.send(7, {"server_id": "7", "session_id": "s", "token": "t", "seq_ack": 2})
        resumed = await second.receive()
        assert resumed["op"] == 9
        assert session.resumes == 1
        assert session.last_seq_ack == 2
        assert not session.disconnected.is_set()
        assert voice_server.sessions[7] is session
    finally:
        await second.close()

    third = RawVoiceClient(voice_server, http)
    try:
        await third.open()
        await third.send(7, {"server_id": "7", "session_id": "s", "token": "stolen", "seq_ack": 2})
        assert await third.closed_with() == 4006
        assert session.resumes == 1
    finally:
        await third.close()


async def test_server_disconnect_closes_the_socket_with_the_given_code(
    voice_server: FakeVoiceServer, http: aiohttp.ClientSession
) -> None:
    client = RawVoiceClient(voice_server, http)
    try:
        await client.open()
        await client.identify(guild_id=7)
        await voice_server.disconnect(7)
        assert await client.closed_with() == 4014
        session = voice_server.sessions[7]
        await asyncio.wait_for(session.disconnected.wait(), 2.0)
        assert session.close_code == 4014
        assert session.closed_by_server
    finally:
        await client.close()


def test_clips_end_at_silence_frames_and_at_arrival_gaps() -> None:
    session = VoiceSession(guild_id=1, user_id=2, session_id="s", token="t", ssrc=1)
    audio = b"\xfc\x01"
    times = iter(range(1000))

    def frames(count: int, opus: bytes, *, pause: float = 0.0) -> None:
        for _ in range(count):
            at = next(times) * 0.02 + pause
            session.packets.append(sent_packet(opus, at))

    frames(10, audio)
    frames(5, SILENCE_FRAME)
    frames(4, audio)
    frames(3, audio, pause=0.5)  # arrives after a pause, without silence frames in between
    clips = session.clips()
    assert [clip.frames for clip in clips] == [10, 4, 3]
    assert clips[0].seconds == pytest.approx(0.2)
    assert clips[0].first_at == pytest.approx(0.0)
    assert clips[0].last_at == pytest.approx(0.18)
    assert [clip.frames for clip in session.clips(gap=1.0)] == [10, 7]
    assert session.seconds_received() == pytest.approx(17 * 0.02)
    assert session.first_packet_at == pytest.approx(0.0)


# ---------------------------------------------------------------- the real discord.py voice client


@dataclass
class VoiceWorld:
    fake: FakeDiscord
    voice: FakeVoiceServer
    guild: FakeGuild
    client: discord.Client
    channel: discord.VoiceChannel


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> dict[float, Path]:
    directory = tmp_path_factory.mktemp("tones")
    paths = {}
    for seconds in (1.0, 0.5):
        path = directory / f"tone-{seconds}.wav"
        subprocess.run(
            [
                "ffmpeg",
                "-hide_banner",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                f"sine=frequency={TONE_HERTZ}:duration={seconds}",
                "-ar",
                "48000",
                "-ac",
                "2",
                str(path),
            ],
            check=True,
        )
        paths[seconds] = path
    return paths


@pytest.fixture
async def voice_world(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[VoiceWorld]:
    async with FakeDiscord() as fake, FakeVoiceServer() as voice:
        voice.attach(fake)
        voice.trust_in_process()
        monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
        monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))
        guild = fake.add_guild()
        channel_payload = guild.add_voice_channel("Lounge")
        intents = discord.Intents.none()
        intents.guilds = True
        intents.voice_states = True
        client = discord.Client(intents=intents)
        await client.login(fake.token)
        runner = asyncio.create_task(client.connect(reconnect=False))
        try:
            await wait_for(lambda: client.get_channel(int(channel_payload["id"])) is not None)
            channel = client.get_channel(int(channel_payload["id"]))
            assert isinstance(channel, discord.VoiceChannel)
            yield VoiceWorld(fake, voice, guild, client, channel)
        finally:
            for voice_client in list(client.voice_clients):
                await voice_client.disconnect(force=True)
            await client.close()
            await runner


class ClosingFFmpegPCMAudio(discord.FFmpegPCMAudio):
    """discord.py 2.7.1 leaves ffmpeg's stdout pipe open when ffmpeg has already exited (a ResourceWarning)."""

    def cleanup(self) -> None:
        # cleanup() also runs from __del__, after a first cleanup has replaced _stdout with a sentinel.
        stdout = self._stdout
        super().cleanup()
        if isinstance(stdout, io.IOBase):
            stdout.close()


async def play(voice_client: discord.VoiceClient, path: Path) -> None:
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[Exception | None] = loop.create_future()
    voice_client.play(
        ClosingFFmpegPCMAudio(str(path)),
        after=lambda error: loop.call_soon_threadsafe(finished.set_result, error),
    )
    assert await asyncio.wait_for(finished, 10.0) is None


def zero_crossings(pcm: bytes) -> int:
    left = array.array("h", pcm)[::2]
    return sum((a < 0) != (b < 0) for a, b in itertools.pairwise(left))


async def test_discord_py_plays_two_clips_that_arrive_decrypted_in_order(
    voice_world: VoiceWorld, tones: dict[float, Path]
) -> None:
    voice_client = await voice_world.channel.connect(reconnect=False, timeout=5.0, cls=discord.VoiceClient)
    assert isinstance(voice_client, discord.VoiceClient)
    session = await voice_world.voice.wait_for_session(voice_world.guild.id)
    assert session.mode == XCHACHA_MODE
    assert session.channel_id == voice_world.channel.id
    assert voice_world.client.user is not None
    assert session.user_id == voice_world.client.user.id

    await play(voice_client, tones[1.0])
    await play(voice_client, tones[0.5])
    # The "not speaking" after the last clip travels on the websocket, unordered with the UDP packets.
    await wait_for(
        lambda: sum(packet.is_silence for packet in session.packets) == 10 and len(session.speaking_events) == 5
    )

    # Silence frames separate the clips; the generous gap keeps a busy machine's scheduling jitter from splitting one.
    clips = session.clips(gap=0.5)
    assert [clip.seconds for clip in clips] == [pytest.approx(1.0, abs=0.1), pytest.approx(0.5, abs=0.1)]
    assert clips[0].last_at < clips[1].first_at
    assert session.seconds_received() == pytest.approx(1.5, abs=0.1)
    assert session.undecryptable == 0
    assert [flags for _, flags in session.speaking_events] == [0, 1, 0, 1, 0]

    pcm = session.decode_pcm(include_silence=False)
    assert len(pcm) == sum(clip.frames for clip in clips) * 960 * 2 * 2
    assert zero_crossings(pcm) == pytest.approx(2 * TONE_HERTZ * 1.5, rel=0.05)


async def test_forced_disconnect_makes_discord_py_leave_at_once(voice_world: VoiceWorld) -> None:
    voice_client = await voice_world.channel.connect(reconnect=False, timeout=5.0, cls=discord.VoiceClient)
    session = await voice_world.voice.wait_for_session(voice_world.guild.id)

    await voice_world.voice.force_disconnect(voice_world.guild.id)

    await wait_for(lambda: not voice_client.is_connected(), timeout=2.0)
    await wait_for(lambda: not voice_world.client.voice_clients, timeout=2.0)
    await asyncio.wait_for(session.disconnected.wait(), 2.0)
    assert session.close_code == 4014
    assert session.closed_by_server
    assert voice_world.guild.bot_member.id not in voice_world.guild.voice_states


async def test_bare_4014_keeps_discord_py_connected_until_its_connect_timeout(voice_world: VoiceWorld) -> None:
    voice_client = await voice_world.channel.connect(reconnect=False, timeout=1.0, cls=discord.VoiceClient)
    session = await voice_world.voice.wait_for_session(voice_world.guild.id)

    await voice_world.voice.disconnect(voice_world.guild.id, 4014)
    await asyncio.wait_for(session.disconnected.wait(), 2.0)

    # discord.py treats 4014 as a possible channel move and waits (timeout=1.0) for a new VOICE_SERVER_UPDATE.
    await asyncio.sleep(0.3)
    assert voice_client.is_connected()
    await wait_for(lambda: not voice_client.is_connected(), timeout=3.0)
    await wait_for(lambda: not voice_world.client.voice_clients, timeout=2.0)


async def test_other_close_codes_without_reconnect_disconnect_discord_py_at_once(voice_world: VoiceWorld) -> None:
    voice_client = await voice_world.channel.connect(reconnect=False, timeout=5.0, cls=discord.VoiceClient)
    await voice_world.voice.wait_for_session(voice_world.guild.id)

    await voice_world.voice.disconnect(voice_world.guild.id, 4006)

    await wait_for(lambda: not voice_client.is_connected(), timeout=2.0)
    await wait_for(lambda: not voice_world.client.voice_clients, timeout=2.0)
    assert voice_world.guild.bot_member.id not in voice_world.guild.voice_states
    assert len(voice_world.voice.all_sessions) == 1


# ---------------------------------------------------------------- DAVE: the gateway's MLS side and its listeners


@pytest.fixture
async def dave_server() -> AsyncIterator[FakeVoiceServer]:
    """The server as Discord runs it since 2026-03-01: DAVE on."""
    server = FakeVoiceServer()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


GUILD = 7
CHANNEL = 70


def frame(number: int) -> bytes:
    """A distinct Opus-looking frame (TOC byte of a 20 ms CELT frame, then a payload)."""
    return b"\x78" + number.to_bytes(2, "big") * 20


async def settled(call: dave.DaveCall, members: int) -> None:
    """Wait until the group has ``members`` leaves and its last transition was executed."""
    await call.wait_until(
        lambda: (
            len([leaf for leaf in call.leaves if leaf is not None]) == members
            and call.transition is None
            and bool(call.commits)
            and bool(call.executed)
            and call.executed[-1][1] == call.commits[-1].transition_id
        )
    )


def exchange(speaker: dave.Listener, hearers: list[dave.Listener], number: int) -> bool:
    """``speaker`` sends one frame; whether every hearer decrypted exactly it."""
    before = {h.user_id: len(h.frames) for h in hearers}
    speaker.speak(frame(number))
    return all(h.frames[before[h.user_id] :] and h.frames[-1].plaintext == frame(number) for h in hearers)


async def test_listeners_exchange_frames_through_the_gateway_across_a_join_and_a_leave(
    dave_server: FakeVoiceServer,
) -> None:
    call = dave_server.call(GUILD, CHANNEL)
    assert call.group_id == CHANNEL.to_bytes(8, "big")
    first = await dave_server.add_listener(GUILD, 101, channel_id=CHANNEL)
    second = await dave_server.add_listener(GUILD, 102, channel_id=CHANNEL)
    await settled(call, 2)
    assert call.epoch == 1 and sorted(u for u in call.leaves if u) == [101, 102]
    assert exchange(first, [second], 1) and exchange(second, [first], 2)

    third = await dave_server.add_listener(GUILD, 103, channel_id=CHANNEL)
    await settled(call, 3)
    assert call.epoch == 2 and call.commits[-1].added == (103,)
    assert exchange(third, [first, second], 3) and exchange(first, [second, third], 4)

    leaf_of_first = call.leaf_of(101)
    await dave_server.remove_listener(GUILD, 101, channel_id=CHANNEL)
    await settled(call, 2)
    assert call.epoch == 3 and call.commits[-1].removed == (101,)
    assert call.leaves[leaf_of_first or 0] is None, "the removed member's leaf is blank"
    assert exchange(second, [third], 5) and exchange(third, [second], 6)
    # The removed member's keys stop at the epoch it left: it cannot read what is said after.
    with pytest.raises(ValueError):
        first.session.decrypt(102, davey.MediaType.audio, second.speak(frame(7)))

    fourth = await dave_server.add_listener(GUILD, 104, channel_id=CHANNEL)
    await settled(call, 3)
    assert call.leaf_of(104) == leaf_of_first, "an add takes the leftmost blank leaf (RFC 9420 §12.1.1)"
    assert exchange(fourth, [second, third], 8)
    assert call.rejected_key_packages == []
    assert all(listener.errors == [] for listener in (first, second, third, fourth))


async def test_the_first_valid_commit_of_an_epoch_is_relayed_and_later_ones_are_dropped(
    dave_server: FakeVoiceServer,
) -> None:
    call = dave_server.call(GUILD, CHANNEL)
    first = await dave_server.add_listener(GUILD, 101, channel_id=CHANNEL)
    await dave_server.add_listener(GUILD, 102, channel_id=CHANNEL)
    await settled(call, 2)
    dropped = len(call.rejected_commits)

    # Both members commit the add of a third; the gateway relays one and drops the other, now a past epoch's.
    await dave_server.add_listener(GUILD, 103, channel_id=CHANNEL)
    await settled(call, 3)
    await call.wait_until(lambda: len(call.rejected_commits) > dropped)
    assert [commit.epoch for commit in call.commits] == [1, 2]
    assert call.rejected_commits[dropped:] == ["epoch 1, the group is at 2"]

    # A commit that is not an MLS PublicMessage commit at all is dropped too, and nothing changes.
    await call.commit_welcome(first, b"\x00\x01\x00\x01" + bytes(12))
    assert call.rejected_commits[-1].startswith("undecodable") and call.epoch == 2


async def test_everyone_leaving_resets_the_group_and_a_newcomer_hears_the_one_who_stayed(
    dave_server: FakeVoiceServer,
) -> None:
    call = dave_server.call(GUILD, CHANNEL)
    stayer = await dave_server.add_listener(GUILD, 101, channel_id=CHANNEL)
    await dave_server.add_listener(GUILD, 102, channel_id=CHANNEL)
    await settled(call, 2)
    await dave_server.remove_listener(GUILD, 102, channel_id=CHANNEL)
    await call.wait_until(lambda: not call.established and 101 in call.key_packages)

    newcomer = await dave_server.add_listener(GUILD, 103, channel_id=CHANNEL)
    await settled(call, 2)
    assert call.commits[-1].epoch == 1
    assert exchange(stayer, [newcomer], 1)


async def test_a_member_that_ignores_prepare_epoch_is_not_heard_by_a_newcomer(dave_server: FakeVoiceServer) -> None:
    # nextcord #1294: a client that drops opcode 24 keeps its old group when the channel empties and fills again.
    call = dave_server.call(GUILD, CHANNEL)
    stuck = await dave_server.add_listener(GUILD, 101, channel_id=CHANNEL, ignores_prepare_epoch=True)
    await dave_server.add_listener(GUILD, 102, channel_id=CHANNEL)
    await settled(call, 2)
    await dave_server.remove_listener(GUILD, 102, channel_id=CHANNEL)
    await call.wait_until(lambda: not call.established)

    newcomer = await dave_server.add_listener(GUILD, 103, channel_id=CHANNEL)
    await asyncio.sleep(0.3)
    await stuck.settled()
    await newcomer.settled()
    assert stuck.session.ready, "it still believes in its old group"
    assert not exchange(stuck, [newcomer], 1)
    assert newcomer.frames[-1].plaintext is None


async def test_a_member_that_never_encrypts_is_not_heard(dave_server: FakeVoiceServer) -> None:
    call = dave_server.call(GUILD, CHANNEL)
    plain = await dave_server.add_listener(GUILD, 101, channel_id=CHANNEL, encrypts=False)
    hearer = await dave_server.add_listener(GUILD, 102, channel_id=CHANNEL)
    await settled(call, 2)
    assert not exchange(plain, [hearer], 1)
    assert "Unencrypted" in hearer.frames[-1].error
    assert exchange(hearer, [plain], 2), "the control: the same group carries encrypted frames"


async def test_a_client_without_dave_is_closed_with_4017(
    dave_server: FakeVoiceServer, http: aiohttp.ClientSession
) -> None:
    for offered in (None, 0):
        client = RawVoiceClient(dave_server, http)
        try:
            await client.open()
            payload: dict[str, Any] = {"server_id": str(GUILD), "user_id": "42", "session_id": "s", "token": "t"}
            if offered is not None:
                payload["max_dave_protocol_version"] = offered
            await client.send(0, payload)
            assert await client.closed_with() == 4017
        finally:
            await client.close()
    assert dave_server.close_codes_sent == [4017, 4017]


async def test_binary_opcodes_and_a_plain_rtp_sender_that_no_listener_hears(
    dave_server: FakeVoiceServer, http: aiohttp.ClientSession
) -> None:
    client = RawVoiceClient(dave_server, http)
    try:
        await client.open()
        ready = await client.identify(guild_id=GUILD)
        await client.discover_ip(ready["d"])
        description = await client.select()
        assert description["d"]["dave_protocol_version"] == 1
        assert client.websocket is not None
        message = await asyncio.wait_for(client.websocket.receive(), 2.0)
        # voice-connections.mdx: binary messages are uint16 sequence number, uint8 opcode, then the payload.
        assert message.type is aiohttp.WSMsgType.BINARY
        sequence, opcode = struct.unpack_from(">HB", message.data)
        assert opcode == 25 and sequence == description["seq"] + 1
        session = dave_server.sessions[GUILD]
        assert message.data[3:] == session.call.external_sender.package()  # type: ignore[union-attr]

        listener = await dave_server.add_listener(GUILD, 101)
        await client.send_packets([client.packet(frame(n)) for n in range(5)])
        await wait_for(lambda: len(session.packets) == 5)
        assert [p.listeners for p in session.packets] == [(101,)] * 5
        assert session.heard_packets() == [] and len(session.unheard_packets()) == 5
        assert len(listener.undecrypted_from(42)) == 5
    finally:
        await client.close()


async def test_discord_py_with_davey_is_heard_by_a_listener_and_resets_when_left_alone(
    voice_world: VoiceWorld, tones: dict[float, Path]
) -> None:
    voice_client = await voice_world.channel.connect(reconnect=False, timeout=5.0, cls=discord.VoiceClient)
    session = await voice_world.voice.wait_for_session(voice_world.guild.id)
    call = voice_world.voice.call(voice_world.guild.id)
    listener = await voice_world.voice.add_listener(voice_world.guild.id, 501)
    await settled(call, 2)

    await play(voice_client, tones[0.5])
    await wait_for(lambda: sum(packet.is_silence for packet in session.packets) == 5)
    assert session.packets and all(packet.heard for packet in session.packets)
    assert zero_crossings(session.decode_pcm(include_silence=False)) == pytest.approx(TONE_HERTZ, rel=0.1)
    assert voice_client._connection.dave_session is not None
    assert voice_client._connection.dave_session.epoch == call.epoch

    await voice_world.voice.remove_listener(voice_world.guild.id, 501)
    # The sole member reset: discord.py starts a new group on op 24 and sends a new key package.
    await call.wait_until(lambda: not call.established and session.user_id in call.key_packages)
    assert voice_client._connection.dave_session.epoch in (None, 0)
    assert listener.errors == []
