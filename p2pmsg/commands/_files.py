"""Receive-side file options shared by `listen` (and any command that runs a node headless).

`--downloads DIR` says where received files land, `--accept-files` accepts
every offer the limits allow without asking (there is nobody to ask in a
headless node), `--max-file-size` and `--allow-ext` are those limits.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from p2pmsg.errors import ConfigError
from p2pmsg.node.transfers.receiver import DEFAULT_MAX_SIZE
from p2pmsg.node.transfers.settings import TransferSettings

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """'4G', '500M', '1024', '1.5g' (binary units) -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if match is None:
        raise ConfigError(f"not a size: {text!r} (use e.g. 500M or 4G)")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def add_receive_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--downloads", metavar="DIR", help="folder for received files (needed to accept any)"
    )
    parser.add_argument(
        "--accept-files",
        action="store_true",
        help="accept file offers automatically (within the limits)",
    )
    parser.add_argument(
        "--max-file-size",
        default=None,
        metavar="SIZE",
        help="largest file to accept, e.g. 500M (default: 4G)",
    )
    parser.add_argument(
        "--allow-ext",
        action="append",
        metavar="EXT",
        default=None,
        help="accept only these extensions (repeatable), e.g. --allow-ext txt",
    )


def receive_settings(args: argparse.Namespace) -> TransferSettings:
    downloads = getattr(args, "downloads", None)
    accept = bool(getattr(args, "accept_files", False))
    if accept and not downloads:
        raise ConfigError("--accept-files needs --downloads DIR (where the files go)")
    size_text = getattr(args, "max_file_size", None)
    max_size = DEFAULT_MAX_SIZE if size_text is None else parse_size(size_text)
    allowed = getattr(args, "allow_ext", None)
    return TransferSettings(
        downloads=Path(downloads).expanduser().resolve() if downloads else None,
        accept_files=accept,
        max_file_size=max_size,
        allowed_extensions=frozenset(e.lower().lstrip(".") for e in allowed) if allowed else None,
    )
