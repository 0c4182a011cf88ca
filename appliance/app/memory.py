"""Fewer idle megabytes from glibc's allocator, for a board with 512 MB.

A call keeps a dozen threads (decoders, the compositor's and the speaker's
workers, aiortc's) allocating picture-sized buffers. By default glibc gives
threads arenas of their own (up to eight per core), and after the first large
buffer is freed it raises its mmap threshold to that size, so later frames of
1-3 MB come from those arenas and their freed space stays resident. Two arenas
and a fixed 128 KiB threshold (large buffers mapped, and unmapped when freed)
took a four-party call from 186 to 157 MB resident on the benchmark machine
(docs/performance.md).

>>> limit_malloc()  # glibc (Debian, Pi OS)
True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)
M_MMAP_THRESHOLD = -3  # glibc's malloc.h; setting it also stops the dynamic threshold
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 128 * 1024


def limit_malloc() -> bool:
    """Sets the two glibc options; False (and a debug line) on another C library."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError) as exc:
        log.debug("malloc left as it is: %s", exc)
        return False
    return bool(mallopt(M_ARENA_MAX, ARENAS)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
