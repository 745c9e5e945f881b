"""Wycheproof HKDF-SHA256 and HMAC-SHA256 vectors through p2pmsg.crypto.kdf.

HMAC: groups with full 256-bit tags go through `hmac_sha256` and
`hmac_sha256_verify`. Groups with 128-bit (truncated) tags check that the
first 16 bytes of `hmac_sha256` match for valid cases and differ for invalid
ones, and that `hmac_sha256_verify` refuses every truncated tag: p2pmsg only
ever accepts full tags, by design.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from p2pmsg.crypto.kdf import hkdf_sha256, hmac_sha256, hmac_sha256_verify
from tests.conftest import require_vectors


def _load(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    data = json.loads(require_vectors("wycheproof", name).read_text(encoding="utf-8"))
    return [(group, case) for group in data["testGroups"] for case in group["tests"]]


def test_hkdf_sha256_vectors() -> None:
    failures: list[str] = []
    counts = {"valid": 0, "invalid": 0}
    for _group, case in _load("hkdf_sha256_test.json"):
        ikm, salt, info = (bytes.fromhex(case[f]) for f in ("ikm", "salt", "info"))
        counts[case["result"]] += 1
        if case["result"] == "valid":
            okm = hkdf_sha256(ikm, salt=salt, info=info, length=case["size"])
            if okm != bytes.fromhex(case["okm"]):
                failures.append(f"tcId {case['tcId']}: okm differs")
        else:
            # The only invalid cases ask for more than 255 * 32 bytes (RFC 5869 limit).
            with pytest.raises(ValueError):
                hkdf_sha256(ikm, salt=salt, info=info, length=case["size"])
    assert not failures, "\n".join(failures)
    assert counts["valid"] > 0 and counts["invalid"] > 0


def test_hmac_sha256_vectors() -> None:
    failures: list[str] = []
    counts = {"full": 0, "truncated": 0, "invalid": 0}
    for group, case in _load("hmac_sha256_test.json"):
        key, msg, tag = (bytes.fromhex(case[f]) for f in ("key", "msg", "tag"))
        tag_bytes = group["tagSize"] // 8
        valid = case["result"] == "valid"
        counts["invalid"] += not valid
        computed = hmac_sha256(key, msg)
        if tag_bytes == 32:
            counts["full"] += 1
            if (computed == tag) != valid or hmac_sha256_verify(key, msg, tag) != valid:
                failures.append(f"tcId {case['tcId']} (full tag, {case['result']})")
        else:
            counts["truncated"] += 1
            if (computed[:tag_bytes] == tag) != valid:
                failures.append(f"tcId {case['tcId']} (truncated tag, {case['result']})")
            if hmac_sha256_verify(key, msg, tag):
                failures.append(f"tcId {case['tcId']}: a truncated tag was accepted")
    assert not failures, "\n".join(failures)
    assert all(counts.values()), counts
