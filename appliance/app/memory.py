"""Fewer idle megabytes from glibc's allocator and from huge pages, for a
board with 512 MB.

A call keeps a dozen threads (decoders, the compositor's and the speaker's
workers, aiortc's) allocating picture-sized buffers. By default glibc gives
threads arenas of their own (up to eight per core), and after the first large
buffer is freed it raises its mmap threshold to that size, so later frames of
1-3 MB come from those arenas and their freed space stays resident. Two arenas
and a fixed 128 KiB threshold (large buffers mapped, and unmapped when freed)
took a four-party call from 186 to 157 MB resident on the benchmark machine.

libx264 and numpy ask the kernel for transparent huge pages for every buffer
of 2 MB or more (``madvise``), and a huge page is resident whole even where
nothing is written: x264 sizes its bitstream buffers for the worst case and
touches little of them. Turning huge pages off for the process took the same
call from 157 to 149 MB (docs/performance.md).

>>> limit_malloc()  # glibc (Debian, Pi OS)
True
>>> from pathlib import Path
>>> off = no_huge_pages()  # False where the kernel is out of reach (qemu-user)
>>> off == ("THP_enabled:\\t0" in Path("/proc/self/status").read_text())
True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)
M_MMAP_THRESHOLD = -3  # glibc's malloc.h; setting it also stops the dynamic threshold
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 128 * 1024
PR_SET_THP_DISABLE = 41  # linux/prctl.h


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError as exc:
        log.debug("no C library to tune: %s", exc)
        return None


def limit_malloc() -> bool:
    """Sets the two glibc options; False (and a debug line) on another C library."""
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        log.debug("malloc left as it is: no mallopt")
        return False
    return bool(mallopt(M_ARENA_MAX, ARENAS)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def no_huge_pages() -> bool:
    """Turns transparent huge pages off for this process and its children
    (``PR_SET_THP_DISABLE``); False (and a debug line) where that fails."""
    libc = _libc()
    prctl = getattr(libc, "prctl", None)
    if prctl is None or prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0:
        log.debug("huge pages left as they are: %s", os.strerror(ctypes.get_errno()) if prctl else "no prctl")
        return False
    return True
