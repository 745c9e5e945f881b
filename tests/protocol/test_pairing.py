"""Pairing by a short code: the sans-I/O machines, driven over two real sessions in memory.

The pair messages travel as records of `PeerConnection`s joined in memory
(tests/protocol/pair.py), so what is tested here is what the node runs, with
a settable clock and nothing sleeping.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest

from p2pmsg.errors import ConfigError
from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import SecurityEventRaised, UserMessageReceived
from p2pmsg.protocol.messages import PairAbort, PairFinish, PairMessage, PairReply, PairStart
from p2pmsg.protocol.pairing import (
    CODE_LIFETIME,
    CONFIRM_TIMEOUT,
    Binding,
    PairingShower,
    PairingTyper,
    format_code,
    new_code,
    parse_code,
)
from tests.protocol.pair import Clock, Pair, identity, make_pair

CODE = "314159"


def bindings(pair: Pair) -> tuple[Binding, Binding]:
    """(the initiator's view, the responder's view) of the session."""
    a_fp, b_fp = pair.a_identity.fingerprint, pair.b_identity.fingerprint
    assert pair.a.handshake_hash is not None and pair.a.handshake_hash == pair.b.handshake_hash
    return (Binding(a_fp, b_fp, pair.a.handshake_hash), Binding(b_fp, a_fp, pair.b.handshake_hash))


def carry(pair: Pair, sender: PeerConnection, messages: Sequence[PairMessage]) -> list[PairMessage]:
    """Send `messages` as records from `sender` to the other end; what it received."""
    if not messages:
        return []
    sink = pair.events_b if sender is pair.a else pair.events_a
    before = len(sink)
    data = sender.send_messages(messages)
    pair.deliver(data_ab=data) if sender is pair.a else pair.deliver(data_ba=data)
    got = [e.message for e in sink[before:] if isinstance(e, UserMessageReceived)]
    assert got == list(messages)
    return got  # type: ignore[return-value]


def run(pair: Pair, typer: PairingTyper, shower: PairingShower) -> list[PairMessage]:
    """The whole exchange: typer on side a, shower on side b; every message sent."""
    bind_a, bind_b = typer.binding, bindings(pair)[1]
    assert bind_a is not None
    sent: list[PairMessage] = []
    outbox: list[PairMessage] = [typer.start()]
    from_a = True
    while outbox:
        sent += outbox
        received = carry(pair, pair.a if from_a else pair.b, outbox)
        outbox = []
        for message in received:
            if from_a:
                outbox += shower.receive(message, bind_b, pair.clock())
            else:
                outbox += typer.receive(message, bind_a, pair.clock())
        from_a = not from_a
    return sent


def machines(
    pair: Pair, typed: str = CODE, shown: str = CODE, lifetime: float = CODE_LIFETIME
) -> tuple[PairingTyper, PairingShower]:
    now = pair.clock()
    return (
        PairingTyper(typed, bindings(pair)[0], os.urandom, now),
        PairingShower(shown, now + lifetime, os.urandom, now),
    )


def test_the_right_code_verifies_both_sides() -> None:
    pair = make_pair()
    typer, shower = machines(pair, typed="314-159")
    sent = run(pair, typer, shower)
    assert [type(m) for m in sent] == [PairStart, PairReply, PairFinish]
    assert typer.result is not None and typer.result.ok and typer.result.reason == "verified"
    assert shower.result is not None and shower.result.ok
    assert len({m.attempt for m in sent}) == 1
    assert not pair.of_type("a", SecurityEventRaised) and not pair.of_type("b", SecurityEventRaised)


def test_a_wrong_code_fails_both_and_burns_the_code() -> None:
    pair = make_pair()
    typer, shower = machines(pair, typed="314158")
    sent = run(pair, typer, shower)
    assert [type(m) for m in sent] == [PairStart, PairReply, PairAbort]
    assert sent[-1] == PairAbort(sent[0].attempt, "wrong_code")
    assert typer.result is not None and typer.result.reason == "wrong_code"
    assert shower.result is not None and not shower.result.ok
    assert shower.result.reason == "wrong_code"

    # The same code, typed right this time, gets nowhere: it was used up.
    retry = PairingTyper(CODE, bindings(pair)[0], os.urandom, pair.clock())
    assert shower.receive(retry.start(), bindings(pair)[1], pair.clock()) == []
    assert shower.result.reason == "wrong_code"


def test_an_expired_code_is_refused() -> None:
    pair = make_pair()
    typer, shower = machines(pair)
    pair.clock.advance(CODE_LIFETIME)
    sent = run(pair, typer, shower)
    assert [type(m) for m in sent] == [PairStart, PairAbort]
    assert sent[-1].reason == "no_code"  # type: ignore[union-attr]
    assert typer.result is not None and typer.result.reason == "no_code"
    assert shower.result is not None and shower.result.reason == "expired"


def test_an_unused_code_expires_on_its_timer() -> None:
    clock = Clock()
    shower = PairingShower(CODE, clock() + CODE_LIFETIME, os.urandom, clock())
    assert shower.get_timer() == clock() + CODE_LIFETIME
    assert shower.handle_timer(clock.advance(CODE_LIFETIME - 1)) == []
    assert shower.result is None
    assert shower.handle_timer(clock.advance(1)) == []  # nobody to tell
    assert shower.result is not None and shower.result.reason == "expired"
    assert shower.get_timer() is None


def test_an_attempt_in_flight_times_out_and_says_so() -> None:
    pair = make_pair()
    typer, shower = machines(pair)
    start = typer.start()
    reply = shower.receive(start, bindings(pair)[1], pair.clock())
    assert [type(m) for m in reply] == [PairReply]
    assert shower.in_flight and shower.get_timer() == pair.clock() + CONFIRM_TIMEOUT
    # The typer never answers: both give up after CONFIRM_TIMEOUT.
    pair.clock.advance(CONFIRM_TIMEOUT)
    assert shower.handle_timer(pair.clock()) == [PairAbort(start.attempt, "cancelled")]
    assert typer.handle_timer(pair.clock()) == [PairAbort(start.attempt, "cancelled")]
    assert shower.result is not None and shower.result.reason == "timeout"
    assert typer.result is not None and typer.result.reason == "timeout"


def test_a_replayed_transcript_from_an_earlier_attempt_fails() -> None:
    pair = make_pair()
    typer, shower = machines(pair)
    first = run(pair, typer, shower)
    assert shower.result is not None and shower.result.ok
    start, _, finish = first

    # The same code shown again (worst case) and the old PairStart and PairFinish
    # replayed to it: the shower's fresh SPAKE2 secret makes the old confirmation wrong.
    again = PairingShower(CODE, pair.clock() + CODE_LIFETIME, os.urandom, pair.clock())
    bind_b = bindings(pair)[1]
    assert [type(m) for m in again.receive(start, bind_b, pair.clock())] == [PairReply]
    assert again.receive(finish, bind_b, pair.clock()) == [PairAbort(start.attempt, "wrong_code")]
    assert again.result is not None and again.result.reason == "wrong_code"

    # Replayed as records, the session itself refuses them (strict record counters).
    pair.b.receive_data(pair.wire_ab[-1])
    pair.drain()
    assert [e.event for e in pair.of_type("b", SecurityEventRaised)] == ["replay_rejected"]


def test_a_transcript_of_another_session_fails() -> None:
    """Same people, same code, but the confirmation binds the handshake hash: a
    PairStart/PairFinish moved from one session to another is useless there."""
    clock = Clock()
    one, two = make_pair(clock=clock), make_pair(clock=clock)
    typer, _ = machines(one)
    shower = PairingShower(CODE, clock() + CODE_LIFETIME, os.urandom, clock())
    start = typer.start()
    reply = shower.receive(start, bindings(two)[1], clock())  # arrives on the other session
    assert [type(m) for m in reply] == [PairReply]
    assert typer.receive(reply[0], bindings(one)[0], clock()) == [
        PairAbort(start.attempt, "wrong_code")
    ]
    assert typer.result is not None and typer.result.reason == "wrong_code"


@pytest.mark.parametrize("first", ["finish", "reply", "abort"])
def test_a_message_out_of_order_is_refused_and_burns_the_code(first: str) -> None:
    pair = make_pair()
    typer, shower = machines(pair)
    attempt = os.urandom(16)
    message: PairMessage = {
        "finish": PairFinish(attempt, b"\0" * 32),
        "reply": PairReply(attempt, b"B" + b"\0" * 32, b"\0" * 32),
        "abort": PairAbort(attempt, "cancelled"),
    }[first]
    answer = shower.receive(message, bindings(pair)[1], pair.clock())
    assert answer == ([] if first == "abort" else [PairAbort(attempt, "unexpected")])
    assert shower.result is not None and shower.result.reason == "unexpected"
    run(pair, typer, shower)  # the real attempt finds the code used up and gets no answer
    assert typer.result is None


def test_the_typer_refuses_what_it_did_not_ask_for() -> None:
    pair = make_pair()
    bind_a = bindings(pair)[0]
    typer = PairingTyper(CODE, bind_a, os.urandom, pair.clock())
    # Before start(): nothing is expected.
    early = PairReply(typer.attempt or b"", b"B" + b"\0" * 32, b"\0" * 32)
    assert typer.receive(early, bind_a, pair.clock()) == [PairAbort(early.attempt, "unexpected")]
    assert typer.result is not None and typer.result.reason == "unexpected"

    typer = PairingTyper(CODE, bind_a, os.urandom, pair.clock())
    start = typer.start()
    other = PairReply(os.urandom(16), b"B" + b"\0" * 32, b"\0" * 32)  # another attempt
    assert typer.receive(other, bind_a, pair.clock()) == [PairAbort(start.attempt, "unexpected")]
    with pytest.raises(Exception, match="starts once"):
        typer.start()

    typer = PairingTyper(CODE, bind_a, os.urandom, pair.clock())
    start = typer.start()
    assert typer.receive(start, bind_a, pair.clock()) == [PairAbort(start.attempt, "unexpected")]


def test_a_bad_spake2_message_ends_the_attempt_without_raising() -> None:
    pair = make_pair()
    typer, shower = machines(pair)
    start = typer.start()
    reflected = PairStart(start.attempt, b"B" + start.pake[1:])  # wrong side byte
    assert shower.receive(reflected, bindings(pair)[1], pair.clock()) == [
        PairAbort(start.attempt, "unexpected")
    ]
    typer2, shower2 = machines(pair)
    start2 = typer2.start()
    not_a_point = PairStart(start2.attempt, b"A" + b"\xff" * 32)
    assert shower2.receive(not_a_point, bindings(pair)[1], pair.clock()) == [
        PairAbort(start2.attempt, "unexpected")
    ]


def test_a_relaying_man_in_the_middle_cannot_pair_even_with_the_right_code() -> None:
    """Alice's session is with Mallory (who says she is bob), Bob's with Mallory (who
    says she is alice); Mallory relays every pair message faithfully. Alice typed the
    code Bob showed, yet the identities and handshake hashes differ on the two legs."""
    clock = Clock()
    alice, mallory, bob = identity(1), identity(3), identity(2)
    left = Pair(*_connections(alice, mallory, clock), clock, alice, mallory)
    right = Pair(*_connections(mallory, bob, clock), clock, mallory, bob)
    left.deliver(left.a.start())
    right.deliver(right.a.start())
    typer = PairingTyper(CODE, bindings(left)[0], os.urandom, clock())
    shower = PairingShower(CODE, clock() + CODE_LIFETIME, os.urandom, clock())

    start = carry(left, left.a, [typer.start()])  # alice -> mallory
    relayed = carry(right, right.a, start)  # mallory -> bob
    reply = carry(right, right.b, shower.receive(relayed[0], bindings(right)[1], clock()))
    back = carry(left, left.b, reply)  # mallory -> alice
    answer = typer.receive(back[0], bindings(left)[0], clock())
    assert [type(m) for m in answer] == [PairAbort]
    assert typer.result is not None and typer.result.reason == "wrong_code"
    shower.receive(
        carry(right, right.a, carry(left, left.a, answer))[0], bindings(right)[1], clock()
    )
    assert shower.result is not None and not shower.result.ok


def _connections(
    first: object, second: object, clock: Clock
) -> tuple[PeerConnection, PeerConnection]:
    return (
        PeerConnection("initiator", first, "x", os.urandom, clock),  # type: ignore[arg-type]
        PeerConnection("responder", second, "y", os.urandom, clock),
    )  # type: ignore[arg-type]


# --- codes ------------------------------------------------------------------------------------


def test_codes_are_six_digits_shown_with_a_dash() -> None:
    codes = {new_code(os.urandom) for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes) and len(codes) > 190
    assert format_code("012345") == "012-345"
    for typed in ("012-345", "012345", " 012 345 ", "01-23-45", "012\t345"):
        assert parse_code(typed) == "012345"


FULLWIDTH = "".join(chr(0xFF10 + d) for d in range(1, 7))  # digits to str.isdigit, not to us


@pytest.mark.parametrize("typed", ["12345", "1234567", "abc-def", "", FULLWIDTH, "12345x"])
def test_malformed_codes_are_refused(typed: str) -> None:
    with pytest.raises(ConfigError, match="6 digits"):
        parse_code(typed)


def test_code_generation_has_no_modulo_bias() -> None:
    """Values at the top of the 32-bit range (where `% 10**6` would be biased) are
    drawn again rather than folded."""
    draws = iter([b"\xff\xff\xff\xff", (1234567).to_bytes(4, "big")])
    assert new_code(lambda n: next(draws)) == "234567"
