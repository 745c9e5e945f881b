"""Global options work before or after the command (the sub-parser must not reset them)."""

from __future__ import annotations

import pytest

from p2pmsg.cli import build_parser

OPTIONS = [
    (["--profile", "work"], "profile", "work"),
    (["--data-dir", "/srv/p2"], "data_dir", "/srv/p2"),
    (["--password-file", "/srv/pw"], "password_file", "/srv/pw"),
    (["--port", "47123"], "port", 47123),
    (["--interface", "127.0.0.1"], "interface", ["127.0.0.1"]),
]


@pytest.mark.parametrize(("option", "attr", "value"), OPTIONS, ids=[o[1] for o in OPTIONS])
@pytest.mark.parametrize("where", ["before", "after"])
def test_a_global_option_counts_before_or_after_the_command(
    option: list[str], attr: str, value: object, where: str
) -> None:
    argv = [*option, "listen"] if where == "before" else ["listen", *option]
    assert getattr(build_parser().parse_args(argv), attr) == value


def test_defaults_hold_and_the_later_of_two_wins() -> None:
    args = build_parser().parse_args(["id"])
    assert (args.profile, args.data_dir, args.port, args.interface) == ("default", None, 0, [])
    args = build_parser().parse_args(["--port", "4", "listen", "--port", "5"])
    assert args.port == 5
