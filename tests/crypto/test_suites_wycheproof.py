"""Wycheproof AES-GCM and ChaCha20-Poly1305 vectors through the suite interface.

Every case inside the suite's parameters (256-bit key, 96-bit nonce, 128-bit
tag) goes through `seal` and `open`: valid ones must produce exactly ct ‖ tag
and open back to the message; invalid ones must raise `DecryptError`. Cases
outside the parameters (other key or nonce sizes) must be refused by `open`
too: the suite contract is stricter than the primitive.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from p2pmsg.crypto.suites import get_suite
from p2pmsg.errors import DecryptError
from tests.conftest import require_vectors

FILES = {
    "aes-256-gcm": "aes_gcm_test.json",
    "chacha20-poly1305": "chacha20_poly1305_test.json",
}


def _cases(suite_name: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    path = require_vectors("wycheproof", FILES[suite_name])
    data = json.loads(path.read_text(encoding="utf-8"))
    for group in data["testGroups"]:
        for case in group["tests"]:
            yield group, case


def _in_scope(group: dict[str, Any]) -> bool:
    return group["keySize"] == 256 and group["ivSize"] == 96 and group["tagSize"] == 128


def _hex(case: dict[str, Any], field: str) -> bytes:
    return bytes.fromhex(case[field])


@pytest.mark.parametrize("suite_name", sorted(FILES))
def test_in_scope_cases_through_seal_and_open(suite_name: str) -> None:
    suite = get_suite(suite_name)
    failures: list[str] = []
    seen = {"valid": 0, "invalid": 0}
    for group, case in _cases(suite_name):
        if not _in_scope(group):
            continue
        key, nonce, aad = _hex(case, "key"), _hex(case, "iv"), _hex(case, "aad")
        msg, sealed = _hex(case, "msg"), _hex(case, "ct") + _hex(case, "tag")
        result = case["result"]
        assert result in seen, f"tcId {case['tcId']}: unexpected result {result!r}"
        seen[result] += 1
        if result == "valid":
            if suite.seal(key, nonce, msg, aad) != sealed:
                failures.append(f"tcId {case['tcId']}: seal differs")
            try:
                if suite.open(key, nonce, sealed, aad) != msg:
                    failures.append(f"tcId {case['tcId']}: open differs")
            except DecryptError:
                failures.append(f"tcId {case['tcId']}: valid case rejected")
        else:
            try:
                suite.open(key, nonce, sealed, aad)
            except DecryptError:
                continue
            failures.append(f"tcId {case['tcId']} ({case['comment']}): invalid case accepted")
    assert not failures, "\n".join(failures)
    # Both kinds were exercised, so neither branch can pass vacuously.
    assert seen["valid"] > 0 and seen["invalid"] > 0, seen


@pytest.mark.parametrize("suite_name", sorted(FILES))
def test_out_of_scope_parameters_are_refused(suite_name: str) -> None:
    suite = get_suite(suite_name)
    refused = 0
    for group, case in _cases(suite_name):
        if _in_scope(group):
            continue
        sealed = _hex(case, "ct") + _hex(case, "tag")
        with pytest.raises(DecryptError):
            suite.open(_hex(case, "key"), _hex(case, "iv"), sealed, _hex(case, "aad"))
        refused += 1
    assert refused > 0
