"""Names for the mentions in a text, so cleaning can speak them."""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Final

import discord

from bot.storage import Storage

_USER_MENTION = re.compile(r"<@!?(\d{15,22})>")
# Members looked up over REST for one text at most; more mentions are read as "someone".
MAX_FETCHES = 5
# A member missing from discord.py's cache is asked of Discord at most once per (server, member) this often; the
# answer, found or not, serves every cleaning meanwhile (a repeated /say, readouts, Read aloud).
LOOKUP_SECONDS: Final = 600.0
# Answers kept at most (the oldest go first): a flood of made-up mentions cannot grow memory without end.
MAX_KEPT_LOOKUPS: Final = 10_000


class MemberLookups:
    """Members looked up over REST, found or not, kept LOOKUP_SECONDS per (server, member)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # what answers are dated by (a test may move it on)
        # (server, member) -> (when the answer came, the member or None), oldest first.
        self._answers: OrderedDict[tuple[int, int], tuple[float, discord.Member | None]] = OrderedDict()
        # Look-ups under way, shared by whoever asks for the same member meanwhile.
        self._asking: dict[tuple[int, int], asyncio.Task[discord.Member | None]] = {}

    def answered(self, guild_id: int, user_id: int) -> bool:
        """Whether a fresh answer is kept for this member (so naming them needs no REST call)."""
        return self._fresh((guild_id, user_id)) is not None

    def kept(self, guild_id: int, user_id: int) -> discord.Member | None:
        """The member as the kept answer has it (None: not found, or no fresh answer)."""
        answer = self._fresh((guild_id, user_id))
        return answer[1] if answer is not None else None

    async def fetch(self, guild: discord.Guild, user_id: int) -> discord.Member | None:
        """The member from Discord, or None if Discord does not know them there; asked once per LOOKUP_SECONDS."""
        key = (guild.id, user_id)
        answer = self._fresh(key)
        if answer is not None:
            return answer[1]
        task = self._asking.get(key)
        if task is None:
            task = asyncio.ensure_future(self._ask(guild, user_id))
            self._asking[key] = task
            task.add_done_callback(lambda _: self._asking.pop(key, None))
        return await asyncio.shield(task)

    async def _ask(self, guild: discord.Guild, user_id: int) -> discord.Member | None:
        try:
            member: discord.Member | None = await guild.fetch_member(user_id)
        except discord.NotFound:
            member = None  # not a member: kept too, so it is not asked again
        except discord.HTTPException:
            return None  # throttled past discord.py's retries, or failing: not an answer, the next text asks again
        self._keep((guild.id, user_id), member)
        return member

    def _fresh(self, key: tuple[int, int]) -> tuple[float, discord.Member | None] | None:
        answer = self._answers.get(key)
        if answer is None or self.clock() - answer[0] >= LOOKUP_SECONDS:
            return None
        return answer

    def _keep(self, key: tuple[int, int], member: discord.Member | None) -> None:
        now = self.clock()
        self._answers.pop(key, None)
        self._answers[key] = (now, member)
        # Every answer lives as long, so the oldest are first: drop the stale ones and any over the cap.
        while self._answers:
            oldest_key, (when, _) = next(iter(self._answers.items()))
            if now - when < LOOKUP_SECONDS and len(self._answers) <= MAX_KEPT_LOOKUPS:
                break
            del self._answers[oldest_key]


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


def needs_lookup(
    guild: discord.Guild, text: str, lookups: MemberLookups, known: Iterable[discord.abc.User] = ()
) -> bool:
    """Whether naming the mentions in `text` would need a REST lookup (so the caller should defer first)."""
    known_ids = {user.id for user in known}
    return any(
        user_id not in known_ids and guild.get_member(user_id) is None and not lookups.answered(guild.id, user_id)
        for user_id in (int(match.group(1)) for match in _USER_MENTION.finditer(text))
    )


async def speakable_name(storage: Storage, guild_id: int, member: discord.abc.User) -> str:
    """What a member is called aloud: their `/preferences nickname`, else their display name."""
    preferences = await storage.get_member_preferences(guild_id, member.id)
    return preferences.nickname or member.display_name


async def guild_names(
    guild: discord.Guild,
    storage: Storage,
    text: str,
    lookups: MemberLookups,
    known: Iterable[discord.abc.User] = (),
) -> GuildNames:
    """Resolve the members mentioned in `text`: from `known` (a message's mentions), the cache, or REST (through
    `lookups`, which keeps each answer for a while)."""
    by_id: dict[int, discord.abc.User] = {user.id: user for user in known}
    names: dict[int, str] = {}
    fetches = 0
    for match in _USER_MENTION.finditer(text):
        user_id = int(match.group(1))
        if user_id in names:
            continue
        user: discord.abc.User | None = by_id.get(user_id) or guild.get_member(user_id)
        if user is None and lookups.answered(guild.id, user_id):
            user = lookups.kept(guild.id, user_id)
        elif user is None and fetches < MAX_FETCHES:
            fetches += 1
            user = await lookups.fetch(guild, user_id)
        if user is not None:
            names[user_id] = await speakable_name(storage, guild.id, user)
    return GuildNames(guild, names)
