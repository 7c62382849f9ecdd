"""The outgoing-URL guard, by classes of input: every special-purpose range of the IANA
IPv4 and IPv6 registries (and the forms that carry an IPv4 address inside IPv6), ports,
refusal at save through HTTP, the peer check after connecting, and no redirects.

The ranges are written out here from the registries, not imported from the guard, so the
test states what the registries say and the guard has to agree.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
import urllib3.util.connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from mailboxes.models import WebhookDelivery
from mailboxes.services import netguard, webhooks
from tests.conftest import assert_error

# IANA IPv4 Special-Purpose Address Registry, plus multicast.
IPV4_SPECIAL = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.0.0/29",
    "192.0.0.8/32",
    "192.0.0.9/32",
    "192.0.0.10/32",
    "192.0.0.170/31",
    "192.0.2.0/24",
    "192.31.196.0/24",
    "192.52.193.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "192.175.48.0/24",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
]
# IANA IPv6 Special-Purpose Address Registry entries that carry no IPv4 address, the
# deprecated site-local range, multicast, and unallocated space outside 2000::/3.
IPV6_SPECIAL = [
    "::/128",
    "::1/128",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:1::1/128",
    "2001:2::/48",
    "2001:3::/32",
    "2001:4:112::/48",
    "2001:10::/28",
    "2001:20::/28",
    "2001:30::/28",
    "2001:db8::/32",
    "2620:4f:8000::/48",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
    "4000::/2",
    "c000::/3",
]
ALL_V4_SPECIAL = [ipaddress.IPv4Network(n) for n in IPV4_SPECIAL]

pure = settings(max_examples=300, deadline=None, derandomize=True)
through_http = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _in(network: str) -> st.SearchStrategy[Any]:
    net = ipaddress.ip_network(network)
    return st.integers(0, net.num_addresses - 1).map(lambda offset: net[offset])


special_v4 = st.sampled_from(IPV4_SPECIAL).flatmap(_in)
special_v6 = st.sampled_from(IPV6_SPECIAL).flatmap(_in)
public_v4 = st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1)).filter(
    lambda ip: not any(ip in net for net in ALL_V4_SPECIAL)
)


def mapped(v4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(0xFFFF << 32 | int(v4))


def compatible(v4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(int(v4))


def nat64(v4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(v4))


def sixtofour(v4: ipaddress.IPv4Address, site: int = 0) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(0x2002 << 112 | int(v4) << 80 | site)


def teredo(server: ipaddress.IPv4Address, client: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    # 2001:0::/32, server in bits 32-63, the client's address inverted in the last 32 bits.
    return ipaddress.IPv6Address(0x20010000 << 96 | int(server) << 64 | (~int(client) & 0xFFFFFFFF))


EMBEDDINGS = [mapped, compatible, nat64, sixtofour]


@pure
@given(address=special_v4)
def test_every_ipv4_special_purpose_address_is_refused(address: ipaddress.IPv4Address) -> None:
    assert netguard.address_refusal(str(address)) is not None


@pure
@given(address=special_v6)
def test_every_ipv6_special_purpose_address_is_refused(address: ipaddress.IPv6Address) -> None:
    assert netguard.address_refusal(str(address)) is not None


@pure
@given(inner=special_v4.filter(lambda ip: int(ip) > 1), embed=st.sampled_from(EMBEDDINGS))
def test_ipv6_forms_carrying_a_special_ipv4_are_refused(
    inner: ipaddress.IPv4Address, embed: Any
) -> None:
    address = embed(inner)
    reason = netguard.address_refusal(str(address))
    assert reason is not None, address
    assert str(inner) in reason, (address, reason)


@pure
@given(inner=public_v4, embed=st.sampled_from(EMBEDDINGS))
def test_ipv6_forms_carrying_a_public_ipv4_are_judged_by_it(
    inner: ipaddress.IPv4Address, embed: Any
) -> None:
    assert netguard.address_refusal(str(embed(inner))) is None


@pure
@given(server=public_v4, client=st.one_of(public_v4, special_v4), flip=st.booleans())
def test_teredo_is_judged_by_both_ipv4_addresses_it_carries(
    server: ipaddress.IPv4Address, client: ipaddress.IPv4Address, flip: bool
) -> None:
    if flip:
        server, client = client, server
    public = not any(ip in net for ip in (server, client) for net in ALL_V4_SPECIAL)
    assert (netguard.address_refusal(str(teredo(server, client))) is None) is public


@pure
@given(address=public_v4)
def test_public_ipv4_passes(address: ipaddress.IPv4Address) -> None:
    assert netguard.address_refusal(str(address)) is None


@pure
@given(
    address=st.integers(int(ipaddress.IPv6Address("2600::")), 2**126 - 1).map(ipaddress.IPv6Address)
)
def test_global_unicast_ipv6_outside_special_ranges_passes(address: ipaddress.IPv6Address) -> None:
    # 2600::/7 .. 3fff:: minus 3fff::/20 holds no special-purpose entry.
    if address in ipaddress.IPv6Network("3fff::/20"):
        return
    assert netguard.address_refusal(str(address)) is None


@pure
@given(host=st.one_of(special_v4.map(str), special_v6.map(lambda ip: f"[{ip}]")))
def test_literal_special_hosts_are_refused_in_urls(host: str) -> None:
    with pytest.raises(netguard.UnsafeTarget):
        netguard.url_vet(f"https://{host}/hook")


@pytest.mark.usefixtures("public_dns")
@pure
@given(port=st.integers(1, 65535).filter(lambda port: port != 443))
def test_only_port_443_by_default(port: int) -> None:
    with pytest.raises(netguard.UnsafeTarget, match="Port"):
        netguard.url_vet(f"https://hooks.example.com:{port}/hook")
    assert netguard.url_vet("https://hooks.example.com:443/hook").port == 443


@pytest.mark.usefixtures("public_dns")
def test_the_operator_lists_the_allowed_ports(settings: Any) -> None:
    settings.WEBHOOKS_ALLOWED_PORTS = [443, 8443]
    assert netguard.url_vet("https://hooks.example.com:8443/hook").port == 8443
    with pytest.raises(netguard.UnsafeTarget, match="8443"):
        netguard.url_vet("https://hooks.example.com:9000/hook")


def test_plain_http_is_refused() -> None:
    with pytest.raises(netguard.UnsafeTarget, match="https"):
        netguard.url_vet("http://93.184.216.34/hook")


# --- At save, through HTTP ----------------------------------------------------------------

unsafe_url = st.one_of(
    special_v4.map(lambda ip: f"https://{ip}/hook"),
    special_v6.map(lambda ip: f"https://[{ip}]/hook"),
    st.tuples(special_v4.filter(lambda ip: int(ip) > 1), st.sampled_from(EMBEDDINGS)).map(
        lambda pair: f"https://[{pair[1](pair[0])}]/hook"
    ),
    st.integers(1, 65535)
    .filter(lambda port: port != 443)
    .map(lambda port: f"https://hooks.example.com:{port}/hook"),
    st.just("http://hooks.example.com/hook"),
)


@pytest.mark.django_db
@pytest.mark.usefixtures("public_dns")
@through_http
@given(url=unsafe_url, field=st.sampled_from(["webhook_url", "oversight_webhook_url"]))
def test_mailbox_urls_are_refused_at_save(api: Any, owner: Any, url: str, field: str) -> None:
    client: APIClient = api("admin")
    response = client.patch(f"/v1/mailboxes/{owner.mailbox.pk}", {field: url}, format="json")
    assert_error(response, "invalid_parameter", param=field)
    owner.mailbox.refresh_from_db()
    assert getattr(owner.mailbox, field) is None


@pytest.mark.django_db
@pytest.mark.usefixtures("public_dns")
@through_http
@given(url=unsafe_url)
def test_subscription_urls_are_refused_at_save(api: Any, url: str) -> None:
    response = api("admin").post(
        "/v1/webhooks", {"url": url, "events": ["message.received"]}, format="json"
    )
    assert_error(response, "invalid_parameter", param="url")


# --- At connect time and after ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("public_dns")
def test_the_peer_actually_connected_to_is_judged(
    owner: Any, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name resolves to a public address, yet the socket lands on 127.0.0.1 (a
    resolver or network that lies after the check): nothing is sent over it."""
    real = urllib3.util.connection.create_connection

    def elsewhere(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        return real(("127.0.0.1", receiver.port), *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", elsewhere)
    delivery = WebhookDelivery.objects.create(
        account=owner.account,
        mailbox=owner.mailbox,
        event_type="message.received",
        url="https://hooks.example.com/hook",
        payload={"data": {}},
    )
    webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert "non-public address (127.0.0.1: loopback)" in delivery.last_error
    assert delivery.response_status is None
    assert receiver.requests == []


@pytest.mark.django_db
@pytest.mark.usefixtures("allow_private")
def test_redirects_are_not_followed(owner: Any, start_receiver: Any) -> None:
    target = start_receiver()
    redirecting = start_receiver(statuses=[307])
    redirecting.reply_headers = {"Location": target.url}
    delivery = WebhookDelivery.objects.create(
        account=owner.account,
        mailbox=owner.mailbox,
        event_type="message.received",
        url=redirecting.url,
        payload={"data": {}},
    )
    webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.response_status == 307
    assert delivery.status == WebhookDelivery.Status.PENDING  # retried later, as a failure
    assert len(redirecting.requests) == 1
    assert target.requests == []
