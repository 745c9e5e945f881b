"""Start and stop `node_proc` processes for the multi-process transfer tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.harness.procs import JsonLines

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class NodeProc:
    proc: subprocess.Popen[str]
    out: JsonLines
    fingerprint: str

    def peak_rss_kib(self) -> int:
        """VmHWM: the most resident memory this process ever had."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc status")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc status")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()


def start_node(
    directory: Path,
    name: str,
    port: int,
    *,
    peer_port: int | None = None,
    downloads: Path | None = None,
    send: Path | None = None,
    chat: str | None = None,
    throttle: float = 0.0,
    folder: bool = False,
) -> NodeProc:
    cmd = [
        sys.executable,
        "-m",
        "tests.transfers.node_proc",
        "--dir",
        str(directory),
        "--name",
        name,
        "--port",
        str(port),
    ]
    if peer_port is not None:
        cmd += ["--peer", f"127.0.0.1:{peer_port}"]
    if downloads is not None:
        cmd += ["--downloads", str(downloads)]
    if send is not None:
        cmd += ["--send", str(send)]
    if folder:
        cmd += ["--folder"]
    if chat is not None:
        cmd += ["--chat", chat]
    if throttle:
        cmd += ["--throttle", str(throttle)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    out = JsonLines(proc)
    ready = out.wait_for(lambda o: o.get("event") == "ready", 20, f"{name} ready")
    return NodeProc(proc, out, ready["fingerprint"])
