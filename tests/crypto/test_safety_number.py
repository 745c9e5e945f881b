"""Safety numbers: the same on both sides, different for any other key, stable over releases."""

from __future__ import annotations

import hashlib
import os

import pytest

from p2pmsg.crypto.identity import Identity
from p2pmsg.crypto.safety_number import (
    ITERATIONS,
    format_safety_number,
    safety_number,
    safety_number_rows,
)


def _pub() -> bytes:
    return Identity.generate(os.urandom).public_key


def _reference_half(public_key: bytes) -> str:
    """Signal's construction written out independently (hashlib objects, divmod digits)."""
    h = b"\x00\x00" + public_key + hashlib.sha256(public_key).digest()
    for _ in range(5200):
        d = hashlib.sha512()
        d.update(h)
        d.update(public_key)
        h = d.digest()
    digits = ""
    for offset in range(0, 30, 5):
        value = 0
        for byte in h[offset : offset + 5]:
            value = value * 256 + byte
        digits += str(value % 100000).zfill(5)
    return digits


def test_signal_parameters() -> None:
    assert ITERATIONS == 5200


def test_same_number_on_both_sides() -> None:
    alice, bob = _pub(), _pub()
    assert safety_number(alice, bob) == safety_number(bob, alice)


def test_matches_an_independent_rendering_of_the_construction() -> None:
    alice, bob = _pub(), _pub()
    expected = "".join(sorted((_reference_half(alice), _reference_half(bob))))
    assert safety_number(alice, bob) == expected


def test_sixty_digits_grouped_in_twelve_fives() -> None:
    number = safety_number(_pub(), _pub())
    assert len(number) == 60 and number.isdigit()
    groups = format_safety_number(number).split(" ")
    assert len(groups) == 12 and all(len(g) == 5 and g.isdigit() for g in groups)
    assert "".join(groups) == number
    rows = safety_number_rows(number)
    assert len(rows) == 3 and " ".join(rows) == format_safety_number(number)


def test_changes_when_either_key_changes() -> None:
    alice, bob, mallory = _pub(), _pub(), _pub()
    base = safety_number(alice, bob)
    assert safety_number(alice, mallory) != base
    assert safety_number(mallory, bob) != base
    flipped = bytes([bob[0] ^ 1]) + bob[1:]
    other = safety_number(alice, flipped)
    # Only the changed side's half moves; the unchanged side's 30 digits remain.
    assert other != base
    alice_half = _reference_half(alice)
    assert alice_half in (base[:30], base[30:]) and alice_half in (other[:30], other[30:])


def test_stable_known_answer() -> None:
    # A regression pin: the number must never change between releases, or two
    # people on different versions would read different digits and distrust a
    # good key. Keys are fixed bytes so the value is reproducible.
    alice = Identity.from_bytes(bytes(range(64))).public_key
    bob = Identity.from_bytes(bytes(range(64, 128))).public_key
    assert format_safety_number(safety_number(alice, bob)) == PINNED


PINNED = "27628 39146 16123 98122 57823 47500 93266 38585 81688 07116 89712 53905"


@pytest.mark.parametrize("bad", ["", "1" * 59, "1" * 61, "a" * 60])
def test_format_refuses_anything_but_sixty_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        format_safety_number(bad)


def test_refuses_wrong_key_length() -> None:
    with pytest.raises(ValueError):
        safety_number(b"\x01" * 31, _pub())
