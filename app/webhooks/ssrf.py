"""Server-side request forgery guard for subscriber URLs.

A URL must be http(s) with a host, and every address the host resolves to must be a
public one: loopback, private, link-local, multicast, reserved, unspecified, shared
(CGNAT) and cloud metadata addresses are refused. The check runs at registration and
again before every delivery attempt (DNS can change). ``allow_private`` (the
``WEBHOOK_ALLOW_PRIVATE`` setting) lifts the address check for local use and tests.

The resolver is injectable: ``(host, port) -> [ip, …]``; the default calls
``socket.getaddrinfo`` (in a thread when used from async code). At delivery time the
check is made by ``GuardedResolver``, the HTTP client's own resolver: every connection
is opened to an address that passed the check, so a host whose DNS answer changes
between a check and the connection (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from app.errors import InvalidInput

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)


class UnsafeUrl(InvalidInput):
    """A subscriber URL that must not be called."""


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not be called, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return blocked_reason(address.ipv4_mapped)
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


def split_url(url: str) -> tuple[str, int]:
    """The host and port of an http(s) URL; raises UnsafeUrl for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"url is not valid: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl("url must use http or https")
    if not parts.hostname:
        raise UnsafeUrl("url must have a host")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


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
    host, port = split_url(url)
    if allow_private:
        return
    addresses = _literal(host)
    if addresses is None:
        try:
            addresses = resolver(host, port)
        except OSError as exc:
            raise UnsafeUrl(f"host {host} does not resolve: {exc}") from None
    check_addresses(host, addresses)


def literal_refusal(url: URL, allow_private: bool) -> str | None:
    """Why ``url`` may not be called, judged without resolving anything, or None.

    Covers the scheme and an IP-literal host (which the HTTP client never resolves);
    hostnames are checked by ``GuardedResolver`` when a connection is opened. Takes
    the parsed URL the client is then given, so a delivery parses its URL once.
    """
    if url.scheme not in ("http", "https"):
        return "url must use http or https"
    if not url.raw_host:
        return "url must have a host"
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
