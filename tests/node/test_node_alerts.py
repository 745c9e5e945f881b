"""The alert lifecycle through a real node: the API changes states in the real store,
publishes `AlertStateChanged`, keeps them across a restart, picks up what another
process (`p2pmsg alerts --ack`) wrote, and feeds false alarms to the live monitor."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pmsg.errors import UnknownAlertError
from p2pmsg.node.api import AlertCounts, AlertRaised, AlertStateChanged, AlertView
from p2pmsg.node.node import Node
from p2pmsg.security_events import Alert
from p2pmsg.store import Store
from tests.node.conftest import NodeFactory, eventually, loopback_config

PEER = "ab" * 32
T0 = 1_763_337_600.0


def _alert(ts: float, kind: str = "flood", severity: str = "medium") -> Alert:
    return Alert(ts, kind, severity, PEER, "10.0.0.2", "rule:malformed_frames", 1.0, f"at {ts}")


async def _seed(node: Node, n: int) -> list[int]:
    return [(await node._store.run(Store.add_alert, _alert(T0 + i))).id or 0 for i in range(n)]


def _changes(stream) -> list[AlertStateChanged]:  # type: ignore[no-untyped-def]
    return [e for e in stream.drain() if isinstance(e, AlertStateChanged)]


async def test_ack_dismiss_and_false_alarm_survive_a_restart(make_node: NodeFactory) -> None:
    node = await make_node("alice")
    a, b, c, d = await _seed(node, 4)
    events = node.subscribe()
    assert [v.id for v in await node.acknowledge_alerts([a, b])] == [a, b]
    assert [v.id for v in await node.dismiss_alerts([b])] == [b]
    (false,) = await node.mark_false_alarms([c])
    assert (false.id, false.state) == (c, "false_alarm") and false.state_at is not None
    published = _changes(events)
    assert [[(v.id, v.state) for v in e.alerts] for e in published] == [
        [(a, "acknowledged"), (b, "acknowledged")],
        [(b, "dismissed")],
        [(c, "false_alarm")],
    ]
    assert published[-1].counts == AlertCounts(1, 1, 1, 1)
    # Asking again for a state an alert has or is past changes nothing and says nothing.
    assert await node.acknowledge_alerts([b]) == []
    assert _changes(events) == []
    await node.stop()

    again = await make_node("alice")  # the same identity and database: a restart
    states = {v.id: v.state for v in await again.alerts()}
    assert states == {a: "acknowledged", b: "dismissed", c: "false_alarm", d: "unread"}
    assert await again.alert_counts() == AlertCounts(1, 1, 1, 1)
    shown = await again.alerts(states=("unread", "acknowledged"))
    assert [v.id for v in shown] == [d, a]  # what the threat panel lists
    assert [v.id for v in await again.acknowledge_alerts()] == [d]  # all unread


async def test_an_unknown_id_is_an_error_that_changes_nothing(make_node: NodeFactory) -> None:
    node = await make_node("alice")
    (a,) = await _seed(node, 1)
    with pytest.raises(UnknownAlertError, match="no alert with id 42"):
        await node.dismiss_alerts([a, 42])
    assert [v.state for v in await node.alerts()] == ["unread"]


async def test_a_change_made_by_another_process_reaches_the_running_node(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    """`p2pmsg alerts --ack` opens the profile's store beside the node (no lock) and
    writes there; the node's store watch publishes the change within a second."""
    node = await make_node("alice")
    a, b = await _seed(node, 2)
    events = node.subscribe()
    _, data_key = make_node.keys["alice"]
    with Store.open(tmp_path / "alice.db", data_key) as other:
        other.set_alert_state([a], "acknowledged", T0)
        other.set_alert_state([b], "false_alarm", T0)

    async def picked_up() -> list[tuple[int | None, str]]:
        return [(v.id, v.state) for e in _changes(events) for v in e.alerts]

    seen = await eventually(picked_up, timeout=5.0)
    seen += await picked_up()
    assert sorted(seen) == [(a, "acknowledged"), (b, "false_alarm")]


async def test_a_false_alarm_quiets_the_next_alert_of_the_live_monitor(
    make_node: NodeFactory,
) -> None:
    """Rules only, with a clock the test moves: 3 malformed frames from one peer are a
    medium flood alert; marked a false alarm, the next burst (past the 15-minute fold)
    is raised low and says why. The identity-change rule stays critical."""
    now = [T0]
    node = await make_node(
        "alice",
        config=loopback_config(monitor=True, monitor_models=False, monitor_interval=3600.0),
        clock=lambda: now[0],
    )
    events = node.subscribe()

    async def burst(at: float, event: str = "frame_rejected", n: int = 3) -> list[AlertView]:
        now[0] = T0 + at
        for _ in range(n):
            node.security.record(event, peer=PEER, addr="10.0.0.2")
        await node.security.flush()
        raised = await node.monitor_link.tick()
        assert [e.alert for e in events.drain() if isinstance(e, AlertRaised)] == raised
        return raised

    (first,) = await burst(0)
    assert (first.kind, first.severity) == ("integrity_violation", "medium")
    assert first.id is not None
    await node.mark_false_alarms([first.id])
    (second,) = await burst(1000)
    assert second.severity == "low" and "one step quieter" in second.message
    stored = {v.id: v for v in await node.alerts()}
    assert stored[second.id].severity == "low"  # stored as raised
    (critical,) = await burst(2000, "identity_changed", 1)
    assert critical.severity == "critical"
    assert critical.state == "unread"
