"""Global options work before or after the command (the sub-parser must not reset them)."""

from __future__ import annotations

import pytest

from p2pmsg.cli import COMMAND_MODULES, build_parser

COMMANDS = [name.replace("_", "-") for name in COMMAND_MODULES]

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


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_help_page_prints_and_names_the_global_options(
    command: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    # The sub-parsers' copies of the global options have no defaults (SUPPRESS):
    # a "%(default)s" in their help once made every `p2pmsg COMMAND --help` crash.
    argv = ["--help"] if command is None else [command, "--help"]
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--profile NAME" in text and "(default: default)" in text
