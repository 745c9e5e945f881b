"""Wycheproof Ed25519 and X25519 vectors through p2pmsg's own wrappers.

Ed25519 (`verify_signature`): "valid" cases must verify, "invalid" ones must
not (this file has no "acceptable" cases; the test fails if one appears, so a
new vector file forces a decision).

X25519 (`x25519_shared`): "valid" cases must give the expected secret.
"acceptable" cases are inputs RFC 7748 permits but a protocol may refuse. Our
rule: a public key whose result is all zeros (a small-order point; flag
ZeroSharedSecret) must raise `HandshakeError`, because it would let a peer
force a known shared secret; every other acceptable case (points on the twist,
non-canonical encodings, high bit set) is computed and must match the expected
secret, exactly as RFC 7748 specifies. The file has no "invalid" X25519 cases.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from p2pmsg.crypto.identity import verify_signature, x25519_shared
from p2pmsg.errors import HandshakeError
from tests.conftest import require_vectors


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(require_vectors("wycheproof", name).read_text())
    return data


def test_ed25519_vectors() -> None:
    data = _load("ed25519_test.json")
    checked = {"valid": 0, "invalid": 0}
    for group in data["testGroups"]:
        public_key = bytes.fromhex(group["publicKey"]["pk"])
        for case in group["tests"]:
            ok = verify_signature(
                public_key, bytes.fromhex(case["sig"]), bytes.fromhex(case["msg"])
            )
            result = case["result"]
            assert result in checked, f"tcId {case['tcId']}: unexpected result {result}"
            assert ok == (result == "valid"), f"tcId {case['tcId']} ({case['comment']})"
            checked[result] += 1
    assert checked["valid"] > 50 and checked["invalid"] > 50
    assert sum(checked.values()) == data["numberOfTests"]


def test_x25519_vectors() -> None:
    data = _load("x25519_test.json")
    counts = {"valid": 0, "acceptable_computed": 0, "acceptable_refused": 0}
    for group in data["testGroups"]:
        assert group["curve"] == "curve25519"
        for case in group["tests"]:
            private = bytes.fromhex(case["private"])
            public = bytes.fromhex(case["public"])
            shared = bytes.fromhex(case["shared"])
            label = f"tcId {case['tcId']} ({case['comment']})"
            if case["result"] == "valid":
                assert x25519_shared(private, public) == shared, label
                counts["valid"] += 1
            elif case["result"] == "acceptable" and shared == bytes(32):
                assert "ZeroSharedSecret" in case["flags"], label
                with pytest.raises(HandshakeError, match="small order"):
                    x25519_shared(private, public)
                counts["acceptable_refused"] += 1
            elif case["result"] == "acceptable":
                assert x25519_shared(private, public) == shared, label
                counts["acceptable_computed"] += 1
            else:
                pytest.fail(f"{label}: unexpected result {case['result']}")
    assert sum(counts.values()) == data["numberOfTests"]
    assert min(counts.values()) > 0, counts


def test_x25519_refuses_wrong_lengths() -> None:
    with pytest.raises(HandshakeError):
        x25519_shared(bytes(32), bytes(31))
    with pytest.raises(ValueError):
        x25519_shared(bytes(33), bytes(32))
