"""The two Twofish paths give the same bytes, and the fast one is only used when trusted.

- Differential: random keys, IVs and lengths (0 and many blocks) through both
  paths, raw CBC both ways and the whole suite (same sealed bytes on the wire).
- The loader: a library that does not exist, is not libgcrypt, or gives a
  wrong known answer is refused, and the selection falls back to the portable
  path and says why. The wrong answer is injected as a wrong EXPECTATION
  (the `kats` parameter of `load`), never by patching the cipher.
- gcry error codes become `CipherBackendError` naming the call; handles are
  closed exactly once; one key can be shared between threads.
"""

from __future__ import annotations

import ctypes
import gc
import os
import random
import subprocess
import sys
import threading
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pmsg.crypto import twofish, twofish_gcrypt
from p2pmsg.crypto.suites import TWOFISH_SUITE_NAME, get_suite, twofish_keyed_on_path
from p2pmsg.crypto.twofish import (
    AUTO,
    BACKEND_ENV,
    LIBGCRYPT,
    LIBRARY_ENV,
    PORTABLE,
    Twofish,
    select,
)
from p2pmsg.crypto.twofish_gcrypt import SELF_TEST_KATS, GcryptTwofish
from p2pmsg.errors import CipherBackendError, CipherUnavailableError
from tests.conftest import REPO_ROOT, require_vectors
from tests.crypto.test_twofish import parse_kat
from tests.crypto.twofish_paths import require_path

ABSENT = "libgcrypt-absent-for-this-test.so.20"


@pytest.fixture(scope="module")
def both() -> None:
    require_path(LIBGCRYPT)
    require_path(PORTABLE)


def _pair(key: bytes) -> tuple[Twofish, Twofish]:
    fast, portable = Twofish(key, LIBGCRYPT), Twofish(key, PORTABLE)
    assert (fast.path, portable.path) == (LIBGCRYPT, PORTABLE)
    return fast, portable


# --- differential ----------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    key=st.sampled_from([16, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    iv=st.binary(min_size=16, max_size=16),
    data=st.integers(min_value=0, max_value=80).flatmap(
        lambda n: st.binary(min_size=16 * n, max_size=16 * n)
    ),
)
def test_paths_agree_on_random_inputs(both: None, key: bytes, iv: bytes, data: bytes) -> None:
    fast, portable = _pair(key)
    sealed = portable.cbc_encrypt(iv, data)
    assert fast.cbc_encrypt(iv, data) == sealed
    assert fast.cbc_decrypt(iv, sealed) == portable.cbc_decrypt(iv, sealed) == data
    # decryption of arbitrary blocks (not our own ciphertext) agrees too
    assert fast.cbc_decrypt(iv, data) == portable.cbc_decrypt(iv, data)
    if data:
        block = data[:16]
        assert fast.encrypt_block(block) == portable.encrypt_block(block)
        assert fast.decrypt_block(block) == portable.decrypt_block(block)


@pytest.mark.parametrize("blocks", [0, 1, 2, 15, 16, 17, 33, 256, 4096, 65536 // 16 + 3])
def test_paths_agree_on_many_blocks(both: None, blocks: int) -> None:
    """Seeded: the sizes the bulk code cares about, up to just over a 64 KiB record."""
    rng = random.Random(blocks)  # noqa: S311 - replayable test data, not a key
    for key_size in (16, 32):
        key, iv = rng.randbytes(key_size), rng.randbytes(16)
        data = rng.randbytes(16 * blocks)
        fast, portable = _pair(key)
        sealed = fast.cbc_encrypt(iv, data)
        assert sealed == portable.cbc_encrypt(iv, data)
        assert fast.cbc_decrypt(iv, sealed) == portable.cbc_decrypt(iv, sealed) == data
        assert len(sealed) == len(data)


@settings(max_examples=100, deadline=None)
@given(
    key=st.sampled_from([16, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    iv=st.binary(min_size=16, max_size=16),
    head=st.binary(max_size=16 * 70),
    tail_blocks=st.integers(min_value=0, max_value=2),
    spare=st.integers(min_value=0, max_value=40),
)
def test_the_in_place_calls_agree_with_the_plain_ones(
    both: None, key: bytes, iv: bytes, head: bytes, tail_blocks: int, spare: int
) -> None:
    """`cbc_encrypt_into` reads only `head[:head_size]` (the rest of `head` is a record's
    unaligned end, sealed in `tail`), chains into `tail`, and writes nothing past the
    ciphertext; `cbc_decrypt_into` reads only `data[:size]`."""
    head_size = len(head) - len(head) % 16
    tail = bytes(range(16 * tail_blocks))
    expected = Twofish(key, PORTABLE).cbc_encrypt(iv, head[:head_size] + tail)
    for cipher in _pair(key):
        out = bytearray(b"\xa5" * (len(expected) + spare))
        cipher.cbc_encrypt_into(iv, head, head_size, tail, out)
        assert out[: len(expected)] == expected and out[len(expected) :] == b"\xa5" * spare
        back = bytearray(b"\x5a" * (len(expected) + spare))
        cipher.cbc_decrypt_into(iv, expected + b"tag", len(expected), back)
        assert back[: len(expected)] == head[:head_size] + tail
        assert back[len(expected) :] == b"\x5a" * spare


def test_the_in_place_calls_refuse_bad_sizes(both: None) -> None:
    for cipher in _pair(bytes(32)):
        with pytest.raises(ValueError):
            cipher.cbc_encrypt_into(bytes(16), bytes(32), 33, b"", bytearray(64))  # past head
        with pytest.raises(ValueError):
            cipher.cbc_decrypt_into(bytes(16), bytes(16), 32, bytearray(32))  # past data
    fast = Twofish(bytes(32), LIBGCRYPT)
    with pytest.raises(ValueError):
        fast.cbc_encrypt_into(bytes(16), bytes(32), 8, bytes(16), bytearray(64))  # unaligned
    with pytest.raises(ValueError):
        fast.cbc_encrypt_into(bytes(16), bytes(32), 32, bytes(16), bytearray(40))  # out short
    with pytest.raises(ValueError):
        fast.cbc_decrypt_into(bytes(15), bytes(32), 32, bytearray(32))  # bad IV


def test_a_full_file_chunk_record_seals_the_same_bytes_on_both_paths(both: None) -> None:
    """192 KiB plaintexts (the largest file chunk, unaligned by its message header)."""
    rng = random.Random(192)  # noqa: S311 - replayable test data, not a key
    key, nonce = rng.randbytes(32), rng.randbytes(12)
    fast = twofish_keyed_on_path(key, LIBGCRYPT)
    portable = twofish_keyed_on_path(key, PORTABLE)
    for length in (196608, 196608 + 34, 196608 + 47):
        plaintext = rng.randbytes(length)
        sealed = fast.seal(nonce, plaintext, b"ad")
        assert sealed == portable.seal(nonce, plaintext, b"ad")
        assert len(sealed) == get_suite(TWOFISH_SUITE_NAME).sealed_size(length)
        assert portable.open(nonce, bytes(sealed), b"ad") == plaintext
        assert fast.open(nonce, bytes(sealed), b"ad") == plaintext


def test_one_key_reused_for_many_messages_agrees(both: None) -> None:
    """The CBC state of a libgcrypt handle must not leak from one message into the next."""
    rng = random.Random(17)  # noqa: S311 - replayable test data, not a key
    key = rng.randbytes(32)
    fast, portable = _pair(key)
    for _ in range(200):
        iv, data = rng.randbytes(16), rng.randbytes(16 * rng.randrange(0, 40))
        assert fast.cbc_encrypt(iv, data) == portable.cbc_encrypt(iv, data)
        assert fast.cbc_decrypt(iv, data) == portable.cbc_decrypt(iv, data)


@settings(max_examples=60, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=12, max_size=12),
    plaintext=st.binary(max_size=3000),
    aad=st.binary(max_size=40),
)
def test_suite_seals_the_same_bytes_on_both_paths(
    both: None, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes
) -> None:
    """Same bytes on the wire: a peer on either path opens what the other sealed."""
    fast = twofish_keyed_on_path(key, LIBGCRYPT)
    portable = twofish_keyed_on_path(key, PORTABLE)
    sealed = fast.seal(nonce, plaintext, aad)
    assert sealed == portable.seal(nonce, plaintext, aad)
    assert portable.open(nonce, sealed, aad) == fast.open(nonce, sealed, aad) == plaintext


def test_suite_on_the_default_path_matches_the_portable_path(both: None) -> None:
    suite = get_suite(TWOFISH_SUITE_NAME)
    rng = random.Random(5)  # noqa: S311 - replayable test data, not a key
    for length in (0, 1, 15, 16, 17, 4096, 65536):
        key, nonce, message = rng.randbytes(32), rng.randbytes(12), rng.randbytes(length)
        sealed = suite.seal(key, nonce, message, b"hdr")
        assert sealed == twofish_keyed_on_path(key, PORTABLE).seal(nonce, message, b"hdr")


# --- the self-test and the selection ---------------------------------------------------


def test_self_test_kats_are_the_published_ones() -> None:
    """The load-time KATs are entries of Schneier's ECB_TBL.TXT, not numbers made up here."""
    table = {
        (r.fields["KEY"], r.fields["PT"]): r.fields["CT"]
        for r in parse_kat(require_vectors("twofish", "ECB_TBL.TXT"))
    }
    assert {len(k.key) for k in SELF_TEST_KATS} == {16, 32}
    for kat in SELF_TEST_KATS:
        assert kat.iv == bytes(16), kat.source
        chain = bytes(16)  # CBC under a zero IV, block by block, each one a table entry
        for i in range(0, len(kat.plaintext), 16):
            mixed = bytes(a ^ b for a, b in zip(kat.plaintext[i : i + 16], chain, strict=True))
            chain = table[(kat.key, mixed)]
            assert kat.ciphertext[i : i + 16] == chain, kat.source


def test_real_library_passes_the_self_test() -> None:
    require_path(LIBGCRYPT)
    lib = twofish_gcrypt.load()

    def version(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split(".")[:3])

    assert version(lib.version) >= version(twofish_gcrypt.MIN_VERSION)
    assert "libgcrypt" in lib.describe()


def test_missing_library_is_refused_and_the_selection_falls_back() -> None:
    require_path(PORTABLE)
    with pytest.raises(CipherUnavailableError, match=f"cannot load {ABSENT}"):
        twofish_gcrypt.load(ABSENT)
    selection = select(AUTO, lambda: twofish_gcrypt.load(ABSENT))
    assert selection.active == PORTABLE and selection.gcrypt is None
    assert ABSENT in (selection.gcrypt_reason or "")
    assert "fallback" in selection.describe() and ABSENT in selection.describe()


def test_a_library_that_is_not_libgcrypt_is_refused() -> None:
    """libc loads fine but has none of the gcry_* symbols."""
    with pytest.raises(CipherUnavailableError, match=r"cannot load libc\.so\.6"):
        twofish_gcrypt.load("libc.so.6")


@pytest.mark.parametrize("which", range(len(SELF_TEST_KATS)))
def test_a_wrong_known_answer_fails_the_self_test(which: int) -> None:
    """One wrong expectation is enough for the library to be refused and not used."""
    require_path(LIBGCRYPT)
    require_path(PORTABLE)
    kats = list(SELF_TEST_KATS)
    wrong = bytearray(kats[which].ciphertext)
    wrong[-1] ^= 1
    kats[which] = replace(kats[which], ciphertext=bytes(wrong))
    with pytest.raises(CipherUnavailableError, match="self-test failed: encryption"):
        twofish_gcrypt.load(kats=kats)
    selection = select(AUTO, lambda: twofish_gcrypt.load(kats=kats))
    assert selection.active == PORTABLE and selection.gcrypt is None
    assert kats[which].source in (selection.gcrypt_reason or "")
    # Required but untrusted: no path at all, rather than a silently wrong cipher.
    required = select(LIBGCRYPT, lambda: twofish_gcrypt.load(kats=kats))
    assert required.active is None
    assert "self-test failed" in required.describe()


def test_forced_portable_never_loads_libgcrypt() -> None:
    def must_not_load() -> twofish_gcrypt.GcryptLibrary:
        raise AssertionError("the loader ran although the portable path was forced")

    selection = select(PORTABLE, must_not_load)
    assert selection.active == PORTABLE and "forced" in selection.describe()


def test_unknown_preference_is_a_clear_error() -> None:
    with pytest.raises(CipherUnavailableError, match=f"{BACKEND_ENV}='fast'"):
        select("fast")


def _status_in_child(env: dict[str, str]) -> str:
    """What a fresh process chooses under `env` (the real loader, no test hooks)."""
    probe = (
        "import logging, sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='%(message)s')\n"
        "from p2pmsg.crypto.twofish import Twofish, status\n"
        "print('path=' + Twofish(bytes(32)).path)\n"
        "print(status().as_dict())\n"
    )
    clean = {k: v for k, v in os.environ.items() if k not in (BACKEND_ENV, LIBRARY_ENV)}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        env={**clean, **env},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_process_choice_is_logged_and_follows_the_environment() -> None:
    require_path(PORTABLE)
    absent = _status_in_child({LIBRARY_ENV: ABSENT})
    assert "path=portable" in absent
    assert "Twofish path: portable" in absent and ABSENT in absent
    forced = _status_in_child({BACKEND_ENV: PORTABLE})
    assert "path=portable" in forced and "(forced)" in forced
    require_path(LIBGCRYPT)
    default = _status_in_child({})
    assert "path=libgcrypt" in default
    assert "Twofish path: libgcrypt" in default and "self-test passed" in default


def test_process_status_here_is_the_fast_path_when_usable() -> None:
    require_path(LIBGCRYPT)
    assert twofish.status().active == LIBGCRYPT
    assert twofish.is_available()
    assert Twofish(bytes(32)).path == LIBGCRYPT


# --- gcry errors, handles, threads -----------------------------------------------------


def test_gcry_error_codes_become_a_clear_exception() -> None:
    """A real failing call (a 24-byte key on a 256-bit Twofish handle), through `check`."""
    require_path(LIBGCRYPT)
    lib = twofish_gcrypt.load()
    handle = lib.open_keyed(bytes(32))
    try:
        with pytest.raises(CipherBackendError, match=r"gcry_cipher_setkey failed: Invalid key"):
            lib.check("gcry_cipher_setkey", lib.setkey(handle, bytes(24), 24))
        with pytest.raises(CipherBackendError, match=r"gcry_cipher_encrypt failed"):
            # 17 bytes: not a whole number of blocks, which CBC refuses
            out = ctypes.create_string_buffer(17)
            lib.check("gcry_cipher_encrypt", lib.encrypt(handle, out, 17, bytes(17), 17))
    finally:
        lib.close(handle)
    lib.check("gcry_cipher_close", 0)  # success is silent


def test_handles_are_closed_when_keys_are_dropped() -> None:
    require_path(LIBGCRYPT)
    lib = twofish_gcrypt.load()
    ciphers = [GcryptTwofish(os.urandom(32), lib) for _ in range(50)]
    closers = [c._closer for c in ciphers]
    assert all(closer.alive for closer in closers)
    ciphers[0].wipe()
    assert not closers[0].alive
    del ciphers
    gc.collect()
    assert not any(closer.alive for closer in closers)


def test_one_key_shared_between_threads_gives_the_right_bytes(both: None) -> None:
    key = os.urandom(32)
    shared = Twofish(key, LIBGCRYPT)
    reference = Twofish(key, PORTABLE)
    rng = random.Random(3)  # noqa: S311 - replayable test data, not a key
    jobs = [(rng.randbytes(16), rng.randbytes(16 * rng.randrange(1, 300))) for _ in range(64)]
    expected = [reference.cbc_encrypt(iv, data) for iv, data in jobs]
    results: list[list[bytes]] = [[] for _ in range(4)]

    def worker(slot: int) -> None:
        for iv, data in jobs:
            sealed = shared.cbc_encrypt(iv, data)
            assert shared.cbc_decrypt(iv, sealed) == data
            results[slot].append(sealed)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert all(r == expected for r in results)


def test_threads_under_one_key_get_handles_of_their_own() -> None:
    """Two threads sealing under one key each borrow a handle (one handle made them take
    turns); a handle still in use when the key is wiped is closed once it is given back,
    never while a call uses it, and every handle is closed exactly once."""
    require_path(LIBGCRYPT)
    lib = twofish_gcrypt.load()
    closed: list[int] = []
    real_close = lib.close

    def counting_close(handle: int) -> None:
        closed.append(handle)
        real_close(handle)

    lib.close = counting_close  # type: ignore[assignment]
    cipher = GcryptTwofish(os.urandom(32), lib)
    first = cipher._borrow()
    second = cipher._borrow()  # the first is in use: a new handle, not a wait
    assert first != second
    cipher._give_back(second)
    cipher.wipe()
    assert closed == [second]  # the free one at once; `first` is still in use
    cipher._give_back(first)
    assert sorted(closed) == sorted([first, second])
    with pytest.raises(ValueError, match="wiped"):
        cipher.cbc_encrypt(bytes(16), bytes(16))
    del cipher
    gc.collect()
    assert sorted(closed) == sorted([first, second])  # the finalizer closes nothing twice
