"""Pure helpers of the UI: slash parsing, durations, settings, grouping, buckets."""

from __future__ import annotations

import math

import pytest

from p2pmsg.ui import slash
from p2pmsg.ui.profile_launcher import POLICY_RULES, ProfileLauncher
from p2pmsg.ui.screens.dashboard import bucket_counts
from p2pmsg.ui.screens.settings import parse_settings
from p2pmsg.ui.screens.verify import group_fingerprint, group_safety_number
from p2pmsg.ui.timefmt import ago, duration, format_bytes, parse_duration


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/file /home/me/a b.txt", slash.Slash("file", arg="/home/me/a b.txt")),
        ("/cipher aes-256-gcm", slash.Slash("cipher", arg="aes-256-gcm")),
        ("/ttl 1h30m", slash.Slash("ttl", arg="1h30m", ttl=5400.0)),
        ("/ttl off", slash.Slash("ttl", arg="off", ttl=math.inf)),
        ("/ttl default", slash.Slash("ttl", arg="default", ttl=None)),
        (
            "/add 10.0.0.5:47000",
            slash.Slash("add", arg="10.0.0.5:47000", host="10.0.0.5", port=47000),
        ),
        ("/add [fe80::1]:9", slash.Slash("add", arg="[fe80::1]:9", host="fe80::1", port=9)),
        ("/ROTATE", slash.Slash("rotate")),
        ("/verify", slash.Slash("verify")),
    ],
)
def test_slash_parse(line: str, expected: slash.Slash) -> None:
    assert slash.parse(line) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/qq", "Unknown command /qq. Type /help"),
        ("/", "Unknown command /."),
        ("/file", "Usage: /file PATH"),
        ("/cipher des", "Usage: /cipher NAME, one of: aes-256-gcm, chacha20-poly1305"),
        ("/ttl", "Usage: /ttl DURATION|off|default"),
        ("/ttl 5 parsecs", "/ttl: not a duration"),
        ("/ttl 0s", "/ttl: a duration must be positive"),
        ("/add host", "Usage: /add HOST:PORT"),
        ("/add host:0", "/add: port 0 is out of range"),
        ("/add host:70000", "/add: port 70000 is out of range"),
        ("/rotate now", "/rotate takes no arguments"),
    ],
)
def test_slash_errors_say_what_to_type(line: str, message: str) -> None:
    with pytest.raises(slash.SlashError) as err:
        slash.parse(line)
    assert message in str(err.value)


def test_double_slash_escapes() -> None:
    assert not slash.is_slash("//etc is a path")
    assert slash.unescape("//etc is a path") == "/etc is a path"
    assert slash.unescape("hello") == "hello"


def test_durations() -> None:
    assert [duration(s) for s in (0, 59, 60, 61, 3600, 3725, 86400, 90000)] == [
        "0s",
        "59s",
        "1m",
        "1m 01s",
        "1h",
        "1h 02m",
        "1d",
        "1d 01h",
    ]
    assert [ago(s) for s in (1, 30, 600, 7200, 200000)] == ["now", "30s", "10m", "2h", "2d"]
    assert parse_duration("90") == 90.0
    assert parse_duration("1h 30m") == 5400.0
    assert parse_duration("2w") == 1209600.0
    for bad in ("", "m5", "5x", "0s", "1.2.3s"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert format_bytes(512) == "512 B"
    assert format_bytes(2_500_000) == "2.4 MiB"


def test_settings_parsing() -> None:
    raw = {
        "key_rotation_interval": "30m",
        "max_messages_per_key": "250",
        "downloads_dir": "~/Downloads",
        "default_disappearing_ttl": "off",
    }
    values, errors = parse_settings(raw, "aes-256-gcm")
    assert errors == []
    assert values == {
        "key_rotation_interval": 1800.0,
        "max_messages_per_key": 250,
        "preferred_suite": "aes-256-gcm",
        "downloads_dir": "~/Downloads",
        "default_disappearing_ttl": None,
    }
    bad = {
        "key_rotation_interval": "5s",
        "max_messages_per_key": "-1",
        "downloads_dir": " ",
        "default_disappearing_ttl": "soon",
    }
    values, errors = parse_settings(bad, None)
    assert len(errors) == 3
    assert values["downloads_dir"] is None


def test_safety_number_and_fingerprint_grouping() -> None:
    number = "".join(str(i % 10) for i in range(60))
    rows = group_safety_number(number)
    assert rows == ["01234 56789 01234 56789", "01234 56789 01234 56789", "01234 56789 01234 56789"]
    assert group_safety_number("01234 56789 " * 6) == rows
    fp = "ab" * 32
    assert group_fingerprint(fp) == "abab " * 7 + "abab\n" + "abab " * 7 + "abab"


def test_bucket_counts_spread_over_time() -> None:
    now = 10_000.0
    labels, counts = bucket_counts(
        [(now - 10, "flood"), (now - 3000, "flood"), (now - 3500, "replay")], now
    )
    assert len(labels) == 6 and labels[0] == "-1h"
    assert sum(counts["flood"]) == 2 and counts["flood"][-1] == 1
    assert counts["replay"][0] == 1
    assert bucket_counts([], now) == ([], {})


def test_profile_launcher_lists_every_policy_rule(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from p2pmsg.profile import Profile

    launcher = ProfileLauncher(Profile(tmp_path, "t"))
    rules = launcher.password_rules("", "alice")
    assert [r.text for r in rules] == list(POLICY_RULES) and len(POLICY_RULES) >= 5
    strong = launcher.password_rules("Tr0ub4dor&3-horse-Staple!", "alice")
    assert all(rule.met for rule in strong)
    named = {r.text: r.met for r in launcher.password_rules("Alice#2025xyz!", "alice")}
    assert named[POLICY_RULES[-1]] is False
    assert launcher.strength_hint("a") == "weak"
    assert not launcher.profile_exists()


def test_a_completed_card_says_which_way_the_file_went() -> None:
    from rich.style import Style

    from p2pmsg.node.api import TransferView
    from p2pmsg.ui.widgets.transfer_card import card_rows

    def rows(direction: str, path: str) -> str:
        transfer = TransferView(
            id="ab" * 16,
            peer="cd" * 32,
            direction=direction,  # type: ignore[arg-type]
            name="big50.bin",
            size=10,
            sha256="ef" * 32,
            state="completed",
            bytes_done=10,
            path=path,
        )
        return "\n".join(t.plain for t in card_rows(transfer, 80, lambda _: Style()))

    sent = rows("out", "/home/alice/big50.bin")
    assert "✓ sent and verified by the receiver · from /home/alice/big50.bin" in sent
    assert "→" not in sent  # it read like a destination
    got = rows("in", "/home/bob/Downloads/big50.bin")
    assert "✓ received and verified · saved as /home/bob/Downloads/big50.bin" in got


def test_a_folder_card_shows_its_files_and_their_progress() -> None:
    from rich.style import Style

    from p2pmsg.node.api import TransferView
    from p2pmsg.ui.widgets.transfer_card import card_rows

    def rows(**fields: object) -> str:
        base = {
            "id": "ab" * 16,
            "peer": "cd" * 32,
            "direction": "in",
            "name": "photos",
            "size": 3 * 1024 * 1024,
            "sha256": "",
            "state": "offered",
            "bytes_done": 0,
            "files": 40,
        }
        transfer = TransferView(**{**base, **fields})  # type: ignore[arg-type]
        return "\n".join(t.plain for t in card_rows(transfer, 80, lambda _: Style()))

    offered = rows()
    assert "┌ ⇣ incoming folder  photos  40 files · 3.0 MiB" in offered  # before accepting
    assert "Accept (a)" in offered
    moving = rows(state="transferring", bytes_done=1024 * 1024, files_done=12)
    assert "12/40 files" in moving and " 33%" in moving
    done = rows(state="completed", files_done=40, path="/dl/photos (1)")
    assert "✓ received and verified · saved in /dl/photos (1)" in done
    failed = rows(state="failed", files_done=3, error="x.jpg: disk full")
    assert "✗ failed (3/40 files arrived): x.jpg: disk full" in failed


def test_profile_launcher_claims_the_profile_before_the_password(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from p2pmsg.errors import ProfileLockedError
    from p2pmsg.profile import Profile

    password = "Tr0ub4dor&3-horse-Staple!"  # noqa: S105 - a scratch profile
    Profile(tmp_path, "t", kdf_iterations=20_000).create("alice", password).close()
    other = Profile(tmp_path, "t").acquire_lock("p2pmsg listen")
    launcher = ProfileLauncher(Profile(tmp_path, "t"), command="p2pmsg")
    with pytest.raises(ProfileLockedError, match=r"in use by process \d+ \(p2pmsg listen\)"):
        launcher.claim()
    other.release()
    launcher.claim()  # held from here: a `listen` started now is the one refused
    with pytest.raises(ProfileLockedError):
        Profile(tmp_path, "t").acquire_lock("p2pmsg listen")
    unlocked = launcher.unlock(password)
    assert unlocked.display_name == "alice"
    launcher.close()
    Profile(tmp_path, "t").acquire_lock("p2pmsg listen").release()  # released on close


def test_a_long_card_or_note_line_wraps_inside_its_card() -> None:
    """At 80x24 a card's path wrapped to column 0, outside the card's "│" border."""
    from rich.console import Console
    from rich.style import Style
    from rich.text import Text

    from p2pmsg.ui.widgets.message_log import _wrap

    console = Console(width=40)
    line = "│ ✓ sent and verified by the receiver · from /home/alice/holiday/pictures/2026.tar"
    strips = _wrap(console, Text(line), 40, Style(), Text("│   "))
    texts = [s.text.rstrip() for s in strips]
    assert len(texts) >= 3 and texts[0].startswith("│ ✓ sent")
    assert all(t.startswith("│   ") for t in texts[1:]), texts
    assert all(s.cell_length == 40 for s in strips)
    rejoined = texts[0] + "".join(t[len("│   ") :] for t in texts[1:])
    assert rejoined.replace(" ", "") == line.replace(" ", "")  # nothing lost or doubled
    # Without a hang (messages have their own layout) lines wrap as before.
    assert [s.text.rstrip() for s in _wrap(console, Text(line), 40, Style())][1][0] != "│"
