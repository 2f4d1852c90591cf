"""What each gateway close code that means a configuration error tells the operator, in one line.

Discord closes the gateway with these codes when retrying cannot help (`topics/opcodes-and-status-codes.mdx`,
"Gateway Close Event Codes", reconnect false), and discord.py then stops with `ConnectionClosed`. Each gets its
own sentence saying what is wrong and what to change; 4014 (a privileged intent not enabled) is not fatal: the
bot runs on without Message Content (see `bot.cli.run_bot`).
"""

from __future__ import annotations

import discord

_APPLICATIONS = "https://discord.com/developers/applications"

CLOSE_CODE_LINES: dict[int, str] = {
    4004: (
        "Discord's gateway refused DISCORD_TOKEN (close code 4004, authentication failed); copy the token again "
        f"from the Bot page of your application at {_APPLICATIONS}."
    ),
    4010: (
        "Discord refused this process's shard (close code 4010, invalid shard): each of SHARD_IDS must be below "
        "SHARD_COUNT, and a large bot's SHARD_COUNT must be a multiple of the number Discord gave it; unset "
        "SHARD_COUNT and SHARD_IDS to use Discord's recommended count."
    ),
    4011: (
        "Discord requires more shards (close code 4011, sharding required): SHARD_COUNT is too low for the number "
        "of servers (a shard holds at most 2,500); raise SHARD_COUNT, or unset it to use Discord's recommended count."
    ),
    4012: (
        "Discord refused the gateway version this discord.py speaks (close code 4012, invalid API version); "
        "update the bot and its dependencies."
    ),
    4013: (
        "Discord refused the intents the bot asked for as invalid (close code 4013, invalid intents); update the "
        "bot and its dependencies."
    ),
}


def close_code_line(error: BaseException) -> str | None:
    """The operator's one line for a gateway closed with a configuration error, or None for any other error."""
    if not isinstance(error, discord.ConnectionClosed):
        return None
    return CLOSE_CODE_LINES.get(error.code)
