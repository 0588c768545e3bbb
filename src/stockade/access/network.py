"""Network rules, as Azure's ``networkAcls``: a default action and the IP ranges let through.

The caller's address is the connection's peer, unless that peer is a configured trusted proxy:
then it is the nearest ``X-Forwarded-For`` entry that is not itself a trusted proxy.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW = "Allow"
DENY = "Deny"


@functools.lru_cache(maxsize=8192)
def parse_address(text: str) -> IPAddress | None:
    """An address, also as proxies write it with a port (``1.2.3.4:5123``, ``[2001:db8::1]:443``).

    Cached: every request parses its peer's address, and ``ipaddress`` takes microseconds."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4 client of a dual-stack socket appears as ::ffff:a.b.c.d; rules name it as IPv4.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_network(text: str) -> IPNetwork:
    """A CIDR range or a single address; ``ValueError`` if it is neither."""
    return ipaddress.ip_network(text.strip(), strict=False)


@dataclass(frozen=True, slots=True)
class NetworkRules:
    default_action: str = ALLOW
    ip_rules: tuple[IPNetwork, ...] = ()

    def allows(self, address: IPAddress | None) -> bool:
        if self.default_action == ALLOW:
            return True
        return address is not None and any(address in network for network in self.ip_rules)


class ClientAddress:
    """Works out who is calling from the peer address and ``X-Forwarded-For``."""

    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        self._proxies = tuple(parse_network(proxy) for proxy in trusted_proxies)

    def _trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self._proxies)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> IPAddress | None:
        """The client's address, or None if it cannot be known (then only an Allow default
        action lets it in)."""
        address = parse_address(peer) if peer else None
        if address is None or not forwarded_for or not self._trusted(address):
            return address
        # Each proxy appends the address it received from, so the list is read from the right;
        # the first entry a trusted proxy did not add is the client. Entries further left were
        # written by the client itself and prove nothing.
        for entry in reversed(forwarded_for.split(",")):
            hop = parse_address(entry)
            if hop is None:
                return None  # garbage from a trusted proxy: the client is unknown, so not allowed
            if not self._trusted(hop):
                return hop
            address = hop
        return address
