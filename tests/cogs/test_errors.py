"""End-to-end tests of the error path: unexpected errors, answers to every interaction, and no pings."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest

from bot.tree import AUTOMOD_BLOCKED, apology
from tests.conftest import World
from tests.fakes.discord_server import FakeInteraction, Response

CALLBACK = re.compile(r"^/interactions/\d+/[^/]+/callback$")
WEBHOOK = re.compile(r"^/webhooks/\d+/[^/]+(/messages/[^/]+)?$")


def is_answer(response: Response) -> bool:
    """Whether a response carries the interaction's answer (not only an acknowledgement)."""
    if response.status >= 300:
        return False
    return response.kind in ("followup", "edit_original", "edit_followup") or (
        response.kind == "callback" and response.type in (4, 7, 8)
    )


def break_speech(world: World, monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """Simulate a bug: the speech service's `method` raises an unexpected error."""

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("simulated bug in the speech service")

    monkeypatch.setattr(world.bot.speech, method, broken)


def error_records(caplog: pytest.LogCaptureFixture, interaction: FakeInteraction) -> list[logging.LogRecord]:
    """The error log records that name this interaction and carry the simulated bug."""
    return [
        record
        for record in caplog.records
        if record.levelno >= logging.ERROR
        and str(interaction.id) in record.getMessage()
        and record.exc_info is not None
        and "simulated bug" in str(record.exc_info[1])
    ]


async def test_unexpected_error_gets_a_private_apology_with_the_interaction_id(
    running: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    break_speech(running, monkeypatch, "plan")
    interaction = await running.say(text="Hello there.")
    await interaction.wait_final()
    assert interaction.content() == str(apology(interaction.id))
    assert str(interaction.id) in interaction.content()
    assert interaction.ephemeral
    assert len(error_records(caplog, interaction)) == 1
    assert "simulated bug" not in interaction.content()
    assert running.tts_requests() == []


async def test_unexpected_error_after_a_public_defer_removes_the_thinking_message(
    running: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    break_speech(running, monkeypatch, "synthesise")
    interaction = await running.say(text="Hello there.")
    await interaction.wait_final()
    # The public "thinking" placeholder is gone; only the private apology is left.
    assert [r.kind for r in interaction.responses] == ["callback", "delete_original", "followup"]
    assert interaction.responses[0].type == 5
    messages = interaction.messages()
    assert len(messages) == 1
    assert messages[0]["content"] == str(apology(interaction.id))
    assert interaction.ephemeral
    assert len(error_records(caplog, interaction)) == 1


async def test_unexpected_error_in_read_aloud_is_answered_too(
    running: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    break_speech(running, monkeypatch, "plan")
    message = await running.discord.post_message(running.guild, running.text, running.other, "Read me, please.")
    interaction = await running.discord.message_command(
        running.guild, running.text, running.member, "Read aloud", message
    )
    await interaction.wait_final()
    assert interaction.content() == str(apology(interaction.id))
    assert interaction.ephemeral
    assert len(error_records(caplog, interaction)) == 1


async def test_the_bot_keeps_working_after_an_unexpected_error(running: World, monkeypatch: pytest.MonkeyPatch) -> None:
    break_speech(running, monkeypatch, "plan")
    failed = await running.say(text="Hello there.")
    await failed.wait_final()
    monkeypatch.undo()
    worked = await running.say(text="Hello there.")
    await worked.wait_final()
    assert worked.files()
    assert not worked.ephemeral


async def test_every_interaction_is_answered_and_no_reply_can_ping(running: World) -> None:
    everyone = f"@everyone <@{running.member.id}> <@&{running.guild.id}>"
    short = f"@everyone <@&{running.guild.id}>"  # within the 35 and 50 characters of language and word
    admin, member = running.admin, running.member
    calls: list[tuple[str, str | None, dict[str, Any], Any]] = [
        ("say", None, {"text": "Hello there."}, member),
        ("say", None, {"text": "   "}, member),
        ("say", None, {"text": "Hello", "voice": "No Such Voice"}, member),
        ("say", None, {"text": "Hello", "rate": "+300%"}, member),
        ("say", None, {"text": "Hello", "voice": "Jenny", "intensity": 50}, member),
        ("balance", None, {}, admin),
        ("balance", None, {}, member),
        ("settings", "show", {}, admin),
        ("settings", "rate", {"rate": "fast!!"}, admin),
        ("settings", "language", {"language": short}, admin),
        ("preferences", "nickname", {"nickname": "@everyone"}, member),
        ("preferences", "voice", {"voice": everyone}, member),
        ("pronounce", "add", {"word": "@everyone", "spoken": f"<@{member.id}>"}, admin),
        ("pronounce", "remove", {"word": short}, admin),
        ("pronounce", "list", {}, member),
        ("voices", None, {"query": everyone}, member),
    ]
    interactions = [
        await running.slash(name, options, subcommand=subcommand, member=who)
        for name, subcommand, options, who in calls
    ]
    interactions.append(
        await running.discord.autocomplete(
            running.guild, running.text, member, "say", {"text": "x", "voice": "Bri"}, "voice"
        )
    )
    running.unmixr.fail_next(505, endpoint="/short-tts/")
    interactions.append(await running.say(text="No credits left for this one."))
    await asyncio.gather(*(interaction.wait_final() for interaction in interactions))
    for interaction in interactions:
        answers = [r for r in interaction.responses if is_answer(r)]
        assert answers, f"{interaction} was never answered: {interaction.responses}"
        assert all(r.status < 300 for r in interaction.responses), interaction.responses

    # Every message the bot sent in reply disables mentions, whatever text it echoes.
    checked = 0
    for request in running.discord.requests:
        body = request.json if isinstance(request.json, dict) else {}
        if CALLBACK.match(request.path) and body.get("type") in (4, 7):
            payload = body.get("data") or {}
        elif WEBHOOK.match(request.path) and request.method in ("POST", "PATCH"):
            payload = body
        else:
            continue
        checked += 1
        assert payload.get("allowed_mentions") == {"parse": []}, (request.method, request.path, payload)
    assert checked >= len(calls)
    for message in running.discord.messages.values():
        if int(message["author"]["id"]) == running.discord.application_id:
            assert message["mentions"] == [] and message["mention_roles"] == [], message["content"]
            assert message["mention_everyone"] is False


async def test_a_reply_the_servers_automod_blocks_gets_one_private_sentence(
    running: World, caplog: pytest.LogCaptureFixture
) -> None:
    # The server's AutoMod blocks the voice's name, which the public /say reply names.
    running.guild.add_automod_rule(["brian"])
    said = await running.say(text="Hello there.", voice="Brian")
    await said.wait_final()
    refused = [r for r in said.responses if r.status >= 400]
    assert [(r.kind, r.error["code"] if r.error else None) for r in refused] == [("edit_original", 200000)]
    assert said.ephemeral and said.content() == str(AUTOMOD_BLOCKED)
    assert said.messages() == [said.final_message()], "the public thinking message is gone"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(("bot", "cogs"))]
