"""The one network-address policy: which addresses a download or a callback may reach.

A request must never reach the host's link-local network (cloud metadata at 169.254.169.254 lives
there), and, when ``block_private`` is set, nothing on loopback or private networks either. The
policy is applied to the addresses the connection actually uses, so a host name that resolves to a
forbidden address (or is re-bound to one between two look-ups) is refused before anything is
sent: that is the job of :func:`make_connector`'s connector. Literal IP hosts never reach a
resolver; callers check those with :func:`literal_ip` and :func:`address_allowed`.

An operator who blocks private addresses can still open exactly what they need with an
:class:`AddressPolicy` allowlist: networks (``10.1.2.0/24``, ``fd00::1``) whose addresses are
allowed, and host names (``files.internal``, or ``*.corp.example`` for its subdomains) whose
resolved addresses are. The allowlist never opens the always-refused ranges (link-local with the
cloud metadata service, multicast, broadcast). Wherever a ``block_private`` flag is taken, an
:class:`AddressPolicy` may be given instead.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

__all__ = [
    "AddressNotAllowed",
    "AddressPolicy",
    "IPAddress",
    "PolicyConnector",
    "PolicyResolver",
    "address_allowed",
    "literal_ip",
    "make_connector",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_ALWAYS_REFUSED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "in 0.0.0.0/8 ('this network')"),
        ("169.254.0.0/16", "link-local"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("fe80::/10", "link-local"),
        ("ff00::/8", "multicast"),
        ("fd00:ec2::254/128", "a cloud metadata address"),
    )
)
_PRIVATE: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), reason)
    for net, reason in (
        ("127.0.0.0/8", "loopback"),
        ("::1/128", "loopback"),
        ("::/128", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("fc00::/7", "private"),
        ("fec0::/10", "site-local"),
    )
)
# IPv6 forms that carry an IPv4 address the packets end up at (RFC 6052 well-known NAT64 prefix).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses downloads and callbacks may reach.

    ``block_private`` refuses loopback, private and CGNAT ranges; ``allow`` lists exceptions to
    that: networks or single addresses (``"10.1.2.0/24"``, ``"fd00::5"``) and host names
    (``"files.internal"``; ``"*.corp.example"`` matches its subdomains). Build it with
    :meth:`parse`, which checks the entries.
    """

    block_private: bool = False
    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, block_private: bool, allow: tuple[str, ...] | list[str] = ()) -> AddressPolicy:
        """The policy with ``allow`` entries; raises ``ValueError`` naming a malformed entry."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        suffixes: list[str] = []
        for raw in allow:
            entry = raw.strip().lower().rstrip(".")
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry[2:] if entry.startswith("*.") else entry
            if not _HOST_NAME.fullmatch(name):
                raise ValueError(
                    f"allowlist entry {raw!r} is neither a network (10.0.0.0/8, fd00::1) nor a "
                    "host name (files.internal, *.corp.example)"
                )
            if entry.startswith("*."):
                suffixes.append("." + name)
            else:
                hosts.add(name)
        return cls(block_private, tuple(networks), frozenset(hosts), tuple(suffixes))

    def host_listed(self, host: str) -> bool:
        """Whether the host name is on the allowlist (exactly or as a listed subdomain)."""
        name = host.lower().rstrip(".")
        return name in self.hosts or any(name.endswith(sfx) for sfx in self.suffixes)

    def refusal(self, ip: IPAddress, host: str = "") -> str | None:
        """Why ``ip`` (resolved from ``host``, if a name) may not be contacted, or None."""
        listed = bool(host) and self.host_listed(host)
        return refusal_reason(ip, self.block_private, lambda a: listed or self._listed(a))

    def _listed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)


_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")


def as_policy(block_private: bool | AddressPolicy) -> AddressPolicy:
    if isinstance(block_private, AddressPolicy):
        return block_private
    return AddressPolicy(block_private=block_private)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries to its destination, or None: IPv4-mapped
    (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d, deprecated but still routed by some stacks;
    :: and ::1 are IPv6's own), NAT64 (64:ff9b::a.b.c.d), 6to4 (2002:aabb:ccdd::/48) and
    Teredo's client (2001::/32)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def refusal_reason(
    ip: IPAddress,
    block_private: bool | AddressPolicy,
    listed: Callable[[IPAddress], bool] | None = None,
) -> str | None:
    """Why ``ip`` may not be contacted (``"link-local"``, ``"private"`` ...), or None if it may.

    ``listed(ip)`` says whether an allowlist exempts an address from the private ranges.
    """
    if isinstance(block_private, AddressPolicy):
        return block_private.refusal(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return refusal_reason(embedded, block_private, listed)
        ip = ipaddress.IPv6Address(int(ip))  # drop a %zone so network membership works
    for net, reason in _ALWAYS_REFUSED:
        if ip.version == net.version and ip in net:
            return reason
    if block_private and not (listed is not None and listed(ip)):
        for net, reason in _PRIVATE:
            if ip.version == net.version and ip in net:
                return reason
    return None


def address_allowed(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, block_private: bool | AddressPolicy
) -> bool:
    """Whether a download may connect to ``ip``. Pure; never raises.

    Always refused: 0.0.0.0/8, link-local (169.254.0.0/16 with the cloud metadata service,
    fe80::/10), multicast (224.0.0.0/4, ff00::/8), 255.255.255.255 and fd00:ec2::254 (AWS metadata
    over IPv6). With ``block_private`` also refused: loopback (127.0.0.0/8, ::1), unspecified (::),
    private (10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10) and CGNAT (100.64.0.0/10).
    IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d), 6to4
    (2002:aabb:ccdd::) and Teredo addresses are judged by the IPv4 address they carry. An
    :class:`AddressPolicy` may exempt listed networks from the private ranges.
    """
    return refusal_reason(ip, block_private) is None


class AddressNotAllowed(OSError):
    """A host resolved to (or is) an address the policy refuses.

    An ``OSError`` so that aiohttp's connector treats it as a failed look-up; ``fetch`` turns it
    into a message. ``str()`` of it is that message.
    """

    def __init__(self, host: str, address: str, reason: str) -> None:
        where = "" if host == address else f" (of host '{host}')"
        super().__init__(f"address {address}{where} is {reason} and not allowed")
        self.host = host
        self.address = address
        self.reason = reason


class PolicyResolver(AbstractResolver):
    """A resolver that refuses host names resolving to any address the policy forbids.

    Wraps another resolver; when any of the addresses it returns is refused by
    :func:`address_allowed`, :meth:`resolve` raises :class:`AddressNotAllowed` (a host is refused
    as a whole rather than trimmed to its acceptable addresses, so the user learns why).
    """

    def __init__(self, inner: AbstractResolver, block_private: bool | AddressPolicy) -> None:
        self._inner = inner
        self._policy = as_policy(block_private)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve through the inner resolver and vet every address.

        Raises :class:`AddressNotAllowed` when an address is refused or is not an IP address, and
        whatever the inner resolver raises (``OSError``, usually ``socket.gaierror``).
        """
        results = await self._inner.resolve(host, port, family)
        for result in results:
            address = result["host"]
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                raise AddressNotAllowed(host, address, "not an IP address") from None
            reason = self._policy.refusal(ip, host)
            if reason is not None:
                raise AddressNotAllowed(host, address, reason)
        return results

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()


class PolicyConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` whose host name look-ups go through :class:`PolicyResolver`.

    ``block_private`` is kept so that :func:`fetch` can check the session matches its limits.
    ``inner_resolver`` does the look-ups (default: a ``ThreadedResolver``; one passed in stays
    the caller's to close). Other keyword arguments go to ``TCPConnector``, except ``resolver``.
    """

    def __init__(
        self,
        block_private: bool | AddressPolicy,
        *,
        inner_resolver: AbstractResolver | None = None,
        **kwargs: Any,
    ) -> None:
        inner = inner_resolver if inner_resolver is not None else ThreadedResolver()
        super().__init__(resolver=PolicyResolver(inner, block_private), **kwargs)
        self.policy = as_policy(block_private)
        self.block_private = self.policy.block_private


def make_connector(block_private: bool | AddressPolicy) -> aiohttp.TCPConnector:
    """A connector that enforces the address policy on every resolved address.

    Create every session used with :func:`fetch` with it (the session owns and closes it). Must be
    called with an event loop running. Host names are resolved by a ``ThreadedResolver`` (the
    system's ``getaddrinfo``, so ``/etc/hosts`` applies), which holds no resources of its own.
    Returns a :class:`PolicyConnector`.
    """
    return PolicyConnector(block_private)


_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")


def literal_ip(host: str) -> IPAddress | None:
    """The address a host names literally, including legacy forms like ``127.1`` or ``0x7f.1``."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None
