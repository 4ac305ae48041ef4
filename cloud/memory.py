"""Keeps the cloud process's resident memory flat while it streams large jobs."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# glibc mallopt parameters (malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def limit_allocator_caching() -> None:
    """Stops glibc from keeping freed 1 MiB stream buffers in per-thread arenas.

    Chunks are allocated on gRPC and asyncio.to_thread worker threads; by default glibc raises
    its mmap threshold after the first free and then caches such buffers per thread, which adds
    ~60 MB of RSS during a transfer. Two arenas and a fixed 256 KiB threshold return them at once.
    """
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.debug("no glibc mallopt here; allocator left as it is")
        return
    mallopt(_M_ARENA_MAX, 2)
    mallopt(_M_MMAP_THRESHOLD, 256 * 1024)
