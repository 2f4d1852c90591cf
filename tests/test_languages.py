"""Languages (PRODUCT.md): catalogues complete, commands localized by Discord's rules, replies and readouts in the
right language."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from babel.dates import format_skeleton

from bot.i18n import SHIPPED, TRANSLATED, language, load_catalogues, match_locale, readout_words
from bot.i18n.extract import ROOT, SOURCE_DIRECTORIES, source_messages
from bot.text import readout_text
from tests.catalogue import build_template, problems, read_catalogue
from tests.conftest import World
from tests.fakes import discord_payloads as p
from tests.fakes.discord_server import ChannelOption, FakeInteraction
from tests.fakes.discord_voice import FakeVoiceServer

# ---------------------------------------------------------------- the catalogues


async def test_every_language_has_every_message_with_the_same_placeholders(running: World) -> None:
    # The template is what `python -m tests.catalogue` writes: the source's messages and the registered commands'.
    wanted = build_template(running.discord.commands[running.guild.id])
    assert sum(1 for message in wanted if message.id) > 400
    for tag in TRANSLATED:
        assert problems(read_catalogue(tag), wanted) == [], tag


def test_a_missing_message_or_a_changed_placeholder_is_found() -> None:
    wanted = build_template([])  # the source's messages only: the commands' own are then left over
    german = read_catalogue("de")
    assert all(line.startswith("no longer used") for line in problems(german, wanted))
    message = german.get(
        "That text is {length} characters long but this server's limit is {limit}; shorten it or "
        "ask an admin to raise {command}."
    )
    assert message is not None
    message.string = message.string.replace("{limit}", "{grenze}")
    german.delete("There is nothing to say: give some text with at least one letter or number.")
    found = problems(german, wanted)
    assert any(line.startswith("missing: 'There is nothing to say") for line in found)
    assert any("placeholders ['command', 'grenze', 'length']" in line for line in found)


# Where each marker of bot.i18n.text has its message and its context among its arguments.
_MARKERS = {"_": (0, None), "pgettext": (1, 0), "ngettext": (0, None), "npgettext": (1, 0), "counted": (1, None)}


def _marked(tree: ast.AST) -> Iterator[tuple[int, str, str | None]]:
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _MARKERS):
            continue
        index, context_index = _MARKERS[node.func.id]
        strings = [
            arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None for arg in node.args
        ]
        if len(strings) > index and strings[index] is not None:
            yield node.lineno, str(strings[index]), strings[context_index] if context_index is not None else None


def test_every_marked_message_of_the_source_reaches_the_template() -> None:
    # Babel's extractor reads tokens, not the syntax tree: a marker nested in another's arguments can lose both
    # silently (the message then stays English in every language, and no catalogue misses it).
    extracted = {(entry.message, entry.context) for entry in source_messages()}
    lost = [
        f"{path.relative_to(ROOT)}:{line}: {message[:60]!r}"
        for directory in SOURCE_DIRECTORIES
        for path in sorted((ROOT / directory).rglob("*.py"))
        for line, message, context in _marked(ast.parse(path.read_text(encoding="utf-8")))
        if (message, context) not in extracted
    ]
    assert lost == []
    # The check sees what the extractor misses.
    nested = 'x = _("{a} and {b}", a=f([pgettext("c", "one")]), b=2)'
    assert [message for _line, message, _context in _marked(ast.parse(nested))] == ["{a} and {b}", "one"]


def test_locales_match_a_shipped_language_by_tag_then_by_primary_subtag() -> None:
    assert match_locale("de") == "de"
    assert match_locale("de-AT") == "de"
    assert match_locale("pt-PT") == "pt-BR"
    assert match_locale("pt_br") == "pt-BR"
    assert match_locale("es-419") == "es-ES"
    assert match_locale("fr-CA") == "fr"
    assert match_locale("ja-JP") == "ja"
    assert match_locale("en-GB") == "en-US"
    assert match_locale("ko") is None
    assert match_locale("") is None


def test_readout_words_follow_the_clip_then_the_server_then_english() -> None:
    load_catalogues()
    assert readout_words("fr-FR").link == "lien"
    assert readout_words("de-AT").link == "Link"
    assert readout_words("zh-CN", "ja").link == "リンク"  # no shipped Chinese: the server's locale
    assert readout_words("zh-CN", "ko").link == "link"  # neither: English
    assert readout_words(None, None).announce("Ada", "hi") == "Ada said, hi"
    assert readout_words("es-MX").announce("Ada", "hola") == "Ada dijo: hola"
    moment = datetime(2023, 11, 14, 22, 13, tzinfo=UTC)
    german = readout_words("de-DE")
    assert german.format_date(moment, german.date_time) == "14. November 2023, 22:13 UTC"


def test_numbers_are_written_as_each_language_writes_them() -> None:
    load_catalogues()
    assert language("en-US").number(1234567) == "1,234,567"
    assert language("de").number(1234567) == "1.234.567"
    assert language("fr").number(1234567) == "1\u202f234\u202f567"
    assert language("pt-BR").number(1.5, decimals=1) == "1,5"
    assert language("ja").number(1234567) == "1,234,567"


# ---------------------------------------------------------------- the commands


def test_every_registered_name_description_and_choice_carries_every_shipped_language(running: World) -> None:
    localized_tags = set(TRANSLATED)
    commands = running.discord.commands[running.guild.id]
    # The stand-in refused nothing: the bot synced at start, and registration checks every rule of Discord's.
    assert p.validate_commands(commands) == {}

    def check(item: dict[str, object], where: str, *, described: bool) -> None:
        names = item.get("name_localizations") or {}
        assert isinstance(names, dict) and localized_tags <= set(names), (where, names)
        assert set(names) <= p.LOCALES
        if described:
            descriptions = item.get("description_localizations") or {}
            assert isinstance(descriptions, dict) and localized_tags <= set(descriptions), (where, descriptions)

    def walk(options: list[dict[str, object]], where: str) -> None:
        for option in options:
            here = f"{where} {option['name']}"
            check(option, here, described=True)
            for choice in option.get("choices") or []:  # type: ignore[attr-defined]
                check(choice, f"{here}={choice['value']}", described=False)
            walk(option.get("options") or [], here)  # type: ignore[arg-type]

    for command in commands:
        chat_input = command.get("type", 1) == 1
        check(command, command["name"], described=chat_input)
        walk(command.get("options") or [], command["name"])


def test_members_see_the_commands_in_their_language(running: World) -> None:
    german = running.discord.names_seen(running.guild, "de")
    assert german["say"] == "sprechen"
    assert german["settings budget"] == "einstellungen budget"
    assert german["Read aloud"] == "Vorlesen"
    assert running.discord.names_seen(running.guild, "ja")["voices"] == "ボイス一覧"
    # es-419 has no localizations of its own: Discord shows it the es-ES ones.
    assert running.discord.names_seen(running.guild, "es-419")["join"] == "unirse"
    assert running.discord.names_seen(running.guild, "ko")["join"] == "join"


# ---------------------------------------------------------------- replies


async def ask(world: World, name: str, options: dict[str, object] | None = None, **kwargs: object) -> FakeInteraction:
    """Run a command and wait for its final answer."""
    interaction = await world.slash(name, options, **kwargs)
    await interaction.wait_final()
    return interaction


async def test_a_german_member_gets_german_replies(running: World) -> None:
    said = await ask(running, "say", {"text": "Hallo zusammen", "voice": "Jenny"}, locale="de")
    assert re.fullmatch(r"🔊 \*\*Jenny\*\* · \d+,\d s · [\d.]+ Credits?", said.content()), said.content()

    empty = await ask(running, "say", {"text": "   "}, locale="de")
    assert empty.ephemeral
    assert empty.content() == (
        "Es gibt nichts zu sagen: Gib einen Text mit mindestens einem Buchstaben oder einer Ziffer ein."
    )
    fast = await ask(running, "say", {"text": "Hallo", "rate": "fast!!"}, locale="de")
    assert fast.content().startswith("Das Tempo muss ein Prozentwert von -100% bis +100% sein"), fast.content()

    unknown = await ask(running, "say", {"text": "Hallo", "voice": "Nobody"}, locale="de")
    voices_id = running.discord.registered_command(running.guild, "voices")["id"]  # type: ignore[index]
    assert unknown.content() == f"Es gibt keine Stimme namens „Nobody“; suche mit </voices:{voices_id}> eine aus."
    # The member's client shows the mention as the command's German name.
    seen = running.discord.as_seen(running.guild, unknown.content(), "de")
    assert seen == "Es gibt keine Stimme namens „Nobody“; suche mit /stimmen eine aus."

    refused = await ask(running, "balance", member=running.member, locale="de")
    assert refused.ephemeral
    assert refused.content() == (
        "Dafür brauchst du die Berechtigung „Server verwalten“; bitte einen Server-Admin, das für dich zu erledigen."
    )
    text = (await ask(running, "balance", member=running.admin, locale="de")).content()
    month = format_skeleton("yMMMM", datetime.now(UTC), locale="de")
    assert re.search(rf"\*\*Dieser Server im {month}\*\*: \d+ Credits, 1 Anfrage, 0 aus dem Cache", text), text
    assert re.search(r"\*\*Verbleibende Unmixr-Credits\*\*: \d{1,3}(\.\d{3})+ Zeichen", text), text


async def test_a_japanese_member_gets_japanese_replies(running: World) -> None:
    said = await ask(running, "say", {"text": "こんにちは", "voice": "Nanami"}, locale="ja")
    assert re.fullmatch(r"🔊 \*\*Nanami\*\* · \d+\.\d 秒 · [\d,]+ クレジット", said.content()), said.content()

    empty = await ask(running, "say", {"text": "   "}, locale="ja")
    assert empty.content() == ("読み上げる内容がありません: 文字か数字を1つ以上含むテキストを入力してください。")
    refused = await ask(running, "balance", member=running.member, locale="ja")
    assert refused.content() == (
        "これには「サーバー管理」権限が必要です。サーバーの管理者に代わりに行ってもらってください。"
    )
    await ask(running, "settings", {"length": 10}, subcommand="max-length", member=running.admin, locale="ja")
    long_text = await ask(running, "say", {"text": "あ" * 12}, locale="ja")
    command_id = running.discord.registered_command(running.guild, "settings")["id"]  # type: ignore[index]
    assert long_text.content() == (
        "このテキストは 12 文字ですが、このサーバーの上限は 10 文字です。短くするか、管理者に "
        f"</settings max-length:{command_id}> を上げてもらってください。"
    )
    assert "/設定 最大文字数" in running.discord.as_seen(running.guild, long_text.content(), "ja")


async def test_an_english_member_and_a_language_the_bot_does_not_ship_get_english(running: World) -> None:
    for locale in ("en-US", "en-GB", "ko"):
        empty = await ask(running, "say", {"text": "   "}, locale=locale)
        assert empty.content() == "There is nothing to say: give some text with at least one letter or number."


async def test_a_latin_american_member_gets_spanish(running: World) -> None:
    empty = await ask(running, "say", {"text": "   "}, locale="es-419")
    assert empty.content() == "No hay nada que decir: escribe un texto con al menos una letra o un número."


async def test_reply_language_is_the_members_not_the_servers(running: World) -> None:
    running.guild.preferred_locale = "fr"
    empty = await ask(running, "say", {"text": "   "}, locale="pt-BR")
    assert empty.content() == "Não há nada para dizer: escreva um texto com pelo menos uma letra ou um número."
    assert running.bot.guild_locale(running.bot.get_guild(running.guild.id)) == "fr"


# ---------------------------------------------------------------- readout words


async def _readout_in(
    world: World, voice_server: FakeVoiceServer, language_code: str, content: str, **message: Any
) -> str:
    """Set the server's language, post `content` (with `message`'s attachments, stickers...) in the readout channel,
    return the text sent to Unmixr."""
    admin = world.admin
    for subcommand, options in (
        ("readout-channel", {"channel": ChannelOption(int(world.readout["id"]))}),
        ("language", {"language": language_code}),
        ("max-length", {"length": 60}),
    ):
        await (await world.slash("settings", options, subcommand=subcommand, member=admin)).wait_final()
    # Brian is multilingual: he speaks fr-FR and de-AT among others.
    await (await world.slash("preferences", {"voice": "Brian"}, subcommand="voice")).wait_final()
    if world.bot.get_guild(world.guild.id).voice_client is None:
        await (await world.slash("join")).wait_final()
    await voice_server.wait_for_session(world.guild.id)
    before = len(world.tts_requests())
    await world.discord.post_message(world.guild, world.readout, world.member, content, **message)
    await world.discord.wait_until(lambda: len(world.tts_requests()) > before, what="the readout's request")
    request = world.tts_requests()[-1]
    assert request.json["language"] == language_code
    return str(request.json["text"])


async def test_a_readout_in_french_uses_french_words_and_one_in_austrian_german_german_words(
    world: World, voice_server: FakeVoiceServer
) -> None:
    await world.start_bot()
    await world.discord.move_member(world.guild, world.member, world.voice)
    message = "Regardez https://example.com/page et <#1> puis beaucoup beaucoup beaucoup de mots en plus ici"
    french = await _readout_in(world, voice_server, "fr-FR", message)
    assert french.startswith("Mel Member a dit : Regardez lien et un salon puis")
    assert french.endswith(", et ainsi de suite")
    world.bot.get_cog("Readouts")._last_said.clear()  # announce the author again
    german = await _readout_in(world, voice_server, "de-AT", "Schau https://example.com/seite an <t:1700000000:D>")
    assert german == "Mel Member sagte: Schau Link an 14. November 2023"
    # What a readout says of attachments and stickers, in German too, counted in German's plural forms.
    pictures = [
        ("a.png", b"\x89PNG", "image/png"),
        ("b.png", b"\x89PNG", "image/png"),
        ("c.pdf", b"%PDF", "application/pdf"),
    ]
    sent = await _readout_in(world, voice_server, "de-AT", "", attachments=pictures)
    assert sent == "Mel Member hat 2 Bilder geschickt. Mit einer Datei."
    sticker = await _readout_in(
        world, voice_server, "fr-FR", "Regardez", stickers=["party parrot"], attachments=pictures[:2]
    )
    assert sticker == "Regardez. autocollant : party parrot. Avec 2 images."


def test_attachments_are_whole_sentences_in_each_language_with_its_plural_forms() -> None:
    load_catalogues()
    image, video, audio, file = "image", "video", "audio", "file"
    assert readout_text("", [], [image], "Alex") == ("Alex sent an image.", False)
    assert readout_text("Look!", [], [video, video, file], "Alex") == ("Look! With 2 videos. With a file.", True)
    spanish = readout_words("es-ES")
    assert readout_text("", [], [audio, audio, audio, file], "Alex", spanish) == (
        "Alex ha enviado 3 archivos de audio. Con un archivo.",
        False,
    )
    # Japanese sentences end with 。 and follow one another without a space; numbers as Japanese writes them.
    japanese = readout_words("ja")
    assert readout_text("見て", [], [image] * 1200, "Alex", japanese) == ("見て。画像1,200枚付き。", True)
    assert readout_text("", [], [file, file], "Alex", japanese) == ("Alexさんがファイルを2件送りました。", False)
    # Brazilian Portuguese has a third plural form, for millions: a whole sentence too.
    portuguese = readout_words("pt-BR")
    assert readout_text("", [], [image] * 2, "Ana", portuguese)[0] == "Ana enviou 2 imagens."
    assert portuguese.sent(image, 1_000_000, "Ana") == "Ana enviou 1.000.000 imagens."


async def test_say_cleans_links_in_the_language_it_speaks(running: World) -> None:
    said = await ask(running, "say", {"text": "Voir https://example.com", "voice": "Brian", "language": "fr-FR"})
    assert running.tts_requests()[-1].json["text"] == "Voir lien"
    # The reply is in the member's language, whatever language the clip is in.
    assert "credit" in said.content()


@pytest.mark.parametrize("tag", SHIPPED)
def test_every_shipped_language_has_readout_words(tag: str) -> None:
    load_catalogues()
    words = readout_words(tag)
    assert words.tag == tag
    assert "{text}" in words.cut and "{name}" in words.said and "{text}" in words.said
    assert "{name}" in words.sticker and all("{name}" in sentence for sentence in words.sent_one.values())
    assert "{text}" in words.then and "{more}" in words.then and "{text}" in words.after and "{more}" in words.after


def test_a_command_is_named_with_a_mention_once_its_id_is_known_else_in_code() -> None:
    english = language("en-US")
    assert english.command("settings budget") == "`/settings budget`"
    known = english.with_commands({"settings": 42}.get)
    assert known.command("settings budget") == "</settings budget:42>"
    assert known.command("join") == "`/join`"
