"""The portable Twofish path: raw CBC over the `twofish` package's C library.

This is the fallback behind `p2pmsg.crypto.twofish` (which picks the path):
it is used when libgcrypt is missing, fails to load or fails its self-test, or
when the portable path is forced. It works wherever the `twofish` wheel
builds, but that library only has a one-block entry point (~23 MB/s per
direction), so it is the slow path.

The `twofish` distribution builds Niels Ferguson's reference C implementation
as the extension file `_twofish*.so`, but its Python wrapper runs `import imp`,
which Python 3.12 removed. We never import that wrapper: we find the compiled
file through importlib (the same search the interpreter does for extension
modules) and bind its four exported C functions with ctypes, once per process.

Speed notes, measured on the development machine (one 4 KiB CBC pass):
- The library is loaded with `ctypes.PyDLL`, so calls keep the GIL instead
  of releasing and re-taking it around a ~100 ns C function (about 10% less
  per call than `CDLL`). Arguments are raw addresses (`c_void_p` from ints),
  the cheapest conversion ctypes offers (byref objects cost ~15% more).
- There is no multi-block entry point in the library, so one C call per block
  is the floor. CBC decryption makes those calls from C via `map` (no Python
  bytecode per block) and then removes the chaining with ONE big-integer XOR
  over the whole message: ~64 us per 4 KiB.
- CBC encryption is inherently sequential: each block is XORed in place with
  the previous ciphertext through a 64-bit memoryview and encrypted in place:
  ~120 us per 4 KiB. (Folding the XOR into the whitening words of a modified
  key schedule avoids Python XOR but needs a second C call per block; it
  measured only 4% faster, not worth the fragility.)
- Buffers are allocated per call (about 1 us per message), not shared per key,
  so one `Twofish` may be used from several threads; the key schedule, the
  expensive part, is built once per key.
- The stock wrapper spends ~1.3 us per block (argument checks, a fresh
  output buffer, a fresh pointer to the key), so a CBC loop over it costs
  ~380 us per 4 KiB in each direction.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import importlib.util
from collections import deque
from collections.abc import Callable
from itertools import repeat
from pathlib import Path

from p2pmsg.errors import CipherUnavailableError

BLOCK_SIZE = 16
KEY_SIZES = (16, 24, 32)

# struct Twofish_key { UInt32 s[4][256]; UInt32 K[40]; } from twofish.h
_KEY_WORDS = 4 * 256 + 40
_KeySchedule = ctypes.c_uint32 * _KEY_WORDS

_LIBRARY_NAME = "_twofish"


def _library_path() -> Path:
    """Where the `_twofish` extension file lives, found the way `import` would find it."""
    try:
        spec = importlib.util.find_spec(_LIBRARY_NAME)
    except (ImportError, ValueError) as exc:  # pragma: no cover - broken sys.path entries
        raise CipherUnavailableError(f"cannot search for {_LIBRARY_NAME}: {exc}") from exc
    origin = spec.origin if spec is not None else None
    if origin is None or not origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        raise CipherUnavailableError(
            f"the compiled Twofish library ({_LIBRARY_NAME}"
            f"{importlib.machinery.EXTENSION_SUFFIXES[0]}) was not found on sys.path; "
            "install the 'twofish' package (pip install twofish==0.3.0)"
        )
    return Path(origin)


class _Library:
    """The bound C entry points. Built once, on first use."""

    def __init__(self, path: Path) -> None:
        try:
            lib = ctypes.PyDLL(str(path))
            initialise = lib.exp_Twofish_initialise
            prepare_key = lib.exp_Twofish_prepare_key
            encrypt = lib.exp_Twofish_encrypt
            decrypt = lib.exp_Twofish_decrypt
        except (OSError, AttributeError) as exc:
            raise CipherUnavailableError(f"cannot load Twofish library {path}: {exc}") from exc
        initialise.argtypes = []
        initialise.restype = None
        prepare_key.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
        prepare_key.restype = None
        for fn in (encrypt, decrypt):
            # (const Twofish_key *, const uint8_t in[16], uint8_t out[16])
            fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
            fn.restype = None
        # Builds the fixed tables and runs the library's own known-answer self test.
        initialise()
        self.path = path
        self.prepare_key: Callable[[bytes, int, int], None] = prepare_key
        self.encrypt: Callable[[int, int, int], None] = encrypt
        self.decrypt: Callable[[int, int, int], None] = decrypt


_library: _Library | None = None


def _lib() -> _Library:
    global _library
    if _library is None:
        _library = _Library(_library_path())
    return _library


def load() -> None:
    """Bind the C library now; `CipherUnavailableError` says why it cannot be."""
    _lib()


def is_available() -> bool:
    """Whether the C library can be loaded here (binds it on success)."""
    try:
        _lib()
    except CipherUnavailableError:
        return False
    return True


def library_path() -> Path:
    """The file the cipher runs from (for diagnostics and the benchmark)."""
    return _lib().path


def _check_aligned(data: bytes) -> None:
    if len(data) % BLOCK_SIZE:
        raise ValueError(f"CBC data must be a multiple of {BLOCK_SIZE} bytes, got {len(data)}")


class PortableTwofish:
    """One Twofish key: the expanded key schedule is computed once and reused."""

    __slots__ = ("_addr", "_schedule")

    #: which path this is, for diagnostics and the benchmark
    backend = "portable"

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray | memoryview):
            raise TypeError("Twofish key must be bytes")
        if len(key) not in KEY_SIZES:
            raise ValueError(f"Twofish key must be 16, 24 or 32 bytes, got {len(key)}")
        lib = _lib()
        self._schedule = _KeySchedule()
        self._addr = ctypes.addressof(self._schedule)
        lib.prepare_key(bytes(key), len(key), self._addr)

    def wipe(self) -> None:
        """Overwrite the key schedule, for callers that retire a key (forward secrecy)."""
        ctypes.memset(self._addr, 0, ctypes.sizeof(self._schedule))

    def encrypt_block(self, block: bytes) -> bytes:
        return self._one_block(_lib().encrypt, block)

    def decrypt_block(self, block: bytes) -> bytes:
        return self._one_block(_lib().decrypt, block)

    def _one_block(self, fn: Callable[[int, int, int], None], block: bytes) -> bytes:
        if len(block) != BLOCK_SIZE:
            raise ValueError(f"Twofish block must be {BLOCK_SIZE} bytes, got {len(block)}")
        buf = ctypes.create_string_buffer(bytes(block), BLOCK_SIZE)
        addr = ctypes.addressof(buf)
        fn(self._addr, addr, addr)  # in place: the C code reads all input before writing
        return buf.raw

    def cbc_encrypt_into(
        self, iv: bytes, head: bytes, head_size: int, tail: bytes, out: bytearray
    ) -> None:
        """`cbc_encrypt(iv, head[:head_size] + tail)` written into `out` (the libgcrypt
        path's interface; this path copies, being slow anyway)."""
        if not 0 <= head_size <= len(head):
            raise ValueError("cbc_encrypt_into: head must hold head_size bytes")
        sealed = self.cbc_encrypt(iv, bytes(head[:head_size]) + bytes(tail))
        out[: len(sealed)] = sealed

    def cbc_decrypt_into(self, iv: bytes, data: bytes, size: int, out: bytearray) -> None:
        """`cbc_decrypt(iv, data[:size])` written into `out[:size]`."""
        if not 0 <= size <= len(data):
            raise ValueError("cbc_decrypt_into: data must hold size bytes")
        out[:size] = self.cbc_decrypt(iv, bytes(data[:size]))

    def cbc_encrypt(self, iv: bytes, data: bytes) -> bytes:
        """CBC without padding over block-aligned `data`."""
        if len(iv) != BLOCK_SIZE:
            raise ValueError(f"CBC IV must be {BLOCK_SIZE} bytes, got {len(iv)}")
        _check_aligned(data)
        n = len(data)
        # One buffer holding IV ‖ data: block i is XORed with block i-1 (the IV
        # or the ciphertext just written) and then encrypted in place.
        buf = bytearray(iv)
        buf += data
        window = (ctypes.c_char * len(buf)).from_buffer(buf)
        try:
            base = ctypes.addressof(window)
            words = memoryview(buf).cast("Q")
            try:
                encrypt = _lib().encrypt
                key = self._addr
                for i in range(2, (n >> 3) + 2, 2):
                    words[i] ^= words[i - 2]
                    words[i + 1] ^= words[i - 1]
                    addr = base + (i << 3)
                    encrypt(key, addr, addr)
            finally:
                words.release()
        finally:
            del window  # releases the export so the bytearray could be resized
        return bytes(buf[BLOCK_SIZE:])

    def cbc_decrypt(self, iv: bytes, data: bytes) -> bytes:
        """Inverse of `cbc_encrypt`: P_i = D(C_i) xor C_(i-1), with C_(-1) = IV."""
        if len(iv) != BLOCK_SIZE:
            raise ValueError(f"CBC IV must be {BLOCK_SIZE} bytes, got {len(iv)}")
        _check_aligned(data)
        n = len(data)
        if n == 0:
            return b""
        src = ctypes.create_string_buffer(bytes(data), n)
        out = ctypes.create_string_buffer(n)
        s = ctypes.addressof(src)
        d = ctypes.addressof(out)
        # Blocks decrypt independently, so the C calls are driven from C by map().
        deque(
            map(
                _lib().decrypt,
                repeat(self._addr, n >> 4),
                range(s, s + n, BLOCK_SIZE),
                range(d, d + n, BLOCK_SIZE),
            ),
            maxlen=0,
        )
        chain = int.from_bytes(bytes(iv) + bytes(data[:-BLOCK_SIZE]), "little")
        return (int.from_bytes(out.raw, "little") ^ chain).to_bytes(n, "little")
