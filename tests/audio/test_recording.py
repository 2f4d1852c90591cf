"""Clone recording checks on streams: the size is checked while the file arrives, before anything else."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from bot.audio.recording import MAX_BYTES, RecordingRejectedError, check_recording
from tests.fakes.recordings import long_mp3

MEGABYTE = bytes(1_000_000)


async def test_a_stream_over_120_mb_is_refused_as_it_arrives_whatever_it_holds() -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += 1
            yield MEGABYTE

    with pytest.raises(RecordingRejectedError, match=r"more than 120 MB .* at most 120 MB") as refused:
        await check_recording(endless(), "huge.wav")
    assert f"{MAX_BYTES + 1_000_000:,} bytes arrived" in refused.value.message
    assert sent == MAX_BYTES // len(MEGABYTE) + 1


async def test_a_recording_in_the_range_is_returned_as_uploaded() -> None:
    recording = long_mp3(60)

    async def slices() -> AsyncIterator[bytes]:
        for start in range(0, len(recording), 4096):
            yield recording[start : start + 4096]

    checked = await check_recording(slices(), "speech.mp3")
    # An open file to stream from, whose name is already gone: nothing is left on disk whatever happens next.
    assert checked.audio.read() == recording
    assert os.fstat(checked.audio.fileno()).st_nlink == 0
    await checked.close()
    assert (checked.filename, checked.content_type) == ("speech.mp3", "audio/mpeg")
    assert checked.seconds == pytest.approx(60, abs=0.2)
