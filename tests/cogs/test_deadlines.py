"""Every interaction is acknowledged within Discord's 3 s even when Unmixr is slow, and still gets its answer.

One table lists every command, subcommand, context menu, autocomplete and control of PRODUCT.md with the
options to call it. With every Unmixr endpoint taking 5 s (the clone list 10 s, past the client's timeout),
each is acknowledged within 3 s (the Discord stand-in refuses a later callback with 10062, as Discord does)
and gets its final answer. Calls of one flow run in order (a control needs the message of the call before
it); flows run side by side, so the whole table takes about as long as its slowest flow.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.storage import Storage
from tests.conftest import World
from tests.fakes.discord_server import ChannelOption, FakeInteraction, RoleOption, iter_components
from tests.fakes.discord_voice import FakeVoiceServer

ACK_DEADLINE = 3.0
UPSTREAM_SECONDS = 5.0
CLONE_LIST_SECONDS = 10.0
ANSWER_TIMEOUT = 60.0
APOLOGY = "something went wrong"
AUTOCOMPLETE = 4  # the interaction type
CLONE_ID = "c10ed000-0000-4000-8000-00000000da7a"
CLONE_NAME = "Quill"

# Placeholders for values known only once the world exists.
AUDIO = "<a 35 s recording>"
READOUT_CHANNEL = "<the readout channel>"
ROLE = "<a role>"
JENNY = "<Jenny's uuid>"


@dataclass(frozen=True)
class Call:
    """One way a member reaches the bot, and the options to do it."""

    command: str  # the command's path ("settings show"), context menu, or control label
    kind: str = "slash"  # slash, message (context menu), autocomplete, button, select
    options: dict[str, Any] = field(default_factory=dict)
    focused: str | None = None  # the autocompleted option
    who: str = "member"  # member, admin, or other (a member whose preferences no call changes)
    flow: str = ""  # calls of one flow run in order; "" is a flow of its own
    name: str = ""  # how a later control of its flow refers to it
    on: str = ""  # for a control: the name of the call whose final message carries it
    expect: str = ""  # a fragment of the final answer ("" checks only that it is not an apology)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.command}" + (f" {self.focused}" if self.focused else "")


SAY_TEXT = "Slow upstreams must not lose interactions."
TABLE: list[Call] = [
    # /voices and its views: the listing, paging, a voice's details and its buttons.
    Call("voices", who="admin", flow="views", name="listing", expect="Page 1"),
    Call("▶", kind="button", who="admin", flow="views", on="listing", name="page 2", expect="Page 2"),
    Call("◀", kind="button", who="admin", flow="views", on="page 2", name="page 1", expect="Page 1"),
    Call(
        "open a voice", kind="select", options={"values": [JENNY]}, who="admin", flow="views", on="page 1", name="jenny"
    ),
    Call("Preview", kind="button", who="admin", flow="views", on="jenny", expect="Sample of **Jenny**"),
    Call("Use as my voice", kind="button", who="admin", flow="views", on="jenny", expect="Jenny"),
    Call("Set as server default", kind="button", who="admin", flow="views", on="jenny", expect="Jenny"),
    Call("voices", options={"category": "clones"}, expect=CLONE_NAME),
    Call("voices", kind="autocomplete", options={"language": "de"}, focused="language", expect="de-DE"),
    # /say and Read aloud, with a catalogue voice, the default voice and this server's clone.
    Call("say", options={"text": SAY_TEXT, "voice": "Jenny"}, expect="Jenny"),
    Call("say", options={"text": SAY_TEXT + " Again.", "voice": CLONE_NAME}, expect=CLONE_NAME),
    Call("say", options={"text": SAY_TEXT + " Once more.", "voice": "jeny"}, expect="did you mean **Jenny**"),
    Call("say", kind="autocomplete", options={"text": "hi", "voice": "jen"}, focused="voice", expect="Jenny"),
    Call("say", kind="autocomplete", options={"text": "hi", "voice": "qui"}, focused="voice", expect=CLONE_NAME),
    Call("say", kind="autocomplete", options={"text": "hi", "language": "en-G"}, focused="language", expect="en-GB"),
    Call("Read aloud", kind="message", who="other", expect="Brian"),
    Call("clone", options={"audio": AUDIO, "name": "Nell", "consent": True}, who="admin", expect="Cloned **Nell**"),
    Call("balance", who="admin", expect="prebuilt characters"),
    # /settings, every subcommand.
    Call("settings show", who="admin", expect="Server settings"),
    Call("settings voice", options={"voice": "Jenny"}, who="admin", flow="settings", expect="**Jenny**"),
    Call("settings voice", kind="autocomplete", options={"voice": "bri"}, focused="voice", who="admin", expect="Brian"),
    Call("settings language", options={"language": "fr"}, who="admin", flow="settings", expect="`fr`"),
    Call("settings language", kind="autocomplete", options={"language": "fr"}, focused="language", expect="fr-FR"),
    Call("settings rate", options={"rate": "+10%"}, who="admin", flow="settings", expect="+10%"),
    Call("settings pitch", options={"pitch": "-5%"}, who="admin", flow="settings", expect="-5%"),
    Call("settings volume", options={"volume": "loud"}, who="admin", flow="settings", expect="loud"),
    Call("settings intensity", options={"intensity": 20}, who="admin", flow="settings", expect="20"),
    Call("settings format", options={"format": "wav"}, who="admin", flow="settings", expect="wav"),
    Call("settings max-length", options={"length": 500}, who="admin", flow="settings", expect="500"),
    Call("settings readout-channel", options={"channel": READOUT_CHANNEL}, who="admin", flow="settings"),
    Call("settings xsaid", options={"enabled": False}, who="admin", flow="settings", expect="off"),
    Call("settings ignore-role", options={"role": ROLE}, who="admin", flow="settings"),
    Call("settings budget", options={"characters": 50000}, who="admin", flow="settings", expect="50,000 credits"),
    Call("settings member-budget", options={"characters": 9000}, who="admin", flow="settings", expect="9,000 credits"),
    Call("settings reset", who="admin", flow="settings", name="reset", expect="Clear every server setting"),
    Call(
        "Clear every setting",
        kind="button",
        who="admin",
        flow="settings",
        on="reset",
        expect="Cleared every server setting",
    ),
    # /preferences, every subcommand.
    Call("preferences voice", options={"voice": CLONE_NAME}, flow="preferences", expect=CLONE_NAME),
    Call("preferences voice", kind="autocomplete", options={"voice": "amel"}, focused="voice", expect="Amelie"),
    Call("preferences rate", options={"rate": "slow"}, flow="preferences", expect="slow"),
    Call("preferences nickname", options={"nickname": "Mel"}, flow="preferences", expect="Mel"),
    Call("preferences reset", flow="preferences", expect="Cleared your preferences"),
    # /pronounce, every subcommand.
    Call("pronounce add", options={"word": "SQL", "spoken": "sequel"}, who="admin", flow="pronounce", expect="sequel"),
    Call("pronounce list", flow="pronounce", expect="SQL"),
    Call("pronounce remove", options={"word": "SQL"}, who="admin", flow="pronounce", expect="SQL"),
    # Voice control, in the order a member would use it.
    Call("join", flow="voice", expect="Joined"),
    Call("say", options={"text": "Played in the voice channel.", "play": True}, flow="voice", expect="Queued"),
    Call("queue", flow="voice"),
    Call("skip", flow="voice"),
    Call("stop", flow="voice"),
    Call("leave", flow="voice"),
]

COLD_START: list[Call] = [
    Call("say", options={"text": SAY_TEXT, "voice": "Jenny"}, expect="Jenny"),
    # Another member than the one whose preference changes at the same moment below, or the voice is a race.
    Call("say", options={"text": SAY_TEXT + " Default voice."}, who="other", expect="Brian"),
    Call("say", options={"text": SAY_TEXT + " Our clone.", "voice": CLONE_NAME}, expect=CLONE_NAME),
    Call("Read aloud", kind="message", who="other", expect="Brian"),
    Call("preferences voice", options={"voice": "Jenny"}, expect="Jenny"),
    Call("settings voice", options={"voice": "Amelie"}, who="admin", expect="Amelie"),
    Call("say", kind="autocomplete", options={"text": "hi", "voice": "jen"}, focused="voice"),
    Call("settings language", kind="autocomplete", options={"language": "fr"}, focused="language"),
]


def _recording(folder: Path) -> bytes:
    """A 35 s tone as mp3, long enough to clone."""
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None, "ffmpeg is installed system-wide"
    target = folder / "voice.mp3"
    source = ["-f", "lavfi", "-i", "sine=frequency=220:duration=35", "-ac", "1", "-b:a", "32k"]
    subprocess.run([ffmpeg, "-v", "error", "-y", *source, str(target)], check=True, timeout=60)
    return target.read_bytes()


@dataclass(frozen=True)
class Sent:
    """A call, its interaction, and the text of its final answer when it came."""

    call: Call
    interaction: FakeInteraction
    text: str


class Runner:
    """Sends the table's calls, flow by flow, and keeps what each got."""

    def __init__(self, world: World, recording: bytes) -> None:
        self.world = world
        self.recording = recording
        self.role = world.guild.add_role("Muted readers")
        self.read_message: dict[str, Any] = {}
        self.named: dict[str, FakeInteraction] = {}

    def value(self, value: Any) -> Any:
        """An option's value, with placeholders replaced."""
        if value == READOUT_CHANNEL:
            return ChannelOption(int(self.world.readout["id"]))
        if value == ROLE:
            return RoleOption(int(self.role["id"]))
        if value == JENNY:
            return next(str(v["uuid"]) for v in self.world.unmixr.voices if v["character"] == "Jenny")
        return value

    async def send(self, call: Call) -> FakeInteraction:
        """Make the call as a member would, and return the interaction the stand-in dispatched."""
        world = self.world
        member = {"member": world.member, "admin": world.admin, "other": world.other}[call.who]
        name, _, subcommand = call.command.partition(" ")
        options = {key: self.value(value) for key, value in call.options.items() if value != AUDIO}
        attachments = {
            key: ("voice.mp3", self.recording, "audio/mpeg") for key, v in call.options.items() if v == AUDIO
        }
        if call.kind == "slash":
            return await world.discord.slash(
                world.guild, world.text, member, name, options, subcommand=subcommand or None, attachments=attachments
            )
        if call.kind == "autocomplete":
            return await world.discord.autocomplete(
                world.guild, world.text, member, name, options, call.focused or "", subcommand=subcommand or None
            )
        if call.kind == "message":
            return await world.discord.message_command(world.guild, world.text, member, call.command, self.read_message)
        message = self.named[call.on].final_message()
        assert message is not None, f"{call.on} left no message for {call.label}"
        if call.kind == "select":
            component = next(c for c in iter_components(message["components"]) if c["type"] == 3)
            values = [self.value(value) for value in options["values"]]
            return await world.discord.click(
                message,
                component["custom_id"],
                member,
                guild=world.guild,
                channel=world.text,
                component_type=3,
                values=values,
            )
        component = next(
            c
            for c in iter_components(message["components"])
            if c["type"] == 2 and call.command in (c.get("label"), (c.get("emoji") or {}).get("name"))
        )
        return await world.discord.click(message, component["custom_id"], member, guild=world.guild, channel=world.text)

    async def run_flow(self, calls: list[tuple[int, Call]], sent: dict[int, Sent]) -> None:
        for number, call in calls:
            interaction = await self.send(call)
            if call.name:
                self.named[call.name] = interaction
            await interaction.wait_final(timeout=ANSWER_TIMEOUT)
            # Read now: a later control of the flow may edit the same message.
            sent[number] = Sent(call, interaction, answer_text(interaction))

    async def run(self, calls: list[Call]) -> list[Sent]:
        """Run the flows side by side; returns what each call got, in the table's order."""
        flows: dict[str, list[tuple[int, Call]]] = {}
        for number, call in enumerate(calls):
            flows.setdefault(call.flow or f"alone-{number}", []).append((number, call))
        sent: dict[int, Sent] = {}
        await asyncio.gather(*(self.run_flow(flow, sent) for flow in flows.values()))
        return [sent[number] for number in range(len(calls))]


def answer_text(interaction: FakeInteraction) -> str:
    """Everything the final answer shows: content, embeds and autocomplete choices."""
    if interaction.type == AUTOCOMPLETE:
        return "\n".join(choice["name"] for choice in interaction.choices())
    parts = [interaction.content()]
    for embed in interaction.embeds():
        parts += [embed.get("title") or "", embed.get("description") or "", (embed.get("footer") or {}).get("text", "")]
        parts += [f"{f['name']} {f['value']}" for f in embed.get("fields") or []]
    return "\n".join(parts)


def check_deadlines(sent: list[Sent]) -> None:
    """Each call was acknowledged within 3 s, and its answer is the expected one, not an apology."""
    late = {
        one.call.label: None if at is None else round(at - one.interaction.created_at, 2)
        for one in sent
        if (at := one.interaction.acknowledged_at) is None or at - one.interaction.created_at > ACK_DEADLINE
    }
    assert late == {}, f"acknowledged late or never (seconds): {late}"
    refused = [(one.call.label, r.error) for one in sent for r in one.interaction.responses if r.status >= 300]
    assert refused == [], refused
    for one in sent:
        assert APOLOGY not in one.text.casefold(), (one.call.label, one.text)
        assert one.call.expect in one.text, (one.call.label, one.call.expect, one.text)


def control_labels(interaction: FakeInteraction) -> set[str]:
    """The label (or emoji) of each button of the interaction's message; its select menu is "open a voice"."""
    message = interaction.final_message()
    assert message is not None
    return {
        "open a voice" if component["type"] == 3 else component.get("label") or component["emoji"]["name"]
        for component in iter_components(message["components"])
        if component["type"] in (2, 3)
    }


def slow_down(world: World) -> None:
    """Every Unmixr endpoint 5 s, the clone list 10 s (the stand-in adds the two)."""
    world.unmixr.set_latency(UPSTREAM_SECONDS)
    world.unmixr.set_latency(CLONE_LIST_SECONDS - UPSTREAM_SECONDS, endpoint="/cloned-voice-list/")


async def prepare_world(world: World) -> None:
    """A clone this server made before the start, known to storage and to Unmixr's clone list."""
    world.discord.callback_deadline = ACK_DEADLINE  # set here whatever the stand-in's default is
    world.unmixr.clones.append(
        {"uuid": CLONE_ID, "character": CLONE_NAME, "language": "en", "is_available": True, "category": "clones"}
    )
    async with await Storage.open(world.settings.database_path) as storage:
        await storage.add_cloned_voice(CLONE_ID, world.guild.id, CLONE_NAME, "our clone", world.admin.id)


async def test_every_interaction_is_acknowledged_in_time_while_unmixr_is_slow(
    world: World, voice_server: FakeVoiceServer, tmp_path: Path
) -> None:
    await prepare_world(world)
    await world.start_bot()
    synced = {
        f"{command['name']} {option['name']}" if option else command["name"]
        for command in world.discord.commands[world.guild.id]
        for option in [o for o in command.get("options") or [] if o["type"] == 1] or [None]
    }
    assert synced <= {call.command for call in TABLE}, (
        f"calls missing from the table: {synced - {c.command for c in TABLE}}"
    )
    await world.discord.wait_until(lambda: world.bot.catalogue.has_server(world.guild.id), what="the clones read")
    await world.discord.move_member(world.guild, world.member, world.voice)
    runner = Runner(world, await asyncio.to_thread(_recording, tmp_path))
    runner.read_message = await world.discord.post_message(world.guild, world.text, world.other, "Read this aloud.")
    slow_down(world)
    # A refresh under way meanwhile, as every 6 hours: what is served stays served.
    refresh = asyncio.create_task(world.bot.catalogue.refresh())

    sent = await runner.run(TABLE)

    check_deadlines(sent)
    # The table has a row for every control of the /voices views too.
    controls = {label for name in ("listing", "jenny") for label in control_labels(runner.named[name])}
    assert controls <= {call.command for call in TABLE if call.kind in ("button", "select")}
    await refresh
    # /clone added its voice without fetching the catalogue again.
    listed = [r for r in world.unmixr.requests if r.endpoint == "/voice-list/" and r.query.get("page_size") == "100"]
    assert len(listed) == 2 * len({r.query.get("c") for r in listed})  # the start and the one refresh
    assert world.bot.catalogue.find("Nell", world.guild.id) is not None


async def test_a_cold_start_defers_and_answers_once_the_catalogue_is_in(world: World, tmp_path: Path) -> None:
    await prepare_world(world)
    slow_down(world)
    await world.start_bot(wait_for_catalogue=False)
    assert not world.bot.catalogue.loaded
    runner = Runner(world, b"")
    runner.read_message = await world.discord.post_message(world.guild, world.text, world.other, "Read this aloud.")

    sent = await runner.run(COLD_START)

    check_deadlines(sent)
    for one in sent:
        if one.call.kind == "autocomplete":
            # Nothing was loaded when it answered: no choices rather than a late answer.
            assert one.interaction.choices() == [], one.call.label
        else:
            assert one.interaction.responses[0].type == 5, one.call.label  # deferred before the catalogue came in
    assert world.bot.catalogue.loaded
