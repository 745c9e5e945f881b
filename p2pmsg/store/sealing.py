"""Encryption at rest for single database values (message bodies, names, paths).

Each value is sealed with AES-256-GCM under a key derived from the profile's
data key, with a fresh random 96-bit nonce. The associated data names the
table, the column and the row, so a value copied into another row or column
(by someone editing the file) fails authentication instead of showing up in
the wrong conversation.

Random nonces are safe here: the NIST bound for random 96-bit GCM nonces is
2^32 encryptions under one key, far beyond what one profile ever stores.

Layout of a sealed value: `FORMAT (1 byte) || nonce (12) || ciphertext || tag (16)`.
The format byte is also bound into the associated data, so a future format
cannot be confused with this one.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from p2pmsg.crypto.kdf import hkdf_sha256, label
from p2pmsg.errors import StoreCorruptError

FORMAT_V1 = 1
NONCE_LEN = 12
#: Bytes a sealed value has beyond its plaintext: format, nonce, tag.
SEALED_OVERHEAD = 1 + NONCE_LEN + 16
TAG_LEN = 16
DATA_KEY_LEN = 32
LOOKUP_TAG_LEN = 16
_HEADER = bytes([FORMAT_V1])


@functools.lru_cache(maxsize=64)
def _column_label(table: str, column: str) -> bytes:
    # Cached: the label is the same for every row of a column, and on the hot
    # path (tens of thousands of bodies) building it each time shows up.
    return _HEADER + label("store", table, column) + b"\x00"


class FieldSealer:
    """Seals and opens individual column values under the profile's data key."""

    def __init__(self, data_key: bytes) -> None:
        if len(data_key) != DATA_KEY_LEN:
            raise ValueError(f"the data key must be {DATA_KEY_LEN} bytes")
        # A store-specific subkey: the profile's data key may serve other purposes too,
        # and a derived key keeps their ciphertexts from ever meeting.
        self._aead = AESGCM(hkdf_sha256(data_key, salt=None, info=label("store", "field-key")))
        self._lookup_key = hkdf_sha256(data_key, salt=None, info=label("store", "lookup-key"))

    def lookup_tag(self, text: str, *, table: str, column: str) -> bytes:
        """A keyed digest of `text` to find sealed values by (an indexed column): equal
        texts, equal tags. Keyed with the data key, so the database alone does not let
        anyone test guesses of the names it holds."""
        message = _column_label(table, column) + text.encode("utf-8")
        return hmac.new(self._lookup_key, message, hashlib.sha256).digest()[:LOOKUP_TAG_LEN]

    @staticmethod
    def associated_data(table: str, column: str, row: bytes | str | int) -> bytes:
        """`p2pmsg/v1/store/<table>/<column>` NUL `<row key>`: unambiguous, since
        labels never contain NUL and each (table, column) has one row-key type."""
        if isinstance(row, int):
            row_bytes = str(row).encode("ascii")
        elif isinstance(row, str):
            row_bytes = row.encode("utf-8")
        else:
            row_bytes = row
        return _column_label(table, column) + row_bytes

    def seal(self, plaintext: bytes, *, table: str, column: str, row: bytes | str | int) -> bytes:
        nonce = os.urandom(NONCE_LEN)
        ad = self.associated_data(table, column, row)
        return _HEADER + nonce + self._aead.encrypt(nonce, plaintext, ad)

    def seal_many(
        self,
        plaintexts: Sequence[bytes],
        *,
        table: str,
        column: str,
        rows: Sequence[bytes | str | int],
    ) -> list[bytes]:
        """`seal` for a batch: the same format, one random draw for all the nonces."""
        nonces = os.urandom(NONCE_LEN * len(plaintexts))
        label_ad = _column_label(table, column)
        encrypt = self._aead.encrypt
        sealed = []
        for i, (plaintext, row) in enumerate(zip(plaintexts, rows, strict=True)):
            nonce = nonces[i * NONCE_LEN : (i + 1) * NONCE_LEN]
            ad = label_ad + row if type(row) is bytes else self.associated_data(table, column, row)
            sealed.append(_HEADER + nonce + encrypt(nonce, plaintext, ad))
        return sealed

    def open(self, sealed: bytes, *, table: str, column: str, row: bytes | str | int) -> bytes:
        if len(sealed) < 1 + NONCE_LEN + TAG_LEN or sealed[0] != FORMAT_V1:
            raise StoreCorruptError(f"stored {table}.{column} value is malformed")
        nonce = sealed[1 : 1 + NONCE_LEN]
        ad = self.associated_data(table, column, row)
        try:
            return self._aead.decrypt(nonce, sealed[1 + NONCE_LEN :], ad)
        except InvalidTag:
            raise StoreCorruptError(
                f"stored {table}.{column} value failed authentication "
                "(the database was modified, or a value was moved between rows)"
            ) from None

    def seal_text(self, text: str, *, table: str, column: str, row: bytes | str | int) -> bytes:
        return self.seal(text.encode("utf-8"), table=table, column=column, row=row)

    def open_text(self, sealed: bytes, *, table: str, column: str, row: bytes | str | int) -> str:
        return self.open(sealed, table=table, column=column, row=row).decode("utf-8")

    def open_optional_text(
        self, sealed: bytes | None, *, table: str, column: str, row: bytes | str | int
    ) -> str | None:
        if sealed is None:
            return None
        return self.open_text(sealed, table=table, column=column, row=row)
