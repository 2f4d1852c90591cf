"""The default voice catalogue of the Unmixr stand-in: deterministic, varied, shaped as in the reference."""

from __future__ import annotations

import uuid
from typing import Any

# Catalogue URLs start with this placeholder; the stand-in rewrites it to its own origin when it starts.
CATALOGUE_ORIGIN = "http://unmixr-stand-in.invalid"

BRIAN_ID = "1283979c-87a5-44d5-a8de-4082ba20cc5b"
STEFFAN_ID = "57f0ec2e-bbb7-460f-92d5-e7277669b985"

CATEGORIES = (
    "prebuilt-voices",
    "openai-voices",
    "multilingual-voices",
    "community-shared-voices",
    "animation-voices",
    "child-voices",
    "clones",
    "narration-voices",
    "assistant-voices",
    "audiobook-voices",
    "announcer-voices",
    "gaming-voices",
    "documentary-voices",
    "podcast-voices",
    "advertisement-voices",
    "news-voices",
    "elearning-voices",
    "meditation-voices",
    "chat-voices",
)

# What a new clone may speak, as in the reference's cloned-voice example.
CLONE_LANGUAGES = ("en", "zh", "de", "ja", "fr", "es", "ko", "ar", "ru", "nl", "it", "pl", "pt")

_NAMESPACE = uuid.UUID("6f1c1d2e-5a7b-4c3d-9e8f-0a1b2c3d4e5f")

_MULTILINGUAL = [
    "af-ZA", "am-ET", "ar-EG", "ar-SA", "az-AZ", "bg-BG", "bn-BD", "bn-IN", "bs-BA", "ca-ES", "cs-CZ",
    "cy-GB", "da-DK", "de-AT", "de-CH", "de-DE", "el-GR", "es-ES", "es-MX", "fi-FI", "fr-CA", "fr-FR",
    "he-IL", "hi-IN", "hu-HU", "it-IT", "ja-JP", "ko-KR", "nl-NL", "pl-PL", "pt-BR", "pt-PT", "ru-RU",
    "sv-SE", "tr-TR", "uk-UA", "vi-VN", "zh-CN",
]  # fmt: skip
_ENGLISH_LOCALES = ["en-AU", "en-CA", "en-GB", "en-IE", "en-IN", "en-US"]

_CAPABILITY_SETS = [
    ["speech", "speech:volume", "speech:rate", "speech:pitch", "pause", "emphasize"],
    ["speech", "speech:rate", "pause"],
    ["abbr", "custom_pause"],
    ["speech", "speech:volume", "speech:rate", "speech:pitch", "custom_pause", "intensity"],
    ["pause", "emphasize", "abbr"],
    ["speech", "speech:volume", "speech:pitch"],
]
_EMOTION_SETS = [
    [],
    ["cheerful", "sad", "angry", "excited", "friendly", "hopeful"],
    ["newscast-casual", "newscast-formal"],
    [],
    ["chat", "customerservice", "empathetic"],
    ["whispering", "shouting", "terrified", "unfriendly"],
    ["narration-professional"],
]
_ROLE_SETS = [[], [], ["YoungAdultFemale", "OlderAdultMale"], [], ["Girl", "Boy"]]
_USE_CASES = [
    "Audiobook",
    "Podcast",
    "Advertisement",
    "News",
    "eLearning",
    "Chat",
    "Narration",
    "Assistant",
    "Announcer",
    "Documentary",
    "Gaming",
    "Meditation",
]
_AGES = ["YoungAdult", "Adult", "MiddleAged", "Senior"]
_PERSONALITIES = [
    ["Sincere", "Calm", "Approachable"],
    ["Mature", "Authentic", "Warm"],
    ["Bright", "Energetic"],
    ["Confident", "Clear", "Professional"],
    ["Gentle", "Soothing"],
]

# name, gender, language, quality; all prebuilt-voices, after the six required ones.
_MORE_PREBUILT = [
    ("Guy", "Male", "en-US", "Premium"),
    ("Aria", "Female", "en-US", "Premium"),
    ("Davis", "Male", "en-US", "Standard"),
    ("Sonia", "Female", "en-GB", "Premium"),
    ("Ryan", "Male", "en-GB", "Standard"),
    ("Natasha", "Female", "en-AU", "Premium"),
    ("William", "Male", "en-AU", "Standard"),
    ("Neerja", "Female", "en-IN", "Premium"),
    ("Prabhat", "Male", "en-IN", "Standard"),
    ("Clara", "Female", "en-CA", "Standard"),
    ("Liam", "Male", "en-CA", "Premium"),
    ("Emily", "Female", "en-IE", "Standard"),
    ("Henri", "Male", "fr-FR", "Premium"),
    ("Katja", "Female", "de-DE", "Premium"),
    ("Elsa", "Female", "it-IT", "Premium"),
    ("Diego", "Male", "it-IT", "Standard"),
    ("Elvira", "Female", "es-ES", "Premium"),
    ("Alvaro", "Male", "es-ES", "Standard"),
    ("Dalia", "Female", "es-MX", "Premium"),
    ("Francisca", "Female", "pt-BR", "Premium"),
    ("Antonio", "Male", "pt-BR", "Standard"),
    ("Nanami", "Female", "ja-JP", "Premium"),
    ("Keita", "Male", "ja-JP", "Standard"),
    ("Xiaoxiao", "Female", "zh-CN", "Premium"),
    ("Yunxi", "Male", "zh-CN", "Standard"),
    ("SunHi", "Female", "ko-KR", "Premium"),
    ("Hamed", "Male", "ar-SA", "Standard"),
    ("Fenna", "Female", "nl-NL", "Standard"),
]


def _voice(
    name: str,
    *,
    category: str,
    gender: str,
    language: str,
    index: int,
    voice_id: str | None = None,
    quality: str = "Premium",
    capabilities: list[str] | None = None,
    emotions: list[str] | None = None,
    roles: list[str] | None = None,
    use_cases: list[str] | None = None,
    other_languages: list[str] | None = None,
    locales: list[str] | None = None,
    is_available: bool = True,
    age: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """Build one voice dict in the reference's key order, filling unspecified attributes by rotation."""
    identifier = voice_id or str(uuid.uuid5(_NAMESPACE, f"{category}/{name}"))
    sample = f"{CATALOGUE_ORIGIN}/samples/{identifier}.mp3"
    locale_list = [language] if locales is None else locales
    if use_cases is None:
        use_cases = list(dict.fromkeys([_USE_CASES[index % 12], _USE_CASES[(index * 5 + 3) % 12]]))
    return {
        "uuid": identifier,
        "character": name,
        "gender": gender,
        "language": language,
        "quality": quality,
        "sample_voice_url": sample,
        "emotions": list(_EMOTION_SETS[index % len(_EMOTION_SETS)] if emotions is None else emotions),
        "capabilities": list(_CAPABILITY_SETS[index % len(_CAPABILITY_SETS)] if capabilities is None else capabilities),
        "roles": list(_ROLE_SETS[index % len(_ROLE_SETS)] if roles is None else roles),
        "use_cases": use_cases,
        "other_languages": list(other_languages or []),
        "supported_locales": {
            locale: (sample if locale == language else f"{CATALOGUE_ORIGIN}/samples/{identifier}-{locale}.mp3")
            for locale in locale_list
        },
        "is_available": is_available,
        "date_created": f"2024-{1 + index % 12:02d}-{1 + index % 28:02d}T12:{index % 60:02d}:00.000000Z",
        "is_multilingual": bool(other_languages),
        "wpm": 150 + (index * 7) % 50,
        "is_new": index % 3 == 0,
        "description": description or f"{name}, a {gender.lower()} {language} voice for the stand-in catalogue.",
        "age": age or _AGES[index % len(_AGES)],
        "personality": list(_PERSONALITIES[index % len(_PERSONALITIES)]),
        "avatar_url": f"{CATALOGUE_ORIGIN}/avatars/{identifier}.png",
        "category": category,
    }


def default_voices() -> list[dict[str, Any]]:
    """Return a fresh copy of the default catalogue: 34 prebuilt voices and 12 in other categories."""
    full = ["speech", "speech:volume", "speech:rate", "speech:pitch"]
    prebuilt = "prebuilt-voices"
    voices = [
        _voice(
            "Brian",
            category=prebuilt,
            voice_id=BRIAN_ID,
            gender="Male",
            language="en-US",
            index=0,
            capabilities=[*full, "custom_pause", "intensity"],
            emotions=[],
            roles=[],
            use_cases=["Podcast", "Chat"],
            other_languages=_MULTILINGUAL,
            locales=_ENGLISH_LOCALES,
            age="YoungAdult",
            description="A youthful, cheerful and versatile voice that can handle any task thrown its way.",
        ),
        _voice(
            "Steffan (Express)",
            category=prebuilt,
            voice_id=STEFFAN_ID,
            gender="Male",
            language="en-US",
            index=1,
            capabilities=["abbr", "intensity"],
            emotions=[],
            roles=[],
            use_cases=["Assistant", "Narration"],
            other_languages=_MULTILINGUAL,
            locales=_ENGLISH_LOCALES,
            age="Adult",
            description="HD version of Steffan with a wider range of styles, suited to audiobook narration.",
        ),
        _voice(
            "Jenny",
            category=prebuilt,
            gender="Female",
            language="en-US",
            index=2,
            capabilities=[*full, "pause", "emphasize"],
            emotions=["chat", "customerservice", "newscast-casual", "cheerful", "sad", "excited", "hopeful"],
            roles=[],
            use_cases=["Assistant", "Chat", "eLearning"],
        ),
        _voice("Amelie", category=prebuilt, gender="Female", language="fr-FR", index=3),
        _voice("Hans", category=prebuilt, gender="Male", language="de-DE", index=4),
    ]
    for offset, (name, gender, language, quality) in enumerate(_MORE_PREBUILT):
        index = 5 + offset
        multilingual = _MULTILINGUAL if index % 4 == 0 else None
        voices.append(
            _voice(
                name,
                category=prebuilt,
                gender=gender,
                language=language,
                quality=quality,
                index=index,
                other_languages=multilingual,
            )
        )
    voices.append(
        _voice(
            "Retired Voice",
            category=prebuilt,
            gender="Male",
            language="en-GB",
            index=40,
            is_available=False,
            description="A voice that is no longer offered.",
        )
    )
    others: list[tuple[str, str, str, str, str, list[str], list[str] | None]] = [
        ("Alloy", "openai-voices", "Female", "en-US", "Adult", ["Assistant", "Chat"], []),
        ("Echo", "openai-voices", "Male", "en-US", "Adult", ["Podcast"], []),
        ("Ava (Multilingual)", "multilingual-voices", "Female", "en-US", "YoungAdult", ["Chat"], None),
        ("Marcus (Community)", "community-shared-voices", "Male", "en-US", "MiddleAged", ["Podcast"], None),
        ("Sparky", "animation-voices", "Male", "en-US", "YoungAdult", ["Gaming", "Advertisement"], None),
        ("Ana", "child-voices", "Female", "en-US", "Child", ["Audiobook"], None),
        ("Leo", "child-voices", "Male", "en-GB", "Child", ["Gaming"], None),
        ("Nathan", "narration-voices", "Male", "en-US", "MiddleAged", ["Narration", "Documentary"], None),
        ("Olivia (Storyteller)", "audiobook-voices", "Female", "en-GB", "Adult", ["Audiobook"], None),
        ("Walter", "news-voices", "Male", "en-US", "Senior", ["News", "Announcer"], None),
        ("Serena", "meditation-voices", "Female", "en-US", "Adult", ["Meditation"], None),
        ("Rex", "gaming-voices", "Male", "en-US", "YoungAdult", ["Gaming"], None),
    ]
    for offset, (name, category, gender, language, age, use_cases, capabilities) in enumerate(others):
        voices.append(
            _voice(
                name,
                category=category,
                gender=gender,
                language=language,
                index=41 + offset,
                age=age,
                use_cases=use_cases,
                capabilities=capabilities,
                other_languages=_MULTILINGUAL if category in ("openai-voices", "multilingual-voices") else None,
            )
        )
    return voices
