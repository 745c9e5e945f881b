"""Long-term identities and their fingerprints.

An identity is an Ed25519 signing key (who you are) plus an X25519 key used
as the Noise static key. The X25519 key is bound to the identity by an Ed25519
signature in the handshake, so only the Ed25519 key needs to be pinned and
compared; its fingerprint is SHA-256 of the raw 32-byte public key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)

from p2pmsg.errors import HandshakeError

Rng = Callable[[int], bytes]

KEY_LEN = 32
SIGNATURE_LEN = 64
FINGERPRINT_LEN = 32
SHORT_FINGERPRINT_BYTES = 8
_SERIALIZED_LEN = 2 * KEY_LEN


def fingerprint(public_key: bytes) -> bytes:
    """SHA-256 of a raw Ed25519 public key."""
    if len(public_key) != KEY_LEN:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return hashlib.sha256(public_key).digest()


def format_fingerprint(fp: bytes) -> str:
    """Full form for comparing by eye: 16 groups of 4 hex digits."""
    h = fp.hex()
    return " ".join(h[i : i + 4] for i in range(0, len(h), 4))


def short_fingerprint(fp: bytes) -> str:
    """Short form for lists: the first 8 bytes, as 4 groups of 4 hex digits."""
    return format_fingerprint(fp[:SHORT_FINGERPRINT_BYTES])


def verify_signature(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `data` by `public_key`."""
    if len(public_key) != KEY_LEN or len(signature) != SIGNATURE_LEN:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def x25519_shared(private_key: bytes, public_key: bytes) -> bytes:
    """RFC 7748 X25519 of a raw private and a raw peer public key.

    Any 32-byte public key is accepted as RFC 7748 says (the top bit is
    masked, non-canonical encodings and points on the twist are computed, not
    refused), except when the result is all zeros: that happens exactly for the
    small-order points, which would let a peer force a known shared secret, so
    it raises `HandshakeError` (RFC 7748, section 6.1). Wycheproof marks those
    cases "acceptable" either way; we choose to refuse them.
    """
    if len(private_key) != KEY_LEN:
        raise ValueError("an X25519 private key is 32 bytes")
    if len(public_key) != KEY_LEN:
        raise HandshakeError("an X25519 public key is 32 bytes")
    small_order = HandshakeError("X25519 public key has small order (all-zero shared secret)")
    try:
        shared = X25519PrivateKey.from_private_bytes(private_key).exchange(
            X25519PublicKey.from_public_bytes(public_key)
        )
    except ValueError:
        # OpenSSL-backed `cryptography` refuses an all-zero result itself.
        raise small_order from None
    if shared == bytes(KEY_LEN):  # in case a backend ever stops refusing it
        raise small_order
    return shared


@dataclass(frozen=True)
class Identity:
    """A private identity. `noise_static` is the raw X25519 private key."""

    signing_key: Ed25519PrivateKey = field(repr=False)
    noise_static: bytes = field(repr=False)

    @classmethod
    def generate(cls, rng: Rng) -> Identity:
        return cls(Ed25519PrivateKey.from_private_bytes(rng(KEY_LEN)), rng(KEY_LEN))

    @classmethod
    def from_bytes(cls, data: bytes) -> Identity:
        if len(data) != _SERIALIZED_LEN:
            raise ValueError("identity key material has the wrong length")
        return cls(Ed25519PrivateKey.from_private_bytes(data[:KEY_LEN]), data[KEY_LEN:])

    def to_bytes(self) -> bytes:
        """Raw private material (64 bytes); only ever stored encrypted."""
        return self.signing_key.private_bytes_raw() + self.noise_static

    @property
    def public_key(self) -> bytes:
        return self.signing_key.public_key().public_bytes_raw()

    @property
    def noise_static_public(self) -> bytes:
        return (
            X25519PrivateKey.from_private_bytes(self.noise_static).public_key().public_bytes_raw()
        )

    @property
    def fingerprint(self) -> bytes:
        return fingerprint(self.public_key)

    def sign(self, data: bytes) -> bytes:
        return self.signing_key.sign(data)
