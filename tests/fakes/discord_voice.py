"""A local stand-in for a Discord voice server: a TLS voice websocket (gateway v8) and a UDP media socket.

The real discord.py ``VoiceClient`` connects to it in-process: FakeDiscord hands out ``endpoint`` in
VOICE_SERVER_UPDATE, discord.py opens ``wss://{endpoint}/?v=8``, performs the handshake and IP discovery,
then streams Opus frames over UDP, which this server records per guild with their arrival times.

It speaks DAVE, Discord's end-to-end encryption for voice, as Discord has required since 2026-03-01: the session
description says protocol version 1, a client without it is closed with 4017, and each voice channel is a call
(``tests/fakes/dave.py``) whose simulated listeners decrypt every frame the bot sends. Stage channels are not end to
end encrypted, as documented (``FakeVoiceServer._is_stage``). With ``dave=False`` (for the stand-in's own tests only)
it is the transport-only server of before.

Attached to a FakeDiscord, it notes with each frame whether the sender could be heard when it arrived (server mute,
Speak, a timeout, a stage's audience: ``FakeGuild.unheard_because``) and who in the channel could hear it (neither a
bot nor deafened): ``ReceivedPacket.heard`` counts a frame only then.

Arrival times come from the kernel (``SO_TIMESTAMPNS``) where it offers them, so a busy event loop in the
process running the stand-in does not shift them. Without listeners, packets are decrypted only when someone reads
them, so recording a hundred streams at once costs the stand-in little; in a call with listeners each packet is
decrypted as it arrives, because a listener can only decrypt with the keys it holds at that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import logging
import secrets
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.connector
import nacl.secret
from aiohttp import web

from tests.fakes import dave as dave_protocol
from tests.fakes.dave import DaveCall, Listener

_log = logging.getLogger(__name__)

# Voice gateway opcodes (gateway v8).
IDENTIFY = 0
SELECT_PROTOCOL = 1
READY = 2
HEARTBEAT = 3
SESSION_DESCRIPTION = 4
SPEAKING = 5
HEARTBEAT_ACK = 6
RESUME = 7
HELLO = 8
RESUMED = 9

# Voice close codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes#voice).
CLOSE_UNKNOWN_OPCODE = 4001
CLOSE_DECODE_ERROR = 4002
CLOSE_NOT_AUTHENTICATED = 4003
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_ALREADY_AUTHENTICATED = 4005
CLOSE_SESSION_INVALID = 4006
CLOSE_DISCONNECTED = 4014
CLOSE_UNKNOWN_ENCRYPTION_MODE = 4016
CLOSE_E2EE_REQUIRED = 4017  # "E2EE/DAVE protocol required"
CLOSE_VOICE_SERVER_CRASHED = 4015

STAGE_CHANNEL = 13  # channel.mdx, "Channel Types": GUILD_STAGE_VOICE

XCHACHA_MODE = "aead_xchacha20_poly1305_rtpsize"
AES_GCM_MODE = "aead_aes256_gcm_rtpsize"

# The Opus frame discord.py sends five times after every source (``discord.opus.OPUS_SILENCE``).
SILENCE_FRAME = b"\xf8\xff\xfe"
FRAME_SECONDS = 0.02

_IP_DISCOVERY_LENGTH = 74
_IP_DISCOVERY_REQUEST = 1
_IP_DISCOVERY_RESPONSE = 2
_RTP_HEADER_LENGTH = 12
_NONCE_SUFFIX_LENGTH = 4
# Linux socket options (asm-generic values; the socket module does not name them): the kernel stamps each
# datagram with its arrival time (a struct timespec of CLOCK_REALTIME in the ancillary data).
_SO_TIMESTAMPNS = 35
_ANCILLARY_BUFFER = socket.CMSG_SPACE(16)
_DATAGRAM_BUFFER = 65_536
# Room for about a second of a hundred streams, so a stalled stand-in does not lose packets.
_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024

VoiceConnectCallback = Callable[[int, int, str, str], None]


@dataclass(frozen=True)
class ReceivedPacket:
    """One decrypted RTP packet as the voice server received it."""

    sequence: int
    timestamp: int
    ssrc: int
    opus: bytes
    received_at: float
    counter: int
    # The call's listeners present when it arrived, and those who decrypted it (DAVE); ``opus`` is then what they
    # decrypted, or the payload as sent when none could.
    listeners: tuple[int, ...] = ()
    decrypted_by: tuple[int, ...] = ()
    # When it arrived: who in the channel could hear (present, not a bot, not deafened), why the sender could not
    # be heard at all (server-muted, no Speak, timed out, not a stage speaker: ``FakeGuild.unheard_because``), and
    # whether the call was end-to-end encrypted (stages are not).
    hearers: tuple[int, ...] = ()
    unheard_because: tuple[str, ...] = ()
    e2ee: bool = True

    @property
    def is_silence(self) -> bool:
        """Whether this is discord.py's end-of-source silence frame."""
        return self.opus == SILENCE_FRAME

    @property
    def heard(self) -> bool:
        """Whether someone heard it; the one place that decides.

        The sender could be heard (nothing in ``unheard_because``), someone who can hear was in the channel, and,
        in an end-to-end encrypted call, every listener present decrypted it (a frame one of them cannot decrypt is
        a frame nobody heard).
        """
        if self.unheard_because or not self.hearers:
            return False
        return not self.e2ee or (bool(self.listeners) and set(self.decrypted_by) == set(self.listeners))


# Why a sender cannot be heard at all (empty when it can), and who in the channel can hear.
Audience = tuple[tuple[str, ...], tuple[int, ...]]


def _listeners_hear(session: VoiceSession) -> Audience:
    """Without FakeDiscord to say more: nothing keeps the sender from being heard, and the call's listeners hear."""
    return (), tuple(session.call.listeners) if session.call is not None else ()


@dataclass(frozen=True)
class Clip:
    """A run of non-silence Opus frames that arrived without a pause."""

    frames: int
    first_at: float
    last_at: float

    @property
    def seconds(self) -> float:
        """The audio length of the clip (20 ms per frame)."""
        return self.frames * FRAME_SECONDS


@dataclass(frozen=True)
class _Expectation:
    """What FakeDiscord handed out for one guild's voice connection."""

    channel_id: int
    session_id: str
    token: str


class VoiceSession:
    """The server-side record of one voice connection (one IDENTIFY) for a guild."""

    def __init__(self, *, guild_id: int, user_id: int, session_id: str, token: str, ssrc: int) -> None:
        """Create the record at IDENTIFY time; the key and mode arrive with SELECT_PROTOCOL."""
        self.guild_id = guild_id
        self.user_id = user_id
        self.session_id = session_id
        self._token = token
        self.ssrc = ssrc
        self.channel_id: int | None = None
        self.secret_key = b""
        self.mode = ""
        self.max_dave_protocol_version: int | None = None
        self.client_address: tuple[str, int] | None = None
        self.udp_address: tuple[str, int] | None = None
        self._packets: list[ReceivedPacket] = []
        # Datagrams not decrypted yet: the packet, its arrival time, the mode and key it was sent under, and who
        # could hear it then.
        self._pending: list[tuple[bytes, float, str, bytes, Audience]] = []
        # Whether the call is end-to-end encrypted (DAVE), and who can hear this session's sender at a given moment
        # (the voice server sets it from FakeDiscord's state when attached).
        self.e2ee = True
        self.audience: Callable[[VoiceSession], Audience] = _listeners_hear
        self._undecryptable = 0
        self.last_received_at: float | None = None
        self.speaking_events: list[tuple[float, int]] = []
        self.heartbeats = 0
        self.last_seq_ack: int | None = None
        self.resumes = 0
        self.close_code: int | None = None
        self.closed_by_server = False
        self.dave_protocol_version = 0
        self.call: DaveCall | None = None
        self.binary_received: list[int] = []
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        self._websocket: web.WebSocketResponse | None = None
        self._sequence = 0

    def __repr__(self) -> str:
        """Describe the session without its token or key."""
        return (
            f"VoiceSession(guild_id={self.guild_id}, user_id={self.user_id}, ssrc={self.ssrc}, "
            f"mode={self.mode!r}, packets={len(self.packets)}, close_code={self.close_code})"
        )

    @property
    def packets(self) -> list[ReceivedPacket]:
        """Every decrypted packet received so far, in arrival order (decrypting what arrived since the last read)."""
        self._decrypt_pending()
        return self._packets

    @property
    def undecryptable(self) -> int:
        """How many RTP packets for this session could not be decrypted."""
        self._decrypt_pending()
        return self._undecryptable

    @property
    def datagrams(self) -> int:
        """How many RTP packets arrived for this session, decrypted or not (cheap: decrypts nothing)."""
        return len(self._packets) + len(self._pending) + self._undecryptable

    def _record(self, data: bytes, received_at: float) -> None:
        self.last_received_at = received_at
        audience = self.audience(self)
        if self.call is None or not self.call.listeners:
            self._pending.append((data, received_at, self.mode, self.secret_key, audience))
            return
        # Listeners decrypt as frames arrive, with the keys they hold at that moment, as a client does; what came
        # before, while nobody listened, is decrypted first, for nobody.
        self._decrypt_pending()
        self._decrypt(data, received_at, self.mode, self.secret_key, self.call.listeners, audience)

    async def deliver_json(self, op: int, data: dict[str, Any]) -> None:
        """Send a DAVE JSON opcode on this session's websocket (dropped once it is closed)."""
        if self._websocket is not None and not self._websocket.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._websocket.send_str(json.dumps({"op": op, "d": data, "seq": self._next_sequence()}))

    async def deliver_binary(self, op: int, payload: bytes) -> None:
        """Send a binary opcode: ``uint16 sequence_number, uint8 opcode`` then the payload (voice-connections.mdx)."""
        if self._websocket is not None and not self._websocket.closed:
            frame = struct.pack(">HB", self._next_sequence() & 0xFFFF, op) + payload
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._websocket.send_bytes(frame)

    def _decrypt_pending(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        for data, received_at, mode, key, audience in pending:
            self._decrypt(data, received_at, mode, key, {}, audience)

    def _decrypt(
        self,
        data: bytes,
        received_at: float,
        mode: str,
        key: bytes,
        listeners: dict[int, Listener],
        audience: Audience,
    ) -> None:
        """Take off the transport encryption, then let each listener present decrypt the frame end to end."""
        opus = _decrypt_rtpsize(data, mode, key)
        if opus is None:
            self._undecryptable += 1
            return
        sequence, timestamp, ssrc = struct.unpack_from(">HII", data, 2)
        counter = struct.unpack_from(">I", data, len(data) - _NONCE_SUFFIX_LENGTH)[0]
        plaintexts = {
            user_id: listener.receive(self.user_id, opus, received_at) for user_id, listener in listeners.items()
        }
        decrypted_by = tuple(user_id for user_id, plain in plaintexts.items() if plain is not None)
        if decrypted_by:
            opus = plaintexts[decrypted_by[0]] or opus
        unheard_because, hearers = audience
        self._packets.append(
            ReceivedPacket(
                sequence,
                timestamp,
                ssrc,
                opus,
                received_at,
                counter,
                tuple(listeners),
                decrypted_by,
                hearers,
                unheard_because,
                self.e2ee,
            )
        )

    @property
    def first_packet_at(self) -> float | None:
        """When the first decrypted packet arrived (``time.monotonic()``), if any has."""
        return self.packets[0].received_at if self.packets else None

    def token_matches(self, token: str) -> bool:
        """Whether a presented token is this session's, compared in constant time."""
        return secrets.compare_digest(self._token.encode(), token.encode())

    def clips(self, gap: float = 0.1) -> list[Clip]:
        """Split the received audio at silence frames and at arrival gaps longer than ``gap`` seconds."""
        clips: list[Clip] = []
        frames = 0
        first_at = last_at = 0.0
        previous_at: float | None = None
        for packet in self.packets:
            if frames and previous_at is not None and packet.received_at - previous_at > gap:
                clips.append(Clip(frames, first_at, last_at))
                frames = 0
            previous_at = packet.received_at
            if packet.is_silence:
                if frames:
                    clips.append(Clip(frames, first_at, last_at))
                    frames = 0
                continue
            if not frames:
                first_at = packet.received_at
            frames += 1
            last_at = packet.received_at
        if frames:
            clips.append(Clip(frames, first_at, last_at))
        return clips

    def heard_packets(self) -> list[ReceivedPacket]:
        """The packets every listener present decrypted."""
        return [packet for packet in self.packets if packet.heard]

    def unheard_packets(self) -> list[ReceivedPacket]:
        """The packets nobody heard: no listener present, or one of them could not decrypt it."""
        return [packet for packet in self.packets if not packet.heard]

    def seconds_received(self) -> float:
        """The audio length of every non-silence frame received."""
        return sum(not packet.is_silence for packet in self.packets) * FRAME_SECONDS

    def decode_pcm(self, *, include_silence: bool = True) -> bytes:
        """Decode the received frames to 48 kHz stereo signed 16-bit PCM with libopus."""
        # Imported here so the server itself never needs libopus.
        import discord.opus

        decoder = discord.opus.Decoder()
        return b"".join(
            decoder.decode(packet.opus, fec=False)
            for packet in self.packets
            if include_silence or not packet.is_silence
        )

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence


class FakeVoiceServer:
    """A Discord voice server on 127.0.0.1: TLS websocket for signalling plus UDP for media."""

    def __init__(self, *, dave: bool = True) -> None:
        """Prepare an unstarted server; call ``start()`` before handing out ``endpoint``.

        ``dave=False`` turns end-to-end encryption off, as voice was before 2026-03-01: only the stand-in's own
        tests use it. With it on, every member FakeDiscord puts in a voice channel is a listener of that call.
        """
        self.dave = dave
        self.calls: dict[int, DaveCall] = {}
        self.auto_listeners = True
        self.transition_timeout = dave_protocol.TRANSITION_TIMEOUT
        # What IDENTIFY's max_dave_protocol_version must reach; above 1 it models a discontinued version 1.
        self.required_dave_protocol_version = dave_protocol.DAVE_PROTOCOL_VERSION
        self.host = "127.0.0.1"
        self.endpoint = ""
        self.udp_port = 0
        self.cert_path = Path()
        self.key_path = Path()
        # The client takes the first mode it supports in this order; discord.py 2.7.1 supports only xchacha.
        self.modes: list[str] = [XCHACHA_MODE, AES_GCM_MODE]
        self.heartbeat_interval_ms = 13750.0
        self.sessions: dict[int, VoiceSession] = {}
        self.all_sessions: list[VoiceSession] = []
        self.stray_datagrams = 0
        self.close_codes_sent: list[int] = []
        # Once attached to a FakeDiscord, only credentials it handed out are accepted.
        self.require_expected = False
        self._expectations: dict[int, _Expectation] = {}
        self._discord: Any = None
        self._sent_close_codes: dict[web.WebSocketResponse, int] = {}
        self._by_ssrc: dict[int, VoiceSession] = {}
        self._next_ssrc = 1000
        self._websockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self._media: socket.socket | None = None
        self._kernel_timestamps = False
        self._directory: Path | None = None
        self._session_changed = asyncio.Event()

    async def __aenter__(self) -> FakeVoiceServer:
        """Start the server."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the server."""
        await self.close()

    async def start(self, host: str = "127.0.0.1") -> None:
        """Generate the certificate, open the UDP socket and serve the TLS websocket on free ports."""
        self.host = host
        self._directory = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="fake-discord-voice-"))
        self.cert_path, self.key_path = await _make_certificate(self._directory, host)
        self._open_media_socket(host)

        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(self.cert_path, self.key_path)
        app = web.Application()
        app.router.add_get("/", self._handle_websocket)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, 0))
        site = web.SockSite(self._runner, listener, ssl_context=server_context)
        await site.start()
        self.endpoint = f"{host}:{listener.getsockname()[1]}"

    async def close(self) -> None:
        """Close every voice websocket (1001), the calls' listeners, the UDP socket and the certificate directory."""
        for call in self.calls.values():
            for listener in list(call.listeners.values()):
                await listener.close()
            call.close()
        for websocket in list(self._websockets):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(code=aiohttp.WSCloseCode.GOING_AWAY), 2.0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._media is not None:
            asyncio.get_running_loop().remove_reader(self._media.fileno())
            self._media.close()
            self._media = None
        if self._directory is not None:
            await asyncio.to_thread(shutil.rmtree, self._directory, True)
            self._directory = None

    def _open_media_socket(self, host: str) -> None:
        media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        media.setblocking(False)
        with contextlib.suppress(OSError):
            media.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER_BYTES)
        try:
            media.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            self._kernel_timestamps = True
        except OSError:
            self._kernel_timestamps = False  # arrival is then timed when the event loop reads the datagram
        media.bind((host, 0))
        self._media = media
        self.udp_port = media.getsockname()[1]
        asyncio.get_running_loop().add_reader(media.fileno(), self._drain_media)

    def _drain_media(self) -> None:
        """Read every datagram waiting on the media socket, each with its arrival time."""
        media = self._media
        if media is None:
            return
        # The kernel's stamps are wall-clock time; this offset turns them into time.monotonic().
        offset = time.time() - time.monotonic()
        while True:
            try:
                data, ancillary, _flags, address = media.recvmsg(_DATAGRAM_BUFFER, _ANCILLARY_BUFFER)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            received_at = time.monotonic()
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(payload) >= 16:
                    seconds, nanoseconds = struct.unpack_from("@qq", payload)
                    received_at = seconds + nanoseconds / 1e9 - offset
            self._on_datagram(data, address, received_at)

    def expect(self, guild_id: int, channel_id: int, session_id: str, token: str) -> None:
        """Record what FakeDiscord handed out, so IDENTIFY and RESUME are checked against it."""
        self._expectations[int(guild_id)] = _Expectation(int(channel_id), session_id, token)

    def forget(self, guild_id: int) -> None:
        """Drop a guild's expected credentials (the bot left voice), so they cannot be used again."""
        self._expectations.pop(int(guild_id), None)

    def attach(self, discord_server: Any) -> None:
        """Point a FakeDiscord at this server and accept only the voice credentials it hands out."""
        discord_server.voice_endpoint = self.endpoint
        discord_server.on_voice_connect(self.expect)
        discord_server.on_voice_disconnect(self.forget)
        discord_server.on_member_voice(self._member_voice)
        self.require_expected = True
        self._discord = discord_server

    def client_ssl_context(self) -> ssl.SSLContext:
        """Build a client context that trusts this server's certificate (for ``aiohttp.TCPConnector(ssl=...)``)."""
        context = ssl.create_default_context(cafile=str(self.cert_path))
        context.set_alpn_protocols(["http/1.1"])
        return context

    def trust_in_process(self) -> None:
        """Make every aiohttp client in this process that verifies certificates also trust this server's.

        aiohttp builds its verified ``SSLContext`` once, at import, in ``aiohttp.connector._SSL_CONTEXT_VERIFIED``,
        and every ``TCPConnector`` left at ``ssl=True`` (discord.py's ``TCPConnector(limit=0)`` included) uses it,
        so ``SSL_CERT_FILE`` set after import has no effect; adding the certificate to that shared context does.
        The addition lasts for the process and trusts only this self-signed certificate.
        """
        context = aiohttp.connector._SSL_CONTEXT_VERIFIED
        if context is None:
            raise RuntimeError("aiohttp has no SSL support in this interpreter")
        context.load_verify_locations(cafile=str(self.cert_path))

    async def wait_for_session(self, guild_id: int, timeout: float = 5.0) -> VoiceSession:
        """Wait until a guild's current voice session has its key (SESSION_DESCRIPTION sent) and return it."""
        async with asyncio.timeout(timeout):
            while True:
                session = self.sessions.get(guild_id)
                if session is not None and session.connected.is_set() and not session.disconnected.is_set():
                    return session
                await self._session_changed.wait()

    async def disconnect(self, guild_id: int, code: int = CLOSE_DISCONNECTED) -> None:
        """Close a guild's voice websocket from the server side (4014 is Discord's forced disconnect)."""
        session = self.sessions.get(guild_id)
        if session is None or session._websocket is None:
            raise KeyError(f"no open voice connection for guild {guild_id}")
        await self._close(session._websocket, code, "Disconnected")

    async def force_disconnect(self, guild_id: int) -> None:
        """Disconnect the bot as a moderator would: gateway VOICE_STATE_UPDATE without a channel, then close 4014.

        Needs ``attach()``; discord.py reacts to the gateway event at once, whereas a bare 4014 close makes it
        wait up to its connect ``timeout`` for a move before giving up.
        """
        if self._discord is None:
            raise RuntimeError("force_disconnect needs a FakeDiscord: call attach() first")
        session = self.sessions[guild_id]
        await self._discord.move_member(self._discord.guilds[guild_id], session.user_id, None)
        await self.disconnect(guild_id, CLOSE_DISCONNECTED)

    async def _close(self, websocket: web.WebSocketResponse, code: int, reason: str) -> None:
        self.close_codes_sent.append(code)
        self._sent_close_codes[websocket] = code
        await websocket.close(code=code, message=reason.encode())

    def _notify(self) -> None:
        self._session_changed.set()
        self._session_changed = asyncio.Event()

    async def _send(self, websocket: web.WebSocketResponse, op: int, data: Any, session: VoiceSession | None) -> None:
        payload: dict[str, Any] = {"op": op, "d": data}
        # v8 numbers the server's sequenced messages; the client echoes the last one as seq_ack.
        if session is not None and op not in (HELLO, HEARTBEAT_ACK):
            payload["seq"] = session._next_sequence()
        await websocket.send_str(json.dumps(payload))

    async def _handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(heartbeat=None, timeout=2.0)
        await websocket.prepare(request)
        self._websockets.add(websocket)
        session: VoiceSession | None = None
        try:
            await self._send(websocket, HELLO, {"v": 8, "heartbeat_interval": self.heartbeat_interval_ms}, session=None)
            async for message in websocket:
                if message.type is aiohttp.WSMsgType.BINARY:
                    # A client's binary frame is its opcode byte, then the payload (voice-connections.mdx).
                    data = bytes(message.data)
                    if session is None or session.call is None or not data:
                        continue
                    session.binary_received.append(data[0])
                    if data[0] in (dave_protocol.KEY_PACKAGE, dave_protocol.COMMIT_WELCOME):
                        await self._dave_message(session.call, session, data[0], data[1:])
                    else:
                        await self._close(websocket, CLOSE_UNKNOWN_OPCODE, "Unknown opcode")
                        break
                    continue
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                try:
                    payload = json.loads(message.data)
                    op = payload["op"]
                    data = payload.get("d")
                except (ValueError, KeyError, TypeError):
                    await self._close(websocket, CLOSE_DECODE_ERROR, "Failed to decode payload")
                    break
                try:
                    session = await self._dispatch(websocket, session, op, data)
                except (KeyError, TypeError, ValueError):
                    await self._close(websocket, CLOSE_DECODE_ERROR, "Failed to decode payload")
                    break
                if websocket.closed:
                    break
        finally:
            self._websockets.discard(websocket)
            sent_code = self._sent_close_codes.pop(websocket, None)
            if session is not None and session._websocket is websocket:
                session._websocket = None
                # After a server-side close aiohttp reports the code the client echoed, not the one sent.
                session.closed_by_server = sent_code is not None
                session.close_code = sent_code if sent_code is not None else websocket.close_code
                session.disconnected.set()
                if session.call is not None and sent_code != CLOSE_VOICE_SERVER_CRASHED:
                    # Members are removed "when they disconnect from the voice gateway" (whitepaper, "Member
                    # Remove"); after 4015 the client resumes the same session instead.
                    await session.call.leave(session)
                self._notify()
        return websocket

    async def _dispatch(
        self, websocket: web.WebSocketResponse, session: VoiceSession | None, op: int, data: Any
    ) -> VoiceSession | None:
        if op == IDENTIFY:
            if session is not None:
                await self._close(websocket, CLOSE_ALREADY_AUTHENTICATED, "Already authenticated")
                return session
            return await self._identify(websocket, data)
        if op == RESUME:
            if session is not None:
                await self._close(websocket, CLOSE_ALREADY_AUTHENTICATED, "Already authenticated")
                return session
            return await self._resume(websocket, data)
        if op == HEARTBEAT:
            # v8 heartbeats are {t, seq_ack}; the ack echoes t.
            nonce = data.get("t") if isinstance(data, dict) else data
            if session is not None:
                session.heartbeats += 1
                if isinstance(data, dict):
                    session.last_seq_ack = data.get("seq_ack")
            await websocket.send_str(json.dumps({"op": HEARTBEAT_ACK, "d": {"t": nonce}}))
            return session
        if session is None:
            await self._close(websocket, CLOSE_NOT_AUTHENTICATED, "Not authenticated")
            return None
        if op == SELECT_PROTOCOL:
            await self._select_protocol(websocket, session, data)
        elif op == SPEAKING:
            session.speaking_events.append((time.monotonic(), int(data["speaking"])))
        elif session.call is not None and op in (dave_protocol.TRANSITION_READY, dave_protocol.INVALID_COMMIT_WELCOME):
            await self._dave_message(session.call, session, op, data)
        else:
            await self._close(websocket, CLOSE_UNKNOWN_OPCODE, "Unknown opcode")
        return session

    async def _identify(self, websocket: web.WebSocketResponse, data: Any) -> VoiceSession | None:
        try:
            guild_id = int(data["server_id"])
            user_id = int(data["user_id"])
            session_id = str(data["session_id"])
            token = str(data["token"])
        except (KeyError, TypeError, ValueError):
            await self._close(websocket, CLOSE_DECODE_ERROR, "Failed to decode payload")
            return None
        expectation = self._expectations.get(guild_id)
        if not self._credentials_accepted(expectation, session_id, token):
            await self._close(websocket, CLOSE_AUTHENTICATION_FAILED, "Authentication failed")
            return None
        channel_id = expectation.channel_id if expectation is not None else None
        e2ee = self.dave and not self._is_stage(guild_id, channel_id)
        max_dave = data.get("max_dave_protocol_version")
        if e2ee and not (isinstance(max_dave, int) and max_dave >= self.required_dave_protocol_version):
            # voice-connections.mdx: "Sending version 0, or omitting the max_dave_protocol_version field,
            # indicates no DAVE protocol support"; since 2026-03-01 such a client is closed with 4017.
            await self._close(websocket, CLOSE_E2EE_REQUIRED, "E2EE/DAVE protocol required")
            return None
        session = VoiceSession(
            guild_id=guild_id, user_id=user_id, session_id=session_id, token=token, ssrc=self._next_ssrc
        )
        self._next_ssrc += 1
        session.channel_id = channel_id
        session.e2ee = e2ee
        if self._discord is not None:
            session.audience = self._audience
        session.max_dave_protocol_version = int(max_dave) if max_dave is not None else None
        session._websocket = websocket
        self.sessions[guild_id] = session
        self.all_sessions.append(session)
        self._by_ssrc[session.ssrc] = session
        ready = {
            "ssrc": session.ssrc,
            "ip": self.host,
            "port": self.udp_port,
            "modes": list(self.modes),
            "heartbeat_interval": self.heartbeat_interval_ms,
        }
        await self._send(websocket, READY, ready, session)
        self._notify()
        return session

    def _credentials_accepted(self, expectation: _Expectation | None, session_id: str, token: str) -> bool:
        if expectation is None:
            return not self.require_expected
        token_matches = secrets.compare_digest(expectation.token.encode(), token.encode())
        return token_matches and expectation.session_id == session_id

    async def _resume(self, websocket: web.WebSocketResponse, data: Any) -> VoiceSession | None:
        guild_id = int(data.get("server_id", 0)) if isinstance(data, dict) else 0
        session = self.sessions.get(guild_id)
        if (
            session is None
            or session.session_id != data.get("session_id")
            or not session.token_matches(str(data.get("token", "")))
        ):
            await self._close(websocket, CLOSE_SESSION_INVALID, "Session no longer valid")
            return None
        session.resumes += 1
        session.last_seq_ack = data.get("seq_ack")
        session._websocket = websocket
        session.disconnected.clear()
        await self._send(websocket, RESUMED, None, session)
        self._notify()
        return session

    async def _select_protocol(self, websocket: web.WebSocketResponse, session: VoiceSession, data: Any) -> None:
        try:
            details = data["data"]
            mode = str(details["mode"])
            session.client_address = (str(details["address"]), int(details["port"]))
        except (KeyError, TypeError, ValueError):
            await self._close(websocket, CLOSE_DECODE_ERROR, "Failed to decode payload")
            return
        if mode not in self.modes:
            await self._close(websocket, CLOSE_UNKNOWN_ENCRYPTION_MODE, "Unknown encryption mode")
            return
        session.mode = mode
        session.secret_key = secrets.token_bytes(32)
        session.dave_protocol_version = dave_protocol.DAVE_PROTOCOL_VERSION if session.e2ee else 0
        description = {
            "mode": mode,
            "secret_key": list(session.secret_key),
            "dave_protocol_version": session.dave_protocol_version,
            "audio_codec": "opus",
            "media_session_id": secrets.token_hex(16),
        }
        await self._send(websocket, SESSION_DESCRIPTION, description, session)
        if session.dave_protocol_version:
            await self._join_call(session)
        session.connected.set()
        self._notify()

    # ---------------------------------------------------------------- who hears

    def _is_stage(self, guild_id: int, channel_id: int | None) -> bool:
        """Whether FakeDiscord has this channel as a stage (type 13).

        Stages are not end-to-end encrypted: DAVE covers "DM/GDM calls, server voice channels (excluding stage
        channels), and Go Live streams" (the protocol whitepaper's opening), and voice-connections.mdx requires E2EE
        for "direct messages (DMs), group messages (GDMs), voice channels, and Go Live streams" only. A stage call
        then has protocol version 0 in its session description and no 4017, and its audience hears what the
        transport carries.
        """
        if self._discord is None or channel_id is None:
            return False
        guild = self._discord.guilds.get(guild_id)
        channel = guild.channels.get(channel_id) if guild is not None else None
        return channel is not None and channel["type"] == STAGE_CHANNEL

    def _audience(self, session: VoiceSession) -> Audience:
        """Who can hear a session's sender now, by FakeDiscord's state (``FakeGuild.unheard_because``, ``hearers``)."""
        guild = self._discord.guilds.get(session.guild_id)
        channel_id = guild.voice_channel_of(session.user_id) if guild is not None else None
        if guild is None or channel_id is None:
            return ("not in voice",), ()
        # Simulated listeners a test added by id, who are no members of FakeDiscord's, listen too.
        strangers = (
            [user_id for user_id in session.call.listeners if user_id not in guild.members] if session.call else []
        )
        return guild.unheard_because(session.user_id), guild.hearers(channel_id, session.user_id, also=strangers)

    # ---------------------------------------------------------------- DAVE calls and listeners

    def call(self, guild_id: int, channel_id: int | None = None) -> DaveCall:
        """The DAVE call of a voice channel (by default the one the guild's bot session is in), made on first use."""
        if channel_id is None:
            session = self.sessions.get(int(guild_id))
            channel_id = session.channel_id if session is not None and session.channel_id else int(guild_id)
        call = self.calls.get(channel_id)
        if call is None:
            call = DaveCall(int(guild_id), channel_id, transition_timeout=self.transition_timeout)
            self.calls[channel_id] = call
        return call

    async def _join_call(self, session: VoiceSession) -> None:
        call = self.call(session.guild_id, session.channel_id or session.guild_id)
        session.call = call
        if self.auto_listeners and self._discord is not None:
            await self._sync_listeners(session.guild_id, call.channel_id)
        await call.join(session)

    async def add_listener(
        self,
        guild_id: int,
        user_id: int,
        *,
        channel_id: int | None = None,
        encrypts: bool = True,
        ignores_prepare_epoch: bool = False,
    ) -> Listener:
        """Connect a simulated member to a call: it joins the MLS group and decrypts everything the call carries."""
        call = self.call(guild_id, channel_id)
        existing = call.listeners.get(int(user_id))
        if existing is not None:
            return existing
        listener = Listener(
            call,
            int(user_id),
            self._from_listener,
            self._relay_from_listener,
            encrypts=encrypts,
            ignores_prepare_epoch=ignores_prepare_epoch,
        )
        call.listeners[listener.user_id] = listener
        await call.join(listener)
        await listener.connect()
        return listener

    async def remove_listener(self, guild_id: int, user_id: int, *, channel_id: int | None = None) -> None:
        """Disconnect a simulated member from its call."""
        call = self.call(guild_id, channel_id)
        listener = call.listeners.pop(int(user_id), None)
        if listener is not None:
            await listener.close()
            await call.leave(listener)

    def listeners(self, guild_id: int, channel_id: int | None = None) -> list[Listener]:
        """The listeners connected to a call."""
        return list(self.call(guild_id, channel_id).listeners.values())

    async def _sync_listeners(self, guild_id: int, channel_id: int) -> None:
        """Make every member FakeDiscord has in the channel (other than the bot) a listener of its call."""
        guild = self._discord.guilds.get(guild_id)
        if guild is None:
            return
        bot_id = int(self._discord.bot_user["id"])
        present = {
            user_id
            for user_id, state in guild.voice_states.items()
            if user_id != bot_id and state.get("channel_id") == str(channel_id)
        }
        call = self.call(guild_id, channel_id)
        for user_id in sorted(set(call.listeners) - present):
            await self.remove_listener(guild_id, user_id, channel_id=channel_id)
        for user_id in sorted(present - set(call.listeners)):
            await self.add_listener(guild_id, user_id, channel_id=channel_id)

    async def _member_voice(self, guild_id: int, user_id: int, channel_id: int | None) -> None:
        """FakeDiscord moved a member: it leaves the calls it was in and listens in its new channel."""
        if not self.dave or not self.auto_listeners or self._discord is None:
            return
        if user_id == int(self._discord.bot_user["id"]):
            return
        for call in list(self.calls.values()):
            if call.guild_id == guild_id and user_id in call.listeners and call.channel_id != channel_id:
                await self.remove_listener(guild_id, user_id, channel_id=call.channel_id)
        if channel_id is not None and not self._is_stage(guild_id, channel_id):
            await self.add_listener(guild_id, user_id, channel_id=channel_id)

    async def _from_listener(self, listener: Listener, op: int, data: Any) -> None:
        await self._dave_message(listener.call, listener, op, data)

    def _relay_from_listener(self, speaker: Listener, frame: bytes) -> None:
        """A listener's media: every other listener of the call receives it as it arrives."""
        received_at = time.monotonic()
        for user_id, listener in speaker.call.listeners.items():
            if user_id != speaker.user_id:
                listener.receive(speaker.user_id, frame, received_at)

    async def _dave_message(self, call: DaveCall, member: dave_protocol.Member, op: int, data: Any) -> None:
        """Hand a DAVE opcode from a call member (the bot's session or a listener) to its call."""
        if op == dave_protocol.KEY_PACKAGE:
            await call.key_package(member, data)
        elif op == dave_protocol.COMMIT_WELCOME:
            await call.commit_welcome(member, data)
        elif op == dave_protocol.TRANSITION_READY:
            await call.transition_ready(member, int(data["transition_id"]))
        elif op == dave_protocol.INVALID_COMMIT_WELCOME:
            await call.invalid_commit_welcome(member, int(data["transition_id"]))

    def _on_datagram(self, data: bytes, address: tuple[str, int], received_at: float) -> None:
        if len(data) == _IP_DISCOVERY_LENGTH and struct.unpack_from(">H", data, 0)[0] == _IP_DISCOVERY_REQUEST:
            self._answer_ip_discovery(data, address)
        elif len(data) >= _RTP_HEADER_LENGTH + _NONCE_SUFFIX_LENGTH and data[0] >> 6 == 2:
            self._receive_rtp(data, received_at)
        else:
            self.stray_datagrams += 1

    def _answer_ip_discovery(self, data: bytes, address: tuple[str, int]) -> None:
        ssrc = struct.unpack_from(">I", data, 4)[0]
        session = self._by_ssrc.get(ssrc)
        if session is None or self._media is None:
            self.stray_datagrams += 1
            return
        session.udp_address = (address[0], address[1])
        answer = bytearray(_IP_DISCOVERY_LENGTH)
        struct.pack_into(">HHI", answer, 0, _IP_DISCOVERY_RESPONSE, 70, ssrc)
        ip = address[0].encode("ascii")
        answer[8 : 8 + len(ip)] = ip
        struct.pack_into(">H", answer, 72, address[1])
        with contextlib.suppress(OSError):  # a full send buffer: the client asks again
            self._media.sendto(bytes(answer), address)

    def _receive_rtp(self, data: bytes, received_at: float) -> None:
        ssrc = struct.unpack_from(">I", data, 8)[0]
        session = self._by_ssrc.get(ssrc)
        if session is None:
            self.stray_datagrams += 1
            return
        session._record(data, received_at)


def _decrypt_rtpsize(packet: bytes, mode: str, key: bytes) -> bytes | None:
    """Decrypt an ``*_rtpsize`` packet; the header (with CSRCs and extension preamble) is the associated data."""
    header_length = _RTP_HEADER_LENGTH + 4 * (packet[0] & 0x0F)
    extension_words = 0
    if packet[0] & 0x10:
        # rtpsize leaves the 4-byte extension preamble in the clear but encrypts the extension body.
        extension_words = struct.unpack_from(">H", packet, header_length + 2)[0]
        header_length += 4
    if len(packet) < header_length + _NONCE_SUFFIX_LENGTH or len(key) != 32:
        return None
    header = packet[:header_length]
    ciphertext = packet[header_length:-_NONCE_SUFFIX_LENGTH]
    suffix = packet[-_NONCE_SUFFIX_LENGTH:]
    try:
        if mode == XCHACHA_MODE:
            plaintext = nacl.secret.Aead(key).decrypt(ciphertext, header, suffix + bytes(20))
        elif mode == AES_GCM_MODE:
            # cryptography is optional (not a project dependency) and only this mode needs it.
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            plaintext = AESGCM(key).decrypt(suffix + bytes(8), ciphertext, header)
        else:
            return None
    except Exception:  # any authentication or import failure means the packet is unreadable
        return None
    plaintext = plaintext[extension_words * 4 :]
    if packet[0] & 0x20 and plaintext:
        plaintext = plaintext[: -plaintext[-1]]
    return plaintext


async def _make_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """Write a self-signed certificate and key for ``host``, with ``cryptography`` or else the openssl CLI."""
    cert_path = directory / "voice-cert.pem"
    key_path = directory / "voice-key.pem"
    try:
        import cryptography  # noqa: F401 - optional: not a project dependency
    except ImportError:
        process = await asyncio.create_subprocess_exec(
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={host}",
            "-addext",
            f"subjectAltName=IP:{host}",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "keyUsage=critical,digitalSignature",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-keyout",
            str(key_path),
            "-out",
            str(cert_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _, errors = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"openssl could not make a certificate: {errors.decode(errors='replace')}") from None
    else:
        await asyncio.to_thread(_write_certificate_with_cryptography, cert_path, key_path, host)
    return cert_path, key_path


def _write_certificate_with_cryptography(cert_path: Path, key_path: Path, host: str) -> None:
    """Write a self-signed P-256 certificate whose subject alternative name is the IP ``host``."""
    # cryptography is optional: not a project dependency.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
