"""The write-through caches: what a request needs in memory, shared loads, and loads racing writes."""

import asyncio
from collections.abc import Sequence
from typing import Any

from bot.storage import Storage
from tests.storage.conftest import Database

GUILD = 1234
OTHER_GUILD = 5678
USER = 42


async def test_has_cached_says_whether_a_request_can_be_served_from_memory(storage: Storage) -> None:
    await storage.set_guild_setting(GUILD, "rate", "+5%")
    assert not storage.has_cached(GUILD, USER)
    await storage.get_member_preferences(GUILD, USER)
    await storage.list_pronunciations(GUILD)
    # The setting's write filled the server's entry; the other two were just read.
    assert storage.has_cached(GUILD, USER)
    # The server's preferences rows were read together: a member without one has none.
    assert storage.has_cached(GUILD, USER + 1)
    await storage.set_member_preference(GUILD, USER + 2, "rate", "+1%")
    assert not storage.has_cached(GUILD, USER + 1)  # the rows are read again after a member's write
    assert not storage.has_cached(OTHER_GUILD, USER)


async def test_warm_loads_what_a_request_needs(database: Database, storage: Storage) -> None:
    await database.execute("INSERT INTO guild_settings (guild_id, language) VALUES (?, 'de-DE')", GUILD)
    await storage.warm(GUILD, USER)
    assert storage.has_cached(GUILD, USER)
    # From memory now: a change behind the storage's back is not seen.
    await database.execute("UPDATE guild_settings SET language = 'fr-FR'")
    assert (await storage.get_guild_settings(GUILD)).language == "de-DE"


async def test_forgetting_a_shards_servers_reloads_them_from_the_database(database: Database, storage: Storage) -> None:
    for guild_id in (GUILD, OTHER_GUILD):
        await storage.set_guild_setting(guild_id, "language", "de-DE")
        await storage.set_member_preference(guild_id, USER, "nickname", "Before")
        await storage.warm(guild_id, USER)
    # Another process changed both servers while it held their shard.
    await database.execute("UPDATE guild_settings SET language = 'fr-FR'")
    await database.execute("UPDATE member_preferences SET nickname = 'After'")

    dropped = storage.forget_guilds(lambda guild_id: guild_id == GUILD)
    assert dropped == 3
    assert not storage.has_cached(GUILD, USER) and storage.has_cached(OTHER_GUILD, USER)
    assert (await storage.get_guild_settings(GUILD)).language == "fr-FR"
    assert (await storage.get_member_preferences(GUILD, USER)).nickname == "After"
    # The other server's entries were kept.
    assert (await storage.get_guild_settings(OTHER_GUILD)).language == "de-DE"


class CountedReads:
    """Counts the single-statement reads the storage sends (one row or all), and can hold them before they return."""

    def __init__(self, storage: Storage) -> None:
        self.count = 0
        self.release = asyncio.Event()
        self.release.set()
        self.read = asyncio.Event()
        backend = storage._db
        original, original_all = backend.fetchone, backend.fetchall

        async def fetchone(sql: str, parameters: Sequence[Any] = ()) -> Any:
            self.count += 1
            row = await original(sql, parameters)
            self.read.set()
            await self.release.wait()
            return row

        async def fetchall(sql: str, parameters: Sequence[Any] = ()) -> Any:
            # A member's preferences come with the server's other rows, in one read of them all.
            self.count += 1
            rows = await original_all(sql, parameters)
            self.read.set()
            await self.release.wait()
            return rows

        backend.fetchone = fetchone  # type: ignore[method-assign]
        backend.fetchall = fetchall  # type: ignore[method-assign]


async def test_readers_missing_at_once_share_one_load(storage: Storage) -> None:
    await storage.set_guild_setting(GUILD, "pitch", "+1%")
    storage.forget_guilds(lambda _guild_id: True)
    reads = CountedReads(storage)
    results = await asyncio.gather(*(storage.get_guild_settings(GUILD) for _ in range(20)))
    assert {result.pitch for result in results} == {"+1%"}
    assert reads.count == 1


async def test_a_waiting_reader_giving_up_does_not_cancel_the_load(storage: Storage) -> None:
    await storage.set_member_preference(GUILD, USER, "nickname", "Robin")
    storage.forget_guilds(lambda _guild_id: True)
    reads = CountedReads(storage)
    reads.release.clear()
    loading = asyncio.create_task(storage.get_member_preferences(GUILD, USER))
    await reads.read.wait()
    impatient = asyncio.create_task(storage.get_member_preferences(GUILD, USER))
    await asyncio.sleep(0)
    impatient.cancel()
    reads.release.set()
    assert (await loading).nickname == "Robin"
    assert impatient.cancelled()
    assert reads.count == 1
    assert (await storage.get_member_preferences(GUILD, USER)).nickname == "Robin"
    assert reads.count == 1  # cached by the load


async def test_the_loading_reader_giving_up_leaves_the_waiting_ones_their_answer(storage: Storage) -> None:
    await storage.set_member_preference(GUILD, USER, "nickname", "Robin")
    storage.forget_guilds(lambda _guild_id: True)
    reads = CountedReads(storage)
    reads.release.clear()
    impatient = asyncio.create_task(storage.get_member_preferences(GUILD, USER))
    await reads.read.wait()
    patient = asyncio.create_task(storage.get_member_preferences(GUILD, USER))
    await asyncio.sleep(0)
    impatient.cancel()
    reads.release.set()
    # The waiting reader loads again rather than inheriting the cancellation.
    assert (await patient).nickname == "Robin"
    assert impatient.cancelled()
    assert reads.count == 2


async def test_a_slow_read_never_puts_back_what_a_write_replaced(storage: Storage) -> None:
    await storage.set_guild_setting(GUILD, "language", "de-DE")
    storage.forget_guilds(lambda _guild_id: True)
    reads = CountedReads(storage)
    reads.release.clear()
    # The read gets the old row from the database, then is held before it can fill the cache...
    slow = asyncio.create_task(storage.get_guild_settings(GUILD))
    await reads.read.wait()
    # ...while a write lands (its own transaction, not held).
    assert await storage.set_guild_setting(GUILD, "language", "fr-FR") == "de-DE"
    reads.release.set()
    assert (await slow).language == "de-DE"  # a read that began before the write may see the old value
    # But the cache keeps the write's value, not the slow read's.
    assert (await storage.get_guild_settings(GUILD)).language == "fr-FR"
    assert reads.count == 1


async def test_a_read_sent_before_a_write_gets_the_value_before_it(storage: Storage) -> None:
    # Requests are answered in the order they came: a /say sent before a preference change uses the old one.
    await storage.set_member_preference(GUILD, USER, "voice_id", "old-voice")
    storage.forget_guilds(lambda _guild_id: True)
    read = asyncio.create_task(storage.get_member_preferences(GUILD, USER))
    write = asyncio.create_task(storage.set_member_preference(GUILD, USER, "voice_id", "new-voice"))
    assert (await read).voice_id == "old-voice"
    assert await write == "old-voice"
    assert (await storage.get_member_preferences(GUILD, USER)).voice_id == "new-voice"


async def test_every_members_preferences_come_from_one_read_of_the_servers_rows(
    database: Database, storage: Storage
) -> None:
    await database.execute(
        "INSERT INTO member_preferences (guild_id, user_id, nickname) VALUES (?, ?, 'Robin')", GUILD, 7
    )
    backend = storage._db
    reads: list[str] = []
    fetchone, fetchall = backend.fetchone, backend.fetchall

    async def counted_one(sql: str, parameters: Sequence[Any] = ()) -> Any:
        reads.append(sql)
        return await fetchone(sql, parameters)

    async def counted_all(sql: str, parameters: Sequence[Any] = ()) -> Any:
        reads.append(sql)
        return await fetchall(sql, parameters)

    backend.fetchone = counted_one  # type: ignore[method-assign]
    backend.fetchall = counted_all  # type: ignore[method-assign]
    # 200 members' first requests at once (a burst): one read of the server's rows, not 200 one after another.
    found = await asyncio.gather(*(storage.get_member_preferences(GUILD, user_id) for user_id in range(200)))
    assert [p.nickname for p in found if p.nickname] == ["Robin"]
    assert len(reads) == 1

    # A member's write is seen by the next read, even after the member's own entry left the cache.
    await storage.set_member_preference(GUILD, 300, "nickname", "Sam")
    storage._member_preferences.discard((GUILD, 300))
    assert (await storage.get_member_preferences(GUILD, 300)).nickname == "Sam"
    await storage.reset_member_preferences(GUILD, 7)
    storage._member_preferences.discard((GUILD, 7))
    assert (await storage.get_member_preferences(GUILD, 7)).nickname is None
