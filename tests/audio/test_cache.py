"""Tests for bot.audio.cache: keys, hits and misses, eviction order, damaged entries and restarts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bot.audio.cache import MESSAGE_AUDIO_SECONDS, REMOVE_EXPIRED_SECONDS, AudioCache, CachedAudio, cache_key

REQUEST = {
    "voice_id": "3f1c2a9e-0000-4000-8000-000000000001",
    "text": "Hello there.",
    "language": "en-US",
    "rate": "+10%",
    "pitch": "default",
    "volume": "default",
    "intensity": None,
    "format": "mp3",
    "pronunciation_dict": {"GIF": "jif", "SQL": "sequel"},
}


def _key(text: str) -> str:
    return cache_key(**{**REQUEST, "text": text})


def _entry_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.audio"))


# cache_key


def test_cache_key_is_a_stable_sha256_hex_digest() -> None:
    key = cache_key(**REQUEST)
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert key == cache_key(**REQUEST)
    assert key == AudioCache.cache_key(**REQUEST)


def test_cache_key_ignores_argument_order_mapping_order_and_absent_parts() -> None:
    reordered = dict(reversed(list(REQUEST.items())))
    reordered["pronunciation_dict"] = {"SQL": "sequel", "GIF": "jif"}
    assert cache_key(**reordered) == cache_key(**REQUEST)
    without_intensity = {name: value for name, value in REQUEST.items() if name != "intensity"}
    assert cache_key(**without_intensity) == cache_key(**REQUEST)


@pytest.mark.parametrize(
    ("part", "value"),
    [
        ("voice_id", "3f1c2a9e-0000-4000-8000-000000000002"),
        ("text", "Hello there!"),
        ("language", "en-GB"),
        ("rate", "+11%"),
        ("pitch", "-5%"),
        ("volume", "loud"),
        ("intensity", 0),
        ("format", "wav"),
        ("pronunciation_dict", {"GIF": "gif", "SQL": "sequel"}),
    ],
)
def test_cache_key_changes_with_every_part_of_the_request(part: str, value: object) -> None:
    assert cache_key(**{**REQUEST, part: value}) != cache_key(**REQUEST)


# get and put


async def test_a_stored_clip_comes_back(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path / "cache", max_bytes=1_000_000)
    key = cache_key(**REQUEST)
    assert await cache.get(key) is None
    await cache.put(key, b"ID3 mp3 bytes", duration=1.25, output_type="mp3")
    assert await cache.get(key) == CachedAudio(data=b"ID3 mp3 bytes", duration=1.25, output_type="mp3")
    assert await cache.get(_key("something else")) is None


async def test_a_clip_without_duration_comes_back_without_one(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, max_bytes=1_000_000)
    await cache.put(_key("a"), b"RIFF....WAVE", duration=None, output_type="wav")
    assert await cache.get(_key("a")) == CachedAudio(data=b"RIFF....WAVE", duration=None, output_type="wav")


async def test_the_folder_is_created_on_first_use_only(tmp_path: Path) -> None:
    directory = tmp_path / "nested" / "audio-cache"
    cache = AudioCache(directory, max_bytes=1_000)
    assert not directory.exists()
    await cache.put(_key("a"), b"abc", duration=0.1, output_type="mp3")
    assert directory.is_dir()
    assert len(_entry_files(directory)) == 1


async def test_put_leaves_no_temporary_file(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, max_bytes=1_000_000)
    for index in range(5):
        await cache.put(_key(str(index)), b"x" * 100, duration=1.0, output_type="mp3")
    assert sorted(path.suffix for path in tmp_path.iterdir() if path.is_file()) == [".audio"] * 5
    assert [path.name for path in tmp_path.iterdir() if path.is_dir()] == ["messages"]


async def test_putting_a_key_again_replaces_its_clip_and_its_size(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, max_bytes=1_000_000)
    key = _key("a")
    await cache.put(key, b"x" * 500, duration=1.0, output_type="mp3")
    await cache.put(key, b"y" * 100, duration=2.0, output_type="mp3")
    assert await cache.get(key) == CachedAudio(data=b"y" * 100, duration=2.0, output_type="mp3")
    assert len(cache) == 1
    assert cache.total_bytes == sum(path.stat().st_size for path in _entry_files(tmp_path))


async def test_a_key_that_is_not_a_digest_is_refused(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, max_bytes=1_000)
    with pytest.raises(ValueError, match="64 lowercase hex"):
        await cache.get("../../etc/passwd")
    with pytest.raises(ValueError, match="64 lowercase hex"):
        await cache.put("A" * 64, b"abc", duration=None, output_type="mp3")


# eviction


async def test_eviction_removes_the_least_recently_used_first(tmp_path: Path) -> None:
    first = b"1" * 1000
    cache = AudioCache(tmp_path, max_bytes=3 * 1200)
    a, b, c, d = (_key(name) for name in "abcd")
    await cache.put(a, first, duration=1.0, output_type="mp3")
    await cache.put(b, first, duration=1.0, output_type="mp3")
    await cache.put(c, first, duration=1.0, output_type="mp3")
    assert len(cache) == 3
    assert await cache.get(a) is not None  # a is now the most recently used
    await cache.put(d, first, duration=1.0, output_type="mp3")
    assert await cache.get(b) is None
    assert await cache.get(a) is not None
    assert await cache.get(c) is not None
    assert await cache.get(d) is not None
    assert len(_entry_files(tmp_path)) == 3
    assert cache.total_bytes <= cache.max_bytes
    assert cache.total_bytes == sum(path.stat().st_size for path in _entry_files(tmp_path))


async def test_a_clip_larger_than_the_whole_cache_is_not_stored(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, max_bytes=2_000)
    await cache.put(_key("small"), b"s" * 100, duration=1.0, output_type="mp3")
    await cache.put(_key("huge"), b"h" * 5_000, duration=1.0, output_type="mp3")
    assert await cache.get(_key("huge")) is None
    assert await cache.get(_key("small")) is not None


async def test_a_hit_marks_the_file_as_recently_used(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, max_bytes=1_000_000)
    await cache.put(_key("a"), b"abc", duration=None, output_type="mp3")
    (path,) = _entry_files(tmp_path)
    os.utime(path, (1_000_000, 1_000_000))
    await cache.get(_key("a"))
    assert path.stat().st_mtime > time.time() - 3600


# damage done behind the cache's back


async def test_a_file_deleted_behind_the_cache_is_a_miss(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, max_bytes=10_000)
    await cache.put(_key("a"), b"a" * 100, duration=1.0, output_type="mp3")
    await cache.put(_key("b"), b"b" * 100, duration=1.0, output_type="mp3")
    (tmp_path / f"{_key('a')}.audio").unlink()
    assert await cache.get(_key("a")) is None
    assert await cache.get(_key("b")) is not None
    assert cache.total_bytes == sum(path.stat().st_size for path in _entry_files(tmp_path))
    # Evicting an entry whose file is already gone must not fail either.
    (tmp_path / f"{_key('b')}.audio").unlink()
    for index in range(40):
        await cache.put(_key(str(index)), b"x" * 400, duration=1.0, output_type="mp3")
    assert cache.total_bytes <= cache.max_bytes


@pytest.mark.parametrize(
    "damage",
    [
        lambda contents: contents[: len(contents) - 10],
        lambda contents: contents[:-1] + bytes([contents[-1] ^ 0xFF]),
        lambda contents: b"",
        lambda contents: b"not a cache file at all",
        lambda contents: contents.replace(b'"size"', b'"sise"'),
    ],
    ids=["truncated", "flipped byte", "empty", "foreign", "bad header"],
)
async def test_a_damaged_entry_is_a_miss_and_is_removed(tmp_path: Path, damage: object) -> None:
    cache = AudioCache(tmp_path, max_bytes=10_000)
    key = _key("a")
    await cache.put(key, b"audio bytes " * 20, duration=2.5, output_type="mp3")
    path = tmp_path / f"{key}.audio"
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    assert await cache.get(key) is None
    assert not path.exists()
    assert cache.total_bytes == 0
    await cache.put(key, b"fresh", duration=0.5, output_type="mp3")
    assert await cache.get(key) == CachedAudio(data=b"fresh", duration=0.5, output_type="mp3")


# restarts


async def test_a_new_cache_on_the_same_folder_finds_the_entries(tmp_path: Path) -> None:
    first = AudioCache(tmp_path, max_bytes=100_000)
    for name in "abc":
        await first.put(_key(name), name.encode() * 100, duration=1.0, output_type="wav")
    second = AudioCache(tmp_path, max_bytes=100_000)
    assert await second.get(_key("b")) == CachedAudio(data=b"b" * 100, duration=1.0, output_type="wav")
    assert len(second) == 3
    assert second.total_bytes == first.total_bytes


async def test_a_restart_evicts_by_file_age_down_to_a_smaller_limit(tmp_path: Path) -> None:
    first = AudioCache(tmp_path, max_bytes=100_000)
    for name in "abcd":
        await first.put(_key(name), b"x" * 1000, duration=1.0, output_type="mp3")
    entry_size = (tmp_path / f"{_key('a')}.audio").stat().st_size
    # Last used: c long ago, then a, then d, then b most recently.
    for age, name in zip((400, 300, 200, 100), "cadb", strict=True):
        stamp = time.time() - age
        os.utime(tmp_path / f"{_key(name)}.audio", (stamp, stamp))
    second = AudioCache(tmp_path, max_bytes=2 * entry_size)
    await second.load()
    assert second.total_bytes == 2 * entry_size
    assert sorted(path.name for path in _entry_files(tmp_path)) == sorted(f"{_key(name)}.audio" for name in "db")


async def test_a_restart_ignores_foreign_files_and_removes_stale_temporary_ones(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("the operator's own file")
    stale = tmp_path / f".{_key('a')}.abc123.tmp"
    stale.write_bytes(b"half written")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    recent = tmp_path / f".{_key('b')}.def456.tmp"
    recent.write_bytes(b"being written by another process")
    cache = AudioCache(tmp_path, max_bytes=10_000)
    await cache.load()
    assert len(cache) == 0
    assert cache.total_bytes == 0
    assert not stale.exists()
    assert recent.exists()
    assert (tmp_path / "notes.txt").exists()


# put_soon: written after the answer, served from memory meanwhile


async def test_put_soon_serves_the_clip_at_once_and_writes_it_in_the_background(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path / "cache", 10_000_000)
    key = _key("Written later.")
    cache.put_soon(key, b"ID3-audio", duration=1.5, output_type="mp3")
    assert key in cache
    assert await cache.get(key) == CachedAudio(b"ID3-audio", 1.5, "mp3")
    await cache.flush()
    assert len(_entry_files(tmp_path / "cache")) == 1
    # A new process reads what the background write left on disk.
    assert await AudioCache(tmp_path / "cache", 10_000_000).get(key) == CachedAudio(b"ID3-audio", 1.5, "mp3")


async def test_a_miss_finds_an_entry_another_process_wrote(tmp_path: Path) -> None:
    ours = AudioCache(tmp_path / "cache", 10_000_000)
    await ours.load()
    key = _key("From the command line.")
    theirs = AudioCache(tmp_path / "cache", 10_000_000)
    await theirs.put(key, b"ID3-cli", duration=2.0, output_type="mp3")
    assert key not in ours  # not in this process's index...
    assert await ours.get(key) == CachedAudio(b"ID3-cli", 2.0, "mp3")  # ...but a get still finds it
    assert key in ours


# members' messages: at most a day (PRODUCT.md, Privacy)


class Clock:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_a_members_message_audio_is_kept_at_most_a_day(tmp_path: Path) -> None:
    clock = Clock()
    cache = AudioCache(tmp_path / "cache", max_bytes=1_000_000, clock=clock)
    said, read = _key("a /say clip"), _key("a readout")
    await cache.put(said, b"said", duration=1.0, output_type="mp3")
    await cache.put(read, b"read", duration=1.0, output_type="mp3", from_message=True)
    assert (tmp_path / "cache" / "messages" / f"{read}.audio").exists()
    assert await cache.get(read) == CachedAudio(b"read", 1.0, "mp3")

    # Read back often, it is never kept longer: its day counts from when it was written.
    clock.now += MESSAGE_AUDIO_SECONDS - 60
    assert await cache.get(read) is not None
    assert await cache.remove_expired() == 0
    clock.now += 120
    assert await cache.get(read) is None
    assert not (tmp_path / "cache" / "messages" / f"{read}.audio").exists()
    assert await cache.get(said) == CachedAudio(b"said", 1.0, "mp3")
    assert MESSAGE_AUDIO_SECONDS + REMOVE_EXPIRED_SECONDS <= 24 * 3600


async def test_expired_message_audio_is_swept_from_the_folder_and_at_start(tmp_path: Path) -> None:
    clock = Clock()
    folder = tmp_path / "cache"
    cache = AudioCache(folder, max_bytes=1_000_000, clock=clock)
    old, new = _key("old readout"), _key("new readout")
    await cache.put(old, b"o" * 100, duration=1.0, output_type="mp3", from_message=True)
    await cache.put(new, b"n" * 100, duration=1.0, output_type="mp3", from_message=True)
    # Written a day ago, as far as the file says (another process may have written it; the sweep reads the folder).
    day_ago = time.time() - 24 * 3600
    os.utime(folder / "messages" / f"{old}.audio", (day_ago, day_ago))
    size = cache.total_bytes
    assert await cache.remove_expired() == 1
    assert cache.total_bytes < size and old not in cache and new in cache

    os.utime(folder / "messages" / f"{new}.audio", (day_ago, day_ago))
    restarted = AudioCache(folder, max_bytes=1_000_000)
    await restarted.load()
    assert new not in restarted and list((folder / "messages").iterdir()) == []


async def test_message_audio_counts_toward_the_size_cap_and_is_evicted_like_the_rest(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path / "cache", max_bytes=500)
    first = _key("first readout")
    await cache.put(first, b"f" * 200, duration=1.0, output_type="mp3", from_message=True)
    for index in range(3):
        await cache.put(_key(f"say {index}"), b"s" * 200, duration=1.0, output_type="mp3")
    assert first not in cache
    assert not (tmp_path / "cache" / "messages" / f"{first}.audio").exists()
    assert cache.total_bytes <= 500
