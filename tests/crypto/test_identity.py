"""Identities: serialisation, fingerprints and their display forms, signatures."""

from __future__ import annotations

import hashlib
import os

import pytest

from p2pmsg.crypto.identity import (
    Identity,
    fingerprint,
    format_fingerprint,
    short_fingerprint,
    verify_signature,
    x25519_shared,
)


def test_round_trip_through_bytes() -> None:
    identity = Identity.generate(os.urandom)
    again = Identity.from_bytes(identity.to_bytes())
    assert again.public_key == identity.public_key
    assert again.noise_static_public == identity.noise_static_public


def test_fingerprint_is_sha256_of_the_ed25519_key() -> None:
    identity = Identity.generate(os.urandom)
    assert identity.fingerprint == hashlib.sha256(identity.public_key).digest()
    with pytest.raises(ValueError):
        fingerprint(b"\x00" * 31)


def test_display_forms() -> None:
    fp = bytes(range(32))
    full = format_fingerprint(fp)
    assert full.split(" ")[:2] == ["0001", "0203"] and len(full.split(" ")) == 16
    assert short_fingerprint(fp) == "0001 0203 0405 0607"
    assert full.startswith(short_fingerprint(fp))


def test_signatures_bind_key_and_message() -> None:
    alice, bob = Identity.generate(os.urandom), Identity.generate(os.urandom)
    sig = alice.sign(b"hello")
    assert verify_signature(alice.public_key, sig, b"hello")
    assert not verify_signature(alice.public_key, sig, b"hellp")
    assert not verify_signature(bob.public_key, sig, b"hello")
    assert not verify_signature(alice.public_key, sig[:-1], b"hello")


def test_x25519_agrees_between_two_identities() -> None:
    alice, bob = Identity.generate(os.urandom), Identity.generate(os.urandom)
    assert x25519_shared(alice.noise_static, bob.noise_static_public) == x25519_shared(
        bob.noise_static, alice.noise_static_public
    )


def test_private_material_not_in_repr() -> None:
    identity = Identity.generate(os.urandom)
    assert identity.noise_static.hex() not in repr(identity)
