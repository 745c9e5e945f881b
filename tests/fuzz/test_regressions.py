"""Fuzzing findings as regression tests, plus checks that keep the campaign honest.

Every crash the fuzzer finds is checked in as a small file under
tests/fuzz/crashes/<target>/ (named after the bug) and replayed here through
the harness's own `test_one_input`, which needs no atheris. Findings with a
story also get a named test below.

The other tests make sure the machinery works: every seed runs clean, the
captured sessions still replay deep into an established session (a stale
corpus would silently make the fuzzer shallow), the corpus builder reproduces
the checked-in seeds, and the oracle really reports what it is meant to.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from p2pmsg.crypto.suites import available_suite_names
from p2pmsg.errors import RemoteProtocolError
from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import (
    ConnectionClosed,
    HandshakeCompleted,
    KeysRotated,
    RekeyCompleted,
    UserMessageReceived,
)
from p2pmsg.protocol.limits import ProtocolConfig
from p2pmsg.protocol.wire import unpack_limited
from tests.fuzz import fuzz_connection, fuzz_frames, fuzz_messages
from tests.fuzz.launcher import CORPUS_ROOT
from tests.fuzz.session import (
    ACT_CHAT,
    DELIVER,
    MODE_ESTABLISHED_INITIATOR,
    PARTNER_IDENTITY,
    VICTIM_IDENTITY,
    Clock,
    ContractViolation,
    DeterministicRng,
    Reader,
    Session,
    run_program,
)

HERE = Path(__file__).resolve().parent
CRASH_ROOT = HERE / "crashes"
TARGETS: dict[str, Callable[[bytes], None]] = {
    "frames": fuzz_frames.test_one_input,
    "messages": fuzz_messages.test_one_input,
    "connection": fuzz_connection.test_one_input,
}


def _files(root: Path) -> list[object]:
    return [
        pytest.param(target, path, id=f"{target}/{path.name}")
        for target in TARGETS
        for path in sorted((root / target).glob("*"))
        if path.is_file()
    ]


@pytest.mark.parametrize(("target", "path"), _files(CRASH_ROOT))
def test_crash_input_no_longer_crashes(target: str, path: Path) -> None:
    TARGETS[target](path.read_bytes())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_seed_runs_clean(target: str) -> None:
    seeds = sorted((CORPUS_ROOT / target).iterdir())
    assert seeds, f"no seeds for {target}: run python -m tests.fuzz.make_corpus"
    for seed in seeds:
        TARGETS[target](seed.read_bytes())


@pytest.mark.parametrize(
    "seed", sorted(p.name for p in (CORPUS_ROOT / "connection").glob("*-script-transcript-*"))
)
def test_captured_session_replays_deep(seed: str) -> None:
    """The victim's transcript of the scripted session is only raw bytes and its own
    actions; it must still get through the handshake, messages, rotations and both
    rekeys to the partner's bye. If not, the corpus is stale."""
    session = run_program((CORPUS_ROOT / "connection" / seed).read_bytes())
    kinds = [type(e) for e in session.victim.events]
    assert kinds.count(HandshakeCompleted) == 1
    assert kinds.count(UserMessageReceived) >= 15
    assert kinds.count(KeysRotated) >= 10
    assert kinds.count(RekeyCompleted) >= 2
    closed = session.victim.events[-1]
    assert type(closed) is ConnectionClosed and closed.reason == "peer_closed", (
        f"{closed!r}: regenerate with python -m tests.fuzz.make_corpus"
    )


@pytest.mark.skipif(
    "twofish-cbc-hmac-sha256" not in available_suite_names(),
    reason="the checked-in seeds were captured with all three suites",
)
def test_corpus_builder_reproduces_the_checked_in_seeds(tmp_path: Path) -> None:
    from tests.fuzz.make_corpus import build

    build(tmp_path)
    for target in TARGETS:
        built = sorted(p.name for p in (tmp_path / target).iterdir())
        checked_in = sorted(p.name for p in (CORPUS_ROOT / target).iterdir())
        assert built == checked_in, (
            f"tests/fuzz/corpus/{target} is stale: run python -m tests.fuzz.make_corpus"
        )


# --- the oracle must be able to fail -------------------------------------------------------


def _established() -> Session:
    """An established session with one partner chat pending for the victim."""
    session = Session(MODE_ESTABLISHED_INITIATOR)
    session.act(session.partner, Reader(bytes([ACT_CHAT, 2]) + b"hi"))
    assert session.to_victim
    return session


def test_oracle_reports_an_exception_swallowed_by_receive_data() -> None:
    session = _established()

    def broken(*args: object) -> None:
        raise KeyError("a bug in a handler")

    session.victim.conn._on_record = broken  # type: ignore[method-assign,assignment]
    with pytest.raises(ContractViolation, match="swallowed KeyError"):
        session.deliver_pending()


def test_oracle_reports_events_after_connection_closed() -> None:
    session = _established()
    session.feed(session.victim, b"")  # EOF: closed
    assert session.victim.closed
    session.victim.conn._events.append(UserMessageReceived(None))  # type: ignore[arg-type]
    with pytest.raises(ContractViolation, match="after ConnectionClosed"):
        session.victim.check("a late event")


def test_oracle_reports_a_connection_alive_past_the_idle_timeout() -> None:
    session = _established()
    session.victim.conn.handle_timer = lambda now=None: None  # type: ignore[method-assign]
    session.victim.conn.get_timer = lambda: None  # type: ignore[method-assign]
    with pytest.raises(ContractViolation, match="still established"):
        session.run(Reader(DELIVER))


# --- findings ------------------------------------------------------------------------------
# (one named test per crash the campaign found; see README "Fuzzing" for the log)


def _established_pair(config: ProtocolConfig) -> tuple[Clock, PeerConnection, PeerConnection]:
    clock = Clock()
    a = PeerConnection("initiator", VICTIM_IDENTITY, "a", DeterministicRng(b"a"), clock, config)
    b = PeerConnection("responder", PARTNER_IDENTITY, "b", DeterministicRng(b"b"), clock, config)
    b.receive_data(a.start())
    a.receive_data(b.data_to_send())
    b.receive_data(a.data_to_send())
    assert a.state == b.state == "established"
    return clock, a, b


SHORT_REKEY = ProtocolConfig(rekey_interval=100.0, keepalive_interval=30.0, idle_timeout=120.0)


def test_finding_1_timer_in_the_past_while_an_answered_rekey_is_pending() -> None:
    """Finding 1 (fuzz_connection, timer oracle; inputs crashes/connection/timer-spin-*:
    one written by hand from reading get_timer, one libFuzzer found on its own after
    ~27,000 executions).

    `a` answered `b`'s key-agreement offer, its answer is still on the wire, and the
    periodic rekey deadline passes. `handle_timer` cannot start a rekey (one is in
    progress), yet `get_timer()` kept returning the passed deadline: the node's timer
    (`call_later(max(0, deadline - now))`) then fired in a loop, 100% CPU, until the
    peer's confirmation arrived; forever if the peer never sends it.
    """
    clock, a, b = _established_pair(SHORT_REKEY)
    clock.now += 95
    a.receive_data(b.request_rekey())  # a answers (step 2), which b does not get yet
    assert a.data_to_send()
    clock.now += 10  # past the rekey deadline (100 s after the handshake)
    a.handle_timer()
    timer = a.get_timer()
    assert timer is not None and timer > clock.now


def test_finding_1b_a_peer_that_never_confirms_its_rekey_ends_the_session() -> None:
    """Finding 1, second face: the answering side had no deadline for the agreement, so
    a peer that offered a rekey and never confirmed it, while pinging to stay alive,
    kept the session open with fresh key agreement disabled for good."""
    clock, a, b = _established_pair(SHORT_REKEY)
    a.receive_data(b.request_rekey())
    a.data_to_send()  # a's answer never reaches b: b will not confirm
    for _ in range(20):
        if a.state == "closed":
            break
        clock.now += 25
        a.receive_data(b.ping())  # b keeps the connection alive
        a.handle_timer()
        a.data_to_send()
    events = []
    while (event := a.next_event()) is not None:
        events.append(event)
    closed = [e for e in events if type(e) is ConnectionClosed]
    assert closed and closed[0].reason == "rekey_timeout", events[-3:]


def test_finding_2_msgpack_map_keys_must_be_str() -> None:
    """Finding 2 (fuzz_messages, unpack target; inputs crashes/messages/bytes-map-key-*).

    docs/PROTOCOL.md says map keys must be `str`, but msgpack's `strict_map_key=True`
    admits `bytes` keys as well, so `unpack_limited` returned maps keyed by bytes.
    Only handshake payloads allow maps, and their key-set check refused such a map
    anyway, so this was a spec deviation rather than an exploitable one.
    """
    bytes_keyed = bytes.fromhex("81c40021")  # {b"": 33}
    with pytest.raises(RemoteProtocolError, match="key"):
        unpack_limited(bytes_keyed, what="test", max_array=4, max_map=4, max_str=16, max_bin=16)
    nested = bytes.fromhex("9281c401019201c4015501")  # [{b"\x01": [1, b"U"]}, 1]
    with pytest.raises(RemoteProtocolError, match="key"):
        unpack_limited(nested, what="test", max_array=4, max_map=4, max_str=16, max_bin=16)
    assert unpack_limited(
        bytes.fromhex("81a17601"), what="test", max_array=4, max_map=4, max_str=16, max_bin=16
    ) == {"v": 1}
