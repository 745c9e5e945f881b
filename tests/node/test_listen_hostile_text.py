"""`p2pmsg listen` as a user runs it, fed hostile text through the real stack.

A real `listen` process on 127.0.0.1 (no mDNS); its stdout is read as bytes,
exactly what a terminal would receive. Attackers: a raw TCP client that sends
an ABORT frame before any handshake, a scripted peer (tests/chaos/hostile.py:
real handshake, real record layer) that sends multi-line chat and a sealed
chat full of escapes, and a real second node (`p2pmsg send`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import pytest

from p2pmsg.profile import Profile
from p2pmsg.protocol.framing import FrameDecoder, encode_frame
from p2pmsg.protocol.messages import new_chat
from tests.chaos.hostile import HostilePeer, raw_message
from tests.conftest import REPO_ROOT
from tests.harness import JsonLines

pytestmark = pytest.mark.timeout(120)

PASSWORD = "Hostile-Text-Passw0rd!"  # noqa: S105 - a throwaway test profile
ENV = {**os.environ, "P2PMSG_PASSWORD": PASSWORD}

HOSTILE_REASON = "\x1b]0;pwned\x07\nfake line"
#: What an honest node may send (the wire allows LF, bidi and zero-width characters).
MULTILINE = "hi\n[12:00:00] alice: pay bob\u202egnp.exe\u200b\t!"
MULTILINE_SHOWN = "hi\n           [12:00:00] alice: pay bob<U+202E>gnp.exe<U+200B>␉!"
#: What only a hostile sender can put in a record (our own senders refuse it).
ESCAPES = "x\x1b]0;pwned\x07\n[12:00:00] alice: pay bob\x1b[2J\r"

#: Every line a plain `listen` prints starts like one of these; the indent is a
#: message's continuation. A peer's text can start no other line.
LINE_STARTS = (
    rb"listening as ",
    rb"-- ",
    rb"!! ",
    rb"\[\d\d:\d\d:\d\d\] (bob|mallory): ",
    rb" {11}",
    rb"stopped$",
)


class ByteOutput:
    """A child's stdout as raw bytes, read in the background (a terminal's view)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self._data = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read1(4096):  # type: ignore[attr-defined]
            with self._lock:
                self._data += chunk

    @property
    def data(self) -> bytes:
        with self._lock:
            return bytes(self._data)

    def wait_for(self, pattern: bytes, timeout: float = 10.0) -> re.Match[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.data, re.MULTILINE)
            if match is not None:
                return match
            if self.proc.poll() is not None and not self._thread.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(
            f"no {pattern!r} within {timeout} s; exit {self.proc.poll()}; output: {self.data!r}"
        )

    def stop(self) -> bytes:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(15) == 0
        self._thread.join(5)
        return self.data


def make_profile(data_dir: Path, name: str) -> str:
    return (
        Profile(data_dir, name, kdf_iterations=20_000)
        .create(name, PASSWORD)
        .identity.fingerprint.hex()
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listen_argv(data_dir: Path, profile: str, port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "p2pmsg",
        "listen",
        *extra,
        "--no-discovery",
        "--no-monitor",
        "--data-dir",
        str(data_dir),
        "--profile",
        profile,
        "--interface",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def start_plain_listen(data_dir: Path, profile: str, port: int) -> ByteOutput:
    stderr = (data_dir / f"{profile}.stderr").open("wb")
    proc = subprocess.Popen(
        listen_argv(data_dir, profile, port),
        env=ENV,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
    )
    stderr.close()
    out = ByteOutput(proc)
    out.wait_for(rb"^listening as victim on port \d+ ", 20)
    return out


def p2pmsg(data_dir: Path, profile: str, *args: str) -> subprocess.CompletedProcess[str]:
    command, *rest = args
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "p2pmsg",
            command,
            "--data-dir",
            str(data_dir),
            "--profile",
            profile,
            *rest,
        ],
        env=ENV,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def raw_abort(port: int, reason: str) -> list[object]:
    """An ABORT frame from a client that never starts a handshake; the frames it gets back."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(encode_frame(msgpack.packb([3, reason])))
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionError):
            while chunk := sock.recv(4096):
                received += chunk
    return [msgpack.unpackb(body) for body in FrameDecoder().feed(received)]


def assert_inert(out: bytes) -> None:
    """Nothing a terminal would obey, and every line one of listen's own."""
    for byte in (b"\x1b", b"\x07", b"\r", b"\x9b", b"\x9d", "\u202e".encode()):
        assert byte not in out, (byte, out)
    lines = out.decode("utf-8").split("\n")
    assert lines[-1] == ""
    for line in lines[:-1]:
        assert any(re.match(start, line.encode()) for start in LINE_STARTS), (line, out)
    assert not re.search(rb"^(\[12:00:00\] alice|fake line)", out, re.MULTILINE), out


async def test_listen_shows_hostile_reasons_and_chat_inert(tmp_path: Path) -> None:
    make_profile(tmp_path, "victim")
    port = free_port()
    victim = start_plain_listen(tmp_path, "victim", port)
    try:
        # 1. Before any handshake: an ABORT whose reason is an OSC title change and a
        # forged line. A malformed frame: one security line, the code sent back.
        answer = await asyncio.to_thread(raw_abort, port, HOSTILE_REASON)
        assert answer == [[3, "protocol_error"]]
        victim.wait_for(
            rb"^!! security: a malformed frame was refused from 127\.0\.0\.1 \(frame_rejected\): "
            rb"abort frame: field 'reason' "
            rb"must be one line of text, at most 256 bytes, no controls, got str of "
            rb"length 20\n"
        )
        # A well-formed reason is shown, its bidi override made visible.
        await asyncio.to_thread(raw_abort, port, "no suite \u202egnp.exe")
        victim.wait_for(
            re.escape(
                b"!! security: handshake failed from 127.0.0.1 (handshake_fail): peer aborted "
                b"the handshake: no suite <U+202E>gnp.exe\n"
            )
        )

        # 2. An authenticated peer: multi-line chat shows indented; a sealed chat with
        # escapes is refused where it is decoded and costs that connection only.
        mallory = await HostilePeer.connect(port)
        try:
            victim.wait_for(rb"^-- connected to mallory \(")
            mallory.send(new_chat(os.urandom, time.time(), MULTILINE))
            victim.wait_for(
                rb"^\[\d\d:\d\d:\d\d\] mallory: " + re.escape(MULTILINE_SHOWN.encode()) + rb"\n"
            )
            mallory.send_raw(
                mallory.seal(raw_message(1, os.urandom(16), time.time(), ESCAPES, None))
            )
            assert await mallory.closed_by_victim()
            victim.wait_for(
                rb"^!! security: a malformed frame was refused from mallory \(frame_rejected\): "
                rb"chat: field 'text' "
                rb"contains terminal control characters\n"
            )
        finally:
            mallory.close()

        # 3. The process kept running: a real second node still reaches it.
        make_profile(tmp_path, "bob")
        assert p2pmsg(tmp_path, "bob", "add-peer", f"127.0.0.1:{port}").returncode == 0
        sent = await asyncio.to_thread(
            p2pmsg,
            tmp_path,
            "bob",
            "send",
            "--no-discovery",
            "--to",
            "victim",
            "still here",
            "--wait",
            "10",
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        victim.wait_for(rb"^\[\d\d:\d\d:\d\d\] bob: still here\n")
        assert victim.proc.poll() is None
    finally:
        out = victim.stop()
    assert b"pwned" not in out and b"fake line" not in out  # refused, never shown
    assert_inert(out)


def test_a_real_node_chat_plain_indented_and_json_exact(tmp_path: Path) -> None:
    """`p2pmsg send` from a second node: plain `listen` shows the text indented and
    inert; `listen --json` carries it exactly (ASCII JSON, every control escaped)."""
    make_profile(tmp_path, "victim")
    make_profile(tmp_path, "bob")
    port = free_port()
    assert p2pmsg(tmp_path, "bob", "add-peer", f"127.0.0.1:{port}").returncode == 0

    victim = start_plain_listen(tmp_path, "victim", port)
    try:
        sent = p2pmsg(
            tmp_path, "bob", "send", "--no-discovery", "--to", "victim", MULTILINE, "--wait", "10"
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        victim.wait_for(
            rb"^\[\d\d:\d\d:\d\d\] bob: " + re.escape(MULTILINE_SHOWN.encode()) + rb"\n"
        )
    finally:
        out = victim.stop()
    assert_inert(out)

    proc = subprocess.Popen(
        listen_argv(tmp_path, "victim", port, "--json"),
        env=ENV,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = JsonLines(proc)
    try:
        lines.wait_for(lambda o: o.get("event") == "ready", 20, "the ready line")
        sent = p2pmsg(
            tmp_path,
            "bob",
            "send",
            "--no-discovery",
            "--to",
            "victim",
            MULTILINE,
            "--json",
            "--wait",
            "10",
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        message_id = json.loads(sent.stdout)["id"]
        got = lines.wait_for(
            lambda o: o.get("event") == "message_received" and o["message"]["id"] == message_id, 15
        )
        assert got["message"]["text"] == MULTILINE
    finally:
        proc.send_signal(signal.SIGTERM)
        lines.wait_for(lambda o: o.get("event") == "stopped", 15)
        assert proc.wait(10) == 0
    assert lines.garbage == []  # every line was one JSON object (no raw newline split one)
