"""The fast Twofish path: multi-block CBC in C from libgcrypt, bound with ctypes.

Why libgcrypt: it is maintained, ships on every mainstream Linux as
`libgcrypt20` (GnuPG depends on it), and its Twofish runs a whole CBC message
in one call (AVX2 bulk code for decryption), where the `twofish` package can
only be called once per 16-byte block. We never write the cipher ourselves;
this module only binds seven C functions and checks the answers.

Trust, but verify: `load()` runs known-answer tests through the exact calls
the product makes (CBC, one call per message, both key sizes, a long message
for the bulk code) before anything uses the library. A library that is
missing, too old, refuses Twofish (a FIPS-mode system does) or gives one
wrong answer raises `CipherUnavailableError`, and `p2pmsg.crypto.twofish`
falls back to the portable path.

Handles: `GcryptTwofish` holds one key in `gcry_cipher_hd_t` handles, opened
and keyed once (open + setkey costs ~2 us, a 4 KiB message ~20 us). A handle
serves one call at a time (setiv + encrypt is not atomic), so a call borrows
a free one and a second thread under the same key gets a second handle
instead of waiting. Each is closed exactly once: by `wipe()` or, at the
latest, when the object is collected (`weakref.finalize`).
`gcry_cipher_close` wipes the key schedule.

The library is loaded with `ctypes.CDLL`, which releases the GIL around each
call: a 64 KiB message is tens of microseconds of C, worth running beside
other Python threads.

Constants and signatures are from libgcrypt's public header gcrypt.h
(1.8-1.10): enum gcry_cipher_algos, enum gcry_cipher_modes, and
`gcry_error_t` = `gpg_error_t` = unsigned int, whose low 16 bits are the
error code (0 = success).
"""

from __future__ import annotations

import ctypes
import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from p2pmsg.errors import CipherBackendError, CipherUnavailableError

log = logging.getLogger(__name__)

#: The soname to dlopen: the library's ABI has been 20 since libgcrypt 1.6.
LIBRARY_NAME: Final = "libgcrypt.so.20"
#: Oldest version accepted (gcry_check_version's argument). 1.8 (2017) is the
#: oldest still in a supported distribution and has the bulk Twofish code.
MIN_VERSION: Final = "1.8.0"

# gcrypt.h, enum gcry_cipher_algos: TWOFISH takes a 256-bit key (and also a
# 128-bit one); TWOFISH128 is the 128-bit name. There is no 192-bit Twofish.
GCRY_CIPHER_TWOFISH: Final = 10
GCRY_CIPHER_TWOFISH128: Final = 303
# gcrypt.h, enum gcry_cipher_modes.
GCRY_CIPHER_MODE_CBC: Final = 3
# gpg-error.h: the error code is the low 16 bits of a gpg_error_t.
_GPG_ERR_CODE_MASK: Final = 0xFFFF

BLOCK_SIZE: Final = 16
#: Key sizes libgcrypt's Twofish takes; 24-byte keys stay on the portable path.
KEY_SIZES: Final = (16, 32)
_ALGO_BY_KEY_SIZE: Final = {16: GCRY_CIPHER_TWOFISH128, 32: GCRY_CIPHER_TWOFISH}
_ZERO_IV: Final = bytes(BLOCK_SIZE)


@dataclass(frozen=True)
class CbcKat:
    """One CBC known answer: ciphertext = Twofish-CBC(key, iv, plaintext), no padding."""

    source: str
    key: bytes
    iv: bytes
    plaintext: bytes
    ciphertext: bytes


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


# From Schneier's Twofish KAT package, ECB_TBL.TXT (the full files are read by
# tests/crypto, which also check that these entries match them). One block of
# CBC under a zero IV is ECB; records I=1 and I=2 of a key size share the zero
# key and PT_2 = CT_1, so CBC(0 key, 0 IV, 32 zero bytes) = CT_1 || CT_2.
SELF_TEST_KATS: Final[tuple[CbcKat, ...]] = (
    CbcKat(
        "ECB_TBL KEYSIZE=128 I=1,2 as two-block CBC",
        key=bytes(16),
        iv=bytes(16),
        plaintext=bytes(32),
        ciphertext=_h("9F589F5CF6122C32B6BFEC2F2AE8C35AD491DB16E7B1C39E86CB086B789F5419"),
    ),
    CbcKat(
        "ECB_TBL KEYSIZE=128 I=49",
        key=_h("BCA724A54533C6987E14AA827952F921"),
        iv=bytes(16),
        plaintext=_h("6B459286F3FFD28D49F15B1581B08E42"),
        ciphertext=_h("5D9D4EEFFA9151575524F115815A12E0"),
    ),
    CbcKat(
        "ECB_TBL KEYSIZE=256 I=1,2 as two-block CBC",
        key=bytes(32),
        iv=bytes(16),
        plaintext=bytes(32),
        ciphertext=_h("57FF739D4DC92C1BD7FC01700CC8216FD43BB7556EA32E46F2A282B7D45B4E0D"),
    ),
    CbcKat(
        "ECB_TBL KEYSIZE=256 I=49",
        key=_h("248A7F3528B168ACFDD1386E3F51E30C2E2158BC3E5FC714C1EEECA0EA696D48"),
        iv=bytes(16),
        plaintext=_h("431058F4DBC7F734DA4F02F04CC4F459"),
        ciphertext=_h("37FE26FF1CF66175F5DDF4C33B97A205"),
    ),
)

#: Blocks in the self-test's long message: the bulk (parallel) decryption
#: code takes 8 or 16 blocks at a time, so 67 = 4 x 16 + 3 reaches it and the
#: per-block tail.
_SELF_TEST_BLOCKS: Final = 67


def _mapped_path(fragment: str) -> Path | None:
    """The file the dynamic loader mapped for `fragment` (Linux /proc), for diagnostics."""
    try:
        maps = Path("/proc/self/maps").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in maps.splitlines():
        path = line.rsplit(" ", 1)[-1]
        if path.startswith("/") and Path(path).name.startswith(fragment):
            return Path(path)
    return None


class GcryptLibrary:
    """libgcrypt, loaded and bound, not yet trusted: `load()` self-tests it."""

    def __init__(self, name: str = LIBRARY_NAME) -> None:
        try:
            lib = ctypes.CDLL(name)
            check_version = lib.gcry_check_version
            strerror = lib.gcry_strerror
            cipher_open = lib.gcry_cipher_open
            close = lib.gcry_cipher_close
            setkey = lib.gcry_cipher_setkey
            setiv = lib.gcry_cipher_setiv
            encrypt = lib.gcry_cipher_encrypt
            decrypt = lib.gcry_cipher_decrypt
        except (OSError, AttributeError) as exc:
            raise CipherUnavailableError(f"cannot load {name}: {exc}") from exc
        check_version.argtypes = [ctypes.c_char_p]
        check_version.restype = ctypes.c_char_p
        strerror.argtypes = [ctypes.c_uint]
        strerror.restype = ctypes.c_char_p
        # gcry_error_t gcry_cipher_open (gcry_cipher_hd_t *, int algo, int mode, unsigned flags)
        cipher_open.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_uint,
        ]
        cipher_open.restype = ctypes.c_uint
        close.argtypes = [ctypes.c_void_p]
        close.restype = None
        for fn in (setkey, setiv):  # (hd, const void *, size_t)
            fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
            fn.restype = ctypes.c_uint
        for fn in (encrypt, decrypt):  # (hd, void *out, size_t, const void *in, size_t)
            fn.argtypes = [
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_size_t,
                ctypes.c_void_p,
                ctypes.c_size_t,
            ]
            fn.restype = ctypes.c_uint
        # gcry_check_version is also libgcrypt's initialisation call: the
        # manual requires it before any other function. NULL if too old.
        found = check_version(MIN_VERSION.encode("ascii"))
        if found is None:
            actual = check_version(None)
            raise CipherUnavailableError(
                f"{name} is version {actual.decode('ascii', 'replace') if actual else '?'}, "
                f"need at least {MIN_VERSION}"
            )
        self.name = name
        self.version: str = (check_version(None) or b"?").decode("ascii", "replace")
        self.path = _mapped_path(Path(name).name.split(".so")[0] + ".so")
        self._strerror = strerror
        self._open = cipher_open
        self.close = close
        self.setkey = setkey
        self.setiv = setiv
        self.encrypt = encrypt
        self.decrypt = decrypt

    def describe(self) -> str:
        where = f" ({self.path})" if self.path is not None else ""
        return f"libgcrypt {self.version}{where}"

    def check(self, function: str, err: int) -> None:
        """Turn a non-zero gcry_error_t into an exception that names the call and the cause."""
        if err & _GPG_ERR_CODE_MASK:
            text = (self._strerror(err) or b"unknown error").decode("utf-8", "replace")
            raise CipherBackendError(f"libgcrypt {function} failed: {text} (error {err:#x})")

    def open_keyed(self, key: bytes) -> int:
        """A new CBC handle holding `key`; the caller owns it and must `close` it."""
        handle = ctypes.c_void_p()
        self.check(
            "gcry_cipher_open",
            self._open(ctypes.byref(handle), _ALGO_BY_KEY_SIZE[len(key)], GCRY_CIPHER_MODE_CBC, 0),
        )
        if not handle.value:  # pragma: no cover - success without a handle would be a lib bug
            raise CipherBackendError("libgcrypt gcry_cipher_open returned no handle")
        try:
            self.check("gcry_cipher_setkey", self.setkey(handle.value, key, len(key)))
        except BaseException:
            self.close(handle.value)
            raise
        return handle.value


def _check_cbc_args(iv: bytes, data: bytes) -> None:
    _check_cbc_sizes(iv, len(data))


def _check_cbc_sizes(iv: bytes, size: int) -> None:
    if len(iv) != BLOCK_SIZE:
        raise ValueError(f"CBC IV must be {BLOCK_SIZE} bytes, got {len(iv)}")
    if size % BLOCK_SIZE:
        raise ValueError(f"CBC data must be a multiple of {BLOCK_SIZE} bytes, got {size}")


class GcryptTwofish:
    """One Twofish key in libgcrypt CBC handles; safe to share between threads.

    A handle is used by one call at a time (setiv + encrypt is not atomic), so
    one handle per key made threads sealing under the same key take turns: two
    threads ran at the speed of one (~175 MB/s each way). Each call therefore
    borrows a free handle of this key, keying a new one (~2 us) when all are in
    use; there are never more handles than threads that used the key at once
    (the session seals file chunks on two). All are closed exactly once: by
    `wipe()` (a handle in use is closed when its call returns it) or, at the
    latest, when the object is collected (`weakref.finalize`).
    """

    __slots__ = ("__weakref__", "_closer", "_handles", "_key", "_lib", "_lock")

    #: which path this is, for diagnostics and the benchmark
    backend = "libgcrypt"

    def __init__(self, key: bytes, lib: GcryptLibrary) -> None:
        if not isinstance(key, bytes | bytearray | memoryview):
            raise TypeError("Twofish key must be bytes")
        if len(key) not in KEY_SIZES:
            raise ValueError(f"libgcrypt's Twofish takes 16- or 32-byte keys, got {len(key)}")
        self._lib = lib
        self._lock = threading.Lock()
        # Kept to key more handles; dropped by wipe() (and with this object).
        self._key: bytes | None = bytes(key)
        self._handles = _Handles(lib.open_keyed(self._key))
        # Runs once: on wipe(), or when this object is collected, or at exit.
        self._closer = weakref.finalize(self, _close_all, lib, self._handles)

    def wipe(self) -> None:
        """Close the handles now (libgcrypt wipes the key schedule); later use raises."""
        with self._lock:
            self._key = None
            self._closer()

    def encrypt_block(self, block: bytes) -> bytes:
        self._check_block(block)
        return self._run(self._lib.encrypt, "gcry_cipher_encrypt", _ZERO_IV, block)

    def decrypt_block(self, block: bytes) -> bytes:
        self._check_block(block)
        return self._run(self._lib.decrypt, "gcry_cipher_decrypt", _ZERO_IV, block)

    def cbc_encrypt(self, iv: bytes, data: bytes) -> bytes:
        """CBC without padding over block-aligned `data`, in one C call."""
        _check_cbc_args(iv, data)
        return self._run(self._lib.encrypt, "gcry_cipher_encrypt", iv, data) if data else b""

    def cbc_decrypt(self, iv: bytes, data: bytes) -> bytes:
        """Inverse of `cbc_encrypt`, in one C call."""
        _check_cbc_args(iv, data)
        return self._run(self._lib.decrypt, "gcry_cipher_decrypt", iv, data) if data else b""

    def cbc_encrypt_into(
        self, iv: bytes, head: bytes, head_size: int, tail: bytes, out: bytearray
    ) -> None:
        """CBC without padding over `head[:head_size] ‖ tail` into `out[:head_size +
        len(tail)]`, in two C calls on one handle (CBC chains across them), reading
        `head` in place: a sealed record's ciphertext without copying its plaintext
        (`tail` is its last block, padded). Both parts are block-aligned."""
        size = head_size + len(tail)
        if type(head) is not bytes or not 0 <= head_size <= len(head) or len(out) < size:
            raise ValueError("cbc_encrypt_into: head must be bytes holding head_size bytes")
        _check_cbc_sizes(iv, head_size)
        _check_cbc_sizes(iv, len(tail))
        if not size:
            return
        lib = self._lib
        window = (ctypes.c_char * size).from_buffer(out)
        try:
            base = ctypes.addressof(window)
            handle = self._borrow()
            try:
                lib.check("gcry_cipher_setiv", lib.setiv(handle, bytes(iv), BLOCK_SIZE))
                if head_size:
                    lib.check(
                        "gcry_cipher_encrypt", lib.encrypt(handle, base, head_size, head, head_size)
                    )
                if tail:
                    tail = bytes(tail)
                    lib.check(
                        "gcry_cipher_encrypt",
                        lib.encrypt(handle, base + head_size, len(tail), tail, len(tail)),
                    )
            finally:
                self._give_back(handle)
        finally:
            del window  # releases the export: `out` may be resized again

    def cbc_decrypt_into(self, iv: bytes, data: bytes, size: int, out: bytearray) -> None:
        """Inverse of CBC over `data[:size]` into `out[:size]`, in one C call, reading
        `data` in place (a record's ciphertext, its tag after it, is not copied out)."""
        if type(data) is not bytes or not 0 <= size <= len(data) or len(out) < size:
            raise ValueError("cbc_decrypt_into: data must be bytes holding size bytes")
        _check_cbc_sizes(iv, size)
        if not size:
            return
        lib = self._lib
        window = (ctypes.c_char * size).from_buffer(out)
        try:
            handle = self._borrow()
            try:
                lib.check("gcry_cipher_setiv", lib.setiv(handle, bytes(iv), BLOCK_SIZE))
                lib.check(
                    "gcry_cipher_decrypt",
                    lib.decrypt(handle, ctypes.addressof(window), size, data, size),
                )
            finally:
                self._give_back(handle)
        finally:
            del window

    @staticmethod
    def _check_block(block: bytes) -> None:
        if len(block) != BLOCK_SIZE:
            raise ValueError(f"Twofish block must be {BLOCK_SIZE} bytes, got {len(block)}")

    def _borrow(self) -> int:
        with self._lock:
            handles = self._handles
            if self._key is None or handles.closed:
                raise ValueError("this Twofish key was wiped")
            handle = handles.free.pop() if handles.free else self._lib.open_keyed(self._key)
            handles.in_use.add(handle)
            return handle

    def _give_back(self, handle: int) -> None:
        with self._lock:
            handles = self._handles
            handles.in_use.discard(handle)
            if handles.closed:  # wiped while this call ran: closed now, after its last use
                self._lib.close(handle)
            else:
                handles.free.append(handle)

    def _run(self, fn: Callable[..., int], name: str, iv: bytes, data: bytes) -> bytes:
        # One block with a zero IV is the bare block cipher, so the IV
        # derivation and CBC share the handle. setiv on every call: CBC state
        # left over from the previous message must never chain into this one.
        source = bytes(data)
        out = ctypes.create_string_buffer(len(source))
        lib = self._lib
        handle = self._borrow()
        try:
            lib.check("gcry_cipher_setiv", lib.setiv(handle, bytes(iv), BLOCK_SIZE))
            lib.check(name, fn(handle, out, len(source), source, len(source)))
        finally:
            self._give_back(handle)
        return out.raw


class _Handles:
    """The handles of one key, shared with its finalizer: free ones, ones a call is
    using (closed when given back, if the key was wiped meanwhile), and whether wiped."""

    __slots__ = ("closed", "free", "in_use")

    def __init__(self, first: int) -> None:
        self.free = [first]
        self.in_use: set[int] = set()
        self.closed = False


def _close_all(lib: GcryptLibrary, handles: _Handles) -> None:
    """Close every free handle now and mark the rest to be closed when given back."""
    handles.closed = True
    free, handles.free = handles.free, []
    for handle in free:
        lib.close(handle)


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _self_test(lib: GcryptLibrary, kats: Sequence[CbcKat]) -> None:
    """Raise `CipherUnavailableError` unless every answer is right."""
    for kat in kats:
        cipher = GcryptTwofish(kat.key, lib)
        try:
            if cipher.cbc_encrypt(kat.iv, kat.plaintext) != kat.ciphertext:
                raise CipherUnavailableError(f"self-test failed: encryption, {kat.source}")
            if cipher.cbc_decrypt(kat.iv, kat.ciphertext) != kat.plaintext:
                raise CipherUnavailableError(f"self-test failed: decryption, {kat.source}")
        finally:
            cipher.wipe()
    # The long message: one CBC call must equal the chain of single-block calls
    # (whose primitive the KATs above pinned), and one decryption call (the
    # bulk code) must give the message back.
    for size in KEY_SIZES:
        cipher = GcryptTwofish(bytes(range(size)), lib)
        try:
            iv = bytes(range(100, 100 + BLOCK_SIZE))
            message = bytes(i * 7 % 251 for i in range(_SELF_TEST_BLOCKS * BLOCK_SIZE))
            whole = cipher.cbc_encrypt(iv, message)
            chained, chain = [], iv
            for i in range(0, len(message), BLOCK_SIZE):
                chain = cipher.encrypt_block(_xor(message[i : i + BLOCK_SIZE], chain))
                chained.append(chain)
            if whole != b"".join(chained):
                raise CipherUnavailableError(f"self-test failed: {size * 8}-bit CBC chaining")
            if cipher.cbc_decrypt(iv, whole) != message:
                raise CipherUnavailableError(f"self-test failed: {size * 8}-bit bulk decryption")
        finally:
            cipher.wipe()


def load(name: str = LIBRARY_NAME, kats: Sequence[CbcKat] = SELF_TEST_KATS) -> GcryptLibrary:
    """Load libgcrypt and run the self-test; `CipherUnavailableError` says why not.

    `name` and `kats` are parameters so that tests can point the loader at a
    library that does not exist, or expect a wrong answer, and see it refused.
    """
    lib = GcryptLibrary(name)
    try:
        _self_test(lib, kats)
    except CipherBackendError as exc:  # e.g. Twofish disabled in FIPS mode
        raise CipherUnavailableError(f"self-test failed: {exc}") from exc
    return lib
