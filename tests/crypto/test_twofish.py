"""Twofish conformance (Schneier's KAT package) and the binding's own contract.

Every vector test runs on BOTH paths (libgcrypt and the portable `twofish`
package; see p2pmsg/crypto/twofish.py), except 192-bit keys, which only the
portable path has. The libgcrypt runs skip with the reason where the library
is not usable (fail under P2PMSG_REQUIRE_LIBGCRYPT=1).

Vectors are read from ../shared/vectors/twofish, never copied:
- ECB_TBL.TXT: 49 known answers per key size, all of them.
- CBC_E_M.TXT / CBC_D_M.TXT: Monte Carlo, 400 outer x 10,000 inner iterations
  per key size. By default only the first outer iterations of each key size run
  (fast, and each checks 10,000 chained operations plus the derivation of the
  next key, IV and input); the full files run with --run-full-vectors.

The Monte Carlo chaining rule (the AES-candidate MCT rule, which these files
follow; the headers name the mode and the test, the rule is verified below by
checking each record's successor in the file):
  encrypt: CT_j = E(K, PT_j xor CV_j); CV_(j+1) = CT_j;
           PT_(j+1) = CV_0 for j = 0, else CT_(j-1).
  decrypt: PT_j = D(K, CT_j) xor CV_j; CV_(j+1) = CT_j; CT_(j+1) = PT_j.
  after 10,000: KEY xor= the last keysize bits of (out_9998 ‖ out_9999);
  next IV = CV_10000 and next input = out_9998 (encrypt) / out_9999 (decrypt).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pmsg.crypto.twofish import (
    BACKEND_ENV,
    LIBGCRYPT,
    LIBRARY_ENV,
    PORTABLE,
    Twofish,
    cbc_decrypt,
    cbc_encrypt,
)
from tests.conftest import REPO_ROOT, require_vectors
from tests.crypto.twofish_paths import PATHS, key_sizes, require_path

INNER = 10_000
QUICK_OUTER = 3


@dataclass(frozen=True)
class KatRecord:
    key_bits: int
    index: int
    fields: dict[str, bytes]


def parse_kat(path: Path) -> list[KatRecord]:
    """Records of a Schneier KAT file: KEYSIZE=n sections of I=, KEY=, IV=, PT=, CT= lines."""
    records: list[KatRecord] = []
    key_bits = 0
    for line in path.read_text(encoding="ascii").splitlines():
        match = re.fullmatch(r"\s*(KEYSIZE|I|KEY|IV|PT|CT)=([0-9A-Fa-f]+)\s*", line)
        if match is None:
            continue
        name, value = match.groups()
        if name == "KEYSIZE":
            key_bits = int(value)
        elif name == "I":
            records.append(KatRecord(key_bits, int(value), {}))
        else:
            records[-1].fields[name] = bytes.fromhex(value)
    return records


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _next_key(key: bytes, second_last: bytes, last: bytes) -> bytes:
    return _xor(key, (second_last + last)[-len(key) :])


def _mc_encrypt(path: str, key: bytes, iv: bytes, pt: bytes) -> tuple[bytes, bytes]:
    """One outer encryption iteration; returns (CT_9998, CT_9999)."""
    cipher = Twofish(key, path)
    cv, p, previous = iv, pt, b""
    ct = b""
    for j in range(INNER):
        previous, ct = ct, cipher.cbc_encrypt(cv, p)
        p = iv if j == 0 else previous
        cv = ct
    return previous, ct


def _mc_decrypt(path: str, key: bytes, iv: bytes, ct: bytes) -> tuple[bytes, bytes, bytes]:
    """One outer decryption iteration; returns (PT_9998, PT_9999, CV_10000)."""
    cipher = Twofish(key, path)
    cv, c, previous, pt = iv, ct, b"", b""
    for _ in range(INNER):
        previous, pt = pt, cipher.cbc_decrypt(cv, c)
        cv, c = c, pt
    return previous, pt, cv


def _monte_carlo(path: str, file: str, outer: int | None) -> int:
    records = parse_kat(require_vectors("twofish", file))
    by_position = {(r.key_bits, r.index): r for r in records}
    checked = 0
    for record in records:
        if outer is not None and record.index >= outer:
            continue
        if record.key_bits // 8 not in key_sizes(path):
            continue
        f = record.fields
        following = by_position.get((record.key_bits, record.index + 1))
        if file == "CBC_E_M.TXT":
            second_last, last = _mc_encrypt(path, f["KEY"], f["IV"], f["PT"])
            assert last == f["CT"], f"{file} KEYSIZE={record.key_bits} I={record.index}"
            next_iv, next_input = last, second_last
            next_input_name = "PT"
        else:
            second_last, last, next_iv = _mc_decrypt(path, f["KEY"], f["IV"], f["CT"])
            assert last == f["PT"], f"{file} KEYSIZE={record.key_bits} I={record.index}"
            next_input = last
            next_input_name = "CT"
        if following is not None:
            g = following.fields
            assert g["KEY"] == _next_key(f["KEY"], second_last, last)
            assert g["IV"] == next_iv
            assert g[next_input_name] == next_input
        checked += 1
    return checked


path_param = pytest.mark.parametrize("path", PATHS)


@path_param
def test_ecb_known_answers_all(path: str) -> None:
    require_path(path)
    records = parse_kat(require_vectors("twofish", "ECB_TBL.TXT"))
    assert {r.key_bits for r in records} == {128, 192, 256}
    checked = 0
    for r in records:
        if r.key_bits // 8 not in key_sizes(path):
            continue
        cipher = Twofish(r.fields["KEY"], path)
        where = f"KEYSIZE={r.key_bits} I={r.index}"
        assert cipher.encrypt_block(r.fields["PT"]) == r.fields["CT"], where
        assert cipher.decrypt_block(r.fields["CT"]) == r.fields["PT"], where
        # the same answers through the CBC entry points (one block, zero IV = ECB)
        assert cipher.cbc_encrypt(bytes(16), r.fields["PT"]) == r.fields["CT"], where
        assert cipher.cbc_decrypt(bytes(16), r.fields["CT"]) == r.fields["PT"], where
        checked += 1
    assert len(records) == 3 * 49
    assert checked == len(key_sizes(path)) * 49


@path_param
@pytest.mark.parametrize("file", ["CBC_E_M.TXT", "CBC_D_M.TXT"])
def test_cbc_monte_carlo_first_iterations(path: str, file: str) -> None:
    require_path(path)
    assert _monte_carlo(path, file, outer=QUICK_OUTER) == len(key_sizes(path)) * QUICK_OUTER


@pytest.mark.vectors_full
@pytest.mark.timeout(1800)
@path_param
@pytest.mark.parametrize("file", ["CBC_E_M.TXT", "CBC_D_M.TXT"])
def test_cbc_monte_carlo_full(path: str, file: str) -> None:
    require_path(path)
    assert _monte_carlo(path, file, outer=None) == len(key_sizes(path)) * 400


def test_libgcrypt_path_has_no_192_bit_keys() -> None:
    """Why the 192-bit vectors run on the portable path only: libgcrypt refuses them
    (and `Twofish(key)` routes 24-byte keys to the portable path)."""
    require_path(LIBGCRYPT)
    with pytest.raises(ValueError, match="16- or 32-byte keys, got 24"):
        Twofish(bytes(24), LIBGCRYPT)
    assert Twofish(bytes(24)).path == PORTABLE
    assert Twofish(bytes(32)).path == LIBGCRYPT
    assert Twofish(bytes(16)).path == LIBGCRYPT


# --- the binding's contract ------------------------------------------------------------


def _cbc_reference(cipher: Twofish, iv: bytes, data: bytes) -> bytes:
    """CBC spelled out block by block on the single-block API."""
    out, chain = [], iv
    for i in range(0, len(data), 16):
        chain = cipher.encrypt_block(_xor(data[i : i + 16], chain))
        out.append(chain)
    return b"".join(out)


@path_param
@settings(max_examples=40, deadline=None)
@given(
    key=st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    iv=st.binary(min_size=16, max_size=16),
    blocks=st.integers(min_value=0, max_value=40).flatmap(
        lambda n: st.binary(min_size=16 * n, max_size=16 * n)
    ),
)
def test_cbc_matches_blockwise_reference_and_inverts(
    path: str, key: bytes, iv: bytes, blocks: bytes
) -> None:
    require_path(path)
    if len(key) not in key_sizes(path):
        key = key[:16]
    cipher = Twofish(key, path)
    sealed = cipher.cbc_encrypt(iv, blocks)
    assert sealed == _cbc_reference(cipher, iv, blocks)
    assert cipher.cbc_decrypt(iv, sealed) == blocks
    assert cbc_encrypt(key, iv, blocks) == sealed
    assert cbc_decrypt(key, iv, sealed) == blocks


@path_param
def test_key_schedule_is_reused_and_independent_per_key(path: str) -> None:
    require_path(path)
    a, b = Twofish(bytes(16), path), Twofish(bytes(range(16)), path)
    block = bytes(range(16, 32))
    first = a.encrypt_block(block)
    assert b.encrypt_block(block) != first
    assert a.encrypt_block(block) == first  # b's schedule did not overwrite a's


@pytest.mark.parametrize("size", [0, 1, 15, 17, 31, 33])
def test_rejects_bad_key_sizes(size: int) -> None:
    with pytest.raises(ValueError, match="16, 24 or 32"):
        Twofish(bytes(size))


@pytest.mark.parametrize("size", [0, 15, 17, 32])
@path_param
def test_rejects_bad_block_sizes(path: str, size: int) -> None:
    require_path(path)
    cipher = Twofish(bytes(32), path)
    with pytest.raises(ValueError, match="16 bytes"):
        cipher.encrypt_block(bytes(size))
    with pytest.raises(ValueError, match="16 bytes"):
        cipher.decrypt_block(bytes(size))


@path_param
def test_cbc_rejects_unaligned_data_and_bad_iv(path: str) -> None:
    require_path(path)
    cipher = Twofish(bytes(32), path)
    with pytest.raises(ValueError, match="multiple of 16"):
        cipher.cbc_encrypt(bytes(16), bytes(17))
    with pytest.raises(ValueError, match="multiple of 16"):
        cipher.cbc_decrypt(bytes(16), bytes(15))
    with pytest.raises(ValueError, match="IV"):
        cipher.cbc_encrypt(bytes(12), bytes(16))


def test_wipe_destroys_the_key_schedule() -> None:
    """Portable path: the schedule is zeroed in place, so the key no longer answers."""
    cipher = Twofish(bytes(range(32)), PORTABLE)
    block = bytes(16)
    before = cipher.encrypt_block(block)
    cipher.wipe()
    assert cipher.encrypt_block(block) != before


def test_wipe_closes_the_libgcrypt_handle() -> None:
    """libgcrypt path: wipe closes the handle (gcry_cipher_close wipes the schedule); any
    later use is a clear error, never a call on a freed handle."""
    require_path(LIBGCRYPT)
    cipher = Twofish(bytes(range(32)), LIBGCRYPT)
    cipher.encrypt_block(bytes(16))
    cipher.wipe()
    cipher.wipe()  # idempotent: the handle is closed exactly once
    for use in (
        lambda: cipher.encrypt_block(bytes(16)),
        lambda: cipher.decrypt_block(bytes(16)),
        lambda: cipher.cbc_encrypt(bytes(16), bytes(32)),
        lambda: cipher.cbc_decrypt(bytes(16), bytes(32)),
    ):
        with pytest.raises(ValueError, match="wiped"):
            use()


def _probe_without_site_packages(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Try `Twofish(bytes(16))` with no site-packages (so no `twofish` package)."""
    probe = (
        "import sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from p2pmsg.crypto.twofish import Twofish\n"
        "from p2pmsg.errors import CipherUnavailableError, P2PMsgError\n"
        "try:\n"
        "    Twofish(bytes(16))\n"
        "except CipherUnavailableError as exc:\n"
        "    assert isinstance(exc, P2PMsgError) and isinstance(exc, ImportError)\n"
        "    print(exc)\n"
    )
    # -I ignores PYTHON* variables and the user site, -S drops site-packages.
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )


def test_missing_library_gives_a_clear_error() -> None:
    """Without site-packages on the path the portable library cannot be found: say what
    to install. (The portable path is forced: libgcrypt is found without sys.path.)"""
    result = _probe_without_site_packages({BACKEND_ENV: PORTABLE})
    assert result.returncode == 0, result.stderr
    assert "twofish" in result.stdout and "not found" in result.stdout


def test_neither_path_available_names_both_causes() -> None:
    """No `twofish` package and a libgcrypt that cannot load: the error gives both reasons."""
    result = _probe_without_site_packages(
        {BACKEND_ENV: "auto", LIBRARY_ENV: "libgcrypt-absent-for-this-test.so.20"}
    )
    assert result.returncode == 0, result.stderr
    assert "twofish" in result.stdout and "not found" in result.stdout
    assert "cannot load libgcrypt-absent-for-this-test.so.20" in result.stdout


def test_required_libgcrypt_that_cannot_load_is_an_error_not_a_fallback() -> None:
    result = _probe_without_site_packages(
        {BACKEND_ENV: LIBGCRYPT, LIBRARY_ENV: "libgcrypt-absent-for-this-test.so.20"}
    )
    assert result.returncode == 0, result.stderr
    assert "libgcrypt Twofish path is not available" in result.stdout
    assert "libgcrypt-absent-for-this-test.so.20" in result.stdout
