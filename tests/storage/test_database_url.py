"""A DATABASE_URL's secrets, in every form asyncpg reads them, are masked wherever the URL is shown."""

from __future__ import annotations

import logging

import pytest

from bot.logs import RedactSecrets
from bot.storage import mask_url, url_secrets

CASES = [
    # (the URL, what it may be shown as, the secrets in it as they could appear in text)
    (
        "postgresql://unmixr:s3cret-pass@db.internal:5432/unmixr",
        "postgresql://unmixr:[redacted]@db.internal:5432/unmixr",
        ["s3cret-pass"],
    ),
    (
        "postgresql://unmixr@db.internal/unmixr?sslmode=require&password=s3cret%2Bpass%21",
        "postgresql://unmixr@db.internal/unmixr?sslmode=require&password=[redacted]",
        ["s3cret%2Bpass%21", "s3cret+pass!"],
    ),
    (
        # A "+" in a query string is a space to asyncpg (parse_qs), the last of several values wins.
        "postgres://unmixr@/unmixr?host=/run/postgresql&password=first+half&password=second+half",
        "postgres://unmixr@/unmixr?host=/run/postgresql&password=[redacted]&password=[redacted]",
        ["first+half", "first half", "second+half", "second half"],
    ),
    (
        "postgresql://unmixr@db.internal/unmixr?sslmode=verify-full&sslkey=/keys/client.key&sslpassword=key-pass-phrase",
        "postgresql://unmixr@db.internal/unmixr?sslmode=verify-full&sslkey=/keys/client.key&sslpassword=[redacted]",
        ["key-pass-phrase"],
    ),
    (
        "postgresql://unmixr@db.internal/unmixr?passfile=/run/secrets/pgpass",
        "postgresql://unmixr@db.internal/unmixr?passfile=[redacted]",
        ["/run/secrets/pgpass"],
    ),
    (
        "postgresql://unmixr:p%40ss-word@db.internal/unmixr?password=other-pass",
        "postgresql://unmixr:[redacted]@db.internal/unmixr?password=[redacted]",
        ["p%40ss-word", "p@ss-word", "other-pass"],
    ),
]


@pytest.mark.parametrize(("url", "shown", "secrets"), CASES, ids=lambda value: str(value)[:40])
def test_every_secret_asyncpg_reads_from_the_url_is_masked(url: str, shown: str, secrets: list[str]) -> None:
    assert mask_url(url) == shown
    found = url_secrets(url)
    for secret in secrets:
        assert secret in found
        assert secret not in mask_url(url)
    # The log filter, given url_secrets as the process's secrets (as the bot does), hides each of them in any line.
    redact = RedactSecrets(found)
    for secret in secrets:
        record = logging.LogRecord("bot", logging.ERROR, __file__, 1, "could not use %s in %s", (secret, url), None)
        redact.filter(record)
        assert secret not in record.getMessage()


def test_a_url_without_secrets_is_shown_whole() -> None:
    url = "postgresql://unmixr@db.internal:5432/unmixr?sslmode=require"
    assert mask_url(url) == url
    assert url_secrets(url) == []


def test_a_url_that_cannot_be_read_is_a_secret_whole() -> None:
    url = "postgresql://unmixr:pass@[::1/unmixr?password=s3cret-pass"
    assert mask_url(url) == "[redacted]"
    assert url_secrets(url) == [url]
