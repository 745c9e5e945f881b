"""The record key schedule: every HKDF label and every derivation, in one place.

Per direction (docs/PROTOCOL.md, "Key schedule"):

    chain[0]     = HKDF-SHA256(ikm = split key, salt = handshake hash, info = L("record/chain"))
    epoch_key[n] = HKDF-Expand(chain[n], info = L("record/epoch"), 32)
    suite_key    = HKDF-Expand(epoch_key[n], info = L("record/key/<suite name>"), suite.key_size)
    chain[n+1]   = HKDF-Expand(chain[n], info = L("record/next"), 32)            plain rotation
    chain[n+1]   = HKDF-SHA256(ikm = X25519 secret, salt = chain[n],
                               info = L("record/rekey"))                         after a rekey

where L(x) = b"p2pmsg/v1/" + x. The chain only moves forward and each step
is one-way, so erasing chain[n] and epoch_key[n] after moving on means a
later compromise does not expose earlier records; mixing a fresh X25519
secret into the chain means an earlier compromise stops exposing later ones.

A record's associated data is its clear header, fixed-width and big-endian:

    version u8 | epoch u32 | counter u64 | suite id u8       (14 bytes)

and its 12-byte nonce is four zero bytes then the counter as u64 big-endian.
The counter counts records in one direction over the whole session and is
never reset, so a nonce is never used twice under any key.
"""

from __future__ import annotations

import struct

from p2pmsg.crypto.kdf import hkdf_expand_sha256, hkdf_sha256, label
from p2pmsg.crypto.suites import CipherSuite, KeyedAead

CHAIN_LABEL = label("record", "chain")
EPOCH_LABEL = label("record", "epoch")
NEXT_LABEL = label("record", "next")
REKEY_LABEL = label("record", "rekey")


def suite_key_label(suite: CipherSuite) -> bytes:
    return label("record", "key", suite.name)


_HEADER = struct.Struct(">BIQB")
HEADER_SIZE = _HEADER.size
record_ad = _HEADER.pack  # (version, epoch, counter, suite_id) -> 14 bytes
_NONCE_PREFIX = b"\x00\x00\x00\x00"


def record_nonce(counter: int) -> bytes:
    return _NONCE_PREFIX + counter.to_bytes(8, "big")


def root_chain(split_key: bytes, handshake_hash: bytes) -> bytes:
    """chain[0] for one direction. Salting with the handshake hash ties every record
    key to this exact handshake transcript."""
    return hkdf_sha256(split_key, salt=handshake_hash, info=CHAIN_LABEL)


def next_chain(chain: bytes, fresh_secret: bytes | None = None) -> bytes:
    if fresh_secret is None:
        return hkdf_expand_sha256(chain, info=NEXT_LABEL)
    return hkdf_sha256(fresh_secret, salt=chain, info=REKEY_LABEL)


def epoch_key(chain: bytes) -> bytes:
    return hkdf_expand_sha256(chain, info=EPOCH_LABEL)


def suite_key(epoch_secret: bytes, suite: CipherSuite) -> bytes:
    return hkdf_expand_sha256(epoch_secret, info=suite_key_label(suite), length=suite.key_size)


def keyed_for_epoch(chain: bytes, suite: CipherSuite) -> KeyedAead:
    """The AEAD object for the epoch whose chain key is `chain`, under `suite`."""
    return suite.keyed(suite_key(epoch_key(chain), suite))
