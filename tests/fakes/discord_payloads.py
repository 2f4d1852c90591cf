"""Payload builders, constants and validation rules for the local Discord stand-in."""

from __future__ import annotations

import base64
import binascii
import copy
import itertools
import math
import mimetypes
import re
import time
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

DISCORD_EPOCH_MS = 1420070400000

# Permission bits (https://discord.com/developers/docs/topics/permissions).
CREATE_INSTANT_INVITE = 1 << 0
KICK_MEMBERS = 1 << 1
BAN_MEMBERS = 1 << 2
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
CONNECT = 1 << 20
SPEAK = 1 << 21
MUTE_MEMBERS = 1 << 22
DEAFEN_MEMBERS = 1 << 23
MOVE_MEMBERS = 1 << 24
USE_VAD = 1 << 25
CHANGE_NICKNAME = 1 << 26
MANAGE_ROLES = 1 << 28
USE_APPLICATION_COMMANDS = 1 << 31
REQUEST_TO_SPEAK = 1 << 32
SEND_MESSAGES_IN_THREADS = 1 << 38
MODERATE_MEMBERS = 1 << 40
# permissions.mdx: "Allows sending voice messages".
SEND_VOICE_MESSAGES = 1 << 46
# permissions.mdx: "Allows user-installed apps to send public responses" (change-log.mdx, June 27, 2024).
USE_EXTERNAL_APPS = 1 << 50
ALL_PERMISSIONS = (1 << 53) - 1

DEFAULT_EVERYONE_PERMISSIONS = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | CONNECT
    | SPEAK
    | USE_VAD
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
    # change-log.mdx, "User-Installed Apps General Availability": Use External Apps "is enabled for servers by
    # default".
    | USE_EXTERNAL_APPS
)
# The bot's managed role gets what its invite link asks for (the README's integer), plus Use Voice Activity.
DEFAULT_BOT_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | CONNECT
    | SPEAK
    | USE_VAD
    | SEND_VOICE_MESSAGES
)

# Gateway intents.
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_VOICE_STATES = 1 << 7
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_MESSAGE_CONTENT = 1 << 15

# Application flags that tell whether a privileged intent is switched on in the developer portal.
APP_FLAG_GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15
APP_FLAG_GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19

# Message flags.
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_VOICE_MESSAGE = 1 << 13  # IS_VOICE_MESSAGE
FLAG_HAS_SNAPSHOT = 1 << 14  # message.mdx, "Message Flags": the message has a snapshot (via Message Forwarding)
# message.mdx, "Message Reference Types": FORWARD points to a message at a point in time (`message_snapshot`).
REFERENCE_FORWARD = 1
# message.mdx, "Message Reference Types": only "basic" messages are forwarded: DEFAULT, REPLY, CHAT_INPUT_COMMAND and
# CONTEXT_MENU_COMMAND, without a poll, call or activity.
FORWARDABLE_TYPES = frozenset({0, 19, 20, 23})
# message.mdx, "Message Snapshot Structure": the fields a snapshot keeps of the forwarded message.
SNAPSHOT_FIELDS = (
    "type",
    "content",
    "embeds",
    "attachments",
    "timestamp",
    "edited_timestamp",
    "flags",
    "mentions",
    "mention_roles",
    "sticker_items",
    "components",
)
# message.mdx, Create Message: "sticker_ids": "IDs of up to 3 stickers".
MAX_STICKERS = 3
# sticker.mdx, "Sticker Format Types".
STICKER_PNG = 1
FLAG_COMPONENTS_V2 = 1 << 15

# The upload limit of a server by its boost tier (reference.mdx, "Uploading Files": 10 MiB by default, more with
# the server's Boost Tier; the tiers' limits as Discord applies them and discord.py's Guild.filesize_limit lists).
BOOST_TIER_UPLOAD_LIMITS = {0: 10 * 1024 * 1024, 1: 10 * 1024 * 1024, 2: 50 * 1024 * 1024, 3: 100 * 1024 * 1024}

# AutoMod (auto-moderation.mdx): event MESSAGE_SEND, trigger KEYWORD, action BLOCK_MESSAGE.
AUTOMOD_MESSAGE_SEND = 1
AUTOMOD_KEYWORD = 1
AUTOMOD_BLOCK_MESSAGE = 1

# Interaction context types (receiving-and-responding.mdx, "Interaction Context Types").
CONTEXT_GUILD = 0
CONTEXT_BOT_DM = 1
CONTEXT_PRIVATE_CHANNEL = 2
CONTEXTS = (CONTEXT_GUILD, CONTEXT_BOT_DM, CONTEXT_PRIVATE_CHANNEL)

# Application integration types (application.mdx, "Application Integration Types"): where an app is installed.
GUILD_INSTALL = 0
USER_INSTALL = 1
INTEGRATION_TYPES = (GUILD_INSTALL, USER_INSTALL)

# receiving-and-responding.mdx, Interaction Structure, app_permissions: "ATTACH_FILES | EMBED_LINKS |
# MENTION_EVERYONE permissions for (G)DMs with other users, and additionally ... USE_EXTERNAL_EMOJIS for DMs with
# the app's bot user" (no Send Voice Messages: a voice message cannot be posted there).
PRIVATE_CHANNEL_APP_PERMISSIONS = ATTACH_FILES | EMBED_LINKS | MENTION_EVERYONE
BOT_DM_APP_PERMISSIONS = PRIVATE_CHANNEL_APP_PERMISSIONS | USE_EXTERNAL_EMOJIS
# receiving-and-responding.mdx, "Create Followup Message": "Apps are limited to 5 followup messages per interaction
# if it was initiated from a user-installed app and isn't installed in the server"; past it, JSON error code 40094
# (opcodes-and-status-codes.mdx).
USER_INSTALL_FOLLOWUPS = 5

# Channel types.
CHANNEL_TEXT = 0
CHANNEL_DM = 1
CHANNEL_VOICE = 2
CHANNEL_GROUP_DM = 3
CHANNEL_STAGE = 13  # GUILD_STAGE_VOICE (channel.mdx, "Channel Types")
VOICE_CHANNEL_TYPES = (CHANNEL_VOICE, CHANNEL_STAGE)

# Application command option types.
OPTION_SUB_COMMAND = 1
OPTION_SUB_COMMAND_GROUP = 2
OPTION_STRING = 3
OPTION_INTEGER = 4
OPTION_BOOLEAN = 5
OPTION_USER = 6
OPTION_CHANNEL = 7
OPTION_ROLE = 8
OPTION_MENTIONABLE = 9
OPTION_NUMBER = 10
OPTION_ATTACHMENT = 11

# Gateway event name -> the intent it needs (events not listed are always sent).
EVENT_INTENTS = {
    "GUILD_UPDATE": INTENT_GUILDS,
    "GUILD_DELETE": INTENT_GUILDS,
    "GUILD_ROLE_CREATE": INTENT_GUILDS,
    "GUILD_ROLE_UPDATE": INTENT_GUILDS,
    "GUILD_ROLE_DELETE": INTENT_GUILDS,
    "CHANNEL_CREATE": INTENT_GUILDS,
    "CHANNEL_UPDATE": INTENT_GUILDS,
    "CHANNEL_DELETE": INTENT_GUILDS,
    "GUILD_MEMBER_ADD": INTENT_GUILD_MEMBERS,
    "GUILD_MEMBER_UPDATE": INTENT_GUILD_MEMBERS,
    "GUILD_MEMBER_REMOVE": INTENT_GUILD_MEMBERS,
    "VOICE_STATE_UPDATE": INTENT_GUILD_VOICE_STATES,
    "MESSAGE_CREATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_UPDATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_DELETE": INTENT_GUILD_MESSAGES,
}

USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")
# application-commands.mdx, "Application Command Naming": CHAT_INPUT command and option names match
# ^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$ (Unicode), in lowercase where a letter has a lowercase form.
# Python's re has no \p{...}: letters and numbers by Unicode category, the two scripts by their code points
# (Devanagari's and Thai's vowel signs are marks, not letters; the Devanagari dandas belong to no script).
_NAME_PUNCTUATION = frozenset("-_'")
_NAME_SCRIPT_RANGES = ((0x0900, 0x097F), (0xA8E0, 0xA8FF), (0x11B00, 0x11B5F), (0x0E00, 0x0E7F))
_NAME_SCRIPT_EXCLUDED = frozenset({0x0964, 0x0965})


def _name_character(character: str) -> bool:
    if character in _NAME_PUNCTUATION or unicodedata.category(character)[0] in "LN":
        return True
    point = ord(character)
    return point not in _NAME_SCRIPT_EXCLUDED and any(low <= point <= high for low, high in _NAME_SCRIPT_RANGES)


def valid_chat_input_name(name: Any) -> bool:
    """Whether Discord accepts this as a CHAT_INPUT command's or an option's name (or a localization of one)."""
    return (
        isinstance(name, str)
        and 1 <= len(name) <= 32
        and all(_name_character(character) for character in name)
        and name == name.lower()
    )


class SnowflakeFactory:
    """Makes unique, increasing snowflakes whose timestamp part differs by one millisecond each."""

    def __init__(self, worker: int = 0) -> None:
        self._base = int(time.time() * 1000) - DISCORD_EPOCH_MS
        self._counter = itertools.count(1)
        # Factories with different workers never collide (bits 17-21 of the snowflake).
        self._worker = (worker & 0x1F) << 17

    def next(self) -> int:
        """Return a new snowflake (consecutive ones of a factory land on consecutive shards)."""
        number = next(self._counter)
        return ((self._base + number) << 22) | self._worker | (number & 0xFFF)

    def at(self, timestamp: float) -> int:
        """Return a new snowflake whose timestamp part is `timestamp` (seconds since the Unix epoch)."""
        number = next(self._counter)
        return ((int(timestamp * 1000) - DISCORD_EPOCH_MS) << 22) | self._worker | (number & 0xFFF)


def iso_now() -> str:
    """Return the current time in Discord's ISO 8601 form."""
    return datetime.now(UTC).isoformat()


def guess_content_type(filename: str) -> str:
    """Guess a MIME type from a file name, as Discord does for uploads."""
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or "application/octet-stream"


def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    """auto-moderation.mdx, "Keyword Matching Strategies": `*` at either end allows more word characters there;
    without one, the keyword must be a whole word (or phrase); matching ignores case."""
    core = re.escape(keyword.strip("*"))
    before = r"\w*" if keyword.startswith("*") else r"(?<!\w)"
    after = r"\w*" if keyword.endswith("*") else r"(?!\w)"
    return re.compile(before + core + after, re.IGNORECASE)


def automod_matches(metadata: dict[str, Any], content: str) -> bool:
    """Whether a KEYWORD rule's trigger metadata matches content (its allow list exempting what it names)."""
    allowed = [_keyword_pattern(keyword) for keyword in metadata.get("allow_list") or []]
    for keyword in metadata.get("keyword_filter") or []:
        for match in _keyword_pattern(keyword).finditer(content):
            if not any(pattern.fullmatch(match.group(0)) for pattern in allowed):
                return True
    return any(re.search(pattern, content) for pattern in metadata.get("regex_patterns") or [])


def user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    """Build a Discord user object."""
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": None if bot else name,
        "avatar": None,
        "bot": bot,
        "system": False,
        "public_flags": 0,
        "flags": 0,
    }


def private_channel_payload(
    channel_id: int, recipients: list[dict[str, Any]], *, name: str | None = None, owner_id: int | None = None
) -> dict[str, Any]:
    """Build a DM (one recipient) or, with a name, a group DM channel object (channel.mdx, DM and GROUP_DM)."""
    channel: dict[str, Any] = {
        "id": str(channel_id),
        "type": CHANNEL_DM if name is None else CHANNEL_GROUP_DM,
        "last_message_id": None,
        "flags": 0,
        "recipients": recipients,
    }
    if name is not None:
        channel.update(name=name, icon=None, owner_id=str(owner_id))
    return channel


def text_channel_payload(channel_id: int, guild_id: int, name: str, position: int) -> dict[str, Any]:
    """Build a guild text channel object."""
    return {
        "id": str(channel_id),
        "type": CHANNEL_TEXT,
        "guild_id": str(guild_id),
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "nsfw": False,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "parent_id": None,
        "flags": 0,
    }


def voice_channel_payload(channel_id: int, guild_id: int, name: str, position: int, user_limit: int) -> dict[str, Any]:
    """Build a guild voice channel object."""
    return {
        "id": str(channel_id),
        "type": CHANNEL_VOICE,
        "guild_id": str(guild_id),
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "bitrate": 64000,
        "user_limit": user_limit,
        "rtc_region": None,
        "video_quality_mode": 1,
        "nsfw": False,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "parent_id": None,
        "flags": 0,
    }


def stage_channel_payload(channel_id: int, guild_id: int, name: str, position: int) -> dict[str, Any]:
    """Build a guild stage channel object: a voice channel's fields with type 13 and a topic."""
    channel = voice_channel_payload(channel_id, guild_id, name, position, 0)
    channel.update(type=CHANNEL_STAGE, bitrate=64000, topic=None)
    return channel


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as Discord takes it (a naive one is UTC), or None for null or garbage."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def role_payload(
    role_id: int, name: str, permissions: int, position: int, *, bot_id: int | None = None
) -> dict[str, Any]:
    """Build a role object (a bot's managed role when bot_id is given)."""
    role: dict[str, Any] = {
        "id": str(role_id),
        "name": name,
        "permissions": str(permissions),
        "position": position,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "managed": bot_id is not None,
        "mentionable": False,
        "icon": None,
        "unicode_emoji": None,
        "flags": 0,
    }
    if bot_id is not None:
        role["tags"] = {"bot_id": str(bot_id)}
    return role


def sticker_item(sticker_id: int, name: str, format_type: int = STICKER_PNG) -> dict[str, Any]:
    """A message's sticker item (sticker.mdx, "Sticker Item Object"): the least data needed to show a sticker."""
    return {"id": str(sticker_id), "name": name, "format_type": format_type}


def message_snapshot(message: dict[str, Any]) -> dict[str, Any]:
    """The snapshot of a message as a forward carries it: a copy of a few of its fields (author excluded), taken when
    it is forwarded and never updated (message.mdx, "Forwards" and "Message Snapshot Object")."""
    if message.get("type", 0) not in FORWARDABLE_TYPES or message.get("poll") or message.get("activity"):
        raise ValueError("only a basic message can be forwarded (message.mdx, Message Reference Types)")
    return {key: copy.deepcopy(message[key]) for key in SNAPSHOT_FIELDS if key in message}


def attachment_payload(
    attachment_id: int, filename: str, size: int, url: str, content_type: str, *, ephemeral: bool = False
) -> dict[str, Any]:
    """Build an attachment object served from the stand-in's CDN."""
    return {
        "id": str(attachment_id),
        "filename": filename,
        "size": size,
        "url": url,
        "proxy_url": url,
        "content_type": content_type,
        "ephemeral": ephemeral,
    }


def apply_overwrites(
    base: int, overwrites: Iterable[dict[str, Any]], *, guild_id: int, role_ids: Iterable[int], member_id: int
) -> int:
    """Apply a channel's permission overwrites to base permissions, in Discord's order."""
    by_id = {int(overwrite["id"]): overwrite for overwrite in overwrites}
    everyone = by_id.get(guild_id)
    if everyone is not None:
        base = (base & ~int(everyone["deny"])) | int(everyone["allow"])
    allow = deny = 0
    for role_id in role_ids:
        overwrite = by_id.get(role_id)
        if overwrite is not None and overwrite["type"] == 0:
            allow |= int(overwrite["allow"])
            deny |= int(overwrite["deny"])
    base = (base & ~deny) | allow
    member = by_id.get(member_id)
    if member is not None and member["type"] == 1:
        base = (base & ~int(member["deny"])) | int(member["allow"])
    return base


# ---------------------------------------------------------------- Discord's form validation
#
# Discord refuses a body over any limit whole: HTTP 400, code 50035 "Invalid Form Body", and an `errors`
# object nested by the path of each bad value down to `{"_errors": [{"code", "message"}]}` (paths of an
# interaction callback start at `data`). Limits and wording from discord/discord-api-docs
# (developers/reference.mdx "Error Messages", resources/message.mdx "Embed Limits", components/reference.mdx,
# interactions/application-commands.mdx). Discord counts code points, and trims embed texts before counting.

CONTENT_LIMIT = 2000
EMBEDS_LIMIT = 10
EMBED_TOTAL_LIMIT = 6000
EMBED_TEXT_LIMITS = {"title": 256, "description": 4096}
FIELDS_LIMIT = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_TEXT_LIMIT = 2048
AUTHOR_NAME_LIMIT = 256
ACTION_ROWS_LIMIT = 5
ROW_BUTTONS_LIMIT = 5
BUTTON_LABEL_LIMIT = 80
BUTTON_URL_LIMIT = 512
CUSTOM_ID_LIMIT = 100
SELECT_OPTIONS_LIMIT = 25
SELECT_OPTION_TEXT_LIMIT = 100
PLACEHOLDER_LIMIT = 150
CHOICES_LIMIT = 25
CHOICE_NAME_LIMIT = 100
CHOICE_VALUE_LIMIT = 100
MODAL_TITLE_LIMIT = 45
_SELECT_TYPES = (3, 5, 6, 7, 8)
_WEB_SCHEMES = ("http", "https")
_MEDIA_SCHEMES = ("http", "https", "attachment")


def _error(errors: dict[str, Any], path: str, code: str, message: str) -> None:
    errors.setdefault(path, []).append({"code": code, "message": message})


def nest_errors(flat: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
    """Turn {"data.embeds.0.title": [...]} into Discord's nested form {"data": {"embeds": {"0": {...}}}}."""
    nested: dict[str, Any] = {}
    for path, found in flat.items():
        node = nested
        for key in [part for part in path.split(".") if part]:
            node = node.setdefault(key, {})
        node.setdefault("_errors", []).extend(found)
    return nested


def _too_long(errors: dict[str, Any], path: str, value: Any, limit: int) -> None:
    if isinstance(value, str) and len(value) > limit:
        _error(errors, path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _bad_length(errors: dict[str, Any], path: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, str) or not low <= len(value) <= high:
        _error(errors, path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")


def _count_limit(errors: dict[str, Any], path: str, items: list[Any], limit: int) -> None:
    if len(items) > limit:
        _error(errors, path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _trimmed(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _check_url(errors: dict[str, Any], path: str, url: Any, schemes: tuple[str, ...]) -> None:
    if url is None:
        return
    if not isinstance(url, str) or any(character.isspace() for character in url):
        _error(errors, path, "URL_TYPE_INVALID_URL", "Not a well formed URL.")
        return
    scheme, colon, rest = url.partition(":")
    scheme = scheme.lower() if colon else ""
    if scheme not in schemes:
        allowed = ", ".join(repr(item) for item in schemes)
        _error(
            errors,
            path,
            "URL_TYPE_INVALID_SCHEME",
            f'Scheme "{scheme}" is not supported. Scheme must be one of ({allowed}).',
        )
    elif scheme in _WEB_SCHEMES and not (rest.startswith("//") and len(rest) > 2 and rest[2] not in "/?#"):
        _error(errors, path, "URL_TYPE_INVALID_URL", "Not a well formed URL.")


def _validate_embed(errors: dict[str, Any], embed: dict[str, Any], path: str) -> int:
    """Check one embed; return its size as Discord counts it toward the 6,000 total."""
    size = 0
    for key, limit in EMBED_TEXT_LIMITS.items():
        text = _trimmed(embed.get(key))
        _too_long(errors, path + key, text, limit)
        size += len(text)
    _check_url(errors, path + "url", embed.get("url"), _WEB_SCHEMES)
    fields = embed.get("fields") or []
    _count_limit(errors, path + "fields", fields, FIELDS_LIMIT)
    for index, field in enumerate(fields):
        for key, limit in (("name", FIELD_NAME_LIMIT), ("value", FIELD_VALUE_LIMIT)):
            text = _trimmed(field.get(key))
            if not text:
                _error(errors, f"{path}fields.{index}.{key}", "BASE_TYPE_REQUIRED", "This field is required")
            _too_long(errors, f"{path}fields.{index}.{key}", text, limit)
            size += len(text)
    for part, key, limit in (("footer", "text", FOOTER_TEXT_LIMIT), ("author", "name", AUTHOR_NAME_LIMIT)):
        value = embed.get(part)
        if value is None:
            continue
        text = _trimmed(value.get(key))
        if not text:
            _error(errors, f"{path}{part}.{key}", "BASE_TYPE_REQUIRED", "This field is required")
        _too_long(errors, f"{path}{part}.{key}", text, limit)
        size += len(text)
        _check_url(errors, f"{path}{part}.icon_url", value.get("icon_url"), _MEDIA_SCHEMES)
    _check_url(errors, f"{path}author.url", (embed.get("author") or {}).get("url"), _WEB_SCHEMES)
    for media in ("thumbnail", "image"):
        value = embed.get(media)
        if value is not None:
            _check_url(errors, f"{path}{media}.url", value.get("url"), _MEDIA_SCHEMES)
            if value.get("url") is None:
                _error(errors, f"{path}{media}.url", "BASE_TYPE_REQUIRED", "This field is required")
    return size


def message_errors(data: dict[str, Any], prefix: str = "") -> dict[str, list[dict[str, str]]]:
    """The flat errors (by dotted path) of a message body; `prefix` is "data." for an interaction callback."""
    errors: dict[str, Any] = {}
    _too_long(errors, f"{prefix}content", data.get("content"), CONTENT_LIMIT)
    embeds = data.get("embeds") or []
    _count_limit(errors, f"{prefix}embeds", embeds, EMBEDS_LIMIT)
    total = sum(_validate_embed(errors, embed, f"{prefix}embeds.{index}.") for index, embed in enumerate(embeds))
    if total > EMBED_TOTAL_LIMIT:
        _error(
            errors,
            f"{prefix}embeds",
            "MAX_EMBED_SIZE_EXCEEDED",
            f"Embed size exceeds maximum size of {EMBED_TOTAL_LIMIT}",
        )
    flags = data.get("flags") or 0
    if not flags & FLAG_COMPONENTS_V2:
        _validate_components(errors, data.get("components") or [], f"{prefix}components")
    return errors


def validate_message(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Check a message body against Discord's limits; return the errors in Discord's nested form."""
    return nest_errors(message_errors(data, prefix))


# ---------------------------------------------------------------- voice messages
#
# resources/message.mdx, "Voice Messages": a message with the IS_VOICE_MESSAGE flag "cannot be edited"; "Only a
# single audio attachment is allowed. No content, stickers, etc..."; the attachment "has additional fields:
# `duration_secs` and `waveform`" (both "required for voice messages" in the attachment request structure), and
# "The Content-Type of the attachment must begin with `audio/` to respect these fields"; the waveform is "1 byte
# per datapoint encoded in base64", "no more than 256 datapoints". The refusals are opcodes-and-status-codes.mdx's
# JSON error codes, sent with 400 (as Discord answers 50160, seen by discord.py's PR #10230).
VOICE_EXTRA_CONTENT = (50159, "Voice messages do not support additional content.")
VOICE_SINGLE_AUDIO = (50160, "Voice messages must have a single audio attachment.")
VOICE_METADATA = (50161, "Voice messages must have supporting metadata.")
VOICE_NOT_EDITABLE = (50162, "Voice messages cannot be edited.")
VOICE_NOT_HERE = (50173, "You cannot send voice messages in this channel.")
WAVEFORM_POINTS_LIMIT = 256
# Fields that are "additional content" next to a voice message's one attachment.
_VOICE_EXTRAS = ("content", "embeds", "sticker_ids", "components", "poll")


def voice_message_refusal(body: dict[str, Any], uploads: list[tuple[int, str | None]]) -> tuple[int, str] | None:
    """Why Discord refuses a voice message (its code and message), or None; `uploads` are (index, content type)."""
    if any(body.get(field) for field in _VOICE_EXTRAS):
        return VOICE_EXTRA_CONTENT
    listed = body.get("attachments")
    if len(uploads) != 1 or (listed is not None and len(listed) != 1):
        return VOICE_SINGLE_AUDIO
    index, content_type = uploads[0]
    if not (content_type or "").lower().startswith("audio/"):
        return VOICE_SINGLE_AUDIO
    entry = next((item for item in listed or [] if str(item.get("id")) == str(index)), None)
    if entry is None or not _valid_duration(entry.get("duration_secs")) or not _valid_waveform(entry.get("waveform")):
        # The docs name no finer refusal for metadata that is there but unusable: 50161 is the closest meaning.
        return VOICE_METADATA
    return None


def _valid_duration(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _valid_waveform(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        points = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return 0 < len(points) <= WAVEFORM_POINTS_LIMIT


def _validate_components(errors: dict[str, Any], rows: list[dict[str, Any]], path: str) -> None:
    _count_limit(errors, path, rows, ACTION_ROWS_LIMIT)
    seen_ids: set[str] = set()
    for row_index, row in enumerate(rows):
        row_path = f"{path}.{row_index}"
        if row.get("type") != 1:
            _error(errors, row_path, "COMPONENT_LAYOUT_INVALID", "Top-level components must be action rows")
            continue
        items = row.get("components") or []
        selects = [item for item in items if item.get("type") in _SELECT_TYPES]
        if not items or len(items) > ROW_BUTTONS_LIMIT or (selects and len(items) > 1):
            _error(errors, row_path, "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "The specified component exceeds the width")
        for item_index, item in enumerate(items):
            _validate_interactive(errors, item, f"{row_path}.components.{item_index}", seen_ids)


def _validate_interactive(errors: dict[str, Any], item: dict[str, Any], path: str, seen_ids: set[str]) -> None:
    kind = item.get("type")
    link_button = kind == 2 and item.get("style") == 5
    custom_id = item.get("custom_id")
    if link_button:
        _check_url(errors, path + ".url", item.get("url"), _WEB_SCHEMES)
        _too_long(errors, path + ".url", item.get("url"), BUTTON_URL_LIMIT)
    elif custom_id is None:
        _error(errors, path + ".custom_id", "BASE_TYPE_REQUIRED", "This field is required")
    else:
        _bad_length(errors, path + ".custom_id", custom_id, 1, CUSTOM_ID_LIMIT)
        if custom_id in seen_ids:
            _error(
                errors,
                path + ".custom_id",
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        seen_ids.add(custom_id)
    if kind == 2:
        _too_long(errors, path + ".label", item.get("label"), BUTTON_LABEL_LIMIT)
    if kind in _SELECT_TYPES:
        _too_long(errors, path + ".placeholder", item.get("placeholder"), PLACEHOLDER_LIMIT)
        for key, low in (("min_values", 0), ("max_values", 1)):
            value = item.get(key)
            if value is not None and not low <= value <= SELECT_OPTIONS_LIMIT:
                _error(errors, f"{path}.{key}", "NUMBER_TYPE_MAX", f"int value should be between {low} and 25.")
    if kind == 3:
        options = item.get("options") or []
        if not 1 <= len(options) <= SELECT_OPTIONS_LIMIT:
            _error(errors, path + ".options", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 25 in length.")
        values: set[Any] = set()
        for index, option in enumerate(options):
            option_path = f"{path}.options.{index}"
            _bad_length(errors, option_path + ".label", option.get("label"), 1, SELECT_OPTION_TEXT_LIMIT)
            _bad_length(errors, option_path + ".value", option.get("value"), 1, SELECT_OPTION_TEXT_LIMIT)
            _too_long(errors, option_path + ".description", option.get("description"), SELECT_OPTION_TEXT_LIMIT)
            if option.get("value") in values:
                _error(
                    errors,
                    option_path + ".value",
                    "SELECT_COMPONENT_OPTION_VALUE_DUPLICATED",
                    "The specified option value is already used",
                )
            values.add(option.get("value"))


def validate_choices(choices: list[dict[str, Any]]) -> dict[str, Any]:
    """Check autocomplete choices (an interaction callback's data.choices) against Discord's limits."""
    errors: dict[str, Any] = {}
    _count_limit(errors, "data.choices", choices, CHOICES_LIMIT)
    for index, choice in enumerate(choices):
        _bad_length(errors, f"data.choices.{index}.name", choice.get("name"), 1, CHOICE_NAME_LIMIT)
        value = choice.get("value")
        if isinstance(value, str):
            _too_long(errors, f"data.choices.{index}.value", value, CHOICE_VALUE_LIMIT)
        elif not isinstance(value, int | float):
            _error(errors, f"data.choices.{index}.value", "BASE_TYPE_REQUIRED", "This field is required")
    return nest_errors(errors)


def validate_modal(data: dict[str, Any]) -> dict[str, Any]:
    """Check a modal callback's data (title and custom_id)."""
    errors: dict[str, Any] = {}
    _bad_length(errors, "data.title", data.get("title"), 1, MODAL_TITLE_LIMIT)
    _bad_length(errors, "data.custom_id", data.get("custom_id"), 1, CUSTOM_ID_LIMIT)
    return nest_errors(errors)


def _longest(item: dict[str, Any], key: str) -> int:
    """A text's length as the 8,000 total counts it: its longest form, localizations included."""
    forms = [str(item.get(key) or ""), *(str(v) for v in (item.get(f"{key}_localizations") or {}).values())]
    return max(len(form) for form in forms)


def _command_text_length(command: dict[str, Any]) -> int:
    total = _longest(command, "name") + _longest(command, "description")
    for option in command.get("options") or []:
        total += _command_text_length(option)
        for choice in option.get("choices") or []:
            total += _longest(choice, "name") + len(str(choice.get("value")))
    return total


def _validate_options(errors: dict[str, Any], options: list[dict[str, Any]], path: str, depth: int) -> None:
    if len(options) > 25:
        _error(errors, path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    names = [option.get("name") for option in options]
    if len(set(names)) != len(names):
        _error(errors, path, "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Option names must be unique")
    _validate_option_names_per_locale(errors, options, path)
    kinds = {option.get("type") in (OPTION_SUB_COMMAND, OPTION_SUB_COMMAND_GROUP) for option in options}
    if len(kinds) > 1:
        _error(errors, path, "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "Sub-commands cannot mix with options")
    seen_optional = False
    for index, option in enumerate(options):
        option_path = f"{path}.{index}"
        if not valid_chat_input_name(option.get("name")):
            _error(errors, option_path + ".name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        _validate_localizations(errors, option, option_path, chat_input=True)
        description = option.get("description") or ""
        if not 1 <= len(description) <= 100:
            _error(
                errors,
                option_path + ".description",
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        option_type = option.get("type")
        if option_type in (OPTION_SUB_COMMAND, OPTION_SUB_COMMAND_GROUP):
            allowed_depth = 0 if option_type == OPTION_SUB_COMMAND_GROUP else 1
            if depth > allowed_depth:
                _error(errors, option_path, "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "Nesting is too deep")
            children = option.get("options") or []
            if option_type == OPTION_SUB_COMMAND_GROUP and any(
                child.get("type") != OPTION_SUB_COMMAND for child in children
            ):
                _error(
                    errors,
                    option_path,
                    "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                    "Groups hold sub-commands",
                )
            _validate_options(errors, children, option_path + ".options", depth + 1)
            continue
        if option.get("required"):
            if seen_optional:
                _error(
                    errors,
                    option_path + ".required",
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            seen_optional = True
        choices = option.get("choices") or []
        if len(choices) > 25:
            _error(errors, option_path + ".choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        if choices and option.get("autocomplete"):
            _error(
                errors,
                option_path + ".autocomplete",
                "APPLICATION_COMMAND_AUTOCOMPLETE_INVALID",
                "Autocomplete cannot be set with choices",
            )
        for choice_index, choice in enumerate(choices):
            _too_long(errors, f"{option_path}.choices.{choice_index}.name", choice.get("name"), 100)
            for locale, name in (choice.get("name_localizations") or {}).items():
                if locale not in LOCALES:
                    _error(
                        errors,
                        f"{option_path}.choices.{choice_index}.name_localizations.{locale}",
                        "LOCALE_INVALID",
                        f"{locale!r} is not a valid locale",
                    )
                _bad_length(errors, f"{option_path}.choices.{choice_index}.name_localizations.{locale}", name, 1, 100)
            _too_long(errors, f"{option_path}.choices.{choice_index}.value", choice.get("value"), 100)
        for key, low, high in (("min_length", 0, 6000), ("max_length", 1, 6000)):
            value = option.get(key)
            if value is not None and not low <= value <= high:
                _error(errors, f"{option_path}.{key}", "NUMBER_TYPE_MAX", f"Must be between {low} and {high}.")


def validate_commands(commands: list[dict[str, Any]]) -> dict[str, Any]:
    """Check a bulk command overwrite against Discord's rules."""
    errors: dict[str, Any] = {}
    seen: set[tuple[str, int]] = set()
    for index, command in enumerate(commands):
        path = str(index)
        command_type = command.get("type", 1)
        name = command.get("name") or ""
        key = (name, command_type)
        if key in seen:
            _error(
                errors,
                path + ".name",
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                f"Duplicate command name {name!r}",
            )
        seen.add(key)
        _validate_localizations(errors, command, path, chat_input=command_type == 1)
        if command_type == 1:
            if not valid_chat_input_name(name):
                _error(errors, path + ".name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            if not 1 <= len(command.get("description") or "") <= 100:
                _error(
                    errors,
                    path + ".description",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
            _validate_options(errors, command.get("options") or [], path + ".options", 0)
        elif not 1 <= len(name) <= 32:
            _error(errors, path + ".name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
        if _command_text_length(command) > 8000:
            _error(errors, path, "APPLICATION_COMMAND_TOO_LARGE", "Command exceeds maximum size (8000)")
        # application-commands.mdx, Application Command Structure: lists of integration types and of interaction
        # context types (or null), each value one of the documented ones.
        for field, allowed in (("integration_types", INTEGRATION_TYPES), ("contexts", CONTEXTS)):
            values = command.get(field)
            if values is not None and (not isinstance(values, list) or any(value not in allowed for value in values)):
                _error(errors, f"{path}.{field}", "BASE_TYPE_CHOICES", f"Value must be one of {list(allowed)}.")
    return nest_errors(errors)


# application-commands.mdx, "Registering a Command": per type, in each scope (global, and each guild).
COMMAND_CAPS = {1: 100, 2: 15, 3: 15}
# "There is a global rate limit of 200 application command creates per day, per guild".
DAILY_COMMAND_CREATES = 200


def over_command_caps(commands: list[dict[str, Any]]) -> int | None:
    """The cap a scope's commands exceed (100 CHAT_INPUT, 15 USER, 15 MESSAGE), if any."""
    for command_type, cap in COMMAND_CAPS.items():
        if sum(1 for command in commands if command.get("type", 1) == command_type) > cap:
            return cap
    return None


# reference.mdx, "Locales": the keys Discord accepts in name_localizations and description_localizations.
LOCALES = frozenset(
    {
        "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl", "no", "pl",
        "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi", "th", "zh-CN", "ja", "zh-TW",
        "ko",
    }
)  # fmt: skip
# application-commands.mdx, "Locale fallbacks": a member whose locale has no localization sees its fallback's.
LOCALE_FALLBACKS = {"en-US": "en-GB", "en-GB": "en-US", "es-419": "es-ES"}


def localized(item: dict[str, Any], key: str, locale: str) -> str:
    """A command's, option's or choice's `key` ("name" or "description") as a member with `locale` sees it."""
    localizations = item.get(f"{key}_localizations") or {}
    for candidate in (locale, LOCALE_FALLBACKS.get(locale)):
        if candidate is not None and localizations.get(candidate):
            return str(localizations[candidate])
    return str(item.get(key) or "")


def _validate_option_names_per_locale(errors: dict[str, Any], options: list[dict[str, Any]], path: str) -> None:
    """application-commands.mdx, "Localization": a localized option name must be distinct from every other default
    option name of that command, and from every other option name within that locale on that command."""
    defaults = [option.get("name") for option in options]
    locales = {locale for option in options for locale in (option.get("name_localizations") or {})}
    for locale in sorted(locales):
        seen: dict[str, int] = {}
        for index, option in enumerate(options):
            name = localized(option, "name", locale)
            clash = seen.get(name)
            others = [default for other, default in enumerate(defaults) if other != index]
            if clash is not None or ((option.get("name_localizations") or {}).get(locale) and name in others):
                _error(
                    errors,
                    f"{path}.{index}.name_localizations.{locale}",
                    "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                    "Option names must be unique",
                )
            seen.setdefault(name, index)


def _validate_localizations(errors: dict[str, Any], item: dict[str, Any], path: str, *, chat_input: bool) -> None:
    """application-commands.mdx, "Localization": localized values follow the same restrictions as the field, keyed
    by Discord's locales (reference.mdx, "Locales")."""
    for key in ("name_localizations", "description_localizations"):
        for locale in item.get(key) or {}:
            if locale not in LOCALES:
                _error(errors, f"{path}.{key}.{locale}", "LOCALE_INVALID", f"{locale!r} is not a valid locale")
    for locale, name in (item.get("name_localizations") or {}).items():
        valid = valid_chat_input_name(name) if chat_input else isinstance(name, str) and 1 <= len(name) <= 32
        if not valid:
            _error(
                errors,
                f"{path}.name_localizations.{locale}",
                "APPLICATION_COMMAND_INVALID_NAME",
                "Command name is invalid",
            )
    for locale, description in (item.get("description_localizations") or {}).items():
        if chat_input and not (isinstance(description, str) and 1 <= len(description) <= 100):
            _error(
                errors,
                f"{path}.description_localizations.{locale}",
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
