"""The one display-name rule, and comparing names the way people read them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pmsg.errors import ConfigError, HandshakeError
from p2pmsg.node.net.advert import InvalidAdvertisement, validate_display_name
from p2pmsg.profile.profile import validate_display_name as own_name
from p2pmsg.protocol.handshake import check_display_name
from p2pmsg.protocol.names import (
    MAX_NAME_CHARS,
    name_key,
    name_problem,
    names_clash,
)

# Look-alikes from the issue, plus Cyrillic and Greek homoglyphs.
REFUSED = [
    "alice ",
    " alice",
    "Alice\u00a0",
    "alice\u2028",
    "alice\u2029",
    "ali\u200bce",
    "ali\u202ece",
    "alice\u2066",
    "\x1b[31malice",
    "ali\nce",
    "ali\rce",
    "al\x00ice",
    "a" * (MAX_NAME_CHARS + 1),
    "",
    "\u00e9" * 65,
]


@pytest.mark.parametrize("name", REFUSED)
def test_every_path_refuses_the_same_names(name: str) -> None:
    assert name_problem(name) is not None
    with pytest.raises(HandshakeError):
        check_display_name(name)
    with pytest.raises(InvalidAdvertisement):
        validate_display_name(name)


@pytest.mark.parametrize("name", ["alice", "Carol Smith", "Zoë", "李雷", "o'brien", "x" * 64])
def test_ordinary_names_pass_everywhere(name: str) -> None:
    assert name_problem(name) is None
    assert check_display_name(name) == name
    assert validate_display_name(name) == name
    assert own_name(f"  {name} ") == name


def test_own_name_trims_what_the_user_typed_but_refuses_hidden_characters() -> None:
    with pytest.raises(ConfigError, match="U\\+202E"):
        own_name("al\u202eice")


def test_non_text_is_refused_at_the_handshake() -> None:
    with pytest.raises(HandshakeError):
        check_display_name(b"alice")


def test_name_key_reads_like_a_person() -> None:
    assert name_key("Alice") == name_key("alice") == name_key("\uff21\uff2c\uff29\uff23\uff25")
    assert name_key("Carol   Smith") == name_key("carol smith")
    assert name_key("alice") != name_key("alicia")


CLASHES = [
    ("alice", "\u0430lice"),  # Cyrillic a
    ("Alice", "AIice"),  # capital i for l
    ("alice", "a1ice"),
    ("bob", "b0b"),
    ("BOB", "\u0392\u039f\u0392"),  # Greek capitals
    ("Carol", "\u0421arol"),  # Cyrillic capital es
    ("Eve", "\u0415v\u0435"),
    ("mallory", "rnallory"),  # rn reads as m (UTS #39)
    ("paypal", "\u0440\u0430\u0443\u0440\u0430l"),
    ("Carol", "carol"),
]


@pytest.mark.parametrize(("a", "b"), CLASHES)
def test_look_alikes_clash(a: str, b: str) -> None:
    assert names_clash(a, b)
    assert names_clash(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("alice", "bob"),
        ("Dan", "Dari"),
        ("ruby", "tutu"),
        ("Ivan", "\u0418\u0432\u0430\u043d"),
        ("ann", "anna"),
        ("Carol", "Caroline"),
    ],
)
def test_different_names_do_not_clash(a: str, b: str) -> None:
    assert not names_clash(a, b)


def test_an_empty_name_clashes_with_nothing() -> None:
    assert not names_clash("", "")


@given(st.text(max_size=40))
def test_keys_are_stable_and_total(text: str) -> None:
    assert names_clash(text, text) == bool(text)  # reflexive for any non-empty name
    assert name_key(text) == name_key(name_key(text))
