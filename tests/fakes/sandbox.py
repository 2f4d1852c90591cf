"""Try the bot by hand against the local stand-ins: `python -m tests.fakes.sandbox`.

Starts the Unmixr stand-in and the Discord stand-ins (REST and gateway, and voice): one server with a text channel,
a voice channel "Lounge" and an admin. With `--bot` it runs the bot in this process; without, it prints the command
that runs the bot against them in another terminal. Then it reads lines from standard input: each is sent as the
admin's slash command, and the answer is printed whole (content, embeds with their fields, buttons and menus);
attachments are saved under the output folder. Lines starting with a colon are the sandbox's own commands:

    say text="Hello there." voice=Jenny
    settings rate rate=+20%
    voices gender=female
    :press ▶                    press a button of the last answer with controls, by its label
    :choose Jenny               pick an option of its menu, by its label
    clone audio=@recording.mp3 name="My voice" consent=true
    :enter                      put the admin in the voice channel (then `join`, or `say ... play=true`)
    :save-voice                 write what the bot played in voice to a .wav file
    :leave                      take the admin out of the voice channel
    :help
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import mimetypes
import os
import shlex
import sys
import tempfile
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fakes.discord_server import FakeDiscord, FakeInteraction, iter_components
from tests.fakes.discord_voice import FakeVoiceServer
from tests.fakes.unmixr import FakeUnmixr

ADMIN_PERMISSIONS = (1 << 5) | (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 20) | (1 << 21) | (1 << 31)
ANSWER_TIMEOUT = 60.0
BUTTON, SELECT, ATTACHMENT = 2, 3, 11
OWN_COMMANDS = """Sandbox commands (anything else is a slash command, e.g. say text="Hello." voice=Jenny):
  :press LABEL    press a button of the last answer with controls (◀, ▶, Preview, ...)
  :choose LABEL   pick a menu option of that answer by its label
  :enter          put the admin in the voice channel "Lounge"; :leave takes them out
  :save-voice     write what the bot played in voice so far to a .wav file
  option=@FILE    attach a local file to an attachment option (clone audio=@recording.mp3 ...)"""


class SandboxError(Exception):
    """Something typed cannot be done; the message says why in one line."""


def parse_command(line: str) -> tuple[str, str | None, dict[str, Any]]:
    """`settings rate rate=+20%` -> ("settings", "rate", {"rate": "+20%"})."""
    words = shlex.split(line)
    name, rest = words[0], words[1:]
    subcommand = rest.pop(0) if rest and "=" not in rest[0] else None
    options: dict[str, Any] = {}
    for word in rest:
        key, _, value = word.partition("=")
        options[key] = {"true": True, "false": False}.get(
            value.lower(), int(value) if value.lstrip("-").isdigit() else value
        )
    return name, subcommand, options


def unique_path(folder: Path, filename: str) -> Path:
    """`folder/filename`, or `name-2.ext`, `name-3.ext`... when that is taken: a saved file is never overwritten."""
    candidate = folder / Path(filename).name
    number = 1
    while candidate.exists():
        number += 1
        candidate = folder / f"{Path(filename).stem}-{number}{Path(filename).suffix}"
    return candidate


def describe_message(message: dict[str, Any]) -> list[str]:
    """A message as lines of text: content, every embed whole, and its controls."""
    lines: list[str] = []
    ephemeral = " (ephemeral)" if message.get("flags", 0) & 64 else ""
    if message.get("content"):
        lines.extend(message["content"].splitlines())
        lines[0] += ephemeral
    elif ephemeral:
        lines.append(ephemeral.strip())
    for embed in message.get("embeds") or []:
        lines.append(f"[embed] {embed.get('title', '')}".rstrip())
        if embed.get("url"):
            lines.append(f"  link: {embed['url']}")
        lines.extend(f"  {line}" for line in (embed.get("description") or "").splitlines())
        for field in embed.get("fields") or []:
            lines.append(f"  • {field.get('name', '')}: {field.get('value', '')}")
        for part in ("thumbnail", "image"):
            if (embed.get(part) or {}).get("url"):
                lines.append(f"  {part}: {embed[part]['url']}")
        if (embed.get("footer") or {}).get("text"):
            lines.append(f"  — {embed['footer']['text']}")
    buttons = [component for component in iter_components(message.get("components") or []) if component["type"] == 2]
    if buttons:
        lines.append("[buttons] " + "  ".join(_button_label(button) for button in buttons))
    for menu in (c for c in iter_components(message.get("components") or []) if c["type"] == SELECT):
        labels = ", ".join(option["label"] for option in menu.get("options") or [])
        disabled = " (disabled)" if menu.get("disabled") else ""
        lines.append(f"[menu] {menu.get('placeholder') or 'choose'}{disabled}: {labels}")
    return lines


def _button_label(button: dict[str, Any]) -> str:
    label = button.get("label") or (button.get("emoji") or {}).get("name") or button.get("custom_id", "?")
    return f"[{label}]" + (" (disabled)" if button.get("disabled") else "")


def _matches(label: str, wanted: str) -> bool:
    return label.strip().casefold() == wanted.strip().casefold()


class Sandbox:
    """The stand-ins, one server, and a way to act in it as its admin by typed lines."""

    def __init__(
        self,
        unmixr: FakeUnmixr,
        discord: FakeDiscord,
        voice: FakeVoiceServer,
        output: Path,
        write: Callable[[str], None] = print,
    ) -> None:
        self.unmixr = unmixr
        self.discord = discord
        self.voice = voice
        self.output = output
        self.write = write
        self.guild = discord.add_guild(name="Sandbox")
        self.channel = self.guild.add_text_channel("general")
        self.voice_channel = self.guild.add_voice_channel("Lounge")
        self.admin = self.guild.add_member("Sandbox Admin", permissions=ADMIN_PERMISSIONS)
        self.last_with_controls: dict[str, Any] | None = None
        voice.attach(discord)

    def bot_environment(self, data: Path) -> dict[str, str]:
        """The settings that point `python -m bot` at these stand-ins, with its files under `data`."""
        return {
            "DISCORD_TOKEN": self.discord.token,
            "UNMIXR_API_KEY": self.unmixr.api_key,
            "UNMIXR_BASE_URL": self.unmixr.base_url,
            "DISCORD_API_BASE": self.discord.api_base,
            "DISCORD_GATEWAY_URL": self.discord.gateway_url,
            "DEV_GUILD_ID": str(self.guild.id),
            "DATABASE_PATH": str(data / "bot.sqlite3"),
            "AUDIO_CACHE_DIR": str(data / "audio-cache"),
            # The voice stand-in's certificate is self-signed: the bot's process must trust it.
            "SSL_CERT_FILE": str(self.voice.cert_path),
        }

    async def run_line(self, line: str) -> None:
        """Do what one typed line says and write the outcome; a mistake is written, never raised."""
        line = line.strip()
        if not line:
            return
        try:
            if line.startswith(":"):
                await self._own_command(line[1:])
            else:
                await self._slash(line)
        except (SandboxError, ValueError, OSError, TimeoutError) as error:
            self.write(f"! {error}")

    async def _own_command(self, line: str) -> None:
        verb, _, rest = line.partition(" ")
        argument = " ".join(shlex.split(rest)) if rest.strip() else ""
        if verb == "press":
            await self._press(argument)
        elif verb == "choose":
            await self._choose(argument)
        elif verb == "enter":
            self._require_bot()
            await self.discord.move_member(self.guild, self.admin, self.voice_channel)
            self.write(f"< {self.admin.name} is in the voice channel {self.voice_channel['name']}")
        elif verb == "leave":
            self._require_bot()
            await self.discord.move_member(self.guild, self.admin, None)
            self.write(f"< {self.admin.name} left voice")
        elif verb == "save-voice":
            await self._save_voice()
        elif verb == "help":
            self.write(OWN_COMMANDS)
        else:
            raise SandboxError(f"no sandbox command :{verb}; type :help")

    def _require_bot(self) -> None:
        if self.discord.session_for(self.guild.shard_id) is None:
            raise SandboxError("the bot is not connected yet: start it with the command printed above")

    async def _slash(self, line: str) -> None:
        self._require_bot()
        name, subcommand, options = parse_command(line)
        attachments: dict[str, tuple[str, bytes, str]] = {}
        for option in self._attachment_options(name, subcommand):
            value = options.get(option)
            if isinstance(value, str) and value.startswith("@"):
                path = Path(value[1:]).expanduser()
                data = await asyncio.to_thread(path.read_bytes)
                content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                attachments[option] = (path.name, data, content_type)
                del options[option]
        interaction = await self.discord.slash(
            self.guild, self.channel, self.admin, name, options, subcommand=subcommand, attachments=attachments
        )
        await self._show(interaction)

    def _attachment_options(self, name: str, subcommand: str | None) -> list[str]:
        """The attachment options of a synced command (or of its subcommand)."""
        for command in self.discord.commands.get(self.guild.id, []) + self.discord.commands.get("global", []):
            if command["name"] != name or command.get("type", 1) != 1:
                continue
            options = command.get("options") or []
            if subcommand is not None:
                level = next((o for o in options if o["name"] == subcommand), {})
                options = level.get("options") or []
            return [option["name"] for option in options if option["type"] == ATTACHMENT]
        return []

    def _controls(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        if self.last_with_controls is None:
            raise SandboxError("no answer with buttons or menus yet")
        message_id = int(self.last_with_controls["id"])
        current = self.discord.message(message_id) if message_id in self.discord.messages else self.last_with_controls
        return current, list(iter_components(current.get("components") or []))

    async def _press(self, label: str) -> None:
        message, components = self._controls()
        buttons = [c for c in components if c["type"] == BUTTON]
        button = next((b for b in buttons if _matches(_button_label(b).strip("[]"), label)), None)
        if button is None:
            offered = "  ".join(_button_label(b) for b in buttons) or "none"
            raise SandboxError(f"no button labelled {label!r} on the last answer; its buttons: {offered}")
        if button.get("disabled"):
            raise SandboxError(f"the button {label!r} is disabled")
        interaction = await self.discord.click(
            message, button["custom_id"], self.admin, guild=self.guild, channel=self.channel
        )
        await self._show(interaction)

    async def _choose(self, label: str) -> None:
        message, components = self._controls()
        for menu in (c for c in components if c["type"] == SELECT):
            option = next((o for o in menu.get("options") or [] if _matches(o["label"], label)), None)
            if option is not None:
                interaction = await self.discord.click(
                    message,
                    menu["custom_id"],
                    self.admin,
                    guild=self.guild,
                    channel=self.channel,
                    component_type=SELECT,
                    values=[option["value"]],
                )
                await self._show(interaction)
                return
        raise SandboxError(f"no menu option labelled {label!r} on the last answer")

    async def _show(self, interaction: FakeInteraction) -> None:
        await interaction.wait_final(timeout=ANSWER_TIMEOUT)
        message = interaction.final_message()
        if message is None:
            self.write("< (acknowledged, no message)")
            return
        for text in describe_message(message):
            self.write(f"< {text}")
        if message.get("components"):
            self.last_with_controls = message
        self.output.mkdir(parents=True, exist_ok=True)
        for filename, data in self.discord.files_of(message):
            path = unique_path(self.output, filename)
            await asyncio.to_thread(path.write_bytes, data)
            self.write(f"< saved {path} ({len(data):,} bytes)")

    async def _save_voice(self) -> None:
        session = self.voice.sessions.get(self.guild.id)
        if session is None or not session.packets:
            raise SandboxError("the bot has played nothing in voice yet (:enter, then join and say ... play=true)")
        pcm = await asyncio.to_thread(session.decode_pcm)
        self.output.mkdir(parents=True, exist_ok=True)
        path = unique_path(self.output, "voice.wav")
        await asyncio.to_thread(_write_wav, path, pcm)
        self.write(f"< saved {path} ({len(pcm) / 192_000:.1f} s of what the bot played in voice)")


def _write_wav(path: Path, pcm: bytes) -> None:
    with wave.open(str(path), "wb") as file:
        file.setnchannels(2)
        file.setsampwidth(2)
        file.setframerate(48_000)
        file.writeframes(pcm)


async def _start(server: Any, port: int, what: str, flag: str) -> None:
    try:
        await server.start(port=port)
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise SandboxError(
            f"cannot start the {what} stand-in on port {port} ({reason}); choose another with {flag}"
        ) from None


async def serve(unmixr_port: int, discord_port: int, output: Path, *, run_bot_here: bool) -> None:
    """Run the stand-ins (and the bot, with `run_bot_here`) and relay the lines typed on standard input."""
    unmixr = FakeUnmixr()
    discord_fake = FakeDiscord(token="sandbox-discord-token")
    voice = FakeVoiceServer()
    async with contextlib.AsyncExitStack() as stack:
        await _start(unmixr, unmixr_port, "Unmixr", "--unmixr-port")
        stack.push_async_callback(unmixr.close)
        await _start(discord_fake, discord_port, "Discord", "--discord-port")
        stack.push_async_callback(discord_fake.close)
        await voice.start()
        stack.push_async_callback(voice.close)
        sandbox = Sandbox(unmixr, discord_fake, voice, output)
        if run_bot_here:
            from bot.settings import Settings
            from tests.fakes.harness import BotRunner

            data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sandbox-bot-")))
            voice.trust_in_process()
            settings = Settings(_env_file=None, **sandbox.bot_environment(data))  # type: ignore[call-arg]
            runner = BotRunner(discord_fake, sandbox.guild.id)
            stack.push_async_callback(runner.stop)
            print("Starting the bot in this process...")
            await runner.start(settings, timeout=60)
        else:
            data = Path(tempfile.mkdtemp(prefix="sandbox-bot-"))
            environment = " ".join(
                f"{name}={shlex.quote(value)}" for name, value in sandbox.bot_environment(data).items()
            )
            print("Run the bot in another terminal with:")
            print(f"  {environment} {shlex.quote(sys.executable)} -m bot")
        print('Type commands here, e.g.: say text="Hello there." voice=Jenny   (:help for more, Ctrl-D to quit)')
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            await sandbox.run_line(line)


def main() -> None:
    """Parse the command line and serve; a port that is taken is one line and exit status 1."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--unmixr-port", type=int, default=8765, help="port of the Unmixr stand-in (default 8765)")
    parser.add_argument("--discord-port", type=int, default=8766, help="port of the Discord stand-in (default 8766)")
    parser.add_argument(
        "--output", type=Path, default=Path("sandbox-out"), help="where attachments are saved (default sandbox-out)"
    )
    parser.add_argument("--bot", action="store_true", help="run the bot in this process too (one terminal)")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.unmixr_port, args.discord_port, args.output, run_bot_here=args.bot))
    except SandboxError as error:
        print(f"sandbox: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
