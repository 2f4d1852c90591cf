"""A local Discord stand-in (REST, gateway and interactions) that the real discord.py talks to in tests.

Start a `FakeDiscord`, point discord.py at it with `use_fake_discord(fake)` (or set `Route.BASE` and
`DiscordWebSocket.DEFAULT_GATEWAY` yourself), run the bot, then drive it with `slash`, `click`,
`post_message`, `move_member`... and assert on what it recorded.

It refuses what real Discord refuses, the way Discord answers it:
- every message body (interaction callbacks, follow-ups, edits, channel messages) is checked against Discord's
  limits (content, embeds, components, URL schemes; `discord_payloads.message_errors`) and refused with 400,
  code 50035 "Invalid Form Body" and the nested `errors` object (paths start at `data` for callbacks); a refused
  callback does not acknowledge the interaction;
- autocomplete choices likewise; an attachment over the interaction's `attachment_size_limit` gets 413, code
  40005 "Request entity too large";
- an interaction not acknowledged within `callback_deadline` (3 s, on by default: pass None to switch it off)
  of its creation gets 404, code 10062 "Unknown interaction", and its token is then dead; each interaction is
  created `delivery_delay` (0.5 s) before it is dispatched, as delivery takes part of Discord's 3 s, and its id
  carries that creation time; after `token_lifetime` (15 minutes) a token gets 401, code 50027 "Invalid Webhook
  Token" on webhook routes. There is one clock, real time, shared with the bot and discord.py's view timeouts:
  a test scales `token_lifetime` down rather than moving one side's clock;
- every 401, 403 and 429 answer is counted in `invalid_requests` (Discord bans an IP at 10,000 in 10 minutes);
  `wasted_requests()` leaves out the 429s a test asked for, and conftest's `discord_fake` fails a test that
  wasted any;
- REST rate limits (per-route buckets with `X-RateLimit-*` headers, the global limit, 429s on demand with
  `rate_limits.throttle`: `discord_ratelimits.py`) and the gateway's rules (compression, IDENTIFY concurrency,
  the send limit and close codes: `discord_gateway.py`);
- commands: the documented name pattern (letters of any script, lowercase) for names and localizations, the
  8,000-character total with the longest localizations, at most 100 CHAT_INPUT, 15 USER and 15 MESSAGE commands
  per scope (400, code 30032), 200 creates a day per guild (429, code 30034), and a global command offered in
  servers only if its `contexts` include GUILD (a guild command's `contexts` is ignored, as documented);
- a server's AutoMod keyword rules block the bot's messages with 400, code 200000; uploads are limited by the
  server's boost tier (`premium_tier`); an edit whose `attachments` does not list an upload drops it.
- user installs (application.mdx, "Installation Context"; application-commands.mdx, "Contexts";
  receiving-and-responding.mdx; change-log.mdx, "User-Installed Apps General Availability"): the app supports
  guild installs only until `enable_user_install` (the Developer Portal's User Install), and a global command may
  carry USER_INSTALL only then; `install_for_user` adds the app to a user's account; DMs (`open_dm`), group DMs
  (`add_group_dm`) and servers without the bot (`add_guild(bot=False)`) offer a global command only where its
  `contexts` and `integration_types` allow, and their interactions carry `context`, `authorizing_integration_owners`
  (key "0" only where the app is installed in the server, or "0" in the bot's own DM), a partial guild and the
  documented `app_permissions`; in a server without the bot, answers are made ephemeral where the member lacks Use
  External Apps, and at most 5 follow-ups are accepted (code 40094); the bot can reach none of those channels.
- voice messages (message flag IS_VOICE_MESSAGE, 8192): kept on Create Message and on a type 4 callback, refused
  (400, 50035 at `flags`) on a type 5 callback and on follow-ups; exactly one attachment whose part is `audio/*`
  (50160), with `duration_secs` and a base64 `waveform` of 1 to 256 bytes (50161), and no content, embeds,
  components, stickers or poll (50159); the bot needs Send Voice Messages in the channel (403, 50173) and, for
  Create Message, Send Messages (not Attach Files); a voice message is never edited (50162).
- Option values outside the registered schema (over `max_length`, a missing required option, a value not among
  the choices, a number out of range) are never sent by Discord's client, which refuses them as the member types:
  `slash` and `autocomplete` raise `ClientRefused` and dispatch nothing (recorded in `client_refusals`).
  `client_checks=False` sends them anyway, as a modified client could, to test the bot's own checks.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import aiohttp
from aiohttp import web

from tests.fakes import discord_payloads as p
from tests.fakes.discord_gateway import (
    MAX_GUILDS_PER_SHARD,
    FakeGateway,
    VoiceConnectCallback,
    VoiceDisconnectCallback,
    _GatewayConnection,
    _GatewaySession,
    _maybe_await,
)
from tests.fakes.discord_ratelimits import INVALID_STATUSES, InvalidRequest, RateLimits

_CDN_SLICE_BYTES = 1 << 20

_log = logging.getLogger(__name__)

ChannelRef = dict[str, Any] | int | str
MemberVoiceCallback = Callable[[int, int, int | None], Awaitable[None] | None]

_PRIVATE_MESSAGE_KEYS = ("payload", "files")
# interactions/receiving-and-responding.mdx, "Responding to an Interaction": answer within 3 s of the
# interaction's creation; "Interaction tokens are valid for 15 minutes".
CALLBACK_DEADLINE = 3.0
TOKEN_LIFETIME = 15 * 60.0
# Discord counts those from the interaction's creation at Discord, so its delivery over the gateway comes out
# of them: the stand-in creates each interaction this long before it dispatches it.
DELIVERY_DELAY = 0.5
_QUIET_PERIOD = 0.3
_POLL = 0.05


class ClientRefused(ValueError):
    """Discord's client would not send this interaction (an option breaks the command's registered schema)."""


class FakeClock:
    """The stand-in's clock: real monotonic time, the clock discord.py's view timeouts and the bot run on too.

    There is deliberately no way to move it forward: interactions age for the stand-in exactly as they do for
    the bot (which reads their age from the creation time in their id), so a test of the 15-minute token
    lifetime scales the lifetime down (`token_lifetime`) instead of moving one side's clock.
    """

    def now(self) -> float:
        """The current time (time.monotonic())."""
        return time.monotonic()


class ChannelOption(NamedTuple):
    """A channel passed as a slash-command option value (resolved into data.resolved.channels)."""

    id: int


class RoleOption(NamedTuple):
    """A role passed as a slash-command option value (resolved into data.resolved.roles)."""

    id: int


class UserOption(NamedTuple):
    """A user or member passed as a slash-command option value (resolved into users and members)."""

    id: int


@dataclass
class Response:
    """One answer the bot gave to an interaction, as the stand-in received it."""

    kind: str  # callback, edit_original, delete_original, followup, edit_followup, delete_followup
    type: int | None  # the callback type for kind "callback"
    json: Any
    files: list[tuple[str, bytes]]
    at: float
    status: int = 200
    message_id: int | None = None
    error: dict[str, Any] | None = None


class _RequestRecord(NamedTuple):
    method: str
    path: str
    json: Any


class RecordedRequest(_RequestRecord):
    """A REST request: unpacks as (method, path, json); also has query, files and status."""

    query: dict[str, str]
    files: list[tuple[str, bytes]]
    status: int


@dataclass
class _Upload:
    index: int
    filename: str
    data: bytes
    content_type: str | None = None  # the part's own Content-Type header


class _DiscordError(Exception):
    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        errors: dict[str, Any] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        if self.retry_after is not None:
            body.update(retry_after=round(self.retry_after, 3), **{"global": False})
        return body

    def response(self) -> web.Response:
        response = _json_response(self.body(), self.status)
        if self.retry_after is not None:
            response.headers.update(
                {"Retry-After": str(math.ceil(self.retry_after)), "X-RateLimit-Scope": "user", "Via": "1.1 google"}
            )
        return response


def _invalid_form(errors: dict[str, Any]) -> _DiscordError:
    return _DiscordError(400, 50035, "Invalid Form Body", errors)


def _json_response(data: Any, status: int = 200) -> web.Response:
    # discord.py compares the Content-Type with "application/json" for equality: no charset suffix.
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


def error_code(response: web.StreamResponse) -> int | None:
    """The JSON error code of an answer the stand-in made, if it has one."""
    body = getattr(response, "body", None)
    if not isinstance(body, bytes):
        return None
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None


def _ref_id(value: Any) -> int:
    if isinstance(value, dict):
        return int(value["id"])
    if hasattr(value, "id"):
        return int(value.id)
    return int(value)


def _public(message: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy({key: value for key, value in message.items() if key not in _PRIVATE_MESSAGE_KEYS})


def iter_components(components: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Yield every component of a message, nested ones included."""
    for component in components:
        yield component
        yield from iter_components(component.get("components") or [])
        accessory = component.get("accessory")
        if isinstance(accessory, dict):
            yield accessory


def find_component(message: dict[str, Any], custom_id: str) -> dict[str, Any] | None:
    """Return the component of a message with this custom_id, if any."""
    for component in iter_components(message.get("components") or []):
        if component.get("custom_id") == custom_id:
            return component
    return None


class FakeMember:
    """A guild member as the stand-in knows it."""

    def __init__(
        self,
        guild: FakeGuild,
        user: dict[str, Any],
        *,
        roles: Sequence[int] = (),
        nick: str | None = None,
        permissions: int | None = None,
    ) -> None:
        self.guild = guild
        self.user = user
        self.roles: list[int] = list(roles)
        self.nick = nick
        self.explicit_permissions = permissions
        self.joined_at = p.iso_now()
        # guild.mdx, "Guild Member Object": deafened or muted in voice by the server (kept across channels), and
        # when a timeout ends (ISO 8601; null or a past time: not timed out).
        self.deaf = False
        self.mute = False
        self.communication_disabled_until: str | None = None

    @property
    def id(self) -> int:
        """The member's user id."""
        return int(self.user["id"])

    @property
    def name(self) -> str:
        """The member's display name."""
        return self.nick or self.user.get("global_name") or self.user["username"]

    @property
    def permissions(self) -> int:
        """The permission integer put in interactions: the explicit value, else computed from roles."""
        if self.explicit_permissions is not None:
            return self.explicit_permissions
        return self.guild.compute_permissions(self.id, self.roles)

    def permissions_in(self, channel_id: int | None) -> int:
        """The member's permissions in a channel (overwrites applied), or the explicit value."""
        if self.explicit_permissions is not None:
            return self.explicit_permissions
        return self.guild.compute_permissions(self.id, self.roles, channel_id)

    def payload(self, *, with_user: bool = True, permissions: int | None = None) -> dict[str, Any]:
        """Build the guild member object."""
        data: dict[str, Any] = {
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "roles": [str(role_id) for role_id in self.roles],
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": self.deaf,
            "mute": self.mute,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": self.communication_disabled_until,
        }
        if with_user:
            data["user"] = copy.deepcopy(self.user)
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data

    @property
    def bot(self) -> bool:
        """Whether the member is a bot account."""
        return bool(self.user.get("bot"))

    def timed_out(self, now: datetime | None = None) -> bool:
        """Whether a timeout is running (guild.mdx: null or a time in the past means it is not)."""
        until = p.parse_timestamp(self.communication_disabled_until)
        return until is not None and until > (now or datetime.now(UTC))

    def __repr__(self) -> str:
        return f"<FakeMember id={self.id} name={self.name!r}>"


class FakeGuild:
    """A guild: channels, roles, members and voice states, all keyed by integer id."""

    def __init__(self, fake: FakeDiscord, *, guild_id: int, name: str, owner_id: int, bot: bool = True) -> None:
        self._fake = fake
        self.id = guild_id
        # False: a server the app is not installed in (its members may still use their own user install there).
        self.bot_installed = bot
        self.name = name
        self.owner_id = owner_id
        self.channels: dict[int, dict[str, Any]] = {}
        self.roles: dict[int, dict[str, Any]] = {}
        self.members: dict[int, FakeMember] = {}
        self.voice_states: dict[int, dict[str, Any]] = {}
        # guild.mdx, "Premium Tier": the server's boost level, which raises its upload limit (reference.mdx,
        # "Uploading Files"); set it before the bot connects, or announce the change.
        self.premium_tier = 0
        # guild.mdx, "preferred_locale": the community's language, sent in GUILD_CREATE and as each interaction's
        # guild_locale; set it before the bot connects.
        self.preferred_locale = "en-US"
        self.automod_rules: list[dict[str, Any]] = []
        self.roles[guild_id] = p.role_payload(guild_id, "@everyone", p.DEFAULT_EVERYONE_PERMISSIONS, 0)
        self.bot_role_id = 0
        if not bot:
            return
        bot_id = int(fake.bot_user["id"])
        role_id = fake.snowflakes.next()
        self.bot_role_id = role_id
        self.roles[role_id] = p.role_payload(
            role_id, fake.bot_user["username"], p.DEFAULT_BOT_PERMISSIONS, 1, bot_id=bot_id
        )
        self.members[bot_id] = FakeMember(self, fake.bot_user, roles=[role_id])

    @property
    def everyone_role(self) -> dict[str, Any]:
        """The @everyone role (its id is the guild id)."""
        return self.roles[self.id]

    @property
    def bot_member(self) -> FakeMember:
        """The bot's own member."""
        return self.members[int(self._fake.bot_user["id"])]

    @property
    def bot_permissions(self) -> int:
        """The permissions of the bot's managed role."""
        return int(self.roles[self.bot_role_id]["permissions"])

    @bot_permissions.setter
    def bot_permissions(self, value: int) -> None:
        self.roles[self.bot_role_id]["permissions"] = str(value)

    @property
    def shard_id(self) -> int:
        """The shard this guild belongs to."""
        return (self.id >> 22) % self._fake.shard_count

    def add_text_channel(self, name: str) -> dict[str, Any]:
        """Add a text channel and return its (live) channel object."""
        channel_id = self._fake.snowflakes.next()
        channel = p.text_channel_payload(channel_id, self.id, name, len(self.channels))
        self.channels[channel_id] = channel
        return channel

    def add_voice_channel(self, name: str, *, user_limit: int = 0) -> dict[str, Any]:
        """Add a voice channel and return its (live) channel object."""
        channel_id = self._fake.snowflakes.next()
        channel = p.voice_channel_payload(channel_id, self.id, name, len(self.channels), user_limit)
        self.channels[channel_id] = channel
        return channel

    def add_stage_channel(self, name: str) -> dict[str, Any]:
        """Add a stage channel (type 13) and return its (live) channel object."""
        channel_id = self._fake.snowflakes.next()
        channel = p.stage_channel_payload(channel_id, self.id, name, len(self.channels))
        self.channels[channel_id] = channel
        return channel

    def add_role(self, name: str, *, permissions: int = 0) -> dict[str, Any]:
        """Add a role and return its (live) role object."""
        role_id = self._fake.snowflakes.next()
        role = p.role_payload(role_id, name, permissions, len(self.roles))
        self.roles[role_id] = role
        return role

    def add_member(
        self,
        name: str,
        *,
        user_id: int | None = None,
        roles: Sequence[dict[str, Any] | int] = (),
        permissions: int | None = None,
        bot: bool = False,
        nick: str | None = None,
    ) -> FakeMember:
        """Add a member; permissions, when given, is the exact integer sent in interactions."""
        member_id = user_id if user_id is not None else self._fake.snowflakes.next()
        user = self._fake.users.get(member_id) or p.user_payload(member_id, name, bot=bot)
        self._fake.users[member_id] = user
        member = FakeMember(self, user, roles=[_ref_id(role) for role in roles], nick=nick, permissions=permissions)
        self.members[member_id] = member
        return member

    def add_automod_rule(
        self,
        keywords: Sequence[str] = (),
        *,
        regex_patterns: Sequence[str] = (),
        allow_list: Sequence[str] = (),
        exempt_roles: Sequence[int] = (),
        exempt_channels: Sequence[int] = (),
        name: str = "Keyword Filter",
    ) -> dict[str, Any]:
        """Add an AutoMod keyword rule that blocks matching messages (auto-moderation.mdx, trigger KEYWORD)."""
        rule = {
            "id": str(self._fake.snowflakes.next()),
            "guild_id": str(self.id),
            "name": name,
            "creator_id": str(self.owner_id),
            "event_type": p.AUTOMOD_MESSAGE_SEND,
            "trigger_type": p.AUTOMOD_KEYWORD,
            "trigger_metadata": {
                "keyword_filter": list(keywords),
                "regex_patterns": list(regex_patterns),
                "allow_list": list(allow_list),
            },
            "actions": [{"type": p.AUTOMOD_BLOCK_MESSAGE, "metadata": {}}],
            "enabled": True,
            "exempt_roles": [str(role) for role in exempt_roles],
            "exempt_channels": [str(channel) for channel in exempt_channels],
        }
        self.automod_rules.append(rule)
        return rule

    def automod_blocks(self, content: str, channel_id: int, author: FakeMember) -> bool:
        """Whether an enabled rule blocks this content from this author in this channel."""
        for rule in self.automod_rules:
            if not rule["enabled"] or str(channel_id) in rule["exempt_channels"]:
                continue
            if any(str(role) in rule["exempt_roles"] for role in author.roles):
                continue
            if p.automod_matches(rule["trigger_metadata"], content):
                return True
        return False

    def set_permission_overwrite(
        self, channel_id: ChannelRef, *, role_or_member_id: int | dict[str, Any] | FakeMember, allow: int, deny: int
    ) -> None:
        """Set (replace) a channel's overwrite for a role or a member; dispatch it with update_channel."""
        channel = self.channels[_ref_id(channel_id)]
        target_id = _ref_id(role_or_member_id)
        overwrite_type = 0 if target_id in self.roles else 1
        overwrites = [item for item in channel["permission_overwrites"] if int(item["id"]) != target_id]
        overwrites.append({"id": str(target_id), "type": overwrite_type, "allow": str(allow), "deny": str(deny)})
        channel["permission_overwrites"] = overwrites

    def compute_permissions(
        self, member_id: int, role_ids: Sequence[int], channel_id: int | None = None, *, with_timeout: bool = True
    ) -> int:
        """Compute a member's permissions the way Discord does (owner, administrator, overwrites, timeout).

        `with_timeout=False` leaves a running timeout out, to tell what the member will have once it ends.
        """
        if member_id == self.owner_id:
            return p.ALL_PERMISSIONS
        base = int(self.everyone_role["permissions"])
        for role_id in role_ids:
            role = self.roles.get(role_id)
            if role is not None:
                base |= int(role["permissions"])
        if base & p.ADMINISTRATOR:
            return p.ALL_PERMISSIONS
        if channel_id is not None:
            channel = self.channels.get(channel_id)
            if channel is not None:
                base = p.apply_overwrites(
                    base,
                    channel["permission_overwrites"],
                    guild_id=self.id,
                    role_ids=role_ids,
                    member_id=member_id,
                )
            if not base & p.VIEW_CHANNEL:
                return 0
        member = self.members.get(member_id)
        if with_timeout and member is not None and member.communication_disabled_until and member.timed_out():
            # permissions.mdx, "Permissions For Timed Out Members": all but VIEW_CHANNEL and READ_MESSAGE_HISTORY
            # are lost (owners and administrators, returned above, are exempt).
            base &= p.VIEW_CHANNEL | p.READ_MESSAGE_HISTORY
        return base

    # ---------------------------------------------------------------- who can be heard in voice

    def voice_channel_of(self, user_id: int) -> int | None:
        """The voice channel a member is in, if any."""
        state = self.voice_states.get(user_id)
        channel_id = state.get("channel_id") if state is not None else None
        return int(channel_id) if channel_id is not None else None

    def unheard_because(self, user_id: int) -> tuple[str, ...]:
        """Why nobody hears a member's audio right now, whoever listens (empty when it can be heard).

        Discord's rules, each from its page: a server mute (voice.mdx, "Voice State Object": `mute`); in a voice
        channel, the Speak permission, which an overwrite can take away at any time (permissions.mdx, SPEAK "Allows
        for speaking in a voice channel", channel type V only); a running timeout, which takes Speak too
        (permissions.mdx, "Permissions For Timed Out Members"); on a stage, not being a speaker: "not suppressed,
        and has no request_to_speak_timestamp" (stage-instance.mdx, "Definitions").
        """
        channel_id = self.voice_channel_of(user_id)
        if channel_id is None:
            return ("not in voice",)
        state = self.voice_states[user_id]
        member = self.members.get(user_id)
        reasons: list[str] = []
        if member is not None and member.mute:
            reasons.append("server-muted")
        channel = self.channels.get(channel_id)
        stage = channel is not None and channel["type"] == p.CHANNEL_STAGE
        if stage and (state.get("suppress") or state.get("request_to_speak_timestamp")):
            reasons.append("not a speaker")
        if member is not None:
            speaks = self.compute_permissions(user_id, member.roles, channel_id, with_timeout=False) & p.SPEAK
            if not stage and not speaks:
                reasons.append("no Speak permission")
            timed_out = member.communication_disabled_until is not None and member.timed_out()
            if timed_out and not self.compute_permissions(user_id, member.roles) & p.ADMINISTRATOR:
                reasons.append("timed out")
        return tuple(reasons)

    def hearers(self, channel_id: int, speaker_id: int, *, also: Iterable[int] = ()) -> tuple[int, ...]:
        """Who in a voice channel can hear a speaker: not the speaker, not a bot, not deafened.

        voice.mdx, "Voice State Object": `deaf` (by the server) and `self_deaf` (by the member) both mean the member
        hears nothing. `also` adds simulated listeners this stand-in does not know as members.
        """
        channel = str(channel_id)
        present = {user_id for user_id, state in self.voice_states.items() if state.get("channel_id") == channel}
        hearing = []
        for user_id in sorted(present | set(also)):
            if user_id == speaker_id:
                continue
            member = self.members.get(user_id)
            state = self.voice_states.get(user_id) or {}
            if member is not None and (member.bot or member.deaf):
                continue
            if state.get("self_deaf"):
                continue
            hearing.append(user_id)
        return tuple(hearing)

    def member(self, ref: FakeMember | dict[str, Any] | int) -> FakeMember:
        """Return the member for a FakeMember, a user dict or an id."""
        if isinstance(ref, FakeMember):
            return ref
        return self.members[_ref_id(ref)]

    def voice_state_payload(self, user_id: int, *, with_guild: bool = True) -> dict[str, Any]:
        """Build the voice state object of a member (channel_id null when not in voice)."""
        state = self.voice_states.get(user_id)
        data: dict[str, Any] = {
            "user_id": str(user_id),
            "channel_id": None,
            "session_id": secrets.token_hex(16),
            "deaf": False,
            "mute": False,
            "self_deaf": False,
            "self_mute": False,
            "self_stream": False,
            "self_video": False,
            "suppress": False,
            "request_to_speak_timestamp": None,
        }
        if state is not None:
            data.update(state)
        member = self.members.get(user_id)
        if member is not None:
            # A server mute or deafen belongs to the member and follows them from channel to channel.
            data["mute"], data["deaf"] = member.mute, member.deaf
        if with_guild:
            data["guild_id"] = str(self.id)
            member = self.members.get(user_id)
            if member is not None:
                data["member"] = member.payload()
        return data

    def create_payload(self, intents: int) -> dict[str, Any]:
        """Build GUILD_CREATE for a session with these intents."""
        bot_id = int(self._fake.bot_user["id"])
        if intents & p.INTENT_GUILD_PRESENCES:
            shown = list(self.members.values())
        else:
            # Without the presences intent Discord only sends the bot itself and members in voice.
            shown = [m for m in self.members.values() if m.id == bot_id or m.id in self.voice_states]
        voice_states = []
        if intents & p.INTENT_GUILD_VOICE_STATES:
            voice_states = [self.voice_state_payload(user_id, with_guild=False) for user_id in self.voice_states]
        channels = []
        for channel in self.channels.values():
            listed = copy.deepcopy(channel)
            listed.pop("guild_id", None)
            channels.append(listed)
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "features": [],
            "mfa_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": self.premium_tier,
            "premium_subscription_count": (0, 2, 7, 14)[self.premium_tier],
            "preferred_locale": self.preferred_locale,
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "joined_at": self.bot_member.joined_at,
            "large": len(self.members) > 250,
            "unavailable": False,
            "member_count": len(self.members),
            "roles": copy.deepcopy(list(self.roles.values())),
            "emojis": [],
            "stickers": [],
            "channels": channels,
            "threads": [],
            "members": [member.payload() for member in shown],
            "voice_states": voice_states,
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def __repr__(self) -> str:
        return f"<FakeGuild id={self.id} name={self.name!r}>"


class FakePrivateChannel:
    """A DM or a group DM (channel.mdx, DM and GROUP_DM): no server, so no members, roles or permissions.

    `bot_dm` is the DM with the app's bot user (interaction context BOT_DM); any other DM or group DM is a
    PRIVATE_CHANNEL (receiving-and-responding.mdx, "Interaction Context Types"), where only a user install reaches.
    """

    def __init__(
        self, channel_id: int, recipients: Sequence[dict[str, Any]], *, bot_dm: bool, name: str | None
    ) -> None:
        self.id = channel_id
        self.recipients = [copy.deepcopy(user) for user in recipients]
        self.bot_dm = bot_dm
        self.name = name

    @property
    def context(self) -> int:
        """The interaction context of an interaction from here."""
        return p.CONTEXT_BOT_DM if self.bot_dm else p.CONTEXT_PRIVATE_CHANNEL

    def payload(self, owner_id: int | None = None) -> dict[str, Any]:
        """The channel object an interaction from here carries."""
        return p.private_channel_payload(self.id, self.recipients, name=self.name, owner_id=owner_id)

    def has(self, user_id: int) -> bool:
        """Whether the user is in this DM or group DM."""
        return any(int(user["id"]) == user_id for user in self.recipients)

    def __repr__(self) -> str:
        kind = "bot DM" if self.bot_dm else ("group DM" if self.name is not None else "DM")
        return f"<FakePrivateChannel id={self.id} {kind}>"


Place = FakeGuild | FakePrivateChannel


@dataclass
class _Surface:
    """Where an interaction comes from, as Discord describes it to the app."""

    guild: FakeGuild | None
    private: FakePrivateChannel | None
    channel: dict[str, Any]
    member: FakeMember | None
    user: dict[str, Any]
    context: int
    permissions: int | None  # the member's, in the channel (servers only)
    app_permissions: int

    @property
    def channel_id(self) -> int:
        return int(self.channel["id"])


class FakeInteraction:
    """An interaction the stand-in dispatched, with every answer the bot gave to it."""

    def __init__(
        self,
        fake: FakeDiscord,
        payload: dict[str, Any],
        guild: FakeGuild | None,
        member: FakeMember | None,
        *,
        user: dict[str, Any] | None = None,
        private: FakePrivateChannel | None = None,
    ) -> None:
        self._fake = fake
        self.payload = payload
        self.id = int(payload["id"])
        self.token: str = payload["token"]
        self.type: int = payload["type"]
        self.guild = guild
        self.member = member
        self.private = private
        self.user: dict[str, Any] = user if user is not None else member.user if member is not None else {}
        self.owners: dict[str, str] = payload.get("authorizing_integration_owners") or {}
        # receiving-and-responding.mdx, "Create Followup Message": the 5-follow-up limit holds when the owners
        # object "only contains USER_INSTALL"; change-log.mdx (June 27, 2024): without Use External Apps in a
        # server the app is not installed in, "your app's responses will be ephemeral for the end user".
        self.user_install_only = str(p.GUILD_INSTALL) not in self.owners
        self.forced_ephemeral = False
        self.followups = 0
        self.channel_id = int(payload["channel_id"])
        self.attachment_size_limit: int = payload["attachment_size_limit"]
        self.created_at = fake.clock.now() - fake.delivery_delay
        self.responses: list[Response] = []
        self.callback_type: int | None = None
        self.original_id: int | None = None
        self.original_loading = False
        self.message_ids: list[int] = []

    @property
    def acknowledged_at(self) -> float | None:
        """When (the stand-in's clock) the first accepted callback arrived."""
        for response in self.responses:
            if response.kind == "callback" and response.status < 300:
                return response.at
        return None

    @property
    def component_message_id(self) -> int | None:
        """The id of the message whose component was used (component interactions only)."""
        message = self.payload.get("message")
        return int(message["id"]) if message else None

    async def wait_for(self, predicate: Callable[[Response], bool] | None = None, *, timeout: float = 10.0) -> Response:
        """Return the first response (matching the predicate), waiting for it as needed."""

        def found() -> Response | None:
            return next((r for r in self.responses if predicate is None or predicate(r)), None)

        await self._fake.wait_until(lambda: found() is not None, timeout=timeout, what=f"a response to {self}")
        result = found()
        assert result is not None
        return result

    async def wait_final(self, timeout: float = 10.0) -> Response:
        """Return the last response once an answer exists and no response came for 0.3 s."""
        deadline = time.monotonic() + timeout
        while True:
            accepted = [r for r in self.responses if r.status < 300]
            now = time.monotonic()
            if any(_is_answer(r) for r in accepted):
                quiet = self._fake.clock.now() - self.responses[-1].at
                if quiet >= _QUIET_PERIOD:
                    return accepted[-1]
                await asyncio.sleep(min(_QUIET_PERIOD - quiet, _POLL) + 0.001)
            elif now >= deadline:
                summary = [(r.kind, r.type, r.status) for r in self.responses]
                raise TimeoutError(f"{self} got no final answer within {timeout}s; responses so far: {summary}")
            else:
                await asyncio.sleep(_POLL)

    def messages(self) -> list[dict[str, Any]]:
        """The current state of every message this interaction created or used, deleted ones left out."""
        result = []
        for message_id in self.message_ids:
            if message_id in self._fake.messages and message_id not in self._fake.deleted_message_ids:
                result.append(_public(self._fake.messages[message_id]))
        return result

    def final_message(self) -> dict[str, Any] | None:
        """The current state of the message of the last accepted answer carrying a message."""
        for response in reversed(self.responses):
            if response.status < 300 and response.message_id is not None and _is_answer(response):
                stored = self._fake.messages.get(response.message_id)
                return _public(stored) if stored is not None else None
        return None

    def _final(self) -> dict[str, Any]:
        message = self.final_message()
        if message is None:
            raise AssertionError(f"{self} has no answer with a message; responses: {self.responses}")
        return message

    def content(self) -> str:
        """The content of the final answer."""
        return self._final()["content"]

    @property
    def ephemeral(self) -> bool:
        """Whether the final answer is ephemeral."""
        return bool(self._final()["flags"] & p.FLAG_EPHEMERAL)

    def files(self) -> list[tuple[str, bytes]]:
        """The (filename, bytes) of the final answer's attachments."""
        return self._fake.files_of(self._final())

    def embeds(self) -> list[dict[str, Any]]:
        """The embeds of the final answer."""
        return self._final()["embeds"]

    def components(self) -> list[dict[str, Any]]:
        """The components of the final answer."""
        return self._final()["components"]

    def choices(self) -> list[dict[str, Any]]:
        """The autocomplete choices of the accepted type 8 callback."""
        for response in self.responses:
            if response.kind == "callback" and response.type == 8 and response.status < 300:
                return response.json["data"]["choices"]
        raise AssertionError(f"{self} has no accepted autocomplete answer; responses: {self.responses}")

    def __repr__(self) -> str:
        return f"<FakeInteraction id={self.id} type={self.type} name={self.payload['data'].get('name')!r}>"


def _is_answer(response: Response) -> bool:
    if response.kind in ("followup", "edit_original", "edit_followup"):
        return True
    return response.kind == "callback" and response.type in (4, 7, 8, 9)


class FakeDiscord(FakeGateway):
    """The Discord stand-in: one aiohttp server for REST (/api/v10), the gateway (/gateway) and a CDN (/cdn)."""

    def __init__(
        self,
        *,
        token: str = "test-discord-token",
        message_content_allowed: bool = True,
        members_intent_allowed: bool = True,
        shard_count: int = 1,
        bot_name: str = "Unmixr",
        heartbeat_interval_ms: int = 41250,
        heartbeat_ack_delay: float = 0.05,
        callback_deadline: float | None = CALLBACK_DEADLINE,
        delivery_delay: float = DELIVERY_DELAY,
        token_lifetime: float = TOKEN_LIFETIME,
        upload_limit: int = 10 * 1024 * 1024,
        max_concurrency: int = 1,
        max_guilds_per_shard: int = MAX_GUILDS_PER_SHARD,
        shard_multiple: int | None = None,
        clock: FakeClock | None = None,
    ) -> None:
        self.token = token
        self.message_content_allowed = message_content_allowed
        self.members_intent_allowed = members_intent_allowed
        self.shard_count = shard_count
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.heartbeat_ack_delay = heartbeat_ack_delay
        # While True, new gateway connections are refused (HTTP 503), so a disconnected shard stays down.
        self.refuse_gateway = False
        self.callback_deadline = callback_deadline
        self.delivery_delay = delivery_delay
        self.token_lifetime = token_lifetime
        self.upload_limit = upload_limit
        self.max_concurrency = max_concurrency
        self.max_guilds_per_shard = max_guilds_per_shard
        # A large bot's assigned sharding factor (events/gateway.mdx, "Sharding for Large Bots"), if any.
        self.shard_multiple = shard_multiple
        # The close code the next IDENTIFY gets, whatever it carries (for codes no test can provoke otherwise).
        self.refuse_next_identify: int | None = None
        self.clock = clock or FakeClock()
        self.client_refusals: list[str] = []
        self.voice_endpoint: str | None = None
        self.snowflakes = p.SnowflakeFactory()
        self._guild_ids = p.SnowflakeFactory(worker=1)
        self.application_id = self.snowflakes.next()
        self.bot_user = p.user_payload(self.application_id, bot_name, bot=True)
        self.owner_user = p.user_payload(self.snowflakes.next(), "app-owner")
        self.users: dict[int, dict[str, Any]] = {self.application_id: self.bot_user}
        self.guilds: dict[int, FakeGuild] = {}
        # User installs. application.mdx, "Setting Supported Installation Contexts": "By default, newly-created apps
        # only support installation to guilds" (the Developer Portal's User Install adds USER_INSTALL).
        self.installation_contexts: set[int] = {p.GUILD_INSTALL}
        self.user_installs: set[int] = set()  # users who added the app to their account
        self.guilds_without_bot: dict[int, FakeGuild] = {}
        self.private_channels: dict[int, FakePrivateChannel] = {}
        self.commands: dict[int | str, list[dict[str, Any]]] = {"global": []}
        self._command_creates: dict[int | str, deque[float]] = {}  # when each command of a scope was created
        self.messages: dict[int, dict[str, Any]] = {}
        self.deleted_message_ids: set[int] = set()
        self.channel_messages: dict[int, list[dict[str, Any]]] = {}
        self.requests: list[RecordedRequest] = []
        self.rate_limits = RateLimits()
        # Every answer Discord counts toward its invalid request limit (10,000 per 10 minutes bans the IP).
        self.invalid_requests: list[InvalidRequest] = []
        self.unknown_routes: list[tuple[str, str]] = []
        self.gateway_log: list[dict[str, Any]] = []  # every payload from the client, with when it came ("at")
        self.close_codes: list[tuple[int, int]] = []  # (shard_id, code) of closes the stand-in sent
        self.identify_counts: dict[int, int] = {}  # accepted IDENTIFYs (READY sent), by shard
        self.identify_refusals: list[int] = []  # shards whose IDENTIFY got op 9 for max_concurrency
        self.ready_at: dict[int, float] = {}  # shard -> when its last READY was sent (time.monotonic)
        self._identified_at: dict[int, float] = {}  # rate limit bucket -> when its last IDENTIFY was accepted
        self.resume_counts: dict[int, int] = {}
        self.voice_rejections: list[dict[str, Any]] = []
        self.interactions: dict[int, FakeInteraction] = {}
        self.ready: dict[int, asyncio.Event] = {shard: asyncio.Event() for shard in range(shard_count)}
        self._interactions_by_token: dict[str, FakeInteraction] = {}
        self._message_viewers: dict[int, int] = {}  # ephemeral message id -> the only user who sees it
        self._files: dict[int, tuple[str, bytes, str]] = {}
        # Attachments (by file name) whose download stops after its first slice until the event is set: the CDN
        # of a member on a slow link, for tests of what else goes on meanwhile.
        self.cdn_holds: dict[str, asyncio.Event] = {}
        self._sessions: dict[str, _GatewaySession] = {}
        self._shard_sessions: dict[int, _GatewaySession] = {}
        self._connections: set[_GatewayConnection] = set()
        self._voice_connect_callbacks: list[VoiceConnectCallback] = []
        self._voice_disconnect_callbacks: list[VoiceDisconnectCallback] = []
        self._member_voice_callbacks: list[MemberVoiceCallback] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._routes = self._route_table()

    # ---------------------------------------------------------------- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start serving on host:port (port 0 picks a free one)."""
        app = web.Application(client_max_size=512 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway_handler)
        app.router.add_get("/cdn/attachments/{attachment_id}/{filename}", self._cdn_handler)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest_handler)
        app.router.add_route("*", "/{tail:.*}", self._unknown_handler)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        # Discord queues any burst of connections; aiohttp's default backlog of 128 would drop SYNs.
        site = web.TCPSite(self._runner, host, port, backlog=1024)
        await site.start()
        self._host = host
        self._port = self._runner.addresses[0][1]

    async def close(self) -> None:
        """Close every gateway connection and stop the server."""
        for connection in list(self._connections):
            with suppress(Exception):
                await connection.ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def origin(self) -> str:
        """The server's origin, e.g. http://127.0.0.1:PORT."""
        if self._port is None:
            raise RuntimeError("FakeDiscord is not started")
        return f"http://{self._host}:{self._port}"

    @property
    def api_base(self) -> str:
        """The value for discord.http.Route.BASE."""
        return f"{self.origin}/api/v10"

    @property
    def gateway_url(self) -> str:
        """The value for DiscordWebSocket.DEFAULT_GATEWAY (also sent as url by GET /gateway/bot)."""
        return f"ws://{self._host}:{self._port}/gateway"

    # ---------------------------------------------------------------- world building

    def add_guild(
        self, *, name: str = "Test Server", guild_id: int | None = None, owner_id: int | None = None, bot: bool = True
    ) -> FakeGuild:
        """Add a guild (with @everyone, the bot's managed role and the bot's member).

        `bot=False`: a server the app is not installed in: the bot never hears of it (no GUILD_CREATE, no events,
        no guild commands) and cannot reach its channels; only members' user installs work there.
        """
        # Guild ids come from their own factory so that consecutive guilds land on consecutive shards.
        guild_id = guild_id if guild_id is not None else self._guild_ids.next()
        owner_id = owner_id if owner_id is not None else int(self.owner_user["id"])
        guild = FakeGuild(self, guild_id=guild_id, name=name, owner_id=owner_id, bot=bot)
        if not bot:
            self.guilds_without_bot[guild_id] = guild
            return guild
        self.guilds[guild_id] = guild
        self.commands.setdefault(guild_id, [])
        return guild

    def add_user(self, name: str, *, user_id: int | None = None) -> dict[str, Any]:
        """Add a Discord user who shares no server with the bot (for DMs and group DMs)."""
        user_id = user_id if user_id is not None else self.snowflakes.next()
        user = self.users.get(user_id) or p.user_payload(user_id, name)
        self.users[user_id] = user
        return user

    def enable_user_install(self) -> None:
        """Tick User Install under Installation Contexts in the Developer Portal (application.mdx)."""
        self.installation_contexts.add(p.USER_INSTALL)

    def install_for_user(self, user: FakeMember | dict[str, Any] | int) -> None:
        """The user adds the app to their account (application.mdx, "User Context")."""
        if p.USER_INSTALL not in self.installation_contexts:
            raise ValueError("the app does not support user installs: enable_user_install() first")
        self.user_installs.add(_ref_id(user.user if isinstance(user, FakeMember) else user))

    def open_dm(
        self, user: FakeMember | dict[str, Any] | int, with_user: FakeMember | dict[str, Any] | int | None = None
    ) -> FakePrivateChannel:
        """A DM of `user` with the bot user (context BOT_DM), or with another user (context PRIVATE_CHANNEL)."""
        first = self._user_dict(user)
        second = self.bot_user if with_user is None else self._user_dict(with_user)
        channel = FakePrivateChannel(
            self.snowflakes.next(),
            [first, second] if with_user is not None else [first],
            bot_dm=with_user is None,
            name=None,
        )
        self.private_channels[channel.id] = channel
        return channel

    def add_group_dm(
        self,
        owner: FakeMember | dict[str, Any] | int,
        *others: FakeMember | dict[str, Any] | int,
        name: str = "friends",
    ) -> FakePrivateChannel:
        """A group DM of users (context PRIVATE_CHANNEL; a bot user is never in one)."""
        users = [self._user_dict(owner), *(self._user_dict(other) for other in others)]
        channel = FakePrivateChannel(self.snowflakes.next(), users, bot_dm=False, name=name)
        self.private_channels[channel.id] = channel
        return channel

    def _user_dict(self, ref: FakeMember | dict[str, Any] | int) -> dict[str, Any]:
        if isinstance(ref, FakeMember):
            return ref.user
        user = self.users.get(_ref_id(ref))
        if user is None:
            raise ValueError(f"unknown user {ref!r}: add_user() first")
        return user

    def on_voice_connect(self, callback: VoiceConnectCallback) -> None:
        """Call callback(guild_id, channel_id, session_id, token) whenever the bot joins a voice channel."""
        self._voice_connect_callbacks.append(callback)

    def on_voice_disconnect(self, callback: VoiceDisconnectCallback) -> None:
        """Call callback(guild_id) whenever the bot leaves voice (op 4 with channel_id null)."""
        self._voice_disconnect_callbacks.append(callback)

    def on_member_voice(self, callback: MemberVoiceCallback) -> None:
        """Call callback(guild_id, user_id, channel_id or None) whenever move_member moves a member."""
        self._member_voice_callbacks.append(callback)

    async def voice_server_update(self, guild: FakeGuild, endpoint: str | None = None) -> None:
        """Move the bot's voice connection to another voice server: a new token in VOICE_SERVER_UPDATE.

        Discord sends it when a call's voice server changes; the client reconnects to the (new) endpoint.
        """
        bot_id = int(self.bot_user["id"])
        state = guild.voice_states.get(bot_id)
        if state is None:
            raise KeyError(f"the bot is not in voice in guild {guild.id}")
        session = self._require_session(guild.shard_id)
        token = secrets.token_hex(8)
        for connect_callback in self._voice_connect_callbacks:
            await _maybe_await(connect_callback(guild.id, int(state["channel_id"]), session.session_id, token))
        server = {"token": token, "guild_id": str(guild.id), "endpoint": endpoint or self.voice_endpoint}
        await self._send_dispatch(session, "VOICE_SERVER_UPDATE", server)

    def files_of(self, message: dict[str, Any]) -> list[tuple[str, bytes]]:
        """The (filename, bytes) of a message's attachments, read from the stand-in's CDN."""
        result = []
        for attachment in message.get("attachments") or []:
            stored = self._files.get(int(attachment["id"]))
            if stored is not None:
                result.append((stored[0], stored[1]))
        return result

    def message(self, message_id: int) -> dict[str, Any]:
        """The current state of a stored message."""
        return _public(self.messages[message_id])

    # ---------------------------------------------------------------- waiting

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool], *, timeout: float = 10.0, what: str = "") -> None:
        """Wait until predicate() is true (checked on every change and every 50 ms)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"FakeDiscord: timed out after {timeout}s waiting for {what or predicate}")
            async with self._changed:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), min(remaining, _POLL))

    async def wait_until_connected(self, timeout: float = 10.0) -> None:
        """Wait until every shard got READY and its GUILD_CREATEs."""
        await self.wait_until(
            lambda: all(event.is_set() for event in self.ready.values()), timeout=timeout, what="all shards"
        )

    # ---------------------------------------------------------------- guild events

    async def move_member(
        self,
        guild: FakeGuild,
        member_id: int | FakeMember,
        channel_id: ChannelRef | None,
        *,
        self_deaf: bool | None = None,
    ) -> None:
        """Move a member into a voice channel (or out of voice with None) and dispatch VOICE_STATE_UPDATE.

        A member keeps deafening themselves (`self_deaf`) from channel to channel unless told otherwise; in a
        stage channel everyone starts in the audience, suppressed (stage-instance.mdx, "Definitions": a speaker is
        a participant who is not suppressed).
        """
        member = guild.member(member_id)
        if channel_id is None:
            guild.voice_states.pop(member.id, None)
            state = guild.voice_state_payload(member.id)
        else:
            previous = guild.voice_states.get(member.id, {})
            session_id = previous.get("session_id") or secrets.token_hex(16)
            if member.id == int(self.bot_user["id"]):
                session_id = self._require_guild_session(guild).session_id
            target = _ref_id(channel_id)
            stage = guild.channels.get(target, {}).get("type") == p.CHANNEL_STAGE
            moved = previous.get("channel_id") != str(target)
            guild.voice_states[member.id] = {
                "channel_id": str(target),
                "session_id": session_id,
                "self_mute": bool(previous.get("self_mute")),
                "self_deaf": bool(previous.get("self_deaf")) if self_deaf is None else self_deaf,
                "suppress": stage if moved else bool(previous.get("suppress")),
                "request_to_speak_timestamp": None if moved else previous.get("request_to_speak_timestamp"),
            }
            state = guild.voice_state_payload(member.id)
        await self._dispatch_guild_event(guild, "VOICE_STATE_UPDATE", state)
        for callback in self._member_voice_callbacks:
            await _maybe_await(callback(guild.id, member.id, None if channel_id is None else _ref_id(channel_id)))

    async def set_voice_state(
        self,
        guild: FakeGuild,
        member_id: int | FakeMember,
        *,
        mute: bool | None = None,
        deaf: bool | None = None,
        self_deaf: bool | None = None,
        suppress: bool | None = None,
    ) -> None:
        """A moderator server-mutes or deafens a member, or moves them on a stage; or they deafen themselves.

        Dispatches VOICE_STATE_UPDATE (voice.mdx, "Modify User Voice State": "Fires a Voice State Update"). `mute`
        and `deaf` are the server's and stay with the member (guild.mdx, "Modify Guild Member": only for a member
        in voice, and it fires a Guild Member Update too); `suppress` follows "Modify User Voice State": only on a
        stage; unsuppressed, a member who is not a bot is invited (their request_to_speak_timestamp set to now), a
        bot speaks at once; suppressed, the request is removed.
        """
        member = guild.member(member_id)
        state = guild.voice_states.get(member.id)
        if state is None:
            raise ValueError(f"{member} is not in voice (Discord answers 400)")
        if mute is not None:
            member.mute = mute
        if deaf is not None:
            member.deaf = deaf
        if self_deaf is not None:
            state["self_deaf"] = self_deaf
        if suppress is not None:
            channel = guild.channels.get(int(state["channel_id"]), {})
            if channel.get("type") != p.CHANNEL_STAGE:
                raise ValueError("suppress applies to stage channels only (voice.mdx, Modify User Voice State)")
            state["suppress"] = suppress
            state["request_to_speak_timestamp"] = None if suppress or member.bot else p.iso_now()
        await self._dispatch_guild_event(guild, "VOICE_STATE_UPDATE", guild.voice_state_payload(member.id))
        if mute is not None or deaf is not None:
            await self.announce_member(guild, member, update=True)

    async def time_out(self, guild: FakeGuild, member_id: int | FakeMember, seconds: float | None) -> None:
        """Time a member out for `seconds` (None ends it) and dispatch GUILD_MEMBER_UPDATE.

        guild.mdx, "Modify Guild Member": `communication_disabled_until`, up to 28 days ahead, null to end it; the
        update reaches the member's own bot even without the GUILD_MEMBERS intent (gateway.mdx, "Caveats"). No
        event marks the end of a timeout: it simply expires.
        """
        member = guild.member(member_id)
        if seconds is None:
            member.communication_disabled_until = None
        else:
            member.communication_disabled_until = (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
        await self.announce_member(guild, member, update=True)

    async def delete_channel(self, guild: FakeGuild, channel_id: ChannelRef) -> None:
        """Delete a channel and dispatch CHANNEL_DELETE."""
        channel = guild.channels.pop(_ref_id(channel_id))
        await self._dispatch_guild_event(guild, "CHANNEL_DELETE", copy.deepcopy(channel))

    async def delete_role(self, guild: FakeGuild, role_id: int | dict[str, Any]) -> None:
        """Delete a role (and take it from members) and dispatch GUILD_ROLE_DELETE."""
        role_id = _ref_id(role_id)
        guild.roles.pop(role_id)
        for member in guild.members.values():
            if role_id in member.roles:
                member.roles.remove(role_id)
        await self._dispatch_guild_event(
            guild, "GUILD_ROLE_DELETE", {"guild_id": str(guild.id), "role_id": str(role_id)}
        )

    async def announce_channel(self, guild: FakeGuild, channel_id: ChannelRef) -> None:
        """Dispatch CHANNEL_CREATE for a channel added after the bot connected."""
        await self._dispatch_guild_event(guild, "CHANNEL_CREATE", copy.deepcopy(guild.channels[_ref_id(channel_id)]))

    async def update_channel(self, guild: FakeGuild, channel_id: ChannelRef) -> None:
        """Dispatch CHANNEL_UPDATE with the channel's current state (e.g. after set_permission_overwrite)."""
        await self._dispatch_guild_event(guild, "CHANNEL_UPDATE", copy.deepcopy(guild.channels[_ref_id(channel_id)]))

    async def announce_role(self, guild: FakeGuild, role_id: int | dict[str, Any], *, created: bool = False) -> None:
        """Dispatch GUILD_ROLE_UPDATE (or GUILD_ROLE_CREATE) with the role's current state."""
        role = copy.deepcopy(guild.roles[_ref_id(role_id)])
        event = "GUILD_ROLE_CREATE" if created else "GUILD_ROLE_UPDATE"
        await self._dispatch_guild_event(guild, event, {"guild_id": str(guild.id), "role": role})

    async def announce_member(self, guild: FakeGuild, member: FakeMember, *, update: bool = False) -> None:
        """Dispatch GUILD_MEMBER_ADD (or GUILD_MEMBER_UPDATE) for a member (needs the members intent)."""
        event = "GUILD_MEMBER_UPDATE" if update else "GUILD_MEMBER_ADD"
        await self._dispatch_guild_event(guild, event, {**member.payload(), "guild_id": str(guild.id)})

    async def post_message(
        self,
        guild: FakeGuild,
        channel: ChannelRef,
        author: FakeMember | dict[str, Any],
        content: str,
        *,
        webhook_id: int | None = None,
        mentions: Sequence[FakeMember | dict[str, Any] | int] = (),
        mention_roles: Sequence[dict[str, Any] | int] = (),
        attachments: Sequence[tuple[str, bytes, str]] = (),
        stickers: Sequence[str] = (),
        forward: dict[str, Any] | None = None,
        silent: bool = False,
    ) -> dict[str, Any]:
        """A user (or webhook) posts a message: dispatch MESSAGE_CREATE and return the message.

        `attachments` are (filename, data, content type); `stickers` are the names of the stickers sent with it
        (message.mdx, Create Message: `sticker_ids`, "up to 3"), delivered as `sticker_items` (sticker.mdx, "Sticker
        Item Object"); `forward` is a message posted before (any channel or server), forwarded as message.mdx's
        "Forwards" describe: a `message_reference` of type FORWARD and one `message_snapshots` entry; `silent` is
        `@silent`, the flag SUPPRESS_NOTIFICATIONS.
        """
        channel_id = _ref_id(channel)
        if channel_id not in guild.channels:
            raise ValueError(f"channel {channel_id} is not in {guild}")
        if len(stickers) > p.MAX_STICKERS:
            raise ValueError(f"a message carries at most {p.MAX_STICKERS} stickers (message.mdx, Create Message)")
        member: FakeMember | None = None
        if webhook_id is not None:
            name = author.name if isinstance(author, FakeMember) else author.get("username", "webhook")
            author_user = {
                "id": str(webhook_id),
                "username": name,
                "discriminator": "0000",
                "avatar": None,
                "bot": True,
            }
        elif isinstance(author, FakeMember):
            member = author
            author_user = copy.deepcopy(author.user)
        else:
            author_user = copy.deepcopy(author)
            member = guild.members.get(int(author["id"]))
        message_id = self.snowflakes.next()
        stored_attachments = [
            self._store_file(filename, data, content_type) for filename, data, content_type in attachments
        ]
        user_ids = [_ref_id(m) for m in mentions] + [int(found) for found in p.USER_MENTION.findall(content)]
        role_ids = [_ref_id(r) for r in mention_roles] + [int(found) for found in p.ROLE_MENTION.findall(content)]
        message = self._message_object(
            message_id=message_id,
            guild=guild,
            channel_id=channel_id,
            author=author_user,
            content=content,
            embeds=[],
            components=[],
            attachments=stored_attachments,
            flags=0,
            mentions=self._mention_users(guild, user_ids),
            mention_roles=[str(role_id) for role_id in dict.fromkeys(role_ids) if role_id in guild.roles],
            mention_everyone="@everyone" in content or "@here" in content,
        )
        if webhook_id is not None:
            message["webhook_id"] = str(webhook_id)
        if stickers:
            message["sticker_items"] = [p.sticker_item(self.snowflakes.next(), name) for name in stickers]
        if silent:
            message["flags"] |= p.FLAG_SUPPRESS_NOTIFICATIONS
        if forward is not None:
            message["message_reference"] = {
                "type": p.REFERENCE_FORWARD,
                "message_id": forward["id"],
                "channel_id": forward["channel_id"],
                "guild_id": forward.get("guild_id"),
            }
            message["message_snapshots"] = [{"message": p.message_snapshot(forward)}]
            message["flags"] |= p.FLAG_HAS_SNAPSHOT
        self.messages[message_id] = message
        if not guild.bot_installed:
            return _public(message)  # the bot hears nothing of a server it is not in
        event = _public(message)
        if member is not None:
            event["member"] = member.payload(with_user=False)
        await self._dispatch_guild_event(guild, "MESSAGE_CREATE", event)
        return _public(message)

    def post_private_message(
        self,
        channel: FakePrivateChannel,
        author: FakeMember | dict[str, Any] | int,
        content: str,
        *,
        mentions: Sequence[FakeMember | dict[str, Any] | int] = (),
    ) -> dict[str, Any]:
        """A user posts in a DM or group DM; the bot is not told (it has no DM intent and is in no one else's DM).

        Mentioned users are those of `mentions` and the `<@id>` in the text that Discord knows.
        """
        user = self._user_dict(author)
        if not channel.has(int(user["id"])):
            raise ValueError(f"user {user['id']} is not in {channel}")
        message_id = self.snowflakes.next()
        user_ids = [_ref_id(m.user if isinstance(m, FakeMember) else m) for m in mentions]
        user_ids += [int(found) for found in p.USER_MENTION.findall(content)]
        message = self._message_object(
            message_id=message_id,
            guild=None,
            channel_id=channel.id,
            author=copy.deepcopy(user),
            content=content,
            embeds=[],
            components=[],
            attachments=[],
            flags=0,
            mentions=self._mention_users(None, user_ids),
            mention_roles=[],
            mention_everyone=False,
        )
        self.messages[message_id] = message
        return _public(message)

    def _mention_users(self, guild: FakeGuild | None, user_ids: Sequence[int]) -> list[dict[str, Any]]:
        result = []
        for user_id in dict.fromkeys(user_ids):
            member = guild.members.get(user_id) if guild is not None else None
            user = member.user if member else self.users.get(user_id)
            if user is None:
                continue
            entry = copy.deepcopy(user)
            if member is not None:
                entry["member"] = member.payload(with_user=False)
            result.append(entry)
        return result

    # ---------------------------------------------------------------- interactions

    def registered_command(self, guild: Place, name: str, command_type: int = 1) -> dict[str, Any] | None:
        """The command a member of `guild` (or a DM's user) would find under that default name (the server's own,
        else global)."""
        return self._find_command(guild, name, command_type)[0]

    def _commands_of(self, place: Place) -> list[dict[str, Any]]:
        """The global commands, and the server's own where the bot is in it."""
        own = self.commands.get(place.id, []) if isinstance(place, FakeGuild) and place.bot_installed else []
        return [*self.commands.get("global", []), *own]

    def names_seen(self, guild: Place, locale: str) -> dict[str, str]:
        """Every command and subcommand of `guild` by default path ("settings budget"), as a member with `locale`
        sees it in the client ("einstellungen budget"), fallbacks included (application-commands.mdx)."""
        seen: dict[str, str] = {}
        for command in self._commands_of(guild):
            path, shown = str(command["name"]), p.localized(command, "name", locale)
            seen[path] = shown
            for option in command.get("options") or []:
                if option.get("type") not in (p.OPTION_SUB_COMMAND, p.OPTION_SUB_COMMAND_GROUP):
                    continue
                group_path = f"{path} {option['name']}"
                seen[group_path] = f"{shown} {p.localized(option, 'name', locale)}"
                for child in option.get("options") or []:
                    if child.get("type") == p.OPTION_SUB_COMMAND:
                        child_name = p.localized(child, "name", locale)
                        seen[f"{group_path} {child['name']}"] = f"{seen[group_path]} {child_name}"
        return seen

    def as_seen(self, guild: Place, content: str, locale: str) -> str:
        """A message's text as the client shows it to a member with `locale`: a command mention `</name:id>` of a
        registered command becomes its localized `/name`; one naming no registered command stays as written."""
        ids = {str(command["id"]) for command in self._commands_of(guild)}
        seen = self.names_seen(guild, locale)

        def shown(match: re.Match[str]) -> str:
            path, command_id = match.group(1), match.group(2)
            if command_id not in ids or path not in seen:
                return match.group(0)
            return f"/{seen[path]}"

        return re.sub(r"</([^:<>]+):(\d+)>", shown, content)

    def _find_command(self, guild: Place, name: str, command_type: int) -> tuple[dict[str, Any] | None, bool]:
        if isinstance(guild, FakeGuild) and guild.bot_installed:
            for command in self.commands.get(guild.id, []):
                if command["name"] == name and command.get("type", 1) == command_type:
                    return command, True
        context = guild.context if isinstance(guild, FakePrivateChannel) else p.CONTEXT_GUILD
        for command in self.commands.get("global", []):
            if command["name"] == name and command.get("type", 1) == command_type:
                # application-commands.mdx, "Interaction Contexts": a global command is offered only where its
                # `contexts` allow (GUILD is 0; unset means every context). A guild command's `contexts` is
                # ignored ("only for globally-scoped commands"): it is always offered in its guild.
                contexts = command.get("contexts")
                if contexts is not None and context not in contexts:
                    where = {
                        p.CONTEXT_GUILD: "in servers",
                        p.CONTEXT_BOT_DM: "in the bot's DM",
                        p.CONTEXT_PRIVATE_CHANNEL: "in DMs and group DMs",
                    }[context]
                    self._refuse_if(f"the global command {name!r} is not offered {where} (contexts {contexts})")
                return command, False
        return None, False

    def _surface(
        self,
        place: Place,
        channel: ChannelRef | FakePrivateChannel | None,
        who: FakeMember | dict[str, Any] | int,
        permissions: int | None = None,
    ) -> _Surface:
        """Where an interaction comes from: a server's channel and member, or a DM or group DM and a user."""
        if isinstance(place, FakePrivateChannel):
            if channel is not None and _ref_id(channel) != place.id:
                raise ValueError(f"{place} is its own channel")
            user = self._user_dict(who)
            if not place.has(int(user["id"])):
                raise ValueError(f"user {user['id']} is not in {place}")
            app = p.BOT_DM_APP_PERMISSIONS if place.bot_dm else p.PRIVATE_CHANNEL_APP_PERMISSIONS
            owner_id = int(place.recipients[0]["id"])
            return _Surface(None, place, place.payload(owner_id), None, user, place.context, None, app)
        if channel is None:
            raise ValueError("an interaction in a server needs a channel")
        channel_id = _ref_id(channel)
        channel_data = place.channels.get(channel_id)
        if channel_data is None:
            raise ValueError(f"channel {channel_id} is not in {place}")
        member = place.member(who)
        member_permissions = permissions if permissions is not None else member.permissions_in(channel_id)
        if place.bot_installed:
            app_permissions = place.bot_member.permissions_in(channel_id)
        else:
            # application.mdx, "User Context": a user-installed app is "forced to respect the user's permissions in
            # the surface where the app is being used"; it has no role of its own there.
            app_permissions = member_permissions
        return _Surface(
            place,
            None,
            {**copy.deepcopy(channel_data), "permissions": str(member_permissions)},
            member,
            member.user,
            p.CONTEXT_GUILD,
            member_permissions,
            app_permissions,
        )

    def _owners(
        self, surface: _Surface, command: dict[str, Any] | None, guild_scoped: bool, name: str
    ) -> dict[str, str]:
        """receiving-and-responding.mdx, "Authorizing Integration Owners Object": a key per installation the
        interaction is authorized for, present only where that installation, the surface and the command allow."""
        guild = surface.guild
        if command is None or guild_scoped:
            # A guild command (integration types are "only for globally-scoped commands"), or one never synced.
            if guild is None or not guild.bot_installed:
                raise ValueError(
                    f"{name!r} was never synced globally, so it is not offered in {surface.private or guild}"
                )
            return {str(p.GUILD_INSTALL): str(guild.id)}
        types = command.get("integration_types") or [p.GUILD_INSTALL]
        owners: dict[str, str] = {}
        if p.GUILD_INSTALL in types:
            # "the guild ID if the interaction is triggered from a server", "0" from "a DM with the app's bot user".
            if guild is not None and guild.bot_installed:
                owners[str(p.GUILD_INSTALL)] = str(guild.id)
            elif surface.context == p.CONTEXT_BOT_DM:
                owners[str(p.GUILD_INSTALL)] = "0"
        if p.USER_INSTALL in types and int(surface.user["id"]) in self.user_installs:
            owners[str(p.USER_INSTALL)] = str(surface.user["id"])
        if not owners:
            where = surface.private or guild
            self._refuse_if(
                f"{name!r} is not offered in {where}: neither a server install nor the user's own reaches it"
            )
        return owners

    def _new_interaction(
        self,
        *,
        interaction_type: int,
        surface: _Surface,
        data: dict[str, Any],
        owners: dict[str, str],
        locale: str = "en-US",
        attachment_size_limit: int | None = None,
        message: dict[str, Any] | None = None,
    ) -> FakeInteraction:
        guild = surface.guild
        # The id carries the creation time at Discord, before the delivery delay: the bot reads token ages from it.
        interaction_id = self.snowflakes.at(time.time() - self.delivery_delay)
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": interaction_type,
            "data": data,
            "channel_id": str(surface.channel_id),
            "channel": surface.channel,
            "token": f"itok.{interaction_id}.{secrets.token_urlsafe(24)}",
            "version": 1,
            "app_permissions": str(surface.app_permissions),
            "locale": locale,
            "entitlements": [],
            "authorizing_integration_owners": owners,
            "context": surface.context,
            "attachment_size_limit": (
                attachment_size_limit
                if attachment_size_limit is not None
                else self.upload_limit_of(guild)
                if guild is not None
                else self.upload_limit
            ),
        }
        if guild is not None and surface.member is not None:
            # receiving-and-responding.mdx, Interaction Structure: "guild?: partial guild object"; `member` is sent
            # when invoked in a guild, `user` in a DM. A server without the bot gets the same partial guild.
            payload.update(
                guild_id=str(guild.id),
                guild={"id": str(guild.id), "locale": guild.preferred_locale, "features": []},
                member=surface.member.payload(permissions=surface.permissions),
                guild_locale=guild.preferred_locale,
            )
        else:
            payload["user"] = copy.deepcopy(surface.user)
        if message is not None:
            payload["message"] = message
        interaction = FakeInteraction(self, payload, guild, surface.member, user=surface.user, private=surface.private)
        interaction.forced_ephemeral = (
            interaction.user_install_only
            and surface.context == p.CONTEXT_GUILD
            and not (surface.permissions or 0) & p.USE_EXTERNAL_APPS
        )
        self.interactions[interaction_id] = interaction
        self._interactions_by_token[interaction.token] = interaction
        return interaction

    async def _send_interaction(self, interaction: FakeInteraction) -> FakeInteraction:
        interaction.created_at = self.clock.now() - self.delivery_delay
        # gateway.mdx, "Sharding Formula": an event with a guild_id goes to that guild's shard (a server without the
        # bot too); "Gateway events that do not contain a guild_id will only be sent to the first shard".
        if interaction.guild is not None:
            session = self._require_guild_session(interaction.guild)
        else:
            session = self._require_session(0)
        await self._send_dispatch(session, "INTERACTION_CREATE", interaction.payload)
        return interaction

    async def slash(
        self,
        guild: Place,
        channel: ChannelRef | FakePrivateChannel | None,
        member: FakeMember | dict[str, Any] | int,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        subcommand: str | None = None,
        group: str | None = None,
        attachments: dict[str, tuple[str, bytes, str]] | None = None,
        locale: str = "en-US",
        attachment_size_limit: int | None = None,
        permissions: int | None = None,
        client_checks: bool = True,
    ) -> FakeInteraction:
        """A member runs a slash command; option types come from the synced command when there is one.

        `guild` may be a server (with the bot or without), or a DM or group DM (`channel` is then the same object or
        None, and `member` a user). `attachment_size_limit` defaults to the server's upload limit (its boost tier's);
        a member's Nitro can raise it for their own interactions.
        """
        surface = self._surface(guild, channel, member, permissions)
        command, guild_scoped = self._find_command(guild, name, 1)
        owners = self._owners(surface, command, guild_scoped, name)
        data = self._command_data(
            surface,
            command,
            guild_scoped,
            name,
            options or {},
            subcommand=subcommand,
            group=group,
            attachments=attachments or {},
            focused=None,
            client_checks=client_checks,
            permissions=permissions,
        )
        interaction = self._new_interaction(
            interaction_type=2,
            surface=surface,
            data=data,
            owners=owners,
            locale=locale,
            attachment_size_limit=attachment_size_limit,
        )
        return await self._send_interaction(interaction)

    async def autocomplete(
        self,
        guild: Place,
        channel: ChannelRef | FakePrivateChannel | None,
        member: FakeMember | dict[str, Any] | int,
        name: str,
        options: dict[str, Any],
        focused: str,
        *,
        subcommand: str | None = None,
        group: str | None = None,
        locale: str = "en-US",
        client_checks: bool = True,
    ) -> FakeInteraction:
        """A member types in an autocompleted option (type 4, the focused option marked)."""
        surface = self._surface(guild, channel, member)
        command, guild_scoped = self._find_command(guild, name, 1)
        owners = self._owners(surface, command, guild_scoped, name)
        data = self._command_data(
            surface,
            command,
            guild_scoped,
            name,
            options,
            subcommand=subcommand,
            group=group,
            attachments={},
            focused=focused,
            client_checks=client_checks,
            permissions=None,
        )
        interaction = self._new_interaction(
            interaction_type=4, surface=surface, data=data, owners=owners, locale=locale
        )
        return await self._send_interaction(interaction)

    def _command_data(
        self,
        surface: _Surface,
        command: dict[str, Any] | None,
        guild_scoped: bool,
        name: str,
        options: dict[str, Any],
        *,
        subcommand: str | None,
        group: str | None,
        attachments: dict[str, tuple[str, bytes, str]],
        focused: str | None,
        client_checks: bool,
        permissions: int | None,
    ) -> dict[str, Any]:
        if group is not None and subcommand is None:
            raise ValueError("a group needs a subcommand")
        specs: list[dict[str, Any]] | None = None
        if command is not None:
            specs = command.get("options") or []
            for level_name, level_type in ((group, p.OPTION_SUB_COMMAND_GROUP), (subcommand, p.OPTION_SUB_COMMAND)):
                if level_name is None:
                    continue
                level = next((o for o in specs if o["name"] == level_name and o["type"] == level_type), None)
                if level is None:
                    raise ValueError(f"/{name} has no {'group' if level_type == 2 else 'subcommand'} {level_name!r}")
                specs = level.get("options") or []
        else:
            _log.warning("FakeDiscord: /%s was never synced; inferring option types from the values", name)
        resolved: dict[str, dict[str, Any]] = {}
        built = []
        values = dict(options)
        for option_name, value in values.items():
            spec = None
            if specs is not None:
                spec = next((o for o in specs if o["name"] == option_name), None)
                if spec is None:
                    raise ValueError(f"/{name} has no option {option_name!r}")
            is_focused = option_name == focused
            built.append(
                self._encode_option(surface, option_name, value, spec, resolved, is_focused, client_checks, permissions)
            )
        for option_name, (filename, content, content_type) in attachments.items():
            if specs is not None and not any(o["name"] == option_name and o["type"] == 11 for o in specs):
                raise ValueError(f"/{name} has no attachment option {option_name!r}")
            stored = self._store_file(filename, content, content_type, ephemeral=True)
            resolved.setdefault("attachments", {})[stored["id"]] = stored
            built.append({"name": option_name, "type": p.OPTION_ATTACHMENT, "value": stored["id"]})
        if focused is not None:
            if focused not in values:
                raise ValueError(f"the focused option {focused!r} needs a value in options")
            spec = next((o for o in specs or [] if o["name"] == focused), None)
            if spec is not None and not spec.get("autocomplete"):
                raise ValueError(f"option {focused!r} of /{name} does not autocomplete")
        if specs is not None and client_checks and focused is None:
            given = set(values) | set(attachments)
            missing = [o["name"] for o in specs if o.get("required") and o["name"] not in given]
            if missing:
                self._refuse_if(f"/{name} needs its required options {missing}")
        if subcommand is not None:
            built = [{"name": subcommand, "type": p.OPTION_SUB_COMMAND, "options": built}]
        if group is not None:
            built = [{"name": group, "type": p.OPTION_SUB_COMMAND_GROUP, "options": built}]
        data: dict[str, Any] = {
            "id": command["id"] if command else str(self.snowflakes.next()),
            "name": name,
            "type": 1,
            "options": built,
        }
        if resolved:
            data["resolved"] = resolved
        if (guild_scoped or command is None) and surface.guild is not None:
            # With guild_id, discord.py looks in the guild's commands first, then the global ones.
            data["guild_id"] = str(surface.guild.id)
        return data

    def _encode_option(
        self,
        surface: _Surface,
        name: str,
        value: Any,
        spec: dict[str, Any] | None,
        resolved: dict[str, dict[str, Any]],
        focused: bool,
        client_checks: bool,
        permissions: int | None,
    ) -> dict[str, Any]:
        guild, channel_id = surface.guild, surface.channel_id
        option_type = spec["type"] if spec is not None else _infer_option_type(value)
        option: dict[str, Any] = {"name": name, "type": option_type}
        if focused:
            option["focused"] = True
            option["value"] = value if isinstance(value, str) else str(value)
            if client_checks and spec is not None:
                # The text box itself stops at max_length, so even a partial value cannot be longer.
                self._refuse_if(_length_problem(name, option["value"], spec))
            return option
        if option_type in (p.OPTION_CHANNEL, p.OPTION_ROLE) and guild is None:
            raise ValueError(f"option {name!r}: a DM has no channels or roles to pick")
        if option_type == p.OPTION_STRING:
            option["value"] = str(value)
        elif option_type == p.OPTION_INTEGER:
            option["value"] = int(value)
        elif option_type == p.OPTION_NUMBER:
            option["value"] = float(value)
        elif option_type == p.OPTION_BOOLEAN:
            option["value"] = bool(value)
        elif option_type == p.OPTION_CHANNEL:
            assert guild is not None and surface.member is not None
            target = guild.channels[_ref_id(value)]
            allowed = spec.get("channel_types") if spec else None
            if client_checks and allowed and target["type"] not in allowed:
                raise ValueError(f"option {name!r} only takes channel types {allowed}")
            viewer_permissions = (
                surface.member.permissions_in(int(target["id"])) if permissions is None else permissions
            )
            resolved.setdefault("channels", {})[target["id"]] = {
                **copy.deepcopy(target),
                "permissions": str(viewer_permissions),
            }
            option["value"] = target["id"]
        elif option_type == p.OPTION_ROLE or (
            option_type == p.OPTION_MENTIONABLE and guild is not None and _ref_id(value) in guild.roles
        ):
            assert guild is not None
            role = guild.roles[_ref_id(value)]
            resolved.setdefault("roles", {})[role["id"]] = copy.deepcopy(role)
            option["value"] = role["id"]
        elif option_type in (p.OPTION_USER, p.OPTION_MENTIONABLE):
            user_id = _ref_id(value)
            target_member = guild.members.get(user_id) if guild is not None else None
            user = target_member.user if target_member else self.users.get(user_id)
            if user is None:
                raise ValueError(f"unknown user {user_id} for option {name!r}")
            resolved.setdefault("users", {})[str(user_id)] = copy.deepcopy(user)
            if target_member is not None:
                resolved.setdefault("members", {})[str(user_id)] = target_member.payload(
                    with_user=False, permissions=target_member.permissions_in(channel_id)
                )
            option["value"] = str(user_id)
        else:
            raise ValueError(f"option {name!r} of type {option_type}: pass attachments with attachments=")
        if client_checks and spec is not None:
            self._refuse_if(_option_problem(name, option["value"], spec))
        return option

    def _refuse_if(self, problem: str | None) -> None:
        if problem is not None:
            self.client_refusals.append(problem)
            raise ClientRefused(f"Discord's client would not send this: {problem}")

    async def click(
        self,
        message: dict[str, Any],
        custom_id: str,
        member: FakeMember | dict[str, Any] | int,
        *,
        guild: Place,
        channel: ChannelRef | FakePrivateChannel | None,
        component_type: int = 2,
        values: list[str] | None = None,
        client_checks: bool = True,
    ) -> FakeInteraction:
        """A member presses a button (type 2) or picks in a select (type 3 with values) on a message."""
        message_id = int(message["id"])
        current = _public(self.messages[message_id]) if message_id in self.messages else copy.deepcopy(message)
        surface = self._surface(guild, channel, member)
        if client_checks:
            component = find_component(current, custom_id)
            if component is None:
                raise ValueError(f"message {message_id} has no component {custom_id!r}")
            if component.get("disabled"):
                raise ValueError(f"component {custom_id!r} is disabled")
            if component.get("type") != component_type:
                raise ValueError(f"component {custom_id!r} has type {component.get('type')}, not {component_type}")
            viewer = self._message_viewers.get(message_id)
            if viewer is not None and viewer != int(surface.user["id"]):
                raise ValueError(f"message {message_id} is ephemeral: only user {viewer} sees it")
            if message_id in self.deleted_message_ids:
                raise ValueError(f"message {message_id} was deleted")
            if component_type == 3:
                offered = [option["value"] for option in component.get("options") or []]
                low, high = component.get("min_values", 1), component.get("max_values", 1)
                if not low <= len(values or []) <= high or any(v not in offered for v in values or []):
                    raise ValueError(f"select {custom_id!r} takes {low}-{high} of {offered}, not {values}")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = list(values)
        # receiving-and-responding.mdx, "Authorizing Integration Owners Object": for a component, the installations
        # that authorized the interaction whose message it is.
        metadata = current.get("interaction_metadata") or {}
        owners = metadata.get("authorizing_integration_owners")
        if owners is None:
            if surface.guild is None or not surface.guild.bot_installed:
                raise ValueError(f"message {message_id} was not sent by the app here")
            owners = {str(p.GUILD_INSTALL): str(surface.guild.id)}
        interaction = self._new_interaction(
            interaction_type=3, surface=surface, data=data, owners=dict(owners), message=current
        )
        return await self._send_interaction(interaction)

    async def message_command(
        self,
        guild: Place,
        channel: ChannelRef | FakePrivateChannel | None,
        member: FakeMember | dict[str, Any] | int,
        name: str,
        target_message: dict[str, Any],
    ) -> FakeInteraction:
        """A member uses a message context menu command on a message."""
        target_id = int(target_message["id"])
        target = _public(self.messages[target_id]) if target_id in self.messages else copy.deepcopy(target_message)
        surface = self._surface(guild, channel, member)
        command, guild_scoped = self._find_command(guild, name, 3)
        owners = self._owners(surface, command, guild_scoped, name)
        data: dict[str, Any] = {
            "id": command["id"] if command else str(self.snowflakes.next()),
            "name": name,
            "type": 3,
            "target_id": str(target_id),
            "resolved": {"messages": {str(target_id): target}},
        }
        if (guild_scoped or command is None) and surface.guild is not None:
            data["guild_id"] = str(surface.guild.id)
        interaction = self._new_interaction(interaction_type=2, surface=surface, data=data, owners=owners)
        return await self._send_interaction(interaction)

    async def user_command(
        self,
        guild: FakeGuild,
        channel: ChannelRef,
        member: FakeMember | dict[str, Any] | int,
        name: str,
        target: FakeMember,
    ) -> FakeInteraction:
        """A member uses a user context menu command on another member."""
        surface = self._surface(guild, channel, member)
        command, guild_scoped = self._find_command(guild, name, 2)
        owners = self._owners(surface, command, guild_scoped, name)
        data: dict[str, Any] = {
            "id": command["id"] if command else str(self.snowflakes.next()),
            "name": name,
            "type": 2,
            "target_id": str(target.id),
            "resolved": {
                "users": {str(target.id): copy.deepcopy(target.user)},
                "members": {str(target.id): target.payload(with_user=False, permissions=target.permissions)},
            },
        }
        if guild_scoped or command is None:
            data["guild_id"] = str(guild.id)
        interaction = self._new_interaction(interaction_type=2, surface=surface, data=data, owners=owners)
        return await self._send_interaction(interaction)

    # ---------------------------------------------------------------- HTTP plumbing

    def _route_table(self) -> list[tuple[str, re.Pattern[str], Callable[..., Awaitable[web.StreamResponse]], bool]]:
        app = r"(?P<application_id>\d+)"
        routes: list[tuple[str, str, Callable[..., Awaitable[web.StreamResponse]], bool]] = [
            ("GET", r"/users/@me", self._get_me, True),
            ("GET", r"/users/(?P<user_id>\d+)", self._get_user, True),
            ("GET", r"/oauth2/applications/@me", self._get_application, True),
            ("GET", r"/applications/@me", self._get_application, True),
            ("GET", r"/gateway/bot", self._get_gateway_bot, True),
            ("GET", r"/gateway", self._get_gateway, False),
            ("GET", rf"/applications/{app}(?:/guilds/(?P<guild_id>\d+))?/commands", self._get_commands, True),
            ("PUT", rf"/applications/{app}(?:/guilds/(?P<guild_id>\d+))?/commands", self._put_commands, True),
            ("POST", rf"/applications/{app}(?:/guilds/(?P<guild_id>\d+))?/commands", self._post_command, True),
            (
                "GET",
                rf"/applications/{app}(?:/guilds/(?P<guild_id>\d+))?/commands/(?P<command_id>\d+)",
                self._get_command,
                True,
            ),
            (
                "PATCH",
                rf"/applications/{app}(?:/guilds/(?P<guild_id>\d+))?/commands/(?P<command_id>\d+)",
                self._patch_command,
                True,
            ),
            (
                "DELETE",
                rf"/applications/{app}(?:/guilds/(?P<guild_id>\d+))?/commands/(?P<command_id>\d+)",
                self._delete_command,
                True,
            ),
            ("POST", r"/interactions/(?P<interaction_id>\d+)/(?P<token>[^/]+)/callback", self._callback, False),
            ("POST", rf"/webhooks/{app}/(?P<token>[^/]+)", self._followup, False),
            (
                "GET",
                rf"/webhooks/{app}/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._get_webhook_message,
                False,
            ),
            (
                "PATCH",
                rf"/webhooks/{app}/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._edit_webhook_message,
                False,
            ),
            (
                "DELETE",
                rf"/webhooks/{app}/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._delete_webhook_message,
                False,
            ),
            ("GET", r"/channels/(?P<channel_id>\d+)", self._get_channel, True),
            ("GET", r"/channels/(?P<channel_id>\d+)/messages", self._get_channel_messages, True),
            ("POST", r"/channels/(?P<channel_id>\d+)/messages", self._post_channel_message, True),
            ("GET", r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)", self._get_channel_message, True),
            (
                "PATCH",
                r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)",
                self._edit_channel_message,
                True,
            ),
            (
                "DELETE",
                r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)",
                self._delete_channel_message,
                True,
            ),
            ("POST", r"/channels/(?P<channel_id>\d+)/typing", self._typing, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)", self._get_guild, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/channels", self._get_guild_channels, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/roles", self._get_guild_roles, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/members", self._get_guild_members, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)", self._get_guild_member, True),
            ("PATCH", r"/guilds/(?P<guild_id>\d+)/voice-states/@me", self._patch_my_voice_state, True),
        ]
        return [(method, re.compile(pattern + "$"), handler, auth) for method, pattern, handler, auth in routes]

    async def _read_body(self, request: web.Request) -> tuple[Any, list[_Upload]]:
        uploads: list[_Upload] = []
        if request.content_type.startswith("multipart/"):
            body: Any = None
            reader = await request.multipart()
            position = 0
            async for part in reader:
                if not isinstance(part, aiohttp.BodyPartReader):
                    continue
                if part.name == "payload_json":
                    body = json.loads(await part.text())
                else:
                    match = re.fullmatch(r"files\[(\d+)\]", part.name or "")
                    index = int(match.group(1)) if match else position
                    declared = part.headers.get(aiohttp.hdrs.CONTENT_TYPE)
                    data = bytes(await part.read())
                    uploads.append(_Upload(index, part.filename or f"file{index}", data, declared))
                    position += 1
            return body, uploads
        raw = await request.read()
        if not raw:
            return None, uploads
        try:
            return json.loads(raw), uploads
        except ValueError:
            return raw.decode(errors="replace"), uploads

    async def _rest_handler(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body, uploads = await self._read_body(request)
        record = RecordedRequest(request.method, path, body)
        record.query = dict(request.query)
        record.files = [(upload.filename, upload.data) for upload in uploads]
        record.status = 0
        self.requests.append(record)
        admission = self.rate_limits.admit(request.method, path)
        response: web.StreamResponse
        if admission.refusal is not None:
            response = _json_response(admission.refusal, 429)
        else:
            try:
                response = await self._route(request, path, body, uploads)
            except _DiscordError as error:
                response = error.response()
            except Exception:
                _log.exception("FakeDiscord: the stand-in failed on %s %s", request.method, path)
                # Not a 5xx: discord.py retries those with multi-second sleeps.
                response = _json_response({"message": "FakeDiscord internal error (see log)", "code": 0}, 400)
        response.headers.update(admission.headers)
        record.status = response.status
        if response.status in INVALID_STATUSES and admission.scope != "shared":
            counted = InvalidRequest(request.method, path, response.status, error_code(response), admission.injected)
            self.invalid_requests.append(counted)
        await self._notify()
        return response

    def wasted_requests(self) -> list[InvalidRequest]:
        """The 401, 403 and 429 answers the bot could have avoided (every counted one but the 429s asked for)."""
        return [entry for entry in self.invalid_requests if not entry.injected]

    async def _route(self, request: web.Request, path: str, body: Any, uploads: list[_Upload]) -> web.StreamResponse:
        for method, pattern, handler, auth in self._routes:
            match = pattern.match(path)
            if match is None or method != request.method:
                continue
            if auth and request.headers.get("Authorization") != f"Bot {self.token}":
                raise _DiscordError(401, 0, "401: Unauthorized")
            return await handler(request=request, body=body, uploads=uploads, **match.groupdict())
        self.unknown_routes.append((request.method, path))
        _log.warning("FakeDiscord: NO ROUTE for %s %s: add it to the stand-in", request.method, path)
        raise _DiscordError(404, 0, "Unknown route")

    async def _unknown_handler(self, request: web.Request) -> web.StreamResponse:
        self.unknown_routes.append((request.method, request.path))
        _log.warning("FakeDiscord: NO ROUTE for %s %s", request.method, request.path)
        return _json_response({"message": "Unknown route", "code": 0}, 404)

    async def _cdn_handler(self, request: web.Request) -> web.StreamResponse:
        stored = self._files.get(int(request.match_info["attachment_id"]))
        if stored is None or stored[0] != request.match_info["filename"]:
            return web.Response(status=404, text="not found")
        # Streamed a slice at a time: one write of a 100 MB attachment would hold the event loop, which the bot
        # shares with this stand-in, for a good part of a second (real Discord serves it from elsewhere).
        data = memoryview(stored[1])
        response = web.StreamResponse(headers={"Content-Type": stored[2]})
        response.content_length = len(data)
        await response.prepare(request)
        hold = self.cdn_holds.get(stored[0])
        for start in range(0, len(data), _CDN_SLICE_BYTES):
            await response.write(data[start : start + _CDN_SLICE_BYTES])
            if hold is not None:
                await hold.wait()
        await response.write_eof()
        return response

    # ---------------------------------------------------------------- REST: identity and gateway

    async def _get_me(self, **_: Any) -> web.StreamResponse:
        return _json_response({**self.bot_user, "verified": True, "mfa_enabled": False})

    async def _get_user(self, *, user_id: str, **_: Any) -> web.StreamResponse:
        user = self.users.get(int(user_id))
        if user is None:
            raise _DiscordError(404, 10013, "Unknown User")
        return _json_response(user)

    async def _get_application(self, **_: Any) -> web.StreamResponse:
        return _json_response(
            {
                "id": str(self.application_id),
                "name": self.bot_user["username"],
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "owner": self.owner_user,
                "team": None,
                "flags": self._application_flags(),
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "approximate_guild_count": len(self.guilds),
                "approximate_user_install_count": len(self.user_installs),
                # application.mdx, Application Object: the default install settings per supported installation
                # context ("0" guild install, "1" user install).
                "integration_types_config": {
                    str(kind): {"oauth2_install_params": {"scopes": ["applications.commands"], "permissions": "0"}}
                    if kind == p.USER_INSTALL
                    else {
                        "oauth2_install_params": {
                            "scopes": ["applications.commands", "bot"],
                            "permissions": str(p.DEFAULT_BOT_PERMISSIONS),
                        }
                    }
                    for kind in sorted(self.installation_contexts)
                },
                "bot": self.bot_user,
            }
        )

    async def _get_gateway_bot(self, **_: Any) -> web.StreamResponse:
        return _json_response(
            {
                "url": self.gateway_url,
                "shards": self.shard_count,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
            }
        )

    async def _get_gateway(self, **_: Any) -> web.StreamResponse:
        return _json_response({"url": self.gateway_url})

    # ---------------------------------------------------------------- REST: commands

    def _command_scope(self, application_id: str, guild_id: str | None) -> int | str:
        if int(application_id) != self.application_id:
            raise _DiscordError(403, 50001, "Missing Access")
        if guild_id is None:
            return "global"
        if int(guild_id) not in self.guilds:
            raise _DiscordError(403, 50001, "Missing Access")
        return int(guild_id)

    def _stored_command(self, scope: int | str, payload: dict[str, Any], existing_id: str | None) -> dict[str, Any]:
        command = _normalise_command(copy.deepcopy(payload))
        command["id"] = existing_id or str(self.snowflakes.next())
        command["application_id"] = str(self.application_id)
        command["version"] = str(self.snowflakes.next())
        if scope != "global":
            command["guild_id"] = str(scope)
        elif command.get("integration_types") is None:
            # application-commands.mdx: integration_types "Defaults to your app's configured contexts".
            command["integration_types"] = sorted(self.installation_contexts)
        return command

    def _check_install_types(self, scope: int | str, commands: list[dict[str, Any]]) -> None:
        """application-commands.mdx, "Installation Context": a command's integration_types may hold a type only "as
        long as any included contexts are already supported on the application-level" (the Developer Portal's
        Installation Contexts). Discord's error code for it is not documented: a form error on the field here."""
        if scope != "global":
            return  # "only for globally-scoped commands": ignored on a guild command
        errors: dict[str, Any] = {}
        for index, command in enumerate(commands):
            unsupported = [
                kind for kind in command.get("integration_types") or [] if kind not in self.installation_contexts
            ]
            if unsupported:
                errors[str(index)] = {
                    "integration_types": {
                        "_errors": [
                            {
                                "code": "APPLICATION_COMMAND_INTEGRATION_TYPES_UNSUPPORTED",
                                "message": f"Installation contexts {unsupported} are not enabled for this application.",
                            }
                        ]
                    }
                }
        if errors:
            raise _invalid_form(errors)

    async def _get_commands(self, *, application_id: str, guild_id: str | None, **_: Any) -> web.StreamResponse:
        return _json_response(self.commands.get(self._command_scope(application_id, guild_id), []))

    async def _put_commands(
        self, *, application_id: str, guild_id: str | None, body: Any, **_: Any
    ) -> web.StreamResponse:
        scope = self._command_scope(application_id, guild_id)
        if not isinstance(body, list):
            raise _invalid_form({"_errors": [{"code": "LIST_TYPE_CONVERT", "message": "Must be a list"}]})
        errors = p.validate_commands(body)
        if errors:
            raise _invalid_form(errors)
        self._check_install_types(scope, body)
        self._check_caps(body)
        old = {(c["name"], c.get("type", 1)): c["id"] for c in self.commands.get(scope, [])}
        self._count_creates(scope, sum(1 for item in body if (item["name"], item.get("type", 1)) not in old))
        self.commands[scope] = [
            self._stored_command(scope, item, old.get((item["name"], item.get("type", 1)))) for item in body
        ]
        return _json_response(self.commands[scope])

    async def _post_command(
        self, *, application_id: str, guild_id: str | None, body: Any, **_: Any
    ) -> web.StreamResponse:
        scope = self._command_scope(application_id, guild_id)
        errors = p.validate_commands([body])
        if errors:
            raise _invalid_form(errors)
        self._check_install_types(scope, [body])
        current = self.commands.setdefault(scope, [])
        key = (body["name"], body.get("type", 1))
        existing = next((c for c in current if (c["name"], c.get("type", 1)) == key), None)
        if existing is None:
            self._check_caps([*current, body])
            self._count_creates(scope, 1)
        command = self._stored_command(scope, body, existing["id"] if existing else None)
        if existing is not None:
            current[current.index(existing)] = command
        else:
            current.append(command)
        return _json_response(command, 200 if existing else 201)

    def _check_caps(self, commands: list[dict[str, Any]]) -> None:
        cap = p.over_command_caps(commands)
        if cap is not None:
            raise _DiscordError(400, 30032, f"Maximum number of application commands reached ({cap})")

    def _count_creates(self, scope: int | str, created: int) -> None:
        """application-commands.mdx: at most 200 command creates per day per guild; past that, 429 code 30034."""
        if scope == "global" or not created:
            return
        now = time.monotonic()
        history = self._command_creates.setdefault(scope, deque())
        while history and history[0] <= now - 86400:
            history.popleft()
        if len(history) + created > p.DAILY_COMMAND_CREATES:
            retry_after = history[0] + 86400 - now if history else 86400.0
            raise _DiscordError(
                429,
                30034,
                "Max number of daily application command creates has been reached (200)",
                retry_after=retry_after,
            )
        history.extend([now] * created)

    def _command_by_id(self, scope: int | str, command_id: str) -> dict[str, Any]:
        for command in self.commands.get(scope, []):
            if command["id"] == command_id:
                return command
        raise _DiscordError(404, 10063, "Unknown application command")

    async def _get_command(
        self, *, application_id: str, guild_id: str | None, command_id: str, **_: Any
    ) -> web.StreamResponse:
        return _json_response(self._command_by_id(self._command_scope(application_id, guild_id), command_id))

    async def _patch_command(
        self, *, application_id: str, guild_id: str | None, command_id: str, body: Any, **_: Any
    ) -> web.StreamResponse:
        scope = self._command_scope(application_id, guild_id)
        command = self._command_by_id(scope, command_id)
        merged = {**command, **body}
        errors = p.validate_commands([merged])
        if errors:
            raise _invalid_form(errors)
        self._check_install_types(scope, [merged])
        command.update(_normalise_command(merged))
        return _json_response(command)

    async def _delete_command(
        self, *, application_id: str, guild_id: str | None, command_id: str, **_: Any
    ) -> web.StreamResponse:
        scope = self._command_scope(application_id, guild_id)
        command = self._command_by_id(scope, command_id)
        self.commands[scope].remove(command)
        return web.Response(status=204)

    # ---------------------------------------------------------------- messages

    def _store_file(
        self, filename: str, data: bytes, content_type: str | None, *, ephemeral: bool = False
    ) -> dict[str, Any]:
        attachment_id = self.snowflakes.next()
        content_type = content_type or p.guess_content_type(filename)
        self._files[attachment_id] = (filename, data, content_type)
        url = f"{self.origin}/cdn/attachments/{attachment_id}/{filename}"
        return p.attachment_payload(attachment_id, filename, len(data), url, content_type, ephemeral=ephemeral)

    def _message_object(
        self,
        *,
        message_id: int,
        guild: FakeGuild | None,
        channel_id: int,
        author: dict[str, Any],
        content: str,
        embeds: list[dict[str, Any]],
        components: list[dict[str, Any]],
        attachments: list[dict[str, Any]],
        flags: int,
        mentions: list[dict[str, Any]],
        mention_roles: list[str],
        mention_everyone: bool,
        message_type: int = 0,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "id": str(message_id),
            "type": message_type,
            "channel_id": str(channel_id),
            "author": author,
            "content": content,
            "timestamp": p.iso_now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": mention_everyone,
            "mentions": mentions,
            "mention_roles": mention_roles,
            "attachments": attachments,
            "embeds": embeds,
            "components": components,
            "reactions": [],
            "pinned": False,
            "flags": flags,
        }
        if guild is not None:  # message.mdx: a DM's messages carry no guild_id
            message["guild_id"] = str(guild.id)
        return message

    def upload_limit_of(self, guild: FakeGuild) -> int:
        """The most bytes an attachment may have in this server: the default limit, or its boost tier's."""
        if guild.premium_tier >= 2:  # tiers 0 and 1 keep the default (which a test may lower)
            return max(self.upload_limit, p.BOOST_TIER_UPLOAD_LIMITS[guild.premium_tier])
        return self.upload_limit

    def _check_uploads(self, uploads: list[_Upload], limit: int) -> None:
        for upload in uploads:
            if len(upload.data) > limit:
                raise _DiscordError(413, 40005, "Request entity too large")

    def _attachments_from(
        self,
        body: dict[str, Any],
        uploads: list[_Upload],
        existing: list[dict[str, Any]],
        *,
        ephemeral: bool,
        editing: bool = False,
        voice: bool = False,
    ) -> list[dict[str, Any]]:
        by_index = {upload.index: upload for upload in uploads}
        used: set[int] = set()
        existing_by_id = {attachment["id"]: attachment for attachment in existing}
        if "attachments" not in body:
            result = list(existing)
        else:
            result = []
            for entry in body.get("attachments") or []:
                entry_id = str(entry.get("id"))
                if entry_id in existing_by_id:
                    result.append(existing_by_id[entry_id])
                elif entry_id.isdigit() and int(entry_id) in by_index:
                    upload = by_index[int(entry_id)]
                    used.add(upload.index)
                    stored = self._store_file(
                        entry.get("filename") or upload.filename, upload.data, None, ephemeral=ephemeral
                    )
                    if entry.get("description"):
                        stored["description"] = entry["description"]
                    if voice:
                        # message.mdx, attachment object: `duration_secs` and `waveform` (for voice messages).
                        stored["duration_secs"] = entry["duration_secs"]
                        stored["waveform"] = entry["waveform"]
                    result.append(stored)
        if editing and "attachments" in body:
            # message.mdx, "Edit Message": since API v10 `attachments` lists every attachment the message keeps,
            # "including retained and new" ones: an upload it does not list is dropped.
            return result
        for upload in uploads:
            if upload.index not in used:
                result.append(self._store_file(upload.filename, upload.data, None, ephemeral=ephemeral))
        return result

    def _check_automod(self, guild: FakeGuild | None, channel_id: int, content: str) -> None:
        # auto-moderation.mdx, BLOCK_MESSAGE: the message is never posted; the sender gets 400, code 200000
        # (opcodes-and-status-codes.mdx), an edit of a deferred reply included (change-log.mdx, June 27, 2024).
        # A DM has no AutoMod; in a server without the bot, the app's answer has no roles to be exempt by.
        if guild is None or not content:
            return
        author = guild.bot_member if guild.bot_installed else FakeMember(guild, self.bot_user)
        if guild.automod_blocks(content, channel_id, author):
            raise _DiscordError(400, 200000, "Message was blocked by automatic moderation")

    def _resolve_mentions(
        self, guild: FakeGuild | None, content: str, allowed: dict[str, Any] | None
    ) -> dict[str, Any]:
        parse = allowed.get("parse", []) if allowed is not None else ["users", "roles", "everyone"]
        allowed_users = {int(u) for u in (allowed or {}).get("users", [])}
        allowed_roles = {int(r) for r in (allowed or {}).get("roles", [])}
        users = [int(u) for u in p.USER_MENTION.findall(content)]
        roles = [int(r) for r in p.ROLE_MENTION.findall(content)]
        pinged_users = [u for u in users if "users" in parse or u in allowed_users]
        pinged_roles = [
            r for r in roles if ("roles" in parse or r in allowed_roles) and guild is not None and r in guild.roles
        ]
        return {
            "mentions": self._mention_users(guild, pinged_users),
            "mention_roles": [str(r) for r in dict.fromkeys(pinged_roles)],
            "mention_everyone": "everyone" in parse and ("@everyone" in content or "@here" in content),
        }

    def _create_message(
        self,
        *,
        guild: FakeGuild | None,
        channel_id: int,
        body: dict[str, Any],
        uploads: list[_Upload],
        flags: int,
        message_type: int = 0,
        interaction: FakeInteraction | None = None,
        error_prefix: str = "",
    ) -> dict[str, Any]:
        errors = p.validate_message(body, error_prefix)
        if errors:
            raise _invalid_form(errors)
        content = body.get("content") or ""
        embeds = body.get("embeds") or []
        components = body.get("components") or []
        voice = bool(flags & p.FLAG_VOICE_MESSAGE)
        if voice:
            refused = p.voice_message_refusal(body, [(upload.index, upload.content_type) for upload in uploads])
            if refused is not None:
                raise _DiscordError(400, *refused)
        self._check_automod(guild, channel_id, content)
        if not (content or embeds or uploads or components or body.get("sticker_ids") or body.get("poll")) and not (
            flags & p.FLAG_LOADING
        ):
            raise _DiscordError(400, 50006, "Cannot send an empty message")
        ephemeral = bool(flags & p.FLAG_EPHEMERAL)
        message_id = self.snowflakes.next()
        message = self._message_object(
            message_id=message_id,
            guild=guild,
            channel_id=channel_id,
            author=copy.deepcopy(self.bot_user),
            content=content,
            embeds=embeds,
            components=components,
            attachments=self._attachments_from(body, uploads, [], ephemeral=ephemeral, voice=voice),
            flags=flags,
            message_type=message_type,
            **self._resolve_mentions(guild, content, body.get("allowed_mentions")),
        )
        message["payload"] = body
        message["files"] = self.files_of(message)
        if interaction is not None:
            message["webhook_id"] = str(self.application_id)
            message["application_id"] = str(self.application_id)
            message["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": copy.deepcopy(interaction.user),
                "authorizing_integration_owners": dict(interaction.owners),
            }
            if ephemeral:
                self._message_viewers[message_id] = int(interaction.user["id"])
        self.messages[message_id] = message
        return message

    def _edit_message(
        self, message: dict[str, Any], body: dict[str, Any], uploads: list[_Upload], *, error_prefix: str = ""
    ) -> None:
        if message["flags"] & p.FLAG_VOICE_MESSAGE:
            # message.mdx, "Voice Messages": "They cannot be edited" (50162), by any route.
            raise _DiscordError(400, *p.VOICE_NOT_EDITABLE)
        errors = p.validate_message(body, error_prefix)
        if errors:
            raise _invalid_form(errors)
        guild = self._guild_of(message)
        ephemeral = bool(message["flags"] & p.FLAG_EPHEMERAL)
        content = message["content"]
        if "content" in body:
            content = body["content"] or ""
            self._check_automod(guild, int(message["channel_id"]), content)
        embeds = (body.get("embeds") or []) if "embeds" in body else message["embeds"]
        components = (body.get("components") or []) if "components" in body else message["components"]
        attachments = self._attachments_from(body, uploads, message["attachments"], ephemeral=ephemeral, editing=True)
        if not (content or embeds or attachments or components):
            raise _DiscordError(400, 50006, "Cannot send an empty message")
        message["content"] = content
        message["embeds"] = embeds
        message["components"] = components
        message["attachments"] = attachments
        if "allowed_mentions" in body or "content" in body:
            message.update(self._resolve_mentions(guild, content, body.get("allowed_mentions")))
        kept_flags = p.FLAG_EPHEMERAL | p.FLAG_COMPONENTS_V2
        new_flags = (body.get("flags") or 0) & (p.FLAG_SUPPRESS_EMBEDS | p.FLAG_COMPONENTS_V2)
        message["flags"] = (message["flags"] & kept_flags) | new_flags
        message["edited_timestamp"] = p.iso_now()
        message["payload"] = body
        message["files"] = self.files_of(message)

    async def _announce(self, event: str, message: dict[str, Any]) -> None:
        if message["flags"] & p.FLAG_EPHEMERAL:
            return
        # The bot hears of messages in its servers only (it has no DM intent, and is in no one else's DMs).
        guild = self.guilds.get(int(message.get("guild_id") or 0))
        if guild is None or self._session_for_guild(guild) is None:
            return
        if event == "MESSAGE_DELETE":
            data = {"id": message["id"], "channel_id": message["channel_id"], "guild_id": message["guild_id"]}
        else:
            data = _public(message)
            data["member"] = guild.bot_member.payload(with_user=False)
        await self._dispatch_guild_event(guild, event, data)

    def _find_channel(self, channel_id: int) -> tuple[FakeGuild, dict[str, Any]]:
        for guild in self.guilds.values():
            channel = guild.channels.get(channel_id)
            if channel is not None:
                return guild, channel
        # A server the app is not installed in, or a DM or group DM of users: the bot user has no access there
        # (opcodes-and-status-codes.mdx, 50001 "Missing access"); a user install answers only through interactions.
        # (The bot's own DM is not modelled as a channel: the bot never posts there.)
        if channel_id in self.private_channels or any(
            channel_id in guild.channels for guild in self.guilds_without_bot.values()
        ):
            raise _DiscordError(403, 50001, "Missing Access")
        raise _DiscordError(404, 10003, "Unknown Channel")

    def _guild_of(self, message: dict[str, Any]) -> FakeGuild | None:
        """The server a message is in (with the bot or without), or None in a DM."""
        guild_id = int(message.get("guild_id") or 0)
        return self.guilds.get(guild_id) or self.guilds_without_bot.get(guild_id)

    def _channel_message(self, channel_id: int, message_id: int) -> dict[str, Any]:
        self._find_channel(channel_id)  # 403 where the bot has no access
        message = self.messages.get(message_id)
        if (
            message is None
            or message_id in self.deleted_message_ids
            or int(message["channel_id"]) != channel_id
            or message["flags"] & p.FLAG_EPHEMERAL
        ):
            raise _DiscordError(404, 10008, "Unknown Message")
        return message

    async def _get_channel(self, *, channel_id: str, **_: Any) -> web.StreamResponse:
        _guild, channel = self._find_channel(int(channel_id))
        return _json_response(channel)

    def _check_reading(self, channel_id: int, *, history: bool) -> bool:
        """message.mdx, "Get Channel Messages" and "Get Channel Message": View Channel (and Connect in a voice
        channel's chat) or 403; whether the bot has Read Message History, which one message needs too and without
        which the list is empty."""
        guild, channel = self._find_channel(channel_id)
        permissions = guild.bot_member.permissions_in(channel_id)
        needed = p.VIEW_CHANNEL | (p.CONNECT if channel["type"] in p.VOICE_CHANNEL_TYPES else 0)
        if permissions & needed != needed:
            raise _DiscordError(403, 50001, "Missing Access")
        if history and not permissions & p.READ_MESSAGE_HISTORY:
            raise _DiscordError(403, 50013, "Missing Permissions")
        return bool(permissions & p.READ_MESSAGE_HISTORY)

    async def _get_channel_messages(self, *, request: web.Request, channel_id: str, **_: Any) -> web.StreamResponse:
        if not self._check_reading(int(channel_id), history=False):
            return _json_response([])
        limit = int(request.query.get("limit", "50"))
        found = [
            _public(message)
            for message_id, message in self.messages.items()
            if int(message["channel_id"]) == int(channel_id)
            and message_id not in self.deleted_message_ids
            and not message["flags"] & p.FLAG_EPHEMERAL
        ]
        return _json_response(list(reversed(found))[:limit])

    async def _post_channel_message(
        self, *, channel_id: str, body: Any, uploads: list[_Upload], **_: Any
    ) -> web.StreamResponse:
        guild, _channel = self._find_channel(int(channel_id))
        body = body if isinstance(body, dict) else {}
        # message.mdx, "Create Message": IS_VOICE_MESSAGE is one of the flags it takes.
        flags = (body.get("flags") or 0) & (
            p.FLAG_SUPPRESS_EMBEDS | p.FLAG_SUPPRESS_NOTIFICATIONS | p.FLAG_VOICE_MESSAGE | p.FLAG_COMPONENTS_V2
        )
        voice = bool(flags & p.FLAG_VOICE_MESSAGE)
        permissions = guild.bot_member.permissions_in(int(channel_id))
        # A voice message needs Send Voice Messages (permissions.mdx) where a file needs Attach Files.
        needed = p.VIEW_CHANNEL | p.SEND_MESSAGES | (p.ATTACH_FILES if uploads and not voice else 0)
        if permissions & needed != needed:
            raise _DiscordError(403, 50013, "Missing Permissions")
        if voice and not permissions & p.SEND_VOICE_MESSAGES:
            raise _DiscordError(403, *p.VOICE_NOT_HERE)
        self._check_uploads(uploads, self.upload_limit_of(guild))
        message = self._create_message(guild=guild, channel_id=int(channel_id), body=body, uploads=uploads, flags=flags)
        self.channel_messages.setdefault(int(channel_id), []).append(message)
        await self._announce("MESSAGE_CREATE", message)
        return _json_response(_public(message))

    async def _get_channel_message(self, *, channel_id: str, message_id: str, **_: Any) -> web.StreamResponse:
        self._check_reading(int(channel_id), history=True)
        return _json_response(_public(self._channel_message(int(channel_id), int(message_id))))

    async def _edit_channel_message(
        self, *, channel_id: str, message_id: str, body: Any, uploads: list[_Upload], **_: Any
    ) -> web.StreamResponse:
        message = self._channel_message(int(channel_id), int(message_id))
        if message["author"]["id"] != self.bot_user["id"]:
            raise _DiscordError(403, 50005, "Cannot edit a message authored by another user")
        self._check_uploads(uploads, self.upload_limit_of(self.guilds[int(message["guild_id"])]))
        self._edit_message(message, body if isinstance(body, dict) else {}, uploads)
        await self._announce("MESSAGE_UPDATE", message)
        return _json_response(_public(message))

    async def _delete_channel_message(self, *, channel_id: str, message_id: str, **_: Any) -> web.StreamResponse:
        message = self._channel_message(int(channel_id), int(message_id))
        guild = self.guilds[int(message["guild_id"])]
        if message["author"]["id"] != self.bot_user["id"]:
            if not guild.bot_member.permissions_in(int(channel_id)) & p.MANAGE_MESSAGES:
                raise _DiscordError(403, 50013, "Missing Permissions")
        self._delete(message)
        await self._announce("MESSAGE_DELETE", message)
        return web.Response(status=204)

    def _delete(self, message: dict[str, Any]) -> None:
        message_id = int(message["id"])
        self.deleted_message_ids.add(message_id)
        sent = self.channel_messages.get(int(message["channel_id"]), [])
        if message in sent:
            sent.remove(message)

    async def _typing(self, **_: Any) -> web.StreamResponse:
        return web.Response(status=204)

    # ---------------------------------------------------------------- REST: guilds

    def _guild(self, guild_id: str) -> FakeGuild:
        guild = self.guilds.get(int(guild_id))
        if guild is None:
            raise _DiscordError(404, 10004, "Unknown Guild")
        return guild

    async def _get_guild(self, *, guild_id: str, **_: Any) -> web.StreamResponse:
        data = self._guild(guild_id).create_payload(0)
        for key in ("channels", "members", "voice_states", "threads", "presences", "joined_at", "large"):
            data.pop(key, None)
        return _json_response(data)

    async def _get_guild_channels(self, *, guild_id: str, **_: Any) -> web.StreamResponse:
        return _json_response(list(self._guild(guild_id).channels.values()))

    async def _get_guild_roles(self, *, guild_id: str, **_: Any) -> web.StreamResponse:
        return _json_response(list(self._guild(guild_id).roles.values()))

    async def _get_guild_members(self, *, request: web.Request, guild_id: str, **_: Any) -> web.StreamResponse:
        limit = int(request.query.get("limit", "1"))
        members = list(self._guild(guild_id).members.values())[:limit]
        return _json_response([member.payload() for member in members])

    async def _get_guild_member(self, *, guild_id: str, user_id: str, **_: Any) -> web.StreamResponse:
        member = self._guild(guild_id).members.get(int(user_id))
        if member is None:
            raise _DiscordError(404, 10007, "Unknown Member")
        return _json_response(member.payload())

    async def _patch_my_voice_state(self, *, guild_id: str, body: Any, **_: Any) -> web.StreamResponse:
        """voice.mdx, "Modify Current User Voice State", with its caveats; 204 and a VOICE_STATE_UPDATE.

        The channel must be a stage the bot is in; unsuppressing itself needs MUTE_MEMBERS ("You can always
        suppress yourself"); requesting to speak needs REQUEST_TO_SPEAK ("You can always clear your own request"),
        at "any present or future time".
        """
        guild = self._guild(guild_id)
        body = body if isinstance(body, dict) else {}
        me = guild.bot_member
        current = guild.voice_channel_of(me.id)
        channel_id = int(body["channel_id"]) if body.get("channel_id") is not None else current
        channel = guild.channels.get(channel_id) if channel_id is not None else None
        if channel is None:
            raise _DiscordError(404, 10003, "Unknown Channel")
        if channel["type"] != p.CHANNEL_STAGE:
            raise _DiscordError(400, 50024, "Cannot execute action on this channel type")
        if current != channel_id:
            raise _DiscordError(404, 10065, "Unknown voice state")
        permissions = me.permissions_in(channel_id)
        suppress = body.get("suppress")
        if suppress is False and not permissions & p.MUTE_MEMBERS:
            raise _DiscordError(403, 50013, "Missing Permissions")
        requested = body.get("request_to_speak_timestamp")
        if requested is not None:
            if not permissions & p.REQUEST_TO_SPEAK:
                raise _DiscordError(403, 50013, "Missing Permissions")
            when = p.parse_timestamp(requested)
            # "Present" allows for the request's own time on the way.
            if when is None or when < datetime.now(UTC) - timedelta(seconds=60):
                raise _invalid_form(
                    {"request_to_speak_timestamp": {"_errors": [{"code": "BASE_TYPE_BAD_TIME", "message": "Invalid"}]}}
                )
        state = guild.voice_states[me.id]
        if isinstance(suppress, bool):
            state["suppress"] = suppress
        if "request_to_speak_timestamp" in body:
            state["request_to_speak_timestamp"] = requested
        if self._session_for_guild(guild) is not None:
            await self._dispatch_guild_event(guild, "VOICE_STATE_UPDATE", guild.voice_state_payload(me.id))
        return web.Response(status=204)

    # ---------------------------------------------------------------- REST: interaction responses

    def _interaction_for_token(self, token: str, application_id: str | None = None) -> FakeInteraction:
        interaction = self._interactions_by_token.get(token)
        if interaction is None or (application_id is not None and int(application_id) != self.application_id):
            raise _DiscordError(404, 10015, "Unknown Webhook")
        return interaction

    def _check_token(self, interaction: FakeInteraction) -> None:
        """Refuse a webhook call with an interaction token older than 15 minutes, as Discord does."""
        if self.clock.now() - interaction.created_at > self.token_lifetime:
            raise _DiscordError(401, 50027, "Invalid Webhook Token")

    async def _record(self, interaction: FakeInteraction, response: Response) -> None:
        interaction.responses.append(response)
        await self._notify()

    async def _callback(
        self, *, interaction_id: str, token: str, body: Any, uploads: list[_Upload], **_: Any
    ) -> web.StreamResponse:
        interaction = self._interactions_by_token.get(token)
        if interaction is None or interaction.id != int(interaction_id):
            raise _DiscordError(404, 10062, "Unknown interaction")
        body = body if isinstance(body, dict) else {}
        callback_type = body.get("type")
        response = Response(
            kind="callback",
            type=callback_type,
            json=body,
            files=[(u.filename, u.data) for u in uploads],
            at=self.clock.now(),
        )
        try:
            answer = await self._apply_callback(interaction, callback_type, body.get("data") or {}, uploads, response)
        except _DiscordError as error:
            response.status, response.error = error.status, error.body()
            await self._record(interaction, response)
            raise
        await self._record(interaction, response)
        return answer

    async def _apply_callback(
        self,
        interaction: FakeInteraction,
        callback_type: Any,
        data: dict[str, Any],
        uploads: list[_Upload],
        response: Response,
    ) -> web.StreamResponse:
        age = self.clock.now() - interaction.created_at
        late = self.callback_deadline is not None and age > self.callback_deadline
        if age > self.token_lifetime or (late and interaction.callback_type is None):
            # Not acknowledged within 3 s (or older than its token): Discord has forgotten the interaction.
            raise _DiscordError(404, 10062, "Unknown interaction")
        if interaction.callback_type is not None:
            raise _DiscordError(400, 40060, "Interaction has already been acknowledged.")
        allowed = {2: (4, 5, 9), 3: (4, 5, 6, 7, 9), 4: (8,), 5: (4, 5, 6, 7)}[interaction.type]
        if callback_type not in allowed:
            raise _invalid_form(
                {"type": {"_errors": [{"code": "INTERACTION_RESPONSE_TYPE_INVALID", "message": "Invalid type"}]}}
            )
        guild = interaction.guild
        message: dict[str, Any] | None = None
        if callback_type in (4, 5, 7):
            self._check_uploads(uploads, interaction.attachment_size_limit)
        # change-log.mdx (June 27, 2024): without Use External Apps, a user install's answers are ephemeral.
        forced = p.FLAG_EPHEMERAL if interaction.forced_ephemeral else 0
        if callback_type == 4:
            # receiving-and-responding.mdx, "Messages": a type 4 response may set IS_VOICE_MESSAGE.
            flags = forced | (data.get("flags") or 0) & (
                p.FLAG_EPHEMERAL
                | p.FLAG_SUPPRESS_EMBEDS
                | p.FLAG_SUPPRESS_NOTIFICATIONS
                | p.FLAG_VOICE_MESSAGE
                | p.FLAG_COMPONENTS_V2
            )
            # What the app may do where the interaction comes from (the bot's role in its servers; in a DM no Send
            # Voice Messages: receiving-and-responding.mdx, Interaction Structure, app_permissions).
            app_permissions = int(interaction.payload["app_permissions"])
            if flags & p.FLAG_VOICE_MESSAGE and not app_permissions & p.SEND_VOICE_MESSAGES:
                raise _DiscordError(403, *p.VOICE_NOT_HERE)
            message = self._create_message(
                guild=guild,
                channel_id=interaction.channel_id,
                body=data,
                uploads=uploads,
                flags=flags,
                message_type=_response_message_type(interaction),
                interaction=interaction,
                error_prefix="data.",
            )
            interaction.original_id = int(message["id"])
            await self._announce("MESSAGE_CREATE", message)
        elif callback_type == 5:
            # Ibid.: with DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE "the only valid message flag you may use is EPHEMERAL".
            _refuse_voice_flag(data, "data.")
            flags = forced | ((data.get("flags") or 0) & p.FLAG_EPHEMERAL) | p.FLAG_LOADING
            message = self._create_message(
                guild=guild,
                channel_id=interaction.channel_id,
                body={},
                uploads=[],
                flags=flags,
                message_type=_response_message_type(interaction),
                interaction=interaction,
            )
            interaction.original_id = int(message["id"])
            interaction.original_loading = True
            await self._announce("MESSAGE_CREATE", message)
        elif callback_type in (6, 7):
            component_message_id = interaction.component_message_id
            if component_message_id is None:
                raise _DiscordError(400, 50035, "This interaction has no message")
            stored = self.messages.get(component_message_id)
            if stored is None:
                stored = copy.deepcopy(interaction.payload["message"])
                if guild is not None:
                    stored.setdefault("guild_id", str(guild.id))
                stored.setdefault("flags", 0)
                self.messages[component_message_id] = stored
            interaction.original_id = component_message_id
            if callback_type == 7:
                self._edit_message(stored, data, uploads, error_prefix="data.")
                message = stored
                await self._announce("MESSAGE_UPDATE", stored)
        elif callback_type == 8:
            errors = p.validate_choices(data.get("choices") or [])
            if errors:
                raise _invalid_form(errors)
        elif callback_type == 9:
            errors = p.validate_modal(data)
            if errors:
                raise _invalid_form(errors)
        interaction.callback_type = callback_type
        if interaction.original_id is not None and interaction.original_id not in interaction.message_ids:
            interaction.message_ids.insert(0, interaction.original_id)
        response.message_id = int(message["id"]) if message is not None else interaction.original_id
        if callback_type == 8:
            return web.Response(status=204)
        result: dict[str, Any] = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "response_message_id": str(interaction.original_id) if interaction.original_id else None,
                "response_message_loading": callback_type == 5,
                "response_message_ephemeral": bool(message and message["flags"] & p.FLAG_EPHEMERAL),
            },
            "resource": {"type": callback_type},
        }
        if message is not None:
            result["resource"]["message"] = _public(message)
        return _json_response(result)

    def _interaction_message(self, interaction: FakeInteraction, message_id: str) -> dict[str, Any]:
        if interaction.callback_type is None:
            raise _DiscordError(404, 10015, "Unknown Webhook")
        target = interaction.original_id if message_id == "@original" else int(message_id)
        if target is None or target not in interaction.message_ids or target in self.deleted_message_ids:
            raise _DiscordError(404, 10008, "Unknown Message")
        return self.messages[target]

    async def _followup(
        self, *, request: web.Request, application_id: str, token: str, body: Any, uploads: list[_Upload], **_: Any
    ) -> web.StreamResponse:
        interaction = self._interaction_for_token(token, application_id)
        body = body if isinstance(body, dict) else {}
        response = Response(
            kind="followup", type=None, json=body, files=[(u.filename, u.data) for u in uploads], at=self.clock.now()
        )
        try:
            self._check_token(interaction)
            if interaction.callback_type is None or interaction.callback_type == 8:
                raise _DiscordError(404, 10015, "Unknown Webhook")
            if interaction.user_install_only and interaction.followups >= p.USER_INSTALL_FOLLOWUPS:
                # receiving-and-responding.mdx, "Create Followup Message": at most 5 for an interaction whose
                # owners object "only contains USER_INSTALL" (every accepted call counts, the one that resolves a
                # deferred reply included: the stricter reading).
                raise _DiscordError(400, 40094, "This interaction has hit the maximum number of follow up messages")
            # A follow-up "functions the same as Execute Webhook" (receiving-and-responding.mdx), whose flags are
            # only SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS and IS_COMPONENTS_V2 (webhook.mdx): no voice message.
            _refuse_voice_flag(body, "")
            self._check_uploads(uploads, interaction.attachment_size_limit)
            original = self.messages.get(interaction.original_id) if interaction.original_id else None
            if (
                interaction.callback_type == 5
                and interaction.original_loading
                and original is not None
                and interaction.original_id not in self.deleted_message_ids
            ):
                # Discord: the first follow-up after a deferred reply resolves the "thinking" message,
                # keeping the defer's ephemeral flag whatever the follow-up asks for.
                self._edit_message(original, body, uploads)
                original["flags"] &= ~p.FLAG_LOADING
                interaction.original_loading = False
                message = original
                await self._announce("MESSAGE_UPDATE", message)
            else:
                forced = p.FLAG_EPHEMERAL if interaction.forced_ephemeral else 0
                flags = forced | (body.get("flags") or 0) & (
                    p.FLAG_EPHEMERAL | p.FLAG_SUPPRESS_EMBEDS | p.FLAG_SUPPRESS_NOTIFICATIONS | p.FLAG_COMPONENTS_V2
                )
                message = self._create_message(
                    guild=interaction.guild,
                    channel_id=interaction.channel_id,
                    body=body,
                    uploads=uploads,
                    flags=flags,
                    interaction=interaction,
                )
                interaction.message_ids.append(int(message["id"]))
                await self._announce("MESSAGE_CREATE", message)
        except _DiscordError as error:
            response.status, response.error = error.status, error.body()
            await self._record(interaction, response)
            raise
        interaction.followups += 1
        response.message_id = int(message["id"])
        await self._record(interaction, response)
        if request.query.get("wait", "").lower() in ("1", "true"):
            return _json_response(_public(message))
        return web.Response(status=204)

    async def _get_webhook_message(
        self, *, application_id: str, token: str, message_id: str, **_: Any
    ) -> web.StreamResponse:
        interaction = self._interaction_for_token(token, application_id)
        self._check_token(interaction)
        return _json_response(_public(self._interaction_message(interaction, message_id)))

    async def _edit_webhook_message(
        self, *, application_id: str, token: str, message_id: str, body: Any, uploads: list[_Upload], **_: Any
    ) -> web.StreamResponse:
        interaction = self._interaction_for_token(token, application_id)
        body = body if isinstance(body, dict) else {}
        original = message_id == "@original" or int(message_id) == interaction.original_id
        response = Response(
            kind="edit_original" if original else "edit_followup",
            type=None,
            json=body,
            files=[(u.filename, u.data) for u in uploads],
            at=self.clock.now(),
        )
        try:
            self._check_token(interaction)
            message = self._interaction_message(interaction, message_id)
            self._check_uploads(uploads, interaction.attachment_size_limit)
            self._edit_message(message, body, uploads)
            if original and interaction.original_loading:
                message["flags"] &= ~p.FLAG_LOADING
                interaction.original_loading = False
        except _DiscordError as error:
            response.status, response.error = error.status, error.body()
            await self._record(interaction, response)
            raise
        response.message_id = int(message["id"])
        await self._record(interaction, response)
        await self._announce("MESSAGE_UPDATE", message)
        return _json_response(_public(message))

    async def _delete_webhook_message(
        self, *, application_id: str, token: str, message_id: str, **_: Any
    ) -> web.StreamResponse:
        interaction = self._interaction_for_token(token, application_id)
        original = message_id == "@original" or int(message_id) == interaction.original_id
        response = Response(
            kind="delete_original" if original else "delete_followup",
            type=None,
            json=None,
            files=[],
            at=self.clock.now(),
        )
        try:
            self._check_token(interaction)
            message = self._interaction_message(interaction, message_id)
        except _DiscordError as error:
            response.status, response.error = error.status, error.body()
            await self._record(interaction, response)
            raise
        self._delete(message)
        if original:
            interaction.original_loading = False
        response.message_id = int(message["id"])
        await self._record(interaction, response)
        await self._announce("MESSAGE_DELETE", message)
        return web.Response(status=204)


def _refuse_voice_flag(body: dict[str, Any], prefix: str) -> None:
    """Refuse IS_VOICE_MESSAGE where the docs leave it out of the flags a request may set.

    The docs list the flags that "can be set" without saying how another one is refused; the stand-in answers as
    for any other invalid field: 400, 50035 "Invalid Form Body", the error at `flags`.
    """
    if isinstance(body, dict) and (body.get("flags") or 0) & p.FLAG_VOICE_MESSAGE:
        error = {"code": "MESSAGE_FLAGS_INVALID", "message": "IS_VOICE_MESSAGE cannot be set here."}
        raise _invalid_form(p.nest_errors({f"{prefix}flags": [error]}))


def _response_message_type(interaction: FakeInteraction) -> int:
    if interaction.type == 2:
        return 23 if interaction.payload["data"].get("type", 1) != 1 else 20
    return 0


def _infer_option_type(value: Any) -> int:
    if isinstance(value, ChannelOption):
        return p.OPTION_CHANNEL
    if isinstance(value, RoleOption):
        return p.OPTION_ROLE
    if isinstance(value, UserOption | FakeMember):
        return p.OPTION_USER
    if isinstance(value, bool):
        return p.OPTION_BOOLEAN
    if isinstance(value, int):
        return p.OPTION_INTEGER
    if isinstance(value, float):
        return p.OPTION_NUMBER
    return p.OPTION_STRING


def _length_problem(name: str, value: Any, spec: dict[str, Any]) -> str | None:
    if isinstance(value, str) and spec["type"] == p.OPTION_STRING:
        low, high = spec.get("min_length", 0), spec.get("max_length", 6000)
        if not low <= len(value) <= high:
            return f"option {name!r} is {len(value)} characters; its registered lengths are {low}-{high}"
    return None


def _option_problem(name: str, value: Any, spec: dict[str, Any]) -> str | None:
    """Why Discord's client would refuse this option value, or None."""
    choices = spec.get("choices")
    if choices and value not in [choice["value"] for choice in choices]:
        return f"option {name!r} only takes the choices {[c['value'] for c in choices]}, not {value!r}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = spec.get("min_value"), spec.get("max_value")
        if (low is not None and value < low) or (high is not None and value > high):
            return f"option {name!r}: Discord allows {low}..{high}, not {value}"
    return _length_problem(name, value, spec)


def _normalise_command(command: dict[str, Any]) -> dict[str, Any]:
    command.setdefault("type", 1)
    command.setdefault("description", "")
    command.setdefault("default_member_permissions", None)
    command.setdefault("nsfw", False)
    for option in command.get("options") or []:
        _normalise_option(option)
    return command


def _normalise_option(option: dict[str, Any]) -> None:
    option.setdefault("description", "")
    for child in option.get("options") or []:
        _normalise_option(child)


@contextmanager
def use_fake_discord(fake: FakeDiscord) -> Iterator[None]:
    """Point discord.py's REST base and default gateway at a started FakeDiscord, restoring them after."""
    import discord.gateway
    import discord.http
    import yarl

    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway
