"""Tests for orchestrator.run.fetch (real HTTP on localhost, data:/blob: URLs) and
orchestrator.netpolicy (the address policy)."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from orchestrator.netpolicy import PolicyResolver, address_allowed, make_connector
from orchestrator.run.fetch import (
    HEAD_BYTES,
    AddressNotAllowed,
    AddressPolicy,
    FetchLimits,
    PolicyConnector,
    fetch,
)

MiB = 1024 * 1024
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


class Sessions:
    """Creates client sessions for a test and records every request they start."""

    def __init__(self) -> None:
        self.sessions: list[aiohttp.ClientSession] = []
        self.requested: list[str] = []

    def make(
        self, block_private: bool | AddressPolicy = False, *, policy: bool = True
    ) -> aiohttp.ClientSession:
        async def on_start(
            _s: aiohttp.ClientSession,
            _ctx: SimpleNamespace,
            params: aiohttp.TraceRequestStartParams,
        ) -> None:
            self.requested.append(str(params.url))

        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(on_start)
        connector = make_connector(block_private) if policy else aiohttp.TCPConnector()
        session = aiohttp.ClientSession(connector=connector, trace_configs=[trace])
        self.sessions.append(session)
        return session


@pytest.fixture
async def sessions() -> AsyncIterator[Sessions]:
    made = Sessions()
    yield made
    for session in made.sessions:
        await session.close()


@pytest.fixture
async def release() -> AsyncIterator[asyncio.Event]:
    """An event handlers wait on; only set at teardown, so that they can finish."""
    event = asyncio.Event()
    yield event
    event.set()


def app_with(
    routes: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]],
) -> tuple[web.Application, dict[str, int]]:
    hits: dict[str, int] = {}

    def counted(
        path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapper(request: web.Request) -> web.StreamResponse:
            hits[path] = hits.get(path, 0) + 1
            return await handler(request)

        return wrapper

    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, counted(path, handler))
    return app, hits


def url_of(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


# --------------------------------------------------------------------------- http basics


async def test_200_returns_body_and_head(aiohttp_server: ServerFactory, sessions: Sessions) -> None:
    body = bytes(range(256)) * 3

    async def handler(_r: web.Request) -> web.Response:
        return web.Response(body=body)

    app, _ = app_with({"/f": handler})
    server = await aiohttp_server(app)
    result = await fetch(sessions.make(), url_of(server, "/f"), FetchLimits())
    assert result.status == 200
    assert result.data == body
    assert result.error == ""
    assert result.ok
    assert result.head == body[:HEAD_BYTES]
    assert result.content == base64.b64encode(body[:128]).decode()


async def test_body_is_not_decompressed(aiohttp_server: ServerFactory, sessions: Sessions) -> None:
    """The file is stored as served: a gzip Content-Encoding is not undone, and not asked for."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Accept-Encoding", ""))
        return web.Response(body=b"\x1f\x8bnot really gzip", headers={"Content-Encoding": "gzip"})

    app, _ = app_with({"/gz": handler})
    server = await aiohttp_server(app)
    result = await fetch(sessions.make(), url_of(server, "/gz"), FetchLimits())
    assert result.data == b"\x1f\x8bnot really gzip", result.error
    assert seen == ["identity"]


async def test_404_gives_status_and_head_of_body(
    aiohttp_server: ServerFactory, sessions: Sessions
) -> None:
    async def handler(_r: web.Request) -> web.Response:
        return web.Response(status=404, body=b"n" * 1000)

    app, _ = app_with({"/missing": handler})
    server = await aiohttp_server(app)
    url = url_of(server, "/missing")
    result = await fetch(sessions.make(), url, FetchLimits())
    assert result.status == 404
    assert result.data is None
    assert not result.ok
    assert result.error == f"GET {url}: HTTP 404"
    assert result.head == b"n" * HEAD_BYTES


async def test_streamed_body_over_cap_fails_without_reading_it_all(
    aiohttp_server: ServerFactory, sessions: Sessions, release: asyncio.Event
) -> None:
    """10 MiB, chunked, cap 1 MiB: the server stalls after 2 MiB, so a client that read
    everything would time out instead of failing on size."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        chunk = b"z" * (64 * 1024)
        for _ in range(32):  # 2 MiB
            await resp.write(chunk)
        await release.wait()
        for _ in range(128):  # 8 MiB more
            await resp.write(chunk)
        return resp

    app, _ = app_with({"/big": handler})
    server = await aiohttp_server(app)
    url = url_of(server, "/big")
    limits = FetchLimits(max_bytes=1 * MiB, timeout_s=20)
    result = await fetch(sessions.make(), url, limits)
    assert result.error == f"GET {url}: body larger than 1 MiB"
    assert result.status == 200
    assert result.data is None
    assert result.head == b"z" * HEAD_BYTES


async def test_declared_length_over_cap_fails_before_reading(
    aiohttp_server: ServerFactory, sessions: Sessions, release: asyncio.Event
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = 10 * MiB
        await resp.prepare(request)
        await resp.write(b"y" * 200)
        await release.wait()
        return resp

    app, _ = app_with({"/declared": handler})
    server = await aiohttp_server(app)
    url = url_of(server, "/declared")
    result = await fetch(sessions.make(), url, FetchLimits(max_bytes=MiB, timeout_s=20))
    assert result.error == f"GET {url}: body larger than 1 MiB (Content-Length is {10 * MiB})"
    assert result.status == 200
    assert result.head == b"y" * HEAD_BYTES


async def test_slow_server_times_out(
    aiohttp_server: ServerFactory, sessions: Sessions, release: asyncio.Event
) -> None:
    async def handler(_r: web.Request) -> web.Response:
        await release.wait()
        return web.Response(body=b"too late")

    app, hits = app_with({"/slow": handler})
    server = await aiohttp_server(app)
    url = url_of(server, "/slow")
    result = await fetch(sessions.make(), url, FetchLimits(timeout_s=0.2))
    assert hits == {"/slow": 1}
    assert result.status == 0
    assert result.data is None
    assert result.error == f"GET {url}: timed out after 0.2 s"


async def test_timeout_in_the_body_keeps_status_and_head(
    aiohttp_server: ServerFactory, sessions: Sessions, release: asyncio.Event
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = 100
        await resp.prepare(request)
        await resp.write(b"0123456789")
        await release.wait()
        return resp

    app, _ = app_with({"/stall": handler})
    server = await aiohttp_server(app)
    url = url_of(server, "/stall")
    result = await fetch(sessions.make(), url, FetchLimits(timeout_s=0.3))
    assert result.error == f"GET {url}: timed out after 0.3 s"
    assert result.status == 200
    assert result.data is None
    assert result.head == b"0123456789"


async def test_connection_refused(sessions: Sessions) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/file"
    result = await fetch(sessions.make(), url, FetchLimits(timeout_s=10))
    assert result.status == 0
    assert result.data is None
    assert result.error == f"GET {url}: connection refused"


class FailingResolver(AbstractResolver):
    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        pass


async def test_dns_failure_is_reported() -> None:
    connector = PolicyConnector(False, inner_resolver=FailingResolver())
    async with aiohttp.ClientSession(connector=connector) as session:
        result = await fetch(session, "http://nowhere.invalid/a.txt", FetchLimits())
    assert result.status == 0
    assert result.error == (
        "GET http://nowhere.invalid/a.txt: cannot resolve host 'nowhere.invalid' "
        "(Name or service not known)"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty URL (expected http://, https://, data: or blob:)"),
        ("   ", "empty URL (expected http://, https://, data: or blob:)"),
        (
            "ftp://example.com/x",
            "GET ftp://example.com/x: unsupported URL scheme 'ftp' "
            "(use http, https, data: or blob:)",
        ),
        (
            "example.com/file.txt",
            "GET example.com/file.txt: not an absolute URL "
            "(expected http://, https://, data: or blob:)",
        ),
        ("http:///file.txt", "GET http:///file.txt: the URL has no host"),
        ("http://user:secret@[::1/", "GET http://user:secret@[::1/: invalid URL"),
    ],
)
async def test_bad_urls(sessions: Sessions, url: str, message: str) -> None:
    result = await fetch(sessions.make(), url, FetchLimits())
    assert result.status == 0
    assert result.data is None
    assert result.error.startswith(message)
    assert sessions.requested == []


async def test_credentials_are_not_echoed(sessions: Sessions) -> None:
    result = await fetch(sessions.make(), "ftp://user:hunter2@example.com/x", FetchLimits())
    assert "hunter2" not in result.error
    assert result.error.startswith("GET ftp://example.com/x: unsupported URL scheme")


# --------------------------------------------------------------------------- redirects


async def test_redirects_are_followed(aiohttp_server: ServerFactory, sessions: Sessions) -> None:
    async def start(_r: web.Request) -> web.Response:
        raise web.HTTPFound("middle")  # relative

    async def middle(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(str(request.url.with_path("/end")))  # absolute

    async def end(_r: web.Request) -> web.Response:
        return web.Response(body=b"arrived")

    app, hits = app_with({"/dir/start": start, "/dir/middle": middle, "/end": end})
    server = await aiohttp_server(app)
    result = await fetch(sessions.make(), url_of(server, "/dir/start"), FetchLimits())
    assert (result.status, result.data, result.error) == (200, b"arrived", "")
    assert hits == {"/dir/start": 1, "/dir/middle": 1, "/end": 1}


async def test_redirect_loop_stops(aiohttp_server: ServerFactory, sessions: Sessions) -> None:
    async def loop(_r: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    app, hits = app_with({"/loop": loop})
    server = await aiohttp_server(app)
    url = url_of(server, "/loop")
    result = await fetch(sessions.make(), url, FetchLimits(max_redirects=3))
    assert result.status == 302
    assert result.data is None
    assert result.error == f"GET {url}: more than 3 redirects"
    assert hits == {"/loop": 4}


async def test_redirect_to_metadata_address_is_refused(
    aiohttp_server: ServerFactory, sessions: Sessions
) -> None:
    target = "http://169.254.169.254/latest/meta-data/"

    async def hop(_r: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(target)

    app, _ = app_with({"/hop": hop})
    server = await aiohttp_server(app)
    url = url_of(server, "/hop")
    result = await fetch(sessions.make(), url, FetchLimits())
    assert result.status == 0
    assert result.error == (
        f"GET {url} (redirected to {target}): address 169.254.169.254 is link-local and not allowed"
    )
    assert sessions.requested == [url]


async def test_redirect_to_other_scheme_is_refused(
    aiohttp_server: ServerFactory, sessions: Sessions
) -> None:
    async def hop(_r: web.Request) -> web.Response:
        raise web.HTTPFound("file:///etc/passwd")

    app, _ = app_with({"/hop": hop})
    server = await aiohttp_server(app)
    result = await fetch(sessions.make(), url_of(server, "/hop"), FetchLimits())
    assert result.data is None
    assert "(redirected to file:///etc/passwd): unsupported URL scheme 'file'" in result.error


# --------------------------------------------------------------------------- data: and blob:


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("data:,hello%20world", b"hello world"),
        ("data:text/plain;base64,aGVsbG8gd29ybGQ=", b"hello world"),
        ("data:;base64,aGVsbG8", b"hello"),  # padding left out
        ("data:application/octet-stream;base64,AAEC%2F%2F8%3D", b"\x00\x01\x02\xff\xff"),
        ("data:;base64,aGVs%0AbG8=", b"hello"),  # a line break inside base64
        ("DATA:text/plain;charset=utf-8,%E2%9C%93", "✓".encode()),
        ("data:,", b""),
    ],
)
async def test_data_urls(sessions: Sessions, url: str, data: bytes) -> None:
    result = await fetch(sessions.make(), url, FetchLimits())
    assert (result.status, result.data, result.error) == (200, data, "")
    assert result.head == data[:HEAD_BYTES]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("data:text/plain;base64", "bad data: URL: no ',' between the media type and the data"),
        ("data:;base64,@@@@", "bad data: URL: invalid base64"),
        ("data:;base64,abcde", "bad data: URL: invalid base64 (truncated"),
        ("data:,100%", "bad data: URL: '%' at position 3 of the data is not followed by"),
        ("data:,%zz", "bad data: URL: '%' at position 0 of the data is not followed by"),
    ],
)
async def test_malformed_data_urls(sessions: Sessions, url: str, message: str) -> None:
    result = await fetch(sessions.make(), url, FetchLimits())
    assert result.status == 0
    assert result.data is None
    assert result.error.startswith(message)


@pytest.mark.parametrize("url", ["data:,hello", "data:;base64,aGVsbG8=", "data:;base64,aGVsbA"])
async def test_data_url_over_cap(sessions: Sessions, url: str) -> None:
    result = await fetch(sessions.make(), url, FetchLimits(max_bytes=3))
    assert result.status == 0
    assert result.data is None
    assert result.error == "data: URL: data larger than 3 bytes"


async def test_blob_with_reader(sessions: Sessions) -> None:
    asked: list[str] = []

    async def reader(digest: str) -> bytes | None:
        asked.append(digest)
        return b"blob body" if digest == "abc123" else None

    found = await fetch(sessions.make(), "blob:abc123", FetchLimits(), reader)
    assert (found.status, found.data, found.error) == (200, b"blob body", "")
    assert found.head == b"blob body"
    missing = await fetch(sessions.make(), "blob:def456", FetchLimits(), reader)
    assert (missing.status, missing.data) == (404, None)
    assert missing.error == "blob:def456: no blob with this hash (HTTP 404)"
    too_big = await fetch(sessions.make(), "blob:abc123", FetchLimits(max_bytes=4), reader)
    assert (too_big.status, too_big.data) == (200, None)
    assert too_big.error == "blob:abc123: blob larger than 4 bytes"
    assert asked == ["abc123", "def456", "abc123"]


async def test_blob_with_malformed_hash_does_not_reach_the_reader(sessions: Sessions) -> None:
    async def reader(digest: str) -> bytes | None:
        raise AssertionError(f"reader called with {digest!r}")

    for url in ("blob:", "blob:../../etc/passwd", "blob:a/b"):
        result = await fetch(sessions.make(), url, FetchLimits(), reader)
        assert result.status == 0
        assert "not a blob hash" in result.error


async def test_blob_without_reader(sessions: Sessions) -> None:
    result = await fetch(sessions.make(), "blob:abc123", FetchLimits())
    assert result.status == 0
    assert result.data is None
    assert result.error == "blob:abc123: blob: URLs cannot be used here (no blob store)"


# --------------------------------------------------------------------------- address policy


def secret_app() -> tuple[web.Application, dict[str, int]]:
    async def secret(_r: web.Request) -> web.Response:
        return web.Response(body=b"internal secret")

    return app_with({"/secret": secret})


async def test_loopback_refused_when_blocking_private(
    aiohttp_server: ServerFactory, sessions: Sessions
) -> None:
    app, hits = secret_app()
    server = await aiohttp_server(app)
    url = f"http://127.0.0.1:{server.port}/secret"
    result = await fetch(sessions.make(True), url, FetchLimits(block_private=True))
    assert result.status == 0
    assert result.data is None
    assert result.head == b""
    assert result.error == f"GET {url}: address 127.0.0.1 is loopback and not allowed"
    assert hits == {}


async def test_loopback_allowed_when_not_blocking_private(
    aiohttp_server: ServerFactory, sessions: Sessions
) -> None:
    app, hits = secret_app()
    server = await aiohttp_server(app)
    url = f"http://127.0.0.1:{server.port}/secret"
    result = await fetch(sessions.make(False), url, FetchLimits(block_private=False))
    assert (result.status, result.data, result.error) == (200, b"internal secret", "")
    assert hits == {"/secret": 1}


async def test_connector_refuses_a_host_name_resolving_to_loopback(
    aiohttp_server: ServerFactory, sessions: Sessions
) -> None:
    """The policy holds on the resolved address: no request leaves for 'localhost'."""
    app, hits = secret_app()
    server = await aiohttp_server(app)
    url = f"http://localhost:{server.port}/secret"
    result = await fetch(sessions.make(True), url, FetchLimits(block_private=True))
    assert result.status == 0
    assert result.data is None
    assert "(of host 'localhost') is loopback and not allowed" in result.error
    assert hits == {}


async def test_session_without_the_policy_connector_is_a_caller_bug(
    aiohttp_server: ServerFactory, sessions: Sessions
) -> None:
    app, hits = secret_app()
    server = await aiohttp_server(app)
    url = f"http://localhost:{server.port}/secret"
    with pytest.raises(ValueError, match=r"connector=make_connector\(True\)"):
        await fetch(sessions.make(policy=False), url, FetchLimits(block_private=True))
    with pytest.raises(ValueError, match="block_private=False but the limits say"):
        await fetch(sessions.make(False), url, FetchLimits(block_private=True))
    assert hits == {}
    assert sessions.requested == []
    # data: and blob: URLs need no connection, so any session will do for them.
    result = await fetch(sessions.make(policy=False), "data:,x", FetchLimits(block_private=True))
    assert result.data == b"x"


@pytest.mark.parametrize(
    ("url", "address", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local"),
        ("https://169.254.169.254/", "169.254.169.254", "link-local"),
        ("http://[::ffff:169.254.169.254]/", "::ffff:a9fe:a9fe", "link-local"),
        ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe", "link-local"),
        ("http://2852039166/", "169.254.169.254", "link-local"),
        ("http://0xa9.0xfe.0xa9.0xfe/", "169.254.169.254", "link-local"),
        ("http://169.254.169.254./", "169.254.169.254", "link-local"),
        ("http://[fe80::1]/", "fe80::1", "link-local"),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254", "a cloud metadata address"),
        ("http://0.0.0.0:8080/", "0.0.0.0", "in 0.0.0.0/8 ('this network')"),
        ("http://224.0.0.1/", "224.0.0.1", "multicast"),
    ],
)
async def test_metadata_and_link_local_always_refused_without_traffic(
    sessions: Sessions, url: str, address: str, reason: str
) -> None:
    result = await fetch(sessions.make(False), url, FetchLimits(block_private=False))
    assert result.status == 0
    assert result.data is None
    assert f": address {address} " in result.error
    assert result.error.endswith(f" is {reason} and not allowed"), result.error
    assert sessions.requested == []


class FixedResolver(AbstractResolver):
    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("addresses", "block_private", "refused"),
    [
        (("93.184.216.34",), False, None),
        (("93.184.216.34",), True, None),
        (("169.254.169.254",), False, "169.254.169.254"),
        (("93.184.216.34", "169.254.169.254"), False, "169.254.169.254"),
        (("10.1.2.3",), False, None),
        (("10.1.2.3",), True, "10.1.2.3"),
        (("2606:4700::1", "fd12::1"), True, "fd12::1"),
        (("not-an-address",), False, "not-an-address"),
    ],
)
async def test_policy_resolver(
    addresses: tuple[str, ...], block_private: bool, refused: str | None
) -> None:
    resolver = PolicyResolver(FixedResolver(*addresses), block_private)
    if refused is None:
        results = await resolver.resolve("host.example", 443)
        assert [r["host"] for r in results] == list(addresses)
    else:
        with pytest.raises(AddressNotAllowed) as caught:
            await resolver.resolve("host.example", 443)
        assert caught.value.address == refused
        assert caught.value.host == "host.example"
        assert f"address {refused} (of host 'host.example') is" in str(caught.value)
    await resolver.close()


async def test_make_connector_enforces_the_policy_on_host_names() -> None:
    """Independently of fetch(): a plain request through the connector is refused."""
    connector = make_connector(True)
    assert isinstance(connector, PolicyConnector)
    assert connector.block_private is True
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(aiohttp.ClientConnectorError) as caught:
            await session.get("http://localhost:1/")
    assert isinstance(caught.value.os_error, AddressNotAllowed)


@pytest.mark.parametrize(
    ("address", "allowed_open", "allowed_blocking"),
    [
        ("93.184.216.34", True, True),
        ("8.8.8.8", True, True),
        ("2606:4700:4700::1111", True, True),
        ("169.254.169.254", False, False),
        ("169.254.0.1", False, False),
        ("fe80::1", False, False),
        ("fe80::1%eth0", False, False),
        ("fd00:ec2::254", False, False),
        ("0.0.0.0", False, False),
        ("0.1.2.3", False, False),
        ("224.0.0.251", False, False),
        ("239.255.255.250", False, False),
        ("255.255.255.255", False, False),
        ("ff02::1", False, False),
        ("::ffff:169.254.169.254", False, False),
        ("64:ff9b::169.254.169.254", False, False),
        ("127.0.0.1", True, False),
        ("127.255.255.254", True, False),
        ("::1", True, False),
        ("::", True, False),
        ("10.0.0.1", True, False),
        ("172.16.0.1", True, False),
        ("172.31.255.255", True, False),
        ("172.32.0.1", True, True),
        ("192.168.1.1", True, False),
        ("100.64.0.1", True, False),
        ("100.127.255.255", True, False),
        ("100.128.0.1", True, True),
        ("fc00::1", True, False),
        ("fd12:3456::1", True, False),
        ("::ffff:10.0.0.1", True, False),
        ("::ffff:8.8.8.8", True, True),
        # IPv4-compatible (::a.b.c.d): judged by the IPv4 address, :: and ::1 stay IPv6's own.
        ("::169.254.169.254", False, False),
        ("::127.0.0.1", True, False),
        ("::10.0.0.1", True, False),
        ("::8.8.8.8", True, True),
        # 6to4 (2002:aabb:ccdd::/48): the IPv4 address is bits 16-48.
        ("2002:a9fe:a9fe::1", False, False),
        ("2002:7f00:1::", True, False),
        ("2002:c0a8:101::5", True, False),
        ("2002:808:808::1", True, True),
        # Teredo (2001::/32): its client address, stored inverted in the last 32 bits.
        ("2001:0:4136:e378:8000:63bf:5601:5656", False, False),  # client 169.254.169.169
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", True, False),  # client 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", True, True),  # client 8.8.8.8
    ],
)
def test_address_allowed(address: str, allowed_open: bool, allowed_blocking: bool) -> None:
    ip = ipaddress.ip_address(address)
    assert address_allowed(ip, block_private=False) is allowed_open
    assert address_allowed(ip, block_private=True) is allowed_blocking


# --------------------------------------------------------------------------- allowlist


async def test_an_allowlisted_network_opens_exactly_that_network(
    aiohttp_server: ServerFactory, sessions: Sessions
) -> None:
    app, hits = secret_app()
    server = await aiohttp_server(app)
    url = f"http://127.0.0.1:{server.port}/secret"
    policy = AddressPolicy.parse(True, ["127.0.0.1/32"])
    result = await fetch(sessions.make(policy), url, FetchLimits(block_private=policy))
    assert (result.status, result.data, result.error) == (200, b"internal secret", "")
    other = AddressPolicy.parse(True, ["127.0.0.2/32", "10.0.0.0/8"])
    result = await fetch(sessions.make(other), url, FetchLimits(block_private=other))
    assert result.error == f"GET {url}: address 127.0.0.1 is loopback and not allowed"
    assert hits == {"/secret": 1}


async def test_an_allowlisted_host_name_opens_its_addresses_only(
    aiohttp_server: ServerFactory, sessions: Sessions
) -> None:
    app, hits = secret_app()
    server = await aiohttp_server(app)
    policy = AddressPolicy.parse(True, ["localhost"])
    named = f"http://localhost:{server.port}/secret"
    result = await fetch(sessions.make(policy), named, FetchLimits(block_private=policy))
    assert result.data == b"internal secret"
    literal = f"http://127.0.0.1:{server.port}/secret"
    result = await fetch(sessions.make(policy), literal, FetchLimits(block_private=policy))
    assert "loopback and not allowed" in result.error
    assert hits == {"/secret": 1}


def test_the_allowlist_never_opens_link_local_or_multicast() -> None:
    policy = AddressPolicy.parse(True, ["169.254.0.0/16", "224.0.0.0/4", "*.internal"])
    for address in ("169.254.169.254", "224.0.0.1", "::ffff:169.254.169.254"):
        assert policy.refusal(ipaddress.ip_address(address), "meta.internal") is not None
    assert policy.refusal(ipaddress.ip_address("10.1.1.1"), "files.internal") is None
    assert policy.refusal(ipaddress.ip_address("10.1.1.1"), "internal.evil.com") == "private"


@pytest.mark.parametrize("entry", ["bad host!", "10.0.0.0/33", "*.", "a..b", ""])
def test_malformed_allowlist_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="allowlist entry"):
        AddressPolicy.parse(True, [entry])
