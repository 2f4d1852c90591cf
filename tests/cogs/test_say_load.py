"""/say under load, end to end: many members at once against an Unmixr that serves only a few at a time."""

from __future__ import annotations

from tests.cogs.test_say import RAW_STATUS, assert_audio_reply
from tests.conftest import MEMBER_PERMISSIONS, World

CAPACITY = 3
REQUESTS = 24


async def test_many_say_at_once_against_a_capped_upstream_all_get_their_audio(running: World) -> None:
    unmixr = running.unmixr
    unmixr.set_capacity(CAPACITY, retry_after=0.2)
    unmixr.set_latency(0.3, endpoint="/short-tts/")
    members = [running.guild.add_member(f"Caller {index}", permissions=MEMBER_PERMISSIONS) for index in range(REQUESTS)]
    texts = [f"Caller number {index} would like this sentence read out, please." for index in range(REQUESTS)]

    interactions = [await running.say(member, text=text) for member, text in zip(members, texts, strict=True)]
    for interaction in interactions:
        await interaction.wait_final(timeout=60)

    for interaction in interactions:
        assert_audio_reply(interaction)
        assert not RAW_STATUS.search(interaction.content())
    # Unmixr was overloaded and said so, yet every 429 was retried: each text was synthesised exactly once.
    assert unmixr.too_many_requests > 0
    served = [request.json["text"] for request in running.tts_requests() if request.status == 200]
    assert sorted(served) == sorted(texts)
    assert len(running.tts_requests()) == REQUESTS + unmixr.too_many_requests
    # The bot brought its limit down from where it starts (8) toward what Unmixr can take.
    assert running.bot.unmixr.limiter.limit < 8
