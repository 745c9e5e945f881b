"""The rules for reading a hostile mDNS advertisement (no network needed)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pmsg.errors import ConfigError
from p2pmsg.node.net.advert import (
    MAX_ADDRESSES,
    MAX_NAME_CHARS,
    SERVICE_TYPE,
    InvalidAdvertisement,
    PeerAdvertised,
    build_txt,
    instance_name,
    merge,
    own_display_name,
    parse_advertisement,
    usable_addresses,
)

FP = "ab" * 32


def txt(*entries: bytes) -> bytes:
    """Encode TXT rdata the way it travels: each string prefixed by its length."""
    return b"".join(bytes([len(e)]) + e for e in entries)


def good(**override: bytes) -> bytes:
    fields = {b"v": b"1", b"fp": FP.encode(), b"name": "Ålice 🙂".encode()}
    fields.update({k.encode(): v for k, v in override.items()})
    return txt(*(k + b"=" + v for k, v in fields.items()))


def reason(raw: bytes, port: int | None = 4000, addresses: tuple[str, ...] = ("10.0.0.5",)) -> str:
    with pytest.raises(InvalidAdvertisement) as info:
        parse_advertisement(raw, port, addresses)
    return info.value.reason


def test_a_good_advertisement_parses() -> None:
    advert = parse_advertisement(good(), 4000, ["10.0.0.5"])
    assert advert == PeerAdvertised(FP, "Ålice 🙂", ("10.0.0.5",), 4000, 1)


def test_what_we_publish_is_what_we_accept() -> None:
    props = build_txt(FP, "bob", 1)
    raw = txt(*(f"{k}={v}".encode() for k, v in props.items()))
    assert parse_advertisement(raw, 1, ["192.168.1.2"]).name == "bob"


@pytest.mark.parametrize(
    "fp",
    [
        "AB" * 32,  # upper case is not the canonical form
        "ab" * 31,  # too short
        "ab" * 33,  # too long
        "zz" * 32,  # not hex
        "ab" * 31 + "a\x00",  # control character
    ],
)
def test_bad_fingerprints_are_rejected(fp: str) -> None:
    assert reason(good(fp=fp.encode())) == "bad_fingerprint"


@pytest.mark.parametrize(
    "name",
    [
        b"",
        b"x" * (MAX_NAME_CHARS + 1),
        b"evil\x1b[2Jname",  # terminal escape
        "bob\u202ecod.exe".encode(),  # bidi override hides the real text
        b"bob\nroot",
        b" padded",
        b"\xff\xfe",  # not UTF-8
    ],
)
def test_bad_names_are_rejected(name: bytes) -> None:
    assert reason(good(name=name)) == "bad_name"


@pytest.mark.parametrize("version", [b"", b"0", b"x", b"123456", "\u0661".encode(), b"-1", b" 1"])
def test_bad_versions_are_rejected(version: bytes) -> None:
    assert reason(good(v=version)) == "bad_version"


def test_missing_keys_and_valueless_keys_are_rejected() -> None:
    assert reason(txt(b"v=1", b"name=x")) == "bad_fingerprint"
    assert reason(txt(b"v=1", b"fp=" + FP.encode(), b"name")) == "bad_name"


def test_a_duplicate_key_is_rejected_even_with_different_case() -> None:
    raw = good() + txt(b"FP=" + b"cd" * 32)
    assert reason(raw) == "txt_duplicate_key"


def test_truncated_and_oversized_txt_are_rejected() -> None:
    assert reason(good()[:-3]) == "txt_malformed"
    assert reason(good() + txt(b"pad=" + b"x" * 250) * 5) == "txt_too_large"
    assert reason(txt(b"=novalue")) == "txt_malformed"


def test_bad_ports_are_rejected() -> None:
    assert reason(good(), port=0) == "bad_port"
    assert reason(good(), port=None) == "bad_port"
    assert reason(good(), port=70000) == "bad_port"


def test_addresses_pointing_at_ourselves_are_dropped() -> None:
    unusable = ("127.0.0.1", "::1", "0.0.0.0", "224.0.0.251")  # noqa: S104 - data, not a bind
    assert reason(good(), addresses=unusable) == ("no_usable_address")
    kept = usable_addresses(["127.0.0.1", "10.0.0.1", "10.0.0.1", "junk", "fe80::1%2"])
    assert kept == ("10.0.0.1", "fe80::1%2")
    assert len(usable_addresses(f"10.0.1.{i}" for i in range(1, 100))) == MAX_ADDRESSES


def test_merge_unions_addresses_and_takes_the_latest_fields() -> None:
    old = PeerAdvertised(FP, "old", ("10.0.0.1",), 1000, 1)
    new = PeerAdvertised(FP, "new", ("10.0.0.2", "10.0.0.1"), 2000, 2)
    assert merge([old, new]) == PeerAdvertised(FP, "new", ("10.0.0.1", "10.0.0.2"), 2000, 2)
    assert merge([]) is None


def test_instance_names_depend_on_the_identity_not_the_display_name() -> None:
    a, b = instance_name("aa" * 32), instance_name("ab" * 32)
    assert a != b and a.endswith("." + SERVICE_TYPE)
    assert len(a.split(".")[0].encode()) <= 63


def test_our_own_bad_name_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match="display name"):
        own_display_name("x\x07")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(-5, 70000), st.lists(st.text(max_size=40), max_size=5))
def test_arbitrary_input_never_raises_anything_else(
    raw: bytes, port: int, addresses: list[str]
) -> None:
    try:
        advert = parse_advertisement(raw, port, addresses)
    except InvalidAdvertisement:
        return
    assert len(advert.fingerprint_hex) == 64
    assert advert.addresses
