"""Target: audio fitted to the upload limit is cached like synthesised audio (a repeat transcodes nothing), and
the ffmpeg lanes are fair, so free repeats in one server do not hold up another server's /say.

One server has a 6,000-character wav answered once (19.2 MB from the stand-in: over the 10 MiB upload limit, so
the bot fits it into a smaller mp3). Then, in each round, 8 members of that server repeat it at once (free: the
audio is cached) and, 0.3 s later, a member of another server runs a 3,000-character /say (two mp3 chunks
joined by ffmpeg, in the same replies lane). The other server's /say time runs from its interaction being
dispatched to its answer with the file; it is also measured alone (before and after the rounds). The bot's
transcodes are counted by watching the programs it starts (its calls pass the ffmpeg door's format
whitelist, the Unmixr stand-in's own tone making does not).

Before the fix every repeat transcoded again in the shared 4-slot lane: the outside review measured the other
server's /say at 6.6 s instead of 0.59 s during 8 repeats (figures of this benchmark, before and after, are in
bench/README.md).

Run: python -m bench.fitted_audio
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

from bench.common import MEMBER_PERMISSIONS, Report, answered, stack
from tests.fakes.discord_server import FakeInteraction
from tests.fakes.prose import prose

LONG_WAV = 6_000
OTHER_SAY = 3_000
REPEATS = 8
ROUNDS = 3
IDLE_ROUNDS = 5
UPLOAD_LIMIT = 10 * 1024 * 1024
# The other server's /say comes this long after each burst: once the repeats are under way (before the fix,
# their transcodes were queued in the lane by then, as in the outside review).
OTHER_AFTER_SECONDS = 0.3


class Transcodes:
    """Counts the bot's transcodes to a smaller mp3 (its only ffmpeg calls that pick an mp3 bitrate)."""

    def __init__(self) -> None:
        self.count = 0
        real_exec = asyncio.create_subprocess_exec

        async def counting_exec(program: str, *arguments: str, **kwargs: Any) -> asyncio.subprocess.Process:
            if "-format_whitelist" in arguments and "libmp3lame" in arguments and "-b:a" in arguments:
                self.count += 1
            return await real_exec(program, *arguments, **kwargs)

        asyncio.create_subprocess_exec = counting_exec  # type: ignore[assignment]


async def timed(interaction: FakeInteraction) -> float:
    """Seconds from the interaction's dispatch to its answer, which must carry a file."""
    response = await answered(interaction, timeout=180)
    if not response.files:
        raise RuntimeError(f"no audio in the answer: {response.json}")
    return response.at - interaction.created_at


async def run() -> Report:
    """Measure and return the report."""
    report = Report("fitted_audio", "a repeat over the upload limit transcodes nothing; lanes fair across servers")
    async with stack(members=REPEATS) as state:
        other_guild = state.discord.add_guild(name="Other Server")
        other_text = other_guild.add_text_channel("general")
        other_member = other_guild.add_member("Olga Other", permissions=MEMBER_PERMISSIONS)
        transcodes = Transcodes()
        text = prose(LONG_WAV, salt=1)

        async def long_wav(member_index: int, output: str = "wav") -> FakeInteraction:
            return await state.discord.slash(
                state.guild,
                state.text,
                state.members[member_index],
                "say",
                {"text": text, "format": output},
                attachment_size_limit=UPLOAD_LIMIT,
            )

        async def other_say(salt: int) -> FakeInteraction:
            return await state.discord.slash(
                other_guild, other_text, other_member, "say", {"text": prose(OTHER_SAY, salt=salt)}
            )

        first = await timed(await long_wav(0))
        first_transcodes = transcodes.count
        await timed(await other_say(salt=0))  # warms the stand-in's tone for this voice and length
        idle = [await timed(await other_say(salt=1 + n)) for n in range(IDLE_ROUNDS)]
        loaded: list[float] = []
        repeats: list[float] = []
        before = transcodes.count
        for round_number in range(ROUNDS):
            burst = [await long_wav(n) for n in range(REPEATS)]
            await asyncio.sleep(OTHER_AFTER_SECONDS)
            loaded.append(await timed(await other_say(salt=100 + round_number)))
            repeats += [await timed(interaction) for interaction in burst]
        repeat_transcodes = transcodes.count - before
        idle += [await timed(await other_say(salt=200 + n)) for n in range(IDLE_ROUNDS)]
        # For comparison, the same repeats of an attachment that needs no fitting (the text as mp3, which fits):
        # what remains is the cost of answering 8 repeats at all, the stand-ins' share included.
        plain = await answered(await long_wav(0, "mp3"), timeout=180)
        plain_bytes = len(plain.files[0][1]) if plain.files else 0
        floor: list[float] = []
        for round_number in range(ROUNDS):
            burst = [await long_wav(n, "mp3") for n in range(REPEATS)]
            await asyncio.sleep(OTHER_AFTER_SECONDS)
            floor.append(await timed(await other_say(salt=300 + round_number)))
            for interaction in burst:
                await timed(interaction)
    print(f"first 6,000-character wav: {first:.2f} s, {first_transcodes} transcode(s)")
    print(f"other server's /say alone: {', '.join(f'{s * 1000:.0f}' for s in idle)} ms")
    print(f"other server's /say during {REPEATS} repeats: {', '.join(f'{s * 1000:.0f}' for s in loaded)} ms")
    print(f"... during {REPEATS} repeats of the mp3 that fits: {', '.join(f'{s * 1000:.0f}' for s in floor)} ms")
    report.add(f"transcodes during {ROUNDS} x {REPEATS} repeats", repeat_transcodes, "", "0", repeat_transcodes == 0)
    report.add("other server's /say alone: median", statistics.median(idle) * 1000, "ms", summary=True)
    report.add(f"other server's /say during {REPEATS} repeats: median", statistics.median(loaded) * 1000, "ms")
    report.add(f"other server's /say during {REPEATS} repeats: worst", max(loaded) * 1000, "ms", summary=True)
    report.add("repeats: slowest answer", max(repeats) * 1000, "ms")
    report.add(
        f"for comparison, during {REPEATS} repeats of the same text as mp3 ({plain_bytes / 1e6:.1f} MB, fits): median",
        statistics.median(floor) * 1000,
        "ms",
    )
    report.note(
        f"one server repeats a cached {LONG_WAV:,}-character wav ({REPEATS} at once, {ROUNDS} rounds) over a "
        f"{UPLOAD_LIMIT // 1024 // 1024} MiB upload limit; another server's {OTHER_SAY:,}-character /say (two "
        f"chunks joined by ffmpeg) runs {OTHER_AFTER_SECONDS:g} s after each burst; times from dispatch to the "
        "answer with the file"
    )
    return report


def main() -> None:
    """Run the benchmark and print its report."""
    asyncio.run(run()).print()


if __name__ == "__main__":
    main()
