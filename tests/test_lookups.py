"""The look-up gate: it defers only when some part would wait on the network, and always before that wait."""

from __future__ import annotations

from unittest import mock

import discord

from bot.lookups import LookupGate, StorageReadiness
from bot.storage import Storage


class Part:
    """A Readiness that records when it is asked, into a log shared with the interaction's defer."""

    def __init__(self, name: str, log: list[str], *, ready: bool) -> None:
        self.name = name
        self.log = log
        self.is_ready = ready

    def ready(self, guild_id: int | None, user_id: int) -> bool:
        return self.is_ready

    async def prepare(self, guild_id: int | None, user_id: int) -> None:
        self.log.append(f"prepare {self.name} for {guild_id}/{user_id}")
        self.is_ready = True


def interaction(log: list[str]) -> mock.MagicMock:
    """An interaction whose defer is recorded in `log`."""
    fake = mock.MagicMock(spec_set=discord.Interaction)
    fake.guild_id = 7
    fake.user = mock.MagicMock(spec_set=discord.Member)
    fake.user.id = 42
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
    assert log == ["prepare catalogue for 7/42"]


async def test_a_part_that_would_wait_makes_the_gate_defer_first() -> None:
    log: list[str] = []
    gate = LookupGate(Part("catalogue", log, ready=False))
    await gate.ensure(interaction(log), ephemeral=False)
    assert log == ["defer ephemeral=False", "prepare catalogue for 7/42"]


async def test_a_part_added_later_is_asked_too() -> None:
    # The hook a storage whose cache misses go over the network plugs into.
    log: list[str] = []
    gate = LookupGate(Part("catalogue", log, ready=True))
    gate.add(Part("storage", log, ready=False))
    assert not gate.ready(7, 42)
    await gate.ensure(interaction(log), ephemeral=True)
    assert log == ["defer ephemeral=True", "prepare catalogue for 7/42", "prepare storage for 7/42"]
    assert gate.ready(7, 42)


async def test_a_write_to_a_remote_database_defers_even_when_everything_is_cached() -> None:
    log: list[str] = []
    remote = LookupGate(Part("catalogue", log, ready=True), local_writes=False)
    await remote.ensure(interaction(log), ephemeral=True, writes=True)
    assert log == ["defer ephemeral=True", "prepare catalogue for 7/42"]
    log.clear()
    local = LookupGate(Part("catalogue", log, ready=True), local_writes=True)
    await local.ensure(interaction(log), ephemeral=True, writes=True)
    assert log == ["prepare catalogue for 7/42"]


def storage_stub(*, local: bool, cached: bool) -> mock.MagicMock:
    storage = mock.MagicMock(spec_set=Storage)
    type(storage).is_local = mock.PropertyMock(return_value=local)
    storage.has_cached.return_value = cached
    return storage


async def test_storage_is_ready_when_local_or_cached_and_warmed_only_when_remote() -> None:
    assert StorageReadiness(storage_stub(local=True, cached=False)).ready(7, 42)
    assert StorageReadiness(storage_stub(local=False, cached=True)).ready(7, 42)
    remote = storage_stub(local=False, cached=False)
    readiness = StorageReadiness(remote)
    assert not readiness.ready(7, 42)
    await readiness.prepare(7, 42)
    remote.warm.assert_awaited_once_with(7, 42)
    local = storage_stub(local=True, cached=False)
    await StorageReadiness(local).prepare(7, 42)
    local.warm.assert_not_called()
