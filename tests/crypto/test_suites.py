"""The AEAD contract every suite must keep, and the Twofish construction in detail."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pmsg.crypto.kdf import hkdf_sha256, label
from p2pmsg.crypto.suites import (
    SUITE_IDS,
    SUITE_NAMES,
    CipherSuite,
    available_suite_names,
    get_suite,
    get_suite_by_id,
)
from p2pmsg.crypto.twofish import Twofish
from p2pmsg.errors import DecryptError, LocalProtocolError

KEY = bytes(range(32))
NONCE = bytes(range(100, 112))
MESSAGE = b"forty bytes of plaintext for flipping!!!"
AAD = b"v1|epoch=7|ctr=42|suite"

SUITES = [get_suite(name) for name in SUITE_NAMES]
suite_param = pytest.mark.parametrize("suite", SUITES, ids=SUITE_NAMES)


def _flips(data: bytes):  # type: ignore[no-untyped-def]
    for i in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[i // 8] ^= 1 << (i % 8)
        yield i, bytes(flipped)


def test_names_and_wire_ids_are_stable() -> None:
    assert SUITE_NAMES == ("aes-256-gcm", "chacha20-poly1305", "twofish-cbc-hmac-sha256")
    assert SUITE_IDS == (1, 2, 3)
    for name, suite_id in zip(SUITE_NAMES, SUITE_IDS, strict=True):
        suite = get_suite(name)
        assert get_suite_by_id(suite_id) is suite
        assert (suite.name, suite.suite_id, suite.key_size, suite.nonce_size) == (
            name,
            suite_id,
            32,
            12,
        )


def test_unknown_suites_name_the_known_ones() -> None:
    with pytest.raises(LocalProtocolError, match="aes-256-gcm, chacha20-poly1305"):
        get_suite("rot13")
    with pytest.raises(LocalProtocolError, match="3=twofish-cbc-hmac-sha256"):
        get_suite_by_id(0)


@suite_param
def test_round_trip_and_keyed_agrees_with_one_shot(suite: CipherSuite) -> None:
    sealed = suite.seal(KEY, NONCE, MESSAGE, AAD)
    assert MESSAGE not in sealed
    assert len(MESSAGE) < len(sealed) <= len(MESSAGE) + suite.overhead
    assert suite.open(KEY, NONCE, sealed, AAD) == MESSAGE
    keyed = suite.keyed(KEY)
    assert keyed.suite is suite
    assert keyed.seal(NONCE, MESSAGE, AAD) == sealed  # deterministic given key and nonce
    assert keyed.open(NONCE, sealed, AAD) == MESSAGE


@suite_param
def test_every_bit_flip_of_message_and_aad_is_rejected(suite: CipherSuite) -> None:
    keyed = suite.keyed(KEY)
    sealed = keyed.seal(NONCE, MESSAGE, AAD)
    accepted = []
    for i, bad in _flips(sealed):
        try:
            keyed.open(NONCE, bad, AAD)
            accepted.append(f"sealed bit {i}")
        except DecryptError:
            pass
    for i, bad in _flips(AAD):
        try:
            keyed.open(NONCE, sealed, bad)
            accepted.append(f"aad bit {i}")
        except DecryptError:
            pass
    assert not accepted


@suite_param
def test_truncation_extension_and_wrong_inputs_are_rejected(suite: CipherSuite) -> None:
    keyed = suite.keyed(KEY)
    sealed = keyed.seal(NONCE, MESSAGE, AAD)
    forgeries = [sealed[:n] for n in range(len(sealed))]
    forgeries += [sealed + b"\x00", sealed + bytes(16), sealed + sealed[-16:]]
    for bad in forgeries:
        with pytest.raises(DecryptError):
            keyed.open(NONCE, bad, AAD)
    next_nonce = (int.from_bytes(NONCE, "big") + 1).to_bytes(12, "big")
    for nonce in (next_nonce, bytes(12), NONCE[::-1]):
        with pytest.raises(DecryptError):
            keyed.open(nonce, sealed, AAD)
    with pytest.raises(DecryptError):
        suite.open(bytes(32), NONCE, sealed, AAD)
    with pytest.raises(DecryptError):
        keyed.open(NONCE, sealed, b"")
    # The tag covers the aad/ciphertext boundary: moving a byte across it fails.
    with pytest.raises(DecryptError):
        keyed.open(NONCE, sealed[1:], AAD + sealed[:1])


@suite_param
def test_a_different_suite_cannot_open_it(suite: CipherSuite) -> None:
    sealed = suite.seal(KEY, NONCE, MESSAGE, AAD)
    for other in SUITES:
        if other is not suite:
            with pytest.raises(DecryptError):
                other.open(KEY, NONCE, sealed, AAD)


@suite_param
@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_bad_key_size(suite: CipherSuite, size: int) -> None:
    with pytest.raises(LocalProtocolError, match="32-byte key"):
        suite.seal(bytes(size), NONCE, MESSAGE, AAD)
    with pytest.raises(LocalProtocolError):
        suite.keyed(bytes(size))
    sealed = suite.seal(KEY, NONCE, MESSAGE, AAD)
    with pytest.raises(DecryptError):
        suite.open(bytes(size), NONCE, sealed, AAD)


@suite_param
@pytest.mark.parametrize("size", [0, 8, 11, 13, 16])
def test_bad_nonce_size(suite: CipherSuite, size: int) -> None:
    keyed = suite.keyed(KEY)
    with pytest.raises(LocalProtocolError, match="12-byte nonce"):
        keyed.seal(bytes(size), MESSAGE, AAD)
    sealed = keyed.seal(NONCE, MESSAGE, AAD)
    with pytest.raises(DecryptError):
        keyed.open(bytes(size), sealed, AAD)
    with pytest.raises(DecryptError):
        suite.open(KEY, bytes(size), sealed, AAD)


@suite_param
def test_garbage_types_on_open_are_opaque_failures(suite: CipherSuite) -> None:
    keyed = suite.keyed(KEY)
    with pytest.raises(DecryptError):
        keyed.open(NONCE, "not bytes" * 8, AAD)  # type: ignore[arg-type]


@suite_param
@settings(max_examples=60, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=12, max_size=12),
    plaintext=st.binary(max_size=300),
    aad=st.binary(max_size=64),
)
def test_round_trip_property(
    suite: CipherSuite, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes
) -> None:
    sealed = suite.seal(key, nonce, plaintext, aad)
    assert suite.open(key, nonce, sealed, aad) == plaintext


@suite_param
@settings(max_examples=40, deadline=None)
@given(plaintext=st.binary(max_size=100), position=st.integers(min_value=0), bit=st.integers(0, 7))
def test_any_flip_is_rejected_property(
    suite: CipherSuite, plaintext: bytes, position: int, bit: int
) -> None:
    keyed = suite.keyed(KEY)
    sealed = bytearray(keyed.seal(NONCE, plaintext, AAD))
    sealed[position % len(sealed)] ^= 1 << bit
    with pytest.raises(DecryptError):
        keyed.open(NONCE, bytes(sealed), AAD)


# --- twofish-cbc-hmac-sha256, rebuilt from its specification --------------------------------

TWOFISH = get_suite("twofish-cbc-hmac-sha256")


def _twofish_parts(key: bytes, nonce: bytes) -> tuple[Twofish, bytes, bytes]:
    enc_key = hkdf_sha256(key, salt=None, info=label("suite", TWOFISH.name, "enc"))
    mac_key = hkdf_sha256(key, salt=None, info=label("suite", TWOFISH.name, "mac"))
    assert enc_key != mac_key
    cipher = Twofish(enc_key)
    return cipher, mac_key, cipher.encrypt_block(nonce + bytes(4))


def _spec_tag(mac_key: bytes, aad: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    data = len(aad).to_bytes(8, "big") + aad + iv + ciphertext
    return hmac.new(mac_key, data, hashlib.sha256).digest()


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 40])
def test_twofish_suite_matches_its_specification(length: int) -> None:
    plaintext = bytes(range(length))
    cipher, mac_key, iv = _twofish_parts(KEY, NONCE)
    pad = 16 - length % 16
    ciphertext = cipher.cbc_encrypt(iv, plaintext + bytes([pad]) * pad)
    expected = ciphertext + _spec_tag(mac_key, AAD, iv, ciphertext)
    assert TWOFISH.seal(KEY, NONCE, plaintext, AAD) == expected
    assert len(expected) == (length // 16 + 1) * 16 + 32


@pytest.mark.parametrize(
    "bad_padding",
    [
        bytes(16),  # pad byte 0
        bytes(15) + b"\x11",  # pad longer than a block
        bytes(14) + b"\x01\x02",  # pad bytes disagree
        bytes(12) + b"\x03\x04\x04\x04",
    ],
)
def test_twofish_authentic_but_badly_padded_is_the_same_opaque_error(bad_padding: bytes) -> None:
    """A correctly tagged message with broken padding (a buggy sender) fails like a forgery."""
    cipher, mac_key, iv = _twofish_parts(KEY, NONCE)
    ciphertext = cipher.cbc_encrypt(iv, bad_padding)
    sealed = ciphertext + _spec_tag(mac_key, AAD, iv, ciphertext)
    with pytest.raises(DecryptError) as bad_pad:
        TWOFISH.open(KEY, NONCE, sealed, AAD)
    with pytest.raises(DecryptError) as bad_tag:
        TWOFISH.open(KEY, NONCE, sealed[:-1] + bytes([sealed[-1] ^ 1]), AAD)
    assert str(bad_pad.value) == str(bad_tag.value) == "decryption failed"
    assert bad_pad.value.__cause__ is None and bad_pad.value.__context__ is None


def test_all_suites_are_available_here() -> None:
    """The twofish package is a hard dependency, so CI must be able to offer all three."""
    assert available_suite_names() == SUITE_NAMES
    assert all(s.available() for s in SUITES)
