"""Display names: the one rule for what a name may contain, and how people read names.

A display name is what a peer *claims* to be called (handshake payload, mDNS
TXT record) or what the user calls a contact (a petname). It is a label,
never an identity: a peer is its key's fingerprint. Two things about names
still matter for security, and both live here so every path applies them
alike:

* **What a name may contain** (`name_problem`): the same rule for the
  handshake, mDNS adverts, our own profile name and petnames. Control and
  format characters (C0, C1, bidi overrides and isolates, zero-width
  characters), line and paragraph separators, and leading or trailing
  whitespace are *refused*, not stripped: a name that can repaint a terminal,
  hide characters or differ from another only in invisible padding is an
  attack, and a silently cleaned copy would hide that.
* **When two names read alike** (`name_key`, `confusable_key`): names are
  compared the way people read them. `name_key` is NFKC, case-folded, with
  whitespace collapsed: "Alice", "alice" and full-width "ALICE" are one name.
  `confusable_key` additionally folds look-alike characters to one prototype
  per Unicode UTS #39 confusable class ("alice" with a Cyrillic U+0430 for the a, "AIice"
  with a capital I, "a1ice", "rnallory" for "mallory" all fold together).
  The confusable data is Unicode's confusables.txt as shipped by the
  maintained `confusable_homoglyphs` package; see `_confusable_table`.

Pure functions, no I/O beyond reading that package's data file once.
"""

from __future__ import annotations

import functools
import json
import string
import unicodedata
from importlib import resources

MAX_NAME_CHARS = 64
MAX_NAME_BYTES = 128  # the wire limit of the handshake payload's name (protocol/limits.py)

# Unicode categories refused anywhere in a name: every C* (controls, format
# characters such as bidi overrides and zero-width joiners, surrogates, private
# use, unassigned) and the line/paragraph separators U+2028/U+2029.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Directional marks that confusables.txt puts around right-to-left samples.
_DATA_MARKS = str.maketrans("", "", "\u200e\u200f")


def name_problem(name: object) -> str | None:
    """Why `name` is not an acceptable display name, or None if it is.

    The reason is a short English phrase fit to show a user ("has leading or
    trailing whitespace"); callers wrap it in their own error type.
    """
    if type(name) is not str:
        return "is not text"
    if not name:
        return "is empty"
    if len(name) > MAX_NAME_CHARS or len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_CHARS} characters or {MAX_NAME_BYTES} bytes"
    if name != name.strip() or name[0].isspace() or name[-1].isspace():
        return "has leading or trailing whitespace"
    for char in name:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return f"contains the control or format character U+{ord(char):04X}"
    return None


def name_key(name: str) -> str:
    """How a person reads `name` as a word: NFKC, case-folded, whitespace collapsed.

    Two names with the same key are the same name to a reader; lookups by name
    (`--to`, petnames) compare keys, never raw strings.
    """
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def confusable_key(name: str) -> str:
    """`name_key`, with every character folded to its confusable prototype.

    Two names with the same confusable key *look* alike, even when their
    characters differ ("paypal" spelt with Cyrillic letters, "b0b", "AIice"). This is
    what a new key's claimed name is checked against, for every contact.
    """
    table = _confusable_table()
    # Fold before *and* after case-folding: "BOB" in Greek capitals reads as "BOB",
    # but its case-folded Greek beta-omicron-beta no longer looks like "bob";
    # "AIice" (capital i) needs the fold after.
    shaped = "".join(table.get(char, char) for char in unicodedata.normalize("NFKC", name))
    folded = "".join(table.get(char, char) for char in shaped.casefold())
    return " ".join(folded.split())


def names_clash(a: str, b: str) -> bool:
    """True if a reader could take one name for the other."""
    return bool(a) and bool(b) and confusable_key(a) == confusable_key(b)


@functools.cache
def _confusable_table() -> dict[str, str]:
    """Character -> prototype string, built once from Unicode's confusables data.

    `confusable_homoglyphs` ships confusables.txt as a symmetric map (each
    character with every character it can be mistaken for), so the direction
    to UTS #39's prototype is gone. We rebuild the classes instead: characters
    linked by the data, and characters that differ only by case (we compare
    case-folded names, so "I" and "l" must land together with "i"), form one
    class (union-find), and the class maps to one prototype: its smallest
    ASCII member if it has one (Latin names stay readable), else the shortest
    ASCII sequence the data gives for a member (Cyrillic U+042B -> "bl"), else its
    smallest member. The one ASCII letter UTS #39 maps to a sequence, "m" ->
    "rn", is kept, so "rnallory" reads as "mallory".
    """
    data_file = resources.files("confusable_homoglyphs").joinpath("confusables.json")
    data: dict[str, list[dict[str, str]]] = json.loads(data_file.read_text("utf-8"))
    parent: dict[str, str] = {}

    def find(char: str) -> str:
        root = parent.setdefault(char, char)
        while root != parent[root]:
            parent[root] = parent[parent[root]]
            root = parent[root]
        return root

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    sequences: dict[str, list[str]] = {}  # char -> ASCII multi-character look-alikes
    for key, homoglyphs in data.items():
        source = key.translate(_DATA_MARKS)
        if len(source) != 1:
            continue
        for entry in homoglyphs:
            target = entry["c"].translate(_DATA_MARKS)
            if len(target) == 1:
                union(source, target)
            elif target.isascii() and target.isalnum():
                sequences.setdefault(source, []).append(target.casefold())
    for upper in string.ascii_uppercase:
        union(upper, upper.lower())
    members: dict[str, list[str]] = {}
    for char in list(parent):
        members.setdefault(find(char), []).append(char)
    table: dict[str, str] = {}
    for group in members.values():
        ascii_members = sorted((c for c in group if c.isascii()), key=_prototype_rank)
        spelled = sorted(
            (s for c in group for s in sequences.get(c, ())), key=lambda s: (len(s), s)
        )
        if ascii_members:
            prototype = ascii_members[0]
        elif spelled:
            prototype = spelled[0]
        else:
            prototype = min(group)
        for char in group:
            table[char] = prototype
    for char, spelled in sequences.items():  # "m" -> "rn", as UTS #39 has it
        if char.isascii():
            table[char] = min(spelled, key=lambda s: (len(s), s))
    return table


def _prototype_rank(char: str) -> tuple[int, str]:
    """Lower-case letters first, then digits, then the rest: names are compared
    case-folded, so a class's prototype should be what a folded name contains."""
    return (0 if char.islower() else 1 if char.isdigit() else 2, char)
