"""File paths typed in the composer, read the way a shell reads them.

`/file ~/My Documents/x.pdf` should not need a manual: words are split and
unquoted by `shlex` (quotes and backslash escapes as in sh), then `~` at the
start and `$VAR` / `${VAR}` are expanded. Two differences from sh: expansion
also happens inside quotes (shlex does not say what was quoted), and a path
with unquoted spaces and no quotes at all is taken whole, since /file takes
exactly one path (`parse_paths`, for `/file PATH...`, reads several when they are
quoted or escaped, or when every unquoted word is an existing path).
`complete` does Tab completion on a partly typed path and writes the result back
escaped, so that parsing it again gives the same path.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

#: Characters that a completed word escapes with a backslash (sh would read them).
_SPECIAL = frozenset(" \t'\"\\$`!*?[](){}&;|<>#")
#: Most directory entries read for one Tab: a huge folder must not freeze the app.
MAX_ENTRIES = 5000


class PathError(ValueError):
    """The text is not one path; the message says what to type instead."""


def parse_path(text: str) -> Path:
    """One path from what the user typed, `~` and variables expanded (not resolved)."""
    try:
        words = shlex.split(text)
    except ValueError as exc:  # "No closing quotation", "No escaped character"
        raise PathError(
            f"{str(exc).lower()} in {text!r}; close the quote, e.g. /file 'my file.txt'"
        ) from None
    if not words:
        raise PathError("Usage: /file PATH (the file to offer)")
    if len(words) > 1 and not any(ch in text for ch in "'\"\\"):
        # /file takes one path, so unquoted spaces can only be part of it (the
        # forgiving reading of `/file ~/My Documents/a.pdf`).
        return Path(_expand(text.strip()))
    if len(words) > 1:
        raise PathError(
            f"one path at a time, got {len(words)} words; quote a path with spaces "
            "(/file 'my file.txt') or escape them (/file my\\ file.txt)"
        )
    return Path(_expand(words[0]))


def parse_paths(text: str) -> list[Path]:
    """One or more paths for `/file PATH...` (several, or a folder: one folder offer).

    Quoted or escaped words are separate paths. Unquoted spaces keep `parse_path`'s
    forgiving reading (one path with spaces) unless that path does not exist and
    every word does: `/file a.txt b.txt` is two files, `/file ~/My Documents/a.pdf`
    one file."""
    try:
        words = [word for word in shlex.split(text) if word]
    except ValueError as exc:
        raise PathError(
            f"{str(exc).lower()} in {text!r}; close the quote, e.g. /file 'my file.txt'"
        ) from None
    if not words:
        raise PathError("Usage: /file PATH... (files or folders to offer)")
    separate = [Path(_expand(word)) for word in words]
    if len(words) > 1 and not any(ch in text for ch in "'\"\\"):
        whole = Path(_expand(text.strip()))
        if whole.exists() or not all(p.exists() for p in separate):
            return [whole]
    return separate


def _expand(word: str) -> str:
    return os.path.expandvars(os.path.expanduser(word))


def _escape(word: str) -> str:
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in word)


def complete(text: str) -> str | None:
    """`text` (a partly typed path, as typed) completed as far as it is unambiguous:
    the one match, with "/" after a folder; else the matches' common prefix. None
    when there is nothing to add (no match, or only the ambiguous part is left)."""
    word = _one_word(text)
    if word is None:
        return None
    head, _, stem = word.rpartition("/")
    typed_dir = f"{head}/" if "/" in word else ""
    folder = Path(_expand(typed_dir) if typed_dir else ".")
    matches: list[tuple[str, bool]] = []
    try:
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_ENTRIES:
                    break
                if entry.name.startswith(stem) and (stem.startswith(".") or entry.name[0] != "."):
                    matches.append((entry.name, _is_dir(entry)))
    except OSError:
        return None
    if not matches:
        return None
    if len(matches) == 1:
        name, is_dir = matches[0]
        return _escape(typed_dir + name) + ("/" if is_dir else "")
    common = os.path.commonprefix([name for name, _ in matches])  # noqa: RUF071 (names, by character)
    if len(common) <= len(stem):
        return None
    return _escape(typed_dir + common)


def _one_word(text: str) -> str | None:
    """The single word in `text`, also when its quote is still open (mid-typing)."""
    if text[-1:].isspace() and not text.endswith(("\\ ", "\\\t")):
        return None  # a separator typed after the word: a second word starts here
    for attempt in (text, text + "'", text + '"'):
        try:
            words = shlex.split(attempt)
        except ValueError:
            continue
        if len(words) <= 1:
            return words[0] if words else ""
        return None
    return None


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False
