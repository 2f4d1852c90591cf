"""Server settings and member preferences: values, old values, resets, clearing, caching."""

import asyncio

import pytest

from bot.storage import (
    GUILD_SETTING_NAMES,
    MEMBER_PREFERENCE_NAMES,
    GuildSettings,
    MemberPreferences,
    Pronunciation,
    Storage,
)
from tests.storage.conftest import Database

GUILD = 111
OTHER_GUILD = 222
USER = 333

SAMPLE_SETTINGS: dict[str, object] = {
    "voice_id": "5b0d6a1e-voice",
    "language": "fr-FR",
    "rate": "+20%",
    "pitch": "-10%",
    "volume": "x-loud",
    "intensity": -40,
    "format": "wav",
    "max_length": 1500,
    "readout_channel_id": 1_234_567_890_123_456_789,
    "xsaid": False,
    "ignore_role_id": 987_654_321_987_654_321,
    "budget": 50_000,
    "member_budget": 2_000,
    "auto_join": True,
}
SAMPLE_PREFERENCES: dict[str, str] = {"voice_id": "my-voice", "rate": "slow", "nickname": "Robin"}


def test_the_samples_cover_every_setting() -> None:
    assert set(SAMPLE_SETTINGS) == set(GUILD_SETTING_NAMES)
    assert set(SAMPLE_PREFERENCES) == set(MEMBER_PREFERENCE_NAMES)


async def test_nothing_set_means_all_none(storage: Storage) -> None:
    settings = await storage.get_guild_settings(GUILD)
    assert settings == GuildSettings(guild_id=GUILD)
    assert settings.is_empty()
    preferences = await storage.get_member_preferences(GUILD, USER)
    assert preferences == MemberPreferences(guild_id=GUILD, user_id=USER)
    assert preferences.is_empty()


@pytest.mark.parametrize("name", GUILD_SETTING_NAMES)
async def test_each_setting_round_trips_with_its_type_through_a_reopen(database: Database, name: str) -> None:
    value = SAMPLE_SETTINGS[name]
    storage = await Storage.open(database.location)
    assert await storage.set_guild_setting(GUILD, name, value) is None
    assert getattr(await storage.get_guild_settings(GUILD), name) == value
    await storage.close()

    reopened = await Storage.open(database.location)
    try:
        stored = getattr(await reopened.get_guild_settings(GUILD), name)
        assert stored == value
        # False must come back as a bool, not as 0.
        assert type(stored) is type(value)
        settings = await reopened.get_guild_settings(GUILD)
        assert all(getattr(settings, other) is None for other in GUILD_SETTING_NAMES if other != name)
    finally:
        await reopened.close()


async def test_set_returns_the_old_value_and_none_clears(storage: Storage) -> None:
    assert await storage.set_guild_setting(GUILD, "rate", "+10%") is None
    assert await storage.set_guild_setting(GUILD, "rate", "slow") == "+10%"
    assert (await storage.get_guild_settings(GUILD)).rate == "slow"
    assert await storage.set_guild_setting(GUILD, "rate", None) == "slow"
    assert (await storage.get_guild_settings(GUILD)).rate is None
    assert await storage.set_guild_setting(GUILD, "xsaid", True) is None
    assert await storage.set_guild_setting(GUILD, "xsaid", False) is True


async def test_unknown_setting_name_is_refused_and_nothing_is_written(storage: Storage) -> None:
    for name in ("colour", "guild_id", "voice_id = NULL; DROP TABLE guild_settings; --", "VOICE_ID"):
        with pytest.raises(ValueError, match="unknown server setting"):
            await storage.set_guild_setting(GUILD, name, "x")
    with pytest.raises(ValueError, match="unknown preference"):
        await storage.set_member_preference(GUILD, USER, "language", "en-US")
    assert (await storage.get_guild_settings(GUILD)).is_empty()
    # The table is still there and usable.
    assert await storage.set_guild_setting(GUILD, "language", "en-US") is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("xsaid", 1), ("max_length", True), ("max_length", "600"), ("voice_id", 5), ("intensity", 1.5)],
)
async def test_values_of_the_wrong_type_are_refused(storage: Storage, name: str, value: object) -> None:
    with pytest.raises(TypeError, match=name):
        await storage.set_guild_setting(GUILD, name, value)  # type: ignore[arg-type]
    assert (await storage.get_guild_settings(GUILD)).is_empty()


async def test_guilds_are_independent(storage: Storage) -> None:
    await storage.set_guild_setting(GUILD, "language", "de-DE")
    await storage.set_guild_setting(OTHER_GUILD, "language", "ja-JP")
    assert (await storage.get_guild_settings(GUILD)).language == "de-DE"
    assert (await storage.get_guild_settings(OTHER_GUILD)).language == "ja-JP"


async def test_reset_clears_every_setting_returns_the_old_ones_and_keeps_pronunciations(
    database: Database,
) -> None:
    storage = await Storage.open(database.location)
    for name, value in SAMPLE_SETTINGS.items():
        await storage.set_guild_setting(GUILD, name, value)  # type: ignore[arg-type]
    await storage.set_guild_setting(OTHER_GUILD, "language", "ja-JP")
    await storage.add_pronunciation(GUILD, "GIF", "jif", created_by=USER)

    old = await storage.reset_guild_settings(GUILD)
    assert old == GuildSettings(guild_id=GUILD, **SAMPLE_SETTINGS)  # type: ignore[arg-type]
    assert (await storage.get_guild_settings(GUILD)).is_empty()
    await storage.close()

    reopened = await Storage.open(database.location)
    try:
        assert (await reopened.get_guild_settings(GUILD)).is_empty()
        assert (await reopened.get_guild_settings(OTHER_GUILD)).language == "ja-JP"
        assert await reopened.list_pronunciations(GUILD) == [Pronunciation("GIF", "jif")]
        assert await reopened.reset_guild_settings(GUILD) == GuildSettings(guild_id=GUILD)
    finally:
        await reopened.close()


async def test_clear_channel_only_when_it_is_the_readout_channel(storage: Storage) -> None:
    assert await storage.clear_channel(GUILD, 42) is False
    await storage.set_guild_setting(GUILD, "readout_channel_id", 42)
    await storage.set_guild_setting(GUILD, "ignore_role_id", 42)
    assert await storage.clear_channel(GUILD, 43) is False
    assert (await storage.get_guild_settings(GUILD)).readout_channel_id == 42
    assert await storage.clear_channel(OTHER_GUILD, 42) is False
    assert await storage.clear_channel(GUILD, 42) is True
    settings = await storage.get_guild_settings(GUILD)
    assert settings.readout_channel_id is None
    # A role with the same id is a different setting and stays.
    assert settings.ignore_role_id == 42
    assert await storage.clear_channel(GUILD, 42) is False


async def test_clear_role_only_when_it_is_the_ignored_role(database: Database) -> None:
    storage = await Storage.open(database.location)
    assert await storage.clear_role(GUILD, 7) is False
    await storage.set_guild_setting(GUILD, "ignore_role_id", 7)
    await storage.set_guild_setting(GUILD, "readout_channel_id", 7)
    assert await storage.clear_role(GUILD, 8) is False
    assert await storage.clear_role(GUILD, 7) is True
    await storage.close()

    reopened = await Storage.open(database.location)
    try:
        settings = await reopened.get_guild_settings(GUILD)
        assert settings.ignore_role_id is None
        assert settings.readout_channel_id == 7
    finally:
        await reopened.close()


async def test_member_preferences_set_reset_and_survive_a_reopen(database: Database) -> None:
    storage = await Storage.open(database.location)
    for name, value in SAMPLE_PREFERENCES.items():
        assert await storage.set_member_preference(GUILD, USER, name, value) is None
    assert await storage.set_member_preference(GUILD, USER, "rate", "fast") == "slow"
    await storage.set_member_preference(OTHER_GUILD, USER, "nickname", "Elsewhere")
    await storage.set_member_preference(GUILD, USER + 1, "nickname", "Someone else")
    await storage.close()

    reopened = await Storage.open(database.location)
    try:
        expected = MemberPreferences(GUILD, USER, voice_id="my-voice", rate="fast", nickname="Robin")
        assert await reopened.get_member_preferences(GUILD, USER) == expected
        assert await reopened.set_member_preference(GUILD, USER, "nickname", None) == "Robin"
        assert (await reopened.get_member_preferences(GUILD, USER)).nickname is None

        assert await reopened.reset_member_preferences(GUILD, USER) == MemberPreferences(
            GUILD, USER, voice_id="my-voice", rate="fast"
        )
        assert (await reopened.get_member_preferences(GUILD, USER)).is_empty()
        # The same member elsewhere, and another member here, keep theirs.
        assert (await reopened.get_member_preferences(OTHER_GUILD, USER)).nickname == "Elsewhere"
        assert (await reopened.get_member_preferences(GUILD, USER + 1)).nickname == "Someone else"
    finally:
        await reopened.close()

    again = await Storage.open(database.location)
    try:
        assert (await again.get_member_preferences(GUILD, USER)).is_empty()
    finally:
        await again.close()


async def test_member_preference_of_the_wrong_type_is_refused(storage: Storage) -> None:
    with pytest.raises(TypeError, match="nickname"):
        await storage.set_member_preference(GUILD, USER, "nickname", 5)  # type: ignore[arg-type]


async def test_reads_are_served_from_the_cache_and_writes_go_through(database: Database) -> None:
    storage = await Storage.open(database.location)
    try:
        await storage.set_guild_setting(GUILD, "language", "de-DE")
        await storage.set_member_preference(GUILD, USER, "nickname", "Robin")
        assert (await storage.get_guild_settings(GUILD)).language == "de-DE"

        # A change made behind the storage's back is not seen: reads come from memory.
        await database.execute("UPDATE guild_settings SET language = 'xx-XX'")
        await database.execute("UPDATE member_preferences SET nickname = 'Outside'")
        assert (await storage.get_guild_settings(GUILD)).language == "de-DE"
        assert (await storage.get_member_preferences(GUILD, USER)).nickname == "Robin"

        # A write goes to the file, where a second storage on the same file finds it.
        await storage.set_guild_setting(GUILD, "pitch", "+5%")
        second = await Storage.open(database.location)
        try:
            seen = await second.get_guild_settings(GUILD)
            assert seen.pitch == "+5%"
        finally:
            await second.close()
    finally:
        await storage.close()


async def test_evicted_entries_are_reloaded_from_the_database(database: Database) -> None:
    storage = await Storage.open(database.location, cache_size=2)
    try:
        for guild_id in range(1, 6):
            await storage.set_guild_setting(guild_id, "max_length", guild_id * 100)
            await storage.set_member_preference(guild_id, USER, "rate", f"+{guild_id}%")
        assert len(storage._guild_settings) == 2
        for guild_id in range(1, 6):
            assert (await storage.get_guild_settings(guild_id)).max_length == guild_id * 100
            assert (await storage.get_member_preferences(guild_id, USER)).rate == f"+{guild_id}%"
    finally:
        await storage.close()


async def test_concurrent_setting_writes_all_land(database: Database) -> None:
    storage = await Storage.open(database.location)
    await asyncio.gather(
        *(storage.set_member_preference(GUILD, user_id, "nickname", f"n{user_id}") for user_id in range(50)),
        *(storage.set_guild_setting(guild_id, "max_length", guild_id + 1) for guild_id in range(50)),
    )
    await storage.close()
    reopened = await Storage.open(database.location)
    try:
        for number in range(50):
            assert (await reopened.get_member_preferences(GUILD, number)).nickname == f"n{number}"
            assert (await reopened.get_guild_settings(number)).max_length == number + 1
    finally:
        await reopened.close()


async def test_cache_matches_the_database_after_cancelled_writes(database: Database) -> None:
    storage = await Storage.open(database.location)
    try:
        await storage.get_guild_settings(GUILD)
        for steps in range(8):
            # Cancel the write at different points; whether it landed or not, memory must agree with disk.
            task = asyncio.create_task(storage.set_guild_setting(GUILD, "max_length", steps + 1))
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            row = await database.fetchone("SELECT max_length FROM guild_settings WHERE guild_id = ?", GUILD)
            on_disk = None if row is None else row[0]
            assert (await storage.get_guild_settings(GUILD)).max_length == on_disk
        # The storage is still usable afterwards.
        await storage.set_guild_setting(GUILD, "max_length", 99)
        assert (await storage.get_guild_settings(GUILD)).max_length == 99
    finally:
        await storage.close()
