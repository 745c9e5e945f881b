"""`python -m p2pmsg` is the same as the `p2pmsg` console script."""

from __future__ import annotations

from p2pmsg.cli import main

raise SystemExit(main())
