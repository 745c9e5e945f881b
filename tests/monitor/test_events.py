from __future__ import annotations

import json

import pytest

from p2pmsg.errors import EventFormatError
from p2pmsg.monitor.events import iter_events, parse_event, top_label
from p2pmsg.security_events import SecurityEvent

GOOD = {
    "ts": 1763800000.25,
    "event": "handshake_fail",
    "peer": None,
    "addr": "192.168.1.20",
    "bytes": 0,
    "detail": {},
    "label": "normal",
}


def line(**changes: object) -> str:
    record = dict(GOOD)
    record.update(changes)
    return json.dumps(record)


def test_round_trip_is_exact_and_compact() -> None:
    event = parse_event(line())
    assert event == SecurityEvent(
        1763800000.25, "handshake_fail", None, "192.168.1.20", 0, {}, "normal"
    )
    assert json.loads(event.to_json()) == GOOD
    assert " " not in event.to_json()
    assert "label" not in event.to_json(with_label=False)


def test_key_is_peer_then_address_then_local() -> None:
    assert parse_event(line(peer="ab" * 32)).key == "ab" * 32
    assert parse_event(line()).key == "192.168.1.20"
    assert parse_event(line(event="unlock_fail", addr=None)).key == "local"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"event": "hack"}, "unknown event 'hack'"),
        ({"ts": -1}, "'ts'"),
        ({"ts": True}, "'ts'"),
        ({"peer": "ABCD"}, "'peer'"),
        ({"addr": "not-an-ip"}, "not an IP address"),
        ({"bytes": -5}, "'bytes'"),
        ({"bytes": 1.5}, "'bytes'"),
        ({"detail": []}, "'detail'"),
        ({"label": "evil"}, "unknown label 'evil'"),
        ({"extra": 1}, "unknown field(s) extra"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, object], message: str) -> None:
    with pytest.raises(EventFormatError, match=None) as info:
        parse_event(line(**changes), lineno=7)
    assert message in str(info.value)
    assert "line 7" in str(info.value)


def test_missing_field_and_bad_json() -> None:
    record = dict(GOOD)
    del record["addr"]
    with pytest.raises(EventFormatError, match="missing field"):
        parse_event(json.dumps(record))
    with pytest.raises(EventFormatError, match="not valid JSON"):
        parse_event("{nope")
    with pytest.raises(EventFormatError, match="expected a JSON object"):
        parse_event("[1, 2]")
    with pytest.raises(EventFormatError, match="not a usable JSON value"):
        parse_event("[" * 100_000 + "]" * 100_000)


def test_iter_events_names_source_and_line_and_skips_blanks() -> None:
    assert len(list(iter_events([line(), "", line()]))) == 2
    with pytest.raises(EventFormatError, match=r"log\.jsonl: line 2"):
        list(iter_events([line(), "{}"], source="log.jsonl"))


def test_label_priority_follows_design() -> None:
    assert top_label(["normal", "flood", "exfiltration"]) == "flood"
    assert top_label(["brute_force", "replay"]) == "replay"
    assert top_label(["integrity_violation", "impersonation"]) == "impersonation"
    assert top_label([]) == "normal"
