"""On PostgreSQL every database call is a round trip: interactions that need one are acknowledged first."""

from __future__ import annotations

from pydantic import SecretStr

from tests.conftest import World
from tests.fakes.discord_server import FakeInteraction
from tests.fakes.prose import prose


def acknowledged_by_defer(interaction: FakeInteraction) -> bool:
    """Whether the first accepted callback was a defer (type 5) rather than the answer itself (type 4)."""
    first = next(r for r in interaction.responses if r.kind == "callback" and r.status < 300)
    return first.type == 5


async def test_a_remote_database_is_only_used_after_the_defer(world: World, postgres_database: str) -> None:
    await world.start_bot(database_url=SecretStr(postgres_database))
    assert not world.bot.storage.is_local

    rate = await world.slash("preferences", {"rate": "slow"}, subcommand="rate")
    await rate.wait_final()
    assert acknowledged_by_defer(rate) and rate.ephemeral and "slow" in rate.content()
    # Now everything of this member is cached, but the change is still written over the network: defer first.
    assert world.bot.storage.has_cached(world.guild.id, world.member.id)
    again = await world.slash("preferences", {"rate": "fast"}, subcommand="rate")
    await again.wait_final()
    assert acknowledged_by_defer(again) and "fast" in again.content()

    said = await world.say(text=prose(60, salt=1))
    await said.wait_final(timeout=20)
    assert acknowledged_by_defer(said) and said.files()

    listed = await world.slash("pronounce", {}, subcommand="list")
    await listed.wait_final()
    assert "no pronunciations yet" in listed.content()

    # Bad input found after the defer is still one private sentence; a public "thinking" message is removed.
    await (await world.slash("settings", {"characters": 30}, subcommand="budget", member=world.admin)).wait_final()
    refused = await world.say(member=world.other, text=prose(45, salt=2))
    await refused.wait_final()
    assert refused.ephemeral and "can never fit" in refused.content() and not refused.files()
    assert [r.kind for r in refused.responses if r.status < 300][:2] == ["callback", "delete_original"]


async def test_a_local_database_answers_bad_input_at_once(world: World) -> None:
    await world.start_bot()
    assert world.bot.storage.is_local
    rate = await world.slash("preferences", {"rate": "slow"}, subcommand="rate")
    await rate.wait_final()
    assert not acknowledged_by_defer(rate)
    await (await world.slash("settings", {"characters": 30}, subcommand="budget", member=world.admin)).wait_final()
    refused = await world.say(member=world.other, text=prose(45, salt=2))
    await refused.wait_final()
    assert not acknowledged_by_defer(refused) and refused.ephemeral and "can never fit" in refused.content()
