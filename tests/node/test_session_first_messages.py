"""What a peer sends the moment its handshake completes reaches us, also when we send
something ourselves while we decide whether to trust that peer.

The initiator's handshake completes first; a node then sends at once (its group
summaries, its outbox), so those records can arrive in the same read as the last
handshake message, and wait in the responder's connection while the responder
decides trust. The responder's own sends in that decision (session_ready: group
summaries) pump the connection's events; that pump once discarded the waiting
messages, so a group summary was lost and, summaries being told once per session,
the member that sent it never got the posts it lacked (the LAN test of groups
caught it). Two real `Session`s over real loopback TCP, real `PeerConnection`s.
"""

from __future__ import annotations

import asyncio
import os
import time

from p2pmsg.crypto.identity import Identity
from p2pmsg.node.net.session import Session
from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import UserMessage
from p2pmsg.protocol.messages import GroupSummaryMessage
from tests.node.test_session_reader import Recorder, _close


class SaysHello(Recorder):
    """Sends a summary from inside `authenticated`, as the node's session_ready does,
    and keeps every message that arrives."""

    def __init__(self, group: bytes) -> None:
        super().__init__()
        self.hello = GroupSummaryMessage(group, (), ())
        self.got: list[UserMessage] = []

    async def authenticated(self, session: Session) -> bool:
        await asyncio.sleep(0)  # a decision takes a store round trip
        session.send_messages([self.hello])
        return True

    def received(self, session: Session, messages: list[UserMessage]) -> None:
        self.got.extend(messages)
        self.arrived.set()


async def test_messages_sent_right_after_the_handshake_survive_our_own_sends() -> None:
    server_side: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.get_running_loop().create_future()
    )

    async def on_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_side.set_result((reader, writer))

    server = await asyncio.start_server(on_accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader_a, writer_a = await asyncio.open_connection("127.0.0.1", port)
    reader_b, writer_b = await server_side
    server.close()
    alice, bob = SaysHello(b"a" * 16), SaysHello(b"b" * 16)
    a = Session(
        PeerConnection("initiator", Identity.generate(os.urandom), "a", os.urandom, time.time),
        reader_a,
        writer_a,
        alice,
        remote_address="b",
    )
    b = Session(
        PeerConnection("responder", Identity.generate(os.urandom), "b", os.urandom, time.time),
        reader_b,
        writer_b,
        bob,
        remote_address="a",
    )
    tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    try:
        async with asyncio.timeout(10):
            for who in (alice, bob):
                while not who.got:
                    who.arrived.clear()
                    await who.arrived.wait()
        assert alice.got == [bob.hello]
        assert bob.got == [alice.hello]  # sent with the last handshake message: kept
    finally:
        await _close(a, b, tasks)
