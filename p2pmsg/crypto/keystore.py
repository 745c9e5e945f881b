"""The identity file format: an identity and a data key sealed under a password.

Pure bytes in, bytes out; reading and writing the file is `p2pmsg.profile`'s job.

Layout (all integers big-endian)::

    offset  size  field
    0       8     magic  b"P2PMSGID"
    8       1     format version (1)
    9       1     KDF id (1 = PBKDF2-HMAC-SHA256)
    10      4     KDF iterations
    14      1     salt length S (16..64)
    15      4     ciphertext length C (tag included)
    19      S     salt
    19+S    12    AES-GCM nonce
    31+S    C     AES-256-GCM ciphertext of the msgpack payload, 16-byte tag at the end

The ciphertext length in the header lets a truncated or extended file be
named as such before any key is derived. The whole header (everything before
the ciphertext) is the AES-GCM associated data, so an attacker who edits the
iteration count, the salt or the version makes the file fail to open instead
of silently weakening it. The parameters live in the file so a later release
can raise the iteration count: old files keep opening with their own count,
and `rewrap` moves them up.

The payload is a msgpack map ``{"v": 1, "identity": <64 bytes>, "data_key":
<32 bytes>, "name": <str>, "created": <float>}``. The data key encrypts the
history at rest (the store), so changing the password only re-wraps this small
file and never re-encrypts the database.
"""

from __future__ import annotations

import hashlib
import struct
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from p2pmsg.crypto.identity import Identity
from p2pmsg.errors import KeystoreError, WrongPasswordError

Rng = Callable[[int], bytes]

MAGIC = b"P2PMSGID"
FORMAT_VERSION = 1
KDF_PBKDF2_SHA256 = 1

#: OWASP Password Storage Cheat Sheet figure for PBKDF2-HMAC-SHA256 (2023).
DEFAULT_ITERATIONS = 600_000
#: Refuse absurd counts from a damaged file instead of hanging on it (16x OWASP's
#: figure, a couple of seconds here, leaves room to raise the default for years).
MAX_ITERATIONS = 10_000_000
SALT_LEN = 16
MIN_SALT_LEN = 16
MAX_SALT_LEN = 64
NONCE_LEN = 12
TAG_LEN = 16
DATA_KEY_LEN = 32
AES_KEY_LEN = 32
PAYLOAD_VERSION = 1
#: A payload is ~150 bytes; anything far larger is not a file we wrote.
MAX_PAYLOAD_LEN = 64 * 1024

# magic, version, kdf id, iterations, salt length, ciphertext length
_FIXED = struct.Struct(">8sBBIBI")


@dataclass(frozen=True)
class KeystoreContents:
    """What an identity file holds once opened."""

    identity: Identity = field(repr=False)
    data_key: bytes = field(repr=False)
    name: str
    created: float
    iterations: int


@dataclass(frozen=True)
class _Header:
    version: int
    kdf: int
    iterations: int
    salt: bytes
    nonce: bytes
    raw: bytes


def normalize_password(password: str) -> bytes:
    """NFKC-normalise then UTF-8 encode (NIST SP 800-63B, 5.1.1.2).

    The same password typed on two keyboards or input methods can arrive as
    different code point sequences (composed vs. decomposed accents, full-width
    forms); normalising first makes it open the same file.
    """
    return unicodedata.normalize("NFKC", password).encode("utf-8")


def derive_file_key(password: str, salt: bytes, iterations: int) -> bytes:
    """PBKDF2-HMAC-SHA256 -> 32-byte AES key."""
    return hashlib.pbkdf2_hmac(
        "sha256", normalize_password(password), salt, iterations, dklen=AES_KEY_LEN
    )


def seal_keystore(
    identity: Identity,
    data_key: bytes,
    name: str,
    password: str,
    *,
    rng: Rng,
    created: float,
    iterations: int = DEFAULT_ITERATIONS,
) -> bytes:
    """Encrypt an identity, its data key and display name under `password`."""
    if len(data_key) != DATA_KEY_LEN:
        raise ValueError(f"the data key is {DATA_KEY_LEN} bytes")
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"iterations must be within 1..{MAX_ITERATIONS}")
    salt = rng(SALT_LEN)
    nonce = rng(NONCE_LEN)
    payload = msgpack.packb(
        {
            "v": PAYLOAD_VERSION,
            "identity": identity.to_bytes(),
            "data_key": data_key,
            "name": name,
            "created": float(created),
        },
        use_bin_type=True,
    )
    if len(payload) > MAX_PAYLOAD_LEN:
        raise ValueError("the display name is too long for an identity file")
    header = _FIXED.pack(
        MAGIC, FORMAT_VERSION, KDF_PBKDF2_SHA256, iterations, len(salt), len(payload) + TAG_LEN
    )
    header += salt + nonce
    key = derive_file_key(password, salt, iterations)
    return header + AESGCM(key).encrypt(nonce, payload, header)


def open_keystore(blob: bytes, password: str) -> KeystoreContents:
    """Decrypt an identity file.

    Raises `KeystoreError` with a specific reason when the bytes are not a
    well-formed p2pmsg identity file, and `WrongPasswordError` when they are
    but the password does not open them.
    """
    # AES-GCM cannot tell a wrong key from a damaged ciphertext: both are just
    # a tag mismatch. So every structural check that *can* be made without the
    # key comes first and gets its own message; whatever survives them and
    # still fails authentication is reported as "wrong password". Truncation and
    # appended bytes are caught by the stored length, but a file damaged *inside*
    # the salt, nonce or ciphertext also reads as "wrong password": the only
    # answer AES-GCM allows.
    header = _parse_header(blob)
    ciphertext = blob[len(header.raw) :]
    key = derive_file_key(password, header.salt, header.iterations)
    try:
        payload = AESGCM(key).decrypt(header.nonce, ciphertext, header.raw)
    except InvalidTag:
        raise WrongPasswordError() from None
    return _parse_payload(payload, header.iterations)


def read_header_iterations(blob: bytes) -> int:
    """The KDF iteration count of a file, without the password (for upgrade checks)."""
    return _parse_header(blob).iterations


def rewrap(
    blob: bytes,
    old_password: str,
    new_password: str,
    *,
    rng: Rng,
    iterations: int | None = None,
) -> bytes:
    """Re-seal a file under a new password, keeping identity, data key, name and date."""
    contents = open_keystore(blob, old_password)
    return reseal(contents, new_password, rng=rng, iterations=iterations)


def reseal(
    contents: KeystoreContents,
    new_password: str,
    *,
    rng: Rng,
    iterations: int | None = None,
) -> bytes:
    """Seal already-opened contents under a new password with a fresh salt and nonce.

    Without an explicit `iterations` the count never goes down: it becomes the
    larger of the file's own and `DEFAULT_ITERATIONS`.
    """
    if iterations is None:
        iterations = max(DEFAULT_ITERATIONS, contents.iterations)
    return seal_keystore(
        contents.identity,
        contents.data_key,
        contents.name,
        new_password,
        rng=rng,
        created=contents.created,
        iterations=iterations,
    )


def _parse_header(blob: bytes) -> _Header:
    if not blob:
        raise KeystoreError("identity file is empty")
    if len(blob) < len(MAGIC) or blob[: len(MAGIC)] != MAGIC:
        if MAGIC.startswith(blob):
            raise KeystoreError("identity file is truncated")
        raise KeystoreError("not a p2pmsg identity file (bad magic bytes)")
    if len(blob) < _FIXED.size:
        raise KeystoreError("identity file is truncated")
    _, version, kdf, iterations, salt_len, ct_len = _FIXED.unpack_from(blob)
    if version != FORMAT_VERSION:
        raise KeystoreError(
            f"identity file format version {version} is not supported "
            f"(this p2pmsg reads version {FORMAT_VERSION}; a newer release may)"
        )
    if kdf != KDF_PBKDF2_SHA256:
        raise KeystoreError(f"identity file uses unknown key derivation id {kdf}")
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise KeystoreError(f"identity file has an invalid iteration count ({iterations})")
    if not MIN_SALT_LEN <= salt_len <= MAX_SALT_LEN:
        raise KeystoreError(f"identity file has an invalid salt length ({salt_len})")
    if not TAG_LEN < ct_len <= TAG_LEN + MAX_PAYLOAD_LEN:
        raise KeystoreError(f"identity file has an invalid ciphertext length ({ct_len})")
    header_len = _FIXED.size + salt_len + NONCE_LEN
    if len(blob) < header_len + ct_len:
        raise KeystoreError("identity file is truncated")
    if len(blob) > header_len + ct_len:
        raise KeystoreError("identity file has unexpected bytes after its end")
    salt = blob[_FIXED.size : _FIXED.size + salt_len]
    nonce = blob[_FIXED.size + salt_len : header_len]
    return _Header(version, kdf, iterations, salt, nonce, blob[:header_len])


def _parse_payload(payload: bytes, iterations: int) -> KeystoreContents:
    # Authenticated, so this only fails for a file some other program sealed
    # with our key; still, report it plainly rather than crash.
    try:
        data: Any = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException) as exc:
        raise KeystoreError("identity file payload is malformed") from exc
    if not isinstance(data, dict) or data.get("v") != PAYLOAD_VERSION:
        raise KeystoreError("identity file payload has an unknown version")
    identity_bytes = data.get("identity")
    data_key = data.get("data_key")
    name = data.get("name")
    created = data.get("created")
    if (
        not isinstance(identity_bytes, bytes)
        or not isinstance(data_key, bytes)
        or len(data_key) != DATA_KEY_LEN
        or not isinstance(name, str)
        or not isinstance(created, float | int)
    ):
        raise KeystoreError("identity file payload is malformed")
    try:
        identity = Identity.from_bytes(identity_bytes)
    except ValueError as exc:
        raise KeystoreError("identity file holds malformed key material") from exc
    return KeystoreContents(identity, data_key, name, float(created), iterations)
