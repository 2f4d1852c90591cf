"""Try the bot by hand against the local stand-ins: `python -m tests.fakes.sandbox`.

Starts the Unmixr stand-in and the Discord stand-ins (REST and gateway, and voice): one server with a text channel
"general", a voice channel "Lounge" and an admin (with `--shards 2`, a second server "Sandbox 2" on the second
shard). With `--bot` it runs the bot in this process; without, it prints the commands that run the bot against them
in another terminal. Then it reads lines from standard input: each is sent as the admin's slash command, and the
answer is printed whole (content, embeds with their fields, buttons and menus); attachments are saved under the
output folder. Channels, roles and members are given by name or id. Lines starting with a colon are the sandbox's
own commands:

    say text="Hello there." voice=Jenny
    settings rate rate=+20%
    settings readout-channel channel=general
    voices gender=female
    :press ▶                    press a button of the last answer with controls, by its label
    :choose Jenny               pick an option of its menu, by its label
    clone audio=@recording.mp3 name="My voice" consent=true
    :post Hello, everyone!      post a message in the text channel as the admin
    :read-aloud                 use Read aloud on the last message posted (or :read-aloud MESSAGE_ID)
    :enter                      put the admin in the voice channel (then `join`, or `say ... play=true`)
    :save-voice                 write what the bot played in voice to a .wav file
    :leave                      take the admin out of the voice channel
    :ids                        list the server's channels, roles, members and messages with their ids
    :server Sandbox 2           act in another server (with --shards 2)
    :help

A mistake is one line starting with "!" and the session goes on.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.limits import shorten
from tests.fakes.discord_server import FakeDiscord, FakeGuild, FakeInteraction, FakeMember, iter_components
from tests.fakes.discord_voice import FakeVoiceServer
from tests.fakes.unmixr import FakeUnmixr

ADMIN_PERMISSIONS = (1 << 5) | (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 20) | (1 << 21) | (1 << 31)
ANSWER_TIMEOUT = 60.0
BUTTON, SELECT = 2, 3
USER, CHANNEL, ROLE, MENTIONABLE, ATTACHMENT = 6, 7, 8, 9, 11
READ_ALOUD = "Read aloud"
OWN_COMMANDS = """Sandbox commands (anything else is a slash command, e.g. say text="Hello." voice=Jenny):
  :press LABEL     press a button of the last answer with controls (◀, ▶, Preview, ...)
  :choose LABEL    pick a menu option of that answer by its label
  :post TEXT       post a message in the text channel as the admin (readouts read it, if it is the readout channel)
  :read-aloud [ID] use Read aloud on the last message posted, or on the message with that id
  :enter           put the admin in the voice channel "Lounge"; :leave takes them out
  :save-voice      write what the bot played in voice so far to a .wav file
  :ids             list the server's channels, roles, members and messages with their ids
  :server NAME     act in another server (start with --shards 2 for a second one, on the second shard)
  option=@FILE     attach a local file to an attachment option (clone audio=@recording.mp3 ...)
  channel=general  channels, roles and members by name (or by id, as :ids lists them)"""


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


@dataclass
class SandboxServer:
    """One server of the sandbox: its text and voice channels and its admin, who types the commands."""

    guild: FakeGuild
    channel: dict[str, Any]
    voice_channel: dict[str, Any]
    admin: FakeMember


class Sandbox:
    """The stand-ins, one server per shard, and a way to act in them as their admin by typed lines."""

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
        # Server N is on shard N-1: Discord puts a server on shard (id >> 22) % shard count.
        self.servers = [
            self._add_server("Sandbox" if shard == 0 else f"Sandbox {shard + 1}", shard)
            for shard in range(discord.shard_count)
        ]
        self.server = self.servers[0]
        self.last_with_controls: dict[str, Any] | None = None
        self.last_posted: dict[str, Any] | None = None
        voice.attach(discord)

    def _add_server(self, name: str, shard: int) -> SandboxServer:
        fresh = self.discord.snowflakes.next()
        moment = fresh >> 22
        moment += (shard - moment) % self.discord.shard_count
        guild = self.discord.add_guild(name=name, guild_id=(moment << 22) | (fresh & ((1 << 22) - 1)))
        return SandboxServer(
            guild=guild,
            channel=guild.add_text_channel("general"),
            voice_channel=guild.add_voice_channel("Lounge"),
            admin=guild.add_member("Sandbox Admin", permissions=ADMIN_PERMISSIONS),
        )

    @property
    def guild(self) -> FakeGuild:
        """The server commands are typed in now."""
        return self.server.guild

    @property
    def channel(self) -> dict[str, Any]:
        """Its text channel, where commands are typed."""
        return self.server.channel

    @property
    def voice_channel(self) -> dict[str, Any]:
        """Its voice channel."""
        return self.server.voice_channel

    @property
    def admin(self) -> FakeMember:
        """Its admin, who types the commands."""
        return self.server.admin

    def bot_environment(self, data: Path) -> dict[str, str]:
        """The settings that point `python -m bot` at these stand-ins, with its files under `data`."""
        return {
            "DISCORD_TOKEN": self.discord.token,
            "UNMIXR_API_KEY": self.unmixr.api_key,
            "UNMIXR_BASE_URL": self.unmixr.base_url,
            "DISCORD_API_BASE": self.discord.api_base,
            "DISCORD_GATEWAY_URL": self.discord.gateway_url,
            "DEV_GUILD_ID": str(self.servers[0].guild.id),
            "DATABASE_PATH": str(data / "bot.sqlite3"),
            "AUDIO_CACHE_DIR": str(data / "audio-cache"),
            # The voice stand-in's certificate is self-signed: the bot's process must trust it.
            "SSL_CERT_FILE": str(self.voice.cert_path),
        }

    def other_server_ids(self) -> list[int]:
        """The servers besides the first, whose commands `python -m bot sync --guild ID` registers."""
        return [server.guild.id for server in self.servers[1:]]

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
        except Exception as error:  # anything typed must leave the session (and the bot's data) running
            self.write(f"! {type(error).__name__}: {error}")

    async def _own_command(self, line: str) -> None:
        verb, _, rest = line.partition(" ")
        argument = " ".join(shlex.split(rest)) if rest.strip() else ""
        if verb == "press":
            await self._press(argument)
        elif verb == "choose":
            await self._choose(argument)
        elif verb == "post":
            await self._post(rest.strip())
        elif verb == "read-aloud":
            await self._read_aloud(argument)
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
        elif verb == "ids":
            self._list_ids()
        elif verb == "server":
            self._switch_server(argument)
        elif verb == "help":
            self.write(OWN_COMMANDS)
        else:
            raise SandboxError(f"no sandbox command :{verb}; type :help")

    def _require_bot(self) -> None:
        if self.discord.session_for(self.guild.shard_id) is None:
            raise SandboxError("the bot is not connected yet: start it with the command printed above")

    def _switch_server(self, wanted: str) -> None:
        found = next((s for s in self.servers if _matches(s.guild.name, wanted) or str(s.guild.id) == wanted), None)
        if found is None:
            names = ", ".join(server.guild.name for server in self.servers)
            more = "" if len(self.servers) > 1 else " (start the sandbox with --shards 2 for a second one)"
            raise SandboxError(f"no server {wanted!r}; the servers are {names}{more}")
        self.server = found
        self.last_with_controls = None
        self.write(f"< now in {found.guild.name} (server {found.guild.id}, shard {found.guild.shard_id})")

    def _list_ids(self) -> None:
        guild = self.guild
        self.write(f"< server {guild.name}: {guild.id} (shard {guild.shard_id})")
        for channel in guild.channels.values():
            kind = {0: "text channel", 2: "voice channel", 13: "stage"}.get(channel["type"], "channel")
            self.write(f"<   {kind} {channel['name']}: {channel['id']}")
        for role in guild.roles.values():
            self.write(f"<   role {role['name']}: {role['id']}")
        for member in guild.members.values():
            self.write(f"<   member {member.name}: {member.id}")
        posted = [
            message
            for message in self.discord.messages.values()
            if int(message["channel_id"]) == int(self.channel["id"]) and not message.get("flags", 0) & 64
        ]
        for message in posted[-5:]:
            self.write(f"<   message {message['id']}: {shorten(message.get('content') or '', 60)!r}")

    async def _post(self, text: str) -> None:
        self._require_bot()
        if not text:
            raise SandboxError("post what? e.g. :post Hello, everyone!")
        self.last_posted = await self.discord.post_message(self.guild, self.channel, self.admin, text)
        self.write(f"< posted message {self.last_posted['id']} in #{self.channel['name']}")

    async def _read_aloud(self, message_id: str) -> None:
        self._require_bot()
        if message_id:
            if not message_id.isdigit() or int(message_id) not in self.discord.messages:
                raise SandboxError(f"no message {message_id}; :ids lists the latest ones")
            target = self.discord.message(int(message_id))
        elif self.last_posted is not None:
            target = self.last_posted
        else:
            raise SandboxError("no message to read yet: :post one first, or give a message id")
        command, _scoped = self.discord._find_command(self.guild, READ_ALOUD, 3)
        if command is None:
            raise SandboxError("the bot has not registered Read aloud in this server yet")
        interaction = await self.discord.message_command(self.guild, self.channel, self.admin, READ_ALOUD, target)
        await self._show(interaction)

    async def _slash(self, line: str) -> None:
        self._require_bot()
        name, subcommand, options = parse_command(line)
        specs = self._option_specs(name, subcommand)
        attachments: dict[str, tuple[str, bytes, str]] = {}
        for spec in specs:
            value = options.get(spec["name"])
            if value is None:
                continue
            if spec["type"] == ATTACHMENT and isinstance(value, str) and value.startswith("@"):
                path = Path(value[1:]).expanduser()
                data = await asyncio.to_thread(path.read_bytes)
                content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                attachments[spec["name"]] = (path.name, data, content_type)
                del options[spec["name"]]
            elif spec["type"] in (USER, CHANNEL, ROLE, MENTIONABLE):
                options[spec["name"]] = self._resolve(spec, value)
        interaction = await self.discord.slash(
            self.guild, self.channel, self.admin, name, options, subcommand=subcommand, attachments=attachments
        )
        await self._show(interaction)

    def _option_specs(self, name: str, subcommand: str | None) -> list[dict[str, Any]]:
        """The options of a synced slash command (or of its subcommand); none for one the bot never registered."""
        command, _scoped = self.discord._find_command(self.guild, name, 1)
        if command is None:
            known = sorted({c["name"] for c in self.discord.commands.get(self.guild.id, []) if c.get("type", 1) == 1})
            raise SandboxError(f"no slash command /{name} here; the bot's commands: {', '.join(known) or 'none yet'}")
        options = command.get("options") or []
        if subcommand is not None:
            level = next((option for option in options if option["name"] == subcommand), None)
            if level is None:
                offered = ", ".join(option["name"] for option in options)
                raise SandboxError(f"/{name} has no subcommand {subcommand!r}; it has {offered}")
            options = level.get("options") or []
        return list(options)

    def _resolve(self, spec: dict[str, Any], value: object) -> Any:
        """A channel, role or member option given by name (#general, @role, Sandbox Admin) or id, as its id."""
        text = str(value).strip()
        guild = self.guild
        candidates: list[tuple[str, int]] = []
        if spec["type"] == CHANNEL:
            candidates = [(channel["name"], int(channel["id"])) for channel in guild.channels.values()]
            text = text.removeprefix("#")
        elif spec["type"] == ROLE:
            candidates = [(role["name"], int(role["id"])) for role in guild.roles.values()]
            text = text.removeprefix("@")
        else:
            candidates = [(member.name, member.id) for member in guild.members.values()]
            if spec["type"] == MENTIONABLE:
                candidates += [(role["name"], int(role["id"])) for role in guild.roles.values()]
            text = text.removeprefix("@")
        for label, object_id in candidates:
            if _matches(label, text) or text == str(object_id):
                return object_id
        names = ", ".join(label for label, _ in candidates)
        raise SandboxError(f"no {spec['name']} {text!r} in {guild.name}; pick one of: {names} (:ids lists the ids)")

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


async def sync_other_servers(bot: Any, sandbox: Sandbox) -> None:
    """Register the commands in the servers besides the first, as `python -m bot sync --guild ID` does."""
    import discord

    for guild_id in sandbox.other_server_ids():
        guild = discord.Object(guild_id)
        bot.tree.copy_global_to(guild=guild)
        await bot.tree.sync(guild=guild)


async def serve(unmixr_port: int, discord_port: int, output: Path, *, run_bot_here: bool, shards: int = 1) -> None:
    """Run the stand-ins (and the bot, with `run_bot_here`) and relay the lines typed on standard input."""
    unmixr = FakeUnmixr()
    discord_fake = FakeDiscord(token="sandbox-discord-token", shard_count=shards)
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
            bot = await runner.start(settings, timeout=60)
            await sync_other_servers(bot, sandbox)
        else:
            data = Path(tempfile.mkdtemp(prefix="sandbox-bot-"))
            environment = " ".join(
                f"{name}={shlex.quote(value)}" for name, value in sandbox.bot_environment(data).items()
            )
            print("Run the bot in another terminal with:")
            print(f"  {environment} {shlex.quote(sys.executable)} -m bot")
            for guild_id in sandbox.other_server_ids():
                print(f"and, once it runs, register its commands in server {guild_id} (on another shard) with:")
                print(f"  {environment} {shlex.quote(sys.executable)} -m bot sync --guild {guild_id}")
        for server in sandbox.servers:
            print(f"Server {server.guild.name} ({server.guild.id}) is on shard {server.guild.shard_id}.")
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
    parser.add_argument(
        "--shards",
        type=int,
        choices=[1, 2],
        default=1,
        help="shards the stand-in asks for, one server on each (default 1; 2 adds the server Sandbox 2)",
    )
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.unmixr_port, args.discord_port, args.output, run_bot_here=args.bot, shards=args.shards))
    except SandboxError as error:
        print(f"sandbox: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
