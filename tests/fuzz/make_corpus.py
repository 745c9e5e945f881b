"""Build the seed corpora in tests/fuzz/corpus/<target>/ from real captured sessions.

Two `PeerConnection`s (deterministic keys, RNG and clock: session.py) run a
scripted session in memory for each of the four setups (fresh responder,
started initiator, established as initiator, established as responder):
handshake, chat both ways, receipts, count-, request- and time-driven
rotations, a switch to each other suite, a fresh key agreement started by
each side, keepalives, a file offer/accept/chunk/done, and a bye. While it
runs, every byte chunk each side received, every record plaintext opened and
every handshake payload read is recorded. From that:

  frames/      each side's received byte stream (and its handshake part), whole
               and chunked, under both frame-size limits
  messages/    every record plaintext, frame body and handshake payload, with the
               selector byte fuzz_messages.py expects
  connection/  the scripted programs, and each victim's transcript: what it
               received as RAW ops plus its own actions, which replays the
               session exactly because everything is deterministic (checked here)

Usage: python -m tests.fuzz.make_corpus   (deterministic: rerunning gives the same files)
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgpack
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from p2pmsg.protocol.framing import FrameDecoder
from p2pmsg.protocol.handshake import static_binding
from p2pmsg.protocol.limits import PROTOCOL_VERSION
from p2pmsg.protocol.messages import BundleOffer, Bye, Chat, Ping, Rekey, encode_message
from p2pmsg.protocol.noise import HandshakeState
from p2pmsg.protocol.record import RecordLayer
from p2pmsg.protocol.wire import encode_abort, encode_handshake
from tests.fuzz.launcher import CORPUS_ROOT
from tests.fuzz.session import (
    ACT_CHAT,
    ACT_CLOSE,
    ACT_FILE,
    ACT_PING,
    ACT_RECEIPT,
    ACT_REKEY,
    ACT_ROTATE,
    ACT_SWITCH,
    DELIVER,
    FLUSH,
    MODE_ESTABLISHED_INITIATOR,
    MODE_ESTABLISHED_RESPONDER,
    MODE_FRESH_RESPONDER,
    MODE_STARTED_INITIATOR,
    OP_DELIVER,
    OP_MUTATE,
    OP_TIME,
    PARTNER_IDENTITY,
    START_TIME,
    VICTIM_IDENTITY,
    Trace,
    op_act,
    op_raw,
    op_seal,
    op_time,
    run_program,
)

MODE_NAMES = {
    MODE_FRESH_RESPONDER: "fresh-responder",
    MODE_STARTED_INITIATOR: "started-initiator",
    MODE_ESTABLISHED_INITIATOR: "established-initiator",
    MODE_ESTABLISHED_RESPONDER: "established-responder",
}


def chat(who: str, text: str) -> bytes:
    raw = text.encode()
    return op_act(who, ACT_CHAT, len(raw), raw)  # type: ignore[arg-type]


def both_ways() -> bytes:
    return DELIVER + FLUSH + DELIVER + FLUSH


def scripted_session(mode: int) -> bytes:
    """The whole product in one conversation; returns the fuzz program."""
    p = bytearray([mode])
    p += both_ways()  # the handshake, for the fresh setups
    p += chat("partner", "hello from the partner") + DELIVER + FLUSH
    p += chat("victim", "hi! \u00e9\u00e8 \u2603 \U0001f510") + FLUSH + DELIVER
    p += op_act("victim", ACT_RECEIPT, 0) + FLUSH
    p += op_act("partner", ACT_RECEIPT, 1) + DELIVER
    for n in range(10):  # crosses the 8-records-per-key limit: count rotations
        p += chat("partner", f"line {n}") + bytes([OP_DELIVER, 0, 7 + n])
    p += FLUSH
    for n in range(5):
        p += chat("victim", f"reply {n}")
    p += FLUSH + DELIVER
    p += op_act("partner", ACT_ROTATE) + DELIVER + FLUSH
    p += op_act("partner", ACT_SWITCH, 1) + DELIVER + FLUSH
    p += op_act("victim", ACT_SWITCH, 2) + FLUSH + DELIVER
    p += op_act("partner", ACT_REKEY) + both_ways() + both_ways()
    p += chat("partner", "after the partner's rekey") + DELIVER + FLUSH
    p += op_act("victim", ACT_REKEY) + FLUSH + DELIVER + both_ways()
    p += chat("victim", "after the victim's rekey") + FLUSH + DELIVER
    p += op_act("partner", ACT_ROTATE) + op_act("victim", ACT_ROTATE) + both_ways()
    for _ in range(4):  # keepalive-sized steps: time-driven rotations, then a timed rekey
        p += op_time(110) + both_ways() + both_ways()
    p += op_act("partner", ACT_PING) + DELIVER + FLUSH
    payload = b"a small file\n"
    p += op_act("partner", ACT_FILE, 0, bytes([len(payload)]) + payload) + DELIVER
    p += op_act("victim", ACT_FILE, 1, b"\x00") + FLUSH
    p += op_act("partner", ACT_FILE, 2, bytes([len(payload)]) + payload) + DELIVER
    p += op_act("partner", ACT_FILE, 3, b"\x00") + DELIVER + FLUSH
    sealed_chat = encode_message(Chat(b"\x07" * 16, START_TIME + 450, "sealed by hand", 60))
    p += op_seal(sealed_chat) + DELIVER
    p += op_act("partner", ACT_CLOSE, 1) + DELIVER + FLUSH
    return bytes(p)


def bundle_offers() -> dict[str, bytes]:
    """Folder offer parts (protocol section 7.2): a valid first and later part, and
    shapes the parser must refuse (first past count, an entry that is not a pair)."""
    bid = b"\x0b" * 16
    entries = (("photos/été/a.jpg", 3), ("b.txt", 0), ("CON", 1), ("../x", 2))
    return {
        "bundle-offer-first-part": encode_message(BundleOffer(bid, "holiday", 6, 7, 0, entries)),
        "bundle-offer-last-part": encode_message(
            BundleOffer(bid, "holiday", 6, 7, 4, (("c/d/e", 1), ("f", 0)))
        ),
        "bundle-offer-first-past-count": msgpack.packb(
            [18, bid, "x", 1, 0, 1, [["a", 0]]], use_bin_type=True
        ),
        "bundle-offer-entry-not-a-pair": msgpack.packb(
            [18, bid, "x", 1, 0, 0, [["a", 0, 1]]], use_bin_type=True
        ),
    }


def hostile_sessions() -> dict[str, bytes]:
    """A peer that holds the real keys but breaks the rules: seeds for the paths an
    honest partner never takes (rekey steps out of order, a low-order rekey key,
    a rekey step without the rotation that must follow it, frames out of place)."""
    public = X25519PrivateKey.from_private_bytes(b"\x42" * 32).public_key().public_bytes_raw()
    offer, answer = encode_message(Rekey(1, public)), encode_message(Rekey(2, public))
    confirm = encode_message(Rekey(3, None))
    ping = encode_message(Ping(7))
    unknown_type = msgpack.packb([99, b"x"])
    late_chat = encode_message(Chat(b"\x01" * 16, START_TIME + 86_400, "from the future"))
    programs = {
        "rekey-confirm-without-rotation": op_seal(offer)
        + DELIVER
        + op_seal(confirm)
        + DELIVER
        + op_seal(ping)
        + DELIVER,
        "rekey-answer-without-offer": op_seal(answer) + DELIVER,
        "rekey-low-order-key": op_seal(encode_message(Rekey(1, bytes(32)))) + DELIVER,
        "rekey-offers-cross": op_act("victim", ACT_REKEY) + op_seal(offer) + DELIVER + FLUSH,
        "rekey-offer-twice": op_seal(offer) + op_seal(offer) + DELIVER,
        "sealed-bye": op_seal(encode_message(Bye("sealed bye"))) + DELIVER,
        "sealed-unknown-type": op_seal(unknown_type) + DELIVER,
        "sealed-chat-from-the-future": op_seal(late_chat) + DELIVER,
        **{f"sealed-{k}": op_seal(v) + DELIVER for k, v in bundle_offers().items()},
        "abort-after-handshake": op_raw(encode_abort("too late")),
        "handshake-after-handshake": op_raw(encode_handshake(b"\x00" * 32)),
        # epoch 2 lowered to 1 in the clear header, counter still right: a past epoch
        "past-epoch": op_act("partner", ACT_ROTATE)
        + DELIVER
        + op_act("partner", ACT_ROTATE)
        + DELIVER
        + chat("partner", "x")
        + bytes([OP_MUTATE, 0, 0, 7, 3]),
    }
    out = {}
    for index, (name, body) in enumerate(programs.items()):
        mode = MODE_ESTABLISHED_INITIATOR if index % 2 else MODE_ESTABLISHED_RESPONDER
        out[f"{MODE_NAMES[mode]}-hostile-{name}"] = bytes([mode]) + body
    # Forged handshake payloads under correct Noise: message 2 to a fresh initiator,
    # message 3 to a responder that has answered message 1.
    for name, fields in forged_payloads().items():
        response = msgpack.packb(fields, use_bin_type=True)
        out[f"started-initiator-forged-message-2-{name}"] = (
            bytes([MODE_STARTED_INITIATOR]) + op_seal(response) + DELIVER + FLUSH
        )
        final = msgpack.packb({k: v for k, v in fields.items() if k != "suites"}, use_bin_type=True)
        out[f"fresh-responder-forged-message-3-{name}"] = (
            bytes([MODE_FRESH_RESPONDER]) + DELIVER + op_seal(final) + DELIVER
        )
    return out


def forged_payloads() -> dict[str, dict[str, object]]:
    """The partner's real identity fields, then one lie each."""
    partner = PARTNER_IDENTITY
    honest: dict[str, object] = {
        "v": PROTOCOL_VERSION,
        "name": "partner",
        "id": partner.public_key,
        "sig": partner.sign(static_binding(partner.noise_static_public)),
        "suites": [1, 2, 3],
    }
    lies: dict[str, dict[str, object]] = {
        "honest": {},
        "suites-reordered": {"suites": [3, 1]},
        "suites-empty": {"suites": []},
        "suites-twice": {"suites": [1, 1]},
        "signature-zero": {"sig": bytes(64)},
        "identity-of-the-victim": {"id": VICTIM_IDENTITY.public_key},
        "identity-short": {"id": partner.public_key[:31]},
        "version-1-older-peer": {"v": 1},  # the file hash was in the offer then
        "version-3": {"v": 3},
        "name-escape": {"name": "\x1b[2Jroot"},
        "extra-field": {"x": 1},
    }
    return {name: {**honest, **lie} for name, lie in lies.items()}


def short_session(mode: int) -> bytes:
    """A handshake and one exchange: a small seed the fuzzer can mutate quickly."""
    p = bytearray([mode]) + both_ways()
    p += chat("partner", "hi") + DELIVER + op_act("victim", ACT_RECEIPT) + FLUSH
    p += bytes([OP_TIME, 0, 0]) + both_ways()  # to the next timer: a keepalive
    return bytes(p)


def variant_sessions() -> dict[str, bytes]:
    """The short session against each partner variant (setup byte // 4)."""
    out = {}
    for variant, name in ((1, "reflected"), (2, "refused"), (3, "narrow")):
        for mode in MODE_NAMES:
            if variant != 3 and mode in (MODE_ESTABLISHED_INITIATOR, MODE_ESTABLISHED_RESPONDER):
                continue  # those variants never get established
            program = short_session(mode + 4 * variant)
            out[f"{MODE_NAMES[mode]}-{name}-short"] = program
    return out


@contextmanager
def recording(cls: type, method: str, sink: list[Any]) -> Iterator[None]:
    """Record what a real method returns (it still does all its work)."""
    original: Callable[..., Any] = getattr(cls, method)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        sink.append((self, result))
        return result

    setattr(cls, method, wrapper)
    try:
        yield
    finally:
        setattr(cls, method, original)


def frame_bodies(stream: bytes) -> list[bytes]:
    try:
        return list(FrameDecoder().feed(stream))
    except Exception:  # a truncated/odd capture still gives its good frames
        return []


class CorpusWriter:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.counts: dict[str, int] = {}
        self._seen: set[bytes] = set()

    def reset(self) -> None:
        for target in ("frames", "messages", "connection"):
            shutil.rmtree(self.root / target, ignore_errors=True)
            (self.root / target).mkdir(parents=True)

    def add(self, target: str, name: str, data: bytes) -> None:
        if data in self._seen:
            return
        self._seen.add(data)
        digest = hashlib.sha256(data).hexdigest()[:12]
        (self.root / target / f"{name}-{digest}").write_bytes(data)
        self.counts[target] = self.counts.get(target, 0) + 1


def capture(program: bytes) -> tuple[Trace, list[bytes], list[tuple[int, bytes]], list[str]]:
    """Run a program; return its trace, the opened plaintexts, the handshake payloads
    (with their message number) and the victim's event names."""
    trace = Trace()
    opened: list[tuple[Any, bytes]] = []
    payloads: list[tuple[Any, bytes]] = []
    with (
        recording(RecordLayer, "open", opened),
        recording(HandshakeState, "read_message", payloads),
    ):
        session = run_program(program, trace)
    numbered = []
    for state, payload in payloads:
        # message 1 is read by a responder, 2 by an initiator, 3 by a responder again
        number = 2 if state.initiator else (3 if state.finished else 1)
        numbered.append((number, payload))
    return trace, [p for _, p in opened], numbered, _event_names(session.victim.events)


def _event_names(events: list[Any]) -> list[str]:
    return [type(e).__name__ + (f":{e.event}" if hasattr(e, "event") else "") for e in events]


def build(root: Path = CORPUS_ROOT) -> dict[str, int]:
    out = CorpusWriter(root)
    out.reset()
    for mode, mode_name in MODE_NAMES.items():
        for kind, program in (("script", scripted_session(mode)), ("short", short_session(mode))):
            trace, plaintexts, payloads, victim_events = capture(program)
            if "HandshakeCompleted" not in victim_events:
                raise RuntimeError(f"{mode_name} {kind}: no handshake in the capture")
            out.add("connection", f"{mode_name}-{kind}", program)
            transcript = bytes([mode]) + b"".join(trace.victim_ops)
            replayed = Trace()
            session = run_program(transcript, replayed)
            if _event_names(session.victim.events) != victim_events:
                raise RuntimeError(f"{mode_name} {kind}: the transcript does not replay")
            out.add("connection", f"{mode_name}-{kind}-transcript", transcript)
            for side, chunks in trace.received.items():
                stream = b"".join(chunks)
                handshake_part = b"".join(chunks[:2])
                for selector in (0x01, 0x0B, 0x00, 0x40):
                    out.add(
                        "frames",
                        f"{mode_name}-{kind}-{side}-{selector:02x}",
                        bytes([selector]) + stream,
                    )
                out.add("frames", f"{mode_name}-{kind}-{side}-handshake", b"\x01" + handshake_part)
                for body in frame_bodies(stream):
                    out.add("messages", "frame", b"\x01" + body)
            for plaintext in plaintexts:
                out.add("messages", "plaintext", b"\x00" + plaintext)
                out.add("messages", "unpack", b"\x03" + bytes([16, 16, 255, 255]) + plaintext)
            for number, payload in payloads:
                selector = 2 + 4 * (number - 1)
                out.add("messages", f"handshake-payload-{number}", bytes([selector]) + payload)
    for name, plaintext in bundle_offers().items():
        out.add("messages", name, b"\x00" + plaintext)
        out.add("messages", f"{name}-unpack", b"\x03" + bytes([16, 16, 255, 255]) + plaintext)
    for name, program in {**hostile_sessions(), **variant_sessions()}.items():
        run_program(program)  # must itself run clean
        out.add("connection", name, program)
    return out.counts


def main() -> None:
    counts = build()
    for target, count in sorted(counts.items()):
        print(f"{target}: {count} seed files in {CORPUS_ROOT / target}")


if __name__ == "__main__":
    main()
