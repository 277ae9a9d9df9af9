"""Giving memory back to the system: the daemon runs for months, and its peaks must not stay resident.

CPython frees objects to the C allocator, which keeps freed heap pages mapped. After a one-off peak
(a large backlog uploaded, a big reload) `give_back()` asks glibc to return what is free
(`malloc_trim(0)`, every arena). `limit_arenas()` caps glibc's per-thread arenas: the worker threads
of `asyncio.to_thread` would otherwise each grow an arena of their own that is rarely returned.
Both do nothing where glibc is not the C library.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

from controller.core.logs import get_logger

log = get_logger("memory")

M_ARENA_MAX = -8  # glibc mallopt parameter


@functools.cache
def _libc() -> Any | None:
    try:
        # The process's own symbols (the C library it runs on): no `find_library`, which runs ldconfig.
        libc = ctypes.CDLL(None)
        libc.malloc_trim  # noqa: B018 - glibc only
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(arenas: int = 2) -> bool:
    """At most `arenas` malloc arenas from now on (call before threads start). True if glibc took it."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, arenas) == 1)


def give_back(reason: str) -> bool:
    """Return the C heap's free pages to the system. True if anything was returned."""
    libc = _libc()
    if libc is None:
        return False
    released = bool(libc.malloc_trim(0))
    log.info("memory_given_back", reason=reason, released=released)
    return released
