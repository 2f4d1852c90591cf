"""The one place that decides, for an interaction, between a cheap check now and deferring first.

Discord drops an interaction that is not acknowledged within 3 s, and Unmixr can take longer than that. So
before acknowledging, a command may use only memory and local disk (PRODUCT.md, Replies). Every command or
control that looks voices up calls `ensure_lookups` first: when what the look-ups need is in memory (or a
local read away) it returns at once, so bad input still gets an immediate ephemeral answer; otherwise it
defers, then waits for the load. After it, the catalogue's look-ups answer from memory.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import discord

from bot.replies import defer


class Readiness(Protocol):
    """Something look-ups need that may have to be loaded over the network first."""

    def ready(self, guild_id: int | None) -> bool:
        """Whether `prepare` would use only memory and local disk for this server."""
        ...

    async def prepare(self, guild_id: int | None) -> None:
        """Load what this server's look-ups need into memory; may wait on the network when not ready."""
        ...


class LookupGate:
    """Every Readiness the look-ups depend on; asked as one before an interaction is acknowledged.

    The catalogue is one part. A storage backend whose cache misses are network calls (PostgreSQL) adds its
    own part with `add`, so that a miss also comes after the defer.
    """

    def __init__(self, *parts: Readiness) -> None:
        self._parts = list(parts)

    def add(self, part: Readiness) -> None:
        """Make look-ups also wait for `part` (checked after the parts already added)."""
        self._parts.append(part)

    def ready(self, guild_id: int | None) -> bool:
        """Whether every part can be prepared from memory and local disk."""
        return all(part.ready(guild_id) for part in self._parts)

    async def prepare(self, guild_id: int | None) -> None:
        """Load what every part needs for this server (callers that have acknowledged already)."""
        for part in self._parts:
            await part.prepare(guild_id)

    async def ensure(self, interaction: discord.Interaction[Any], *, ephemeral: bool) -> None:
        """Defer the interaction if its look-ups would wait on the network, then make them answerable."""
        if not self.ready(interaction.guild_id):
            await defer(interaction, ephemeral=ephemeral)
        await self.prepare(interaction.guild_id)


class _WithLookups(Protocol):
    lookups: LookupGate


async def ensure_lookups(interaction: discord.Interaction[Any], *, ephemeral: bool) -> None:
    """Make this interaction's voice look-ups answerable from memory, deferring first (`ephemeral` or not) if needed."""
    client = cast(_WithLookups, interaction.client)
    await client.lookups.ensure(interaction, ephemeral=ephemeral)
