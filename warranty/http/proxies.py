"""The client's address behind reverse proxies: X-Forwarded-For trusted only from them.

Anyone can send ``X-Forwarded-For``. It says something only when the peer that connected to
us is one of our proxies (``WARRANTY_TRUSTED_PROXIES``, IPs or networks): then each hop is
read from the right, past our own proxies, and the first address that is not one of them is
the client (what our outermost proxy saw connect to it). Anything the client wrote further
left is ignored. From any other peer the header is ignored and the peer is the client.
``X-Forwarded-Proto`` is taken from a trusted peer only, as its last value.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from warranty.core.settings import Network


def _ip(text: str):
    """An address from a header or the peer (IPv4-mapped IPv6 as IPv4), or None."""
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    return ip.ipv4_mapped if ip.version == 6 and ip.ipv4_mapped else ip


def client_address(peer: str | None, forwarded_for: Iterable[str],
                   trusted: tuple[Network, ...]) -> str | None:
    """The client's address, given the connecting peer and the X-Forwarded-For hops."""
    peer_ip = _ip(peer or "")
    if peer_ip is None or not _trusted(peer_ip, trusted):
        return peer
    client = peer_ip
    for hop in reversed([h for value in forwarded_for for h in value.split(",") if h.strip()]):
        ip = _ip(hop)
        if ip is None:  # not an address: nothing left of it can be trusted
            break
        client = ip
        if not _trusted(ip, trusted):
            break
    return str(client)


def _trusted(ip, trusted: tuple[Network, ...]) -> bool:
    """Whether ``ip`` is one of our proxies."""
    return any(ip.version == net.version and ip in net for net in trusted)


class TrustedProxies:
    """WSGI middleware: REMOTE_ADDR and the URL scheme as our proxies report them."""

    def __init__(self, app: Callable, trusted: tuple[Network, ...]):
        """Wrap ``app``; ``trusted`` are the proxies' networks."""
        self.app, self.trusted = app, trusted

    def __call__(self, environ: dict, start_response: Callable):
        """Rewrite the client address (and scheme) when the peer is a trusted proxy."""
        peer = environ.get("REMOTE_ADDR")
        peer_ip = _ip(peer or "")
        if peer_ip is not None and _trusted(peer_ip, self.trusted):
            forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
            environ["warranty.proxy_peer"] = peer
            environ["REMOTE_ADDR"] = client_address(peer, [forwarded], self.trusted)
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "").rsplit(",", 1)[-1].strip().lower()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
        return self.app(environ, start_response)
