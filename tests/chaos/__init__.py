"""Chaos and hostility: a seeded fault soak on a namespace LAN, and a scripted hostile peer.

- soak.py (with cluster.py, driver.py, relay.py, faults.py, schedule.py, verify.py,
  summary.py): 3-5 real nodes chat and swap files while a seeded schedule kills
  them, pulls cables, slows, stalls, cuts and corrupts the path, moves addresses,
  switches suites and fills a disk; at the end nothing may be lost, duplicated,
  reordered, stuck or saved unverified. Short form: test_chaos_soak.py; long
  form: `python -m tests.chaos.run --minutes 30 --seed S`.
- hostile.py / test_hostile_peer.py: a peer speaking the real protocol that
  breaks one rule of docs/PROTOCOL.md at a time.
"""
