"""What `listen` prints for peer-controlled text, byte for byte (plain and --json)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

from p2pmsg.commands._node import SECURITY_WORDS, event_json, event_text
from p2pmsg.node import api
from p2pmsg.node.transfers.outgoing import decline_text
from p2pmsg.security_events import EVENT_NAMES

NOON = datetime(2026, 1, 5, 12, 0, 0).timestamp()  # "[12:00:00]" in the local zone
ALICE = "a1" * 32
MALLORY = "66" * 32
FORGED = "hi\n[12:00:00] alice: pay bob\x1b[2J"


def _message(text: str | None, peer: str = MALLORY) -> api.MessageReceived:
    return api.MessageReceived(
        api.MessageView(
            id="00" * 16, peer=peer, direction="in", text=text, created=NOON, status="delivered"
        )
    )


def _peer(name: str, fingerprint: str = MALLORY) -> api.PeerView:
    return api.PeerView(
        fingerprint=fingerprint,
        name=name,
        short_fingerprint=fingerprint[:8],
        online=True,
        verified=False,
        unread=0,
    )


def test_a_forged_line_in_chat_text_is_indented_and_inert() -> None:
    names = {MALLORY: "mallory"}
    assert event_text(_message(FORGED), names) == (
        "[12:00:00] mallory: hi\n           [12:00:00] alice: pay bob␛[2J"
    )
    assert event_text(_message("a\rb\u2028c\n\nd\n"), names) == (
        "[12:00:00] mallory: a␍b<U+2028>c\n           \n           d\n           "
    )
    assert event_text(_message(None), names) == "[12:00:00] mallory: (disappeared)"


def test_every_line_but_the_first_of_a_message_starts_indented() -> None:
    out = event_text(
        _message(FORGED + "\n\x1b]0;pwned\x07x\r\n[12:00:01] bob: ok"), {MALLORY: "mallory"}
    )
    assert out is not None
    first, *rest = out.split("\n")
    assert first.startswith("[12:00:00] mallory: ")
    assert rest and all(line.startswith("           ") for line in rest)
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out


def test_a_hostile_sender_name_is_one_inert_token() -> None:
    names = {MALLORY: "alice\n[12:00:00] bob\x1b[8m"}
    assert event_text(_message("hi"), names) == "[12:00:00] alice␊[12:00:00] bob␛[8m: hi"
    discovered = api.PeerDiscovered(_peer("\u202eecila\x1b]0;x\x07"))
    assert event_text(discovered, {}) == "-- discovered <U+202E>ecila␛]0;x␇ (66666666)"


def test_a_security_event_with_a_hostile_reason() -> None:
    record = {
        "ts": NOON,
        "event": "handshake_fail",
        "peer": None,
        "addr": "127.0.0.66",
        "bytes": 0,
        "detail": {
            "reason": "peer aborted the handshake: \x1b]0;pwned\x07\nfake line\u202e",
            "state": "handshaking",
        },
    }
    assert event_text(api.SecurityEventLogged(record), {}) == (
        "!! security: handshake failed from 127.0.0.66 (handshake_fail): "
        "peer aborted the handshake: ␛]0;pwned␇␊fake line<U+202E>"
    )
    record = {**record, "peer": MALLORY, "detail": {"reason": "x\ry"}}
    assert event_text(api.SecurityEventLogged(record), {MALLORY: "m\nallory"}) == (
        "!! security: handshake failed from m␊allory (handshake_fail): x␍y"
    )


def test_name_clash_pairing_and_alerts_with_hostile_names() -> None:
    clash = api.NameClashed(
        fingerprint=MALLORY,
        claimed_name="alice\u202e",
        contact=ALICE,
        contact_name="alice",
        detail="a new key (6666666666666666) claims to be 'alice\u202e'\n"
        "[12:00:00] alice: ok\x1b[2J",
    )
    assert event_text(clash, {}) == (
        "!! WARNING: a new key (6666666666666666) claims to be 'alice<U+202E>'␊"
        "[12:00:00] alice: ok␛[2J See `p2pmsg trust 6666666666666666`."
    )
    paired = api.PairingFinished(MALLORY, False, "wrong_code")
    assert event_text(paired, {MALLORY: "m\x1b[2Jallory"}) == (
        "-- pairing with m␛[2Jallory: failed (wrong_code)"
    )
    alert = api.AlertRaised(
        api.AlertView(
            ts=NOON,
            kind="impersonation",
            severity="high",
            peer=MALLORY,
            addr=None,
            source="rule:identity_changed",
            score=1.0,
            message="bob\x1b[2J\nis\u200b alice",
        )
    )
    assert event_text(alert, {MALLORY: "m\x1b[2Jallory"}) == (
        "!! alert [high] impersonation (m␛[2Jallory): bob␛[2J␊is<U+200B> alice"
    )
    # No proven key: the address; and the evidence says why, in one line.
    flood = api.AlertRaised(
        dataclasses.replace(
            alert.alert,
            kind="flood",
            peer=None,
            addr="10.0.0.9\n",
            evidence=(
                api.Evidence("connections refused in 60 s", 40.0, "alert at 20"),
                api.Evidence("handshake timeouts in 60 s", 2.5, "usually 0-1"),
            ),
        )
    )
    assert event_text(flood, {}) == (
        "!! alert [high] flood (10.0.0.9␊): bob␛[2J␊is<U+200B> alice [why: connections "
        "refused in 60 s 40 (alert at 20); handshake timeouts in 60 s 2.5 (usually 0-1)]"
    )
    changed = api.AlertStateChanged(
        (
            dataclasses.replace(alert.alert, id=3, state="acknowledged"),
            dataclasses.replace(alert.alert, id=4, state="false_alarm"),
            dataclasses.replace(alert.alert, id=5, state="acknowledged"),
        ),
        api.AlertCounts(unread=2, acknowledged=2, false_alarm=1),
    )
    assert event_text(changed, {}) == (
        "-- alerts: 3, 5 acknowledged; 4 marked a false alarm (2 unread)"
    )


def test_connected_and_disconnected_lines_sanitise_the_name() -> None:
    names: dict[str, str] = {}
    connected = api.PeerConnected(
        _peer("eve\x1b[1A"),
        api.SessionStatusView(
            peer=MALLORY,
            send=_direction(),
            recv=_direction(),
            negotiated_suites=("aes-256-gcm",),
            session_started=NOON,
            last_key_agreement=NOON,
            handshake_hash="00",
            verified=False,
        ),
    )
    assert event_text(connected, names) == (
        "-- connected to eve␛[1A (66666666), not verified, suite aes-256-gcm"
    )
    assert names == {MALLORY: "eve\x1b[1A"}  # kept raw, sanitised where printed
    assert event_text(api.PeerDisconnected(MALLORY, "peer_closed"), names) == (
        "-- disconnected from eve␛[1A (peer_closed)"
    )


def _direction() -> api.DirectionStatus:
    return api.DirectionStatus(
        suite="aes-256-gcm",
        epoch=0,
        messages_under_key=0,
        max_messages_per_key=1000,
        last_rotation=NOON,
        next_rotation=NOON + 3600,
    )


def test_json_keeps_the_exact_text_and_escapes_every_control() -> None:
    line = event_json(_message(FORGED + "\u202e\u2028"))
    assert line.isascii() and "\n" not in line and "\x1b" not in line
    assert "\\u001b[2J" in line and "\\n[12:00:00]" in line
    assert json.loads(line)["message"]["text"] == FORGED + "\u202e\u2028"


def test_a_message_shown_again_after_a_crash_says_so() -> None:
    again = api.MessageReceived(_message("lunch?").message, replayed=True)
    assert event_text(again, {MALLORY: "mallory"}) == (
        "[12:00:00] mallory (again: stored before a crash here): lunch?"
    )
    assert json.loads(event_json(again))["replayed"] is True
    assert json.loads(event_json(_message("lunch?")))["replayed"] is False


def test_the_outcome_of_an_added_address_is_one_inert_line() -> None:
    reached = api.AddressDialed("10.0.0.5", 47000, _peer("bob\x1b[2J"), None)
    assert event_text(reached, {}) == "-- reached 10.0.0.5:47000: bob␛[2J (66666666)"
    failed = api.AddressDialed("10.0.0.5", 47000, None, "connection refused")
    assert event_text(failed, {}) == (
        "-- could not reach 10.0.0.5:47000: connection refused; trying again later"
    )


def _security(event: str, **fields: object) -> api.SecurityEventLogged:
    record = {"ts": NOON, "event": event, "peer": None, "addr": None, "bytes": 0, "detail": {}}
    return api.SecurityEventLogged({**record, **fields})


def test_ordinary_use_raises_no_security_line() -> None:
    # `listen` once printed "!! security: unlock_ok from -" for its own unlock, and
    # "!! security: file_sent from Bob" for a file sent *to* Bob.
    for event in EVENT_NAMES:
        line = event_text(_security(event, peer=MALLORY, detail={"reason": "r"}), {})
        if event in SECURITY_WORDS:
            assert line is not None and line.startswith("!! security: "), event
            assert f"({event}): r" in line
        else:
            assert line is None, event
    assert set(SECURITY_WORDS) <= set(EVENT_NAMES)
    assert {"unlock_ok", "file_sent", "file_recv", "msg_sent", "cipher_changed"}.isdisjoint(
        SECURITY_WORDS
    )
    # No peer and no address: no "from -".
    assert event_text(_security("unlock_fail"), {}) == (
        "!! security: wrong password for this profile (unlock_fail)"
    )


def _transfer(direction: str, state: str, **fields: object) -> api.TransferUpdated:
    view = {
        "id": "ab" * 16,
        "peer": MALLORY,
        "direction": direction,
        "name": "re\x1b[2Jport.pdf",
        "size": 3 * 1024 * 1024,
        "sha256": "00" * 32,
        "state": state,
        "bytes_done": 0,
    }
    return api.TransferUpdated(api.TransferView(**{**view, **fields}))  # type: ignore[arg-type]


def test_a_file_says_which_way_it_went_once_it_ended() -> None:
    names = {MALLORY: "bob\n"}
    received = _transfer("in", "completed", path="/dl/re\x1b[2Jport.pdf")
    assert event_text(received, names) == (
        "-- received re␛[2Jport.pdf (3.0 MiB) from bob␊, SHA-256 verified, "
        "saved as /dl/re␛[2Jport.pdf"
    )
    assert event_text(_transfer("out", "completed"), names) == (
        "-- sent re␛[2Jport.pdf (3.0 MiB) to bob␊, verified by the receiver"
    )
    declined = _transfer("out", "declined", error=decline_text("declined by the receiver"))
    assert event_text(declined, names) == (
        "-- re␛[2Jport.pdf (3.0 MiB) to bob␊ not delivered (declined): declined by the receiver"
    )
    for state in ("offered", "transferring", "verifying", "paused"):
        assert event_text(_transfer("in", state), names) is None  # progress is not a line


def test_a_folder_offer_says_its_count_and_size_before_it_is_accepted() -> None:
    names = {MALLORY: "bob\n"}
    offered = _transfer("in", "offered", name="ph\x1b[2Jotos", files=40, sha256="")
    assert event_text(offered, names) == (
        f"-- bob␊ offers the folder ph␛[2Jotos (40 files, 3.0 MiB), id {'ab' * 16}"
    )
    done = _transfer(
        "in", "completed", name="photos", files=40, files_done=40, path="/dl/photos (1)"
    )
    assert event_text(done, names) == (
        "-- received folder photos (40 files, 3.0 MiB) from bob␊, each SHA-256 verified, "
        "saved in /dl/photos (1)"
    )
    failed = _transfer("out", "failed", name="photos", files=40, files_done=3, error="x: gone")
    assert event_text(failed, names) == (
        "-- folder photos (40 files, 3.0 MiB) to bob␊ not delivered (failed, 3 of 40 files "
        "arrived): x: gone"
    )
    # the files inside an offer have no line of their own: the offer speaks for them
    assert event_text(_transfer("in", "completed", bundle_id="cd" * 16), names) is None
    assert event_text(_transfer("out", "transferring", files=40), names) is None


def test_a_decline_reason_is_said_once() -> None:
    assert decline_text("declined by the receiver") == "declined by the receiver"
    assert decline_text(" Declined ") == "declined by the receiver"
    assert decline_text("too large (limit 4 GiB)") == (
        "declined by the receiver: too large (limit 4 GiB)"
    )
