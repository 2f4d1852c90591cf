"""Names for the mentions in a text, so cleaning can speak them."""

from __future__ import annotations

import re
from collections.abc import Iterable

import discord

from bot.storage import Storage

_USER_MENTION = re.compile(r"<@!?(\d{15,22})>")
# Members looked up over REST for one text at most; more mentions are read as "someone".
MAX_FETCHES = 5


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
            try:
                user = await guild.fetch_member(user_id)
            except discord.HTTPException:
                user = None
        if user is not None:
            names[user_id] = await speakable_name(storage, guild.id, user)
    return GuildNames(guild, names)
