"""The identity file format: round trips, wrong passwords, and every kind of damage."""

from __future__ import annotations

import os
import struct

import msgpack
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from p2pmsg.crypto import keystore
from p2pmsg.crypto.identity import Identity
from p2pmsg.errors import KeystoreError, WrongPasswordError

FAST = 1_000  # unit tests only; the default is checked separately
PASSWORD = "Correct-Horse-9"  # noqa: S105 - test fixture
# Offsets in the v1 layout (see the module docstring).
ITER_OFFSET, SALT_LEN_OFFSET, CT_LEN_OFFSET, SALT_OFFSET = 10, 14, 15, 19


def _seal(
    identity: Identity | None = None,
    *,
    password: str = PASSWORD,
    data_key: bytes | None = None,
    name: str = "alice",
    created: float = 1700000000.5,
    iterations: int = FAST,
) -> bytes:
    return keystore.seal_keystore(
        identity or Identity.generate(os.urandom),
        data_key or os.urandom(32),
        name,
        password,
        rng=os.urandom,
        created=created,
        iterations=iterations,
    )


def test_default_iterations_meet_owasp() -> None:
    assert keystore.DEFAULT_ITERATIONS >= 600_000
    identity = Identity.generate(os.urandom)
    blob = keystore.seal_keystore(identity, bytes(32), "n", PASSWORD, rng=os.urandom, created=0.0)
    assert keystore.read_header_iterations(blob) == keystore.DEFAULT_ITERATIONS


def test_round_trip_keeps_everything() -> None:
    identity = Identity.generate(os.urandom)
    data_key = os.urandom(32)
    blob = _seal(identity, data_key=data_key, name="Zoë 🦊")
    contents = keystore.open_keystore(blob, PASSWORD)
    assert contents.identity.to_bytes() == identity.to_bytes()
    assert contents.data_key == data_key
    assert contents.name == "Zoë 🦊"
    assert contents.created == 1700000000.5
    assert contents.iterations == FAST


def test_secrets_are_not_in_the_clear_nor_in_repr() -> None:
    identity = Identity.generate(os.urandom)
    data_key = os.urandom(32)
    blob = _seal(identity, data_key=data_key)
    assert identity.to_bytes()[:32] not in blob and data_key not in blob
    text = repr(keystore.open_keystore(blob, PASSWORD))
    assert data_key.hex() not in text and "signing_key" not in text


def test_fresh_salt_and_nonce_every_time() -> None:
    identity = Identity.generate(os.urandom)
    a, b = _seal(identity), _seal(identity)
    assert a[SALT_OFFSET : SALT_OFFSET + 28] != b[SALT_OFFSET : SALT_OFFSET + 28]


def test_wrong_password_says_only_that() -> None:
    blob = _seal()
    with pytest.raises(WrongPasswordError) as info:
        keystore.open_keystore(blob, PASSWORD + "x")
    assert str(info.value) == "wrong password"


def test_password_is_unicode_normalised() -> None:
    composed, decomposed = "Caf\u00e9-Pass-1", "Cafe\u0301-Pass-1"
    blob = _seal(password=composed)
    assert keystore.open_keystore(blob, decomposed).name == "alice"


def test_rewrap_keeps_identity_data_key_and_date() -> None:
    identity = Identity.generate(os.urandom)
    data_key = os.urandom(32)
    old = _seal(identity, data_key=data_key)
    new = keystore.rewrap(old, PASSWORD, "New-Pass-77!", rng=os.urandom, iterations=FAST)
    with pytest.raises(WrongPasswordError):
        keystore.open_keystore(new, PASSWORD)
    contents = keystore.open_keystore(new, "New-Pass-77!")
    assert contents.identity.fingerprint == identity.fingerprint
    assert contents.identity.to_bytes() == identity.to_bytes()
    assert contents.data_key == data_key
    assert contents.created == 1700000000.5


def test_rewrap_with_wrong_old_password_fails() -> None:
    with pytest.raises(WrongPasswordError):
        keystore.rewrap(_seal(), "nope", "New-Pass-77!", rng=os.urandom, iterations=FAST)


def test_reseal_never_lowers_the_iteration_count() -> None:
    contents = keystore.open_keystore(_seal(iterations=FAST), PASSWORD)
    raised = keystore.reseal(contents, "New-Pass-77!", rng=os.urandom)
    assert keystore.read_header_iterations(raised) == keystore.DEFAULT_ITERATIONS


@pytest.mark.parametrize("length", range(0, 120))
def test_every_truncation_is_named(length: int) -> None:
    blob = _seal()
    assert length < len(blob)
    with pytest.raises(KeystoreError) as info:
        keystore.open_keystore(blob[:length], PASSWORD)
    assert not isinstance(info.value, WrongPasswordError)
    assert "truncated" in str(info.value) or "empty" in str(info.value)


def test_truncation_inside_the_ciphertext_is_still_named() -> None:
    blob = _seal()
    for cut in (1, 5, 16, 17):
        with pytest.raises(KeystoreError, match="truncated"):
            keystore.open_keystore(blob[:-cut], PASSWORD)


def test_appended_bytes_are_named() -> None:
    with pytest.raises(KeystoreError, match="unexpected bytes after its end"):
        keystore.open_keystore(_seal() + b"\0", PASSWORD)


@pytest.mark.parametrize(
    "junk",
    [b"hello world, this is not a key", b"\x00" * 300, b"-----BEGIN OPENSSH PRIVATE KEY-----\n"],
)
def test_other_files_are_not_identity_files(junk: bytes) -> None:
    with pytest.raises(KeystoreError, match="not a p2pmsg identity file"):
        keystore.open_keystore(junk, PASSWORD)


def test_unknown_version_and_kdf_are_named() -> None:
    blob = bytearray(_seal())
    blob[8] = 2
    with pytest.raises(KeystoreError, match="format version 2 is not supported"):
        keystore.open_keystore(bytes(blob), PASSWORD)
    blob = bytearray(_seal())
    blob[9] = 7
    with pytest.raises(KeystoreError, match="unknown key derivation id 7"):
        keystore.open_keystore(bytes(blob), PASSWORD)


@pytest.mark.parametrize("iterations", [0, keystore.MAX_ITERATIONS + 1, 2**32 - 1])
def test_absurd_iteration_counts_are_refused_before_any_work(iterations: int) -> None:
    blob = bytearray(_seal())
    struct.pack_into(">I", blob, ITER_OFFSET, iterations)
    with pytest.raises(KeystoreError, match="invalid iteration count"):
        keystore.open_keystore(bytes(blob), PASSWORD)


def test_lowering_the_iteration_count_breaks_authentication() -> None:
    # The header is associated data: an attacker cannot weaken the file in place.
    blob = bytearray(_seal())
    struct.pack_into(">I", blob, ITER_OFFSET, 1)
    with pytest.raises(WrongPasswordError):
        keystore.open_keystore(bytes(blob), PASSWORD)


def test_every_single_bit_flip_is_rejected() -> None:
    blob = _seal()
    for bit in range(len(blob) * 8):
        if bit // 8 == ITER_OFFSET + 1 and bit % 8 >= 4:
            # These flips make a valid but huge count (1M..8M iterations): slow, and
            # covered by the two tests above. Every other bit, including the rest
            # of the iteration field, runs here.
            continue
        damaged = bytearray(blob)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(KeystoreError):
            keystore.open_keystore(bytes(damaged), PASSWORD)


def test_header_damage_gets_a_specific_message() -> None:
    blob = _seal()
    cases = {
        0: "not a p2pmsg identity file",
        8: "format version",
        9: "key derivation",
        SALT_LEN_OFFSET: "salt length",
        CT_LEN_OFFSET: "ciphertext length",
    }
    for offset, message in cases.items():
        damaged = bytearray(blob)
        damaged[offset] ^= 0x80
        with pytest.raises(KeystoreError, match=message):
            keystore.open_keystore(bytes(damaged), PASSWORD)


def _seal_raw_payload(payload: bytes, password: str = PASSWORD) -> bytes:
    """A correctly encrypted file around an arbitrary payload (what a foreign tool might write)."""
    salt, nonce = os.urandom(16), os.urandom(12)
    header = struct.pack(">8sBBIBI", keystore.MAGIC, 1, 1, FAST, 16, len(payload) + 16)
    header += salt + nonce
    key = keystore.derive_file_key(password, salt, FAST)
    return header + AESGCM(key).encrypt(nonce, payload, header)


@pytest.mark.parametrize(
    "payload",
    [
        b"\xc1",  # never-used msgpack byte
        msgpack.packb([1, 2, 3]),
        msgpack.packb({"v": 9}),
        msgpack.packb(
            {"v": 1, "identity": b"short", "data_key": bytes(32), "name": "a", "created": 0.0}
        ),
        msgpack.packb(
            {"v": 1, "identity": bytes(64), "data_key": bytes(31), "name": "a", "created": 0.0}
        ),
        msgpack.packb(
            {"v": 1, "identity": bytes(64), "data_key": bytes(32), "name": 5, "created": 0.0}
        ),
    ],
)
def test_authenticated_but_malformed_payloads_are_named(payload: bytes) -> None:
    with pytest.raises(KeystoreError) as info:
        keystore.open_keystore(_seal_raw_payload(payload), PASSWORD)
    assert not isinstance(info.value, WrongPasswordError)
    assert "payload" in str(info.value) or "key material" in str(info.value)


def test_seal_refuses_bad_arguments() -> None:
    identity = Identity.generate(os.urandom)
    with pytest.raises(ValueError):
        keystore.seal_keystore(identity, bytes(16), "a", PASSWORD, rng=os.urandom, created=0)
    with pytest.raises(ValueError):
        keystore.seal_keystore(
            identity, bytes(32), "a", PASSWORD, rng=os.urandom, created=0, iterations=0
        )
