"""HKDF-SHA256 and HMAC-SHA256 with namespaced labels.

Every key p2pmsg derives is bound to a label under `p2pmsg/v1/`, so a key made
for one purpose can never be confused with a key made for another, and a
future protocol version can change the schedule without colliding with v1.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

LABEL_PREFIX = b"p2pmsg/v1/"
HASH_LEN = 32


def label(*parts: str) -> bytes:
    """`label("record", "epoch")` -> `b"p2pmsg/v1/record/epoch"`."""
    if not parts or any(not p or "/" in p for p in parts):
        raise ValueError(f"bad label parts: {parts!r}")
    return LABEL_PREFIX + "/".join(parts).encode("ascii")


def hkdf_sha256(ikm: bytes, *, salt: bytes | None, info: bytes, length: int = HASH_LEN) -> bytes:
    """RFC 5869 extract-and-expand. `salt=None` means a zero-filled salt (per the RFC)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def hkdf_expand_sha256(prk: bytes, *, info: bytes, length: int = HASH_LEN) -> bytes:
    """RFC 5869 expand only, for chains whose input is already a uniform key."""
    return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=info).derive(prk)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def hmac_sha256_verify(key: bytes, data: bytes, tag: bytes) -> bool:
    """Constant-time comparison of a full 32-byte tag."""
    return hmac.compare_digest(hmac_sha256(key, data), tag)
