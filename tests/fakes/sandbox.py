"""Try the bot by hand against the local stand-ins: `python -m tests.fakes.sandbox`.

Starts the Unmixr stand-in and the Discord stand-in (one server with a text channel, a voice channel, an admin and a
member), prints the environment that points `python -m bot` at them, and then reads commands from standard input,
sending each as a slash command from the admin and printing the bot's answer (attachments are saved to a folder):

    say text="Hello there." voice=Jenny
    settings rate rate=+20%
    voices gender=female
    balance
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from pathlib import Path
from typing import Any

from tests.fakes.discord_server import FakeDiscord
from tests.fakes.unmixr import FakeUnmixr

ADMIN_PERMISSIONS = (1 << 5) | (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 20) | (1 << 21) | (1 << 31)


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


async def serve(unmixr_port: int, discord_port: int, output: Path) -> None:
    """Run both stand-ins and relay commands typed on standard input."""
    unmixr = FakeUnmixr()
    discord_fake = FakeDiscord(token="sandbox-discord-token")
    await unmixr.start(port=unmixr_port)
    await discord_fake.start(port=discord_port)
    guild = discord_fake.add_guild(name="Sandbox")
    channel = guild.add_text_channel("general")
    guild.add_voice_channel("Lounge")
    admin = guild.add_member("Sandbox Admin", permissions=ADMIN_PERMISSIONS)
    print("Run the bot in another terminal with:")
    print(
        f"  DISCORD_TOKEN={discord_fake.token} UNMIXR_API_KEY={unmixr.api_key} UNMIXR_BASE_URL={unmixr.base_url} "
        f"DISCORD_API_BASE={discord_fake.api_base} DISCORD_GATEWAY_URL={discord_fake.gateway_url} "
        f"DEV_GUILD_ID={guild.id} python3 -m bot"
    )
    print('Then type commands here, e.g.: say text="Hello there." voice=Jenny   (Ctrl-D to quit)')
    output.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            if not line.strip():
                continue
            try:
                name, subcommand, options = parse_command(line.strip())
                interaction = await discord_fake.slash(guild, channel, admin, name, options, subcommand=subcommand)
                await interaction.wait_final(timeout=60)
            except Exception as error:  # a sandbox reports and carries on
                print(f"! {type(error).__name__}: {error}")
                continue
            print(f"< {interaction.content()}" + (" (ephemeral)" if interaction.ephemeral else ""))
            for embed in interaction.embeds():
                print(f"< [embed] {embed.get('title', '')}: {embed.get('description', '')}")
            for filename, data in interaction.files():
                path = output / filename
                path.write_bytes(data)
                print(f"< saved {path} ({len(data):,} bytes)")
    finally:
        await discord_fake.close()
        await unmixr.close()


def main() -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--unmixr-port", type=int, default=8765)
    parser.add_argument("--discord-port", type=int, default=8766)
    parser.add_argument("--output", type=Path, default=Path("sandbox-out"))
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.unmixr_port, args.discord_port, args.output))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
