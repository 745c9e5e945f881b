"""Noise_XX_25519_{ChaChaPoly,AESGCM}_SHA256, following the Noise spec revision 34.

Names follow the spec (sections 5.1-5.3) so this file can be read beside it:
`CipherState`, `SymmetricState`, `HandshakeState`, with `mix_key` for MixKey,
`mix_hash` for MixHash, `encrypt_and_hash` for EncryptAndHash, and so on.
Only the XX pattern is implemented (no PSK modes, no fallback): it is the one
p2pmsg uses, and a smaller engine is an easier one to audit.

    XX:
      -> e
      <- e, ee, s, es
      -> s, se

Sans-I/O like the rest of the protocol: an ephemeral key is either given
(`e=...`, for test vectors) or drawn from the `rng` passed in.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from p2pmsg.errors import HandshakeError, LocalProtocolError

Rng = Callable[[int], bytes]

DHLEN: Final = 32
HASHLEN: Final = 32
BLOCKLEN: Final = 64
TAGLEN: Final = 16
KEYLEN: Final = 32
#: Spec section 3: no Noise message may exceed 65535 bytes.
MAX_MESSAGE_LEN: Final = 65535
#: Spec section 5.1: nonce 2^64-1 is reserved for Rekey and must never encrypt a message.
MAX_NONCE: Final = (1 << 64) - 1

# --- crypto functions (spec section 4) ----------------------------------------------------


class _Aead(Protocol):
    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...
    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...


class CipherFunction:
    """A Noise cipher function: the AEAD plus its nonce encoding (spec 12.3/12.4)."""

    def __init__(self, name: str, aead: Callable[[bytes], _Aead], byteorder: str) -> None:
        self.name = name
        self.new = aead
        self._byteorder = byteorder

    def nonce(self, n: int) -> bytes:
        # ChaChaPoly: 32 zero bits then n as 64-bit little-endian (12.3);
        # AESGCM: 32 zero bits then n as 64-bit big-endian (12.4).
        return b"\x00\x00\x00\x00" + n.to_bytes(8, self._byteorder)  # type: ignore[arg-type]


CIPHER_FUNCTIONS: Final = {
    "ChaChaPoly": CipherFunction("ChaChaPoly", ChaCha20Poly1305, "little"),
    "AESGCM": CipherFunction("AESGCM", AESGCM, "big"),
}


def HASH(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def HMAC_HASH(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def HKDF(chaining_key: bytes, input_key_material: bytes, num_outputs: int) -> tuple[bytes, ...]:
    """Spec section 4.3: HKDF with the chaining key as salt, 2 or 3 outputs."""
    temp_key = HMAC_HASH(chaining_key, input_key_material)
    output1 = HMAC_HASH(temp_key, b"\x01")
    output2 = HMAC_HASH(temp_key, output1 + b"\x02")
    if num_outputs == 2:
        return output1, output2
    return output1, output2, HMAC_HASH(temp_key, output2 + b"\x03")


class KeyPair:
    """An X25519 key pair (the `cryptography` key plus its raw public bytes)."""

    __slots__ = ("private", "public")

    def __init__(self, private_bytes: bytes) -> None:
        if len(private_bytes) != DHLEN:
            raise LocalProtocolError("an X25519 private key is 32 bytes")
        self.private = X25519PrivateKey.from_private_bytes(private_bytes)
        self.public = self.private.public_key().public_bytes_raw()


def GENERATE_KEYPAIR(rng: Rng) -> KeyPair:
    return KeyPair(rng(DHLEN))


def DH(key_pair: KeyPair, public_key: bytes) -> bytes:
    """X25519. A low-order peer key (all-zero shared secret) fails the handshake."""
    try:
        return key_pair.private.exchange(X25519PublicKey.from_public_bytes(public_key))
    except ValueError:
        raise HandshakeError("peer sent an invalid X25519 public key") from None


# --- CipherState (spec 5.1) ---------------------------------------------------------------


class CipherState:
    """k and n. Encryption with no key is the identity, as the spec requires."""

    __slots__ = ("_aead", "cipher", "k", "n")

    def __init__(self, cipher: CipherFunction) -> None:
        self.cipher = cipher
        self.k: bytes | None = None
        self.n = 0
        self._aead: _Aead | None = None

    def initialize_key(self, key: bytes | None) -> None:
        self.k = key
        self.n = 0
        self._aead = None if key is None else self.cipher.new(key)

    def has_key(self) -> bool:
        return self.k is not None

    def set_nonce(self, nonce: int) -> None:
        self.n = nonce

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self._aead is None:
            return plaintext
        if self.n >= MAX_NONCE:
            raise LocalProtocolError("Noise nonce exhausted; the session must end")
        ciphertext = self._aead.encrypt(self.cipher.nonce(self.n), plaintext, ad)
        self.n += 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        """Raises `HandshakeError` on a bad tag; n advances only on success."""
        if self._aead is None:
            return ciphertext
        if self.n >= MAX_NONCE:
            raise HandshakeError("Noise nonce exhausted")
        try:
            plaintext = self._aead.decrypt(self.cipher.nonce(self.n), ciphertext, ad)
        except (InvalidTag, ValueError):
            raise HandshakeError("Noise message failed authentication") from None
        self.n += 1
        return plaintext

    def rekey(self) -> None:
        """Spec 4.2 REKEY: k = first 32 bytes of ENCRYPT(k, maxnonce, zerolen, zeros)."""
        if self._aead is None:
            raise LocalProtocolError("rekey without a key")
        new_key = self._aead.encrypt(self.cipher.nonce(MAX_NONCE), bytes(KEYLEN), b"")[:KEYLEN]
        n = self.n
        self.initialize_key(new_key)
        self.n = n


# --- SymmetricState (spec 5.2) ------------------------------------------------------------


class SymmetricState:
    __slots__ = ("cipher_state", "ck", "h")

    def __init__(self, protocol_name: bytes, cipher: CipherFunction) -> None:
        # InitializeSymmetric
        if len(protocol_name) <= HASHLEN:
            self.h = protocol_name + bytes(HASHLEN - len(protocol_name))
        else:
            self.h = HASH(protocol_name)
        self.ck = self.h
        self.cipher_state = CipherState(cipher)
        self.cipher_state.initialize_key(None)

    def mix_key(self, input_key_material: bytes) -> None:
        self.ck, temp_k = HKDF(self.ck, input_key_material, 2)
        self.cipher_state.initialize_key(temp_k[:KEYLEN])

    def mix_hash(self, data: bytes) -> None:
        self.h = HASH(self.h + data)

    def get_handshake_hash(self) -> bytes:
        return self.h

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher_state.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher_state.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        temp_k1, temp_k2 = HKDF(self.ck, b"", 2)
        c1 = CipherState(self.cipher_state.cipher)
        c2 = CipherState(self.cipher_state.cipher)
        c1.initialize_key(temp_k1[:KEYLEN])
        c2.initialize_key(temp_k2[:KEYLEN])
        return c1, c2


# --- HandshakeState (spec 5.3), XX only ---------------------------------------------------

XX_MESSAGE_PATTERNS: Final = (("e",), ("e", "ee", "s", "es"), ("s", "se"))


class HandshakeState:
    """One side of a Noise XX handshake.

    `write_message`/`read_message` alternate, starting with the initiator's
    write. After the third message `finished` is true and `split()` gives
    (initiator-to-responder, responder-to-initiator) cipher states. Any failed
    `read_message` leaves the object failed: the transcript is no longer
    shared, so nothing further can succeed.
    """

    def __init__(
        self,
        *,
        initiator: bool,
        s: bytes,
        prologue: bytes,
        e: bytes | None = None,
        cipher: str = "ChaChaPoly",
        rng: Rng | None = None,
    ) -> None:
        if cipher not in CIPHER_FUNCTIONS:
            raise LocalProtocolError(f"unknown Noise cipher {cipher!r}")
        self.protocol_name = f"Noise_XX_25519_{cipher}_SHA256".encode("ascii")
        self.initiator = initiator
        self.symmetric_state = SymmetricState(self.protocol_name, CIPHER_FUNCTIONS[cipher])
        self.symmetric_state.mix_hash(prologue)
        self.s = KeyPair(s)
        self.e: KeyPair | None = None if e is None else KeyPair(e)
        self.rs: bytes | None = None
        self.re: bytes | None = None
        self._rng = rng
        self._next = 0  # index into XX_MESSAGE_PATTERNS
        self._failed = False
        self._split: tuple[CipherState, CipherState] | None = None

    # -- state ------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._split is not None

    @property
    def handshake_hash(self) -> bytes:
        """h; the channel binding once `finished` (spec 11.2)."""
        return self.symmetric_state.get_handshake_hash()

    @property
    def remote_static(self) -> bytes | None:
        return self.rs

    @property
    def writes_next(self) -> bool:
        """True when the next handshake message is ours to write."""
        return (self._next % 2 == 0) == self.initiator

    def split(self) -> tuple[CipherState, CipherState]:
        if self._split is None:
            raise LocalProtocolError("split() before the handshake finished")
        return self._split

    def _check_turn(self, writing: bool) -> None:
        if self._failed:
            raise HandshakeError("handshake already failed")
        if self._split is not None:
            raise LocalProtocolError("handshake already finished")
        if writing != self.writes_next:
            raise LocalProtocolError(
                f"not our turn to {'write' if writing else 'read'} handshake message "
                f"{self._next + 1}"
            )

    def _advance(self) -> None:
        self._next += 1
        if self._next == len(XX_MESSAGE_PATTERNS):
            self._split = self.symmetric_state.split()

    # -- the two operations ----------------------------------------------------------------

    def write_message(self, payload: bytes) -> bytes:
        self._check_turn(writing=True)
        try:
            message = self._write(payload)
        except HandshakeError:
            self._failed = True
            raise
        self._advance()
        return message

    def _write(self, payload: bytes) -> bytes:
        ss = self.symmetric_state
        out = bytearray()
        for symbol in XX_MESSAGE_PATTERNS[self._next]:
            if symbol == "e":
                if self.e is None:
                    if self._rng is None:
                        raise LocalProtocolError("no ephemeral key given and no rng to make one")
                    self.e = GENERATE_KEYPAIR(self._rng)
                out += self.e.public
                ss.mix_hash(self.e.public)
            elif symbol == "s":
                out += ss.encrypt_and_hash(self.s.public)
            else:
                ss.mix_key(self._dh(symbol))
        out += ss.encrypt_and_hash(payload)
        if len(out) > MAX_MESSAGE_LEN:
            raise LocalProtocolError(f"Noise message of {len(out)} bytes exceeds 65535")
        return bytes(out)

    def read_message(self, message: bytes) -> bytes:
        self._check_turn(writing=False)
        try:
            payload = self._read(message)
        except HandshakeError:
            self._failed = True
            raise
        self._advance()
        return payload

    def _read(self, message: bytes) -> bytes:
        if len(message) > MAX_MESSAGE_LEN:
            raise HandshakeError(f"Noise message of {len(message)} bytes exceeds 65535")
        ss = self.symmetric_state
        pos = 0
        for symbol in XX_MESSAGE_PATTERNS[self._next]:
            if symbol == "e":
                if len(message) - pos < DHLEN:
                    raise HandshakeError("Noise message too short for an ephemeral key")
                self.re = bytes(message[pos : pos + DHLEN])
                pos += DHLEN
                ss.mix_hash(self.re)
            elif symbol == "s":
                size = DHLEN + TAGLEN if ss.cipher_state.has_key() else DHLEN
                if len(message) - pos < size:
                    raise HandshakeError("Noise message too short for a static key")
                self.rs = ss.decrypt_and_hash(bytes(message[pos : pos + size]))
                pos += size
            else:
                ss.mix_key(self._dh(symbol))
        if ss.cipher_state.has_key() and len(message) - pos < TAGLEN:
            raise HandshakeError("Noise message too short for its payload tag")
        return ss.decrypt_and_hash(bytes(message[pos:]))

    def _dh(self, symbol: str) -> bytes:
        """The DH a pattern token names (spec 5.3): the initiator's and responder's views differ."""
        if self.e is None or self.re is None:
            raise LocalProtocolError(f"{symbol}: ephemeral keys missing")
        if symbol == "ee":
            return DH(self.e, self.re)
        if symbol == "es":
            if self.initiator:
                return DH(self.e, self._remote_static())
            return DH(self.s, self.re)
        if symbol == "se":
            if self.initiator:
                return DH(self.s, self.re)
            return DH(self.e, self._remote_static())
        raise LocalProtocolError(f"symbol {symbol!r} is not part of XX")

    def _remote_static(self) -> bytes:
        if self.rs is None:
            raise LocalProtocolError("remote static key missing")
        return self.rs
