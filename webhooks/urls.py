"""Which callback URLs Tolk may send to, and the address it connects to.

A callback URL must be ``https`` with a host and no credentials, and every address its host
resolves to must be publicly routable: loopback, private (RFC 1918), carrier-grade NAT,
link-local (cloud metadata), multicast, reserved, IPv6 unique-local/link-local and
IPv4-mapped addresses are refused, unless the operator's allow-list names the host or a
network that holds the address. The check runs when a URL is submitted and again before
every delivery attempt, which then connects to the very address that was checked, so a DNS
answer that changes in between (rebinding) cannot redirect a delivery.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

RESOLVE_TIMEOUT_SECONDS = 5.0

# Checked in order; the first match names the reason. Anything else that Python does not
# consider globally routable is refused too (see ``forbidden_reason``).
_FORBIDDEN: list[tuple[str, str]] = [
    ("0.0.0.0/8", "an unspecified ('this network') address"),
    ("127.0.0.0/8", "a loopback address"),
    ("10.0.0.0/8", "a private (RFC 1918) address"),
    ("172.16.0.0/12", "a private (RFC 1918) address"),
    ("192.168.0.0/16", "a private (RFC 1918) address"),
    ("100.64.0.0/10", "a carrier-grade NAT address"),
    ("169.254.0.0/16", "a link-local (cloud metadata) address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("192.0.0.0/24", "a reserved (IETF protocol) address"),
    ("192.0.2.0/24", "a reserved (documentation) address"),
    ("198.51.100.0/24", "a reserved (documentation) address"),
    ("203.0.113.0/24", "a reserved (documentation) address"),
    ("198.18.0.0/15", "a reserved (benchmarking) address"),
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("::ffff:0:0/96", "an IPv4-mapped IPv6 address"),
    ("::/96", "an IPv4-compatible IPv6 address"),
    ("64:ff9b::/96", "a NAT64 address"),
    ("fc00::/7", "an IPv6 unique-local address"),
    ("fe80::/10", "an IPv6 link-local address"),
    ("fec0::/10", "an IPv6 site-local address"),
    ("ff00::/8", "a multicast address"),
    ("2001:db8::/32", "a reserved (documentation) address"),
    ("2002::/16", "a 6to4 address"),
    ("2001::/32", "a Teredo address"),
]
_FORBIDDEN_NETWORKS = [(ipaddress.ip_network(net), reason) for net, reason in _FORBIDDEN]


class CallbackRefused(ValueError):
    """The URL may not receive webhooks; the message says why."""


@dataclass(frozen=True)
class AllowList:
    """Hosts (by name) and networks that are allowed despite the rules above."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


@dataclass(frozen=True)
class Target:
    """Where one delivery attempt goes: the URL as given, and the address checked for it."""

    url: str
    host: str
    port: int
    address: IPAddress

    def connect_url(self) -> str:
        """The URL with its host replaced by the checked address."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        netloc = f"{literal}:{self.port}"
        return parts._replace(netloc=netloc).geturl()

    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 443 else f"{host}:{self.port}"


def forbidden_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not receive webhooks, or None when it is publicly routable."""
    for network, reason in _FORBIDDEN_NETWORKS:
        if address.version == network.version and address in network:
            return reason
    if not address.is_global:
        return "not a publicly routable address"
    return None


def check_syntax(url: str) -> SplitResult:
    """The parts of a well-formed callback URL; no network access.

    Only printable ASCII (``!`` to ``~``) may appear, as in a URI (RFC 3986): no control
    characters, no spaces, nothing beyond ASCII. Other characters of a path or query are
    percent-encoded; an internationalised host is given in its ASCII (punycode) form,
    ``xn--bcher-kva.example`` for ``bücher.example``."""
    for position, ch in enumerate(url):
        if not "!" <= ch <= "~":
            raise CallbackRefused(
                f"must contain only printable ASCII characters: U+{ord(ch):04X} at position "
                f"{position} (percent-encode it in a path or query; give an internationalised "
                "host in punycode, xn--...)"
            )
    if "\\" in url:
        raise CallbackRefused("must not contain backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise CallbackRefused(f"is not a valid URL ({err})") from None
    if parts.scheme.lower() != "https":
        raise CallbackRefused("must be an https:// URL")
    if not parts.hostname:
        raise CallbackRefused("must include a host")
    if "@" in parts.netloc:
        raise CallbackRefused("must not contain credentials (user info)")
    if port == 0:
        raise CallbackRefused("must not use port 0")
    return parts


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def _resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP),
            RESOLVE_TIMEOUT_SECONDS,
        )
    except (OSError, UnicodeError, TimeoutError) as err:
        raise CallbackRefused(f"host {host!r} does not resolve ({err})") from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise CallbackRefused(f"host {host!r} does not resolve")
    return addresses


async def resolve_target(url: str, allow: AllowList) -> Target:
    """Check ``url`` and choose the address to connect to, or raise ``CallbackRefused``.

    Every address the host resolves to must pass (one bad answer is enough to refuse: the
    resolver could hand it out next time). Numeric hosts in any form the resolver accepts
    (``2130706433``, ``0177.0.0.1``, ``[::ffff:127.0.0.1]``) resolve to what they mean and
    are judged by that."""
    parts = check_syntax(url)
    host = parts.hostname or ""
    port = parts.port or 443
    literal = _literal(host)
    addresses = [literal] if literal is not None else await _resolve(host, port)
    host_allowed = allow.allows_host(host)
    for address in addresses:
        if host_allowed or allow.allows_address(address):
            continue
        reason = forbidden_reason(address)
        if reason is not None:
            shown = host if literal is not None else f"{host} ({address})"
            raise CallbackRefused(f"host {shown} is {reason}")
    return Target(url=url, host=host, port=port, address=addresses[0])
