"""The one place that decides, for an interaction, between a cheap check now and deferring first.

Discord drops an interaction that is not acknowledged within 3 s, and Unmixr (or a remote database) can take
longer than that. So before acknowledging, a command may use only memory and local disk (PRODUCT.md, Replies).
Every command or control that looks voices up or reads or writes storage calls `ensure_lookups` first: when
what it needs is in memory (or a local read away) it returns at once, so bad input still gets an immediate
ephemeral answer; otherwise it defers, then waits for the load. After it, the catalogue's look-ups and the
storage's reads answer from memory.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import discord

from bot.reach import server_id
from bot.replies import defer
from bot.storage import Storage


class Readiness(Protocol):
    """Something look-ups need that may have to be loaded over the network first."""

    def ready(self, guild_id: int | None, user_id: int) -> bool:
        """Whether `prepare` would use only memory and local disk for this server and member."""
        ...

    async def prepare(self, guild_id: int | None, user_id: int) -> None:
        """Load what this server's and member's look-ups need into memory; may wait on the network when not ready."""
        ...


class StorageReadiness:
    """The server's settings and pronunciations and the member's preferences, from a database on the network."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def ready(self, guild_id: int | None, user_id: int) -> bool:
        """A local file is always ready (a disk read); a remote database when the three are cached."""
        return self._storage.is_local or guild_id is None or self._storage.has_cached(guild_id, user_id)

    async def prepare(self, guild_id: int | None, user_id: int) -> None:
        """Read the three into the storage's caches (nothing to do for a local file: reads are cheap there)."""
        if guild_id is not None and not self._storage.is_local:
            await self._storage.warm(guild_id, user_id)


class LookupGate:
    """Every Readiness the look-ups depend on; asked as one before an interaction is acknowledged."""

    def __init__(self, *parts: Readiness, local_writes: bool = True) -> None:
        self._parts = list(parts)
        # Whether a write to storage stays on this machine (SQLite) or is a round trip (PostgreSQL).
        self._local_writes = local_writes

    def add(self, part: Readiness) -> None:
        """Make look-ups also wait for `part` (checked after the parts already added)."""
        self._parts.append(part)

    def ready(self, guild_id: int | None, user_id: int) -> bool:
        """Whether every part can be prepared from memory and local disk."""
        return all(part.ready(guild_id, user_id) for part in self._parts)

    async def prepare(self, guild_id: int | None, user_id: int) -> None:
        """Load what every part needs for this server and member (callers that have acknowledged already)."""
        for part in self._parts:
            await part.prepare(guild_id, user_id)

    async def ensure(self, interaction: discord.Interaction[Any], *, ephemeral: bool, writes: bool = False) -> None:
        """Defer the interaction if what it needs would wait on the network, then make it answerable.

        `writes`: the command writes to storage before it answers (a preference, the usage ledger), which is a
        round trip on a remote database, so it defers first there.
        """
        user_id = interaction.user.id
        # No server's state for a user install (whose account-wide preferences are read with its ledger write).
        guild_id = server_id(interaction)
        if (writes and not self._local_writes) or not self.ready(guild_id, user_id):
            await defer(interaction, ephemeral=ephemeral)
        await self.prepare(guild_id, user_id)


class _WithLookups(Protocol):
    lookups: LookupGate


async def ensure_lookups(interaction: discord.Interaction[Any], *, ephemeral: bool, writes: bool = False) -> None:
    """Make this interaction's look-ups answerable from memory, deferring first (`ephemeral` or not) if needed."""
    client = cast(_WithLookups, interaction.client)
    await client.lookups.ensure(interaction, ephemeral=ephemeral, writes=writes)
