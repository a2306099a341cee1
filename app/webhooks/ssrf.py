"""Server-side request forgery guard for subscriber URLs.

A URL must be http(s) with a host, and every address the host resolves to must be a
public one: loopback, private, link-local, multicast, reserved, unspecified, shared
(CGNAT) and cloud metadata addresses are refused. The check runs at registration and
again before every delivery attempt (DNS can change). ``allow_private`` (the
``WEBHOOK_ALLOW_PRIVATE`` setting) lifts the address check for local use and tests.

An IPv6 address that carries an IPv4 address (IPv4-mapped ``::ffff:0:0/96``, 6to4
``2002::/16``, Teredo ``2001::/32`` server and client, NAT64 ``64:ff9b::/96``) is refused
when the IPv4 address inside it would be: unwrapping only adds refusals. A host that
ends in a number (``2130706433``, ``017700000001``, ``127.1``, ``0``, ``0x7f.1``) must be
a dotted-quad IPv4 address written canonically; the legacy forms some resolvers read as
an address are refused rather than guessed at.

URLs are parsed by ``yarl``, the parser of the HTTP client that delivers them, so
registration judges the host the delivery will connect to (IDNA-mapped, lowercased).

The resolver is injectable: ``(host, port) -> [ip, …]``; the default calls
``socket.getaddrinfo`` (in a thread when used from async code). At delivery time the
check is made by ``GuardedResolver``, the HTTP client's own resolver: every connection
is opened to an address that passed the check, so a host whose DNS answer changes
between a check and the connection (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Callable

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from app.errors import InvalidInput

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
#: The NAT64 well-known prefix (RFC 6052): the last 32 bits are the IPv4 address.
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
#: A last label the WHATWG URL standard reads as a number (so the host as IPv4).
_NUMBER_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")


class UnsafeUrl(InvalidInput):
    """A subscriber URL that must not be called."""


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses ``address`` carries, each with the mechanism's name."""
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    if address.ipv4_mapped is not None:
        found.append(("IPv4-mapped", address.ipv4_mapped))
    if address.sixtofour is not None:
        found.append(("6to4", address.sixtofour))
    if address.teredo is not None:
        server, client = address.teredo
        found += [("Teredo server", server), ("Teredo client", client)]
    if address in NAT64_PREFIX:
        found.append(("NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)))
    return found


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not be called, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        for mechanism, inner in embedded_ipv4(address):
            if (reason := blocked_reason(inner)) is not None:
                return f"{reason} ({inner} carried by {mechanism})"
        if address.ipv4_mapped is not None:
            return None
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "not globally routable"),
    )
    for blocked, name in checks:
        if blocked:
            return f"a {name} address"
    return None


def numeric_host_refusal(host: str) -> str | None:
    """Why a host that ends in a number is refused, or None.

    Such a host is an IPv4 address to browsers and to ``inet_aton``-based resolvers,
    which also read the legacy forms (``2130706433``, ``0177.0.0.1``, ``127.1``,
    ``0x7f.1``): only the canonical dotted quad, which every parser reads alike, is kept.
    """
    if ":" in host:  # an IPv6 literal
        return None
    labels = host.split(".")
    if len(labels) > 1 and not labels[-1]:
        labels.pop()
    if not _NUMBER_LABEL.fullmatch(labels[-1]):
        return None
    try:
        if str(ipaddress.IPv4Address(host)) == host:
            return None
    except ValueError:
        pass
    return (
        f"host {host} is numeric but not a dotted-quad IPv4 address; "
        "write the address as four decimal numbers (e.g. 192.0.2.10) or use a hostname"
    )


def parse_url(url: str) -> URL:
    """``url`` parsed as the delivering HTTP client parses it; raises UnsafeUrl if it
    cannot be, or if its scheme or host is refused (see ``url_refusal``)."""
    try:
        parsed = URL(url)
    except (ValueError, UnicodeError) as exc:
        raise UnsafeUrl(f"url is not valid: {exc}") from None
    if (reason := url_refusal(parsed)) is not None:
        raise UnsafeUrl(reason)
    return parsed


def url_refusal(url: URL) -> str | None:
    """Why ``url``'s form is refused (scheme, missing or non-canonical numeric host)."""
    if url.scheme not in ("http", "https"):
        return "url must use http or https"
    if not url.raw_host:
        return "url must have a host"
    return numeric_host_refusal(url.raw_host)


def check_addresses(host: str, addresses: list[str]) -> None:
    """Raise UnsafeUrl unless every address is public (and there is at least one)."""
    if not addresses:
        raise UnsafeUrl(f"host {host} does not resolve")
    for text in addresses:
        reason = blocked_reason(ipaddress.ip_address(text.split("%", 1)[0]))
        if reason is not None:
            raise UnsafeUrl(f"host {host} resolves to {text}, {reason}; refused")


def _literal(host: str) -> list[str] | None:
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        return None


def check_url(url: str, *, resolver: Resolver, allow_private: bool) -> None:
    """Validate ``url`` for delivery (blocking: resolves the host)."""
    parsed = parse_url(url)
    if allow_private:
        return
    host = parsed.raw_host
    assert host is not None  # parse_url refuses a URL without one
    addresses = _literal(host)
    if addresses is None:
        try:
            addresses = resolver(host, parsed.port or 0)
        except (OSError, UnicodeError) as exc:
            raise UnsafeUrl(f"host {host} does not resolve: {exc}") from None
    check_addresses(host, addresses)


def literal_refusal(url: URL, allow_private: bool) -> str | None:
    """Why ``url`` may not be called, judged without resolving anything, or None.

    Covers the URL's form (``url_refusal``) and an IP-literal host (which the HTTP
    client never resolves); hostnames are checked by ``GuardedResolver`` when a
    connection is opened. Takes the parsed URL the client is then given, so a delivery
    parses its URL once.
    """
    if (reason := url_refusal(url)) is not None:
        return reason
    assert url.raw_host is not None
    if not allow_private and (addresses := _literal(url.raw_host)) is not None:
        try:
            check_addresses(url.raw_host, addresses)
        except UnsafeUrl as exc:
            return exc.detail
    return None


class BlockedAddress(OSError):
    """Raised inside the HTTP client when a host resolves to a refused address."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver over ``resolver`` that refuses non-public addresses."""

    def __init__(self, resolver: Resolver, allow_private: bool) -> None:
        self.resolver = resolver
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await asyncio.to_thread(self.resolver, host, port)
        if not self.allow_private:
            try:
                check_addresses(host, addresses)
            except UnsafeUrl as exc:
                raise BlockedAddress(exc.detail) from None
        if not addresses:
            raise OSError(f"host {host} does not resolve")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        return None
