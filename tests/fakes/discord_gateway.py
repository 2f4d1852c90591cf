"""The Discord stand-in's gateway: sessions, IDENTIFY and RESUME, dispatches, and the gateway's own rules.

`FakeGateway` is the part of `FakeDiscord` that speaks the gateway websocket (`events/gateway.mdx`). Besides
READY, GUILD_CREATE, heartbeats, RESUME with replay, voice state updates and member chunks, it enforces what
Discord enforces there:
- frames are compressed as the client asked in the URL (`compress=zlib-stream` or `zstd-stream`, "Transport
  Compression"): one compression context for the whole connection, a binary frame per payload;
- one IDENTIFY per 5 s per `shard_id % max_concurrency` bucket ("Sharding", "Max Concurrency"; "Identifying":
  a client over the limit gets op 9 Invalid Session);
- at most 120 payloads from the client per connection per 60 s ("Rate Limiting"), else close code 4008;
- the close codes of `topics/opcodes-and-status-codes.mdx` ("Gateway Close Event Codes"): 4004 for a wrong
  token, 4010 for a shard outside its count (or a large bot's count that is not a multiple of its sharding
  factor), 4011 for a session that would hold more than 2,500 servers, 4014 for a privileged intent not enabled;
  4007 and 4009 end the session (a RESUME then gets op 9), 4008 keeps it; any code on demand with
  `disconnect_gateway`, and the next IDENTIFY refused with a code of the test's choice (`refuse_next_identify`).
Discord accepts any shard count (sessions route by the count they identified with), so the stand-in does too.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import logging
import secrets
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from aiohttp import web

from tests.fakes import discord_payloads as p

if TYPE_CHECKING:
    from tests.fakes.discord_server import FakeGuild

_log = logging.getLogger(__name__)

_REPLAY_BUFFER = 1000
# events/gateway.mdx, "Session Start Limit Object": max_concurrency IDENTIFYs per 5 seconds.
IDENTIFY_WINDOW = 5.0
# events/gateway.mdx, "Sharding": "Each shard can only support a maximum of 2500 guilds".
MAX_GUILDS_PER_SHARD = 2500
# events/gateway.mdx, "Rate Limiting": 120 gateway events per connection every 60 seconds.
SEND_LIMIT = 120
SEND_WINDOW = 60.0
# opcodes-and-status-codes.mdx: these closes end the session ("Reconnect and start a new session").
SESSION_ENDING_CLOSES = frozenset({4007, 4009})
_ZLIB_SUFFIX = b"\x00\x00\xff\xff"

VoiceConnectCallback = Callable[[int, int, str, str], Awaitable[None] | None]
VoiceDisconnectCallback = Callable[[int], Awaitable[None] | None]


class _Compressor(Protocol):
    def frame(self, text: str) -> bytes: ...


class _ZlibStream:
    """zlib-stream: one deflate context for the connection; each payload ends with a sync flush (00 00 ff ff)."""

    def __init__(self) -> None:
        self._context = zlib.compressobj()

    def frame(self, text: str) -> bytes:
        data = self._context.compress(text.encode()) + self._context.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(_ZLIB_SUFFIX)
        return data


class _ZstdStream:
    """zstd-stream: one zstd context for the connection; each payload a flushed block of the one frame."""

    def __init__(self) -> None:
        import zstandard  # only where the client asked for it, which discord.py does when it is installed

        self._flush = zstandard.COMPRESSOBJ_FLUSH_BLOCK
        self._context = zstandard.ZstdCompressor().compressobj()

    def frame(self, text: str) -> bytes:
        return bytes(self._context.compress(text.encode()) + self._context.flush(self._flush))


_COMPRESSIONS: dict[str, Callable[[], _Compressor]] = {"zlib-stream": _ZlibStream, "zstd-stream": _ZstdStream}


class _GatewayConnection:
    def __init__(self, ws: web.WebSocketResponse, compressor: _Compressor | None) -> None:
        self.ws = ws
        self.session: _GatewaySession | None = None
        self.lock = asyncio.Lock()
        self.compressor = compressor
        self.received: deque[float] = deque()

    async def send(self, frame: str) -> None:
        async with self.lock:
            if not self.ws.closed:
                with suppress(ConnectionError, RuntimeError):
                    if self.compressor is None:
                        await self.ws.send_str(frame)
                    else:
                        await self.ws.send_bytes(self.compressor.frame(frame))

    def over_send_limit(self) -> bool:
        """Note one payload from the client; whether it is over 120 in the last 60 s."""
        now = time.monotonic()
        self.received.append(now)
        while self.received and self.received[0] <= now - SEND_WINDOW:
            self.received.popleft()
        return len(self.received) > SEND_LIMIT


@dataclass
class _GatewaySession:
    session_id: str
    shard_id: int
    shard_count: int
    intents: int
    sequence: int = 0
    buffer: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=_REPLAY_BUFFER))
    connection: _GatewayConnection | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def frame(self, event: str, data: Any) -> str:
        self.sequence += 1
        frame = json.dumps({"op": 0, "t": event, "s": self.sequence, "d": data})
        self.buffer.append((self.sequence, frame))
        return frame

    def routes(self, guild_id: int) -> bool:
        """Whether this session receives the guild's events (events/gateway.mdx, "Sharding Formula")."""
        return (guild_id >> 22) % self.shard_count == self.shard_id


class FakeGateway:
    """The gateway half of FakeDiscord (mixed into it: the attributes below are FakeDiscord's)."""

    token: str
    shard_count: int
    max_concurrency: int
    max_guilds_per_shard: int
    shard_multiple: int | None
    refuse_gateway: bool
    refuse_next_identify: int | None
    message_content_allowed: bool
    members_intent_allowed: bool
    heartbeat_interval_ms: int
    heartbeat_ack_delay: float
    voice_endpoint: str | None
    application_id: int
    bot_user: dict[str, Any]
    guilds: dict[int, FakeGuild]
    gateway_log: list[dict[str, Any]]
    close_codes: list[tuple[int, int]]
    identify_counts: dict[int, int]
    identify_refusals: list[int]
    resume_counts: dict[int, int]
    voice_rejections: list[dict[str, Any]]
    ready: dict[int, asyncio.Event]
    _sessions: dict[str, _GatewaySession]
    _shard_sessions: dict[int, _GatewaySession]
    _connections: set[_GatewayConnection]
    _identified_at: dict[int, float]
    _voice_connect_callbacks: list[VoiceConnectCallback]
    _voice_disconnect_callbacks: list[VoiceDisconnectCallback]

    @property
    def gateway_url(self) -> str:
        raise NotImplementedError

    async def _notify(self) -> None:
        raise NotImplementedError

    def _shard_for(self, guild_id: int, shard_count: int | None = None) -> int:
        return (guild_id >> 22) % (shard_count or self.shard_count)

    def session_for(self, shard_id: int) -> _GatewaySession | None:
        """The current gateway session of a shard."""
        return self._shard_sessions.get(shard_id)

    def _session_for_guild(self, guild: FakeGuild) -> _GatewaySession | None:
        for session in self._shard_sessions.values():
            if session.routes(guild.id):
                return session
        return None

    async def _gateway_handler(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_gateway:
            return web.Response(status=503, text="the gateway is down (refuse_gateway)")
        compression = request.query.get("compress")
        if compression is not None and compression not in _COMPRESSIONS:
            return web.Response(status=400, text=f"unknown transport compression {compression!r}")
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        connection = _GatewayConnection(ws, _COMPRESSIONS[compression]() if compression else None)
        self._connections.add(connection)
        try:
            hello = {"op": 10, "s": None, "t": None, "d": {"heartbeat_interval": self.heartbeat_interval_ms}}
            await connection.send(json.dumps(hello))
            async for message in ws:
                if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    if connection.over_send_limit():
                        await self._close_connection(connection, 4008, "Rate limited.")
                        break
                    await self._on_gateway_payload(connection, json.loads(message.data))
        finally:
            self._connections.discard(connection)
            session = connection.session
            if session is not None and session.connection is connection:
                session.connection = None
            await self._notify()
        return ws

    async def _close_connection(
        self, connection: _GatewayConnection, code: int, reason: str, *, shard_id: int | None = None
    ) -> None:
        if shard_id is None:
            shard_id = connection.session.shard_id if connection.session else -1
        self.close_codes.append((shard_id, code))
        _log.info("FakeDiscord gateway: closing shard %s with %s (%s)", shard_id, code, reason)
        if code in SESSION_ENDING_CLOSES and connection.session is not None:
            self._sessions.pop(connection.session.session_id, None)
        await connection.ws.close(code=code, message=reason.encode())

    async def _on_gateway_payload(self, connection: _GatewayConnection, payload: dict[str, Any]) -> None:
        op = payload.get("op")
        data: Any = payload.get("d")
        logged = copy.deepcopy(data)
        if isinstance(logged, dict) and "token" in logged:
            logged["token"] = "<redacted>"
        session = connection.session
        self.gateway_log.append({"shard_id": session.shard_id if session else None, "op": op, "d": logged})
        if op == 1:
            # discord.py's keep-alive thread notes the send time only once the loop has sent the heartbeat; an
            # ack arriving before that is measured against the previous beat ("Can't keep up ... 41 s behind").
            # Discord is never that fast, so the stand-in answers after a network-like pause.
            await asyncio.sleep(self.heartbeat_ack_delay)
            await connection.send(json.dumps({"op": 11, "s": None, "t": None, "d": None}))
        elif op == 2:
            await self._identify(connection, data)
        elif op == 6:
            await self._resume(connection, data)
        elif op == 4:
            await self._voice_state(connection, data)
        elif op == 8:
            await self._request_members(connection, data)
        elif op != 3:
            _log.warning("FakeDiscord gateway: unhandled op %s", op)
        await self._notify()

    def _identify_refusal(self, data: dict[str, Any], shard_id: int, shard_count: int) -> tuple[int, str] | None:
        """The close code and reason Discord ends this IDENTIFY with, if any (in Discord's order of checks)."""
        if data.get("token") != self.token:
            return 4004, "Authentication failed."
        if self.refuse_next_identify is not None:
            code, self.refuse_next_identify = self.refuse_next_identify, None
            return code, "refused by the test"
        if shard_count < 1 or not 0 <= shard_id < shard_count:
            return 4010, "Invalid shard."
        if self.shard_multiple and shard_count % self.shard_multiple:
            # events/gateway.mdx, "Sharding for Large Bots": the count must be a multiple of the assigned number.
            return 4010, "Invalid shard."
        if sum(1 for guild_id in self.guilds if self._shard_for(guild_id, shard_count) == shard_id) > (
            self.max_guilds_per_shard
        ):
            return 4011, "Sharding required."
        intents = int(data.get("intents", 0))
        if (intents & p.INTENT_MESSAGE_CONTENT and not self.message_content_allowed) or (
            intents & p.INTENT_GUILD_MEMBERS and not self.members_intent_allowed
        ):
            return 4014, "Disallowed intent(s)."
        return None

    async def _identify(self, connection: _GatewayConnection, data: dict[str, Any]) -> None:
        if connection.session is not None:
            await self._close_connection(connection, 4005, "Already authenticated.")
            return
        shard_id, shard_count = data.get("shard") or (0, 1)
        refusal = self._identify_refusal(data, shard_id, shard_count)
        if refusal is not None:
            await self._close_connection(connection, *refusal, shard_id=shard_id)
            return
        bucket = shard_id % self.max_concurrency
        last = self._identified_at.get(bucket)
        if last is not None and time.monotonic() - last < IDENTIFY_WINDOW:
            # events/gateway.mdx, "Identifying": over max_concurrency, Discord answers op 9 Invalid Session.
            self.identify_refusals.append(shard_id)
            _log.info("FakeDiscord gateway: IDENTIFY of shard %s within 5 s of bucket %s: op 9", shard_id, bucket)
            await connection.send(json.dumps({"op": 9, "s": None, "t": None, "d": False}))
            return
        self._identified_at[bucket] = time.monotonic()
        intents = int(data.get("intents", 0))
        session = _GatewaySession(
            session_id=secrets.token_hex(16), shard_id=shard_id, shard_count=shard_count, intents=intents
        )
        self._sessions[session.session_id] = session
        self._shard_sessions[shard_id] = session
        session.connection = connection
        connection.session = session
        self.identify_counts[shard_id] = self.identify_counts.get(shard_id, 0) + 1
        guilds = [g for g in self.guilds.values() if session.routes(g.id)]
        ready = {
            "v": 10,
            "user": {**copy.deepcopy(self.bot_user), "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url,
            "shard": [shard_id, shard_count],
            "application": {"id": str(self.application_id), "flags": self._application_flags()},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
        }
        async with session.lock:
            await connection.send(session.frame("READY", ready))
            for guild in guilds:
                await connection.send(session.frame("GUILD_CREATE", guild.create_payload(intents)))
        for shard in range(self.shard_count) if "shard" not in data else (shard_id,):
            self.ready.setdefault(shard, asyncio.Event()).set()

    async def _resume(self, connection: _GatewayConnection, data: dict[str, Any]) -> None:
        session = self._sessions.get(data.get("session_id", ""))
        last = data.get("seq") or 0
        buffered = [seq for seq, _ in session.buffer] if session else []
        replayable = session is not None and (not buffered or buffered[0] <= last + 1)
        if session is None or data.get("token") != self.token or not replayable:
            await connection.send(json.dumps({"op": 9, "s": None, "t": None, "d": False}))
            return
        async with session.lock:
            old = session.connection
            session.connection = connection
            connection.session = session
            if old is not None and old is not connection:
                await old.ws.close(code=4000)
            for seq, frame in list(session.buffer):
                if seq > last:
                    await connection.send(frame)
            await connection.send(session.frame("RESUMED", {}))
        self.resume_counts[session.shard_id] = self.resume_counts.get(session.shard_id, 0) + 1

    async def _voice_state(self, connection: _GatewayConnection, data: dict[str, Any]) -> None:
        session = connection.session
        guild = self.guilds.get(int(data["guild_id"]))
        if session is None or guild is None:
            _log.warning("FakeDiscord gateway: op 4 for an unknown guild or before IDENTIFY: %s", data)
            return
        bot_id = int(self.bot_user["id"])
        channel_id = int(data["channel_id"]) if data.get("channel_id") is not None else None
        if channel_id is not None:
            channel = guild.channels.get(channel_id)
            permissions = guild.bot_member.permissions_in(channel_id)
            occupants = [s for uid, s in guild.voice_states.items() if s["channel_id"] == str(channel_id)]
            reason = None
            if channel is None or channel["type"] not in p.VOICE_CHANNEL_TYPES:
                reason = "not a voice channel"
            elif not permissions & p.CONNECT:
                reason = "missing CONNECT"
            elif (
                channel["user_limit"]
                and len(occupants) >= channel["user_limit"]
                and not permissions & p.MOVE_MEMBERS
                and guild.voice_states.get(bot_id, {}).get("channel_id") != str(channel_id)
            ):
                reason = "channel full"
            if reason is not None:
                # Discord answers nothing at all: the client's connect() times out.
                self.voice_rejections.append({"guild_id": guild.id, "channel_id": channel_id, "reason": reason})
                _log.info("FakeDiscord gateway: ignoring voice join (%s)", reason)
                return
            previous = guild.voice_states.get(bot_id, {})
            stage = channel is not None and channel["type"] == p.CHANNEL_STAGE
            stays = previous.get("channel_id") == str(channel_id)
            guild.voice_states[bot_id] = {
                "channel_id": str(channel_id),
                "session_id": session.session_id,
                "self_mute": bool(data.get("self_mute")),
                "self_deaf": bool(data.get("self_deaf")),
                # On a stage everyone joins as audience, suppressed (stage-instance.mdx, "Definitions").
                "suppress": bool(previous.get("suppress")) if stays else stage,
                "request_to_speak_timestamp": previous.get("request_to_speak_timestamp") if stays else None,
            }
        else:
            guild.voice_states.pop(bot_id, None)
        state = guild.voice_state_payload(bot_id)
        state["session_id"] = session.session_id
        await self._dispatch_guild_event(guild, "VOICE_STATE_UPDATE", state)
        if channel_id is None:
            for disconnect_callback in self._voice_disconnect_callbacks:
                await _maybe_await(disconnect_callback(guild.id))
            return
        token = secrets.token_hex(8)
        for connect_callback in self._voice_connect_callbacks:
            await _maybe_await(connect_callback(guild.id, channel_id, session.session_id, token))
        if self.voice_endpoint is not None:
            server = {"token": token, "guild_id": str(guild.id), "endpoint": self.voice_endpoint}
            await self._send_dispatch(session, "VOICE_SERVER_UPDATE", server)

    async def _request_members(self, connection: _GatewayConnection, data: dict[str, Any]) -> None:
        session = connection.session
        guild_ids = data["guild_id"] if isinstance(data["guild_id"], list) else [data["guild_id"]]
        for raw_guild_id in guild_ids:
            guild = self.guilds.get(int(raw_guild_id))
            if guild is None or session is None:
                continue
            members = list(guild.members.values())
            wanted = [int(user_id) for user_id in data.get("user_ids") or []]
            if wanted:
                members = [m for m in members if m.id in wanted]
            query = (data.get("query") or "").lower()
            if query:
                members = [m for m in members if m.name.lower().startswith(query)]
            if data.get("limit"):
                members = members[: data["limit"]]
            chunk: dict[str, Any] = {
                "guild_id": str(guild.id),
                "members": [m.payload() for m in members],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [str(user_id) for user_id in wanted if user_id not in guild.members],
            }
            if data.get("nonce"):
                chunk["nonce"] = data["nonce"]
            await self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    def _application_flags(self) -> int:
        flags = 0
        if self.message_content_allowed:
            flags |= p.APP_FLAG_GATEWAY_MESSAGE_CONTENT_LIMITED
        if self.members_intent_allowed:
            flags |= p.APP_FLAG_GATEWAY_GUILD_MEMBERS_LIMITED
        return flags

    async def _send_dispatch(self, session: _GatewaySession, event: str, data: Any) -> None:
        async with session.lock:
            frame = session.frame(event, data)
            connection = session.connection
            if connection is not None:
                # A frame lost to a closing socket stays in the buffer and is replayed on RESUME.
                await connection.send(frame)
        await self._notify()

    def _require_session(self, shard_id: int) -> _GatewaySession:
        session = self._shard_sessions.get(shard_id)
        if session is None:
            raise RuntimeError(f"shard {shard_id} has no gateway session: await wait_until_connected() first")
        return session

    def _require_guild_session(self, guild: FakeGuild) -> _GatewaySession:
        session = self._session_for_guild(guild)
        if session is None:
            raise RuntimeError(f"no gateway session receives {guild}: await wait_until_connected() first")
        return session

    async def dispatch(self, event: str, data: dict[str, Any], *, shard_id: int = 0) -> None:
        """Send any dispatch event to a shard as is (buffered for replay while it is disconnected)."""
        await self._send_dispatch(self._require_session(shard_id), event, data)

    async def _dispatch_guild_event(self, guild: FakeGuild, event: str, data: dict[str, Any]) -> None:
        session = self._require_guild_session(guild)
        needed = p.EVENT_INTENTS.get(event)
        bot_id = int(self.bot_user["id"])
        # gateway.mdx, "Caveats": "Guild Member Update is sent for current-user updates regardless of whether the
        # GUILD_MEMBERS intent is set".
        about_me = event == "GUILD_MEMBER_UPDATE" and int(data.get("user", {}).get("id", 0)) == bot_id
        if needed is not None and not session.intents & needed and not about_me:
            return
        if event.startswith("MESSAGE_") and "channel_id" in data:
            # permissions.mdx, VIEW_CHANNEL "Allows guild members to view a channel, which includes reading messages
            # in text channels": no message events from a channel the bot cannot view. Read Message History is
            # documented for reading the past only (message.mdx, "Get Channel Messages": without it "no messages
            # will be returned"), not for new messages as they are sent.
            if not guild.bot_member.permissions_in(int(data["channel_id"])) & p.VIEW_CHANNEL:
                return
        if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE") and not session.intents & p.INTENT_MESSAGE_CONTENT:
            data = _without_content(data, int(self.bot_user["id"]))
        await self._send_dispatch(session, event, data)

    async def disconnect_gateway(self, code: int = 4000, *, shard_id: int = 0) -> None:
        """Close a shard's websocket with this code (the client then resumes, or not, by the code).

        As Discord does, 4007 (invalid seq) and 4009 (session timed out) also end the session, so the client's
        RESUME gets op 9 and it identifies anew; 4008 (rate limited) and the others keep it resumable.
        """
        session = self._require_session(shard_id)
        connection = session.connection
        if connection is None:
            raise RuntimeError(f"shard {shard_id} is not connected")
        await self._close_connection(connection, code, "closed by the test")

    async def request_reconnect(self, *, shard_id: int = 0) -> None:
        """Send op 7 RECONNECT to a shard (the client resumes at resume_gateway_url)."""
        connection = self._require_session(shard_id).connection
        if connection is not None:
            await connection.send(json.dumps({"op": 7, "s": None, "t": None, "d": None}))

    async def invalidate_session(self, *, shard_id: int = 0, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION to a shard (discord.py re-identifies after a 5 s sleep)."""
        session = self._require_session(shard_id)
        if not resumable:
            self._sessions.pop(session.session_id, None)
        if session.connection is not None:
            await session.connection.send(json.dumps({"op": 9, "s": None, "t": None, "d": resumable}))


def _without_content(data: dict[str, Any], bot_id: int) -> dict[str, Any]:
    author_id = int(data.get("author", {}).get("id", 0))
    mentioned = any(int(user["id"]) == bot_id for user in data.get("mentions") or [])
    if author_id == bot_id or mentioned:
        return data
    # Without the message content intent Discord blanks these fields (except for mentions of the bot).
    return {**data, "content": "", "embeds": [], "attachments": [], "components": []}


async def _maybe_await(result: Awaitable[None] | None) -> None:
    if inspect.isawaitable(result):
        await result
