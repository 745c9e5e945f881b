"""Admission control: the per-address rate and connection cap, handshakes in flight, the
connection cap and the slots kept for contacts."""

from __future__ import annotations

import pytest

from p2pmsg.node.net.admission import Admission, AdmissionControl, LimitSettings, TokenBucket


def test_token_bucket_refills_at_its_rate_and_never_beyond_capacity() -> None:
    bucket = TokenBucket.full(capacity=2, rate=1.0, now=0.0)
    assert bucket.take(0.0) and bucket.take(0.0)
    assert not bucket.take(0.0)
    assert not bucket.take(0.5)
    assert bucket.take(1.6)
    assert bucket.is_full(100.0)
    assert bucket.tokens == 2  # capped


def test_a_clock_going_backwards_refills_nothing() -> None:
    bucket = TokenBucket.full(capacity=1, rate=1.0, now=10.0)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)
    assert not bucket.take(10.5)


def test_connection_rate_is_per_address() -> None:
    control = AdmissionControl(
        LimitSettings(connect_burst=3, connect_rate=1.0, max_handshakes_per_address=100)
    )
    admitted = [control.admit("10.0.0.9", 0.0) for _ in range(5)]
    assert [isinstance(a, Admission) for a in admitted] == [True, True, True, False, False]
    assert admitted[3] == "connection_rate"
    # An honest neighbour is unaffected by the flood.
    assert isinstance(control.admit("10.0.0.2", 0.0), Admission)
    # After a second the flooder gets one more token.
    assert isinstance(control.admit("10.0.0.9", 1.0), Admission)


def test_handshakes_in_flight_are_capped_per_address_and_freed_on_completion() -> None:
    control = AdmissionControl(LimitSettings(max_handshakes_per_address=2, connect_burst=100))
    first = control.admit("a", 0.0)
    second = control.admit("a", 0.0)
    assert isinstance(first, Admission) and isinstance(second, Admission)
    assert control.admit("a", 0.0) == "handshakes_in_flight"
    first.handshake_finished()
    assert control.handshakes_in_flight("a") == 1
    third = control.admit("a", 0.0)
    assert isinstance(third, Admission)
    # Finished handshakes still count as open connections until released.
    assert control.open_connections == 3


def test_connection_cap_and_release_is_idempotent() -> None:
    control = AdmissionControl(
        LimitSettings(
            max_connections=2, contact_reserve=0, connect_burst=100, max_handshakes_per_address=100
        )
    )
    a = control.admit("a", 0.0)
    b = control.admit("b", 0.0)
    assert isinstance(a, Admission) and isinstance(b, Admission)
    assert control.admit("c", 0.0) == "connection_cap"
    a.release()
    a.release()
    assert control.open_connections == 1
    assert control.handshakes_in_flight("a") == 0
    assert isinstance(control.admit("c", 0.0), Admission)


def test_per_address_state_stays_bounded_under_spoofed_sources() -> None:
    control = AdmissionControl(
        LimitSettings(
            tracked_addresses=50, max_connections=10_000, connect_burst=1, connect_rate=0.001
        )
    )
    for i in range(1000):
        result = control.admit(f"10.1.{i // 256}.{i % 256}", 0.0)
        if isinstance(result, Admission):
            result.release()
    assert len(control._buckets) <= 50


def _open(control: AdmissionControl, address: str, *, contact: bool = False) -> Admission:
    admitted = control.admit(address, 0.0, contact_address=contact)
    assert isinstance(admitted, Admission), admitted
    return admitted


def test_strangers_never_take_the_slots_kept_for_contacts() -> None:
    control = AdmissionControl(
        LimitSettings(max_connections=6, contact_reserve=2, connect_burst=100)
    )
    strangers = [_open(control, f"10.0.0.{i}") for i in range(4)]
    assert control.admit("10.0.0.99", 0.0) == "stranger_cap"
    # A contact's address may use the reserve; proving a contact's key keeps it there.
    contact = _open(control, "10.0.0.50", contact=True)
    contact.promote()
    assert (control.stranger_connections, control.open_connections) == (4, 5)
    assert not control.strangers_over_cap()
    # A contact's address whose key is no contact counts as a stranger, over the cap.
    squatter = _open(control, "10.0.0.51", contact=True)
    assert control.strangers_over_cap()
    squatter.release()
    assert control.admit("10.0.0.52", 0.0, contact_address=True) != "connection_cap"
    # A stranger leaving frees a stranger's slot; promoting twice counts once.
    contact.promote()
    strangers[0].release()
    assert control.stranger_connections == 3 + 1  # the admission just made above
    assert control.open_connections == 5


def test_one_address_cannot_take_more_than_its_share() -> None:
    control = AdmissionControl(
        LimitSettings(
            max_connections_per_address=3, connect_burst=100, max_handshakes_per_address=9
        )
    )
    held = [_open(control, "10.0.0.66") for _ in range(3)]
    assert control.admit("10.0.0.66", 0.0) == "address_cap"
    assert isinstance(control.admit("10.0.0.67", 0.0), Admission)
    held[0].release()
    held[0].release()
    assert control.connections_from("10.0.0.66") == 2
    assert isinstance(control.admit("10.0.0.66", 0.0), Admission)


def test_the_reserve_must_leave_strangers_a_slot() -> None:
    with pytest.raises(ValueError, match="contact_reserve"):
        LimitSettings(max_connections=4, contact_reserve=4)
