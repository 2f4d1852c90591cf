"""/voices end to end: the real bot, through discord.py, against the Discord and Unmixr stand-ins."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from bot.audio import probe
from tests.conftest import World
from tests.fakes.discord_server import FakeInteraction, FakeMember, iter_components
from tests.fakes.unmixr_catalogue import BRIAN_ID

NOT_OWNER = "belong to whoever ran this command"
# The stand-in's available prebuilt voices, ten a page.
PREBUILT_PAGES = 4
MANAGE_SERVER = "needs the Manage Server permission"


def controls(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Every button and select menu of a message."""
    return [c for c in iter_components(message["components"]) if c["type"] in (2, 3)]


def button(message: dict[str, Any], label: str) -> dict[str, Any]:
    """The button showing `label` as its text or emoji."""
    for component in controls(message):
        if component["type"] == 2 and label in (component.get("label"), (component.get("emoji") or {}).get("name")):
            return component
    raise AssertionError(f"no button {label!r} in {controls(message)}")


def select_menu(message: dict[str, Any]) -> dict[str, Any]:
    """The message's select menu."""
    return next(component for component in controls(message) if component["type"] == 3)


def browsing_requests(world: World) -> list[Any]:
    """The /voice-list/ requests other than the catalogue's own loading (pages of 100): browsing makes none."""
    return [r for r in world.unmixr.requests if r.endpoint == "/voice-list/" and r.query.get("page_size") != "100"]


def field_names(message: dict[str, Any]) -> list[str]:
    """The names of the first embed's fields."""
    return [field["name"] for field in message["embeds"][0].get("fields", [])]


def jenny_id(world: World) -> str:
    """The uuid of the stand-in's Jenny."""
    return next(voice["uuid"] for voice in world.unmixr.voices if voice["character"] == "Jenny")


async def run_voices(world: World, member: FakeMember, **options: Any) -> dict[str, Any]:
    """Run /voices and return its answer's message."""
    interaction = await world.slash("voices", options, member=member)
    await interaction.wait_final()
    assert interaction.ephemeral
    message = interaction.final_message()
    assert message is not None
    return message


async def click(
    world: World, message: dict[str, Any], custom_id: str, member: FakeMember, **kwargs: Any
) -> FakeInteraction:
    """Click a control of a message in the text channel and wait for the bot's answer."""
    interaction = await world.discord.click(message, custom_id, member, guild=world.guild, channel=world.text, **kwargs)
    await interaction.wait_final()
    return interaction


async def open_details(world: World, member: FakeMember, voice_id: str, **options: Any) -> dict[str, Any]:
    """Run /voices and pick one voice in its menu; return the details message."""
    listing = await run_voices(world, member, **options)
    picked = await click(world, listing, select_menu(listing)["custom_id"], member, component_type=3, values=[voice_id])
    assert picked.ephemeral
    details = picked.final_message()
    assert details is not None
    return details


def shorten_view_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make views made from now on time out after half a second instead of ten minutes."""
    # discord.py loads extensions as fresh modules in sys.modules, not as attributes of the package.
    monkeypatch.setattr(sys.modules["cogs.voices"], "VIEW_TIMEOUT", 0.5)


def message_now(world: World, message: dict[str, Any]) -> dict[str, Any]:
    """The stored state of a message, as Discord would show it now."""
    return world.discord.message(int(message["id"]))


async def test_first_page_is_ephemeral_with_voices_and_controls(running: World) -> None:
    before = len(running.unmixr.requests)
    interaction = await running.slash("voices", {}, member=running.member)
    await interaction.wait_final()
    # Answered at once from memory: no defer, no Unmixr call.
    assert interaction.responses[0].kind == "callback" and interaction.responses[0].type == 4
    assert [r for r in running.unmixr.requests[before:] if r.endpoint != "/credit-balance/"] == []
    message = interaction.final_message()
    assert message is not None and interaction.ephemeral
    embed = message["embeds"][0]
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert list(fields)[:3] == ["Brian", "Steffan (Express)", "Jenny"]
    # Gender, language, quality and use cases of each voice.
    for part in ("Male", "en-US", "Premium", "Podcast", "Chat"):
        assert part in fields["Brian"]
    assert f"Page 1 of {PREBUILT_PAGES}" in embed["footer"]["text"]
    assert button(message, "◀")["disabled"] is True
    assert button(message, "▶")["disabled"] is False
    menu = select_menu(message)
    assert not menu.get("disabled")
    assert [option["label"] for option in menu["options"]] == list(fields)


async def test_next_and_previous_buttons_page_through_the_list_from_memory(running: World) -> None:
    message = await run_voices(running, running.member)
    first_page = field_names(message)
    # Browsing never calls Unmixr: it may even be down meanwhile.
    running.unmixr.fail_next(503, n=20)
    pressed = await click(running, message, button(message, "▶")["custom_id"], running.member)
    page_two = pressed.final_message()
    assert page_two is not None and page_two["id"] == message["id"]
    assert field_names(page_two) and set(field_names(page_two)).isdisjoint(first_page)
    assert f"Page 2 of {PREBUILT_PAGES}" in page_two["embeds"][0]["footer"]["text"]
    assert button(page_two, "◀")["disabled"] is False
    # The select menu follows the page.
    assert [option["label"] for option in select_menu(page_two)["options"]] == field_names(page_two)
    back = await click(running, page_two, button(page_two, "◀")["custom_id"], running.member)
    page_one = back.final_message()
    assert page_one is not None and field_names(page_one) == first_page
    assert button(page_one, "◀")["disabled"] is True
    assert browsing_requests(running) == []


async def test_last_page_disables_next(running: World) -> None:
    message = await run_voices(running, running.member, query="e")  # more than 10 voices: two pages
    for _ in range(5):
        next_button = button(message, "▶")
        if next_button["disabled"]:
            break
        pressed = await click(running, message, next_button["custom_id"], running.member)
        message = pressed.final_message() or message
    footer = message["embeds"][0]["footer"]["text"]
    assert button(message, "▶")["disabled"] is True
    page, _, total = footer.removeprefix("Page ").partition(" of ")
    assert int(page) == int(total.split()[0]) > 1
    assert browsing_requests(running) == []


async def test_every_filter_narrows_the_listing(running: World) -> None:
    message = await run_voices(
        running,
        running.member,
        category="prebuilt-voices",
        query="jen",
        language="en-US",
        gender="female",
        capability="speech:rate",
        style="cheerful",
        use_case="chat-voices",
    )
    assert field_names(message) == ["Jenny"]
    assert "query: jen" in message["embeds"][0]["footer"]["text"]
    assert browsing_requests(running) == []


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"category": "child-voices"},
        {"category": "multilingual-voices", "language": "fr"},
        {"query": "EN"},
        {"language": "en"},
        {"language": "en-GB"},
        {"gender": "male"},
        {"gender": "child", "category": "child-voices"},
        {"capability": "speech:pitch"},
        {"style": "whispering"},
        {"use_case": "podcast-voices"},
        {"use_case": "audiobook-voices", "gender": "female"},
    ],
    ids=lambda options: ",".join(f"{k}={v}" for k, v in options.items()) or "none",
)
async def test_the_listing_is_what_unmixr_lists_for_the_same_filters(running: World, options: dict[str, str]) -> None:
    # Unmixr's own filtering (the stand-in's, after the reference) of the same voices, asked directly, is the
    # yardstick; the catalogue holds available voices only.
    parameters = {"c": "category", "q": "query", "lang": "language", "gender": "gender"}
    parameters |= {"capabilities": "capability", "styles": "style", "uc": "use_case"}
    query = {name: options[option] for name, option in parameters.items() if option in options}
    async with running.bot.session.get(
        f"{running.unmixr.base_url}/voice-list/",
        params={**query, "page_size": "100"},
        headers={"Authorization": f"Bearer {running.unmixr.api_key}"},
    ) as response:
        listed = (await response.json())["results"] if response.status == 200 else []
    expected = [voice["character"] for voice in listed if voice.get("is_available", True)]
    shown: list[str] = []
    message = await run_voices(running, running.member, **options)
    while True:
        shown += field_names(message)
        # One page has no ◀ ▶ at all; the last of several has ▶ disabled.
        pages = [c for c in controls(message) if "▶" in (c.get("label"), (c.get("emoji") or {}).get("name"))]
        if not pages or pages[0]["disabled"]:
            break
        pressed = await click(running, message, button(message, "▶")["custom_id"], running.member)
        message = pressed.final_message() or message
    assert shown == expected


async def test_a_filter_changes_the_listing(running: World) -> None:
    message = await run_voices(running, running.member, category="child-voices")
    assert sorted(field_names(message)) == ["Ana", "Leo"]
    # One page only: no ◀ ▶ to press, the menu alone; the footer counts in words.
    assert [component["type"] for component in controls(message)] == [3]
    assert message["embeds"][0]["footer"]["text"].startswith("Page 1 of 1 · 2 voices")


async def test_no_match_is_a_clear_answer(running: World) -> None:
    message = await run_voices(running, running.member, query="zzzqqq")
    shown = (message["content"] + " " + (message["embeds"][0].get("description") or "")).casefold()
    assert "no voice matches" in shown
    assert "sorry, something went wrong" not in shown
    # Nothing to page through or open: no controls at all.
    assert controls(message) == []
    assert message["embeds"][0]["footer"]["text"].startswith("Page 1 of 1 · 0 voices")


async def test_another_member_cannot_turn_the_pages(running: World) -> None:
    message = await run_voices(running, running.member)
    # The list is ephemeral, so only a crafted interaction can click it: the bot's own check must refuse it.
    intruder = await click(running, message, button(message, "▶")["custom_id"], running.other, client_checks=False)
    assert intruder.ephemeral
    assert NOT_OWNER in intruder.content()
    assert f"Page 1 of {PREBUILT_PAGES}" in message_now(running, message)["embeds"][0]["footer"]["text"]
    # The owner can still use it afterwards.
    owner = await click(running, message, button(message, "▶")["custom_id"], running.member)
    assert f"Page 2 of {PREBUILT_PAGES}" in (owner.final_message() or {})["embeds"][0]["footer"]["text"]


async def test_another_member_cannot_open_a_voice(running: World) -> None:
    message = await run_voices(running, running.member)
    intruder = await click(
        running,
        message,
        select_menu(message)["custom_id"],
        running.other,
        component_type=3,
        values=[BRIAN_ID],
        client_checks=False,
    )
    assert intruder.ephemeral and NOT_OWNER in intruder.content()
    assert not intruder.embeds()


async def test_select_opens_the_voice_details(running: World) -> None:
    details = await open_details(running, running.member, BRIAN_ID)
    embed = details["embeds"][0]
    assert embed["title"] == "Brian"
    assert embed["description"].startswith("A youthful, cheerful and versatile voice")
    assert embed["thumbnail"]["url"] == f"{running.unmixr.origin}/avatars/{BRIAN_ID}.png"
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    # Unmixr's own values (YoungAdult, speech:rate, custom_pause) as a member reads them.
    assert fields["Age"] == "young adult"
    assert "Sincere" in fields["Personality"]
    capabilities = fields["Capabilities"].split(", ")
    assert {"speed", "intensity"} <= set(capabilities)
    assert not any(":" in value or "_" in value for value in capabilities), capabilities
    assert "en-GB" in fields["Locales"] and "en-US" in fields["Locales"]
    assert f"{running.unmixr.origin}/samples/{BRIAN_ID}.mp3" in fields["Sample"]
    labels = {component.get("label") for component in controls(details)}
    assert {"Preview", "Use as my voice", "Set as server default"} <= labels


async def test_preview_answers_with_the_sample_audio(running: World) -> None:
    details = await open_details(running, running.member, BRIAN_ID)
    preview = await click(running, details, button(details, "Preview")["custom_id"], running.member)
    assert preview.ephemeral
    files = preview.files()
    assert len(files) == 1
    filename, data = files[0]
    assert filename.endswith(".mp3")
    info = await probe(data)
    assert info.has_audio and info.duration is not None and info.duration > 1
    assert any(r.path == f"/samples/{BRIAN_ID}.mp3" for r in running.unmixr.requests)
    # Listening to a sample costs nothing.
    assert running.tts_requests() == []


async def test_use_as_my_voice_is_stored_and_used_by_say(running: World) -> None:
    jenny = jenny_id(running)
    details = await open_details(running, running.member, jenny)
    chosen = await click(running, details, button(details, "Use as my voice")["custom_id"], running.member)
    assert chosen.ephemeral and "Jenny" in chosen.content()
    preferences = await running.bot.storage.get_member_preferences(running.guild.id, running.member.id)
    assert preferences.voice_id == jenny
    said = await running.say(member=running.member, text="Which voice is this?")
    await said.wait_final()
    assert said.files()
    assert running.tts_requests()[-1].json["voice_id"] == jenny
    # Another member keeps the default voice.
    other = await running.say(member=running.other, text="And this one?")
    await other.wait_final()
    assert running.tts_requests()[-1].json["voice_id"] == BRIAN_ID


async def test_admin_sets_the_server_default(running: World) -> None:
    jenny = jenny_id(running)
    details = await open_details(running, running.admin, jenny)
    done = await click(running, details, button(details, "Set as server default")["custom_id"], running.admin)
    assert done.ephemeral and "Jenny" in done.content()
    assert (await running.bot.storage.get_guild_settings(running.guild.id)).voice_id == jenny
    shown = await running.slash("settings", subcommand="show", member=running.admin)
    await shown.wait_final()
    description = shown.embeds()[0]["description"]
    voice_line = next(line for line in description.splitlines() if line.startswith("**voice**"))
    assert "Jenny" in voice_line
    said = await running.say(member=running.member, text="Server default now.")
    await said.wait_final()
    assert running.tts_requests()[-1].json["voice_id"] == jenny


async def test_member_cannot_set_the_server_default(running: World) -> None:
    details = await open_details(running, running.member, jenny_id(running))
    refused = await click(running, details, button(details, "Set as server default")["custom_id"], running.member)
    assert refused.ephemeral and MANAGE_SERVER in refused.content()
    assert (await running.bot.storage.get_guild_settings(running.guild.id)).voice_id is None


async def test_clones_category_lists_only_this_servers_clones(world: World) -> None:
    second = world.discord.add_guild(name="Elsewhere")
    await world.start_bot()
    account_clones = {"Ours": "0d7e3f5a-0000-4000-8000-000000000001", "Theirs": "0d7e3f5a-0000-4000-8000-000000000002"}
    account_clones["Unclaimed"] = "0d7e3f5a-0000-4000-8000-000000000003"
    for name, voice_id in account_clones.items():
        world.unmixr.clones.append(
            {"uuid": voice_id, "character": name, "language": "en", "is_available": True, "category": "clones"}
        )
    storage = world.bot.storage
    await storage.add_cloned_voice(account_clones["Ours"], world.guild.id, "Ours", "our clone", world.admin.id)
    await storage.add_cloned_voice(account_clones["Theirs"], second.id, "Theirs", None, world.admin.id)
    await world.bot.catalogue.refresh()
    message = await run_voices(world, world.member, category="clones")
    assert field_names(message) == ["Ours"]
    assert [option["value"] for option in select_menu(message)["options"]] == [account_clones["Ours"]]
    # The account's clone list is never shown wholesale.
    assert not any(r.query.get("c") == "clones" for r in world.unmixr.requests)


async def test_clones_category_without_clones_says_so(running: World) -> None:
    message = await run_voices(running, running.member, category="clones")
    assert "no voice matches" in (message["embeds"][0].get("description") or "").casefold()


async def test_list_controls_are_disabled_when_the_view_times_out(
    running: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    shorten_view_timeout(monkeypatch)
    message = await run_voices(running, running.member)
    assert any(not component.get("disabled") for component in controls(message))
    await running.discord.wait_until(
        lambda: all(component.get("disabled") for component in controls(message_now(running, message))),
        timeout=5,
        what="the controls to be disabled",
    )
    current = message_now(running, message)
    assert current["embeds"][0]["fields"] == message["embeds"][0]["fields"]
    with pytest.raises(ValueError, match="disabled"):
        await running.discord.click(
            current, button(current, "▶")["custom_id"], running.member, guild=running.guild, channel=running.text
        )


async def test_details_controls_are_disabled_when_the_view_times_out(
    running: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    shorten_view_timeout(monkeypatch)
    listing = await run_voices(running, running.member)
    picked = await click(
        running, listing, select_menu(listing)["custom_id"], running.member, component_type=3, values=[BRIAN_ID]
    )
    details = picked.final_message()
    assert details is not None and not button(details, "Preview").get("disabled")
    await running.discord.wait_until(
        lambda: all(component.get("disabled") for component in controls(message_now(running, details))),
        timeout=5,
        what="the details controls to be disabled",
    )
    assert message_now(running, details)["embeds"][0]["title"] == "Brian"


def scale_token_lifetime(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens live 6 s instead of 15 minutes (the bot uses them for 5.6 s, not 14 minutes), views last 4 s, not 10.

    The stand-in and discord.py run on one clock, real time; scaling keeps the proportions of the real limits.
    """
    world.discord.token_lifetime = 6.0
    monkeypatch.setattr("bot.replies.TOKEN_USABLE_SECONDS", 5.6)
    monkeypatch.setattr(sys.modules["cogs.voices"], "VIEW_TIMEOUT", 4.0)


def all_disabled(world: World, message: dict[str, Any]) -> bool:
    """Whether every control of the message is disabled, as Discord shows it now."""
    return all(component.get("disabled") for component in controls(message_now(world, message)))


async def test_a_list_pressed_late_is_disabled_through_the_press_not_the_expired_command(
    running: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PRODUCT.md, Replies: controls are disabled through the latest interaction whose token is still valid.
    scale_token_lifetime(running, monkeypatch)
    message = await run_voices(running, running.member)
    await asyncio.sleep(2.5)  # "minute 5" of the command's 15
    pressed = await click(running, message, button(message, "▶")["custom_id"], running.member)
    page_two = pressed.final_message()
    assert page_two is not None and "Page 2 of 4" in page_two["embeds"][0]["footer"]["text"]
    # The view now times out 4 s after the press: the command's token is 7 s old by then, past its 6 s.
    await running.discord.wait_until(
        lambda: all_disabled(running, message), timeout=10, what="the controls to be disabled"
    )
    assert "Page 2 of 4" in message_now(running, message)["embeds"][0]["footer"]["text"]
    assert running.discord.wasted_requests() == []


async def test_details_pressed_late_are_disabled_through_the_press(
    running: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    scale_token_lifetime(running, monkeypatch)
    listing = await run_voices(running, running.member)
    picked = await click(
        running, listing, select_menu(listing)["custom_id"], running.member, component_type=3, values=[BRIAN_ID]
    )
    details = picked.final_message()
    assert details is not None
    await asyncio.sleep(2.5)
    used = await click(running, details, button(details, "Use as my voice")["custom_id"], running.member)
    assert used.ephemeral and "Brian" in used.content()
    # Answered privately, and the details message itself is this press's original response.
    assert message_now(running, details)["embeds"][0]["title"] == "Brian"
    await running.discord.wait_until(
        lambda: all_disabled(running, details), timeout=10, what="the details controls to be disabled"
    )
    assert running.discord.wasted_requests() == []


async def test_a_press_on_controls_no_view_holds_any_more_is_answered_at_once(
    running: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    shorten_view_timeout(monkeypatch)
    message = await run_voices(running, running.member)
    await running.discord.wait_until(lambda: all_disabled(running, message), what="the view to time out")
    # A member whose client still shows the old buttons presses one, and Discord was slow to deliver it: the 3 s
    # from its creation leave the bot well under 2 s. Nothing will take the press, so the bot answers now.
    running.discord.delivery_delay = 1.2
    stale = await running.discord.click(
        message,
        button(message, "▶")["custom_id"],
        running.member,
        guild=running.guild,
        channel=running.text,
        client_checks=False,
    )
    await stale.wait_final()
    assert stale.ephemeral and "These controls have expired" in stale.content()
    acknowledged = stale.acknowledged_at
    assert acknowledged is not None and acknowledged - stale.created_at < 3.0


async def test_an_unavailable_voice_is_not_listed(running: World) -> None:
    # Unmixr lists a retired voice; the catalogue keeps available voices only, so /voices never offers it.
    assert any(voice["character"] == "Retired Voice" for voice in running.unmixr.voices)
    listing = await run_voices(running, running.member, query="retired")
    assert field_names(listing) == []
    assert "no voice matches" in (listing["embeds"][0].get("description") or "").casefold()


async def test_voices_options_offer_the_references_values(running: World) -> None:
    command = next(c for c in running.discord.commands[running.guild.id] if c["name"] == "voices")
    assert "default_member_permissions" not in command or command["default_member_permissions"] is None
    options = {option["name"]: option for option in command["options"]}
    assert set(options) == {"category", "query", "language", "gender", "capability", "style", "use_case"}
    assert not any(option.get("required") for option in options.values())

    def values(name: str) -> set[str]:
        return {choice["value"] for choice in options[name].get("choices") or []}

    assert {"prebuilt-voices", "openai-voices", "clones", "chat-voices"} <= values("category")
    assert values("gender") == {"any", "male", "female", "child"}
    assert {"speech:rate", "custom_pause", "abbr"} <= values("capability")
    assert {"whispering", "newscast-formal", "hopeful"} <= values("style")
    assert {"audiobook-voices", "meditation-voices"} <= values("use_case")
    assert options["language"].get("autocomplete") is True


async def test_controls_from_before_a_restart_get_an_answer(running: World) -> None:
    message = await run_voices(running, running.member)
    await running.stop_bot()
    await running.start_bot()
    pressed = await click(running, message, button(message, "▶")["custom_id"], running.member)
    assert pressed.ephemeral
    assert "expired" in pressed.content()
