"""The 60-digit safety number two people compare to verify each other.

Built the way Signal builds its numeric fingerprint (libsignal's
`NumericFingerprintGenerator`, version 0):

* per side, start from ``version (2 bytes, big-endian) || public key || stable
  identifier`` and iterate ``h = SHA-512(h || public key)`` 5200 times; the
  iterations make grinding a key whose number collides with a victim's cost
  5200 hashes per try on top of the 2^100 search that 30 decimal digits (about
  100 bits) per side already demand;
* the first 30 bytes of the result become 30 digits: six chunks of five bytes,
  each read big-endian and reduced modulo 100000, printed with leading zeros;
* the two 30-digit halves are sorted and concatenated, so both people see the
  same 60 digits whichever side computes them.

p2pmsg's public key is the raw 32-byte Ed25519 identity key, and its stable
identifier is that key's SHA-256 fingerprint (Signal uses the phone number or
service id; we have no such thing, and binding the fingerprint costs nothing).
Because the input encoding differs from Signal's (no 0x05 key-type prefix, a
different identifier), the digits are not interchangeable with Signal's.
"""

from __future__ import annotations

import hashlib

from p2pmsg.crypto.identity import KEY_LEN, fingerprint

VERSION = 0
ITERATIONS = 5200
DIGITS = 60
GROUP = 5
_CHUNKS_PER_SIDE = 6
_CHUNK_BYTES = 5


def _side_digits(public_key: bytes, iterations: int) -> str:
    if len(public_key) != KEY_LEN:
        raise ValueError("an Ed25519 public key is 32 bytes")
    h = VERSION.to_bytes(2, "big") + public_key + fingerprint(public_key)
    for _ in range(iterations):
        h = hashlib.sha512(h + public_key).digest()
    chunks = (
        int.from_bytes(h[i * _CHUNK_BYTES : (i + 1) * _CHUNK_BYTES], "big") % 100_000
        for i in range(_CHUNKS_PER_SIDE)
    )
    return "".join(f"{c:05d}" for c in chunks)


def safety_number(
    local_public_key: bytes, remote_public_key: bytes, *, iterations: int = ITERATIONS
) -> str:
    """The 60 digits (no spaces) for a pair of Ed25519 identity keys; order-independent."""
    halves = sorted(
        (_side_digits(local_public_key, iterations), _side_digits(remote_public_key, iterations))
    )
    return halves[0] + halves[1]


def format_safety_number(digits: str) -> str:
    """12 groups of 5 digits separated by spaces, as people read them aloud."""
    if len(digits) != DIGITS or not digits.isdigit():
        raise ValueError("a safety number is 60 decimal digits")
    return " ".join(digits[i : i + GROUP] for i in range(0, DIGITS, GROUP))


def safety_number_rows(digits: str, per_row: int = 4) -> list[str]:
    """The grouped number split into rows (3 rows of 4 groups), for narrow panes."""
    groups = format_safety_number(digits).split(" ")
    return [" ".join(groups[i : i + per_row]) for i in range(0, len(groups), per_row)]
