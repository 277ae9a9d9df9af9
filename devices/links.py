"""What devices of one site share: the socket limit of an Emlite link, the connection to an M-Bus gateway.

The caller (the composition root) creates one `DeviceLinks` and keeps it across reloads, so a
reload that recreates one meter's driver does not give it a limiter or a gateway of its own: the
router still carries at most its socket limit, and the half-duplex bus still hears one request at a time.
"""

from __future__ import annotations

import asyncio

from devices.heat_mbus.gateway import MbusGateway


class DeviceLinks:
    """Shared resources by name, created on first use (the first meter on a link sets its limit)."""

    def __init__(self) -> None:
        self.emop_links: dict[str, asyncio.Semaphore] = {}
        self.mbus_gateways: dict[tuple[str, int], MbusGateway] = {}

    def emop_link(self, link: str, max_connections: int) -> asyncio.Semaphore:
        """The one semaphore of `link`; later meters with another `max_connections` share the first size."""
        if link not in self.emop_links:
            self.emop_links[link] = asyncio.Semaphore(max_connections)
        return self.emop_links[link]

    def mbus_gateway(self, host: str, port: int) -> MbusGateway:
        """The one connection to the gateway at host:port, shared by every meter behind it."""
        key = (host, port)
        if key not in self.mbus_gateways:
            self.mbus_gateways[key] = MbusGateway(host, port)
        return self.mbus_gateways[key]
