"""`p2pmsg send-file --to PEER PATH...`: send files and say whether they arrived verified.

One file is a single-file offer. Several paths, or a folder, are one folder
offer (protocol section 7.2): the receiver accepts it as a whole into a new
folder; progress counts bytes and files of the whole offer. Symlinks inside a
folder are skipped, never followed (listed on stderr).

Starts a node (dialling only the recipient), offers the file, shows progress
(bytes, rate, time left: one updating line on a terminal, a plain line per
second otherwise, JSON lines with `--json`) and waits for the receiver's
verdict. Exit status: 0 the receiver verified the SHA-256 and saved the file;
1 it failed, was declined, expired or cancelled (the reason is printed);
3 not finished yet (the peer not reached within --reach, no progress within
--timeout, or interrupted): the transfer stays in this profile and resumes,
from where it stopped, the next time a node of this profile meets the peer.
Nothing about progress is printed until the peer is reached: an offer that is
waiting for an offline peer has no progress to show.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from pathlib import Path
from typing import TextIO

from p2pmsg.commands._node import (
    EXIT_QUEUED,
    add_network_options,
    find_peer,
    json_line,
    running_node,
)
from p2pmsg.errors import ConfigError
from p2pmsg.node.api import PeerConnected, TransferUpdated, TransferView
from p2pmsg.node.transfers.receiver import human_size
from p2pmsg.sanitize import printable

_FAILED = ("failed", "declined", "expired", "cancelled")
RESUMES = "it resumes, from where it stopped, the next time this profile meets the peer"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "send-file",
        parents=[common],
        help="send files or folders and wait until they arrived verified",
        description="Offer PATH to PEER (display name or fingerprint prefix), stream it and "
        "wait for the receiver to verify its SHA-256. Several paths or a folder are one "
        "offer, received into a new folder (symlinks inside a folder are skipped). Exit "
        "status 0: arrived verified; 1: failed or refused; 3: not finished, resumes later.",
    )
    p.add_argument("--to", required=True, metavar="PEER", help="display name or fingerprint prefix")
    p.add_argument("paths", nargs="+", metavar="PATH", help="the files and folders to send")
    p.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="give up waiting after S seconds without progress (default: %(default)s)",
    )
    p.add_argument(
        "--reach",
        type=float,
        default=15.0,
        metavar="S",
        help="exit 3 (the offer is kept and resumes later) if the peer is not reached "
        "within S seconds (default: %(default)s s)",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=5.0,
        metavar="S",
        help="how long to look for a peer not known yet (default: %(default)s s)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per progress line")
    add_network_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paths = [Path(p).expanduser() for p in args.paths]
    for given, path in zip(args.paths, paths, strict=True):
        if not (path.is_file() or path.is_dir()):
            raise ConfigError(f"{given} is not a readable file or folder")
    if args.timeout <= 0 or args.reach <= 0 or args.wait < 0:
        raise ConfigError("--timeout and --reach must be positive and --wait not negative")
    try:
        return asyncio.run(_send_file(args, paths))
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; {RESUMES}",
            file=sys.stderr,
        )
        return EXIT_QUEUED


def format_duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_line(view: TransferView) -> str:
    """'  45%  90.0 MiB of 200.0 MiB  85.2 MiB/s  0:01 left'."""
    share = 100.0 if view.size == 0 else 100.0 * view.bytes_done / view.size
    parts = [f"{share:5.1f}%", f"{human_size(view.bytes_done)} of {human_size(view.size)}"]
    if view.files:
        parts.append(f"{view.files_done}/{view.files} files")
    if view.rate_bps > 0:
        parts.append(f"{human_size(int(view.rate_bps))}/s")
        parts.append(f"{format_duration((view.size - view.bytes_done) / view.rate_bps)} left")
    parts.append(view.state)
    return "  ".join(parts)


class ProgressPrinter:
    """One updating line on a terminal; a plain line at most once a second otherwise."""

    def __init__(self, out: TextIO, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json
        self.tty = out.isatty() and not as_json
        self._last = 0.0
        self._width = 0

    def show(self, view: TransferView, *, final: bool = False) -> None:
        if self.as_json:
            self.out.write(json_line({"event": "transfer", **dataclasses.asdict(view)}) + "\n")
        elif self.tty:
            line = progress_line(view)
            self.out.write("\r" + line.ljust(self._width) + ("\n" if final else ""))
            self._width = len(line)
        else:
            now = time.monotonic()
            if not final and now - self._last < 1.0:
                return
            self._last = now
            self.out.write(progress_line(view) + "\n")
        self.out.flush()


async def _send_file(args: argparse.Namespace, paths: list[Path]) -> int:
    printer = ProgressPrinter(sys.stdout, args.json)
    async with running_node(
        args, "p2pmsg send-file", auto_connect=False, monitor_models=False
    ) as node:
        fingerprint = await find_peer(node, args.to, args.wait)
        peer = node.directory.view(fingerprint)
        # The name is the peer's claim: printed only through the sanitiser.
        label = printable(peer.name if peer is not None and peer.name else fingerprint[:16])
        events = node.subscribe()
        if len(paths) == 1 and paths[0].is_file():
            view = await node.send_file(fingerprint, str(paths[0]))
        else:
            view = await node.send_files(fingerprint, [str(p) for p in paths])
            if view.error:  # what was left out: symlinks and special files
                print(f"p2pmsg: {printable(view.error)}", file=sys.stderr)
        loop = asyncio.get_running_loop()
        reached = node.directory.session(fingerprint) is not None
        deadline = loop.time() + (args.timeout if reached else args.reach)
        final: TransferView | None = None
        if reached:
            printer.show(view)
        while final is None:
            try:
                event = await asyncio.wait_for(anext(events), max(0.0, deadline - loop.time()))
            except (TimeoutError, StopAsyncIteration):
                break
            if isinstance(event, PeerConnected) and event.peer.fingerprint == fingerprint:
                if not reached:
                    reached = True
                    deadline = loop.time() + args.timeout
                    printer.show(view)
                continue
            if not isinstance(event, TransferUpdated) or event.transfer.id != view.id:
                continue
            current = event.transfer
            if current.bytes_done > view.bytes_done or current.state != view.state:
                deadline = loop.time() + args.timeout  # progress: the clock starts again
            view = current
            if view.state == "completed" or view.state in _FAILED:
                final = view
            if reached or final is not None:
                printer.show(view, final=final is not None)
    if final is None:
        if args.json:
            outcome = "unreached" if not reached else "stalled"
            print(json_line({"event": "not_finished", "why": outcome, "transfer": view.id}))
        elif not reached:
            print(
                f"{label} was not reached within {args.reach:g} s (offline?); the offer of "
                f"{printable(view.name)} is kept in this profile; {RESUMES}",
                file=sys.stderr,
            )
        else:
            print(
                f"\nnot finished ({view.state}, {human_size(view.bytes_done)} of "
                f"{human_size(view.size)}, no progress for {args.timeout:g} s); {RESUMES}",
                file=sys.stderr,
            )
        return EXIT_QUEUED
    if final.state == "completed":
        if not args.json and final.files:
            print(
                f"{printable(final.name)}: {final.files} files, {human_size(final.size)} "
                "arrived, each SHA-256 verified"
            )
        elif not args.json:
            print(
                f"{printable(final.name)}: {human_size(final.size)} arrived, SHA-256 verified "
                f"({final.sha256[:16]}...)"
            )
        return 0
    # The error may be the receiver's decline or cancel reason: peer text.
    print(
        f"p2pmsg: {printable(final.name)} was not delivered ({final.state}): "
        f"{printable(final.error or '')}",
        file=sys.stderr,
    )
    return 1
