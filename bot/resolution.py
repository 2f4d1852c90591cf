"""Settings resolution: option, then the member's preference, the server default, the operator, built-in.

A user install has no server level: its preferences are the user's account-wide ones (PRODUCT.md, Reach)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bot.i18n import Text, pgettext
from bot.storage import GuildSettings, MemberPreferences, UserPreferences

Source = Literal["option", "preference", "server", "operator", "default"]

# Built-in defaults (PRODUCT.md, Decisions: Defaults). The voice has none: it is found when needed.
BUILTIN_DEFAULTS: dict[str, Any] = {
    "voice_id": None,
    "language": "en-US",
    "rate": "default",
    "pitch": "default",
    "volume": "default",
    "intensity": None,
    "format": "mp3",
    "max_length": 6000,
    "readout_channel_id": None,
    "xsaid": True,
    "ignore_role_id": None,
    "budget": None,
    "member_budget": None,
    "auto_join": False,
}
MAX_LENGTH_LIMIT = 6000

SOURCE_LABELS: dict[Source, Text] = {
    "option": pgettext("setting source", "your option"),
    "preference": pgettext("setting source", "your preference"),
    "server": pgettext("setting source", "server setting"),
    "operator": pgettext("setting source", "bot operator's default"),
    "default": pgettext("setting source", "built-in default"),
}


@dataclass(frozen=True, slots=True)
class Resolved:
    """One effective value and the level it came from."""

    value: Any
    source: Source

    @property
    def inherited(self) -> bool:
        """Whether the value came from a stored level rather than the command itself."""
        return self.source != "option"


def resolve(
    name: str,
    *,
    option: Any = None,
    preferences: MemberPreferences | UserPreferences | None = None,
    server: GuildSettings | None = None,
    operator_voice_id: str | None = None,
) -> Resolved:
    """The effective value of one setting: the first level that sets it wins."""
    if option is not None:
        return Resolved(option, "option")
    if preferences is not None and hasattr(preferences, name):
        value = getattr(preferences, name)
        if value is not None:
            return Resolved(value, "preference")
    if server is not None:
        value = getattr(server, name, None)
        if value is not None:
            return Resolved(value, "server")
    if name == "voice_id" and operator_voice_id:
        return Resolved(operator_voice_id, "operator")
    return Resolved(BUILTIN_DEFAULTS.get(name), "default")


def resolve_server(name: str, server: GuildSettings, operator_voice_id: str | None = None) -> Resolved:
    """The server-level effective value (no member level): what `/settings show` lists."""
    return resolve(name, server=server, operator_voice_id=operator_voice_id)
