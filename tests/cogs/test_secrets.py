"""End-to-end test that the Unmixr API key and the Discord token never reach a log line or Discord."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.logs import RedactSecrets
from bot.masking import MASK
from tests.conftest import DISCORD_TOKEN, UNMIXR_KEY, World
from tests.fakes.discord_server import FakeInteraction, Response

SECRETS = (UNMIXR_KEY, DISCORD_TOKEN)


def is_answer(response: Response) -> bool:
    """Whether a response carries the interaction's answer (not only an acknowledgement)."""
    if response.status >= 300:
        return False
    return response.kind in ("followup", "edit_original", "edit_followup") or (
        response.kind == "callback" and response.type in (4, 7)
    )


def leaks(text: str | bytes) -> list[str]:
    """Which secrets occur in the text (or bytes)."""
    if isinstance(text, bytes):
        return [secret for secret in SECRETS if secret.encode() in text]
    return [secret for secret in SECRETS if secret in text]


async def answered(interaction: FakeInteraction) -> FakeInteraction:
    """Wait for the interaction's answer."""
    await interaction.wait_for(is_answer)
    return interaction


async def test_no_secret_in_logs_or_anything_sent_to_discord(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="discord")
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    await world.start_bot()

    said = await answered(await world.say(text="Hello there."))
    assert said.files()
    balance = await answered(await world.slash("balance", member=world.admin))
    assert "prebuilt" in balance.content()
    voices = await answered(await world.slash("voices", member=world.member))
    assert voices.embeds()
    world.unmixr.fail_next(505, endpoint="/short-tts/")
    out_of_credits = await answered(await world.say(text="Spend credits I do not have."))
    assert out_of_credits.ephemeral and "credits" in out_of_credits.content()
    # The operator rotates the key at Unmixr: every call now gets "Invalid API key".
    world.unmixr.api_key = "a-brand-new-key-000000"
    refused_balance = await answered(await world.slash("balance", member=world.admin))
    refused_say = await answered(await world.say(text="Anything at all, said differently."))
    for refused in (refused_balance, refused_say):
        assert refused.ephemeral
        assert "API key" in refused.content()
    assert any("UNMIXR_API_KEY" in record.getMessage() for record in caplog.records), "the log names the fix"

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = [
        formatter.format(record)
        for phase in ("setup", "call")
        for record in caplog.get_records(phase)  # type: ignore[arg-type]
    ]
    assert len(lines) > 20, "the bot logged at DEBUG"
    for line in lines:
        assert not leaks(line), line

    assert world.discord.requests, "the bot talked to Discord"
    for request in world.discord.requests:
        assert not leaks(json.dumps(request.json, default=str)), (request.method, request.path)
        assert not leaks(json.dumps(request.query)), (request.method, request.path)
        for _filename, data in request.files:
            assert not leaks(data), (request.method, request.path)
    for interaction in world.discord.interactions.values():
        for response in interaction.responses:
            assert not leaks(json.dumps(response.json, default=str)), interaction
            for _name, data in response.files:
                assert not leaks(data), interaction
    for message in world.discord.messages.values():
        assert not leaks(json.dumps({k: v for k, v in message.items() if k != "files"}, default=str))

    # The Discord token never travels to Unmixr.
    for upstream in world.unmixr.requests:
        assert DISCORD_TOKEN not in json.dumps([upstream.headers, upstream.json, upstream.query, upstream.form])
    # Nor do the settings show either secret.
    assert not leaks(repr(world.bot.settings)) and not leaks(str(world.bot.settings.model_dump()))


def test_log_filter_masks_secrets_in_messages_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets([UNMIXR_KEY, DISCORD_TOKEN, "", "short"]))
    logger = logging.getLogger("tests.secrets.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("calling with %s", f"Bearer {UNMIXR_KEY}")
        try:
            raise RuntimeError(f"token {DISCORD_TOKEN} refused")
        except RuntimeError:
            logger.exception("login failed")
        logger.warning("a short word stays")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert not leaks(output), output
    assert output.count(MASK) == 2
    assert "Bearer [redacted]" in output
    assert "a short word stays" in output
