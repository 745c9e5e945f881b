"""The three cipher suites behind one AEAD interface.

Later layers never know which suite is in play: they hold a `CipherSuite`
(by name from the handshake, or by the small integer id a record carries) and
call `seal`/`open`, or, on the hot path, `keyed(key)` once per epoch key and
then `seal`/`open` on the returned `KeyedAead` for every record.

Contract, identical for every suite:
- key 32 bytes, nonce 12 bytes (the record counter: never random, never reused);
- `seal` of a bad key or nonce size is a bug on our side: `LocalProtocolError`;
- `open` raises `DecryptError`, always the same opaque one, on ANY failure
  (bad tag, bad sizes, bad padding), so a peer learns nothing from it.

`seal`/`open` on the suite build a keyed object per call: fine for one-off
use, but the record layer should keep the `KeyedAead` for the life of the
epoch key (it holds the AES/ChaCha context or the Twofish key schedule).
"""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from p2pmsg.crypto import twofish
from p2pmsg.crypto.kdf import hkdf_sha256, label
from p2pmsg.crypto.twofish import BLOCK_SIZE, Twofish
from p2pmsg.errors import DecryptError, LocalProtocolError

KEY_SIZE: Final = 32
NONCE_SIZE: Final = 12


class KeyedAead(ABC):
    """A suite bound to one key; reuse it for every record under that key."""

    __slots__ = ()
    suite: CipherSuite

    @abstractmethod
    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
        """Encrypt and authenticate; returns ciphertext ‖ tag (bytes, or a bytearray
        holding them where sealing in place saves copies: Twofish)."""

    @abstractmethod
    def open(self, nonce: bytes, sealed: bytes | memoryview, aad: bytes = b"") -> bytes:
        """Verify and decrypt; `DecryptError` on any failure. The plaintext is bytes,
        or a bytearray holding them (Twofish decrypts in place)."""


class CipherSuite(ABC):
    """A named AEAD construction with a stable wire id."""

    name: str
    suite_id: int
    key_size: int = KEY_SIZE
    nonce_size: int = NONCE_SIZE
    #: bytes `seal` adds to the plaintext at most (tag, plus padding for CBC)
    overhead: int
    #: Whether sealing is slow enough to be worth spreading a batch of records over
    #: threads (the session does, node/net/sealing.py). Only Twofish: its CBC
    #: encryption is sequential, ~190 MB/s on one core; the AEADs seal 64 KiB in a few
    #: microseconds, less than a thread hop costs.
    parallel_seal: bool = False

    def sealed_size(self, plaintext_size: int) -> int:
        """The exact length `seal` returns for a plaintext of this size (known before
        sealing, so a record's header can be built before its ciphertext)."""
        return plaintext_size + self.overhead

    @abstractmethod
    def _keyed(self, key: bytes) -> KeyedAead:
        """Build the keyed object; the key size is already checked."""

    def available(self) -> bool:
        """Whether this suite can run here (offer only available suites in a handshake)."""
        return True

    def keyed(self, key: bytes) -> KeyedAead:
        if len(key) != self.key_size:
            raise LocalProtocolError(
                f"{self.name} needs a {self.key_size}-byte key, got {len(key)} bytes"
            )
        return self._keyed(bytes(key))

    def seal(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
        return self.keyed(key).seal(nonce, plaintext, aad)

    def open(self, key: bytes, nonce: bytes, sealed: bytes | memoryview, aad: bytes = b"") -> bytes:
        try:
            keyed = self.keyed(key)
        except (LocalProtocolError, TypeError):
            raise DecryptError() from None
        return keyed.open(nonce, sealed, aad)

    def __repr__(self) -> str:
        return f"<CipherSuite {self.name} id={self.suite_id}>"


def _check_seal_nonce(suite: CipherSuite, nonce: bytes) -> None:
    if len(nonce) != suite.nonce_size:
        raise LocalProtocolError(
            f"{suite.name} needs a {suite.nonce_size}-byte nonce, got {len(nonce)} bytes"
        )


# --- AES-256-GCM and ChaCha20-Poly1305: thin wrappers over `cryptography` ---------------


class _KeyedCryptographyAead(KeyedAead):
    """Holds one `cryptography` AEAD context; adds only the nonce-size rule."""

    __slots__ = ("_decrypt", "_encrypt", "suite")

    def __init__(self, suite: CipherSuite, aead: AESGCM | ChaCha20Poly1305) -> None:
        self.suite = suite
        # Bound methods, looked up once: this is the per-record hot path.
        self._encrypt = aead.encrypt
        self._decrypt = aead.decrypt

    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
        if len(nonce) != NONCE_SIZE:
            _check_seal_nonce(self.suite, nonce)
        return self._encrypt(nonce, plaintext, aad)

    def open(self, nonce: bytes, sealed: bytes | memoryview, aad: bytes = b"") -> bytes:
        # AESGCM alone would accept 8..128-byte nonces; the suite contract is exactly 12.
        if len(nonce) != NONCE_SIZE:
            raise DecryptError()
        try:
            return self._decrypt(nonce, sealed, aad)
        except (InvalidTag, ValueError, TypeError, OverflowError):
            raise DecryptError() from None


class _AesGcm(CipherSuite):
    name = "aes-256-gcm"
    suite_id = 1
    overhead = 16

    def _keyed(self, key: bytes) -> KeyedAead:
        return _KeyedCryptographyAead(self, AESGCM(key))


class _ChaCha20Poly1305(CipherSuite):
    name = "chacha20-poly1305"
    suite_id = 2
    overhead = 16

    def _keyed(self, key: bytes) -> KeyedAead:
        return _KeyedCryptographyAead(self, ChaCha20Poly1305(key))


# --- Twofish-CBC with HMAC-SHA256, encrypt-then-MAC ---------------------------------------

TWOFISH_SUITE_NAME: Final = "twofish-cbc-hmac-sha256"
_TAG_SIZE: Final = 32
_NONCE_PAD: Final = bytes(BLOCK_SIZE - NONCE_SIZE)


class _KeyedTwofishCbcHmac(KeyedAead):
    """Twofish-CBC + HMAC-SHA256 under keys derived from one suite key.

    - enc_key, mac_key: two HKDF-SHA256 outputs of the suite key under distinct
      labels, so the cipher and the MAC never share a key.
    - IV = Twofish(enc_key, nonce ‖ 0^4): the "encrypt a nonce" method of NIST
      SP 800-38A appendix C; the nonce is unique, so the IV is unpredictable
      to anyone without the key, which CBC requires. It is recomputed from
      the nonce on open, never sent.
    - tag = HMAC(mac_key, len(aad) as u64be ‖ aad ‖ IV ‖ ciphertext), all 32
      bytes. The length prefix keeps the aad/ciphertext boundary unambiguous.
    - sealed = ciphertext ‖ tag. On open the tag is checked in constant time
      BEFORE anything looks at the padding, so there is no padding oracle.

    The Twofish path (libgcrypt or the portable package, see
    `p2pmsg.crypto.twofish`) changes nothing on the wire: both give the same bytes.
    """

    __slots__ = ("_cipher", "_mac", "suite")

    def __init__(self, suite: CipherSuite, key: bytes, path: str | None = None) -> None:
        self.suite = suite
        enc_key = hkdf_sha256(key, salt=None, info=label("suite", TWOFISH_SUITE_NAME, "enc"))
        mac_key = hkdf_sha256(key, salt=None, info=label("suite", TWOFISH_SUITE_NAME, "mac"))
        self._cipher = Twofish(enc_key, path)
        # An HMAC with the key already absorbed; each record works on a copy,
        # which saves re-hashing the padded key twice per message.
        self._mac = hmac.new(mac_key, digestmod=hashlib.sha256)

    def _tag(self, aad: bytes, iv: bytes, ciphertext: bytes | memoryview) -> bytes:
        mac = self._mac.copy()
        mac.update(len(aad).to_bytes(8, "big"))
        mac.update(aad)
        mac.update(iv)
        mac.update(ciphertext)
        return mac.digest()

    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
        # Written in place into one buffer, ciphertext then tag: the plaintext is read
        # where it is (only its last, padded block is copied), and nothing is copied
        # after encryption. The buffer is returned as is (a bytearray, equal to the
        # bytes it holds): joined into the write, it is copied once, as bytes would be.
        _check_seal_nonce(self.suite, nonce)
        if type(plaintext) is not bytes:
            plaintext = bytes(plaintext)
        iv = self._cipher.encrypt_block(bytes(nonce) + _NONCE_PAD)
        size = len(plaintext)
        whole = size - size % BLOCK_SIZE
        pad = BLOCK_SIZE - size % BLOCK_SIZE  # PKCS#7: always 1..16 bytes
        body = whole + BLOCK_SIZE
        sealed = bytearray(body + _TAG_SIZE)
        self._cipher.cbc_encrypt_into(
            iv, plaintext, whole, plaintext[whole:] + bytes((pad,)) * pad, sealed
        )
        with memoryview(sealed) as view:
            tag = self._tag(aad, iv, view[:body])
        sealed[body:] = tag
        return sealed  # type: ignore[return-value]

    def open(self, nonce: bytes, sealed: bytes | memoryview, aad: bytes = b"") -> bytes:
        try:
            return self._open(nonce, sealed, aad)
        except DecryptError:
            raise
        except (ValueError, TypeError, OverflowError):
            raise DecryptError() from None

    def _open(self, nonce: bytes, sealed: bytes | memoryview, aad: bytes) -> bytes:
        body = len(sealed) - _TAG_SIZE
        # Lengths are public (they are on the wire), so checking them first leaks nothing.
        if len(nonce) != NONCE_SIZE or body < BLOCK_SIZE or body % BLOCK_SIZE:
            raise DecryptError()
        # Read in place (the ciphertext is not copied out of `sealed`), decrypted into
        # one buffer and cut to the plaintext there: returned as that bytearray.
        if type(sealed) is not bytes:
            sealed = bytes(sealed)
        tag = sealed[body:]
        iv = self._cipher.encrypt_block(bytes(nonce) + _NONCE_PAD)
        with memoryview(sealed) as view:
            expected = self._tag(aad, iv, view[:body])
        if not hmac.compare_digest(expected, tag):
            raise DecryptError()
        padded = bytearray(body)
        self._cipher.cbc_decrypt_into(iv, sealed, body, padded)
        # Only authenticated data reaches this point: a bad pad here means a
        # buggy sender, not an attacker probing, but it still fails opaquely.
        pad = padded[-1]
        if not 1 <= pad <= BLOCK_SIZE or padded[-pad:] != bytes((pad,)) * pad:
            raise DecryptError()
        del padded[-pad:]
        return padded  # type: ignore[return-value]


class _TwofishCbcHmacSha256(CipherSuite):
    name = TWOFISH_SUITE_NAME
    suite_id = 3
    overhead = BLOCK_SIZE + _TAG_SIZE
    parallel_seal = True

    def sealed_size(self, plaintext_size: int) -> int:
        # PKCS#7 pads to the next whole block (a full block when already whole).
        return plaintext_size - plaintext_size % BLOCK_SIZE + BLOCK_SIZE + _TAG_SIZE

    def available(self) -> bool:
        return twofish.is_available()

    def _keyed(self, key: bytes) -> KeyedAead:
        return _KeyedTwofishCbcHmac(self, key)

    def keyed_on_path(self, key: bytes, path: str) -> KeyedAead:
        """`keyed(key)` on a chosen Twofish path ('libgcrypt' or 'portable'), for the
        differential tests and the benchmark; the product uses `keyed`."""
        if len(key) != self.key_size:
            raise LocalProtocolError(
                f"{self.name} needs a {self.key_size}-byte key, got {len(key)} bytes"
            )
        return _KeyedTwofishCbcHmac(self, bytes(key), path)


# --- Registry ------------------------------------------------------------------------------

_TWOFISH: Final = _TwofishCbcHmacSha256()
_SUITES: Final[tuple[CipherSuite, ...]] = (_AesGcm(), _ChaCha20Poly1305(), _TWOFISH)
_BY_NAME: Final = {s.name: s for s in _SUITES}
_BY_ID: Final = {s.suite_id: s for s in _SUITES}

#: Every suite name, in preference order (also the order of the wire ids).
SUITE_NAMES: Final[tuple[str, ...]] = tuple(s.name for s in _SUITES)
#: Every wire id.
SUITE_IDS: Final[tuple[int, ...]] = tuple(s.suite_id for s in _SUITES)


def available_suite_names() -> tuple[str, ...]:
    """The suites this machine can run, in preference order: what a handshake may offer.

    Only Twofish can be missing (neither libgcrypt nor the `twofish` package's
    C library usable); `keyed()` on it then raises `CipherUnavailableError`.
    """
    return tuple(s.name for s in _SUITES if s.available())


def get_suite(name: str) -> CipherSuite:
    """The suite called `name`; `LocalProtocolError` naming the known ones otherwise.

    A caller handling a peer's input (a handshake offer, a record header) should
    check against what was negotiated first and report the peer's error itself.
    """
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise LocalProtocolError(
            f"unknown cipher suite {name!r}; known: {', '.join(SUITE_NAMES)}"
        ) from None


def get_suite_by_id(suite_id: int) -> CipherSuite:
    """The suite with wire id `suite_id` (1, 2, 3 are stable across versions)."""
    try:
        return _BY_ID[suite_id]
    except (KeyError, TypeError):
        raise LocalProtocolError(
            f"unknown cipher suite id {suite_id!r}; known: "
            + ", ".join(f"{s.suite_id}={s.name}" for s in _SUITES)
        ) from None


def twofish_keyed_on_path(key: bytes, path: str) -> KeyedAead:
    """The Twofish suite keyed on one path ('libgcrypt' or 'portable'), whatever the
    process chose: the differential tests and the benchmark compare the two."""
    return _TWOFISH.keyed_on_path(key, path)
