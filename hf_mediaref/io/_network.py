"""Which network addresses count as public, and the public-address rule of the running call.

Refs of a dataset may name ``http(s)`` URLs; those that its access (:class:`~hf_mediaref.io.MediaAccess`) does
not allow may reach public addresses only. A literal address (``http://10.0.0.5/``) or a local name
(``localhost``) is refused when the ref is resolved (:func:`is_private_host`); a host name is checked when the
socket connects, against the address it actually reached (so DNS answers that change between the check and the
connection do not pass). Which URLs are held to that is the rule of the running call
(:func:`public_address_rule`, set from the call's access value and carried, like the deadline, in a context
variable into the threads that run a copy of the caller's context): never process-wide state.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
from collections.abc import Callable, Iterator

__all__ = ["is_private_host", "is_public_address", "needs_public_address", "public_address_rule"]

#: Names that always mean this machine (RFC 6761 reserves ``localhost`` and ``*.localhost``).
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})

#: The running call's rule: which URLs may connect to public addresses only (``None``: no rule).
_rule: contextvars.ContextVar[Callable[[str], bool] | None] = contextvars.ContextVar(
    "hf_mediaref_public_address_rule", default=None
)


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is the IPv4 address a.b.c.d
            return _is_public(ip.ipv4_mapped)
        teredo = ip.teredo
        embedded = [ip.sixtofour, teredo[1] if teredo else None]
        if ip in ipaddress.ip_network("64:ff9b::/96"):  # NAT64: the IPv4 address is the last 32 bits
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if any(inner is not None and not _is_public(inner) for inner in embedded):
            return False
    return ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local or ip.is_unspecified
    )


def is_public_address(address: str) -> bool:
    """Whether ``address`` (an IPv4 or IPv6 address) is a public, globally routed unicast address.

    Not public: loopback, private (RFC 1918, unique local ``fc00::/7``), link-local (``169.254/16``, cloud
    metadata services, ``fe80::/10``), shared (``100.64/10``), unspecified, multicast, reserved and
    documentation ranges, and IPv6 forms that embed one of those (IPv4-mapped, 6to4, Teredo, NAT64).

    Args:
        address: an IP address as text (a zone suffix such as ``%eth0`` is ignored).

    Returns:
        ``False`` also for text that is not an IP address.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return False
    return _is_public(ip)


def is_private_host(host: str) -> bool:
    """Whether a URL's host names a non-public address on its face: a local name (``localhost``,
    ``*.localhost``) or a literal IP address that :func:`is_public_address` refuses. Other names are
    decided when they are connected to."""
    name = host.lower().rstrip(".").strip("[]")
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return not is_public_address(name)


@contextlib.contextmanager
def public_address_rule(rule: Callable[[str], bool] | None) -> Iterator[None]:
    """Within the block, a request for a URL for which ``rule(url)`` is true connects to public addresses
    only (``None``: no rule; nested blocks replace the outer rule)."""
    token = _rule.set(rule)
    try:
        yield
    finally:
        _rule.reset(token)


def needs_public_address(url: str) -> bool:
    """Whether a request for ``url`` may connect to public addresses only, by the running call's rule."""
    rule = _rule.get()
    return rule is not None and rule(url)
