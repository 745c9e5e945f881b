"""The node's half of pairing by a short code: codes, routing, timers, the verdict.

The exchange itself is the sans-I/O machines of p2pmsg.protocol.pairing; this
class keeps at most one attempt per peer (a code shown, or a code being
typed), hands it the pair messages that arrive on that peer's session, sends
what it answers over the same session, runs its deadline on a loop timer and,
when it ends, marks the peer verified in the store (only on success) and
tells the bus.

Only the local user starts an attempt (`show_code`, `enter_code`): a peer
cannot make this node hold any pairing state. A pair message that belongs to
no attempt is dropped with a security event, and a finished attempt is
forgotten after a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from p2pmsg.errors import ConfigError, NotConnectedError, P2PMsgError
from p2pmsg.node.api import PairingCode, PairingFinished, PairingOutcome
from p2pmsg.node.bus import EventBus
from p2pmsg.node.net.session import Session
from p2pmsg.node.peers import PeerDirectory
from p2pmsg.node.services.security_log import SecurityLog
from p2pmsg.protocol.messages import PairAbort, PairMessage, PairStart
from p2pmsg.protocol.pairing import (
    CODE_LIFETIME,
    Binding,
    PairingShower,
    PairingTyper,
    format_code,
    new_code,
    parse_code,
)
from p2pmsg.store import AsyncStore, Store

log = logging.getLogger(__name__)

#: How long a finished attempt's outcome is kept for `wait` (then forgotten).
KEEP_FINISHED = CODE_LIFETIME
#: How often `enter_code` looks for the peer's session while it connects.
SESSION_POLL = 0.05


@dataclass(eq=False)
class _Attempt:
    peer: str
    machine: PairingShower | PairingTyper
    outcome: asyncio.Future[PairingOutcome]
    session: Session | None = None  # the session carrying the exchange, once there is one
    timer: asyncio.TimerHandle | None = None
    ending: bool = False  # the machine is done; the verdict is being recorded

    @property
    def role(self) -> str:
        return "shower" if isinstance(self.machine, PairingShower) else "typer"


class Pairing:
    def __init__(
        self,
        fingerprint: str,
        store: AsyncStore,
        bus: EventBus,
        security: SecurityLog,
        directory: PeerDirectory,
        want_connection: Callable[[str], None],
        publish_peer: Callable[[str], Awaitable[None]],
        clock: Callable[[], float],
        rng: Callable[[int], bytes],
    ) -> None:
        self._own = bytes.fromhex(fingerprint)
        self._store = store
        self._bus = bus
        self._security = security
        self._directory = directory
        self._want_connection = want_connection
        self._publish_peer = publish_peer
        #: Wall clock for code expiry and attempt deadlines (tests may replace it).
        self.clock = clock
        self._rng = rng
        self._attempts: dict[str, _Attempt] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- what the user does ------------------------------------------------------------

    def show_code(self, peer: str) -> PairingCode:
        current = self._attempts.get(peer)
        if current is not None and not current.outcome.done():
            if isinstance(current.machine, PairingShower) and not current.machine.in_flight:
                self._end(current, "cancelled", current.machine.cancel())  # replaced
            else:
                raise ConfigError(
                    f"a pairing with {peer[:16]} is already under way; wait for it to end"
                )
        now = self.clock()
        code = new_code(self._rng)
        self._new(peer, PairingShower(code, now + CODE_LIFETIME, self._rng, now))
        return PairingCode(peer, format_code(code), now + CODE_LIFETIME)

    async def wait(self, peer: str, timeout: float) -> PairingOutcome:
        attempt = self._attempts.get(peer)
        if attempt is None or not isinstance(attempt.machine, PairingShower):
            raise ConfigError(f"no pairing code is shown for {peer[:16]}")
        try:
            return await asyncio.wait_for(asyncio.shield(attempt.outcome), timeout)
        except TimeoutError:
            return PairingOutcome(peer, False, "timeout")

    async def enter_code(self, peer: str, code: str, timeout: float) -> PairingOutcome:
        digits = parse_code(code)
        current = self._attempts.get(peer)
        if current is not None and not current.outcome.done():
            what = (
                "this node shows a code for that peer: the other person types it"
                if isinstance(current.machine, PairingShower) and not current.machine.in_flight
                else "a pairing with it is under way"
            )
            raise ConfigError(f"cannot enter a code for {peer[:16]}: {what}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        session = await self._connected(peer, deadline, timeout)
        hh = session.conn.handshake_hash
        assert hh is not None
        typer = PairingTyper(
            digits, Binding(self._own, bytes.fromhex(peer), hh), self._rng, self.clock()
        )
        attempt = self._new(peer, typer)
        attempt.session = session
        session.send_messages([typer.start()])
        try:
            return await asyncio.wait_for(
                asyncio.shield(attempt.outcome), max(0.0, deadline - loop.time())
            )
        except TimeoutError:
            if not attempt.ending:
                self._end(attempt, "timeout", typer.cancel())
            return await asyncio.shield(attempt.outcome)
        except asyncio.CancelledError:
            if not attempt.ending:
                self._end(attempt, "cancelled", typer.cancel())
            raise

    async def _connected(self, peer: str, deadline: float, timeout: float) -> Session:
        loop = asyncio.get_running_loop()
        session = self._directory.session(peer)
        if session is None:
            self._want_connection(peer)
        while session is None or not session.trusted:
            if loop.time() >= deadline:
                raise NotConnectedError(
                    f"could not connect to {peer[:16]} within {timeout:g} s; nothing was sent"
                )
            await asyncio.sleep(SESSION_POLL)
            session = self._directory.session(peer)
        return session

    # --- what the peer sends -----------------------------------------------------------

    def received(self, session: Session, message: PairMessage) -> None:
        peer = session.peer
        attempt = self._attempts.get(peer)
        if attempt is None or attempt.ending or attempt.outcome.done():
            self._stray(session, message)
            return
        machine = attempt.machine
        if (
            isinstance(machine, PairingShower)
            and machine.attempt is None
            and type(message) is PairAbort
        ):
            return  # the end of an earlier attempt, arriving late: not a try at this code
        if (
            isinstance(machine, PairingTyper)
            and type(message) is PairStart
            and message.attempt != machine.attempt
        ):
            # Both typed at once: ours goes on, theirs is told we are busy.
            session.send_messages([PairAbort(message.attempt, "busy")])
            return
        if attempt.session is None:
            attempt.session = session  # the shower's first message binds the session
        hh = session.conn.handshake_hash
        assert hh is not None
        out = machine.receive(message, Binding(self._own, bytes.fromhex(peer), hh), self.clock())
        session.send_messages(out)
        self._progress(attempt)

    def _stray(self, session: Session, message: PairMessage) -> None:
        if type(message) is PairStart:
            # The other person typed a code we do not show (expired, used, never shown):
            # tell their node at once rather than let it wait, and log a failed pairing.
            session.send_messages([PairAbort(message.attempt, "no_code")])
            self._log_failure(session.peer, session.remote_address, "shower", "no_code")
        elif type(message) is PairAbort:
            log.debug("pair_abort from %s for no attempt of ours", session.peer[:16])
        else:
            self._security.record(
                "frame_rejected",
                peer=session.peer,
                addr=session.remote_address,
                detail={"reason": "unexpected_pairing_message", "message": type(message).__name__},
            )

    def session_closed(self, session: Session) -> None:
        """An attempt whose session went away ends (a code not yet used stays valid)."""
        for attempt in list(self._attempts.values()):
            if attempt.session is session and not attempt.ending:
                self._end(attempt, "disconnected", attempt.machine.cancel())

    # --- time and the end ----------------------------------------------------------------

    def _new(self, peer: str, machine: PairingShower | PairingTyper) -> _Attempt:
        loop = asyncio.get_running_loop()
        attempt = _Attempt(peer, machine, loop.create_future())
        self._attempts[peer] = attempt
        self._schedule(attempt)
        return attempt

    def _schedule(self, attempt: _Attempt) -> None:
        if attempt.timer is not None:
            attempt.timer.cancel()
            attempt.timer = None
        deadline = attempt.machine.get_timer()
        if deadline is not None:
            attempt.timer = asyncio.get_running_loop().call_later(
                max(0.0, deadline - self.clock()), self._on_timer, attempt
            )

    def _on_timer(self, attempt: _Attempt) -> None:
        attempt.timer = None
        if attempt.ending:
            return
        out = attempt.machine.handle_timer(self.clock())
        if out and attempt.session is not None:
            attempt.session.send_messages(out)
        self._progress(attempt)

    def _progress(self, attempt: _Attempt) -> None:
        result = attempt.machine.result
        if result is None:
            self._schedule(attempt)
        elif not attempt.ending:
            self._end(attempt, result.reason, [])

    def _end(self, attempt: _Attempt, reason: str, tell: list[PairMessage]) -> None:
        """The attempt is over: send its last words, record the verdict, resolve."""
        attempt.ending = True
        if attempt.timer is not None:
            attempt.timer.cancel()
            attempt.timer = None
        session = attempt.session
        if tell and session is not None:
            session.send_messages(tell)
        addr = session.remote_address if session is not None else None
        if reason == "verified":
            self._spawn(self._verified(attempt))
            return
        # Failures in which the peer took part are security events; a code that simply
        # ran out unused, or our own cancelling, is not.
        started = attempt.role == "typer" or attempt.machine.attempt is not None
        if started and reason not in ("cancelled", "disconnected", "no_code", "busy"):
            self._log_failure(attempt.peer, addr, attempt.role, reason)
        self._resolve(attempt, False, reason)

    def _log_failure(self, peer: str, addr: str | None, role: str, reason: str) -> None:
        # `handshake_fail` (not a new name): the monitor and its datasets know only the
        # DESIGN.md names, and a failed pairing is a failed authentication step. Repeated
        # failures (someone guessing codes) then feed the brute-force rules; a single
        # typo raises nothing. `identity_changed` would be wrong: its rule alerts
        # "impersonation, critical" on every occurrence, and a mistyped code is no proof
        # of one.
        self._security.record(
            "handshake_fail",
            peer=peer,
            addr=addr,
            detail={"reason": "pairing_failed", "outcome": reason, "role": role},
        )

    async def _verified(self, attempt: _Attempt) -> None:
        try:
            await self._store.run(Store.set_verified, attempt.peer, True)
        except (P2PMsgError, ValueError) as exc:
            log.warning(
                "pairing with %s matched but could not be recorded: %s", attempt.peer[:16], exc
            )
            self._resolve(attempt, False, "not_recorded")
            return
        with contextlib.suppress(P2PMsgError):
            await self._publish_peer(attempt.peer)
        self._resolve(attempt, True, "verified")

    def _resolve(self, attempt: _Attempt, ok: bool, reason: str) -> None:
        if attempt.outcome.done():
            return
        attempt.outcome.set_result(PairingOutcome(attempt.peer, ok, reason))
        self._bus.publish(PairingFinished(attempt.peer, ok, reason))
        asyncio.get_running_loop().call_later(KEEP_FINISHED, self._forget, attempt)

    def _forget(self, attempt: _Attempt) -> None:
        if self._attempts.get(attempt.peer) is attempt:
            del self._attempts[attempt.peer]

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for attempt in list(self._attempts.values()):
            if not attempt.ending:
                self._end(attempt, "cancelled", attempt.machine.cancel())
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        self._attempts.clear()
