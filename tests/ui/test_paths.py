"""`/file` paths read like a shell reads them, and Tab completion that round-trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pmsg.ui import slash
from p2pmsg.ui.paths import PathError, complete, parse_path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DOCS", str(tmp_path / "docs"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("~/big50.bin", "{home}/big50.bin"),
        ("$HOME/big50.bin", "{home}/big50.bin"),
        ("${DOCS}/a.pdf", "{home}/docs/a.pdf"),
        ("'~/my file.txt'", "{home}/my file.txt"),
        ('"$DOCS/x y.txt"', "{home}/docs/x y.txt"),
        ("~/my\\ file.txt", "{home}/my file.txt"),
        ("/abs/with spaces unquoted.txt", "/abs/with spaces unquoted.txt"),
        ("  ./rel.txt  ", "./rel.txt"),
        ("it\\'s.txt", "it's.txt"),
    ],
)
def test_parse_path_reads_like_a_shell(home: Path, typed: str, expected: str) -> None:
    assert parse_path(typed) == Path(expected.format(home=home))


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("'~/open quote", 'no closing quotation in "\'~/open quote"; close the quote'),
        ("'a' 'b'", "one path at a time, got 2 words; quote a path with spaces"),
        ("", "Usage: /file PATH"),
    ],
)
def test_parse_path_says_what_is_wrong(home: Path, typed: str, message: str) -> None:
    with pytest.raises(PathError) as err:
        parse_path(typed)
    assert message in str(err.value)


def test_slash_file_expands_and_reports_through_the_command_parser(home: Path) -> None:
    assert slash.parse("/file ~/big50.bin") == slash.Slash("file", arg=f"{home}/big50.bin")
    with pytest.raises(slash.SlashError, match=r"^/file: no closing quotation"):
        slash.parse("/file 'x")


def test_complete_one_match_many_matches_and_none(home: Path) -> None:
    (home / "holiday photos").mkdir()
    (home / "holiday photos" / "beach 1.jpg").write_bytes(b"")
    (home / "report-2025.pdf").write_bytes(b"")
    (home / "report-2026.pdf").write_bytes(b"")
    (home / ".hidden").write_bytes(b"")
    assert complete("~/hol") == "~/holiday\\ photos/"
    assert complete("~/holiday\\ photos/b") == "~/holiday\\ photos/beach\\ 1.jpg"
    assert complete("'~/holiday photos/b") == "~/holiday\\ photos/beach\\ 1.jpg"  # open quote
    assert complete("rep") == "report-202"  # the common part of two matches
    assert complete("report-202") is None  # ambiguous from here: nothing to add
    assert complete("~/nothing-like-this") is None
    assert complete("~/") is None  # several entries, no common prefix
    assert complete("~/.hid") == "~/.hidden"  # dot files only when asked for
    assert complete("~/holiday photos ") is None  # a separator: a second word
    assert complete("/no/such/folder/x") is None
    for typed in ("~/hol", "'~/holiday photos/b"):  # a completion parses back to the file
        done = complete(typed)
        assert done is not None and parse_path(done).exists()


def test_file_takes_several_paths_when_quoted_or_when_each_word_exists(home: Path) -> None:
    from p2pmsg.ui.paths import parse_paths

    (home / "a.txt").write_text("a")
    (home / "photos").mkdir()
    assert parse_paths("a.txt photos") == [Path("a.txt"), Path("photos")]  # both exist
    assert parse_paths("'~/my file.txt' ~/photos") == [home / "my file.txt", home / "photos"]
    # the forgiving reading stays: one unquoted path with spaces
    assert parse_paths("/abs/with spaces unquoted.txt") == [Path("/abs/with spaces unquoted.txt")]
    assert parse_paths("~/photos") == [home / "photos"]
    parsed = slash.parse("/file 'a.txt' photos")
    assert parsed == slash.Slash("file", arg="a.txt", paths=("a.txt", "photos"))
    assert slash.parse("/file ~/photos") == slash.Slash("file", arg=f"{home}/photos")
    with pytest.raises(slash.SlashError, match="Usage: /file PATH"):
        slash.parse("/file ''")
