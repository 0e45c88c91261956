"""Download the files a mission lists, with size, time and address caps.

A mission names files as ``{"name": "url"}``. :func:`fetch` turns one URL into a :class:`Fetched`:
``http``/``https`` (streamed, capped, redirects followed by hand), ``data:`` URLs (RFC 2397) and
``blob:<hash>`` (read from the blob store through a callback). Whatever the user wrote, ``fetch``
answers with a result and an actionable message; it raises only when the judge itself is broken.

Address policy: a download must never reach the host's link-local network (cloud metadata at
169.254.169.254 lives there), and, when ``block_private`` is set, nothing on loopback or private
networks either. The policy is applied to the addresses the connection actually uses, so a host
name that resolves to a forbidden address (or is re-bound to one between two look-ups) is refused
before anything is sent. That is the job of the connector: the session given to :func:`fetch` must
be created with ``connector=make_connector(limits.block_private)`` (``fetch`` checks, and raises
``ValueError`` otherwise)::

    async with aiohttp.ClientSession(connector=make_connector(limits.block_private)) as session:
        result = await fetch(session, url, limits)

Literal IP hosts never reach a resolver, so :func:`fetch` checks those itself (including legacy
forms such as ``http://2852039166/``), on the first URL and on every redirect.

An operator who blocks private addresses can still open exactly what they need with an
:class:`AddressPolicy` allowlist: networks (``10.1.2.0/24``, ``fd00::1``) whose addresses are
allowed, and host names (``files.internal``, or ``*.corp.example`` for its subdomains) whose
resolved addresses are. The allowlist never opens the always-refused ranges (link-local with the
cloud metadata service, multicast, broadcast). Wherever a ``block_private`` flag is taken, an
:class:`AddressPolicy` may be given instead.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

import aiohttp
from aiohttp import hdrs
from yarl import URL

from orchestrator.netpolicy import (
    AddressNotAllowed,
    AddressPolicy,
    PolicyConnector,
    as_policy,
    literal_ip,
    refusal_reason,
)

__all__ = [
    "HEAD_BYTES",
    "BlobReader",
    "FetchLimits",
    "Fetched",
    "fetch",
]

BlobReader = Callable[[str], Awaitable[bytes | None]]

HEAD_BYTES = 128
"""How many leading bytes of a body :attr:`Fetched.head` keeps."""

_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Ask for the bytes as stored: the size cap then counts what is written to the sandbox, and no
# compressed body can expand past the cap inside the client.
_REQUEST_HEADERS = {hdrs.ACCEPT_ENCODING: "identity"}
_SHOWN_URL_CHARS = 200


@dataclass(frozen=True)
class FetchLimits:
    """Caps for one download: body size in bytes, total wall time, address policy, redirects."""

    max_bytes: int = 64 * 1024 * 1024
    timeout_s: float = 30.0
    block_private: bool | AddressPolicy = False
    max_redirects: int = 5


@dataclass(frozen=True)
class Fetched:
    """The outcome of one download.

    ``status`` is the HTTP status of the last response received for the URL that was finally
    requested (after redirects), 0 when there was none; ``data`` is the body, present only when the
    download succeeded; ``error`` is ``""`` on success, else a message naming the URL and what to
    fix. ``head`` holds the first :data:`HEAD_BYTES` bytes of whatever body was received, also for
    failures (a 404 page, the start of a body that was too large).

    A status of 200 does not by itself mean success (the body may have been too large or cut off):
    test :attr:`ok`, or ``data is not None``.
    """

    status: int
    data: bytes | None
    error: str
    head: bytes = b""

    @property
    def ok(self) -> bool:
        """True when the download succeeded and ``data`` holds the whole body."""
        return self.data is not None and not self.error

    @property
    def content(self) -> str:
        """Base64 of :attr:`head`, as a mission result reports it."""
        return base64.b64encode(self.head).decode("ascii")


# --------------------------------------------------------------------------- helpers


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


def _shorten(text: str) -> str:
    if len(text) <= _SHOWN_URL_CHARS:
        return text
    return text[: _SHOWN_URL_CHARS - 3] + "..."


def _show(url: URL) -> str:
    """The URL for a message: without credentials, and not unreasonably long."""
    if url.user is not None or url.password is not None:
        url = url.with_user(None)
    return _shorten(str(url))


def _fail(error: str, status: int = 0, head: bytes = b"") -> Fetched:
    return Fetched(status=status, data=None, error=error, head=head)


def _success(data: bytes) -> Fetched:
    return Fetched(status=200, data=data, error="", head=data[:HEAD_BYTES])


# --------------------------------------------------------------------------- data: and blob:

_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_BASE64_SPACE = re.compile(rb"[\t\n\f\r ]+")


def _fetch_data(url: str, limits: FetchLimits) -> Fetched:
    """Decode an RFC 2397 ``data:`` URL. The media type and its parameters are accepted and
    ignored; ``;base64`` as the last parameter selects base64, else the data is percent-decoded."""
    header, comma, payload = url[len("data:") :].partition(",")
    if not comma:
        return _fail("bad data: URL: no ',' between the media type and the data")
    params = header.split(";")
    is_base64 = len(params) > 1 and params[-1].strip().lower() == "base64"
    bad = _BAD_PERCENT.search(payload)
    if bad is not None:
        return _fail(
            f"bad data: URL: '%' at position {bad.start()} of the data is not followed by "
            "two hex digits (write a literal '%' as %25)"
        )
    raw = unquote_to_bytes(payload)
    too_big = f"data: URL: data larger than {_size(limits.max_bytes)}"
    if is_base64:
        compact = _BASE64_SPACE.sub(b"", raw)
        if len(compact) // 4 * 3 > limits.max_bytes + 3:
            return _fail(too_big)
        if len(compact) % 4 == 1:
            return _fail("bad data: URL: invalid base64 (truncated: length is 1 more than 4n)")
        try:
            data = base64.b64decode(compact + b"=" * (-len(compact) % 4), validate=True)
        except binascii.Error as exc:
            return _fail(f"bad data: URL: invalid base64 ({exc})")
    else:
        data = raw
    if len(data) > limits.max_bytes:
        return _fail(too_big, head=data[:HEAD_BYTES])
    return _success(data)


_BLOB_HASH = re.compile(r"[0-9A-Za-z_-]{1,256}")


async def _fetch_blob(url: str, limits: FetchLimits, blob_reader: BlobReader | None) -> Fetched:
    digest = url[len("blob:") :]
    shown = _shorten(url)
    if not _BLOB_HASH.fullmatch(digest):
        return _fail(f"{shown}: not a blob hash (expected blob:<hash>; letters, digits, - and _)")
    if blob_reader is None:
        return _fail(f"{shown}: blob: URLs cannot be used here (no blob store)")
    data = await blob_reader(digest)
    if data is None:
        return _fail(f"{shown}: no blob with this hash (HTTP 404)", status=404)
    if len(data) > limits.max_bytes:
        return _fail(f"{shown}: blob larger than {_size(limits.max_bytes)}", 200, data[:HEAD_BYTES])
    return _success(data)


# --------------------------------------------------------------------------- http(s)


@dataclass
class _Progress:
    """What is known so far about an http download, so a timeout can still report it."""

    origin: URL
    current: URL
    status: int = 0
    head: bytearray = field(default_factory=bytearray)
    verdict: str = ""  # an error already decided while the rest (the head) is being read

    def prefix(self) -> str:
        if self.current == self.origin:
            return f"GET {_show(self.origin)}"
        return f"GET {_show(self.origin)} (redirected to {_show(self.current)})"

    def fail(self, problem: str) -> Fetched:
        return _fail(f"{self.prefix()}: {problem}", self.status, bytes(self.head))


def _check_target(url: URL, block_private: bool | AddressPolicy) -> str:
    """Why ``url`` may not be requested, or ``""``."""
    if url.scheme not in ("http", "https"):
        if not url.scheme:
            return "not an absolute URL (expected http://, https://, data: or blob:)"
        return f"unsupported URL scheme '{url.scheme}' (use http, https, data: or blob:)"
    host = url.host
    if not host:
        return "the URL has no host"
    try:
        _ = url.port
    except ValueError:
        return "the URL's port is not a number from 1 to 65535"
    ip = literal_ip(host.rstrip("."))
    if ip is not None:
        reason = refusal_reason(ip, block_private)
        if reason is not None:
            return str(AddressNotAllowed(host, str(ip), reason))
    return ""


async def _read_head(resp: aiohttp.ClientResponse, progress: _Progress) -> None:
    """Read up to HEAD_BYTES of the body into ``progress.head``; tolerate a broken body."""
    try:
        while len(progress.head) < HEAD_BYTES:
            chunk = await resp.content.read(HEAD_BYTES - len(progress.head))
            if not chunk:
                return
            progress.head += chunk
    except (aiohttp.ClientError, OSError):
        return


async def _read_capped(
    resp: aiohttp.ClientResponse, max_bytes: int, progress: _Progress
) -> bytes | None:
    """The whole body, or None as soon as it proves longer than ``max_bytes``."""
    body = bytearray()
    while True:
        chunk = await resp.content.read(min(_CHUNK, max_bytes + 1 - len(body)))
        if not chunk:
            return bytes(body)
        if len(progress.head) < HEAD_BYTES:
            progress.head += chunk[: HEAD_BYTES - len(progress.head)]
        body += chunk
        if len(body) > max_bytes:
            return None


async def _follow(
    session: aiohttp.ClientSession, limits: FetchLimits, progress: _Progress
) -> Fetched:
    hops = 0
    while True:
        url = progress.current
        progress.status = 0
        progress.head.clear()
        problem = _check_target(url, limits.block_private)
        if problem:
            return progress.fail(problem)
        async with session.get(
            url, allow_redirects=False, headers=_REQUEST_HEADERS, auto_decompress=False
        ) as resp:
            progress.status = resp.status
            location = resp.headers.get(hdrs.LOCATION)
            if resp.status in _REDIRECTS and location:
                if hops >= limits.max_redirects:
                    progress.verdict = f"more than {limits.max_redirects} redirects"
                    await _read_head(resp, progress)
                    return progress.fail(progress.verdict)
                try:
                    progress.current = url.join(URL(location)).with_fragment(None)
                except ValueError:
                    progress.verdict = f"redirect to an invalid URL: {_shorten(location)}"
                    return progress.fail(progress.verdict)
                hops += 1
                continue
            if resp.status != 200:
                progress.verdict = f"HTTP {resp.status}"
                await _read_head(resp, progress)
                return progress.fail(progress.verdict)
            too_big = f"body larger than {_size(limits.max_bytes)}"
            length = resp.content_length
            if length is not None and length > limits.max_bytes:
                progress.verdict = f"{too_big} (Content-Length is {length})"
                await _read_head(resp, progress)
                return progress.fail(progress.verdict)
            body = await _read_capped(resp, limits.max_bytes, progress)
            if body is None:
                return progress.fail(too_big)
            return _success(body)


def _describe(exc: aiohttp.ClientError | OSError) -> str:
    """A user-facing sentence for a transport failure."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        if isinstance(os_error, AddressNotAllowed):
            return str(os_error)
        if isinstance(os_error, socket.gaierror):
            detail = os_error.strerror or str(os_error)
            return f"cannot resolve host '{exc.host}' ({detail})"
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return f"TLS certificate of {exc.host} is not trusted ({exc.certificate_error})"
        if isinstance(exc, aiohttp.ClientConnectorSSLError):
            return f"TLS handshake with {exc.host} failed ({os_error})"
        if isinstance(os_error, ConnectionRefusedError) or os_error.errno == errno.ECONNREFUSED:
            return "connection refused"
        detail = os_error.strerror or str(os_error) or type(os_error).__name__
        return f"cannot connect to {exc.host}:{exc.port} ({detail})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection before the download was complete"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"the body was cut off or malformed ({exc})"
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid URL"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"invalid HTTP response ({exc.message})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _check_session(session: aiohttp.ClientSession, limits: FetchLimits) -> None:
    connector = session.connector
    if session.closed:
        return  # aiohttp itself raises RuntimeError("Session is closed")
    if not isinstance(connector, PolicyConnector):
        raise ValueError(
            "fetch() needs a session created with "
            f"connector=make_connector({limits.block_private}), not {type(connector).__name__}"
        )
    if connector.policy != as_policy(limits.block_private):
        raise ValueError(
            f"the session's connector has block_private={connector.block_private} but the "
            f"limits say block_private={limits.block_private}"
        )


async def _fetch_http(session: aiohttp.ClientSession, url: str, limits: FetchLimits) -> Fetched:
    _check_session(session, limits)
    try:
        start = URL(url)
    except (ValueError, TypeError) as exc:
        return _fail(f"GET {_shorten(url)}: invalid URL ({exc})")
    progress = _Progress(origin=start, current=start)
    timer = asyncio.timeout(limits.timeout_s)
    try:
        async with timer:
            return await _follow(session, limits, progress)
    except TimeoutError as exc:
        if progress.verdict:  # the answer was known; only reading the head of the body stalled
            return progress.fail(progress.verdict)
        if timer.expired():
            return progress.fail(f"timed out after {limits.timeout_s:g} s")
        return progress.fail(f"timed out ({_describe(exc)})")
    except (aiohttp.ClientError, OSError) as exc:
        return progress.fail(_describe(exc))


# --------------------------------------------------------------------------- entry point


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    limits: FetchLimits,
    blob_reader: BlobReader | None = None,
) -> Fetched:
    """Download ``url`` within ``limits``; every user error comes back as a :class:`Fetched`.

    - ``http``/``https``: GET without compression, body streamed and abandoned as soon as it
      exceeds ``max_bytes``; only status 200 is a success; up to ``max_redirects`` redirects
      (301, 302, 303, 307, 308) are followed, each hop checked against the address policy; the
      whole download, redirects included, must finish within ``timeout_s``.
    - ``data:`` (RFC 2397): ``;base64`` or percent-encoded data, capped at ``max_bytes``;
      status 200 on success, 0 when malformed or too large.
    - ``blob:<hash>``: ``await blob_reader(hash)``; 200 with the blob, 404 when it returns None,
      0 with an error when there is no reader or the hash is malformed.

    ``session`` must be created with ``connector=make_connector(limits.block_private)`` (it is
    used for http and https only). Surrounding whitespace of ``url`` is ignored.

    Never raises for a bad URL, a failed look-up or connection, a refused address, a timeout, an
    error status or an oversized or malformed body. Raises ``ValueError`` when an http(s) URL is
    given with a session not made that way (a bug of the caller), ``RuntimeError`` when the
    session is closed, ``asyncio.CancelledError`` when cancelled, and whatever ``blob_reader``
    raises.
    """
    url = url.strip()
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme == "data":
        return _fetch_data(url, limits)
    if scheme == "blob":
        return await _fetch_blob(url, limits, blob_reader)
    if not url:
        return _fail("empty URL (expected http://, https://, data: or blob:)")
    return await _fetch_http(session, url, limits)
