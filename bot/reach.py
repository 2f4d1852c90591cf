"""Where an interaction comes from: a server that has the bot, or a user's own install (PRODUCT.md, Reach).

receiving-and-responding.mdx, "Authorizing Integration Owners Object": key "0" is the server's install of the app
(present when the interaction comes from a server that has the bot), key "1" the user's own. An interaction with the
server's install is a server interaction under every server rule, budget and setting, whatever else it carries; one
with the user's install alone comes from a DM, a group DM or a server without the bot, where only `/say`, `/voices`,
`/preferences` and Read aloud are offered, and only when the operator set the user-install budgets.
"""

from __future__ import annotations

from typing import Any, Final

import discord
from discord import app_commands

# The commands offered to user installs; every other command stays server-only.
USER_INSTALL_COMMANDS: Final = frozenset({"say", "voices", "preferences", "Read aloud"})
_USER_INSTALL = "user_install"

EVERYWHERE: Final = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True)
BOTH_INSTALLS: Final = app_commands.AppInstallationType(guild=True, user=True)


def is_user_install(interaction: discord.Interaction[Any]) -> bool:
    """Whether the interaction comes through the user's own install alone (decided once, then remembered)."""
    known = interaction.extras.get(_USER_INSTALL)
    if known is None:
        known = interaction.extras[_USER_INSTALL] = _through_user_install(interaction)
    return bool(known)


def _through_user_install(interaction: discord.Interaction[Any]) -> bool:
    guild_id = interaction.guild_id
    # The server's install (key "0" with this server's id), or a server the bot is in whatever the keys say: the
    # bot's own server is never treated as a stranger's.
    if guild_id is not None and (interaction.is_guild_integration() or interaction.client.get_guild(guild_id)):
        return False
    return interaction.is_user_integration()


def server_id(interaction: discord.Interaction[Any]) -> int | None:
    """The server whose settings, budgets and clones apply: None for a user-install interaction (none apply)."""
    return None if is_user_install(interaction) else interaction.guild_id


def answers_publicly(interaction: discord.Interaction[Any]) -> bool:
    """Whether an answer meant for the channel can be public here.

    Not in a server without the bot where the member lacks Use External Apps: Discord makes a user install's answers
    ephemeral there (change-log.mdx, "User-Installed Apps General Availability"), so the bot says so itself.
    """
    if not is_user_install(interaction) or interaction.guild_id is None:
        return True
    return interaction.permissions.use_external_apps


def open_to_user_installs(tree: app_commands.CommandTree[Any]) -> list[str]:
    """Register the user-install commands for both installs in every context; return their names.

    Only global commands carry install types (application-commands.mdx, "Contexts"): `python -m bot sync` without
    `--guild` registers them. The others keep the bot's defaults: server installs, in servers.
    """
    opened = []
    for command in tree.get_commands(type=None):
        if command.name in USER_INSTALL_COMMANDS:
            command.allowed_installs = BOTH_INSTALLS
            command.allowed_contexts = EVERYWHERE
            opened.append(command.name)
    return sorted(opened)
