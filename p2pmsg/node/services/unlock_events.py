"""Unlock events from the profile's JSONL log, into the node's security log.

Why a second log exists at all: unlocking happens before the store can be
opened (the password is what yields the store's data key), and it happens in
any process that opens the profile (`p2pmsg id`, `alerts`, `send`, the TUI's
prompt). So `Profile` appends `unlock_ok` / `unlock_fail` to
`security_events.jsonl` in the profile directory, one O_APPEND write per line
(p2pmsg.profile.events).

The running node is the process that owns the store and the monitor, so it
takes those lines over: on start it imports the ones it has not imported
before, and while it runs it follows the file (one `stat` every `poll`
seconds, in a worker thread). Each line goes through `SecurityLog.record`
with its original timestamp, so it lands in the store's event log
(`p2pmsg events`), on the event bus and in the live monitor: a
password-guessing loop against a profile whose node is running raises a
`brute_force` alert within seconds.

Exactly once, without new state: every unlock event in the store came from
this file, so the newest one stored is the high-water mark; on start only
lines with a later timestamp are imported (attempts are serialised by the
profile's unlock guard and stamped inside it, so the file is in time order
unless the clock jumps back). While running, a byte offset is kept; a file
that shrank (replaced by hand) is read again from the top, newer lines only.

The file is our own profile's, but nothing read from disk is trusted: a line
that is not an unlock event in the schema is skipped and counted, reads are
bounded per poll, and a missing file is simply "no unlocks yet".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from p2pmsg.node.services.security_log import SecurityLog
from p2pmsg.node.tasks import cancel_and_wait
from p2pmsg.store import AsyncStore, Store

log = logging.getLogger(__name__)

UNLOCK_EVENTS = ("unlock_ok", "unlock_fail")
DEFAULT_POLL = 0.5
#: Most bytes read per poll; a (hand-)bloated file is caught up over several polls.
READ_LIMIT = 1024 * 1024
#: On start, at most this much of the end of the file is looked at (old history is
#: already in the store, or too old to matter).
START_WINDOW = 8 * 1024 * 1024
#: A profile line is ~150 bytes; anything much longer is not one of ours.
MAX_LINE = 4096


class UnlockEventFollower:
    def __init__(
        self, path: Path, security: SecurityLog, store: AsyncStore, *, poll: float = DEFAULT_POLL
    ) -> None:
        self.path = path
        self._security = security
        self._store = store
        self._poll = poll
        self._offset = 0
        self._partial = b""
        self._newest = -math.inf  # timestamp of the newest unlock event imported or stored
        self._task: asyncio.Task[None] | None = None
        self.imported = 0
        self.skipped = 0

    async def start(self) -> None:
        if self._task is not None:
            return
        self._newest = await self._stored_high_water()
        size = await asyncio.to_thread(self._size)
        self._offset = max(0, size - START_WINDOW)
        self._partial = b""
        if self._offset:
            self._partial = b"\x00"  # mid-line: drop everything up to the next newline
        await self.poll_once()
        self._task = asyncio.create_task(self._follow(), name="p2pmsg-unlock-events")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        with contextlib.suppress(Exception):
            await self.poll_once()  # a last attempt right before the stop still counts

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._poll)
            try:
                await self.poll_once()
            except Exception:  # a broken file must not stop the node
                log.exception("reading %s failed", self.path)

    async def poll_once(self) -> int:
        """Import the lines appended since the last poll; returns how many were imported."""
        # The worker thread only reads; state changes here, so a poll cancelled while the
        # thread runs (at stop) loses nothing: the same bytes are read again next time.
        start, chunk = await asyncio.to_thread(self._read_new, self._offset)
        if start != self._offset:  # truncated or replaced: start over, newer lines only
            self._offset, self._partial = start, b""
        if not chunk:
            return 0
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an unfinished line waits for its newline
        if len(self._partial) > MAX_LINE:
            self._partial = b"\x00"  # garbage without newlines: skip to the next one
        count = 0
        for raw in lines:
            record = _parse(raw)
            if record is None:
                if raw.strip() and not raw.startswith(b"\x00"):
                    self.skipped += 1
                continue
            if record["ts"] <= self._newest:
                continue  # imported by an earlier run (or a clock that went back)
            self._newest = record["ts"]
            self._security.record(
                record["event"], nbytes=0, detail=record["detail"], ts=record["ts"]
            )
            count += 1
        self.imported += count
        return count

    # --- blocking helpers (worker thread) ---------------------------------------------------

    def _size(self) -> int:
        try:
            return os.stat(self.path).st_size
        except OSError:
            return 0

    def _read_new(self, offset: int) -> tuple[int, bytes]:
        """(where the read started, what was appended since `offset`), at most READ_LIMIT."""
        size = self._size()
        if size < offset:
            offset = 0
        if size == offset:
            return offset, b""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(offset)
                return offset, fh.read(min(READ_LIMIT, size - offset))
        except OSError as exc:
            log.warning("cannot read %s: %s", self.path, exc.strerror)
            return offset, b""

    async def _stored_high_water(self) -> float:
        newest = -math.inf
        for name in UNLOCK_EVENTS:
            events = await self._store.run(Store.recent_events, 1, event=name)
            if events:
                newest = max(newest, events[-1].ts)
        return newest


def _parse(raw: bytes) -> dict[str, Any] | None:
    """An unlock event in the DESIGN.md schema, or None for anything else."""
    if not raw or len(raw) > MAX_LINE:
        return None
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("event") not in UNLOCK_EVENTS:
        return None
    ts, detail = obj.get("ts"), obj.get("detail", {})
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        return None
    if not isinstance(detail, dict):
        return None
    return {"ts": float(ts), "event": obj["event"], "detail": detail}
