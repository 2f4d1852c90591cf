"""User installs end to end (PRODUCT.md, Reach): /say, /voices, /preferences and Read aloud from a user's own
account, in DMs, group DMs and servers without the bot, with their own budgets; and a server that has the bot stays
a server whatever else an interaction carries."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.storage import USER_INSTALLS
from tests.cogs.test_say import tts_payloads
from tests.conftest import MEMBER_PERMISSIONS, World
from tests.fakes import discord_payloads as p
from tests.fakes.discord_server import ClientRefused, FakeGuild, FakeInteraction, FakeMember, FakePrivateChannel, Place
from tests.fakes.prose import prose
from tests.fakes.unmixr_catalogue import BRIAN_ID, STEFFAN_ID

USER_DAILY = 1_000
TOTAL_DAILY = 3_000
RELATIVE_TIME = re.compile(r"<t:(\d+):R>")


@dataclass
class Reach:
    """The running bot with user installs on, and the places a user reaches it from."""

    world: World
    user: dict[str, Any]
    friend: dict[str, Any]
    dm: FakePrivateChannel
    bot_dm: FakePrivateChannel
    group: FakePrivateChannel
    elsewhere: FakeGuild
    lobby: dict[str, Any]
    visitor: FakeMember

    def places(self) -> list[tuple[str, Place, Any, Any]]:
        """(label, place, channel, who) for a DM, a group DM and a server without the bot."""
        return [
            ("a DM", self.dm, self.dm, self.user),
            ("a group DM", self.group, self.group, self.user),
            ("a server without the bot", self.elsewhere, self.lobby, self.visitor),
        ]

    async def run(
        self, place: Place, channel: Any, who: Any, name: str, options: dict[str, Any] | None = None, **kwargs: Any
    ) -> FakeInteraction:
        interaction = await self.world.discord.slash(place, channel, who, name, options or {}, **kwargs)
        await interaction.wait_final(timeout=20)
        return interaction


async def open_reach(world: World, **settings: Any) -> Reach:
    """Start the bot with the user-install budgets and sync its commands globally, as `python -m bot sync` does."""
    fake = world.discord
    fake.enable_user_install()  # the Developer Portal's User Install
    values = {"user_install_daily_budget": USER_DAILY, "user_install_total_daily_budget": TOTAL_DAILY, **settings}
    await world.start_bot(**values)
    await world.bot.tree.sync()
    user = fake.add_user("Uma User")
    friend = fake.add_user("Fred Friend")
    fake.install_for_user(user)
    elsewhere = fake.add_guild(name="Elsewhere", bot=False)
    lobby = elsewhere.add_text_channel("lobby")
    visitor = elsewhere.add_member("Uma User", user_id=int(user["id"]))
    return Reach(
        world,
        user,
        friend,
        fake.open_dm(user, friend),
        fake.open_dm(user),
        fake.add_group_dm(user, friend, name="pals"),
        elsewhere,
        lobby,
        visitor,
    )


@pytest.fixture
async def reach(world: World) -> Reach:
    return await open_reach(world)


def today() -> Any:
    return datetime.now(UTC).date()


async def settled(world: World) -> None:
    await world.bot.guard.flush()


async def test_say_in_a_dm_a_group_dm_and_a_server_without_the_bot_gets_audio(reach: Reach) -> None:
    world = reach.world
    spent = 0
    for label, place, channel, who in reach.places():
        text = f"Hello from {label}."
        interaction = await reach.run(place, channel, who, "say", {"text": text})
        (name, audio), *_ = interaction.files() or [("", b"")]
        assert name.endswith(".mp3") and len(audio) > 1000, (label, interaction.content())
        assert not interaction.ephemeral, label
        assert "Brian" in interaction.content()
        spent += len(text)
    assert [payload["text"] for payload in tts_payloads(world.unmixr)] == [
        "Hello from a DM.",
        "Hello from a group DM.",
        "Hello from a server without the bot.",
    ]
    # Charged in the ledger to the user's day (and so to every user's, and to the account's), never to a server.
    await settled(world)
    storage = world.bot.storage
    assert await storage.user_install_usage(today(), int(reach.user["id"])) == spent
    assert await storage.user_install_usage(today()) == spent
    assert await storage.account_usage(today()) == spent
    assert (await storage.usage_for_day(world.guild.id, today())).credits_prebuilt == 0
    assert (await storage.usage_for_day(reach.elsewhere.id, today())).credits_prebuilt == 0
    assert (await storage.usage_for_day(USER_INSTALLS, today())).credits_prebuilt == spent


async def test_the_bots_own_dm_works_too_and_say_names_only_whom_the_interaction_carries(reach: Reach) -> None:
    stranger = reach.world.discord.add_user("Sam Stranger")
    text = f"Hi <@{reach.user['id']}> and <@{stranger['id']}>."
    interaction = await reach.run(reach.bot_dm, reach.bot_dm, reach.user, "say", {"text": text})
    assert interaction.files(), interaction.content()
    # The caller is known; a user the interaction does not carry is "someone" (nothing is looked up).
    assert tts_payloads(reach.world.unmixr)[-1]["text"] == "Hi Uma User and someone."


async def test_read_aloud_works_in_a_dm_and_a_server_without_the_bot(reach: Reach) -> None:
    world, fake = reach.world, reach.world.discord
    # Mentions are read from what the interaction carries: users by name, roles and channels as "a role" and
    # "a channel" (the bot is in neither place, so it looks nothing up).
    carol = fake.add_user("Carol Third")  # in neither the DM nor any server of the bot's: named by the message
    posted = fake.post_private_message(
        reach.dm, reach.friend, f"Hi <@{carol['id']}>, ask <@&{world.guild.id}> in <#{reach.lobby['id']}>"
    )
    in_dm = await fake.message_command(reach.dm, reach.dm, reach.user, "Read aloud", posted)
    await in_dm.wait_final(timeout=20)
    assert in_dm.files(), in_dm.content()
    other = reach.elsewhere.add_member("Olga Other")
    message = await fake.post_message(reach.elsewhere, reach.lobby, other, f"Thanks <@{other.id}>!")
    in_server = await fake.message_command(reach.elsewhere, reach.lobby, reach.visitor, "Read aloud", message)
    await in_server.wait_final(timeout=20)
    assert in_server.files(), in_server.content()
    assert [payload["text"] for payload in tts_payloads(world.unmixr)] == [
        "Hi Carol Third, ask a role in a channel",
        "Thanks Olga Other!",
    ]
    assert fake.wasted_requests() == []  # nothing was asked of Discord about a place the bot is not in


async def test_preferences_voice_in_a_dm_applies_to_the_next_dm_say(world: World, backend: dict[str, Any]) -> None:
    reach = await open_reach(world, **backend)
    jenny = world.bot.catalogue.find("Jenny", None)
    chosen = await reach.run(reach.dm, reach.dm, reach.user, "preferences", {"voice": "Jenny"}, subcommand="voice")
    assert chosen.ephemeral
    assert chosen.content() == "Your voice for this app in DMs and servers without it: not set → **Jenny**."
    rated = await reach.run(reach.dm, reach.dm, reach.user, "preferences", {"rate": "+10%"}, subcommand="rate")
    assert "`+10%`" in rated.content(), rated.content()
    said = await reach.run(reach.dm, reach.dm, reach.user, "say", {"text": "With my own voice."})
    assert said.files(), said.content()
    payload = tts_payloads(world.unmixr)[-1]
    assert payload["voice_id"] == jenny.uuid and payload["speaking_rate"] == "+10%"
    # Account-wide: the same in a group DM and a server without the bot.
    await reach.run(reach.group, reach.group, reach.user, "say", {"text": "In the group."})
    await reach.run(reach.elsewhere, reach.lobby, reach.visitor, "say", {"text": "Elsewhere too."})
    assert [payload["voice_id"] for payload in tts_payloads(world.unmixr)[-2:]] == [jenny.uuid, jenny.uuid]
    # Never in a server that has the bot: there the member's own server preferences and the server's defaults apply.
    fake = world.discord
    fake.install_for_user(world.member)
    mel_dm = fake.open_dm(world.member)
    await reach.run(mel_dm, mel_dm, world.member, "preferences", {"voice": "Steffan"}, subcommand="voice")
    home = await world.say(text="At home.")
    await home.wait_final(timeout=20)
    assert tts_payloads(world.unmixr)[-1]["voice_id"] == BRIAN_ID
    # /preferences reset clears them; the default voice again.
    reset = await reach.run(reach.dm, reach.dm, reach.user, "preferences", subcommand="reset")
    assert reset.content().startswith("Cleared your preferences for this app in DMs and servers without it (voice ")
    await reach.run(reach.dm, reach.dm, reach.user, "say", {"text": "Back to the default."})
    assert tts_payloads(world.unmixr)[-1]["voice_id"] == BRIAN_ID
    assert STEFFAN_ID not in [payload["voice_id"] for payload in tts_payloads(world.unmixr)]


async def test_the_users_daily_budget_refuses_the_request_that_would_pass_it(
    world: World, backend: dict[str, Any]
) -> None:
    reach = await open_reach(world, user_install_daily_budget=100, user_install_total_daily_budget=1_000, **backend)
    first = await reach.run(reach.dm, reach.dm, reach.user, "say", {"text": prose(70, salt=1)})
    assert first.files(), first.content()
    requests = len(tts_payloads(world.unmixr))
    refused = await reach.run(reach.group, reach.group, reach.user, "say", {"text": prose(40, salt=2)})
    assert refused.ephemeral and not refused.files()
    text = refused.content()
    assert "your daily limit of 100 credits for this app in DMs and servers without it" in text
    assert "30 left" in text and "needs 40" in text
    found = RELATIVE_TIME.search(text)
    assert found, text
    tomorrow = datetime.combine(today() + timedelta(days=1), datetime.min.time(), UTC)
    assert datetime.fromtimestamp(int(found.group(1)), UTC) == tomorrow
    assert len(tts_payloads(world.unmixr)) == requests  # refused before anything was sent
    # What fits still goes; another user has a budget of their own; a server's members are not affected.
    assert (await reach.run(reach.dm, reach.dm, reach.user, "say", {"text": prose(30, salt=3)})).files()
    world.discord.install_for_user(reach.friend)
    theirs = await reach.run(reach.dm, reach.dm, reach.friend, "say", {"text": prose(90, salt=4)})
    assert theirs.files(), theirs.content()
    home = await world.say(text=prose(200, salt=5))
    await home.wait_final(timeout=20)
    assert home.files(), home.content()
    # Never more than the budget: never fits, said so.
    never = await reach.run(reach.dm, reach.dm, reach.friend, "say", {"text": prose(150, salt=6)})
    assert "can never fit" in never.content() and "100 credits" in never.content()


async def test_every_users_total_refuses_the_request_that_would_pass_it(world: World) -> None:
    reach = await open_reach(world, user_install_daily_budget=100, user_install_total_daily_budget=150)
    world.discord.install_for_user(reach.friend)
    first = await reach.run(reach.dm, reach.dm, reach.user, "say", {"text": prose(90, salt=1)})
    assert first.files(), first.content()
    refused = await reach.run(reach.group, reach.group, reach.friend, "say", {"text": prose(70, salt=2)})
    assert refused.ephemeral and not refused.files()
    text = refused.content()
    assert "the bot operator's daily limit of 150 credits for everyone using this app from their own account" in text
    assert "60 left" in text and "USER_INSTALL_TOTAL_DAILY_BUDGET" in text and RELATIVE_TIME.search(text)
    assert len(tts_payloads(world.unmixr)) == 1
    assert (await reach.run(reach.group, reach.group, reach.friend, "say", {"text": prose(60, salt=3)})).files()


async def test_the_accounts_day_counts_user_installs_and_servers_together(world: World) -> None:
    reach = await open_reach(world, account_daily_budget=120)
    first = await reach.run(reach.dm, reach.dm, reach.user, "say", {"text": prose(80, salt=1)})
    assert first.files(), first.content()
    server = await world.say(text=prose(50, salt=2))
    await server.wait_final(timeout=20)
    assert "the bot operator's daily limit of 120 credits" in server.content() and not server.files()
    await world.say(text=prose(30, salt=3))
    refused = await reach.run(reach.dm, reach.dm, reach.user, "say", {"text": "Just twenty letters."})
    assert "the bot operator's daily limit of 120 credits for everyone together" in refused.content()
    assert "ACCOUNT_DAILY_BUDGET" in refused.content()


async def test_a_server_that_has_the_bot_is_a_server_whatever_else_the_interaction_carries(reach: Reach) -> None:
    world, fake = reach.world, reach.world.discord
    # The global /say, registered for both installs, from a member of the bot's server who also added the app to
    # their account: both keys.
    storage = world.bot.storage
    second = world.guild
    member = second.add_member("Max Member", permissions=MEMBER_PERMISSIONS)
    fake.install_for_user(member)
    await storage.set_guild_setting(second.id, "budget", 40)
    await storage.set_guild_setting(second.id, "voice_id", STEFFAN_ID)
    await storage.set_user_preference(member.id, "voice_id", BRIAN_ID)
    command = next(c for c in fake.commands["global"] if c["name"] == "say")
    interaction = await send_global(world, second, member, command, {"text": "Server rules here."})
    assert interaction.payload["authorizing_integration_owners"] == {"0": str(second.id), "1": str(member.id)}
    assert interaction.files(), interaction.content()
    # The server's voice (not the user's account-wide one), charged to the server and its budget.
    assert tts_payloads(world.unmixr)[-1]["voice_id"] == STEFFAN_ID
    await settled(world)
    assert (await storage.usage_for_day(second.id, today())).credits_prebuilt == len("Server rules here.")
    assert await storage.user_install_usage(today(), member.id) == 0
    over = await send_global(world, second, member, command, {"text": prose(30, salt=9)})
    assert "this server's budget of 40 credits a day" in over.content()
    # play: true is a server's option there, answered as in any server (the member is in no voice channel).
    played = await send_global(world, second, member, command, {"text": "Play it.", "play": True})
    assert "server that has the bot" not in played.content()


async def send_global(
    world: World, guild: FakeGuild, member: FakeMember, command: dict[str, Any], options: dict[str, Any]
) -> FakeInteraction:
    """Run a global command in a server that also has it as a guild command (the stand-in prefers those)."""
    fake = world.discord
    surface = fake._surface(guild, world.text, member)
    data = fake._command_data(
        surface,
        command,
        False,
        command["name"],
        options,
        subcommand=None,
        group=None,
        attachments={},
        focused=None,
        client_checks=True,
        permissions=None,
    )
    owners = fake._owners(surface, command, False, command["name"])
    interaction = fake._new_interaction(interaction_type=2, surface=surface, data=data, owners=owners)
    await fake._send_interaction(interaction)
    await interaction.wait_final(timeout=20)
    return interaction


async def test_what_needs_a_server_gets_one_sentence_or_is_not_offered(reach: Reach) -> None:
    world, fake = reach.world, reach.world.discord
    played = await reach.run(reach.dm, reach.dm, reach.user, "say", {"text": "Play it.", "play": True})
    assert played.ephemeral and not played.files()
    assert played.content() == "Playing in voice needs a server that has the bot; leave out `play` to get a file."
    clones = await reach.run(reach.group, reach.group, reach.user, "voices", {"category": "clones"})
    assert clones.ephemeral and "Cloned voices belong to the servers that made them" in clones.content()
    nickname = await reach.run(
        reach.elsewhere, reach.lobby, reach.visitor, "preferences", {"nickname": "Uu"}, subcommand="nickname"
    )
    assert nickname.ephemeral and nickname.content().startswith("A nickname is what readouts call you")
    for name in ("settings", "clone", "balance", "join", "pronounce"):
        with pytest.raises(ClientRefused, match="not offered"):
            await fake.slash(reach.dm, reach.dm, reach.user, name, {})
    assert tts_payloads(world.unmixr) == []


async def test_without_use_external_apps_the_audio_comes_privately(reach: Reach) -> None:
    fake = reach.world.discord
    barred = reach.elsewhere.add_member(
        "Barred", permissions=p.DEFAULT_EVERYONE_PERMISSIONS & ~p.USE_EXTERNAL_APPS & ~p.ADMINISTRATOR
    )
    fake.install_for_user(barred)
    interaction = await reach.run(reach.elsewhere, reach.lobby, barred, "say", {"text": "Only for me."})
    assert interaction.files() and interaction.ephemeral
    # The bot chose it itself: its own defer asked for ephemeral, not only Discord's forcing.
    (deferred,) = [r for r in interaction.responses if r.kind == "callback"]
    assert deferred.type == 5 and deferred.json["data"]["flags"] & p.FLAG_EPHEMERAL


async def test_voices_in_a_dm_browses_and_sets_the_account_wide_voice(reach: Reach) -> None:
    world, fake = reach.world, reach.world.discord
    listing = await reach.run(reach.dm, reach.dm, reach.user, "voices", {"query": "Steffan"})
    assert listing.ephemeral and "Steffan" in str(listing.embeds())
    select = next(c for row in listing.components() for c in row["components"] if c["type"] == 3)
    opened = await fake.click(
        listing.final_message(),
        select["custom_id"],
        reach.user,
        guild=reach.dm,
        channel=reach.dm,
        component_type=3,
        values=[STEFFAN_ID],
    )
    await opened.wait_final()
    labels = [c.get("label") for row in opened.components() for c in row["components"]]
    assert "Use as my voice" in labels and "Set as server default" not in labels
    use = next(c for row in opened.components() for c in row["components"] if c.get("label") == "Use as my voice")
    pressed = await fake.click(opened.final_message(), use["custom_id"], reach.user, guild=reach.dm, channel=reach.dm)
    await pressed.wait_final()
    assert "Your voice for this app in DMs and servers without it is now **Steffan" in pressed.content()
    assert (await world.bot.storage.get_user_preferences(int(reach.user["id"]))).voice_id == STEFFAN_ID
    # Voice autocomplete answers there too, from the catalogue.
    typed = await fake.autocomplete(reach.dm, reach.dm, reach.user, "say", {"text": "x", "voice": "ste"}, "voice")
    await typed.wait_final()
    assert STEFFAN_ID in [choice["value"] for choice in typed.choices()]


async def test_with_user_installs_off_the_commands_register_for_server_installs_only(world: World) -> None:
    world.discord.enable_user_install()
    await world.start_bot()
    await world.bot.tree.sync()
    synced = {command["name"]: command for command in world.discord.commands["global"]}
    assert {"say", "voices", "preferences", "Read aloud", "settings", "clone"} <= set(synced)
    for name, command in synced.items():
        assert command["integration_types"] == [0] and command["contexts"] == [0], name
    user = world.discord.add_user("Uma User")
    world.discord.install_for_user(user)
    dm = world.discord.open_dm(user)
    with pytest.raises(ClientRefused):
        await world.discord.slash(dm, dm, user, "say", {"text": "hi"})


async def test_with_user_installs_on_only_the_four_commands_register_for_them(reach: Reach) -> None:
    synced = {command["name"]: command for command in reach.world.discord.commands["global"]}
    opened = {name for name, command in synced.items() if command["integration_types"] == [0, 1]}
    assert opened == {"say", "voices", "preferences", "Read aloud"}
    for name in opened:
        assert synced[name]["contexts"] == [0, 1, 2]
    for name in set(synced) - opened:
        assert synced[name]["integration_types"] == [0] and synced[name]["contexts"] == [0], name
    # The admin commands keep their default member permission.
    assert str(synced["settings"]["default_member_permissions"]) == str(1 << 5)


async def test_a_voice_message_asked_for_through_a_user_install_comes_as_an_mp3_with_the_reason(reach: Reach) -> None:
    world = reach.world
    text = "A voice message, please."
    # Made once in the bot's server, so a voice message of it is in the cache.
    home = await world.say(text=text, format="voice-message")
    await home.wait_final(timeout=20)
    # Through the user's own install no voice message goes out, even with Send Voice Messages in that server.
    reach.visitor.explicit_permissions = p.DEFAULT_EVERYONE_PERMISSIONS | p.SEND_VOICE_MESSAGES
    for label, place, channel, who in reach.places():
        interaction = await reach.run(place, channel, who, "say", {"text": text, "format": "voice-message"})
        (name, _audio), *_ = interaction.files() or [("", b"")]
        assert name.endswith(".mp3"), (label, interaction.content())
        assert "Sent as an mp3: voice messages can be posted only in a channel of a server" in interaction.content()
        assert not interaction.final_message()["flags"] & p.FLAG_VOICE_MESSAGE
    assert world.discord.wasted_requests() == []


async def test_a_user_install_answers_in_the_users_own_language(world: World) -> None:
    # PRODUCT.md, Languages: replies in the interaction's locale; a DM has no server language to fall back on.
    reach = await open_reach(world, user_install_daily_budget=100, user_install_total_daily_budget=1_000)
    fake = world.discord
    # The global commands' ids, as a bot started after `python -m bot sync` reads them (for mentions in replies).
    world.bot.command_ids.learn(await world.bot.tree.fetch_commands())
    chosen = await reach.run(
        reach.dm, reach.dm, reach.user, "preferences", {"voice": "Jenny"}, subcommand="voice", locale="de"
    )
    assert chosen.content() == (
        "Deine Einstellung stimme für diese App in Direktnachrichten und auf Servern ohne den Bot: "
        "nicht festgelegt → **Jenny**."
    )
    never = await reach.run(reach.group, reach.group, reach.user, "say", {"text": prose(150, salt=6)}, locale="ja")
    assert never.ephemeral and not never.files()
    assert never.content().startswith("これには 150 クレジットが必要ですが、DM とボットのいないサーバーで"), (
        never.content()
    )
    played = await reach.run(
        reach.elsewhere, reach.lobby, reach.visitor, "say", {"text": "Hola.", "play": True}, locale="es-ES"
    )
    assert played.content() == (
        "La reproducción en un canal de voz necesita un servidor que tenga el bot; quita `play` para recibir un "
        "archivo."
    )
    # A command left registered for user installs by an older sync: refused in French, every command named as a
    # French member sees it.
    join = next(command for command in fake.commands["global"] if command["name"] == "join")
    join.update(integration_types=[p.GUILD_INSTALL, p.USER_INSTALL], contexts=[0, 1, 2])
    refused = await reach.run(reach.dm, reach.dm, reach.user, "join", locale="fr")
    assert refused.ephemeral
    assert fake.as_seen(reach.dm, refused.content(), "fr") == (
        "/rejoindre ne fonctionne que sur les serveurs où se trouve le bot ; ici, vous pouvez utiliser /dire, /voix, "
        "`/préférences` et **Lire à voix haute**."
    )


async def test_a_say_still_at_unmixr_when_the_bot_stops_leaves_no_hold_and_counts_as_spent(reach: Reach) -> None:
    # PRODUCT.md, Continuity: at shutdown unsent chunks give their holds back and chunks still at Unmixr count as
    # spent, for requests through users' own installs as for servers'.
    world = reach.world
    world.unmixr.hang_next(endpoint="/short-tts/")
    text = "Still at Unmixr when the bot stops."
    await world.discord.slash(reach.dm, reach.dm, reach.user, "say", {"text": text})
    await world.discord.wait_until(
        lambda: any(payload["text"] == text for payload in tts_payloads(world.unmixr)), what="the request at Unmixr"
    )
    await world.stop_bot()
    with closing(sqlite3.connect(world.settings.database_path)) as connection:
        held, spent = connection.execute(
            "SELECT COALESCE(SUM(reserved), 0), COALESCE(SUM(credits_prebuilt), 0) FROM usage_ledger "
            "WHERE guild_id = ?",
            (USER_INSTALLS,),
        ).fetchone()
    assert (held, spent) == (0, len(text))
