"""The scripted attacker, run as a process inside a LAN harness host.

    python -m tests.monitor.attack_tools.attacker MODE --target IP:PORT [--source IP] [...]

Modes (each bounded in count and time; see raw_peer.py for the wire work):

    bad-signature  --count N   N handshakes whose identity signature was made by another key
    replay                     an authenticated session; one chat record sent twice
    bitflip                    an authenticated session; one record with a bit of its tag flipped
    downgrade                  a session that negotiated only chacha20-poly1305; a record
                               relabelled as aes-256-gcm (a suite outside the negotiated set)
    weak-offer                 a handshake offering only suite ids the victim does not run
    identity-swap --claim-name NAME
                               a fresh identity key presented under a known peer's name
    flood --count N --seconds S
                               N TCP connections as fast as possible, held until S passed
    advert-impostor --claim-fp FP --claim-name NAME --seconds S
                               advertise a known peer's fingerprint and name over mDNS
                               for S seconds, and answer the victim's call with our own key

`--source` binds every connection to one of the host's addresses, so the
victim's events for this attack carry their own address. The program prints
one JSON line: {"attack", "source", "fingerprint", "started", "finished",
"result"}; `started` is the wall-clock time right before the first packet
(the harness shares one kernel clock between namespaces).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from p2pmsg.crypto.identity import Identity
from tests.monitor.attack_tools.raw_peer import (
    AttackError,
    connect,
    flip_last_bit,
    forged_handshake,
    open_session,
    relabel_suite,
    wait_closed,
    weak_offer,
)

MAX_CONNECTIONS = 200
MAX_SECONDS = 10.0
MAX_HANDSHAKES = 50


def bad_signature(args: argparse.Namespace) -> dict[str, Any]:
    answers = []
    for _ in range(min(args.count, MAX_HANDSHAKES)):
        with contextlib.closing(connect(args.host, args.port, args.source)) as sock:
            answers.append(
                forged_handshake(
                    sock, Identity.generate(os.urandom), Identity.generate(os.urandom), args.name
                )
            )
    return {"result": answers}


def replay(args: argparse.Namespace) -> dict[str, Any]:
    session = open_session(args.host, args.port, args.source, name=args.name)
    record = session.chat_record("hello, this record will be seen twice")
    session.send(record)
    session.pump(0.3)  # the victim accepts and acknowledges it...
    session.send(record)  # ...then sees the very same bytes again
    return {"fingerprint": session.fingerprint, "result": wait_closed(session.sock)}


def bitflip(args: argparse.Namespace) -> dict[str, Any]:
    session = open_session(args.host, args.port, args.source, name=args.name)
    session.send(flip_last_bit(session.chat_record("one bit of this record will flip")))
    return {"fingerprint": session.fingerprint, "result": wait_closed(session.sock)}


def downgrade(args: argparse.Namespace) -> dict[str, Any]:
    session = open_session(
        args.host, args.port, args.source, name=args.name, suites=("chacha20-poly1305",)
    )
    record = session.chat_record("sealed with chacha20-poly1305, labelled aes-256-gcm")
    session.send(relabel_suite(record, "aes-256-gcm"))
    return {"fingerprint": session.fingerprint, "result": wait_closed(session.sock)}


def weak(args: argparse.Namespace) -> dict[str, Any]:
    identity = Identity.generate(os.urandom)
    with contextlib.closing(connect(args.host, args.port, args.source)) as sock:
        # 0 and 200 are no suite p2pmsg knows: a legacy "null" and a made-up export cipher.
        answer = weak_offer(sock, identity, [0, 200])
    return {"fingerprint": identity.fingerprint.hex(), "result": answer}


def identity_swap(args: argparse.Namespace) -> dict[str, Any]:
    if not args.claim_name:
        raise AttackError("identity-swap needs --claim-name")
    session = open_session(args.host, args.port, args.source, name=args.claim_name)
    session.pump(1.0)  # stay a moment, as a real impostor would, then leave
    session.sock.close()
    return {"fingerprint": session.fingerprint, "result": "handshake completed"}


def flood(args: argparse.Namespace) -> dict[str, Any]:
    count = min(args.count, MAX_CONNECTIONS)
    deadline = time.monotonic() + min(args.seconds, MAX_SECONDS)
    held: list[socket.socket] = []
    refused = 0
    try:
        for _ in range(count):
            if time.monotonic() >= deadline:
                break
            try:
                held.append(connect(args.host, args.port, args.source, timeout=1.0))
            except OSError:
                refused += 1
        while time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for sock in held:
            sock.close()
    return {"result": {"opened": len(held), "failed": refused}}


def advert_impostor(args: argparse.Namespace) -> dict[str, Any]:
    """A real node with its own key behind an advertisement of someone else's fingerprint."""
    if not (args.claim_fp and args.claim_name):
        raise AttackError("advert-impostor needs --claim-fp and --claim-name")
    return asyncio.run(_advert_impostor(args))


async def _advert_impostor(args: argparse.Namespace) -> dict[str, Any]:
    from p2pmsg.node.config import NodeConfig
    from p2pmsg.node.net.discovery import Discovery
    from p2pmsg.node.node import Node

    identity = Identity.generate(os.urandom)
    with tempfile.TemporaryDirectory() as scratch:
        node = await Node.open(
            identity,
            args.claim_name,
            Path(scratch) / "impostor.db",
            os.urandom(32),
            NodeConfig(discovery=False, auto_connect=False, monitor=False),
        )
        await node.start()
        advert = Discovery(
            fingerprint_hex=args.claim_fp, name=args.claim_name, port=node.listen_port
        )
        try:
            await advert.start()
            await asyncio.sleep(min(args.seconds, MAX_SECONDS))
        finally:
            await advert.stop()
            await node.stop()
    return {"fingerprint": identity.fingerprint.hex(), "result": "advertised"}


MODES = {
    "bad-signature": bad_signature,
    "replay": replay,
    "bitflip": bitflip,
    "downgrade": downgrade,
    "weak-offer": weak,
    "identity-swap": identity_swap,
    "flood": flood,
    "advert-impostor": advert_impostor,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--target", required=True, metavar="IP:PORT")
    parser.add_argument("--source", metavar="IP")
    parser.add_argument(
        "--name",
        help="display name (default: a fresh mallory-XXXXXX, so no "
        "attack looks like a key change of an earlier one)",
    )
    parser.add_argument("--claim-name")
    parser.add_argument("--claim-fp")
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    args.host, port = args.target.rsplit(":", 1)
    args.port = int(port)
    args.name = args.name or f"mallory-{os.urandom(3).hex()}"
    report: dict[str, Any] = {
        "attack": args.mode,
        "source": args.source,
        "fingerprint": None,
        "started": time.time(),
    }
    try:
        report.update(MODES[args.mode](args))
    except (AttackError, OSError) as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
    report["finished"] = time.time()
    print(json.dumps(report), flush=True)
    return 1 if "error" in report else 0


if __name__ == "__main__":
    sys.exit(main())
