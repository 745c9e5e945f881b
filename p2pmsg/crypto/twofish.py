"""Twofish block cipher and raw CBC: picks the fast path or the portable one.

Two paths give the same bytes (tests/crypto/test_twofish_paths.py proves it):

- `libgcrypt` (`p2pmsg.crypto.twofish_gcrypt`): the system's libgcrypt,
  whole CBC messages in one C call: raw CBC at 4 KiB measured ~190 MB/s
  encrypting (sequential by nature) and ~600 MB/s decrypting (bulk AVX2
  code), about 5x and 9x the portable path; the whole suite 5-7x. Used
  only after it passed its known-answer self-test in this process. Takes
  16- and 32-byte keys (the suite uses 32).
- `portable` (`p2pmsg.crypto.twofish_portable`): the `twofish` package,
  one C call per block. The fallback, and the only path for 24-byte keys.

The choice is made once per process, on first use, and logged:
P2PMSG_TWOFISH_BACKEND=auto (default) takes libgcrypt when it loads and
passes its self-test, else the portable path; `portable` forces the fallback
(tests, or a distrust of the system library); `libgcrypt` requires the fast
path (`CipherUnavailableError` with the reason if it cannot be used).
P2PMSG_TWOFISH_LIBGCRYPT names the library to load (default libgcrypt.so.20).
`status()` says which path is active and why.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from p2pmsg.crypto import twofish_gcrypt, twofish_portable
from p2pmsg.crypto.twofish_gcrypt import GcryptLibrary, GcryptTwofish
from p2pmsg.crypto.twofish_portable import PortableTwofish
from p2pmsg.errors import CipherUnavailableError

log = logging.getLogger(__name__)

BLOCK_SIZE: Final = 16
KEY_SIZES: Final = (16, 24, 32)

LIBGCRYPT: Final = "libgcrypt"
PORTABLE: Final = "portable"
AUTO: Final = "auto"
BACKEND_ENV: Final = "P2PMSG_TWOFISH_BACKEND"
LIBRARY_ENV: Final = "P2PMSG_TWOFISH_LIBGCRYPT"
_CHOICES: Final = (AUTO, LIBGCRYPT, PORTABLE)

TwofishImpl = GcryptTwofish | PortableTwofish


@dataclass(frozen=True)
class Selection:
    """Which path `Twofish(key)` takes, and what was found on the way."""

    preference: str
    #: the self-tested library, or None
    gcrypt: GcryptLibrary | None
    #: why libgcrypt is not used (None when it is)
    gcrypt_reason: str | None
    #: whether the `twofish` package's library loads here
    portable: bool
    portable_reason: str | None

    @property
    def active(self) -> str | None:
        """The path 32-byte keys (the suite's) take: 'libgcrypt', 'portable' or None."""
        if self.gcrypt is not None:
            return LIBGCRYPT
        if self.preference != LIBGCRYPT and self.portable:
            return PORTABLE
        return None

    def describe(self) -> str:
        """One line for logs, the benchmark and diagnostics."""
        active = self.active
        if active == LIBGCRYPT:
            assert self.gcrypt is not None
            return f"libgcrypt: {self.gcrypt.describe()}, self-test passed (multi-block CBC in C)"
        if active == PORTABLE:
            why = "forced" if self.preference == PORTABLE else f"fallback: {self.gcrypt_reason}"
            return f"portable: the twofish package, one C call per block ({why})"
        return f"unavailable: libgcrypt: {self.gcrypt_reason}; portable: {self.portable_reason}"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "active": self.active,
            "preference": self.preference,
            "libgcrypt": self.gcrypt.describe() if self.gcrypt is not None else None,
            "libgcrypt_unused_because": self.gcrypt_reason,
            "portable_available": "yes" if self.portable else self.portable_reason,
            "describe": self.describe(),
        }


def select(
    preference: str, load_gcrypt: Callable[[], GcryptLibrary] = twofish_gcrypt.load
) -> Selection:
    """Decide the path (pure apart from loading): the tests call this with their own loader."""
    if preference not in _CHOICES:
        raise CipherUnavailableError(
            f"{BACKEND_ENV}={preference!r}: expected one of {', '.join(_CHOICES)}"
        )
    gcrypt: GcryptLibrary | None = None
    gcrypt_reason: str | None
    if preference == PORTABLE:
        gcrypt_reason = f"{BACKEND_ENV}={PORTABLE}"
    else:
        try:
            gcrypt, gcrypt_reason = load_gcrypt(), None
        except CipherUnavailableError as exc:
            gcrypt_reason = str(exc)
    try:
        twofish_portable.load()
        portable, portable_reason = True, None
    except CipherUnavailableError as exc:
        portable, portable_reason = False, str(exc)
    return Selection(preference, gcrypt, gcrypt_reason, portable, portable_reason)


_selection: Selection | None = None
_selection_lock = threading.Lock()


def _default_loader() -> GcryptLibrary:
    return twofish_gcrypt.load(os.environ.get(LIBRARY_ENV) or twofish_gcrypt.LIBRARY_NAME)


def status() -> Selection:
    """The process-wide choice, made (self-test included) and logged on first call."""
    global _selection
    with _selection_lock:
        if _selection is None:
            preference = os.environ.get(BACKEND_ENV, "").strip().lower() or AUTO
            _selection = select(preference, _default_loader)
            failed = _selection.gcrypt_reason or ""
            level = logging.WARNING if "self-test failed" in failed else logging.INFO
            log.log(level, "Twofish path: %s", _selection.describe())
        return _selection


def is_available() -> bool:
    """Whether Twofish with the suite's 32-byte key can run here (on either path)."""
    return status().active is not None


def library_path() -> str:
    """What the cipher runs from (for diagnostics and the benchmark)."""
    selection = status()
    if selection.gcrypt is not None:
        return selection.gcrypt.describe()
    return str(twofish_portable.library_path())


def _implementation(key: bytes, path: str | None) -> TwofishImpl:
    selection = status()
    if path is None:
        # 24-byte keys exist only on the portable path; the suite never uses them.
        fast = len(key) in twofish_gcrypt.KEY_SIZES
        wants_fast = selection.gcrypt is not None or selection.preference == LIBGCRYPT
        path = LIBGCRYPT if fast and wants_fast else PORTABLE
    if path == LIBGCRYPT:
        if selection.gcrypt is None:
            raise CipherUnavailableError(
                f"the libgcrypt Twofish path is not available: {selection.gcrypt_reason}"
            )
        return GcryptTwofish(key, selection.gcrypt)
    if path == PORTABLE:
        if not selection.portable:
            also = f"; libgcrypt path: {selection.gcrypt_reason}" if selection.gcrypt_reason else ""
            raise CipherUnavailableError(
                f"no Twofish path here: portable path: {selection.portable_reason}{also}"
            )
        return PortableTwofish(key)
    raise ValueError(f"unknown Twofish path {path!r}; known: {LIBGCRYPT}, {PORTABLE}")


class Twofish:
    """One Twofish key on the selected path (or on `path`, for tests and the benchmark).

    The methods are the implementation's own bound methods, so this wrapper
    costs nothing per call.
    """

    __slots__ = (
        "_impl",
        "cbc_decrypt",
        "cbc_decrypt_into",
        "cbc_encrypt",
        "cbc_encrypt_into",
        "decrypt_block",
        "encrypt_block",
        "wipe",
    )

    cbc_encrypt: Callable[[bytes, bytes], bytes]
    cbc_decrypt: Callable[[bytes, bytes], bytes]
    #: (iv, head, head_size, tail, out): CBC over head[:head_size] ‖ tail into out
    cbc_encrypt_into: Callable[[bytes, bytes, int, bytes, bytearray], None]
    #: (iv, data, size, out): CBC decryption of data[:size] into out
    cbc_decrypt_into: Callable[[bytes, bytes, int, bytearray], None]
    encrypt_block: Callable[[bytes], bytes]
    decrypt_block: Callable[[bytes], bytes]
    wipe: Callable[[], None]

    def __init__(self, key: bytes, path: str | None = None) -> None:
        if not isinstance(key, bytes | bytearray | memoryview):
            raise TypeError("Twofish key must be bytes")
        if len(key) not in KEY_SIZES:
            raise ValueError(f"Twofish key must be 16, 24 or 32 bytes, got {len(key)}")
        impl = _implementation(bytes(key), path)
        self._impl = impl
        self.cbc_encrypt = impl.cbc_encrypt
        self.cbc_decrypt = impl.cbc_decrypt
        self.cbc_encrypt_into = impl.cbc_encrypt_into
        self.cbc_decrypt_into = impl.cbc_decrypt_into
        self.encrypt_block = impl.encrypt_block
        self.decrypt_block = impl.decrypt_block
        self.wipe = impl.wipe

    @property
    def path(self) -> str:
        """'libgcrypt' or 'portable': which implementation holds this key."""
        return self._impl.backend


def cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """One-shot CBC encryption (no padding); build a `Twofish` to reuse a key."""
    return Twofish(key).cbc_encrypt(iv, data)


def cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """One-shot CBC decryption (no padding)."""
    return Twofish(key).cbc_decrypt(iv, data)
