"""The folder part of `p2pmsg bench files`: many small files as ONE folder offer, beside
`tar | plain TCP | untar` of the same folder in the same run.

The folder: `FULL_FILES` files (`QUICK_FILES` with --quick) of random sizes
between 4 and 256 KiB (`random.Random(SEED)`: the same tree every run) and
random content, spread over a few nested folders (`a/b/...`, depth 1 to 3).

What is timed, for both figures: from the moment the sender is asked to send
the folder until every file of it is on the receiver's disk and the receiver
has said so. Both ends are separate processes (the receiver is a child), disk
to disk, over loopback TCP.

- p2pmsg (aes-256-gcm, the default suite): `send_files` of the folder between
  two real nodes (bench/twonodes.py, the same setup as the single-file
  figures): the manifest, the receiver's accept of the whole offer, then every
  file hashed on both sides, fsynced by the receiver, checked against the
  sender's digest and moved into the new folder; timed until the offer is
  "completed" on the sender, which needs every file's "verified" answer from
  the receiver.
- tar: Python's `tarfile` streaming (`w|` / `r|`) over a plain TCP socket to a
  child (`python -m p2pmsg.bench.folder serve`) that unpacks the stream into a
  new folder, file by file, and **fsyncs every file** before it answers "ok":
  the same promise the product makes (a file reported as received is on
  disk). No encryption, no hashing, no per-file answer: the cheapest honest
  copy of a tree. On this kind of machine the fsyncs are most of its time.
- tar, no fsync (`tar_no_fsync`, shown, not a target): the same receiver
  without the fsyncs, as GNU tar unpacks (it never fsyncs); the files may
  still be only in the page cache when it answers. A receiver that promises
  nothing is not what the product is compared with, but the figure says what
  the fsyncs cost.

Both are run in turn, `ROUNDS` times (once with --quick), and each figure is
that one's median run; `runs_files_per_s` lists them all. Target: p2pmsg
>= `TARGET_VS_TAR` of tar's files/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from p2pmsg.bench.netutil import LOOPBACK, BenchError, ChildProcess, cpu_seconds
from p2pmsg.bench.report import fmt_mb, fmt_rate, fmt_ratio
from p2pmsg.bench.twonodes import two_nodes
from p2pmsg.node.api import TransferUpdated

FULL_FILES = 2000
QUICK_FILES = 200
MIN_SIZE = 4 * 1024
MAX_SIZE = 256 * 1024
SEED = 17
ROUNDS = 3
TARGET_VS_TAR = 0.5
TIMEOUT = 600.0
SUITE = "aes-256-gcm"
_ENDED = ("completed", "failed", "declined", "expired", "cancelled")
_SUBDIRS = ("a", "a/b", "a/b/c", "d", "d/e", "f")


def make_tree(root: Path, count: int, seed: int = SEED) -> int:
    """Write the folder under `root` (created); returns its total size in bytes."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible tree, not a secret
    total = 0
    for sub in _SUBDIRS:
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        size = rng.randint(MIN_SIZE, MAX_SIZE)
        sub = _SUBDIRS[i % len(_SUBDIRS)]
        (root / sub / f"file-{i:05}.bin").write_bytes(rng.randbytes(size))
        total += size
    return total


class _Cpu:
    """CPU seconds of this process and of the child between construction and `stop`."""

    def __init__(self, child_pid: int) -> None:
        self.child_pid = child_pid
        self._self = time.process_time()
        self._child = cpu_seconds(child_pid)

    def stop(self) -> dict[str, float]:
        figures = {"cpu_sender": round(time.process_time() - self._self, 2)}
        child = cpu_seconds(self.child_pid)
        if child is not None and self._child is not None:
            figures["cpu_receiver"] = round(child - self._child, 2)
        return figures


def _figures(count: int, size: int, seconds: float, cpu: dict[str, float]) -> dict[str, Any]:
    return {
        "files_per_s": round(count / seconds, 1),
        "mb_per_s": round(size / seconds / 1e6, 1),
        "seconds": round(seconds, 3),
        **cpu,
    }


# --- the baseline: tar | TCP | untar -----------------------------------------------------------


def _tar_copy(source: Path, tmp: Path, count: int, size: int, *, fsync: bool) -> dict[str, Any]:
    argv = [sys.executable, "-m", "p2pmsg.bench.folder", "serve", "--dir", str(tmp)]
    if not fsync:
        argv.append("--no-fsync")
    with ChildProcess(argv, ready_timeout=30.0) as child:
        cpu = _Cpu(child.pid)
        started = time.perf_counter()
        with socket.create_connection((LOOPBACK, int(child.ready["port"])), timeout=TIMEOUT) as s:
            with (
                s.makefile("wb", buffering=1024 * 1024) as out,
                tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
            ):
                tar.add(source, arcname=source.name)
            s.shutdown(socket.SHUT_WR)
            answer = s.recv(16)
        seconds = time.perf_counter() - started
        figures = _figures(count, size, seconds, cpu.stop())
        received = child.wait_for("received", 10.0)
    if answer != b"ok" or received.get("files") != count:
        raise BenchError(f"the tar receiver did not confirm the copy: {answer!r} {received}")
    return figures


def _untar(conn: socket.socket, into: Path, fsync: bool) -> int:
    """Unpack a tar stream into `into`, fsyncing each file; the number of files."""
    files = 0
    with (
        conn.makefile("rb", buffering=1024 * 1024) as stream,
        tarfile.open(fileobj=stream, mode="r|") as tar,
    ):
        for member in tar:
            checked = tarfile.data_filter(member, str(into))  # no escapes, no links
            target = into / checked.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if not member.isfile():
                continue
            source = tar.extractfile(member)
            assert source is not None
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                while block := source.read(1024 * 1024):
                    os.write(fd, block)
                if fsync:
                    os.fsync(fd)  # on disk before we say so, as the product
            finally:
                os.close(fd)
            files += 1
    return files


def _serve(directory: Path, fsync: bool) -> None:
    with socket.create_server((LOOPBACK, 0)) as server:
        print(json.dumps({"event": "ready", "port": server.getsockname()[1]}), flush=True)
        server.settimeout(TIMEOUT)
        conn, _ = server.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            into = directory / f"untar-{os.getpid()}"
            into.mkdir()
            files = _untar(conn, into, fsync)
            conn.sendall(b"ok")
    print(json.dumps({"event": "received", "files": files}), flush=True)


# --- the product -------------------------------------------------------------------------------


async def _p2pmsg(source: Path, count: int, size: int) -> dict[str, Any]:
    async with two_nodes(suite=SUITE, models=False, downloads=True) as pair:
        events = pair.sender.subscribe()
        cpu = _Cpu(pair.receiver.pid)
        started = time.perf_counter()
        view = await pair.sender.send_files(pair.peer, [str(source)])
        state, error, files_done = view.state, view.error, 0
        deadline = time.monotonic() + TIMEOUT
        while state not in _ENDED:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"the folder offer did not finish in {TIMEOUT:g} s")
            event = await asyncio.wait_for(anext(events), remaining)
            if isinstance(event, TransferUpdated) and event.transfer.id == view.id:
                state, error = event.transfer.state, event.transfer.error
                files_done = event.transfer.files_done
        seconds = time.perf_counter() - started
        figures = _figures(count, size, seconds, cpu.stop())
        received = [t for t in await pair.transfers() if t["id"] == view.id]
    if state != "completed" or files_done != count:
        raise BenchError(f"the folder offer ended {state} ({files_done} files): {error}")
    if not received or received[0]["state"] != "completed" or received[0]["files_done"] != count:
        raise BenchError(f"the receiver does not report the folder complete: {received}")
    return figures


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda figures: figures["files_per_s"])
    return {
        **ordered[(len(ordered) - 1) // 2],
        "runs_files_per_s": [r["files_per_s"] for r in runs],
    }


def run(quick: bool, tmp: Path) -> dict[str, Any]:
    """Measure both, interleaved; `tmp` is a scratch folder (the tree is written there)."""
    count = QUICK_FILES if quick else FULL_FILES
    rounds = 1 if quick else ROUNDS
    source = tmp / "folder-bench"
    size = make_tree(source, count)
    runs: dict[str, list[dict[str, Any]]] = {"tar": [], "p2pmsg": [], "tar_no_fsync": []}
    for _ in range(rounds):
        runs["tar"].append(_tar_copy(source, tmp, count, size, fsync=True))
        runs["p2pmsg"].append(asyncio.run(_p2pmsg(source, count, size)))
        runs["tar_no_fsync"].append(_tar_copy(source, tmp, count, size, fsync=False))
    tar, product = _median(runs["tar"]), _median(runs["p2pmsg"])
    ratio = product["files_per_s"] / tar["files_per_s"]
    return {
        "files": count,
        "bytes": size,
        "min_size": MIN_SIZE,
        "max_size": MAX_SIZE,
        "seed": SEED,
        "rounds": rounds,
        "suite": SUITE,
        "baseline_fsyncs_each_file": True,
        "tar": tar,
        "p2pmsg": product,
        "tar_no_fsync": _median(runs["tar_no_fsync"]),
        "target": {"ratio": round(ratio, 2), "limit": TARGET_VS_TAR, "met": ratio >= TARGET_VS_TAR},
    }


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    tar = result["tar"]["files_per_s"]

    def row(label: str, figures: dict[str, Any], ratio: str) -> tuple[str, ...]:
        cpu = figures.get("cpu_sender"), figures.get("cpu_receiver")
        return (
            label,
            fmt_rate(figures["files_per_s"]),
            fmt_mb(figures["mb_per_s"]),
            f"{figures['seconds']:.2f}",
            f"{cpu[0]:.2f}/{cpu[1]:.2f}" if None not in cpu else "",
            ratio,
        )

    return [
        ("folder", "files/s", "MB/s", "seconds", "CPU s send/recv", "vs tar"),
        row(
            f"p2pmsg {result['suite']}, one folder offer",
            result["p2pmsg"],
            fmt_ratio(result["p2pmsg"]["files_per_s"] / tar),
        ),
        row("baseline: tar | plain TCP | untar, fsync", result["tar"], ""),
        row(
            "(shown) the same without fsync",
            result["tar_no_fsync"],
            fmt_ratio(result["tar_no_fsync"]["files_per_s"] / tar),
        ),
    ]


def notes(result: dict[str, Any]) -> list[str]:
    target = result["target"]
    each = ", ".join(
        f"{name} {'/'.join(f'{r:.0f}' for r in result[name]['runs_files_per_s'])}"
        for name in ("p2pmsg", "tar", "tar_no_fsync")
    )
    return [
        f"folder: {result['files']} files of {result['min_size'] >> 10}-"
        f"{result['max_size'] >> 10} KiB ({result['bytes'] / 1e6:.0f} MB, seed {result['seed']}), "
        "nested folders; p2pmsg and the tar baseline fsync every file before they answer",
        f"folder: median of {result['rounds']} interleaved runs (files/s: {each})",
        f"target folder_vs_tar: {target['ratio']:.2f}x, needs >= {target['limit']}x: "
        f"{'met' if target['met'] else 'MISSED'}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="p2pmsg bench files: the tar baseline's receiver")
    parser.add_argument("mode", choices=["serve"])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--no-fsync", action="store_true")
    args = parser.parse_args(argv)
    try:
        _serve(Path(args.dir), not args.no_fsync)
    except Exception as exc:
        print(json.dumps({"event": "error", "message": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
