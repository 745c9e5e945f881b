"""`p2pmsg bench`: performance scenarios, one small module each.

Adding a scenario is one line here plus one module. The module provides:

    def run(quick: bool) -> dict[str, Any]
        Measure and return JSON-ready results. Use `p2pmsg.bench.timing`
        (Budget.for_run(quick), measure / measure_interleaved) so every
        figure is taken the same way. `quick` must finish in a few seconds.

    def rows(result: dict[str, Any]) -> list[tuple[str, ...]]
        The printed table for that result, header row first; the helpers in
        `p2pmsg.bench.report` format rates, sizes and ratios.

and optionally `TITLE: str` for the heading above its table and
`notes(result) -> list[str]` for lines printed below it. Scenarios are
imported only when selected, so a heavy one costs nothing otherwise.
"""

from __future__ import annotations

# Ordered: `p2pmsg bench` with no arguments runs them in this order.
SCENARIOS: dict[str, str] = {
    "suites": "p2pmsg.bench.suites",
    "records": "p2pmsg.bench.records",
    "chat": "p2pmsg.bench.chat",
    "latency": "p2pmsg.bench.latency",
    "files": "p2pmsg.bench.files",
    "handshake": "p2pmsg.bench.handshake",
    "trust": "p2pmsg.bench.trust",
    "abuse": "p2pmsg.bench.abuse",
    "discovery": "p2pmsg.bench.discovery",
    "groups": "p2pmsg.bench.groups",
    "ui": "p2pmsg.bench.ui",
    "monitor": "p2pmsg.bench.monitor",
}
