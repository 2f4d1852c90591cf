"""Typed records returned by the storage layer, and the limits it enforces."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

# The server-level settings an admin can set; also the only column names the SQL is built from.
GUILD_SETTING_NAMES: Final[tuple[str, ...]] = (
    "voice_id",
    "language",
    "rate",
    "pitch",
    "volume",
    "intensity",
    "format",
    "max_length",
    "readout_channel_id",
    "xsaid",
    "ignore_role_id",
    "budget",
    "member_budget",
    "auto_join",
)

# The per-member preferences a member can set in a server.
MEMBER_PREFERENCE_NAMES: Final[tuple[str, ...]] = ("voice_id", "rate", "nickname")

# A user's own defaults for the app used from their account (user installs), the same everywhere they use it.
USER_PREFERENCE_NAMES: Final[tuple[str, ...]] = ("voice_id", "rate")

MAX_PRONUNCIATIONS: Final[int] = 200
MAX_WORD_LENGTH: Final[int] = 50
MAX_SPOKEN_LENGTH: Final[int] = 200

# The Python type each stored value must have (bool is checked apart from int).
GUILD_SETTING_TYPES: Final[dict[str, type]] = {
    "voice_id": str,
    "language": str,
    "rate": str,
    "pitch": str,
    "volume": str,
    "intensity": int,
    "format": str,
    "max_length": int,
    "readout_channel_id": int,
    "xsaid": bool,
    "ignore_role_id": int,
    "budget": int,
    "member_budget": int,
    "auto_join": bool,
}
MEMBER_PREFERENCE_TYPES: Final[dict[str, type]] = {"voice_id": str, "rate": str, "nickname": str}


@dataclass(frozen=True, slots=True)
class GuildSettings:
    """A server's own defaults; None means not set at the server level."""

    guild_id: int
    voice_id: str | None = None
    language: str | None = None
    rate: str | None = None
    pitch: str | None = None
    volume: str | None = None
    intensity: int | None = None
    format: str | None = None
    max_length: int | None = None
    readout_channel_id: int | None = None
    xsaid: bool | None = None
    ignore_role_id: int | None = None
    # Credits a day for the server, and an hour for each member (PRODUCT.md, Credit guards).
    budget: int | None = None
    member_budget: int | None = None
    # Join a member's voice channel when they write in the readout channel (PRODUCT.md, Continuity).
    auto_join: bool | None = None

    def is_empty(self) -> bool:
        """Return whether no setting is set at the server level."""
        return all(getattr(self, name) is None for name in GUILD_SETTING_NAMES)


@dataclass(frozen=True, slots=True)
class MemberPreferences:
    """A member's own defaults in one server; None means not set."""

    guild_id: int
    user_id: int
    voice_id: str | None = None
    rate: str | None = None
    nickname: str | None = None

    def is_empty(self) -> bool:
        """Return whether the member has no preference set."""
        return all(getattr(self, name) is None for name in MEMBER_PREFERENCE_NAMES)


@dataclass(frozen=True, slots=True)
class UserPreferences:
    """A user's account-wide defaults for user-install interactions (DMs, group DMs, servers without the bot)."""

    user_id: int
    voice_id: str | None = None
    rate: str | None = None

    def is_empty(self) -> bool:
        """Return whether the user has no preference set."""
        return all(getattr(self, name) is None for name in USER_PREFERENCE_NAMES)


@dataclass(frozen=True, slots=True)
class Pronunciation:
    """One entry of a server's pronunciation dictionary: the word as typed and how to say it."""

    word: str
    spoken: str


@dataclass(frozen=True, slots=True)
class ClonedVoice:
    """A voice cloned through the bot, owned by the server that made it."""

    voice_id: str
    guild_id: int
    name: str
    description: str | None
    created_by: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AwaitedClone:
    """A /clone upload that timed out after sending: Unmixr may have made the voice without telling us.

    Until `lapsed_at` its clone slot and name stay reserved; after (a clone list fetched 10 minutes later
    lacked it) they are free, and the record only lets a voice that appears late still be recognised.
    """

    slot_id: str
    guild_id: int
    name: str
    description: str | None
    created_by: int
    sent_at: datetime
    lapsed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """What a server used over a period; a cache hit costs no credits."""

    characters: int = 0
    credits_prebuilt: int = 0
    credits_cloned: int = 0
    requests: int = 0
    cache_hits: int = 0
    # Credits held for requests still in progress: not spent yet, but counted against budgets.
    reserved: int = 0

    @property
    def credits(self) -> int:
        """Return the credits of both kinds together."""
        return self.credits_prebuilt + self.credits_cloned

    @property
    def committed(self) -> int:
        """Return what counts against a budget: credits spent plus credits held."""
        return self.credits + self.reserved
