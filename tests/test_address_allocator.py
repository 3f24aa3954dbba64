"""AddressAllocator: static addresses, automatic picks, stability across reloads."""

from __future__ import annotations

import ipaddress

from turnout.runtime import AddressAllocator

POOL = ipaddress.ip_network("10.0.0.0/29")  # hosts .1 to .6
A, B, C = ("ns", "a"), ("ns", "b"), ("ns", "c")


def test_static_address_in_pool_is_used_and_avoided_by_automatic_picks() -> None:
    allocator = AddressAllocator(POOL)
    result = allocator.assign({A: [], B: ["10.0.0.1"], C: []})
    assert result.addresses == {A: "10.0.0.2", B: "10.0.0.1", C: "10.0.0.3"}
    assert result.unusable == {}


def test_unusable_static_addresses_say_why() -> None:
    allocator = AddressAllocator(POOL)
    result = allocator.assign(
        {A: ["10.0.0.4"], B: ["192.0.2.1", "10.0.0.4", "10.0.0.0", "10.0.0.7", "10.0.0.5"]}
    )
    assert result.addresses == {A: "10.0.0.4", B: "10.0.0.5"}
    assert result.unusable[B] == (
        "192.0.2.1 is not a host address of the address pool 10.0.0.0/29",
        "10.0.0.4 is used by Gateway ns/a",
        "10.0.0.0 is not a host address of the address pool 10.0.0.0/29",
        "10.0.0.7 is not a host address of the address pool 10.0.0.0/29",
    )
    none = allocator.assign({C: ["192.0.2.1"]})
    assert none.addresses == {C: None}


def test_reloads_keep_addresses_and_the_holder_keeps_a_contested_one() -> None:
    allocator = AddressAllocator(POOL)
    first = allocator.assign({B: [], C: []})
    assert first.addresses == {B: "10.0.0.1", C: "10.0.0.2"}
    # A new Gateway that sorts first neither moves the others nor takes a live address.
    again = allocator.assign({A: ["10.0.0.2"], B: [], C: []})
    assert again.addresses == {A: None, B: "10.0.0.1", C: "10.0.0.2"}
    assert again.unusable == {A: ("10.0.0.2 is used by Gateway ns/c",)}
    # Once the holder is gone the requester gets it; the others stay put.
    after = allocator.assign({A: ["10.0.0.2"], B: []})
    assert after.addresses == {A: "10.0.0.2", B: "10.0.0.1"}
    # Reloading the same input changes nothing.
    assert allocator.assign({A: ["10.0.0.2"], B: []}).addresses == after.addresses


def test_a_gateway_that_drops_its_static_address_gets_an_automatic_one() -> None:
    allocator = AddressAllocator(POOL)
    assert allocator.assign({A: ["10.0.0.3"]}).addresses == {A: "10.0.0.3"}
    assert allocator.assign({A: []}).addresses == {A: "10.0.0.3"}  # keeps it
    assert allocator.assign({A: ["10.0.0.5"]}).addresses == {A: "10.0.0.5"}


def test_pool_exhaustion_gives_none() -> None:
    allocator = AddressAllocator(ipaddress.ip_network("10.0.0.0/30"))  # .1 and .2
    result = allocator.assign({A: [], B: [], C: []})
    assert result.addresses == {A: "10.0.0.1", B: "10.0.0.2", C: None}


def test_ipv6_spellings_are_one_address() -> None:
    allocator = AddressAllocator(ipaddress.ip_network("fd00::/120"))
    result = allocator.assign({A: ["fd00:0::5"], B: ["fd00::5"]})
    assert result.addresses == {A: "fd00::5", B: None}
