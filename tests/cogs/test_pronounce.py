"""End-to-end tests of /pronounce: the server's pronunciation dictionary, its limits, and who may change it."""

from __future__ import annotations

from typing import Any

from tests.conftest import World
from tests.fakes.discord_server import FakeInteraction, FakeMember, Response

NOT_ADMIN = "This needs the Manage Server permission; ask a server admin to do it for you."


def is_answer(response: Response) -> bool:
    """Whether a response carries the interaction's answer (not only an acknowledgement)."""
    if response.status >= 300:
        return False
    return response.kind in ("followup", "edit_original", "edit_followup") or (
        response.kind == "callback" and response.type in (4, 7)
    )


async def pronounce(
    world: World, subcommand: str, options: dict[str, Any] | None = None, *, member: FakeMember | None = None, **kw: Any
) -> FakeInteraction:
    """Run a /pronounce subcommand (as the admin unless told) and wait for its answer."""
    interaction = await world.slash("pronounce", options, subcommand=subcommand, member=member or world.admin, **kw)
    await interaction.wait_for(is_answer)
    return interaction


async def test_pronounce_command_shape(running: World) -> None:
    synced = next(c for c in running.discord.commands[running.guild.id] if c["name"] == "pronounce")
    shape = {
        sub["name"]: [(o["name"], o.get("required", False)) for o in sub.get("options") or []]
        for sub in synced["options"]
    }
    assert shape == {"add": [("word", True), ("spoken", True)], "remove": [("word", True)], "list": []}
    # No default permission, so that `list` stays open to everyone; the bot checks add and remove itself.
    assert synced["default_member_permissions"] is None


async def test_add_answers_old_and_new_and_reaches_unmixr_for_matching_text_only(running: World) -> None:
    added = await pronounce(running, "add", {"word": "Unmixr", "spoken": "un mixer"})
    assert added.ephemeral
    assert added.content() == "Pronunciation of “Unmixr”: not set → “un mixer”."
    replaced = await pronounce(running, "add", {"word": "unmixr", "spoken": "oon mix er"})
    assert replaced.content() == "Pronunciation of “unmixr”: “un mixer” → “oon mix er”."
    await pronounce(running, "add", {"word": "SQL", "spoken": "sequel"})

    said = await running.say(text="I like UNMIXR a lot.")
    await said.wait_for(is_answer)
    assert said.files()
    assert running.tts_requests()[-1].json["pronunciation_dict"] == {"unmixr": "oon mix er"}
    # A word inside another word does not match.
    said = await running.say(text="Unmixrs and mySQL are different words.")
    await said.wait_for(is_answer)
    assert running.tts_requests()[-1].json.get("pronunciation_dict") is None


async def test_list_is_open_to_everyone(running: World) -> None:
    empty = await pronounce(running, "list", member=running.member)
    assert empty.ephemeral
    assert "no pronunciations yet" in empty.content()
    await pronounce(running, "add", {"word": "GIF", "spoken": "jif"})
    await pronounce(running, "add", {"word": "nginx", "spoken": "engine x"})
    listed = await pronounce(running, "list", member=running.member)
    assert listed.ephemeral
    embed = listed.embeds()[0]
    assert "(2/200)" in embed["title"]
    assert "**GIF** → jif" in embed["description"]
    assert "**nginx** → engine x" in embed["description"]


async def test_remove_answers_old_value_and_unknown_words_get_a_clear_answer(running: World) -> None:
    await pronounce(running, "add", {"word": "GIF", "spoken": "jif"})
    removed = await pronounce(running, "remove", {"word": "gif"})
    assert removed.ephemeral
    assert removed.content() == "Pronunciation of “GIF”: “jif” → not set."
    assert await running.bot.storage.list_pronunciations(running.guild.id) == []

    unknown = await pronounce(running, "remove", {"word": "GIF"})
    assert unknown.ephemeral
    # The command is named with a mention the member can click (Discord shows it in their language).
    command_id = running.discord.registered_command(running.guild, "pronounce")["id"]
    assert unknown.content() == f"There is no pronunciation for “GIF”; </pronounce list:{command_id}> shows them all."


async def test_the_201st_entry_is_refused_but_replacing_one_still_works(running: World) -> None:
    storage, guild_id = running.bot.storage, running.guild.id
    for number in range(200):
        await storage.add_pronunciation(guild_id, f"word{number}", f"spoken {number}", running.admin.id)
    refused = await pronounce(running, "add", {"word": "onemore", "spoken": "one more"})
    assert refused.ephemeral
    command_id = running.discord.registered_command(running.guild, "pronounce")["id"]
    assert refused.content() == (
        "This server already has 200 pronunciations, the most it can keep; remove one with "
        f"</pronounce remove:{command_id}> first."
    )
    assert len(await storage.list_pronunciations(guild_id)) == 200
    replaced = await pronounce(running, "add", {"word": "word7", "spoken": "seven"})
    assert replaced.content() == "Pronunciation of “word7”: “spoken 7” → “seven”."
    listed = await pronounce(running, "list", member=running.member)
    assert "(200/200)" in listed.embeds()[0]["title"]
    assert len(listed.embeds()[0]["description"]) <= 4096


async def test_too_long_word_or_spoken_form_is_refused(running: World) -> None:
    long_word = await pronounce(running, "add", {"word": "w" * 51, "spoken": "short"}, client_checks=False)
    assert long_word.ephemeral
    assert long_word.content() == "`word` can be at most 50 characters but yours has 51; shorten it and try again."
    long_spoken = await pronounce(running, "add", {"word": "short", "spoken": "s" * 201}, client_checks=False)
    assert long_spoken.ephemeral
    assert (
        long_spoken.content() == "`spoken` can be at most 200 characters but yours has 201; shorten it and try again."
    )
    blank = await pronounce(running, "add", {"word": "   ", "spoken": "x"})
    assert blank.ephemeral and "need some text" in blank.content()
    assert await running.bot.storage.list_pronunciations(running.guild.id) == []
    # The limits themselves are fine.
    fits = await pronounce(running, "add", {"word": "w" * 50, "spoken": "s" * 200})
    assert fits.content().endswith(f"not set → “{'s' * 200}”.")


async def test_add_and_remove_are_refused_for_non_admins_by_the_bot(running: World) -> None:
    await pronounce(running, "add", {"word": "GIF", "spoken": "jif"})
    # The stand-in does not apply Discord's permission gate: the bot must refuse by itself.
    added = await pronounce(running, "add", {"word": "GIF", "spoken": "gif"}, member=running.member)
    assert added.ephemeral
    assert added.content() == NOT_ADMIN
    removed = await pronounce(running, "remove", {"word": "GIF"}, member=running.member)
    assert removed.ephemeral
    assert removed.content() == NOT_ADMIN
    entries = await running.bot.storage.list_pronunciations(running.guild.id)
    assert [(e.word, e.spoken) for e in entries] == [("GIF", "jif")]


async def test_remove_autocompletes_the_servers_words(running: World) -> None:
    await pronounce(running, "add", {"word": "GIF", "spoken": "jif"})
    await pronounce(running, "add", {"word": "nginx", "spoken": "engine x"})
    interaction = await running.discord.autocomplete(
        running.guild, running.text, running.admin, "pronounce", {"word": "gif"}, "word", subcommand="remove"
    )
    await interaction.wait_for(lambda r: r.kind == "callback" and r.type == 8)
    assert [choice["value"] for choice in interaction.choices()] == ["GIF"]
