"""Moving an alert along its lifecycle from the UI: one place for the threat panel,
the dashboard and the alert's detail screen, so that the same key does the same
thing (and says the same thing) wherever the user presses it.

The node publishes `AlertStateChanged` after each change; the screens follow that
event rather than the return value here, so a change made elsewhere (`p2pmsg alerts
--dismiss` in another terminal) shows the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import AlertView, NodeAPI
from p2pmsg.ui.safe_text import clip, printable


def _act(node: NodeAPI, state: str) -> Callable[[Sequence[int]], Awaitable[list[AlertView]]]:
    return {
        "acknowledged": node.acknowledge_alerts,
        "dismissed": node.dismiss_alerts,
        "false_alarm": node.mark_false_alarms,
    }[state]


async def set_alert_state(
    node: NodeAPI,
    alert: AlertView,
    state: str,
    notify: Callable[..., None],
    peer_name: str,
) -> list[AlertView]:
    """Ask the node to move `alert` to `state`; the alerts it changed (none for one
    already there or past it). A refusal is a toast, not an exception: the UI goes on."""
    if alert.id is None:
        return []
    try:
        changed = await _act(node, state)([alert.id])
    except P2PMsgError as exc:
        notify(str(exc), title="Alert", severity="error", markup=False)
        return []
    if changed and state == "false_alarm":
        notify(
            f"Later {alert.kind.replace('_', ' ')} alerts about "
            f"{printable(clip(peer_name, 24))} are raised one severity "
            "lower for 7 days (never below low; critical ones stay critical).",
            title="Marked a false alarm",
            markup=False,
        )
    return changed
