"""docs/PROTOCOL.md "Groups" states the numbers the code enforces."""

from __future__ import annotations

import re
from pathlib import Path

from p2pmsg.protocol.groups import limits
from p2pmsg.protocol.groups.items import (
    GROUP_ID_DOMAIN,
    OP_DOMAIN,
    POST_DOMAIN,
    SALT_SIZE,
    TEXT_DOMAIN,
    TEXT_HASH_SIZE,
    text_hash,
)
from p2pmsg.protocol.groups.wire import GROUP_OP, GROUP_POST, GROUP_SUMMARY

DOC = Path(__file__).resolve().parents[3] / "docs" / "PROTOCOL.md"


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index("\n## Groups\n") :]


def _row(label: str) -> str:
    match = re.search(rf"^\| {re.escape(label)}\s*\|\s*(.+?)\s*\|$", _section(), re.MULTILINE)
    assert match, f"no limits row {label!r}"
    return match.group(1)


def test_limits_table_matches_the_code() -> None:
    assert _row("members at once / keys over a group's life") == (
        f"{limits.MAX_GROUP_MEMBERS} / {limits.MAX_AUTHORS}"
    )
    assert _row("operations per author / per group") == (
        f"{limits.MAX_OPS_PER_AUTHOR} / {limits.MAX_GROUP_OPS}"
    )
    assert _row("body") == f"{limits.MAX_BODY_BYTES} bytes"
    assert _row("group and member names") == f"1..{limits.MAX_GROUP_NAME_BYTES} UTF-8 bytes"
    assert limits.MAX_MEMBER_NAME_BYTES == limits.MAX_GROUP_NAME_BYTES
    assert _row("post text / ttl") == (
        f"{limits.MAX_TEXT_BYTES} bytes / {limits.MAX_TTL_SECONDS // 86400} days"
    )
    assert _row("items waiting for a gap: per author / group") == (
        f"{limits.MAX_PENDING_PER_AUTHOR} / {limits.MAX_PENDING}"
    )
    assert _row("gap timeout") == f"{limits.GAP_TIMEOUT:.0f} s"
    assert _row("unseen posts held per author") == str(limits.MAX_UNSEEN_PER_AUTHOR)
    assert _row("items per anti-entropy answer") == str(limits.MAX_SYNC_ITEMS)
    assert limits.MAX_SEQ == 2**32 - 1 and "1..2^32-1" in _row("seq, Lamport time")
    assert _row("post salt / text hash") == f"{SALT_SIZE} / {TEXT_HASH_SIZE} bytes"


def test_labels_and_types_match_the_code() -> None:
    section = _section()
    for domain in (OP_DOMAIN, POST_DOMAIN, GROUP_ID_DOMAIN, TEXT_DOMAIN):
        assert f'"{domain[:-1].decode()}"' in section
    for number, name in ((GROUP_OP, "group_op"), (GROUP_POST, "group_post")):
        assert re.search(rf"^\| {number}\s+\| {name}\s+\|", section, re.MULTILINE)
    assert re.search(rf"^\| {GROUP_SUMMARY}\s+\| group_summary\s+\|", section, re.MULTILINE)


def test_the_text_hash_vector_in_the_doc_is_the_codes() -> None:
    """The documented `text_hash` example is what the code computes (another
    implementation can check its hash against it)."""
    section = " ".join(_section().split())
    salt = bytes(range(16))
    assert f"salt `{salt.hex()}`, text `ok` gives `{text_hash(salt, 'ok').hex()}`" in section
