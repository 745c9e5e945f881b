"""safe_name: any offered name becomes one harmless base name; create_unique never clobbers."""

from __future__ import annotations

import os
import stat
import threading
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pmsg.node.transfers.safe_name import (
    MAX_NAME_BYTES,
    create_unique,
    extension_allowed,
    numbered,
    safe_name,
)


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../x", "x"),
        ("/etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\evil.dll", "evil.dll"),
        ("C:evil.exe", "C_evil.exe"),
        ("a\x1b[31mb", "ab"),
        ("a\x1b]0;pwned\x07b.txt", "ab.txt"),
        ("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\.txt", "alink.txt"),
        ("a\x9b2Jb", "ab"),
        ("x\x1bcy", "xy"),
        ("a\nb", "a_b"),
        ("a\r\n\r\nb.txt", "a_b.txt"),
        ("tab\there", "tab_here"),
        ("nul\x00byte", "nul_byte"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("a\u2066b\u2069c\u200bd", "abcd"),
        ("con", "_con"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("Com1.tar.gz", "_Com1.tar.gz"),
        ("lpt9", "_lpt9"),
        ("console.log", "console.log"),
        (".bashrc", "bashrc"),
        ("-rf", "rf"),
        ("--help.txt", "help.txt"),
        ("trailing. . .", "trailing"),
        ("..", "file"),
        (".", "file"),
        ("", "file"),
        ("\x1b[0m", "file"),
        ("\u202e", "file"),
        ('a<b>c:d|e?f*g"h', "a_b_c_d_e_f_g_h"),
        ("caf\u0065\u0301.txt", "caf\u00e9.txt"),
    ],
)
def test_hostile_and_ordinary_names(offered: str, expected: str) -> None:
    assert safe_name(offered) == expected


def test_long_names_are_cut_on_a_character_boundary_keeping_the_extension() -> None:
    name = safe_name("x" * 300 + ".pdf")
    assert name.endswith(".pdf") and len(name.encode()) == MAX_NAME_BYTES
    accented = safe_name("\u00e9" * 300 + ".txt")
    assert accented.endswith(".txt") and len(accented.encode()) <= MAX_NAME_BYTES
    assert accented.encode().decode() == accented  # no broken UTF-8 sequence
    assert safe_name("a." + "b" * 400).encode().__len__() <= MAX_NAME_BYTES


def test_numbered_alternatives_keep_extension_and_limit() -> None:
    assert numbered("report.pdf", 0) == "report.pdf"
    assert numbered("report.pdf", 2) == "report (2).pdf"
    assert numbered("archive.tar.gz", 1) == "archive (1).tar.gz"
    assert numbered("README", 3) == "README (3)"
    long = numbered(safe_name("y" * 300 + ".bin"), 1234)
    assert long.endswith(" (1234).bin") and len(long.encode()) <= MAX_NAME_BYTES


def test_extension_allow_list() -> None:
    assert extension_allowed("x.exe", None)
    assert extension_allowed("notes.TXT", ["txt", ".md"])
    assert extension_allowed("notes.md", {".MD"})
    assert not extension_allowed("notes.exe", ["txt"])
    assert not extension_allowed("txt", ["txt"])  # no extension at all


_names = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)


@settings(max_examples=300, deadline=None)
@given(_names)
def test_any_string_gives_one_safe_component(offered: str) -> None:
    name = safe_name(offered)
    assert name and len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert name not in (".", "..") and not name.startswith((".", "-"))
    assert not name.endswith((".", " "))
    for ch in name:
        assert unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp", "Cs"), repr(name)
    assert safe_name(name) == name  # idempotent: a stored safe name stays the same


def test_create_unique_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("precious")
    path, fd = create_unique(tmp_path, "a.txt")
    os.close(fd)
    assert path.name == "a (1).txt"
    assert (tmp_path / "a.txt").read_text() == "precious"
    assert stat.S_IMODE(path.stat().st_mode) & 0o111 == 0


def test_create_unique_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep")
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "x").symlink_to(target)
    path, fd = create_unique(tmp_path / "dl", "x", mode=0o777)
    os.close(fd)
    assert path.name == "x (1)" and target.read_text() == "keep"
    assert stat.S_IMODE(path.stat().st_mode) & 0o111 == 0


def test_concurrent_claims_get_distinct_names(tmp_path: Path) -> None:
    results: list[Path] = []
    lock = threading.Lock()

    def claim() -> None:
        path, fd = create_unique(tmp_path, "same.bin")
        os.close(fd)
        with lock:
            results.append(path)

    threads = [threading.Thread(target=claim) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({p.name for p in results}) == 16
