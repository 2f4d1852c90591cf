"""End-to-end test that server settings, preferences and pronunciations survive a restart of the bot."""

from __future__ import annotations

import sqlite3
from typing import Any

from tests.conftest import World
from tests.fakes.discord_server import ChannelOption, FakeInteraction, FakeMember, Response, RoleOption


def is_answer(response: Response) -> bool:
    """Whether a response carries the interaction's answer (not only an acknowledgement)."""
    if response.status >= 300:
        return False
    return response.kind in ("followup", "edit_original", "edit_followup") or (
        response.kind == "callback" and response.type in (4, 7)
    )


async def run(
    world: World, name: str, subcommand: str | None, options: dict[str, Any], member: FakeMember
) -> FakeInteraction:
    """Run a slash command and wait for its answer."""
    interaction = await world.slash(name, options, subcommand=subcommand, member=member)
    await interaction.wait_for(is_answer)
    assert interaction.ephemeral or interaction.files(), interaction.responses
    return interaction


def show_lines(interaction: FakeInteraction) -> dict[str, str]:
    """The `/settings show` embed's lines by label, plus "yours"."""
    embed = interaction.embeds()[0]
    lines = {}
    for line in embed["description"].splitlines():
        label, _, rest = line.partition(": ")
        lines[label.strip("*")] = rest
    lines["yours"] = " ".join(field["value"] for field in embed.get("fields") or [])
    return lines


async def test_everything_set_is_kept_across_a_restart(world: World) -> None:
    role = world.guild.add_role("Quiet")
    voices = {v["character"]: v["uuid"] for v in world.unmixr.voices}
    await world.start_bot()
    admin, member = world.admin, world.member
    server_values: list[tuple[str, dict[str, Any]]] = [
        ("voice", {"voice": "Jenny"}),
        ("language", {"language": "en-GB"}),
        ("rate", {"rate": "+15%"}),
        ("pitch", {"pitch": "-5%"}),
        ("volume", {"volume": "loud"}),
        ("intensity", {"intensity": 25}),
        ("format", {"format": "wav"}),
        ("max-length", {"length": 900}),
        ("readout-channel", {"channel": ChannelOption(world.readout["id"])}),
        ("xsaid", {"enabled": False}),
        ("ignore-role", {"role": RoleOption(int(role["id"]))}),
    ]
    for subcommand, options in server_values:
        await run(world, "settings", subcommand, options, admin)
    await run(world, "preferences", "voice", {"voice": "Aria"}, admin)
    await run(world, "preferences", "nickname", {"nickname": "Boss"}, admin)
    await run(world, "preferences", "voice", {"voice": "Brian"}, member)
    await run(world, "preferences", "rate", {"rate": "-20%"}, member)
    await run(world, "pronounce", "add", {"word": "GIF", "spoken": "jif"}, admin)
    await run(world, "pronounce", "add", {"word": "nginx", "spoken": "engine x"}, admin)
    before = show_lines(await run(world, "settings", "show", {}, admin))

    await world.stop_bot()
    await world.start_bot()
    # The stand-in's "connected" flag stays set from the first run: wait for the new bot's own IDENTIFY.
    await world.discord.wait_until(lambda: world.discord.identify_counts.get(0, 0) >= 2, what="the new IDENTIFY")

    after = show_lines(await run(world, "settings", "show", {}, admin))
    assert after == before
    assert after["voice"] == "**Jenny** (server setting)"
    assert after["language"] == "`en-GB` (server setting)"
    assert after["rate"] == "`+15%` (server setting)"
    assert after["pitch"] == "`-5%` (server setting)"
    assert after["volume"] == "`loud` (server setting)"
    assert after["intensity"] == "`25` (server setting)"
    assert after["format"] == "`wav` (server setting)"
    assert after["max-length"] == "900 characters (server setting)"
    assert after["readout-channel"] == f"<#{world.readout['id']}> (server setting)"
    assert after["xsaid"] == "off (server setting)"
    assert after["ignore-role"] == f"<@&{role['id']}> (server setting)"
    assert "**Aria** (yours)" in after["yours"] and "`Boss` (yours)" in after["yours"]

    listed = await run(world, "pronounce", "list", {}, member)
    description = listed.embeds()[0]["description"]
    assert "**GIF** → jif" in description and "**nginx** → engine x" in description

    # The member's voice and rate, the server's pitch, volume and format, and the pronunciations.
    said = await world.say(member=member, text="This GIF is served by nginx.")
    await said.wait_for(is_answer)
    [(filename, data)] = said.files()
    assert filename.endswith(".wav") and data[:4] == b"RIFF"
    request = world.tts_requests()[-1].json
    assert request["voice_id"] == voices["Brian"]
    assert request["language"] == "en-GB"
    assert (request["speaking_rate"], request["speaking_pitch"], request["speaking_volume"]) == ("-20%", "-5%", "loud")
    assert request["intensity"] == 25
    assert request["pronunciation_dict"] == {"GIF": "jif", "nginx": "engine x"}
    # The admin's own voice preference came back too.
    said = await world.say(member=admin, text="Hello again.")
    await said.wait_for(is_answer)
    assert world.tts_requests()[-1].json["voice_id"] == voices["Aria"]

    await world.stop_bot()
    with sqlite3.connect(world.settings.database_path) as connection:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        (journal,) = connection.execute("PRAGMA journal_mode").fetchone()
    assert version > 0
    assert journal.lower() == "wal"
