"""Server-side request forgery guard for outgoing webhooks.

A webhook URL is customer input that makes this server open connections. Without a guard
an agent could point it at the cloud metadata service (169.254.169.254), the database, or
anything else on the private network. The rules:

* HTTPS only (plain http is allowed only with WEBHOOKS_ALLOW_PRIVATE_TARGETS, for local
  development);
* the host name is resolved and EVERY address it resolves to must be public: one private
  answer among public ones is enough to refuse, since the connection could use it;
* the check runs again at delivery time and the connection goes to the address that was
  just vetted (the Host header and TLS SNI still carry the name). Resolving twice, once to
  check and once to connect, would let a name flip to 127.0.0.1 in between (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings


class UnsafeTarget(Exception):
    """The URL may not be used as a webhook target; the message says why."""


@dataclass(frozen=True, slots=True)
class VettedTarget:
    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to. Tests replace this function with a fake resolver."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeTarget(f"The host {host} does not resolve ({exc}).") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        # ::ffff:127.0.0.1 reaches loopback just like 127.0.0.1.
        ip = ip.ipv4_mapped
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


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
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = resolve_addresses(host, port)
    if not addresses:
        raise UnsafeTarget(f"The host {host} does not resolve.")
    if not allow_private:
        blocked = [address for address in addresses if not is_public_address(address)]
        if blocked:
            raise UnsafeTarget(
                f"The host {host} resolves to a non-public address ({blocked[0]}); webhooks "
                "can only be sent to public internet addresses."
            )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return VettedTarget(
        url=url, scheme=scheme, host=host, port=port, path=path, addresses=tuple(addresses)
    )


def pinned_post(
    target: VettedTarget, *, body: bytes, headers: dict[str, str], timeout: float
) -> int:
    """POST to the vetted address (not a fresh lookup) and return the HTTP status.

    urllib3 directly (the library under ``requests``) because it can connect to one address
    while verifying the certificate and sending SNI for the name. Redirects are not
    followed: a 3xx could point anywhere, including inside the network.
    """
    address = target.addresses[0]
    name = f"[{target.host}]" if ":" in target.host else target.host  # IPv6 literal
    host_header = name if target.port in (80, 443) else f"{name}:{target.port}"
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
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
        pool = urllib3.HTTPConnectionPool(
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
        # Read at most a little of the body: only the status matters.
        response.read(1024)
        response.release_conn()
        return int(response.status)
    finally:
        pool.close()
