"""Audio: probing, converting and joining clips with ffmpeg, and the on-disk cache of synthesised audio."""

from bot.audio.cache import AudioCache, CachedAudio, cache_key
from bot.audio.processing import (
    PCM_BYTES_PER_SECOND,
    AudioError,
    FFmpegMissingError,
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
    "AudioCache",
    "AudioError",
    "CachedAudio",
    "FFmpegMissingError",
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
