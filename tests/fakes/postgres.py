"""A throwaway PostgreSQL for the tests and benchmarks: a real server (Debian's `postgresql` package), not a stand-in.

The cluster lives in a temporary folder and listens only on a Unix socket there (no TCP port to collide with
another run on the machine), with password authentication so that the URLs carry a real secret. initdb and
pg_ctl refuse to run as root, so as root they run as the `postgres` user the package creates. Durability is
switched off (fsync, synchronous commit) unless asked for: the data is thrown away anyway.

Run `python -m tests.fakes.postgres` to start one by hand: it prints the URL and stops the cluster on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import asyncpg

USER = "unmixr"
SERVER_USER = "postgres"
# Where Debian installs the server programs, one folder per major version.
BINARY_FOLDERS = "/usr/lib/postgresql/*/bin"
INSTALL_HINT = "apt-get install postgresql"
# The clusters' folders, each with the id of the process that owns it.
PREFIX = "unmixr-pg-"
OWNER_FILE = "owner"


def server_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl (the newest version installed), or None when there is no server."""
    found = shutil.which("initdb")
    if found is not None and shutil.which("pg_ctl") is not None:
        return Path(found).parent
    folders = sorted(glob.glob(BINARY_FOLDERS), key=lambda folder: int(Path(folder).parent.name.split(".")[0]))
    for folder in reversed(folders):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary folder: start(), use admin_url, stop() (which deletes everything)."""

    def __init__(self, *, durable: bool = False) -> None:
        # durable: keep PostgreSQL's own defaults (fsync, synchronous commit), as a benchmark should.
        self.durable = durable
        self.password = secrets.token_urlsafe(18)
        self.directory: Path | None = None
        self._binaries: Path | None = None
        self._as_user: list[str] = []

    @property
    def socket_directory(self) -> Path:
        """The folder holding the server's Unix socket."""
        if self.directory is None:
            raise RuntimeError("the cluster is not started")
        return self.directory

    def url(self, database: str = "postgres") -> str:
        """A postgresql:// URL for one database of the cluster, as the superuser with its password."""
        return (
            f"postgresql://{USER}:{quote(self.password, safe='')}@/{database}"
            f"?host={quote(str(self.socket_directory), safe='/')}"
        )

    @property
    def admin_url(self) -> str:
        """The URL of the maintenance database, for creating and dropping the tests' databases."""
        return self.url()

    def start(self, timeout: float = 60.0) -> str:
        """Create and start the cluster; return its admin URL."""
        binaries = server_binaries()
        if binaries is None:
            raise RuntimeError(f"PostgreSQL's server is not installed ({INSTALL_HINT})")
        self._binaries = binaries
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", SERVER_USER, "--"]
        self._reap_abandoned()
        self.directory = Path(tempfile.mkdtemp(prefix=PREFIX))
        (self.directory / OWNER_FILE).write_text(str(os.getpid()))
        password_file = self.directory / "password"
        password_file.write_text(self.password + "\n")
        if os.geteuid() == 0:
            # initdb and the server refuse root: hand the folder to the package's own server user.
            account = pwd.getpwnam(SERVER_USER)
            for path in (self.directory, password_file):
                os.chown(path, account.pw_uid, account.pw_gid)
        data = self.directory / "data"
        self._run(
            "initdb",
            "--pgdata",
            str(data),
            "--username",
            USER,
            "--pwfile",
            str(password_file),
            "--auth",
            "scram-sha-256",
            "--encoding",
            "UTF8",
            "--locale",
            "C.UTF-8",
            "--no-sync",
        )
        password_file.unlink()
        settings = [
            "-c listen_addresses=''",
            f"-c unix_socket_directories='{self.directory}'",
            "-c max_connections=300",
        ]
        if not self.durable:
            settings += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        options = " ".join(settings)
        self._run(
            "pg_ctl",
            "--pgdata",
            str(data),
            "--log",
            str(self.directory / "server.log"),
            "--wait",
            "--timeout",
            str(int(timeout)),
            "--options",
            options,
            "start",
        )
        return self.admin_url

    def stop(self) -> None:
        """Stop the server at once and delete its folder."""
        if self.directory is None:
            return
        with contextlib.suppress(RuntimeError, FileNotFoundError):
            self._run("pg_ctl", "--pgdata", str(self.directory / "data"), "--mode", "immediate", "--wait", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None

    def _reap_abandoned(self) -> None:
        # A run killed outright (no teardown) leaves its server running: stop those whose owner is gone.
        for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
            try:
                owner = int((folder / OWNER_FILE).read_text())
                os.kill(owner, 0)
            except ProcessLookupError:
                with contextlib.suppress(RuntimeError, FileNotFoundError):
                    self._run("pg_ctl", "--pgdata", str(folder / "data"), "--mode", "immediate", "--wait", "stop")
                shutil.rmtree(folder, ignore_errors=True)
            except (OSError, ValueError):
                continue  # not ours to judge: unreadable, or its owner is alive (PermissionError included)

    def server_log(self) -> str:
        """The end of the server's log, to explain a failure."""
        if self.directory is None:
            return ""
        path = self.directory / "server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def _run(self, program: str, *arguments: str) -> None:
        assert self._binaries is not None
        command = [*self._as_user, str(self._binaries / program), *arguments]
        completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.directory)
        if completed.returncode != 0:
            raise RuntimeError(
                f"{program} failed with status {completed.returncode}: {completed.stderr.strip()[-2000:]}\n"
                f"{self.server_log()}"
            )


def database_url(admin_url: str, database: str) -> str:
    """The admin URL with another database name (the path part of the URL)."""
    head, _, tail = admin_url.partition("@")
    rest = tail.split("?", 1)
    location = rest[0].rsplit("/", 1)[0]
    query = f"?{rest[1]}" if len(rest) > 1 else ""
    return f"{head}@{location}/{database}{query}"


async def create_database(admin_url: str, prefix: str = "unmixr_test") -> tuple[str, str]:
    """Create an empty database with a fresh name; return its name and its URL."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    connection = await asyncpg.connect(admin_url)
    try:
        # The name is ours (a prefix and hex digits), never outside input; CREATE DATABASE takes no parameters.
        try:
            # Copying the template's files is 3x faster than logging them (PostgreSQL 15 and later).
            await connection.execute(f'CREATE DATABASE "{name}" STRATEGY = FILE_COPY')
        except asyncpg.PostgresSyntaxError:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return name, database_url(admin_url, name)


async def drop_database(admin_url: str, name: str) -> None:
    """Drop a database made by create_database, closing whatever is still connected to it."""
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def main() -> None:
    """Start a cluster, print its URL, and stop it on Ctrl-C."""
    cluster = ThrowawayPostgres()
    print(cluster.start(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
