"""End-to-end tests of the permission model: the bot itself refuses admin commands to members without Manage Server.

The Discord stand-in does not apply `default_member_permissions` (nor does Discord for a server that grants the
command through an Integrations override), so every refusal here is the bot's own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import MEMBER_PERMISSIONS, World
from tests.fakes.discord_server import ChannelOption, FakeInteraction, Response, RoleOption, iter_components
from tests.fakes.unmixr_catalogue import BRIAN_ID

NOT_ADMIN = "This needs the Manage Server permission; ask a server admin to do it for you."
SERVERS_ONLY = "This bot works in servers only; use its commands in a server channel."
ADMINISTRATOR = 1 << 3


def is_answer(response: Response) -> bool:
    """Whether a response carries the interaction's answer (not only an acknowledgement)."""
    if response.status >= 300:
        return False
    return response.kind in ("followup", "edit_original", "edit_followup") or (
        response.kind == "callback" and response.type in (4, 7)
    )


async def stored_state(world: World) -> tuple[Any, ...]:
    """Everything an admin command could have changed."""
    storage, guild_id = world.bot.storage, world.guild.id
    return (
        await storage.get_guild_settings(guild_id),
        await storage.list_pronunciations(guild_id),
        await storage.list_cloned_voices(guild_id),
    )


def assert_refused(interaction: FakeInteraction, answer: str = NOT_ADMIN) -> None:
    """The interaction got exactly the one-sentence refusal, privately, and nothing else."""
    assert interaction.content() == answer, interaction.responses
    assert interaction.ephemeral
    answers = [r for r in interaction.responses if is_answer(r)]
    assert len(answers) == 1, interaction.responses
    assert answers[0].json.get("data", answers[0].json)["allowed_mentions"] == {"parse": []}


async def test_every_admin_command_is_refused_to_a_member_without_manage_server(world: World) -> None:
    role = world.guild.add_role("Muted")
    await world.start_bot()
    admin_settings: list[tuple[str, dict[str, Any]]] = [
        ("show", {}),
        ("voice", {"voice": "Jenny"}),
        ("voice", {}),
        ("language", {"language": "fr-FR"}),
        ("rate", {"rate": "+20%"}),
        ("pitch", {"pitch": "-10%"}),
        ("volume", {"volume": "loud"}),
        ("intensity", {"intensity": 20}),
        ("format", {"format": "wav"}),
        ("max-length", {"length": 100}),
        ("budget", {"characters": 100}),
        ("member-budget", {"characters": 100}),
        ("readout-channel", {"channel": ChannelOption(world.readout["id"])}),
        ("xsaid", {"enabled": False}),
        ("auto-join", {"enabled": True}),
        ("ignore-role", {"role": RoleOption(int(role["id"]))}),
        ("reset", {}),
    ]
    calls: list[tuple[str, str | None, dict[str, Any], dict[str, Any]]] = [
        ("settings", subcommand, options, {}) for subcommand, options in admin_settings
    ]
    calls += [
        ("balance", None, {}, {}),
        (
            "clone",
            None,
            {"name": "Stolen voice", "consent": True},
            {"attachments": {"audio": ("voice.mp3", b"ID3" + b"\0" * 4000, "audio/mpeg")}},
        ),
        ("pronounce", "add", {"word": "GIF", "spoken": "jif"}, {}),
        ("pronounce", "remove", {"word": "GIF"}, {}),
    ]
    # Something for reset and remove to destroy, were they allowed.
    await world.bot.storage.set_guild_setting(world.guild.id, "rate", "-10%")
    await world.bot.storage.add_pronunciation(world.guild.id, "GIF", "jif", world.admin.id)
    before_state = await stored_state(world)
    before_requests = len(world.unmixr.requests)

    interactions = [
        await world.slash(name, options, subcommand=subcommand, member=world.member, **extra)
        for name, subcommand, options, extra in calls
    ]
    await asyncio.gather(*(interaction.wait_final() for interaction in interactions))
    for interaction in interactions:
        assert_refused(interaction)
    subcommands_seen = {(name, subcommand) for name, subcommand, _, _ in calls}

    synced = next(c for c in world.discord.commands[world.guild.id] if c["name"] == "settings")
    assert {("settings", sub["name"]) for sub in synced["options"]} <= subcommands_seen
    assert await stored_state(world) == before_state
    assert world.unmixr.requests[before_requests:] == []


async def test_set_as_server_default_button_is_refused_to_a_member(running: World) -> None:
    listing = await running.slash("voices", {}, member=running.member)
    await listing.wait_final()
    menu = next(c for c in iter_components(listing.components()) if c["type"] == 3)
    message = listing.final_message()
    assert message is not None
    picked = await running.discord.click(
        message,
        menu["custom_id"],
        running.member,
        guild=running.guild,
        channel=running.text,
        component_type=3,
        values=[BRIAN_ID],
    )
    await picked.wait_final()
    details = picked.final_message()
    assert details is not None
    button = next(c for c in iter_components(details["components"]) if c.get("label") == "Set as server default")
    before = len(running.unmixr.requests)

    pressed = await running.discord.click(
        details, button["custom_id"], running.member, guild=running.guild, channel=running.text
    )
    await pressed.wait_final()
    assert_refused(pressed)
    assert (await running.bot.storage.get_guild_settings(running.guild.id)).voice_id is None
    assert running.unmixr.requests[before:] == []


async def test_administrator_without_manage_server_is_an_admin(running: World) -> None:
    boss = running.guild.add_member("Boss", permissions=MEMBER_PERMISSIONS | ADMINISTRATOR)
    interaction = await running.slash("settings", {"rate": "+5%"}, subcommand="rate", member=boss)
    await interaction.wait_final()
    assert interaction.content() == "Server rate: not set → `+5%`."


async def test_a_member_whose_role_grants_manage_server_is_an_admin(world: World) -> None:
    moderators = world.guild.add_role("Moderators", permissions=1 << 5)
    moderator = world.guild.add_member("Mo Moderator", roles=[moderators])
    await world.start_bot()
    interaction = await world.slash("settings", {"rate": "+5%"}, subcommand="rate", member=moderator)
    await interaction.wait_final()
    assert interaction.content() == "Server rate: not set → `+5%`."


async def test_a_direct_message_gets_the_servers_only_answer(running: World) -> None:
    discord_fake = running.discord
    dm = discord_fake.open_dm(running.member)
    surface = discord_fake._surface(dm, dm, running.member)
    for name, subcommand, options in (("say", None, {"text": "Hello"}), ("settings", "show", {}), ("voices", None, {})):
        # With user installs off, no command is offered in a DM: one comes only from a registration that an operator
        # made with them on and did not sync again (the stand-in builds it by hand, as Discord would send it).
        command, _scoped = discord_fake._find_command(running.guild, name, 1)
        data = discord_fake._command_data(
            surface,
            command,
            False,
            name,
            options,
            subcommand=subcommand,
            group=None,
            attachments={},
            focused=None,
            client_checks=True,
            permissions=None,
        )
        interaction = discord_fake._new_interaction(
            interaction_type=2, surface=surface, data=data, owners={"1": str(running.member.id)}
        )
        await discord_fake._send_interaction(interaction)
        await interaction.wait_final()
        assert_refused(interaction, SERVERS_ONLY)
    assert running.tts_requests() == []
