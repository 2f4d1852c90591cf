"""Discord's limits, in one place: every text, embed, menu and choice the bot sends is fitted here first.

The figures come from the public discord/discord-api-docs repository: `developers/resources/message.mdx`
("Embed Limits", content), `developers/components/reference.mdx` (buttons, selects, custom ids) and
`developers/interactions/application-commands.mdx` (choices, option lengths). Discord counts code points
(Python's `len`) after trimming leading and trailing whitespace; a payload over any limit is refused whole
with HTTP 400, so text from Unmixr or members is shortened here, with an ellipsis, before it is sent.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import discord
from discord import app_commands

from bot.errors import UserFacingError
from bot.i18n import Text, _

ELLIPSIS = "…"
# Discord drops a field whose name or value is blank; a zero-width space is the usual filler.
BLANK = "\u200b"

CONTENT = 2000
EMBEDS_PER_MESSAGE = 10
EMBED_TITLE = 256
EMBED_DESCRIPTION = 4096
EMBED_FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER_TEXT = 2048
AUTHOR_NAME = 256
# Over title, description, field names and values, footer text and author name of all of a message's embeds.
EMBED_TOTAL = 6000
BUTTON_LABEL = 80
CUSTOM_ID = 100
SELECT_OPTIONS = 25
SELECT_OPTION_TEXT = 100  # label, value and description each
PLACEHOLDER = 150
CHOICES = 25
CHOICE_NAME = 100
CHOICE_VALUE = 100

# Free-text option bounds (PRODUCT.md, "Discord's limits"); Discord's client refuses longer values.
LANGUAGE_LENGTH = 35
QUERY_LENGTH = 100
PROSODY_LENGTH = 16
NAME_LENGTH = 100
DESCRIPTION_LENGTH = 500
NICKNAME_LENGTH = 32
WORD_LENGTH = 50
SPOKEN_LENGTH = 200

# Room left under an interaction's upload limit for the multipart envelope.
UPLOAD_MARGIN = 16 * 1024

_WEB_SCHEMES = ("http", "https")
T = TypeVar("T")


def shorten(text: str, limit: int) -> str:
    """`text` trimmed as Discord trims it, cut to at most `limit` code points with an ellipsis."""
    text = text.strip()
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ELLIPSIS[:limit]
    return text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


def fit_content(content: str | None) -> str | None:
    """Message content cut to Discord's 2,000 characters (None stays None)."""
    return None if content is None else shorten(content, CONTENT)


def fit_lines(lines: Sequence[str], limit: int, more: Callable[[int], str]) -> str:
    """As many whole lines as fit in `limit`, then `more(n)` for the n lines left out.

    Only a first line too long on its own is shortened, so the answer always shows something.
    """
    kept: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        left_after = len(lines) - index - 1
        tail = len(more(left_after)) + 1 if left_after else 0
        room = limit - size - (1 if kept else 0)
        if len(line) + tail > room:
            if kept:
                # The previous line left room for exactly this tail.
                kept.append(more(len(lines) - index))
                break
            line = shorten(line, max(1, room - tail))
        kept.append(line)
        size += len(line) + (1 if len(kept) > 1 else 0)
    return shorten("\n".join(kept), limit)


def web_url(url: str | None) -> str | None:
    """`url` if it is a well-formed http(s) URL, the only kind Discord shows in embeds and links; else None."""
    if not url or any(character.isspace() or not character.isprintable() for character in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in _WEB_SCHEMES or not parts.hostname:
        return None
    return url


def link(text: str, url: str | None) -> str:
    """A markdown link when `url` is a web URL Discord can open, else the text alone."""
    safe = web_url(url)
    if safe is None or "(" in safe or ")" in safe:
        return text
    return f"[{text}]({safe})"


def _media_url(url: Any) -> str | None:
    # Images and icons may also name an uploaded file.
    if isinstance(url, str) and url.startswith("attachment://") and len(url) > len("attachment://"):
        return url
    return web_url(url) if isinstance(url, str) else None


def upload_limit(filesize_limit: int) -> int:
    """The most bytes an attachment may have to go through an interaction whose limit is `filesize_limit`."""
    # The margin must not eat a small limit: past 1/32 of it, it would refuse files that fit.
    return filesize_limit - min(UPLOAD_MARGIN, filesize_limit // 32)


# ----- embeds


class _Text:
    """One length-limited text of an embed, with where to write it back."""

    def __init__(self, owner: dict[str, Any], key: str, limit: int, *, required: bool = False) -> None:
        self.owner = owner
        self.key = key
        self.limit = limit
        self.required = required
        value = owner.get(key)
        self.text = shorten(str(value), limit) if value is not None else ""
        if not self.text and required:
            self.text = BLANK

    def write(self, cap: int) -> None:
        if self.text or self.required:
            self.owner[self.key] = shorten(self.text, min(self.limit, cap)) or BLANK
        else:
            self.owner.pop(self.key, None)


def _embed_texts(data: dict[str, Any]) -> list[_Text]:
    texts = [_Text(data, "title", EMBED_TITLE), _Text(data, "description", EMBED_DESCRIPTION)]
    fields = list(data.get("fields") or [])[:EMBED_FIELDS]
    data["fields"] = fields
    for field in fields:
        texts.append(_Text(field, "name", FIELD_NAME, required=True))
        texts.append(_Text(field, "value", FIELD_VALUE, required=True))
    if isinstance(data.get("footer"), dict):
        texts.append(_Text(data["footer"], "text", FOOTER_TEXT, required=True))
    if isinstance(data.get("author"), dict):
        texts.append(_Text(data["author"], "name", AUTHOR_NAME, required=True))
    return texts


def _fit_urls(data: dict[str, Any]) -> None:
    if "url" in data and web_url(data.get("url")) is None:
        del data["url"]
    for key in ("thumbnail", "image"):
        media = data.get(key)
        if isinstance(media, dict) and _media_url(media.get("url")) is None:
            del data[key]
    for key, link_key in (("author", "url"), ("author", "icon_url"), ("footer", "icon_url")):
        part = data.get(key)
        if isinstance(part, dict) and link_key in part:
            allowed = web_url(part[link_key]) if link_key == "url" else _media_url(part[link_key])
            if allowed is None:
                del part[link_key]


def _cap_for(texts: list[_Text], budget: int) -> int:
    """The largest per-text cap under which the texts' total fits `budget` (longest texts shortened first)."""

    def total(cap: int) -> int:
        return sum(min(len(text.text), cap) for text in texts)

    longest = max((len(text.text) for text in texts), default=0)
    if total(longest) <= budget:
        return longest
    low, high = 1, longest
    while low < high:
        middle = (low + high + 1) // 2
        if total(middle) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def fit_embeds(embeds: Iterable[discord.Embed]) -> list[discord.Embed]:
    """Embeds that Discord accepts: at most 10, every text within its limit and 6,000 in all, web URLs only."""
    datas: list[dict[str, Any]] = [copy.deepcopy(dict(embed.to_dict())) for embed in list(embeds)[:EMBEDS_PER_MESSAGE]]
    texts: list[_Text] = []
    for data in datas:
        _fit_urls(data)
        texts.extend(_embed_texts(data))
    cap = _cap_for(texts, EMBED_TOTAL)
    for text in texts:
        text.write(cap)
    return [discord.Embed.from_dict(data) for data in datas]


def fit_embed(embed: discord.Embed) -> discord.Embed:
    """One embed that Discord accepts (see `fit_embeds`)."""
    return fit_embeds([embed])[0]


def embed_size(embed: discord.Embed) -> int:
    """The characters of an embed as Discord counts them toward the 6,000 total."""
    data: dict[str, Any] = dict(embed.to_dict())
    parts: list[Any] = [data.get("title"), data.get("description")]
    for field in data.get("fields") or []:
        parts += [field.get("name"), field.get("value")]
    parts += [(data.get("footer") or {}).get("text"), (data.get("author") or {}).get("name")]
    return sum(len(str(part).strip()) for part in parts if part)


# ----- components and choices


def fit_select_options(options: Iterable[discord.SelectOption]) -> list[discord.SelectOption]:
    """At most 25 options with unique values of 1-100 characters (others are left out), texts shortened."""
    fitted: list[discord.SelectOption] = []
    seen: set[str] = set()
    for option in options:
        value = option.value
        # A value is handed back when picked: it cannot be shortened, so one that does not fit is not offered.
        if not value or len(value) > SELECT_OPTION_TEXT or value in seen:
            continue
        seen.add(value)
        option.label = shorten(option.label, SELECT_OPTION_TEXT) or shorten(value, SELECT_OPTION_TEXT)
        if option.description is not None:
            option.description = shorten(option.description, SELECT_OPTION_TEXT) or None
        fitted.append(option)
        if len(fitted) == SELECT_OPTIONS:
            break
    return fitted


NOTHING_TO_PICK = _("Nothing to pick")


def fit_view(view: discord.ui.View, nothing_to_pick: str = str(NOTHING_TO_PICK)) -> None:
    """Shorten a view's labels and placeholders and fit its menus' options (a menu left empty is disabled, with
    the one option `nothing_to_pick`, in the member's language)."""
    for item in view.children:
        if isinstance(item, discord.ui.Button):
            if item.label is not None:
                item.label = shorten(item.label, BUTTON_LABEL) or None
            if item.url is not None and web_url(item.url) is None:
                view.remove_item(item)
        elif isinstance(item, discord.ui.Select):
            if item.placeholder is not None:
                item.placeholder = shorten(item.placeholder, PLACEHOLDER) or None
            options = fit_select_options(item.options)
            if not options:
                options = [discord.SelectOption(label=nothing_to_pick, value="none")]
                item.disabled = True
            item.options = options
            item.max_values = min(item.max_values, len(options))
            item.min_values = min(item.min_values, item.max_values)
        custom_id = getattr(item, "custom_id", None)
        if isinstance(custom_id, str) and len(custom_id) > CUSTOM_ID:
            raise ValueError(f"custom_id {custom_id[:20]!r}… is over Discord's {CUSTOM_ID} characters")


def choice(name: str, value: str) -> app_commands.Choice[str] | None:
    """An autocomplete choice Discord accepts: the name shortened to 100; None when the value cannot fit."""
    if not value or len(value) > CHOICE_VALUE:
        return None
    shown = shorten(name, CHOICE_NAME) or shorten(value, CHOICE_NAME)
    return app_commands.Choice(name=shown or ELLIPSIS, value=value)


def fit_choices(choices: Iterable[app_commands.Choice[str] | tuple[str, str]]) -> list[app_commands.Choice[str]]:
    """At most 25 choices, names 1-100 characters; a value over 100 characters is not offered."""
    fitted: list[app_commands.Choice[str]] = []
    for item in choices:
        name, value = (item.name, item.value) if isinstance(item, app_commands.Choice) else item
        made = choice(str(name), str(value))
        if made is not None:
            fitted.append(made)
        if len(fitted) == CHOICES:
            break
    return fitted


# ----- free-text options


class OptionTooLongError(app_commands.AppCommandError, UserFacingError):
    """A free-text option longer than its bound (Discord's client refuses it; checked again here)."""

    def __init__(self, name: str, limit: int, length: int) -> None:
        UserFacingError.__init__(
            self,
            _(
                "`{option}` can be at most {limit} characters but yours has {length}; shorten it and try again.",
                # The option as the member's client shows it (the catalogue has every option's name).
                option=Text(name, context="option"),
                limit=limit,
                length=length,
            ),
        )


class BoundedText(app_commands.Transformer):
    """A string option registered with Discord's `min_length`/`max_length` and checked again on arrival."""

    def __init__(self, option: str, max_length: int, min_length: int | None = None) -> None:
        self.option = option
        self.longest = max_length
        self.shortest = min_length

    @property
    def type(self) -> discord.AppCommandOptionType:
        """Registered as a string option."""
        return discord.AppCommandOptionType.string

    @property
    def min_value(self) -> int | None:
        """Discord's `min_length` for this option."""
        return self.shortest

    @property
    def max_value(self) -> int:
        """Discord's `max_length` for this option."""
        return self.longest

    async def transform(self, interaction: discord.Interaction[Any], value: Any) -> str:
        """The value, or a one-sentence refusal when a client sent more than the bound."""
        text = str(value)
        if len(text) > self.longest:
            raise OptionTooLongError(self.option, self.longest, len(text))
        return text


# The annotations of the free-text options, by option name (`language: LanguageText | None = None`).
LanguageText = app_commands.Transform[str, BoundedText("language", LANGUAGE_LENGTH)]
QueryText = app_commands.Transform[str, BoundedText("query", QUERY_LENGTH)]
RateText = app_commands.Transform[str, BoundedText("rate", PROSODY_LENGTH)]
PitchText = app_commands.Transform[str, BoundedText("pitch", PROSODY_LENGTH)]
VolumeText = app_commands.Transform[str, BoundedText("volume", PROSODY_LENGTH)]
NameText = app_commands.Transform[str, BoundedText("name", NAME_LENGTH, 1)]
DescriptionText = app_commands.Transform[str, BoundedText("description", DESCRIPTION_LENGTH, 0)]
NicknameText = app_commands.Transform[str, BoundedText("nickname", NICKNAME_LENGTH)]
WordText = app_commands.Transform[str, BoundedText("word", WORD_LENGTH, 1)]
WordToRemoveText = app_commands.Transform[str, BoundedText("word", WORD_LENGTH)]
SpokenText = app_commands.Transform[str, BoundedText("spoken", SPOKEN_LENGTH, 1)]
