"""`python -m bot say`: the operator's /say, checked before spending, cached like the bot's, one line per failure."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from pydantic import SecretStr

from bot.cli_say import OPERATOR_ID, CatalogueSnapshotClient
from bot.storage import Storage
from tests.cli_support import cli_env, one_line, run_cli
from tests.fakes.unmixr import FakeUnmixr

__all__ = ["cli_env"]  # a fixture the tests below use by name


def tts_requests(unmixr: FakeUnmixr) -> list[dict]:
    """The bodies of the /short-tts/ requests Unmixr received."""
    return [request.json for request in unmixr.requests if request.endpoint == "/short-tts/"]


async def codec_of(path: Path) -> str:
    """The codec ffprobe finds in the file."""
    probe = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path), stdout=asyncio.subprocess.PIPE
    )
    described, _ = await probe.communicate()
    assert probe.returncode == 0
    [stream] = json.loads(described)["streams"]
    return stream["codec_name"]


async def test_a_repeated_say_is_served_from_the_cache_without_any_upstream_call(
    cli_env: dict[str, str], tmp_path: Path, unmixr: FakeUnmixr
) -> None:
    status, first, stderr = await run_cli(
        "say", "Hello from the operator.", "--voice", "Brian", "-o", "one.mp3", env=cli_env, cwd=tmp_path
    )
    assert status == 0, stderr
    assert "Brian" in first and "credits" in first and "from cache" not in first
    assert len(tts_requests(unmixr)) == 1
    seen = len(unmixr.requests)

    status, second, stderr = await run_cli(
        "say", "Hello from the operator.", "--voice", "Brian", "-o", "two.mp3", env=cli_env, cwd=tmp_path
    )
    assert status == 0, stderr
    assert "from cache, 0 credits" in second
    # Not even the catalogue is fetched again: the pages the first run needed were kept beside the cache.
    assert len(unmixr.requests) == seen
    assert (tmp_path / "one.mp3").read_bytes() == (tmp_path / "two.mp3").read_bytes()

    # Both went through the budget door: recorded in the usage ledger under the operator's reserved id.
    async with await Storage.open(tmp_path / "data" / "bot.sqlite3") as storage:
        usage = await storage.usage_for_day(OPERATOR_ID, datetime.now(UTC).date())
    assert usage.requests == 2 and usage.cache_hits == 1
    assert usage.credits_prebuilt == len("Hello from the operator.")


async def test_the_format_comes_from_the_extension_and_format_always_wins(
    cli_env: dict[str, str], tmp_path: Path, unmixr: FakeUnmixr
) -> None:
    status, stdout, stderr = await run_cli("say", "A wave file.", "-o", "out.wav", env=cli_env, cwd=tmp_path)
    assert status == 0, stderr
    assert (tmp_path / "out.wav").read_bytes()[:4] == b"RIFF"
    assert await codec_of(tmp_path / "out.wav") == "pcm_s16le"

    status, stdout, stderr = await run_cli(
        "say", "Another file.", "-o", "speech.audio", "--format", "mp3", env=cli_env, cwd=tmp_path
    )
    assert status == 0, stderr
    assert await codec_of(tmp_path / "speech.audio") == "mp3"

    status, stdout, stderr = await run_cli(
        "say", "Forced format.", "-o", "forced.wav", "--format", "mp3", env=cli_env, cwd=tmp_path
    )
    assert stdout.startswith("Wrote forced.wav: Brian, mp3, "), stdout
    assert status == 0, stderr
    assert await codec_of(tmp_path / "forced.wav") == "mp3"
    assert [request["output_type"] for request in tts_requests(unmixr)] == ["wav", "mp3", "mp3"]


async def test_an_unknown_extension_needs_format(cli_env: dict[str, str], tmp_path: Path, unmixr: FakeUnmixr) -> None:
    status, stdout, stderr = await run_cli("say", "Hello.", "-o", "speech.ogg", env=cli_env, cwd=tmp_path)
    assert status == 2
    assert "--format" in one_line(stderr) and ".mp3 or .wav" in one_line(stderr)
    assert stdout == ""
    assert unmixr.requests == []


async def test_an_unwritable_output_path_is_refused_before_anything_is_spent(
    cli_env: dict[str, str], tmp_path: Path, unmixr: FakeUnmixr
) -> None:
    status, stdout, stderr = await run_cli(
        "say", "Hello there.", "--voice", "Brian", "-o", "/nonexistent/x.mp3", env=cli_env, cwd=tmp_path
    )
    assert status == 1
    assert one_line(stderr) == "Cannot write /nonexistent/x.mp3: the folder /nonexistent does not exist."
    assert unmixr.requests == []
    assert not (tmp_path / "data").exists(), "nothing is opened before the output is known to be writable"

    (tmp_path / "folder").mkdir()
    status, stdout, stderr = await run_cli("say", "Hello there.", "-o", "folder", env=cli_env, cwd=tmp_path)
    assert stdout == "", stdout
    assert status == 1
    assert "is a folder" in one_line(stderr)
    assert unmixr.requests == []


async def test_bad_input_gets_the_same_sentence_as_say_and_spends_nothing(
    cli_env: dict[str, str], tmp_path: Path, unmixr: FakeUnmixr
) -> None:
    cases = [
        (["--rate", "fast!!"], "Rate must be a percentage from -100% to +100% or one of"),
        (["--pitch", "+300%"], "Pitch must be a percentage from -50% to +50% or one of"),
        (["--voice", "Nobody At All"], "There is no voice called “Nobody At All”"),
        (["--intensity", "300"], "Intensity must be a whole number from -100 to 100"),
        (["--language", "xx-XX"], "does not speak xx-XX"),
    ]
    for options, expected in cases:
        status, stdout, stderr = await run_cli(
            "say", "Hello there.", "-o", "out.mp3", *options, env=cli_env, cwd=tmp_path
        )
        assert status == 1, (options, stdout, stderr)
        line = one_line(stderr)
        assert expected in line, (options, line)
        assert "**" not in line
    assert tts_requests(unmixr) == []
    assert not (tmp_path / "out.mp3").exists()


async def test_prosody_refusal_lists_the_accepted_forms(
    cli_env: dict[str, str], tmp_path: Path, unmixr: FakeUnmixr
) -> None:
    status, stdout, stderr = await run_cli("say", "Hi.", "-o", "o.mp3", "--rate", "+300%", env=cli_env, cwd=tmp_path)
    assert stdout == "", stdout
    assert status == 1
    line = one_line(stderr)
    assert "-100%" in line and "+100%" in line and "x-fast" in line
    assert tts_requests(unmixr) == []


async def test_text_over_6000_characters_is_refused_before_any_upstream_call(
    cli_env: dict[str, str], tmp_path: Path, unmixr: FakeUnmixr
) -> None:
    status, stdout, stderr = await run_cli("say", "word " * 2000, "-o", "long.mp3", env=cli_env, cwd=tmp_path)
    assert stdout == "", stdout
    assert status == 1
    assert one_line(stderr) == (
        "That text is 10,000 characters long but one request takes at most 6,000; shorten it or split it."
    )
    assert unmixr.requests == []


async def test_empty_text_is_nothing_to_say(cli_env: dict[str, str], tmp_path: Path, unmixr: FakeUnmixr) -> None:
    status, stdout, stderr = await run_cli("say", "   ", "-o", "empty.mp3", env=cli_env, cwd=tmp_path)
    assert stdout == "", stdout
    assert status == 1
    assert "nothing to say" in one_line(stderr)
    assert unmixr.requests == []


async def test_unmixr_refusals_and_outages_are_one_line(
    cli_env: dict[str, str], tmp_path: Path, unmixr: FakeUnmixr
) -> None:
    unmixr.fail_next(505, endpoint="/short-tts/")
    status, stdout, stderr = await run_cli("say", "Out of credits.", "-o", "a.mp3", env=cli_env, cwd=tmp_path)
    assert status == 1
    # Told to the operator, who can add the credits (a member is told that an admin needs to).
    assert one_line(stderr) == (
        "The Unmixr account has run out of prebuilt-voice characters; add credits to it, then try again."
    )
    assert not (tmp_path / "a.mp3").exists()

    gone = {**cli_env, "UNMIXR_BASE_URL": "http://127.0.0.1:9/api/v1"}
    status, stdout, stderr = await run_cli("say", "Nobody answers.", "-o", "b.mp3", env=gone, cwd=tmp_path)
    assert stdout == "", stdout
    assert status == 1
    assert one_line(stderr) == (
        "Unmixr could not be reached at http://127.0.0.1:9/api/v1 (Connection refused); check the network and "
        "UNMIXR_BASE_URL."
    )


async def test_say_without_voice_uses_the_default_voice(
    cli_env: dict[str, str], tmp_path: Path, unmixr: FakeUnmixr
) -> None:
    status, stdout, stderr = await run_cli("say", "Default voice.", "-o", "d.mp3", env=cli_env, cwd=tmp_path)
    assert status == 0, stderr
    [request] = tts_requests(unmixr)
    assert request["voice_id"]
    assert stdout.startswith("Wrote d.mp3: ")


async def test_catalogue_pages_fetched_at_once_are_all_kept(tmp_path: Path, unmixr: FakeUnmixr) -> None:
    snapshot = tmp_path / "catalogue-pages.json"
    categories = ["prebuilt-voices", "multilingual-voices", "animation-voices", "child-voices", "chat-voices"]

    async def fetch_all() -> list[int]:
        async with aiohttp.ClientSession() as session:
            client = CatalogueSnapshotClient(
                session, SecretStr(unmixr.api_key), base_url=unmixr.base_url, snapshot=snapshot
            )
            pages = await asyncio.gather(*(client.voice_list(category=c, page_size=100) for c in categories))
            await client.save()
        return [page.count for page in pages]

    first = await fetch_all()
    assert len(unmixr.requests) == len(categories)
    assert await fetch_all() == first
    assert len(unmixr.requests) == len(categories), "every page fetched concurrently was kept"


async def test_with_a_database_url_a_repeat_on_another_machine_comes_from_the_shared_tier(
    cli_env: dict[str, str], tmp_path: Path, unmixr: FakeUnmixr, postgres_database: str
) -> None:
    outputs = []
    for machine in ("one", "two"):
        # Each machine has its own audio-cache folder; the database is the same.
        env = {**cli_env, "DATABASE_URL": postgres_database, "AUDIO_CACHE_DIR": str(tmp_path / machine / "cache")}
        status, stdout, stderr = await run_cli(
            "say", "Said on one machine, then on another.", "-o", f"{machine}.mp3", env=env, cwd=tmp_path
        )
        assert status == 0, stderr
        outputs.append(stdout)
    assert "from cache" not in outputs[0] and "from cache, 0 credits" in outputs[1]
    assert len(tts_requests(unmixr)) == 1
    assert (tmp_path / "one.mp3").read_bytes() == (tmp_path / "two.mp3").read_bytes()


async def test_the_operators_own_use_counts_toward_the_accounts_day_and_is_capped_by_it(
    cli_env: dict[str, str], tmp_path: Path, unmixr: FakeUnmixr
) -> None:
    capped = {**cli_env, "ACCOUNT_DAILY_BUDGET": "60"}
    first = "The operator speaks for a while now."  # 36 characters
    status, stdout, stderr = await run_cli("say", first, "-o", "one.mp3", env=capped, cwd=tmp_path)
    assert status == 0, stderr
    async with await Storage.open(tmp_path / "data" / "bot.sqlite3") as storage:
        assert await storage.account_usage(datetime.now(UTC).date()) == len(first)

    seen = len(tts_requests(unmixr))
    status, stdout, stderr = await run_cli(
        "say", "And then says a little more.", "-o", "two.mp3", env=capped, cwd=tmp_path
    )
    assert status == 1 and stdout == ""
    line = one_line(stderr)
    assert line.startswith("That would pass ACCOUNT_DAILY_BUDGET, the account's limit of 60 credits a day")
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    assert f"it frees up at {tomorrow:%Y-%m-%d} 00:00 UTC" in line
    assert len(tts_requests(unmixr)) == seen and not (tmp_path / "two.mp3").exists()
    # A repeat from the cache costs nothing, so it is never refused.
    status, stdout, stderr = await run_cli("say", first, "-o", "again.mp3", env=capped, cwd=tmp_path)
    assert status == 0 and "from cache" in stdout, stderr
