"""The long chaos soak, as a script (root and network namespaces needed).

    python -m tests.chaos.run --minutes 30 --seed 20240601 [--nodes 5] [--json-out FILE]

Builds its own namespace LAN (tests/harness), runs tests.chaos.soak, prints
the seeded fault schedule first and the summary last, and always tears the
LAN down. Exit status 0 when the run passed (nothing lost, duplicated,
reordered, stuck or saved unverified), 1 when it did not.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from p2pmsg.bench.netns import Lan, netns_unavailable_reason, sweep_stale_namespaces
from tests.chaos.soak import Soak, SoakOptions


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--nodes", type=int, default=5, choices=(3, 4, 5))
    p.add_argument("--msg-rate", type=float, default=4.0)
    p.add_argument(
        "--product-timeouts",
        action="store_true",
        help="keepalive 30 s / idle 120 s as shipped, instead of 3 s / 10 s",
    )
    p.add_argument("--json-out", type=Path)
    args = p.parse_args(argv)
    reason = netns_unavailable_reason()
    if reason is not None:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    sweep_stale_namespaces()
    options = SoakOptions(
        seed=args.seed,
        minutes=args.minutes,
        nodes=args.nodes,
        msg_rate=args.msg_rate,
        fast_timeouts=not args.product_timeouts,
        settle_timeout=300.0 if args.product_timeouts else 120.0,
    )
    lan = Lan()
    try:
        for _ in range(args.nodes + 1):
            lan.add_host()
        with tempfile.TemporaryDirectory(prefix="p2pmsg-chaos-") as tmp:
            summary = Soak(lan, Path(tmp), options, out=lambda line: print(line, flush=True)).run()
    finally:
        lan.teardown()
    print(summary.text(), flush=True)
    print("SUMMARY " + summary.json(), flush=True)
    if args.json_out:
        args.json_out.write_text(summary.json() + "\n")
    return 0 if summary.passed else 1


if __name__ == "__main__":
    sys.exit(main())
