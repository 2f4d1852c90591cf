"""Names for the mentions in a text, so cleaning can speak them."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable

import discord

from bot.storage import Storage

_USER_MENTION = re.compile(r"<@!?(\d{15,22})>")
# Members looked up over REST for one text at most; more mentions are read as "someone".
MAX_FETCHES = 5
# PRODUCT.md, Replies: a member missing from discord.py's cache is looked up at most once per (server, member)
# in 10 minutes, the answer kept whether found or not: every request counts toward Discord's rate limits.
LOOKUP_SECONDS = 600.0


class MemberLookups:
    """Members fetched over REST, or known not to be members, by (server, member), for 10 minutes."""

    def __init__(self) -> None:
        self._found: dict[tuple[int, int], tuple[float, discord.Member | None]] = {}
        self._pending: dict[tuple[int, int], asyncio.Future[discord.Member | None]] = {}

    async def member(self, guild: discord.Guild, user_id: int) -> discord.Member | None:
        """The member, from what was fetched in the last 10 minutes or one fetch shared by every caller."""
        key = (guild.id, user_id)
        now = time.monotonic()
        kept = self._found.get(key)
        if kept is not None and now - kept[0] < LOOKUP_SECONDS:
            return kept[1]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[discord.Member | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        member: discord.Member | None = None
        try:
            member = await self._fetch(guild, user_id)
        finally:
            self._pending.pop(key, None)
            future.set_result(member)
        return member

    async def _fetch(self, guild: discord.Guild, user_id: int) -> discord.Member | None:
        try:
            member: discord.Member | None = await guild.fetch_member(user_id)
        except discord.NotFound:
            member = None  # not a member: kept too, so it is not asked again
        except discord.HTTPException:
            return None  # throttled past discord.py's retries, or failing: not kept, the next text asks again
        self._prune()
        self._found[(guild.id, user_id)] = (time.monotonic(), member)
        return member

    def _prune(self) -> None:
        oldest = time.monotonic() - LOOKUP_SECONDS
        for key in [key for key, (at, _member) in self._found.items() if at < oldest]:
            del self._found[key]


# One per process, like the member cache of discord.py it stands beside.
LOOKUPS = MemberLookups()


class GuildNames:
    """Display names of a server's members, roles and channels, as the text cleaner asks for them."""

    def __init__(self, guild: discord.Guild, members: dict[int, str]) -> None:
        self._guild = guild
        self._members = members

    def user(self, user_id: int) -> str | None:
        """A member's nickname preference or display name."""
        return self._members.get(user_id)

    def role(self, role_id: int) -> str | None:
        """A role's name."""
        role = self._guild.get_role(role_id)
        return role.name if role is not None else None

    def channel(self, channel_id: int) -> str | None:
        """A channel's name."""
        channel = self._guild.get_channel_or_thread(channel_id)
        return channel.name if channel is not None else None


def needs_lookup(guild: discord.Guild, text: str, known: Iterable[discord.abc.User] = ()) -> bool:
    """Whether naming the mentions in `text` would need a REST lookup (so the caller should defer first)."""
    known_ids = {user.id for user in known}
    return any(
        int(match.group(1)) not in known_ids and guild.get_member(int(match.group(1))) is None
        for match in _USER_MENTION.finditer(text)
    )


async def speakable_name(storage: Storage, guild_id: int, member: discord.abc.User) -> str:
    """What a member is called aloud: their `/preferences nickname`, else their display name."""
    preferences = await storage.get_member_preferences(guild_id, member.id)
    return preferences.nickname or member.display_name


async def guild_names(
    guild: discord.Guild,
    storage: Storage,
    text: str,
    known: Iterable[discord.abc.User] = (),
) -> GuildNames:
    """Resolve the members mentioned in `text`: from `known` (a message's mentions), the cache, or REST."""
    by_id: dict[int, discord.abc.User] = {user.id: user for user in known}
    names: dict[int, str] = {}
    fetches = 0
    for match in _USER_MENTION.finditer(text):
        user_id = int(match.group(1))
        if user_id in names:
            continue
        user: discord.abc.User | None = by_id.get(user_id) or guild.get_member(user_id)
        if user is None and fetches < MAX_FETCHES:
            fetches += 1
            user = await LOOKUPS.member(guild, user_id)
        if user is not None:
            names[user_id] = await speakable_name(storage, guild.id, user)
    return GuildNames(guild, names)
