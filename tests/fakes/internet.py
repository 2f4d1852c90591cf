"""A stand-in for the public internet: DNS answers, and HTTPS hosts at global addresses, all served on 127.0.0.1.

The bot checks that an audio host resolves to global addresses only and then connects to the address it
checked. To test that without the internet, `FakeDNS` answers look-ups from a table (an unknown name fails
like NXDOMAIN), and `internet_session` builds an aiohttp session whose connections to a routed global
address and port land on a local server instead, with TLS checked against a throwaway certificate authority.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

# The names a stand-in HTTPS host answers for: its certificate lists every one.
TLS_NAMES = ("cdn.example.net", "rebind.example.net", "bucket.eu-west.example.net", "hop.example.net")


class FakeDNS(AbstractResolver):
    """Answers look-ups from a table; each name's answers are served in turn, the last one repeating."""

    def __init__(self, records: Mapping[str, Iterable[str]] | None = None) -> None:
        self._answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []
        for name, addresses in (records or {}).items():
            self.add(name, list(addresses))

    def add(self, name: str, addresses: list[str], *then: list[str]) -> None:
        """Answer `name` with `addresses`, then (on later look-ups) with each of `then` in turn."""
        self._answers[name.lower()] = [addresses, *then]

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        answers = self._answers.get(host.lower())
        if not answers:
            raise OSError(socket.EAI_NONAME, f"{host}: name not known")
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        return None


class _RoutedConnector(aiohttp.TCPConnector):
    """Connects a routed (address, port) to a local port; everything else connects as usual."""

    def __init__(self, routes: Mapping[tuple[str, int], int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.routes = dict(routes)
        self.connected: list[tuple[str, int]] = []

    async def _resolve_host(self, host: str, port: int, traces: Any = None) -> list[ResolveResult]:
        # aiohttp "resolves" an address literal to itself here: the one place to reroute it.
        self.connected.append((host, port))
        local = self.routes.get((host, port))
        if local is None:
            return await super()._resolve_host(host, port, traces)
        local_address: ResolveResult = {
            "hostname": host,
            "host": "127.0.0.1",
            "port": local,
            "family": socket.AF_INET,
            "proto": 0,
            "flags": 0,
        }
        return [local_address]


class Authority:
    """A throwaway certificate authority and one certificate for TLS_NAMES, made with the openssl tool."""

    def __init__(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="stand-in-tls-")
        folder = Path(self._directory.name)
        self.certificate = folder / "cert.pem"
        self.key = folder / "key.pem"
        names = ",".join(f"DNS:{name}" for name in TLS_NAMES)
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=stand-in internet",
                "-addext",
                f"subjectAltName={names}",
                "-keyout",
                str(self.key),
                "-out",
                str(self.certificate),
            ],
            check=True,
            capture_output=True,
        )

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificate, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Trusts only this authority: a connection that reaches anything else fails its TLS check."""
        return ssl.create_default_context(cafile=str(self.certificate))

    def close(self) -> None:
        self._directory.cleanup()


class HttpsHost:
    """A local HTTPS server standing for a host on the internet; records what it was asked."""

    def __init__(self, authority: Authority, handler: Any) -> None:
        self._authority = authority
        self._handler = handler
        self.requests: list[web.Request] = []
        self.hosts: list[str] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._authority.server_context())
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        self.hosts.append(request.headers.get("Host", ""))
        response: web.StreamResponse = await self._handler(request)
        return response

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def internet_session(authority: Authority, routes: Mapping[tuple[str, int], int]) -> aiohttp.ClientSession:
    """A session whose connections to each routed (global address, port) reach a local HTTPS host."""
    return aiohttp.ClientSession(connector=_RoutedConnector(routes, ssl=authority.client_context()))


def connected(session: aiohttp.ClientSession) -> list[tuple[str, int]]:
    """The list of every (address, port) a session made by `internet_session` opens a connection to (kept live)."""
    connector = session.connector
    assert isinstance(connector, _RoutedConnector)
    return connector.connected
