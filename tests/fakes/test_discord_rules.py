"""The Discord stand-in's second set of rules: rate limits, the gateway's limits, registration, and smaller gaps.

Each test names the section of discord/discord-api-docs it follows. Raw HTTP and websocket clients show what
the stand-in answers; the real discord.py shows that a well-behaved client gets through.
"""

from __future__ import annotations

import asyncio
import io
import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest

from tests.fakes import discord_payloads as p
from tests.fakes.discord_server import ClientRefused, FakeDiscord, FakeGuild
from tests.fakes.test_discord_server import TOKEN, World, act, world

__all__ = ["world"]  # the fixture, used by name below

HEADERS = {"Authorization": f"Bot {TOKEN}"}
MIB = 1024 * 1024


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN) as started:
        yield started


# ---------------------------------------------------------------- rate limits (topics/rate-limits.mdx)


async def test_a_route_bucket_announces_itself_and_refuses_the_request_past_it(
    fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    text = fake.add_guild().add_text_channel("general")
    url = f"{fake.api_base}/channels/{text['id']}/messages"
    answers = []
    for number in range(6):
        async with http.post(url, json={"content": f"message {number}"}, headers=HEADERS) as response:
            answers.append((response.status, dict(response.headers), await response.json()))
    remaining = [headers["X-RateLimit-Remaining"] for _status, headers, _body in answers[:5]]
    assert [status for status, _h, _b in answers] == [200] * 5 + [429]
    assert remaining == ["4", "3", "2", "1", "0"]
    assert {headers["X-RateLimit-Bucket"] for _s, headers, _b in answers} == {"channel-messages-create"}
    _status, headers, body = answers[5]
    # "Exceeding A Rate Limit": a JSON body with retry_after, Retry-After, the scope; Via as Discord's front end.
    assert body["global"] is False and 0 < body["retry_after"] <= 5
    assert headers["X-RateLimit-Scope"] == "user" and headers["Via"] and int(headers["Retry-After"]) >= 1
    # "Invalid Request Limit": that 429 counts; a bucket per channel, so another channel is not limited.
    assert [(r.method, r.status) for r in fake.wasted_requests()] == [("POST", 429)]
    other = fake.guilds[int(text["guild_id"])].add_text_channel("other")
    async with http.post(
        f"{fake.api_base}/channels/{other['id']}/messages", json={"content": "x"}, headers=HEADERS
    ) as fresh:
        assert fresh.status == 200


async def test_the_global_limit_spares_the_interaction_endpoints(
    fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    statuses = []
    for _ in range(p_global_limit(fake) + 1):
        async with http.get(f"{fake.api_base}/users/@me", headers=HEADERS) as response:
            statuses.append(response.status)
            body = await response.json()
    assert statuses[:-1] == [200] * p_global_limit(fake) and statuses[-1] == 429
    assert body["global"] is True
    assert [r.status for r in fake.wasted_requests()] == [429]
    # rate-limits.mdx: "Interaction endpoints are not bound to the bot's Global Rate Limit".
    async with http.post(f"{fake.api_base}/interactions/1/unknown/callback", json={"type": 5}) as callback:
        assert callback.status == 404


def p_global_limit(fake: FakeDiscord) -> int:
    return fake.rate_limits.global_limit


async def test_discord_py_reads_the_headers_and_never_meets_a_429_of_its_own(world: World) -> None:
    channel = world.bot.get_channel(int(world.text["id"]))
    assert isinstance(channel, discord.TextChannel)
    for number in range(7):  # past the bucket of 5: discord.py waits for the reset instead
        await channel.send(f"paced {number}")
    assert [m["content"] for m in world.fake.channel_messages[int(world.text["id"])]] == [
        f"paced {n}" for n in range(7)
    ]
    assert world.fake.invalid_requests == []


@pytest.mark.parametrize("scope", ["shared", "user", "global"])
async def test_429s_on_demand_are_retried_by_discord_py_and_counted_as_discord_counts_them(
    world: World, scope: str
) -> None:
    fake = world.fake
    fake.rate_limits.throttle(r"/channels/\d+/messages$", method="POST", count=2, retry_after=0.3, scope=scope)
    channel = world.bot.get_channel(int(world.text["id"]))
    assert isinstance(channel, discord.TextChannel)
    await channel.send("after two 429s")
    assert fake.channel_messages[int(world.text["id"])][-1]["content"] == "after two 429s"
    assert fake.rate_limits.pending_throttles == 0
    # rate-limits.mdx: "429 errors returned with X-RateLimit-Scope: shared are not counted against you".
    counted = [r.status for r in fake.invalid_requests]
    assert counted == ([] if scope == "shared" else [429, 429])
    assert fake.wasted_requests() == [], "the test asked for them: the bot could not have avoided them"


# ---------------------------------------------------------------- the gateway (events/gateway.mdx)


class RawGateway:
    """A bare gateway client: sends what the test says, reads frames through a zlib-stream context."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.inflator = zlib.decompressobj()

    async def receive(self) -> dict[str, Any] | int:
        """The next payload, or the close code."""
        message = await asyncio.wait_for(self.ws.receive(), 5)
        if message.type is aiohttp.WSMsgType.BINARY:
            return dict(json.loads(self.inflator.decompress(message.data)))
        if message.type is aiohttp.WSMsgType.TEXT:
            return dict(json.loads(message.data))
        assert self.ws.close_code is not None, message
        return self.ws.close_code

    async def identify(
        self, shard: list[int] | None = None, token: str = TOKEN, intents: int = p.INTENT_GUILDS
    ) -> dict[str, Any] | int:
        """Send IDENTIFY; return what follows (READY, op 9, or a close code)."""
        data: dict[str, Any] = {"token": token, "intents": intents, "properties": {}}
        if shard is not None:
            data["shard"] = shard
        await self.ws.send_json({"op": 2, "d": data})
        return await self.receive()


async def raw_gateway(fake: FakeDiscord, http: aiohttp.ClientSession, compress: str = "zlib-stream") -> RawGateway:
    ws = await http.ws_connect(f"{fake.gateway_url}?v=10&encoding=json&compress={compress}")
    client = RawGateway(ws)
    hello = await client.receive()
    assert isinstance(hello, dict) and hello["op"] == 10
    return client


async def test_frames_are_compressed_with_one_zlib_stream_for_the_connection(
    fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    fake.add_guild()
    ws = await http.ws_connect(f"{fake.gateway_url}?v=10&encoding=json&compress=zlib-stream")
    first = await ws.receive()
    # "Transport Compression": binary frames, each ending with the zlib sync flush, inflated by one context.
    assert first.type is aiohttp.WSMsgType.BINARY and first.data.endswith(b"\x00\x00\xff\xff")
    inflator = zlib.decompressobj()
    assert json.loads(inflator.decompress(first.data))["op"] == 10
    await ws.send_json({"op": 2, "d": {"token": TOKEN, "intents": 1, "properties": {}}})
    ready = await ws.receive()
    assert json.loads(inflator.decompress(ready.data))["t"] == "READY"
    with pytest.raises(zlib.error):
        zlib.decompressobj().decompress(ready.data)  # a frame alone is not a zlib stream
    async with http.get(f"{fake.gateway_url}?v=10&encoding=json&compress=gzip") as refused:
        assert refused.status == 400


async def test_discord_py_connects_through_compressed_frames(world: World) -> None:
    assert world.bot.get_guild(world.guild.id) is not None  # the fixture's bot asked for zlib-stream


async def test_one_identify_per_5_s_per_max_concurrency_bucket(http: aiohttp.ClientSession) -> None:
    async with FakeDiscord(token=TOKEN, shard_count=4, max_concurrency=2) as fake:
        clients = [await raw_gateway(fake, http) for _ in range(4)]
        # "Max Concurrency": shards 0 and 1 fill the two buckets; shard 2 shares shard 0's (2 % 2 == 0).
        first = await clients[0].identify([0, 4])
        second = await clients[1].identify([1, 4])
        third = await clients[2].identify([2, 4])
        assert isinstance(first, dict) and first["t"] == "READY"
        assert isinstance(second, dict) and second["t"] == "READY"
        # "Identifying": over max_concurrency, Discord answers op 9 Invalid Session.
        assert third == {"op": 9, "s": None, "t": None, "d": False}
        assert fake.identify_refusals == [2] and fake.identify_counts == {0: 1, 1: 1}
        fake._identified_at[0] -= 5.0  # five seconds later
        fourth = await clients[3].identify([2, 4])
        assert isinstance(fourth, dict) and fourth["t"] == "READY"


@pytest.mark.parametrize(
    ("options", "shard", "code"),
    [
        ({}, [2, 2], 4010),  # a shard outside its count
        ({"shard_multiple": 16}, [0, 2], 4010),  # "Sharding for Large Bots": not a multiple of the factor
        ({"max_guilds_per_shard": 1}, [0, 1], 4011),  # two servers on one shard of at most one
        ({"max_guilds_per_shard": 1}, None, 4011),  # unsharded is one shard too
    ],
)
async def test_identify_is_closed_with_the_documented_code(
    http: aiohttp.ClientSession, options: dict[str, Any], shard: list[int] | None, code: int
) -> None:
    async with FakeDiscord(token=TOKEN, shard_count=2, **options) as fake:
        fake.add_guild(name="one"), fake.add_guild(name="two")
        client = await raw_gateway(fake, http)
        assert await client.identify(shard) == code
        assert [closed for _shard, closed in fake.close_codes] == [code]


async def test_any_shard_count_is_accepted_and_routes_by_its_own_count(http: aiohttp.ClientSession) -> None:
    # "Sharding": sessions do not have to use the recommended count.
    async with FakeDiscord(token=TOKEN, shard_count=2) as fake:
        guilds = [fake.add_guild(name="one"), fake.add_guild(name="two")]
        client = await raw_gateway(fake, http)
        ready = await client.identify([0, 1], intents=p.INTENT_GUILDS | p.INTENT_GUILD_MESSAGES)
        assert isinstance(ready, dict) and ready["t"] == "READY"
        assert {int(g["id"]) for g in ready["d"]["guilds"]} == {g.id for g in guilds}
        await fake.post_message(guilds[1], guilds[1].add_text_channel("general"), guilds[1].bot_member, "routed")
        events = [await client.receive() for _ in range(3)]  # two GUILD_CREATEs, then the message
        assert [e["t"] for e in events if isinstance(e, dict)] == ["GUILD_CREATE", "GUILD_CREATE", "MESSAGE_CREATE"]


async def test_the_wrong_token_and_a_refused_identify_on_demand(http: aiohttp.ClientSession) -> None:
    async with FakeDiscord(token=TOKEN) as fake:
        assert await (await raw_gateway(fake, http)).identify(token="wrong") == 4004
        fake.refuse_next_identify = 4013
        assert await (await raw_gateway(fake, http)).identify() == 4013
        ready = await (await raw_gateway(fake, http)).identify()
        assert isinstance(ready, dict) and ready["t"] == "READY"


async def test_more_than_120_payloads_a_minute_close_the_connection_with_4008(
    fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    client = await raw_gateway(fake, http)
    for _ in range(121):
        await client.ws.send_json({"op": 3, "d": {"status": "online", "since": 0, "activities": [], "afk": False}})
    assert await client.receive() == 4008


@pytest.mark.parametrize("code", [4007, 4009])
async def test_closes_that_end_the_session_make_discord_py_identify_anew(world: World, code: int) -> None:
    fake = world.fake
    await asyncio.sleep(5.1)  # the shard's IDENTIFY bucket is free again
    await fake.disconnect_gateway(code)
    # The client resumes; the session is gone, so it gets op 9 and identifies.
    await fake.wait_until(lambda: fake.identify_counts.get(0) == 2, timeout=15, what="a new IDENTIFY")
    assert fake.resume_counts.get(0) is None
    await fake.post_message(world.guild, world.text, world.alice, "after a new session")
    await fake.wait_until(lambda: any(m.content == "after a new session" for m in world.bot.seen["message"]))


async def test_a_4008_keeps_the_session_resumable(world: World) -> None:
    await world.fake.disconnect_gateway(4008)
    await world.fake.wait_until(lambda: world.fake.resume_counts.get(0) == 1, what="the RESUME")
    assert world.fake.identify_counts == {0: 1}


async def test_a_4011_stops_discord_py_with_connection_closed(http: aiohttp.ClientSession) -> None:
    async with FakeDiscord(token=TOKEN, max_guilds_per_shard=1) as fake:
        fake.add_guild(name="one"), fake.add_guild(name="two")
        from tests.fakes.discord_server import use_fake_discord
        from tests.fakes.test_discord_server import StandInBot

        with use_fake_discord(fake):
            bot = StandInBot(next(iter(fake.guilds)))
            with pytest.raises(discord.ConnectionClosed) as closed:
                await asyncio.wait_for(bot.start(TOKEN), 15)
            assert closed.value.code == 4011


# ---------------------------------------------------------------- registration (application-commands.mdx)


def chat_input(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": "A command", "type": 1, **extra}


@pytest.mark.parametrize("name", ["नमस्ते", "สวัสดี", "größe", "日本語", "tts-2", "o'clock", "a_b"])
def test_the_documented_name_pattern_takes_letters_of_any_script(name: str) -> None:
    # "Application Command Naming": ^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$, lowercase where it exists.
    assert p.validate_commands([chat_input(name)]) == {}
    assert p.validate_commands([chat_input("say", options=[{"name": name, "description": "d", "type": 3}])]) == {}


@pytest.mark.parametrize("name", ["Say", "two words", "emoji🙂", "", "x" * 33, "semi;colon", "ΣΟΦΙΑ"])
def test_names_outside_the_pattern_or_not_lowercase_are_refused(name: str) -> None:
    errors = p.validate_commands([chat_input(name)])
    assert errors["0"]["name"]["_errors"][0]["code"] == "APPLICATION_COMMAND_INVALID_NAME"


def test_localized_names_follow_the_same_rules_and_count_toward_8000() -> None:
    # "Localization": values follow the same restrictions as `name` (user and message commands: any case).
    assert p.validate_commands([chat_input("say", name_localizations={"hi": "बोलो", "th": "พูด"})]) == {}
    refused = p.validate_commands([chat_input("say", name_localizations={"de": "Sagen"})])
    assert refused["0"]["name_localizations"]["de"]["_errors"][0]["code"] == "APPLICATION_COMMAND_INVALID_NAME"
    assert p.validate_commands([{"name": "Read aloud", "type": 3, "name_localizations": {"de": "Vorlesen"}}]) == {}
    long = "d" * 100
    options = [
        {"name": f"o{i}", "description": "x", "type": 3, "description_localizations": {"de": long}} for i in range(25)
    ]
    huge = chat_input(
        "say", options=[{"name": f"s{n}", "description": "x", "type": 1, "options": options} for n in range(4)]
    )
    assert "APPLICATION_COMMAND_TOO_LARGE" in json.dumps(p.validate_commands([huge]))


def test_localizations_are_keyed_by_discords_locales() -> None:
    # reference.mdx, "Locales": "de" and "es-419" are Discord's codes; "de-DE", "en" and "pt-PT" are not.
    assert p.validate_commands([chat_input("say", name_localizations={"de": "sagen", "es-419": "decir"})]) == {}
    for key in ("de-DE", "en", "pt-PT", "pt_BR"):
        refused = p.validate_commands([chat_input("say", description_localizations={key: "x"})])
        assert refused["0"]["description_localizations"][key]["_errors"][0]["code"] == "LOCALE_INVALID"
    choice = {"name": "male", "value": "male", "name_localizations": {"xx": "m"}}
    options = [{"name": "gender", "description": "d", "type": 3, "choices": [choice]}]
    assert "LOCALE_INVALID" in json.dumps(p.validate_commands([chat_input("voices", options=options)]))


def test_a_localized_option_name_is_unique_in_its_locale_and_among_the_default_names() -> None:
    # "Localization": distinct "from all other default option names of that command, as well as all other option
    # names within that locale on that command".
    def command(*options: dict[str, Any]) -> list[dict[str, Any]]:
        return [chat_input("say", options=[{"description": "d", "type": 3, **option} for option in options])]

    fine = command({"name": "voice", "name_localizations": {"de": "stimme"}}, {"name": "text"})
    assert p.validate_commands(fine) == {}
    same_in_locale = command(
        {"name": "voice", "name_localizations": {"de": "stimme"}},
        {"name": "tone", "name_localizations": {"de": "stimme"}},
    )
    errors = p.validate_commands(same_in_locale)
    assert errors["0"]["options"]["1"]["name_localizations"]["de"]["_errors"][0]["code"] == (
        "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS"
    )
    # A German member would see two options called "text": one localized, one not.
    another_default = command({"name": "voice", "name_localizations": {"de": "text"}}, {"name": "text"})
    assert "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS" in json.dumps(p.validate_commands(another_default))
    # Localized to its own default name: nothing clashes.
    assert p.validate_commands(command({"name": "text", "name_localizations": {"de": "text"}})) == {}


def test_members_see_the_names_of_their_locale_with_discords_fallbacks() -> None:
    command = chat_input("say", name_localizations={"de": "sprechen", "es-ES": "decir", "en-GB": "speak"})
    assert p.localized(command, "name", "de") == "sprechen"
    assert p.localized(command, "name", "es-419") == "decir"  # es-419 falls back to es-ES
    assert p.localized(command, "name", "en-US") == "speak"  # en-US falls back to en-GB when it has no key
    assert p.localized(command, "name", "ja") == "say"


async def commands_url(fake: FakeDiscord, guild: FakeGuild | None = None) -> str:
    scope = f"/guilds/{guild.id}" if guild is not None else ""
    return f"{fake.api_base}/applications/{fake.application_id}{scope}/commands"


async def test_caps_of_100_chat_input_and_15_user_and_message_commands(
    fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    url = await commands_url(fake)
    hundred = [chat_input(f"c{n}") for n in range(100)]
    menus = [{"name": f"Menu {n}", "type": 3} for n in range(15)]
    async with http.put(url, json=hundred + menus, headers=HEADERS) as accepted:
        assert accepted.status == 200
    for extra in (chat_input("one-more"), {"name": "Menu 15", "type": 3}):
        async with http.post(url, json=extra, headers=HEADERS) as refused:
            assert refused.status == 400
            assert (await refused.json())["code"] == 30032
    async with http.put(url, json=[*hundred, chat_input("c100")], headers=HEADERS) as refused:
        assert (await refused.json())["code"] == 30032


async def test_200_command_creates_a_day_per_guild(fake: FakeDiscord, http: aiohttp.ClientSession) -> None:
    guild = fake.add_guild()
    url = await commands_url(fake, guild)
    for batch in range(2):  # 200 new commands: two overwrites of 100 new names each
        names = [chat_input(f"b{batch}-{n}") for n in range(100)]
        async with http.put(url, json=names, headers=HEADERS) as accepted:
            assert accepted.status == 200
    async with http.put(url, json=names, headers=HEADERS) as unchanged:  # the same commands: no create
        assert unchanged.status == 200
    async with http.put(url, json=[], headers=HEADERS) as emptied:  # deleting gives no creates back
        assert emptied.status == 200
    async with http.post(url, json=chat_input("b2-0"), headers=HEADERS) as refused:
        body = await refused.json()
        assert (refused.status, body["code"]) == (429, 30034)
        assert body["retry_after"] > 3600 and refused.headers["Via"]
    # Another guild has its own 200.
    async with http.post(await commands_url(fake, fake.add_guild()), json=chat_input("x"), headers=HEADERS) as ok:
        assert ok.status == 201


async def test_contexts_decide_where_a_global_command_is_offered_and_not_a_guild_one(
    fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    guild = fake.add_guild()
    text = guild.add_text_channel("general")
    member = guild.add_member("mel")
    dm_only = chat_input("dm-only", contexts=[p.CONTEXT_BOT_DM])
    async with http.put(await commands_url(fake), json=[dm_only], headers=HEADERS) as registered:
        assert registered.status == 200
    with pytest.raises(ClientRefused, match="not offered in servers"):
        await fake.slash(guild, text, member, "dm-only")
    # "contexts ... only for globally-scoped commands": a guild command is offered in its guild whatever it says.
    async with http.put(await commands_url(fake, guild), json=[chat_input("here", contexts=[1])], headers=HEADERS):
        pass
    assert fake._find_command(guild, "here", 1)[0] is not None


# ---------------------------------------------------------------- smaller gaps


async def test_the_servers_boost_tier_sets_its_upload_limit(world: World, http: aiohttp.ClientSession) -> None:
    fake, guild = world.fake, world.guild
    url = f"{fake.api_base}/channels/{world.text['id']}/messages"

    async def upload(size: int) -> int:
        form = aiohttp.FormData(quote_fields=False)
        form.add_field("payload_json", json.dumps({"content": ""}), content_type="application/json")
        form.add_field("files[0]", io.BytesIO(b"x" * size), filename="big.mp3", content_type="audio/mpeg")
        async with http.post(url, data=form, headers=HEADERS) as response:
            return response.status

    # reference.mdx, "Uploading Files": 10 MiB by default; the server's boost tier raises it (tier 2: 50 MiB).
    assert await upload(20 * MIB) == 413
    guild.premium_tier = 2
    assert await upload(20 * MIB) == 200
    assert fake.guilds[guild.id].create_payload(0)["premium_tier"] == 2
    interaction = await act(world, lambda i: i.response.send_message("limit"))
    assert interaction.attachment_size_limit == 50 * MIB
    guild.premium_tier = 1  # level 1 no longer raises it
    assert fake.upload_limit_of(guild) == 10 * MIB


async def test_an_edit_drops_an_upload_its_attachments_do_not_list(world: World, http: aiohttp.ClientSession) -> None:
    fake = world.fake

    async def answered(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("first", file=discord.File(io.BytesIO(b"one"), filename="one.mp3"))

    interaction = await act(world, answered)
    await interaction.wait_final()
    url = f"{fake.api_base}/webhooks/{fake.application_id}/{interaction.token}/messages/@original"

    async def edit(payload: dict[str, Any]) -> list[str]:
        form = aiohttp.FormData(quote_fields=False)
        form.add_field("payload_json", json.dumps(payload), content_type="application/json")
        form.add_field("files[0]", io.BytesIO(b"two"), filename="two.mp3", content_type="audio/mpeg")
        async with http.patch(url, data=form) as response:
            assert response.status == 200
            return [a["filename"] for a in (await response.json())["attachments"]]

    # message.mdx, "Edit Message": without `attachments`, files are appended; with it, it lists what stays.
    assert await edit({"content": "appended"}) == ["one.mp3", "two.mp3"]
    kept = interaction.final_message()["attachments"][0]["id"]
    assert await edit({"attachments": [{"id": kept}]}) == ["one.mp3"]
    assert await edit({"attachments": [{"id": 0}]}) == ["two.mp3"]


@pytest.mark.parametrize(
    ("keyword", "blocked", "allowed"),
    [
        ("cat*", "catch it", "wildcat"),
        ("*cat", "wildcat", "catch"),
        ("*cat*", "location", "dog"),
        ("cat", "a CAT here", "catapult"),
        ("the mat", "on the mat today", "the matrix"),
    ],
)
def test_automod_keyword_strategies(keyword: str, blocked: str, allowed: str) -> None:
    # auto-moderation.mdx, "Keyword Matching Strategies" (case insensitive).
    rule = {"keyword_filter": [keyword]}
    assert p.automod_matches(rule, blocked) and not p.automod_matches(rule, allowed)
    assert not p.automod_matches({**rule, "allow_list": [blocked.split()[0 if keyword != "the mat" else 1]]}, "x")


async def test_automod_blocks_a_reply_with_200000_and_it_does_not_acknowledge(world: World) -> None:
    world.guild.add_automod_rule(["forbidden"])

    async def blocked(interaction: discord.Interaction) -> None:
        try:
            await interaction.response.send_message("a forbidden word")
        except discord.HTTPException as error:
            world.bot.seen["refused"].append((error.status, error.code, error.text))
            await interaction.response.send_message("something else")

    interaction = await act(world, blocked)
    await interaction.wait_final()
    assert world.bot.seen["refused"] == [(400, 200000, "Message was blocked by automatic moderation")]
    assert interaction.content() == "something else"
    # exempt channels are not checked
    world.guild.automod_rules[0]["exempt_channels"] = [str(world.text["id"])]
    again = await act(world, lambda i: i.response.send_message("forbidden here is fine"))
    await again.wait_final()
    assert again.content() == "forbidden here is fine"
