"""Attack and honest-traffic tools for the live monitor tests (tests/monitor/test_live_*.py).

`raw_peer` is a hostile peer built from p2pmsg's own protocol code; `attacker`
runs one attack as a process inside a LAN harness host; `chatter` is an
honest node that chats at a human pace, for the quiet-run test; `live_lan`
runs the real `p2pmsg` commands in harness hosts and polls `alerts --json`.
"""
