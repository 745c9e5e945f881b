"""The TCP listener: bind, admit or refuse, hand accepted sockets to the node.

Admission runs before any cryptography: a refused connection costs one
`accept`, one `rate_limited` event and an immediate close, so a flood from
one host costs that host far more than it costs us.

With several `--interface` addresses the listener binds each of them on one
port (the port we advertise); with none it binds every address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Sequence

from p2pmsg.errors import ConfigError
from p2pmsg.node.net.admission import Admission, AdmissionControl

log = logging.getLogger(__name__)

#: Accepted connection: streams, remote address, and the admission slot to release.
OnAccept = Callable[[asyncio.StreamReader, asyncio.StreamWriter, str, Admission], None]
OnRefuse = Callable[[str, str], None]


class Listener:
    def __init__(
        self,
        admission: AdmissionControl,
        on_accept: OnAccept,
        on_refuse: OnRefuse,
        clock: Callable[[], float],
        contact_address: Callable[[str], bool] = lambda _address: False,
    ) -> None:
        self._admission = admission
        self._contact_address = contact_address
        self._on_accept = on_accept
        self._on_refuse = on_refuse
        self._clock = clock
        self._servers: list[asyncio.Server] = []
        self.port = 0

    async def start(self, hosts: Sequence[str], port: int) -> int:
        """Bind and start accepting; returns the port (useful with port 0).

        Every socket gets the same port: with port 0 the first bind picks it and the
        others reuse it (binding all families at once would give each its own
        ephemeral port, and we could advertise only one of them).
        """
        bind_hosts = list(hosts) or ["0.0.0.0"]  # noqa: S104 - a LAN messenger listens
        try:
            for host in bind_hosts:
                await self._bind(host, port or self.port)
        except OSError as exc:
            await self.stop()
            raise ConfigError(
                f"cannot listen on {', '.join(bind_hosts)} port "
                f"{port or self.port}: {exc.strerror or exc}"
            ) from None
        if not hosts:
            with contextlib.suppress(OSError):  # IPv6 as well where the host has it
                await self._bind("::", self.port)
        return self.port

    async def _bind(self, host: str, port: int) -> None:
        server = await asyncio.start_server(
            self._accepted, host=host, port=port, backlog=128, reuse_address=True
        )
        self._servers.append(server)
        if not self.port:
            self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._servers.clear()

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        address = str(peername[0]) if peername else "?"
        verdict = self._admission.admit(
            address, self._clock(), contact_address=self._contact_address(address)
        )
        if isinstance(verdict, str):
            self._on_refuse(address, verdict)
            sock = writer.get_extra_info("socket")
            if sock is not None:
                # RST instead of FIN: no TIME_WAIT on our side for a refused connection.
                with contextlib.suppress(OSError):
                    sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
            writer.transport.abort()
            return
        try:
            self._on_accept(reader, writer, address, verdict)
        except Exception:
            log.exception("accepting a connection from %s failed", address)
            verdict.release()
            writer.transport.abort()
