"""Names in replies show as typed: a voice, clone, nickname or pronunciation like `[x](https://evil)` is escaped
for Discord's markdown, so it never renders as a masked link (or bold, or a heading)."""

from __future__ import annotations

import asyncio
import copy
import re
import uuid
from pathlib import Path
from typing import Any

import discord

from tests.conftest import World
from tests.fakes.discord_server import FakeInteraction
from tests.fakes.discord_voice import FakeVoiceServer

HOSTILE = "[x](https://evil.example)"
ESCAPED = discord.utils.escape_markdown(HOSTILE)
# A masked link Discord would render: brackets not escaped, then a URL in parentheses.
_MASKED_LINK = re.compile(r"(?<!\\)\[[^\]\n]*\]\(<?https?://")
_CODE_SPAN = re.compile(r"`[^`]*`")


def assert_shown_as_typed(text: str) -> None:
    """The hostile name appears escaped, and nothing in the text (outside code spans) renders as a masked link."""
    assert ESCAPED in text or f"`{HOSTILE}" in text, text
    assert not _MASKED_LINK.search(_CODE_SPAN.sub("", text)), text


def shown(interaction: FakeInteraction) -> str:
    """Everything of the final answer that Discord renders as markdown: content, embed titles, descriptions, fields."""
    message = interaction.final_message()
    assert message is not None, interaction.responses
    parts = [message["content"]]
    for embed in message["embeds"]:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{field['name']}\n{field['value']}" for field in embed.get("fields", [])]
    return "\n".join(parts)


async def done(interaction: FakeInteraction) -> FakeInteraction:
    await interaction.wait_final(timeout=20)
    return interaction


async def start_with_hostile_voice(world: World) -> str:
    """Add a voice named HOSTILE to Unmixr's catalogue, start the bot, and return the voice's uuid."""
    voice = copy.deepcopy(next(v for v in world.unmixr.voices if v["character"] == "Jenny"))
    voice.update(uuid=str(uuid.uuid4()), character=HOSTILE, description=f"Sounds like **{HOSTILE}**")
    world.unmixr.voices.append(voice)
    await world.start_bot()
    return str(voice["uuid"])


async def test_an_unmixr_voice_name_shows_as_typed_wherever_it_is_named(world: World) -> None:
    hostile = await start_with_hostile_voice(world)
    listing = await done(await world.slash("voices", {"query": "evil"}))
    assert_shown_as_typed(shown(listing))
    said = await done(await world.say(text="Hello there.", voice=hostile))
    assert said.files() and said.content().startswith(f"🔊 **{ESCAPED}**")
    assert_shown_as_typed(said.content())
    mine = await done(await world.slash("preferences", {"voice": hostile}, subcommand="voice"))
    assert_shown_as_typed(mine.content())
    default = await done(await world.slash("settings", {"voice": hostile}, subcommand="voice", member=world.admin))
    assert_shown_as_typed(default.content())
    settings = await done(await world.slash("settings", subcommand="show", member=world.admin))
    assert_shown_as_typed(shown(settings))
    unknown = await done(await world.say(text="Hello there.", voice=f"{HOSTILE} 2"))
    assert unknown.ephemeral and "no voice called" in unknown.content()
    assert_shown_as_typed(unknown.content())


async def test_a_clone_name_shows_as_typed(running: World, tmp_path: Path) -> None:
    recording = tmp_path / "speech40.mp3"
    await _tone(recording, seconds=40)
    cloned = await done(
        await running.slash(
            "clone",
            {"name": HOSTILE, "consent": True},
            member=running.admin,
            attachments={"audio": ("speech.mp3", recording.read_bytes(), "audio/mpeg")},
        )
    )
    assert cloned.content().startswith(f"Cloned **{ESCAPED}**"), cloned.content()
    assert_shown_as_typed(cloned.content())
    listing = await done(await running.slash("voices", {"category": "clones"}))
    assert_shown_as_typed(shown(listing))


async def test_pronunciation_entries_show_as_typed(running: World) -> None:
    options: dict[str, Any] = {"word": HOSTILE, "spoken": "**loud**"}
    added = await done(await running.slash("pronounce", options, subcommand="add", member=running.admin))
    assert_shown_as_typed(added.content())
    assert "\\*\\*loud\\*\\*" in added.content()
    listed = await done(await running.slash("pronounce", subcommand="list", member=running.admin))
    assert_shown_as_typed(shown(listed))
    removed = await done(await running.slash("pronounce", {"word": HOSTILE}, subcommand="remove", member=running.admin))
    assert_shown_as_typed(removed.content())


async def test_a_nickname_with_a_backtick_cannot_leave_its_code_span(running: World) -> None:
    nickname = f"a` {HOSTILE} `b"
    changed = await done(
        await running.slash("preferences", {"nickname": nickname}, subcommand="nickname", member=running.admin)
    )
    assert_shown_as_typed(changed.content())
    settings = await done(await running.slash("settings", subcommand="show", member=running.admin))
    assert_shown_as_typed(shown(settings))


async def test_queue_labels_show_as_typed(world: World, voice_server: FakeVoiceServer) -> None:
    hostile = await start_with_hostile_voice(world)
    await world.discord.move_member(world.guild, world.member, world.voice)
    for text in ("A clip that keeps playing for a few seconds at least.", "Waiting clip."):
        queued = await done(await world.say(text=text, voice=hostile, play=True))
        assert_shown_as_typed(queued.content())
    queue = await done(await world.slash("queue"))
    assert "Waiting clip" in queue.content()
    assert_shown_as_typed(queue.content())


async def _tone(target: Path, *, seconds: int) -> None:
    process = await asyncio.create_subprocess_exec(
        *("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", f"sine=frequency=220:duration={seconds}"),
        *("-ac", "1", "-b:a", "32k", str(target)),
    )
    assert await process.wait() == 0
