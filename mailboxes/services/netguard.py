"""Server-side request forgery guard: the one check for every outgoing URL.

A webhook URL (a subscription's, or a mailbox's ``webhook_url`` / ``oversight_webhook_url``)
is customer input that makes this server open connections. Without a guard an agent could
point it at the cloud metadata service (169.254.169.254), the database, or anything else on
the private network. The rules:

* HTTPS only, on a port the operator allows (``WEBHOOKS_ALLOWED_PORTS``, default 443): a
  public address can still host a service that was never meant to be reached from outside;
* no credentials in the URL;
* the host name is resolved and EVERY address it resolves to must be public: one refused
  answer among public ones is enough to refuse, since the connection could use it. Public
  means outside every range of the IANA IPv4 and IPv6 special-purpose registries (and the
  IPv6 space outside global unicast 2000::/3). Forms that carry an IPv4 address (IPv4-mapped,
  IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo) are judged by that IPv4,
  since that is where the packets end up;
* the check runs when the URL is saved and again at delivery. The connection goes to the
  address that was just vetted (the Host header and TLS SNI still carry the name), and once
  connected the peer address of the socket is judged again: whatever a resolver, a name
  that flips to 127.0.0.1 (DNS rebinding) or the network did in between, nothing private
  is ever sent a byte;
* redirects are never followed: a 3xx could point anywhere.

``WEBHOOKS_ALLOW_PRIVATE_TARGETS`` (local development only) lifts the scheme, port and
address rules, so a receiver on http://127.0.0.1:8000 can be used.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection


class UnsafeTarget(Exception):
    """The URL may not be used as a webhook target; the message says why."""


class UnresolvableHost(UnsafeTarget):
    """The host name does not resolve: refused like any unsafe target, but the operator is
    told it is a DNS problem, not a blocked address."""


@dataclass(frozen=True, slots=True)
class VettedTarget:
    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


# The IANA IPv4 Special-Purpose Address Registry, every entry (also those marked globally
# reachable: anycast service addresses are never a customer's webhook receiver), plus
# multicast from the multicast registry. 240.0.0.0/4 includes the broadcast address.
IPV4_REFUSED = [
    (ipaddress.IPv4Network(network), reason)
    for network, reason in [
        ("0.0.0.0/8", "this network"),
        ("10.0.0.0/8", "private-use"),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private-use"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation (TEST-NET-1)"),
        ("192.31.196.0/24", "AS112-v4"),
        ("192.52.193.0/24", "AMT"),
        ("192.88.99.0/24", "deprecated 6to4 relay anycast"),
        ("192.168.0.0/16", "private-use"),
        ("192.175.48.0/24", "direct delegation AS112 service"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation (TEST-NET-2)"),
        ("203.0.113.0/24", "documentation (TEST-NET-3)"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
    ]
]

# Ranges of the IANA IPv6 Special-Purpose Address Registry that carry no IPv4 address, the
# deprecated site-local range, and everything outside global unicast that a name could
# resolve to. Checked after the IPv4-carrying forms are decoded.
IPV6_REFUSED = [
    (ipaddress.IPv6Network(network), reason)
    for network, reason in [
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
        ("100::/64", "discard-only"),
        ("100:0:0:1::/64", "dummy prefix"),
        ("2001::/23", "IETF protocol assignments"),
        ("2001:db8::/32", "documentation"),
        ("2620:4f:8000::/48", "direct delegation AS112 service"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing (SRv6) SIDs"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "deprecated site-local"),
        ("ff00::/8", "multicast"),
    ]
]
GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address delivers to, or none if it carries none."""
    if ip in IPV4_MAPPED:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip in IPV4_COMPATIBLE and int(ip) > 1:  # :: and ::1 are themselves special
        return [ipaddress.IPv4Address(int(ip))]
    if ip in NAT64_WELL_KNOWN:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        server, client = ip.teredo
        return [server, client]
    return []


def _ipv4_refusal(ip: ipaddress.IPv4Address) -> str | None:
    return next((reason for network, reason in IPV4_REFUSED if ip in network), None)


def address_refusal(address: str) -> str | None:
    """Why connecting to ``address`` is refused, or None when it is a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv4Address):
        return _ipv4_refusal(ip)
    carried = _embedded_ipv4(ip)
    if carried:
        reasons = [(inner, _ipv4_refusal(inner)) for inner in carried]
        return next((f"carries {inner}: {why}" for inner, why in reasons if why), None)
    reason = next((reason for network, reason in IPV6_REFUSED if ip in network), None)
    if reason is None and ip not in GLOBAL_UNICAST:
        reason = "outside global unicast (2000::/3)"
    return reason


def is_public_address(address: str) -> bool:
    return address_refusal(address) is None


def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to. Tests replace this function with a fake resolver."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"The host {host} does not resolve ({exc}).") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _port_refusal(port: int) -> str | None:
    allowed = settings.WEBHOOKS_ALLOWED_PORTS
    if port in allowed:
        return None
    return f"Port {port} is not allowed; use one of: {', '.join(str(p) for p in allowed)}."


def url_vet(url: str) -> VettedTarget:
    """Check ``url`` and resolve its host now; raise ``UnsafeTarget`` if it may not be used."""
    allow_private = bool(settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme != "https" and not (allow_private and scheme == "http"):
        raise UnsafeTarget("Webhook URLs must use https://.")
    if parts.username or parts.password:
        raise UnsafeTarget("Webhook URLs may not contain credentials.")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsafeTarget("The webhook URL has no host.")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeTarget("The webhook URL has an invalid port.") from exc
    if not allow_private and (refused_port := _port_refusal(port)):
        raise UnsafeTarget(refused_port)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = resolve_addresses(host, port)
    if not addresses:
        raise UnresolvableHost(f"The host {host} does not resolve.")
    if not allow_private:
        for address in addresses:
            if reason := address_refusal(address):
                raise UnsafeTarget(
                    f"The host {host} resolves to a non-public address ({address}: {reason}); "
                    "webhooks can only be sent to public internet addresses."
                )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return VettedTarget(
        url=url, scheme=scheme, host=host, port=port, path=path, addresses=tuple(addresses)
    )


def _peer_check(sock: socket.socket) -> None:
    """Judge the address the socket is connected to, before a byte is sent over it."""
    if settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS:
        return
    peer = str(sock.getpeername()[0])
    if reason := address_refusal(peer):
        sock.close()
        raise UnsafeTarget(f"The connection reached a non-public address ({peer}: {reason}).")


class _PeerCheckedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _peer_check(sock)
        return sock


class _PeerCheckedHTTPSConnection(HTTPSConnection):
    # TLS starts on the socket _new_conn returns: the check runs before the handshake.
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _peer_check(sock)
        return sock


class _GuardedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _PeerCheckedHTTPConnection


class _GuardedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _PeerCheckedHTTPSConnection


@dataclass(frozen=True, slots=True)
class PostAnswer:
    """What the endpoint answered: the status, its headers, the start of its body."""

    status: int
    headers: dict[str, str]
    body_excerpt: str


# Bytes of the answer's body kept: enough to read an error page's message.
BODY_EXCERPT_BYTES = 1024


def pinned_post(
    target: VettedTarget, *, body: bytes, headers: dict[str, str], timeout: float
) -> PostAnswer:
    """POST to the vetted address (not a fresh lookup) and return what it answered.

    urllib3 directly (the library under ``requests``) because it can connect to one address
    while verifying the certificate and sending SNI for the name, and because its connection
    class can be given the peer check. Redirects are not followed: a 3xx could point
    anywhere, including inside the network.
    """
    address = target.addresses[0]
    name = f"[{target.host}]" if ":" in target.host else target.host  # IPv6 literal
    host_header = name if target.port in (80, 443) else f"{name}:{target.port}"
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = _GuardedHTTPSPool(
            address,
            target.port,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            retries=False,
            timeout=urllib3.Timeout(total=timeout),
        )
    else:
        pool = _GuardedHTTPPool(
            address, target.port, retries=False, timeout=urllib3.Timeout(total=timeout)
        )
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": host_header},
            redirect=False,
            retries=False,
            preload_content=False,
        )
        # Read at most a little of the body: the status decides, the excerpt explains.
        excerpt = response.read(BODY_EXCERPT_BYTES)
        response.release_conn()
        return PostAnswer(
            status=int(response.status),
            headers=dict(response.headers.items()),
            body_excerpt=excerpt.decode("utf-8", errors="replace"),
        )
    finally:
        pool.close()


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and every one it was raised from: urllib3 wraps the socket's error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def network_error_sentence(exc: BaseException, *, timeout: float) -> str:
    """One sentence an operator understands for why a request could not be made, instead of
    ``[Errno -2] Name or service not known``. The exception itself is kept beside it."""
    chain = list(_causes(exc))

    def caused_by(*kinds: type[BaseException]) -> bool:
        return any(isinstance(item, kinds) for item in chain)

    # Most specific first: urllib3's NameResolutionError and NewConnectionError are
    # subclasses of its ConnectTimeoutError, and ssl.SSLError of OSError.
    if caused_by(UnresolvableHost, socket.gaierror, urllib3.exceptions.NameResolutionError):
        return "The endpoint's host name could not be found (the DNS lookup failed)."
    refusal = next((item for item in chain if isinstance(item, UnsafeTarget)), None)
    if refusal is not None:
        # The guard's own messages are written for people (and name the address refused).
        return f"Not sent, blocked by the address guard: {refusal}"
    if caused_by(ssl.SSLError, urllib3.exceptions.SSLError):
        return (
            "The secure (TLS) connection failed: the endpoint's certificate could not be "
            "verified, or it does not speak HTTPS."
        )
    if caused_by(ConnectionRefusedError):
        return "The endpoint refused the connection: nothing is listening at that address."
    if caused_by(TimeoutError, urllib3.exceptions.ReadTimeoutError) or any(
        isinstance(item, urllib3.exceptions.ConnectTimeoutError)
        and not isinstance(item, urllib3.exceptions.NewConnectionError)
        for item in chain
    ):
        return f"The endpoint did not answer within {timeout:g} seconds."
    if caused_by(urllib3.exceptions.NewConnectionError):
        return "The endpoint could not be reached over the network."
    if caused_by(ConnectionResetError, urllib3.exceptions.ProtocolError):
        return "The endpoint closed the connection before answering."
    return "The request could not be sent because of a network error."
