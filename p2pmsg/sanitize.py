"""Peer-controlled text, made inert before a person reads it.

Names, chat text, reasons (abort, bye, decline, cancel), file names, mDNS TXT
values and error details all come from other people's machines. Every
human-readable output (the `listen`, `peers`, `alerts` and `events` commands,
notifications, the TUI) passes such text through `printable` first, so a
peer can neither steer the terminal nor make its text look like ours:

- ESC and every other C0 control, DEL and the C1 controls are what terminals
  interpret (CSI, OSC: clear the screen, set the window title, write to the
  clipboard, hyperlinks). A bare CR returns to column 0 and overwrites what the
  line already said; VT, FF, FS..RS and NEL (U+0085) break lines.
- Bidirectional embeddings, overrides, isolates and marks reorder what the
  reader sees ("Trojan Source"); zero-width characters, the word joiner family,
  tag characters and the other format characters (Unicode category Cf) hide
  text; U+2028/U+2029 are line breaks to many viewers.
- Lone surrogates (file names decoded with surrogateescape) cannot even be
  encoded for output: printing one raises instead of showing something.

Each is replaced with a *visible* stand-in (ESC -> "␛", U+202E -> "<U+202E>")
rather than dropped, so what was hidden can be seen and nothing can be
smuggled by deletion. A newline is a stand-in too ("␊") unless the caller asks
for `multiline` text (message bodies); then `continuation` shows it in plain
terminal output so that no line of the text can pass for a line of ours.

This module is pure (no textual/rich imports) so that every layer above the
protocol can use it; the TUI's `ui/safe_text.py` builds its Rich/Textual
helpers on it.
"""

from __future__ import annotations

import re

__all__ = ["clip", "continuation", "printable"]

# Every character of Unicode categories Cc (C0, DEL, C1), Cf (format: bidi marks,
# embeddings, overrides and isolates, zero-width characters, invisible operators, tag
# characters, the BOM, prepended concatenation marks...), Zl/Zp (U+2028, U+2029) and Cs
# (lone surrogates), but LF, which each call handles. Written out (Unicode 15) because a
# table built from unicodedata at import would cost a scan of all of Unicode;
# tests/test_sanitize.py holds it to the running Python's unicodedata.
_HOSTILE = re.compile(
    "[\x00-\x09\x0b-\x1f"  # C0 controls but LF: ESC, BEL, BS, CR, VT, FF, FS..US
    "\x7f-\x9f"  # DEL and C1 controls (U+009B is CSI, U+009D OSC, U+0085 NEL)
    "\xad"  # SOFT HYPHEN (invisible)
    "\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"  # Arabic/Syriac format, ALM
    "\u180e"  # MONGOLIAN VOWEL SEPARATOR (zero width)
    "\u200b-\u200f"  # zero-width space, non-joiner, joiner; LRM, RLM
    "\u2028-\u202e"  # line/paragraph separators, bidi embeddings and overrides
    "\u2060-\u206f"  # word joiner, invisible operators, bidi isolates
    "\ud800-\udfff"  # lone surrogates
    "\ufeff"  # BOM / zero-width no-break space
    "\ufff9-\ufffb"  # interlinear annotation characters
    "\U000110bd\U000110cd"  # Kaithi number signs
    "\U00013430-\U0001343f"  # Egyptian hieroglyph format controls
    "\U0001bca0-\U0001bca3"  # shorthand format controls
    "\U0001d173-\U0001d17a"  # musical symbol beam/tie/slur/phrase formatting
    "\U000e0000-\U000e007f]"  # language tag and tag characters: invisible ASCII copies
)
_CONTROL_PICTURES = 0x2400  # U+2400..U+241F: visible symbols for the C0 controls


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code < 0x20:
        return chr(_CONTROL_PICTURES + code)  # ESC -> "␛", NUL -> "␀", CR -> "␍"
    if code == 0x7F:
        return "\u2421"  # "␡"
    return f"<U+{code:04X}>"


def printable(text: str, *, multiline: bool = False) -> str:
    """`text` with every terminal-affecting or reader-deceiving character replaced by a
    visible stand-in.

    Without `multiline` the result is one line: a newline becomes "␊" (names,
    reasons and file names are one line by definition, and a newline in them is
    how a peer forges a line of output). With `multiline`, "\\n" is kept and is
    then the only line break left in the result (CR, VT, FF, NEL, U+2028/2029
    all became stand-ins), which is what `continuation` relies on.
    """
    cleaned = _HOSTILE.sub(_visible, text)
    if not multiline:
        cleaned = cleaned.replace("\n", "\u240a")
    return cleaned


def continuation(text: str, indent: str) -> str:
    """Multi-line peer text for plain terminal output: sanitised, and every line after
    the first starts with `indent`.

    A chat text "hi\\n[12:00:00] alice: pay bob" printed as is forges a whole
    line of `listen` output; indented, the second line visibly belongs to the
    message above it, and nothing the peer sends can start at column 0. The
    indent must be non-empty, one line and itself printable (choose spaces or a
    marker no real output line starts with).
    """
    if not indent or printable(indent) != indent:
        raise ValueError("the continuation indent must be non-empty printable text")
    return printable(text, multiline=True).replace("\n", "\n" + indent)


def clip(text: str, limit: int) -> str:
    """Shorten `text` to `limit` characters with an ellipsis (for previews and lists)."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "\u2026"
