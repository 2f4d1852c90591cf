"""The look-up gate: it defers only when some part would wait on the network, and always before that wait."""

from __future__ import annotations

from unittest import mock

import discord

from bot.lookups import LookupGate


class Part:
    """A Readiness that records when it is asked, into a log shared with the interaction's defer."""

    def __init__(self, name: str, log: list[str], *, ready: bool) -> None:
        self.name = name
        self.log = log
        self.is_ready = ready

    def ready(self, guild_id: int | None) -> bool:
        return self.is_ready

    async def prepare(self, guild_id: int | None) -> None:
        self.log.append(f"prepare {self.name} for {guild_id}")
        self.is_ready = True


def interaction(log: list[str]) -> mock.MagicMock:
    """An interaction whose defer is recorded in `log`."""
    fake = mock.MagicMock(spec_set=discord.Interaction)
    fake.guild_id = 7
    fake.extras = {}
    response = mock.MagicMock(spec_set=discord.InteractionResponse)
    response.is_done.return_value = False

    async def defer(*, ephemeral: bool, thinking: bool) -> None:
        log.append(f"defer ephemeral={ephemeral}")
        response.is_done.return_value = True

    response.defer.side_effect = defer
    fake.response = response
    return fake


async def test_ready_parts_are_prepared_without_deferring() -> None:
    log: list[str] = []
    gate = LookupGate(Part("catalogue", log, ready=True))
    await gate.ensure(interaction(log), ephemeral=True)
    assert log == ["prepare catalogue for 7"]


async def test_a_part_that_would_wait_makes_the_gate_defer_first() -> None:
    log: list[str] = []
    gate = LookupGate(Part("catalogue", log, ready=False))
    await gate.ensure(interaction(log), ephemeral=False)
    assert log == ["defer ephemeral=False", "prepare catalogue for 7"]


async def test_a_part_added_later_is_asked_too() -> None:
    # The hook a storage whose cache misses go over the network plugs into.
    log: list[str] = []
    gate = LookupGate(Part("catalogue", log, ready=True))
    gate.add(Part("storage", log, ready=False))
    assert not gate.ready(7)
    await gate.ensure(interaction(log), ephemeral=True)
    assert log == ["defer ephemeral=True", "prepare catalogue for 7", "prepare storage for 7"]
    assert gate.ready(7)
