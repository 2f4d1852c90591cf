"""Hostile data end to end: what Unmixr or members send is shortened or refused, never refused by Discord.

The Discord stand-in enforces Discord's limits (content, embeds, menus, choices, URL schemes, upload size) and
answers over-limit payloads with 400 "Invalid Form Body"; every reply here must therefore be accepted as sent.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest

from bot.limits import (
    AUTHOR_NAME,
    CHOICE_NAME,
    CHOICE_VALUE,
    CONTENT,
    ELLIPSIS,
    EMBED_DESCRIPTION,
    EMBED_TITLE,
    EMBED_TOTAL,
    FIELD_NAME,
    FIELD_VALUE,
    FOOTER_TEXT,
    SELECT_OPTION_TEXT,
)
from bot.replies import post
from tests.cogs.test_voices import button, click, select_menu
from tests.conftest import UNMIXR_KEY, World
from tests.fakes.discord_server import ClientRefused, FakeInteraction
from tests.fakes.discord_voice import FakeVoiceServer
from tests.fakes.unmixr import FakeUnmixr
from tests.fakes.unmixr_catalogue import BRIAN_ID, CATALOGUE_ORIGIN, default_voices

HOSTILE_COUNT = 100
PAGE_SIZE = 10
BAD_AVATARS = ("/avatars/relative.png", "javascript:alert(1)", "ftp://files.example/avatar.png")
# A language tag longer than anything Discord can carry as a choice value.
HUGE_LANGUAGES = [letter * 200 for letter in "abcdefghijkl"]


def hostile_name(index: int) -> str:
    """A 300-character voice name, distinct from its start."""
    return (f"Hostile {index:03d} " + "Unreasonablylongvoicename " * 12)[:300]


def hostile_voices() -> list[dict[str, Any]]:
    """100 voices with over-long texts and bad URLs ahead of the default catalogue."""
    template = next(voice for voice in default_voices() if voice["uuid"] == BRIAN_ID)
    voices = []
    for index in range(HOSTILE_COUNT):
        voice = copy.deepcopy(template)
        voice["uuid"] = identifier = str(uuid.UUID(int=index + 1))
        voice["avatar_url"] = f"{CATALOGUE_ORIGIN}/avatars/{identifier}.png"
        voice["sample_voice_url"] = f"{CATALOGUE_ORIGIN}/samples/{identifier}.mp3"
        voice["supported_locales"] = {"en-US": voice["sample_voice_url"]}
        voice["character"] = hostile_name(index)
        voice["description"] = ("A description that goes on and on. " * 150)[:5000]
        voice["use_cases"] = [f"Use case number {n} with a very long label" for n in range(60)]
        voice["personality"] = [f"Trait {n} " + "x" * 40 for n in range(60)]
        voice["age"] = "A" * 2000
        if index % 4 < len(BAD_AVATARS):
            voice["avatar_url"] = BAD_AVATARS[index % 4]
        if index % 4 == 1:
            voice["sample_voice_url"] = "javascript:alert(1)"
        voices.append(voice)
    voices[0]["other_languages"] = HUGE_LANGUAGES
    # A uuid no menu or choice can carry: the voice is usable by name but never offered in a list.
    voices[5]["uuid"] = "u" * 150
    return voices + default_voices()


@pytest.fixture
async def unmixr() -> AsyncIterator[FakeUnmixr]:
    fake = FakeUnmixr(api_key=UNMIXR_KEY, voices=hostile_voices())
    await fake.start()
    yield fake
    await fake.close()


def embed_total(embed: dict[str, Any]) -> int:
    """The characters Discord counts toward an embed's 6,000."""
    parts = [embed.get("title"), embed.get("description")]
    parts += [text for field in embed.get("fields", []) for text in (field["name"], field["value"])]
    parts += [(embed.get("footer") or {}).get("text"), (embed.get("author") or {}).get("name")]
    return sum(len(part.strip()) for part in parts if part)


def assert_within_limits(embed: dict[str, Any]) -> None:
    """Every text of an embed within Discord's limits (the stand-in refuses otherwise; this says which)."""
    assert len(embed.get("title", "")) <= EMBED_TITLE
    assert len(embed.get("description", "")) <= EMBED_DESCRIPTION
    for field in embed.get("fields", []):
        assert len(field["name"]) <= FIELD_NAME and len(field["value"]) <= FIELD_VALUE
    assert len((embed.get("footer") or {}).get("text", "")) <= FOOTER_TEXT
    assert len((embed.get("author") or {}).get("name", "")) <= AUTHOR_NAME
    assert embed_total(embed) <= EMBED_TOTAL


def all_accepted(interaction: FakeInteraction) -> None:
    """No response of the bot was refused by the stand-in."""
    refused = [(r.kind, r.status, r.error) for r in interaction.responses if r.status >= 300]
    assert refused == [], refused


async def list_voices(world: World, **options: Any) -> tuple[FakeInteraction, dict[str, Any]]:
    interaction = await world.slash("voices", options)
    await interaction.wait_final()
    all_accepted(interaction)
    message = interaction.final_message()
    assert message is not None
    return interaction, message


async def test_a_page_that_ignores_page_size_lists_one_page_of_shortened_names(running: World) -> None:
    running.unmixr.page_size_override = 100
    _, message = await list_voices(running)
    embed = message["embeds"][0]
    assert_within_limits(embed)
    names = [field["name"] for field in embed["fields"]]
    assert len(names) == PAGE_SIZE
    assert names[0].startswith("Hostile 000") and names[0].endswith(ELLIPSIS)
    assert all(len(name) <= FIELD_NAME for name in names)
    # Sixty long use cases each: the summary is cut, not refused.
    assert all(field["value"].endswith(ELLIPSIS) for field in embed["fields"])
    options = select_menu(message)["options"]
    # Ten voices on the page, one of them with a uuid no menu can carry.
    assert len(options) == PAGE_SIZE - 1
    assert len({option["value"] for option in options}) == len(options)
    assert all(len(option["label"]) <= SELECT_OPTION_TEXT for option in options)
    assert all(len(option["description"]) <= SELECT_OPTION_TEXT for option in options)
    assert "u" * 150 not in [option["value"] for option in options]
    # The next page still fits too.
    pressed = await click(running, message, button(message, "▶")["custom_id"], running.member)
    all_accepted(pressed)
    page_two = pressed.final_message()
    assert page_two is not None and len(page_two["embeds"][0]["fields"]) == PAGE_SIZE
    assert_within_limits(page_two["embeds"][0])


async def test_details_of_a_hostile_voice_fit_and_leave_bad_urls_out(running: World) -> None:
    _, listing = await list_voices(running)
    menu = select_menu(listing)
    shown: dict[str, dict[str, Any]] = {}
    details_of: dict[str, dict[str, Any]] = {}
    for index in range(4):
        voice_id = str(uuid.UUID(int=index + 1))
        picked = await click(running, listing, menu["custom_id"], running.member, component_type=3, values=[voice_id])
        all_accepted(picked)
        details = picked.final_message()
        assert details is not None
        shown[voice_id] = details["embeds"][0]
        details_of[voice_id] = details
    for index, (voice_id, embed) in enumerate(shown.items()):
        assert_within_limits(embed)
        assert embed["title"].startswith(f"Hostile {index:03d}") and embed["title"].endswith(ELLIPSIS)
        assert embed["description"].endswith(ELLIPSIS) and len(embed["description"]) > 1000
        fields = {field["name"]: field["value"] for field in embed["fields"]}
        assert fields["Age"].endswith(ELLIPSIS)
        if index < len(BAD_AVATARS):
            assert "thumbnail" not in embed, f"{BAD_AVATARS[index]} must be left out"
        else:
            assert embed["thumbnail"]["url"] == f"{running.unmixr.origin}/avatars/{voice_id}.png"
        # A sample at a javascript: URL is neither linked nor offered as a preview.
        assert ("Sample" in fields) == (index != 1)
        assert button(details_of[voice_id], "Preview").get("disabled", False) == (index == 1)


async def test_a_sample_over_the_upload_limit_is_linked_not_attached(running: World) -> None:
    _, listing = await list_voices(running)
    voice_id = str(uuid.UUID(int=1))
    picked = await click(
        running, listing, select_menu(listing)["custom_id"], running.member, component_type=3, values=[voice_id]
    )
    details = picked.final_message()
    assert details is not None
    running.discord.upload_limit = 2_000  # the 3 s sample is far larger
    preview = await click(running, details, button(details, "Preview")["custom_id"], running.member)
    all_accepted(preview)
    assert preview.ephemeral and preview.files() == []
    assert f"]({running.unmixr.origin}/samples/{voice_id}.mp3)" in preview.content()
    assert "too large to attach" in preview.content()


async def test_autocomplete_with_300_character_names_offers_25_fitting_choices(running: World) -> None:
    discord_fake = running.discord
    typed = await discord_fake.autocomplete(
        running.guild, running.text, running.member, "say", {"text": "x", "voice": "Hostile"}, "voice"
    )
    await typed.wait_final()
    all_accepted(typed)
    choices = typed.choices()
    # At most 25; the voice whose uuid cannot be a value is left out of the 25 suggested.
    assert 24 <= len(choices) <= 25
    assert all(1 <= len(choice["name"]) <= CHOICE_NAME and len(choice["value"]) <= CHOICE_VALUE for choice in choices)
    assert choices[0]["name"].startswith("Hostile 000") and choices[0]["name"].endswith(ELLIPSIS)
    # The voice whose uuid cannot be a choice value is not offered, even typed exactly.
    exact = await discord_fake.autocomplete(
        running.guild, running.text, running.member, "say", {"text": "x", "voice": hostile_name(5)[:100]}, "voice"
    )
    await exact.wait_final()
    all_accepted(exact)
    assert "u" * 150 not in [choice["value"] for choice in exact.choices()]
    # Language tags of 200 characters cannot be choices either.
    languages = await discord_fake.autocomplete(
        running.guild,
        running.text,
        running.member,
        "say",
        {"text": "x", "voice": str(uuid.UUID(int=1)), "language": ""},
        "language",
    )
    await languages.wait_final()
    all_accepted(languages)
    offered = [choice["value"] for choice in languages.choices()]
    assert offered and all(len(value) <= CHOICE_VALUE for value in offered)
    assert not set(offered) & set(HUGE_LANGUAGES)


async def test_an_answer_that_quotes_hostile_data_is_cut_to_2000(running: World) -> None:
    # The voice's ten 200-character languages are listed in the answer: over 2,000 characters before fitting.
    refused = await running.say(text="Hello there.", voice=str(uuid.UUID(int=1)), language="sv-SE")
    await refused.wait_final()
    all_accepted(refused)
    assert refused.ephemeral
    assert len(refused.content()) <= CONTENT and refused.content().endswith(ELLIPSIS)
    assert running.tts_requests() == []


async def test_200_pronunciations_of_maximal_length_are_listed_within_the_embed(running: World) -> None:
    storage = running.bot.storage
    for index in range(200):
        # Markdown characters double when escaped: the longest line a 50-character word can make.
        word = f"w{index:03d}" + "_" * 46
        spoken = f"s{index:03d}" + "*" * 196
        await storage.add_pronunciation(running.guild.id, word, spoken, running.admin.id)
    listing = await running.slash("pronounce", subcommand="list")
    await listing.wait_final()
    all_accepted(listing)
    embed = listing.embeds()[0]
    assert_within_limits(embed)
    assert embed["title"] == "Pronunciations (200/200)"
    last_line = embed["description"].splitlines()[-1]
    shown = len(embed["description"].splitlines()) - 1
    assert last_line == f"… and {200 - shown} more"
    remove = await running.discord.autocomplete(
        running.guild, running.text, running.admin, "pronounce", {"word": "w1"}, "word", subcommand="remove"
    )
    await remove.wait_final()
    all_accepted(remove)
    choices = remove.choices()
    assert len(choices) == 25 and all(len(choice["name"]) <= CHOICE_NAME for choice in choices)


@pytest.mark.parametrize(
    ("name", "subcommand", "options", "option"),
    [
        ("voices", None, {"query": "q" * 6000}, "query"),
        ("voices", None, {"language": "l" * 6000}, "language"),
        ("say", None, {"text": "Hello.", "language": "l" * 6000}, "language"),
        ("settings", "language", {"language": "l" * 1990}, "language"),
        ("settings", "rate", {"rate": "+" * 17}, "rate"),
        ("preferences", "nickname", {"nickname": "n" * 33}, "nickname"),
        ("pronounce", "add", {"word": "w" * 51, "spoken": "s"}, "word"),
    ],
)
async def test_over_long_options_are_refused_by_the_client_and_by_the_bot(
    running: World, name: str, subcommand: str | None, options: dict[str, Any], option: str
) -> None:
    who = running.admin
    before = len(running.unmixr.requests)
    # Discord's client never sends a value over the option's registered max_length...
    with pytest.raises(ClientRefused, match=option):
        await running.slash(name, options, subcommand=subcommand, member=who)
    # ...and one that gets through anyway gets one sentence, before anything reaches Unmixr.
    sent = await running.slash(name, options, subcommand=subcommand, member=who, client_checks=False)
    await sent.wait_final()
    all_accepted(sent)
    assert sent.ephemeral
    assert sent.content().startswith(f"`{option}` can be at most ")
    assert len(sent.content()) < 200
    assert len(running.unmixr.requests) == before


async def test_queue_of_50_clips_with_long_labels_fits_one_message(world: World, voice_server: FakeVoiceServer) -> None:
    await world.start_bot()
    await world.discord.move_member(world.guild, world.member, world.voice)
    text = "A clip long enough to keep playing while the rest of the queue fills up behind it. " * 2
    voice = str(uuid.UUID(int=2))
    first = await world.say(text=text, voice=voice, play=True)
    await first.wait_final()
    queued = await asyncio.gather(*(world.say(text=text, voice=voice, play=True) for _ in range(49)))
    await asyncio.gather(*(interaction.wait_final(timeout=60) for interaction in queued))
    for interaction in [first, *queued]:
        all_accepted(interaction)
    queue = await world.slash("queue")
    await queue.wait_final()
    all_accepted(queue)
    lines = queue.content().splitlines()
    assert len(queue.content()) <= CONTENT
    assert lines[0].startswith("Now: Hostile 001") and ELLIPSIS in lines[0]
    assert lines[-1].startswith("… and ") and lines[-1].endswith(" more")


async def test_an_answer_after_the_token_expired_is_dropped_with_a_warning_and_never_sent(
    running: World, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Scaled: tokens live 2 s instead of 15 minutes, the bot uses them for 1.8 s instead of 14 minutes.
    running.discord.token_lifetime = 2.0
    monkeypatch.setattr("bot.replies.TOKEN_USABLE_SECONDS", 1.8)
    running.unmixr.set_latency(2.0, endpoint="/short-tts/")
    said = await running.say(text="This answer comes too late.")
    await said.wait_for(lambda r: r.kind == "callback" and r.type == 5)
    await running.discord.wait_until(
        lambda: any("expired before it could be answered" in r.getMessage() for r in caplog.records), timeout=15
    )
    # Nothing was sent with the dead token: a 401 would count toward Discord's invalid request limit.
    assert [r.kind for r in said.responses] == ["callback"]
    assert running.discord.wasted_requests() == []
    assert not [r for r in caplog.records if r.levelname == "ERROR" and r.name.startswith(("bot", "cogs"))]


async def test_a_channel_message_is_fitted_and_pings_nobody(running: World) -> None:
    channel = running.bot.get_channel(int(running.text["id"]))
    embed = discord.Embed(title="t" * 300, description="d" * 5000).set_thumbnail(url="javascript:alert(1)")
    sent = await post(channel, "@everyone " + "x" * 3000, embed=embed)
    stored = running.discord.message(sent.id)
    assert len(stored["content"]) == CONTENT and stored["content"].endswith(ELLIPSIS)
    assert stored["mention_everyone"] is False
    assert_within_limits(stored["embeds"][0])
    assert "thumbnail" not in stored["embeds"][0]


def test_free_text_options_are_registered_with_discords_bounds(running: World) -> None:
    found: dict[str, int | None] = {}

    def walk(prefix: str, options: list[dict[str, Any]]) -> None:
        for option in options:
            if option["type"] in (1, 2):
                walk(f"{prefix} {option['name']}", option.get("options") or [])
            elif option["type"] == 3 and not option.get("choices"):
                found[f"{prefix} {option['name']}"] = option.get("max_length")

    for command in running.discord.commands[running.guild.id]:
        walk(f"/{command['name']}", command.get("options") or [])
    assert found == {
        "/voices query": 100,
        "/voices language": 35,
        "/say text": 6000,
        "/say voice": None,
        "/say language": 35,
        "/say rate": 16,
        "/say pitch": 16,
        "/say volume": 16,
        "/clone name": 100,
        "/clone description": 500,
        "/settings voice voice": None,
        "/settings language language": 35,
        "/settings rate rate": 16,
        "/settings pitch pitch": 16,
        "/settings volume volume": 16,
        "/preferences voice voice": None,
        "/preferences rate rate": 16,
        "/preferences nickname nickname": 32,
        "/pronounce add word": 50,
        "/pronounce add spoken": 200,
        "/pronounce remove word": 50,
    }
