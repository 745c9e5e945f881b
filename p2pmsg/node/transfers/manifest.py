"""The relative paths of a folder offer, judged as hostile input (pure: no disk).

A `bundle_offer` lists files as (relative path, size). The protocol layer has
only checked their shape (a str without controls, within the length limit).
Here the whole manifest is judged at once, because some dangers exist only
between entries (two names that are one file on a case-insensitive disk).

Refused (the whole offer, with the reason; `ManifestError`):
- an absolute path (`/etc/x`), a drive or UNC form (`C:x`, `\\\\host\\x`), a
  backslash anywhere (a separator on Windows: `a\\..\\..\\x`);
- an empty component (`a//b`, a trailing `/`), `.` or `..`, or a component that
  *becomes* `.`/`..`/a separator once normalised (NFKC folds the fullwidth
  `\uff0e\uff0e` to `..`; invisible format characters vanish);
- more than `MAX_BUNDLE_DEPTH` components, a path over `MAX_BUNDLE_PATH_BYTES`;
- more than `MAX_BUNDLE_ENTRIES` files or `MAX_BUNDLE_MANIFEST_BYTES` of paths;
- two entries that are the same file once made safe, compared case-folded and
  NFC-normalised (`A.txt` / `a.txt`; `é` precomposed / decomposed), or a path that
  is a file and a folder at once (`a` and `a/b`);
- sizes that do not add up to the offer's total.

Neutralised (each component through `safe_name`, as a single file's name is):
terminal escapes and format characters dropped, Windows device names (`CON`,
`nul.txt`, `COM1`) prefixed with `_` on every platform, forbidden characters
replaced, leading dots and dashes dropped, long names cut.

The result is a tuple of safe components per file, joined later under a fresh
folder with `O_NOFOLLOW` at every step (folder.py): nothing here can name a
place outside it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from p2pmsg.errors import TransferRejectedError
from p2pmsg.node.transfers.safe_name import safe_name
from p2pmsg.protocol.limits import (
    MAX_BUNDLE_DEPTH,
    MAX_BUNDLE_ENTRIES,
    MAX_BUNDLE_MANIFEST_BYTES,
    MAX_BUNDLE_PATH_BYTES,
)

SafePath = tuple[str, ...]


class ManifestError(TransferRejectedError):
    """The manifest is refused as a whole; the message says which entry and why."""


def _shown(path: str) -> str:
    """A path for an error message: short, and never with controls (made safe later too)."""
    text = "".join(ch if ch.isprintable() else "?" for ch in path)
    return text if len(text) <= 80 else text[:77] + "..."


def _escapes_when_normalised(component: str) -> bool:
    folded = unicodedata.normalize("NFKC", component)
    folded = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    return folded.strip() in (".", "..") or "/" in folded or "\\" in folded


def check_path(path: str) -> SafePath:
    """One relative path into safe components, or `ManifestError`."""
    if len(path.encode("utf-8", "surrogatepass")) > MAX_BUNDLE_PATH_BYTES:
        raise ManifestError(f"a path is longer than {MAX_BUNDLE_PATH_BYTES} bytes")
    if "\\" in path:
        raise ManifestError(f"a path holds a backslash: {_shown(path)}")
    if path.startswith("/"):
        raise ManifestError(f"an absolute path: {_shown(path)}")
    parts = path.split("/")
    if len(parts) > MAX_BUNDLE_DEPTH:
        raise ManifestError(f"a path is nested deeper than {MAX_BUNDLE_DEPTH} levels")
    if len(parts[0]) >= 2 and parts[0][1] == ":":
        raise ManifestError(f"a drive-letter path: {_shown(path)}")
    safe: list[str] = []
    for part in parts:
        if part in ("", ".", ".."):
            raise ManifestError(f"a path with an empty, '.' or '..' component: {_shown(path)}")
        if _escapes_when_normalised(part):
            raise ManifestError(f"a path that escapes once normalised: {_shown(path)}")
        safe.append(safe_name(part))
    return tuple(safe)


def _key(parts: SafePath) -> tuple[str, ...]:
    """What two paths must not share: one file on a case-insensitive or normalising disk."""
    return tuple(unicodedata.normalize("NFC", p).casefold() for p in parts)


def check_manifest(entries: Sequence[tuple[str, int]], total_size: int) -> list[SafePath]:
    """Every entry's safe components, in order, or `ManifestError` for the whole offer."""
    if not entries:
        raise ManifestError("the offer lists no files")
    if len(entries) > MAX_BUNDLE_ENTRIES:
        raise ManifestError(f"the offer lists more than {MAX_BUNDLE_ENTRIES} files")
    manifest_bytes = sum(len(p.encode("utf-8", "surrogatepass")) for p, _ in entries)
    if manifest_bytes > MAX_BUNDLE_MANIFEST_BYTES:
        raise ManifestError(f"the offer's paths exceed {MAX_BUNDLE_MANIFEST_BYTES} bytes")
    if sum(size for _, size in entries) != total_size:
        raise ManifestError("the offer's file sizes do not add up to its total")
    safe = [check_path(path) for path, _ in entries]
    files: dict[tuple[str, ...], str] = {}
    folders: set[tuple[str, ...]] = set()
    for (path, _), parts in zip(entries, safe, strict=True):
        key = _key(parts)
        if key in files:
            raise ManifestError(
                f"two entries are the same file once made safe: {_shown(files[key])} "
                f"and {_shown(path)}"
            )
        files[key] = path
        folders.update(key[:n] for n in range(1, len(key)))
    clash = folders & files.keys()
    if clash:
        raise ManifestError(f"a path is both a file and a folder: {_shown(files[min(clash)])}")
    return safe
