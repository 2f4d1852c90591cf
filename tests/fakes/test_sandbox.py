"""The sandbox as a try-out tool, driven by a scripted session against the real bot in this process."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.discord_voice import FakeVoiceServer
from tests.fakes.harness import BotRunner
from tests.fakes.sandbox import Sandbox, sync_other_servers, unique_path
from tests.fakes.unmixr import FakeUnmixr

REPOSITORY = Path(__file__).resolve().parents[2]


@dataclass
class Session:
    """A sandbox with the bot running, and what it has written so far."""

    sandbox: Sandbox
    lines: list[str]

    async def type(self, line: str) -> list[str]:
        """Type one line and return what the sandbox wrote for it."""
        start = len(self.lines)
        await self.sandbox.run_line(line)
        return self.lines[start:]


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[Session]:
    unmixr, discord, voice = FakeUnmixr(), FakeDiscord(token="sandbox-discord-token"), FakeVoiceServer()
    await unmixr.start()
    await discord.start()
    await voice.start()
    lines: list[str] = []
    sandbox = Sandbox(unmixr, discord, voice, tmp_path / "sandbox-out", write=lines.append)
    voice.trust_in_process()
    settings = Settings(_env_file=None, **sandbox.bot_environment(tmp_path / "data"))  # type: ignore[call-arg]
    runner = BotRunner(discord, sandbox.guild.id)
    await runner.start(settings, timeout=30)
    try:
        yield Session(sandbox, lines)
    finally:
        await runner.stop()
        await voice.close()
        await discord.close()
        await unmixr.close()


def recording(folder: Path, seconds: int) -> Path:
    """A real mp3 recording of `seconds` seconds, made with ffmpeg."""
    path = folder / "recording.mp3"
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency=220:duration={seconds}", str(path)],
        check=True,
        timeout=60,
    )
    return path


async def test_a_scripted_session_shows_fields_pages_clones_and_saves_every_file(
    session: Session, tmp_path: Path
) -> None:
    listing = await session.type("voices")
    assert listing[:2] == ["< (ephemeral)", "< [embed] Voices"]
    fields = [line for line in listing if line.startswith("<   • ")]
    assert len(fields) == 10, listing
    assert any(line.startswith("<   • Jenny: Female · en-US") for line in fields), fields
    assert any(line.startswith("<   — Page 1 of ") for line in listing), listing
    assert "< [buttons] [◀] (disabled)  [▶]" in listing
    assert any(line.startswith("< [menu] Open a voice's details: ") for line in listing)

    second = await session.type(":press ▶")
    assert any(line.startswith("<   — Page 2 of ") for line in second), second
    second_fields = [line for line in second if line.startswith("<   • ")]
    assert second_fields and set(second_fields).isdisjoint(fields)

    name = second_fields[0].removeprefix("<   • ").split(":", 1)[0]
    details = await session.type(f":choose {name}")
    assert f"< [embed] {name}" in details
    assert any(line.startswith("<   • Gender: ") for line in details), details
    assert any("[Use as my voice]" in line for line in details)

    audio = recording(tmp_path, 35)
    cloned = await session.type(f'clone audio=@{audio} name="Sandbox Voice" consent=true')
    assert any("Sandbox Voice" in line for line in cloned), cloned
    [upload] = [r for r in session.sandbox.unmixr.requests if r.endpoint == "/clone-voice/"]
    assert upload is not None

    said = await session.type('say text="Hello from the sandbox." voice="Sandbox Voice"')
    again = await session.type('say text="Hello from the sandbox." voice="Sandbox Voice"')
    saved = [line.split()[2] for line in said + again if line.startswith("< saved ")]
    assert len(saved) == 2 and saved[0] != saved[1], said + again
    assert all(Path(path).stat().st_size > 0 for path in saved)


async def test_voice_in_the_sandbox_can_be_saved_as_a_wav(session: Session) -> None:
    assert (await session.type(":enter"))[0] == "< Sandbox Admin is in the voice channel Lounge"
    await session.type("join")
    await session.sandbox.voice.wait_for_session(session.sandbox.guild.id, timeout=15)
    queued = await session.type('say text="Playing in the lounge." play=true')
    assert any("Queued at position 1" in line for line in queued), queued
    voice_session = session.sandbox.voice.sessions[session.sandbox.guild.id]
    await session.sandbox.discord.wait_until(
        lambda: sum(packet.is_silence for packet in voice_session.packets) >= 5, timeout=20, what="the clip"
    )
    [saved] = await session.type(":save-voice")
    path = Path(saved.split()[2])
    with wave.open(str(path)) as file:
        assert file.getframerate() == 48_000 and file.getnframes() > 48_000 // 2


async def test_mistakes_are_one_line_and_the_session_goes_on(session: Session) -> None:
    assert (await session.type(":press ▶")) == ["! no answer with buttons or menus yet"]
    assert (await session.type(":fly")) == ["! no sandbox command :fly; type :help"]
    missing = await session.type("clone audio=@/nonexistent/recording.mp3 name=X consent=true")
    assert len(missing) == 1 and missing[0].startswith("! ") and "/nonexistent/recording.mp3" in missing[0]
    assert any(line.startswith("< ") for line in await session.type("balance"))


def test_saved_files_never_overwrite_each_other(tmp_path: Path) -> None:
    first = unique_path(tmp_path, "jenny.mp3")
    first.write_bytes(b"1")
    second = unique_path(tmp_path, "jenny.mp3")
    second.write_bytes(b"2")
    assert (first.name, second.name, unique_path(tmp_path, "jenny.mp3").name) == (
        "jenny.mp3",
        "jenny-2.mp3",
        "jenny-3.mp3",
    )


async def test_a_taken_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.fakes.sandbox",
            "--unmixr-port",
            str(port),
            "--output",
            str(tmp_path / "out"),
            cwd=REPOSITORY,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert stderr.decode().splitlines() == [
        f"sandbox: cannot start the Unmixr stand-in on port {port} (Address already in use); "
        "choose another with --unmixr-port"
    ]


def test_sandbox_output_is_ignored_by_git() -> None:
    assert "sandbox-out/" in (REPOSITORY / ".gitignore").read_text().splitlines()


async def test_read_aloud_channels_by_name_and_ids(session: Session) -> None:
    posted = await session.type(":post Hello from the sandbox, read me.")
    assert posted[0].startswith("< posted message ")
    read = await session.type(":read-aloud")
    assert any(line.startswith("< saved ") for line in read), read
    [request] = [r for r in session.sandbox.unmixr.requests if r.endpoint == "/short-tts/"]
    assert request.json["text"] == "Hello from the sandbox, read me."

    general = session.sandbox.channel["id"]
    changed = await session.type("settings readout-channel channel=#general")
    assert any(f"<#{general}>" in line for line in changed), changed
    listed = await session.type(":ids")
    assert f"<   text channel general: {general}" in listed
    assert any(line.startswith("<   member Sandbox Admin: ") for line in listed)
    assert any(line.startswith("<   message ") and "read me" in line for line in listed)
    by_id = await session.type(f"settings readout-channel channel={general}")
    assert any(f"<#{general}>" in line for line in by_id), by_id


async def test_no_input_ends_the_session(session: Session) -> None:
    mistakes = [
        "settings readout-channel channel=nowhere",
        "settings readout-channel channel=123456789",
        "settings ignore-role role=@ghosts",
        'say text="an unclosed quote',
        "fly away",
        "settings fly",
        ":read-aloud",
        ":read-aloud 42",
        ":server Elsewhere",
        "voices category=robots",
    ]
    for mistake in mistakes:
        answer = await session.type(mistake)
        assert len(answer) == 1 and answer[0].startswith("! "), (mistake, answer)
    assert (await session.type("settings readout-channel channel=nowhere"))[0].startswith(
        "! no channel 'nowhere' in Sandbox; pick one of: general, Lounge"
    )
    # The bot and its database are still there.
    assert any("Server settings" in line for line in await session.type("settings show"))


async def test_a_second_shard_with_its_own_server(tmp_path: Path) -> None:
    unmixr, discord, voice = FakeUnmixr(), FakeDiscord(token="sandbox-discord-token", shard_count=2), FakeVoiceServer()
    await unmixr.start()
    await discord.start()
    await voice.start()
    lines: list[str] = []
    sandbox = Sandbox(unmixr, discord, voice, tmp_path / "out", write=lines.append)
    assert [server.guild.shard_id for server in sandbox.servers] == [0, 1]
    settings = Settings(_env_file=None, **sandbox.bot_environment(tmp_path / "data"))  # type: ignore[call-arg]
    runner = BotRunner(discord, sandbox.guild.id)
    bot = await runner.start(settings, timeout=30)
    try:
        assert bot.shard_count == 2
        await sync_other_servers(bot, sandbox)
        session = Session(sandbox, lines)
        switched = await session.type(":server Sandbox 2")
        assert switched == [f"< now in Sandbox 2 (server {sandbox.servers[1].guild.id}, shard 1)"]
        said = await session.type('say text="Hello from the second shard."')
        assert any(line.startswith("< saved ") for line in said), said
    finally:
        await runner.stop()
        await voice.close()
        await discord.close()
        await unmixr.close()
