"""Audio: probing, converting and joining clips with ffmpeg (through one safe door), checking clone recordings,
and the on-disk cache of synthesised audio."""

from bot.audio.cache import AudioCache, CachedAudio, cache_key
from bot.audio.ffmpeg import SUPPORTED_FORMATS, AudioError, FFmpegMissingError, Lane
from bot.audio.processing import (
    PCM_BYTES_PER_SECOND,
    ProbeResult,
    concat,
    duration,
    extract_audio,
    ffmpeg_available,
    ffprobe_available,
    probe,
    to_pcm,
    transcode_to_fit,
)

__all__ = [
    "PCM_BYTES_PER_SECOND",
    "SUPPORTED_FORMATS",
    "AudioCache",
    "AudioError",
    "CachedAudio",
    "FFmpegMissingError",
    "Lane",
    "ProbeResult",
    "cache_key",
    "concat",
    "duration",
    "extract_audio",
    "ffmpeg_available",
    "ffprobe_available",
    "probe",
    "to_pcm",
    "transcode_to_fit",
]
