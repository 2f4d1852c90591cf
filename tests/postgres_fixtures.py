"""PostgreSQL for the tests: one throwaway cluster per test session, one fresh database per test.

`TEST_DATABASE_URL` (a superuser's URL) uses a server you already run; otherwise, when Debian's `postgresql`
package is installed, the session starts its own cluster (tests/fakes/postgres.py). Without either, the tests
that need PostgreSQL are skipped, except where `REQUIRE_POSTGRES=1` or `CI=true` is set (as `.ci/run` does),
where that absence is a failure: CI never passes by skipping them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import pytest

from tests.fakes.postgres import INSTALL_HINT, ThrowawayPostgres, create_database, drop_database, server_binaries


def postgres_required() -> bool:
    """Whether a missing PostgreSQL must fail the tests instead of skipping them."""
    return os.environ.get("REQUIRE_POSTGRES", "") not in ("", "0") or os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A superuser URL of a running PostgreSQL (its maintenance database)."""
    given = os.environ.get("TEST_DATABASE_URL", "").strip()
    if given:
        yield given
        return
    if server_binaries() is None:
        reason = f"PostgreSQL is not installed here ({INSTALL_HINT}) and TEST_DATABASE_URL is not set"
        if postgres_required():
            pytest.fail(f"{reason}, but REQUIRE_POSTGRES or CI is set: these tests must run", pytrace=False)
        pytest.skip(reason)
    cluster = ThrowawayPostgres()
    try:
        url = cluster.start()
    except RuntimeError as error:
        cluster.stop()
        pytest.fail(f"could not start a throwaway PostgreSQL: {error}", pytrace=False)
    try:
        yield url
    finally:
        cluster.stop()


@pytest.fixture
async def postgres_database(postgres_url: str) -> AsyncIterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    name, url = await create_database(postgres_url)
    try:
        yield url
    finally:
        await drop_database(postgres_url, name)


def password_as_query(url: str, password: str) -> str:
    """The database URL with its userinfo password left out and `password` given as `?password=` instead
    (percent-encoded), the other form asyncpg accepts."""
    scheme, _, rest = url.partition("://")
    userinfo, _, location = rest.partition("@")
    separator = "&" if "?" in location else "?"
    return f"{scheme}://{userinfo.partition(':')[0]}@{location}{separator}password={quote(password, safe='')}"
