"""Network rules admit by address; the address comes from X-Forwarded-For only through trusted
proxies; repeated failed authentications from one source are refused for a while."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from conftest import API_VERSION, in_process
from stockade.access.failures import FailedAttempts
from stockade.access.network import (
    ALLOW,
    DENY,
    ClientAddress,
    NetworkRules,
    parse_address,
    parse_network,
)


def rules(*ranges: str, default: str = DENY) -> NetworkRules:
    return NetworkRules(default, tuple(parse_network(r) for r in ranges))


def test_allow_by_default_admits_everyone() -> None:
    assert NetworkRules(ALLOW).allows(parse_address("203.0.113.9"))


def test_deny_by_default_admits_only_listed_ipv4_ranges() -> None:
    network = rules("10.1.0.0/16", "192.0.2.7")
    assert network.allows(parse_address("10.1.200.3"))
    assert network.allows(parse_address("192.0.2.7"))
    assert not network.allows(parse_address("10.2.0.1"))


def test_ipv6_ranges_are_matched() -> None:
    network = rules("2001:db8:abcd::/48")
    assert network.allows(parse_address("2001:db8:abcd:12::1"))
    assert not network.allows(parse_address("2001:db8:abce::1"))


def test_ipv4_mapped_ipv6_peers_match_ipv4_rules() -> None:
    assert rules("127.0.0.0/8").allows(parse_address("::ffff:127.0.0.1"))


def test_an_unknown_address_is_denied_when_the_default_is_deny() -> None:
    assert not rules("0.0.0.0/0").allows(None)


def test_forwarded_for_is_ignored_from_an_untrusted_peer() -> None:
    resolve = ClientAddress(["10.0.0.1"]).resolve
    assert resolve("198.51.100.4", "10.1.2.3") == ipaddress.ip_address("198.51.100.4")


def test_forwarded_for_is_believed_from_a_trusted_proxy() -> None:
    resolve = ClientAddress(["10.0.0.0/24"]).resolve
    assert resolve("10.0.0.1", "203.0.113.5") == ipaddress.ip_address("203.0.113.5")


def test_the_client_is_the_nearest_entry_not_added_by_a_trusted_proxy() -> None:
    resolve = ClientAddress(["10.0.0.0/24"]).resolve
    # The client forged the first entry; the outer proxy (10.0.0.2) saw 203.0.113.5.
    assert resolve("10.0.0.1", "192.0.2.1, 203.0.113.5, 10.0.0.2") == ipaddress.ip_address("203.0.113.5")


def test_a_garbled_forwarded_for_leaves_the_client_unknown() -> None:
    resolve = ClientAddress(["10.0.0.1"]).resolve
    assert resolve("10.0.0.1", "unknown") is None


def test_ipv6_forwarded_addresses_are_understood() -> None:
    resolve = ClientAddress(["::1"]).resolve
    assert resolve("::1", "2001:db8::7") == ipaddress.ip_address("2001:db8::7")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_source_is_refused_after_the_limit_of_failures() -> None:
    clock = Clock()
    failures = FailedAttempts(3, 60, clock)
    for _ in range(2):
        failures.record("a")
    assert failures.retry_after("a") is None
    failures.record("a")
    assert failures.retry_after("a") == 60


def test_failures_age_out_of_the_window() -> None:
    clock = Clock()
    failures = FailedAttempts(2, 60, clock)
    failures.record("a")
    clock.now += 30
    failures.record("a")
    assert failures.retry_after("a") == 30
    clock.now += 31
    assert failures.retry_after("a") is None


def test_failures_are_counted_per_source() -> None:
    failures = FailedAttempts(1, 60, Clock())
    failures.record("a")
    assert failures.retry_after("a") is not None
    assert failures.retry_after("b") is None


def test_forwarded_for_from_an_untrusted_peer_cannot_pass_the_rules(tmp_path: Path) -> None:
    with in_process(tmp_path, (), peer="192.0.2.50") as app:
        app.cli("network", "allow", "10.0.0.0/8")
        app.cli("network", "default", "deny")
        with app.http() as http:
            response = http.get("/openai/models", params={"api-version": API_VERSION},
                                headers={"x-forwarded-for": "10.1.1.1"})
    assert response.status_code == 403
    assert response.json() == {"error": {"code": "403", "message": "Access denied due to Virtual Network/Firewall rules."}}


def test_an_allowed_peer_passes_the_rules(tmp_path: Path) -> None:
    with in_process(tmp_path, (), peer="10.1.1.1") as app:
        app.cli("network", "allow", "10.0.0.0/8")
        app.cli("network", "default", "deny")
        with app.http() as http:
            assert http.get("/openai/models", params={"api-version": API_VERSION}).status_code == 200


def test_forwarded_addresses_with_ports_are_understood() -> None:
    resolve = ClientAddress(["10.0.0.1"]).resolve
    assert resolve("10.0.0.1", "203.0.113.5:51234") == ipaddress.ip_address("203.0.113.5")
    assert resolve("10.0.0.1", "[2001:db8::7]:443") == ipaddress.ip_address("2001:db8::7")
