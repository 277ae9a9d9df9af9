"""Shutting down the simulator's raw TCP listeners (EMOP meters, M-Bus gateways) cleanly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Protocol


class TracksConnections(Protocol):
    """A simulated peer that keeps its open connections and their handler tasks."""

    handlers: set[asyncio.Task[None]]
    writers: set[asyncio.StreamWriter]


async def close_listeners(listeners: list[asyncio.Server], peers: Iterable[TracksConnections]) -> None:
    """Stop listening, close the open connections too, and let their handlers finish before the loop
    goes away (a handler cut off mid-answer would log a spurious error)."""
    for s in listeners:
        s.close()
    handlers: set[asyncio.Task[None]] = set()
    for peer in peers:
        for w in list(peer.writers):
            w.close()
        handlers |= peer.handlers
    if handlers:
        await asyncio.wait(handlers, timeout=5)
    for s in listeners:
        with contextlib.suppress(Exception):
            await s.wait_closed()
    listeners.clear()
