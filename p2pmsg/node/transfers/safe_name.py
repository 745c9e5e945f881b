"""Receiver-side file names: what a peer offers is never trusted as a path.

A name in a `file_offer` has already passed the protocol's checks (no path
separators, no C0/C1 controls), but the receive path is the last line of
defence and must be safe on its own: the same function runs on names from
the store (written by an older version) and from tests. So `safe_name`
assumes nothing about its input and turns any string into one plain base
name that:

- is a single component (no `/`, `\\`, drive colons; `..` and `.` vanish);
- holds no terminal escape sequences (CSI, OSC, other ESC sequences), no
  control characters, no Unicode format characters (bidi overrides that make
  `invoice\u202efdp.exe` look like `invoiceexe.pdf`, zero-width joiners);
- does not start with a dot or a dash (hidden files; `-rf` read as an option
  by whoever later types `rm *`) and does not end in dots or spaces (Windows
  drops them silently, so two names would collide);
- is not a Windows device name (`con`, `nul.txt`, `COM1`), which would open
  a device when the file is copied to a Windows share;
- fits in 255 bytes of UTF-8 (the limit of ext4, btrfs, XFS, APFS), cut on a
  character boundary, with its extension kept so the file type stays visible.

`create_unique` then claims the name in the downloads folder with
`O_CREAT | O_EXCL`, so an existing file is never overwritten and two
transfers finishing at once cannot pick the same name: the kernel decides.
"""

from __future__ import annotations

import errno
import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

MAX_NAME_BYTES = 255
FALLBACK_NAME = "file"
#: Longest suffix (in bytes, dot included) we still treat as an extension worth keeping.
MAX_EXTENSION_BYTES = 32
#: How many numbered alternatives ("name (1).ext" ...) to try before giving up.
MAX_NUMBERED = 10_000

# ESC-introduced sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), the
# other string controls (DCS, SOS, PM, APC: ESC P/X/^/_ ... ST), and two-byte ESC x.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI; an unterminated one is removed too
    r"|\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC / DCS / SOS / PM / APC
    r"|\x1b[ -/]*[0-~]?"  # nF / Fp / Fe / Fs escape sequences, lone ESC
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # 8-bit CSI
    r"|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # 8-bit string controls
)
# Characters Windows forbids in names (besides the separators handled first).
_WINDOWS_FORBIDDEN = frozenset('<>:"|?*')
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$", "clock$"}
    | {f"{dev}{n}" for dev in ("com", "lpt") for n in "0123456789\u00b9\u00b2\u00b3"}
)
_COMPOUND_SUFFIXES = (".tar",)  # keep "x.tar.gz" together when numbering or truncating


def _drop_escapes(text: str) -> str:
    return _ESCAPES.sub("", text)


def _clean_char(ch: str) -> str:
    """One character of the result: itself, "_" for a visible hazard, "" for an invisible one."""
    if ch in "/\\":
        return "/"  # split on it below
    category = unicodedata.category(ch)
    if category == "Cf":  # bidi overrides/isolates, zero-width chars, BOM: invisible, drop
        return ""
    if category in ("Cc", "Zl", "Zp", "Cs", "Cn"):  # controls, line breaks, lone surrogates
        return "_"
    if ch in _WINDOWS_FORBIDDEN:
        return "_"
    if category.startswith("Z"):  # odd spaces (NBSP, ideographic space...) become plain spaces
        return " "
    return ch


def split_extension(name: str) -> tuple[str, str]:
    """("archive", ".tar.gz"), ("notes", ".txt"), ("README", ""); a leading dot is no extension."""
    dot = name.rfind(".")
    if dot <= 0 or dot == len(name) - 1:
        return name, ""
    stem, ext = name[:dot], name[dot:]
    if len(ext.encode("utf-8")) > MAX_EXTENSION_BYTES or " " in ext:
        return name, ""
    for compound in _COMPOUND_SUFFIXES:
        if stem.lower().endswith(compound) and len(stem) > len(compound):
            return stem[: -len(compound)], stem[-len(compound) :] + ext
    return stem, ext


def _truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    # errors="ignore" drops a multi-byte character cut in half at the end.
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def fit_name(stem: str, ext: str, suffix: str = "", limit: int = MAX_NAME_BYTES) -> str:
    """stem + suffix + ext within `limit` UTF-8 bytes, shortening the stem first."""
    room = limit - len(ext.encode("utf-8")) - len(suffix.encode("utf-8"))
    if room < 1:  # a pathological extension: give it up rather than the whole name
        ext, room = "", limit - len(suffix.encode("utf-8"))
    stem = _truncate_utf8(stem, room).rstrip(". ")
    return f"{stem or FALLBACK_NAME}{suffix}{ext}"


def safe_name(offered: str, *, limit: int = MAX_NAME_BYTES) -> str:
    """A harmless base name for `offered` (see the module docstring). Never empty, never raises."""
    text = unicodedata.normalize("NFC", _drop_escapes(offered))
    text = "".join(_clean_char(ch) for ch in text)
    # Only the last path component counts: "../../x" -> "x", "/etc/passwd" -> "passwd".
    components = [part for part in text.split("/") if part.strip(" .")]
    base = components[-1] if components else ""
    base = re.sub(r"_{2,}", "_", base)  # "a\r\n\r\nb" -> "a_b", not a row of underscores
    base = base.lstrip(" .-").rstrip(" .")
    if not base:
        return FALLBACK_NAME
    stem, ext = split_extension(base)
    first = stem.split(".", 1)[0].rstrip(" ").lower()
    if first in _WINDOWS_RESERVED:  # "con", "nul.txt", "com1.tar.gz": Windows opens a device
        stem = "_" + stem
    return fit_name(stem, ext, limit=limit)


def extension_allowed(name: str, allowed: Iterable[str] | None) -> bool:
    """True when `allowed` is None (no restriction) or holds the name's last extension.

    Entries may be written with or without the dot and in any case ("pdf", ".PDF")."""
    if allowed is None:
        return True
    wanted = {"." + e.lower().lstrip(".") for e in allowed}
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in wanted


def numbered(name: str, n: int, *, limit: int = MAX_NAME_BYTES) -> str:
    """The n-th alternative of `name`: "report (2).pdf" (n = 0 gives `name` itself)."""
    if n == 0:
        return name
    stem, ext = split_extension(name)
    return fit_name(stem, ext, f" ({n})", limit=limit)


def create_unique(directory: Path, name: str, *, mode: int = 0o600) -> tuple[Path, int]:
    """Create `name` (or the first free numbered alternative) in `directory`, exclusively.

    Returns the path and an open write-only file descriptor. `O_EXCL` makes the
    check and the creation one atomic step, and it also refuses to follow a
    symlink planted under the name. `mode` never carries execute bits.
    """
    mode &= 0o666
    flags = (
        os.O_WRONLY
        | os.O_CREAT
        | os.O_EXCL
        | getattr(os, "O_NOFOLLOW", 0)
        | getattr(os, "O_CLOEXEC", 0)
    )
    for n in range(MAX_NUMBERED):
        candidate = directory / numbered(name, n)
        try:
            fd = os.open(candidate, flags, mode)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink sits there: treat it as taken
                continue
            raise
        return candidate, fd
    raise FileExistsError(
        errno.EEXIST, f"no free name for {name!r} after {MAX_NUMBERED} tries", str(directory)
    )
