"""Password policy: each rule refuses on its own and says so; the list and hint are sane."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pmsg.crypto.password_policy import (
    RULE_COMMON,
    RULE_DIGIT,
    RULE_LENGTH,
    RULE_LOWER,
    RULE_NAME,
    RULE_SYMBOL,
    RULE_UPPER,
    check_password,
    common_passwords,
    estimate_entropy_bits,
    strength_hint,
)

GOOD = "Vq7#mulberry-Kite"


def test_a_good_password_passes() -> None:
    assert check_password(GOOD, "alice") == []


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Vq7#mul", RULE_LENGTH),
        ("vq7#mulberry-kite", RULE_UPPER),
        ("VQ7#MULBERRY-KITE", RULE_LOWER),
        ("Vqx#mulberry-Kite", RULE_DIGIT),
        ("Vq7xmulberryKite", RULE_SYMBOL),
        ("Password1!", RULE_COMMON),
        ("Vq7#Alice-Kite", RULE_NAME),
    ],
)
def test_each_rule_refuses_alone_and_is_named(password: str, rule: str) -> None:
    assert check_password(password, "alice") == [rule]


def test_every_failure_is_listed_at_once() -> None:
    assert check_password("abc", "") == [
        RULE_LENGTH,
        RULE_UPPER,
        RULE_DIGIT,
        RULE_SYMBOL,
        RULE_COMMON,
    ]
    assert set(check_password("", "")) >= {
        RULE_LENGTH,
        RULE_UPPER,
        RULE_LOWER,
        RULE_DIGIT,
        RULE_SYMBOL,
    }


def test_rule_messages_are_plain() -> None:
    assert RULE_LENGTH == "at least 8 characters"
    assert "display name" in RULE_NAME and "common" in RULE_COMMON


@pytest.mark.parametrize(
    "password",
    [
        "Password1!",
        "PASSWORD123!",
        "P@ssw0rd!",
        "P@ssw0rd2024#",
        "Qwerty123!",
        "Summer2024!",
        "Welcome1!",
        "Iloveyou!1",
        "L3tm3in!!1",
        "Dragon!!99",
        "Monkey#123",
    ],
)
def test_common_passwords_dressed_up_are_still_common(password: str) -> None:
    assert RULE_COMMON in check_password(password, "")


def test_shipped_list_is_a_few_thousand_lower_case_entries() -> None:
    common = common_passwords()
    assert len(common) >= 2000
    assert {"123456", "password", "qwerty", "iloveyou", "letmein"} <= common
    assert all(entry == entry.lower() and entry.strip() == entry for entry in common)


def test_display_name_rule_is_case_insensitive_and_needs_three_characters() -> None:
    assert RULE_NAME in check_password("Xy7#BoBbY-river", "Bobby")
    assert RULE_NAME not in check_password("Xy7#Al-river-Q", "Al")  # too short to check
    assert RULE_NAME not in check_password(GOOD, "   ")


def test_space_counts_as_a_symbol_and_unicode_letters_count() -> None:
    assert check_password("Grüne Äpfel 42", "") == []


@pytest.mark.parametrize(
    ("password", "hint"),
    [
        ("", "weak"),
        ("Password1!", "weak"),
        ("Tr0ub4dor&3", "strong"),
        ("correct horse battery staple", "excellent"),
    ],
)
def test_strength_hint(password: str, hint: str) -> None:
    assert strength_hint(password) == hint


def test_repetition_is_discounted() -> None:
    assert estimate_entropy_bits("Aa1!Aa1!Aa1!") < estimate_entropy_bits("Aa1!Bc2@De3#")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(max_size=20))
def test_never_crashes_and_is_deterministic(password: str, name: str) -> None:
    failures = check_password(password, name)
    assert failures == check_password(password, name)
    assert strength_hint(password) in {"weak", "fair", "strong", "excellent"}
    assert (failures == []) <= (len(password) >= 8)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_longer_is_never_weaker(password: str) -> None:
    assert (
        estimate_entropy_bits(password + "Zq9$") >= estimate_entropy_bits(password)
        or check_password(password + "Zq9$", "").count(RULE_COMMON) == 1
    )
