"""Find peers on the LAN with mDNS/DNS-SD, and tell them about us.

We register `_p2pmsg._tcp.local.` with TXT `v`, `fp` and `name`, browse for
everyone else's, resolve their records without blocking the loop, and turn
what we see into typed events (`PeerAdvertised`, `PeerWithdrawn`). Every
advertisement is hostile input (see `advert.py`); a rejected one is counted
in `ignored`, never raised. Discovery is only a hint: the handshake decides
who a peer is, so nothing here is trusted for more than "try this address".

Networks change under a running node (DHCP renews, a cable, a VPN), so a
periodic check compares the local addresses with what we announced and, on
a difference, lets zeroconf rebind its sockets and re-announces the record.

A peer that vanishes without a goodbye (crash, cable) stays in the view
until zeroconf's cached records expire; liveness is the session layer's job,
not discovery's. Likewise an address a peer dropped may linger in its
merged address list until its record expires: dial them all, trust none.

Before any socket is made, `assert_mdns_allowed()` refuses to run in a
network namespace that the test suite declared off limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections import Counter
from collections.abc import Callable, Sequence

import ifaddr
from zeroconf import (
    InterfaceChoice,
    IPVersion,
    NonUniqueNameException,
    ServiceStateChange,
    Zeroconf,
)
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from p2pmsg import PROTOCOL_VERSION
from p2pmsg.errors import ConfigError, DiscoveryError
from p2pmsg.node.net.advert import (
    SERVICE_TYPE,
    DiscoveryEvent,
    InvalidAdvertisement,
    PeerAdvertised,
    PeerWithdrawn,
    build_txt,
    host_name,
    instance_name,
    merge,
    parse_advertisement,
)
from p2pmsg.node.net.netguard import assert_mdns_allowed

__all__ = [
    "SERVICE_TYPE",
    "Discovery",
    "DiscoveryEvent",
    "PeerAdvertised",
    "PeerWithdrawn",
    "local_addresses",
]

log = logging.getLogger(__name__)


def _parse_interfaces(interfaces: Sequence[str]) -> tuple[str, ...]:
    for text in interfaces:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            raise ConfigError(f"--interface expects an IP address, got {text!r}") from None
    return tuple(dict.fromkeys(interfaces))


def local_addresses(interfaces: Sequence[str] = (), include_v6: bool = False) -> tuple[str, ...]:
    """Addresses of this host that we should announce, sorted.

    Loopback is never announced; IPv6 link-local is left out because an
    address without its zone is useless to the peer. With `interfaces`, only
    those addresses that exist right now.
    """
    found: set[str] = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                text = ip.ip
            elif include_v6:
                text = ip.ip[0]
            else:
                continue
            address = ipaddress.ip_address(text)
            if address.is_loopback or (address.is_link_local and address.version == 6):
                continue
            if interfaces and text not in interfaces:
                continue
            found.add(text)
    return tuple(sorted(found))


class Discovery:
    """Announce ourselves and report other p2pmsg peers on the LAN.

    Events go to `on_event` when given, else to the bounded `events` queue
    (an overflow drops the event and counts `queue_overflow`; `peers` always
    holds the current view, so a consumer that fell behind can resync).
    Use as `async with Discovery(...) as d:` or call `start()` / `stop()`.
    """

    def __init__(
        self,
        *,
        fingerprint_hex: str,
        name: str,
        port: int,
        version: int = PROTOCOL_VERSION,
        interfaces: Sequence[str] = (),
        on_event: Callable[[DiscoveryEvent], None] | None = None,
        address_check_interval: float = 5.0,
        resolve_timeout: float = 3.0,
        max_instances: int = 256,
        queue_size: int = 1024,
    ) -> None:
        if not 1 <= port <= 65535:
            raise ConfigError(f"port must be 1-65535 to be advertised, got {port}")
        self._txt = build_txt(fingerprint_hex, name, version)
        self._fingerprint_hex = fingerprint_hex
        self._port = port
        self._interfaces = _parse_interfaces(interfaces)
        self._include_v6 = any(ipaddress.ip_address(i).version == 6 for i in self._interfaces)
        self._ip_version = IPVersion.All if self._include_v6 else IPVersion.V4Only
        self._on_event = on_event
        self._address_check_interval = address_check_interval
        self._resolve_timeout_ms = resolve_timeout * 1000
        self._max_instances = max_instances
        self._own_instance = instance_name(fingerprint_hex)

        self.events: asyncio.Queue[DiscoveryEvent] = asyncio.Queue(maxsize=queue_size)
        self.ignored: Counter[str] = Counter()
        self._instances: dict[str, PeerAdvertised] = {}  # instance name -> last valid advert
        self._peers: dict[str, PeerAdvertised] = {}  # fingerprint -> what we last reported
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self._resolve_again: set[str] = set()
        self._announced: tuple[str, ...] = ()
        self._info: AsyncServiceInfo | None = None
        self._aiozc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._announce_lock = asyncio.Lock()

    @property
    def peers(self) -> dict[str, PeerAdvertised]:
        """Current view, by fingerprint (a copy)."""
        return dict(self._peers)

    @property
    def announced_addresses(self) -> tuple[str, ...]:
        return self._announced

    async def __aenter__(self) -> Discovery:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._aiozc is not None:
            raise DiscoveryError("discovery is already running")
        assert_mdns_allowed()
        addresses = local_addresses(self._interfaces, self._include_v6)
        if self._interfaces and not addresses:
            raise DiscoveryError(
                "none of the --interface addresses exists on this host: "
                + ", ".join(self._interfaces)
            )
        choice: list[str] | InterfaceChoice = (
            list(self._interfaces) if self._interfaces else InterfaceChoice.All
        )
        try:
            self._aiozc = AsyncZeroconf(interfaces=choice, ip_version=self._ip_version)
        except OSError as exc:
            raise DiscoveryError(f"cannot open the mDNS sockets: {exc}") from exc
        try:
            self._announced = addresses
            self._info = self._service_info(addresses)
            try:
                await (await self._aiozc.async_register_service(self._info))
            except NonUniqueNameException:
                raise DiscoveryError(
                    "another host on this network already advertises this identity "
                    "(the same profile running twice?)"
                ) from None
            self._browser = AsyncServiceBrowser(
                self._aiozc.zeroconf, [SERVICE_TYPE], handlers=[self._on_state_change]
            )
            self._watch_task = asyncio.create_task(self._watch_addresses())
        except BaseException:
            await self._shutdown()
            raise

    async def stop(self) -> None:
        """Withdraw our record (goodbye packets) and close every socket."""
        await self._shutdown()

    async def refresh_addresses(self) -> bool:
        """Re-read the local addresses; on a change, rebind and re-announce. True if changed."""
        async with self._announce_lock:
            if self._aiozc is None:
                return False
            current = local_addresses(self._interfaces, self._include_v6)
            if current == self._announced:
                return False
            log.info("local addresses changed %s -> %s; announcing again", self._announced, current)
            self._announced = current
            # New interfaces need sockets joined to the group before we announce on them.
            await self._aiozc.async_update_interfaces()
            self._info = self._service_info(current)
            await (await self._aiozc.async_update_service(self._info))
            return True

    def _service_info(self, addresses: tuple[str, ...]) -> AsyncServiceInfo:
        return AsyncServiceInfo(
            SERVICE_TYPE,
            self._own_instance,
            port=self._port,
            properties=self._txt,
            server=host_name(self._fingerprint_hex),
            parsed_addresses=list(addresses),
        )

    async def _shutdown(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
            self._watch_task = None
        for task in list(self._resolving.values()):
            task.cancel()
        if self._resolving:
            await asyncio.gather(*self._resolving.values(), return_exceptions=True)
        self._resolving.clear()
        if self._browser is not None:
            await self._browser.async_cancel()
            self._browser = None
        if self._aiozc is not None:
            aiozc, self._aiozc = self._aiozc, None
            try:
                await aiozc.async_unregister_all_services()
            finally:
                await aiozc.async_close()

    async def _watch_addresses(self) -> None:
        while True:
            await asyncio.sleep(self._address_check_interval)
            try:
                await self.refresh_addresses()
            except Exception:  # a failed check must not end discovery
                log.warning("address check failed; will retry", exc_info=True)

    # Called by zeroconf on the event loop; the keyword names are its API.
    def _on_state_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if name == self._own_instance:
            return
        if state_change is ServiceStateChange.Removed:
            task = self._resolving.pop(name, None)
            if task is not None:
                task.cancel()
            self._resolve_again.discard(name)
            self._forget_instance(name)
            return
        if name in self._resolving:
            self._resolve_again.add(name)  # resolve once more when the current one ends
            return
        if name not in self._instances and (
            len(self._instances) + len(self._resolving) >= self._max_instances
        ):
            self.ignored["too_many_instances"] += 1
            return
        self._start_resolve(name)

    def _start_resolve(self, name: str) -> None:
        task = asyncio.create_task(self._resolve(name))
        self._resolving[name] = task
        task.add_done_callback(lambda done: self._resolve_done(name, done))

    def _resolve_done(self, name: str, task: asyncio.Task[None]) -> None:
        if self._resolving.get(name) is task:
            del self._resolving[name]
        if not task.cancelled() and task.exception() is not None:
            log.warning("resolving %r failed", name, exc_info=task.exception())
        if name in self._resolve_again and self._aiozc is not None:
            self._resolve_again.discard(name)
            self._start_resolve(name)

    async def _resolve(self, name: str) -> None:
        if self._aiozc is None:
            return
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(self._aiozc.zeroconf, self._resolve_timeout_ms):
            self.ignored["unresolved"] += 1
            return
        try:
            advert = parse_advertisement(
                info.text or b"", info.port, info.parsed_scoped_addresses(self._ip_version)
            )
        except InvalidAdvertisement as exc:
            self.ignored[exc.reason] += 1
            self._forget_instance(name)  # a record that turned invalid no longer counts
            return
        if advert.fingerprint_hex == self._fingerprint_hex:
            # Someone else claims our identity; never a peer of ours.
            self.ignored["own_fingerprint"] += 1
            return
        previous = self._instances.pop(name, None)  # re-insert: last = most recent
        self._instances[name] = advert
        if previous is not None and previous.fingerprint_hex != advert.fingerprint_hex:
            self._publish(previous.fingerprint_hex)
        self._publish(advert.fingerprint_hex)

    def _forget_instance(self, name: str) -> None:
        advert = self._instances.pop(name, None)
        if advert is not None:
            self._publish(advert.fingerprint_hex)

    def _publish(self, fingerprint_hex: str) -> None:
        """Report the merged state of one fingerprint if it changed."""
        merged = merge(a for a in self._instances.values() if a.fingerprint_hex == fingerprint_hex)
        previous = self._peers.get(fingerprint_hex)
        if merged is None:
            if previous is not None:
                del self._peers[fingerprint_hex]
                self._emit(PeerWithdrawn(fingerprint_hex))
        elif merged != previous:
            self._peers[fingerprint_hex] = merged
            self._emit(merged)

    def _emit(self, event: DiscoveryEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # the consumer's bug must not stop discovery
                log.exception("discovery event handler failed")
            return
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            self.ignored["queue_overflow"] += 1
