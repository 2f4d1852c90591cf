"""Errors raised by the storage layer."""

from __future__ import annotations

from datetime import datetime


class StorageError(Exception):
    """Base class of every storage error."""


class SchemaVersionError(StorageError):
    """The database was written by a newer version of the bot than this one."""

    def __init__(self, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"The database has schema version {found}, but this bot only knows up to version {supported}: "
            "upgrade the bot, or point DATABASE_PATH (or DATABASE_URL) at another database."
        )


class MigrationError(StorageError):
    """A migration failed; the database was left at the version before it."""

    def __init__(self, version: int) -> None:
        self.version = version
        super().__init__(f"Database migration {version} failed; the database was left unchanged by it.")


class PronunciationLimitError(StorageError):
    """The server's pronunciation dictionary is full."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"The pronunciation dictionary already holds the maximum of {limit:,} entries.")


class ClonedVoiceExistsError(StorageError):
    """A cloned voice with this id is already recorded."""

    def __init__(self, voice_id: str) -> None:
        self.voice_id = voice_id
        super().__init__(f"A cloned voice with id {voice_id} is already recorded.")


class StorageClosedError(StorageError):
    """The storage was used after it was closed."""

    def __init__(self) -> None:
        super().__init__("The storage is closed.")


class BudgetExceededError(StorageError):
    """A reservation would take a server's, a member's or the account's use past its budget; nothing was reserved."""

    def __init__(self, *, kind: str, budget: int, used: int, amount: int, frees_at: datetime | None) -> None:
        # kind is "server" (per UTC day), "member" (per rolling hour) or "account" (every server together, per
        # UTC day); frees_at is None when it can never fit.
        self.kind = kind
        self.budget = budget
        self.used = used
        self.amount = amount
        self.frees_at = frees_at
        super().__init__(f"{kind} budget {budget}: {used} used, {amount} more asked")


class CloneQuotaError(StorageError):
    """The server already has (or is making) as many cloned voices as it may."""

    def __init__(self, count: int, limit: int) -> None:
        self.count = count
        self.limit = limit
        super().__init__(f"{count} cloned voices of at most {limit}")


class CloneNameTakenError(StorageError):
    """The server already has a cloned voice of this name (case-insensitive), or one being made."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a cloned voice named {name!r} exists or is being made")


class DatabaseUnavailableError(StorageError):
    """The database could not be reached or refused the connection; the message names it without a password."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"Could not connect to the database at {where}: {reason}")
