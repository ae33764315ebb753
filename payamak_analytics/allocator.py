"""The C allocator's settings for a long sync in its own process (`payamak sync`, `payamak watch`).

glibc gives every thread that allocates its own heap (an arena) and keeps what each one once
took: eight fetching threads, each parsing pages of a few megabytes, held some 40 MB that no page
needed any more (measured in benchmarks/RESULTS.md). Two arenas, and large blocks given back to
the system as soon as they are freed, keep a sync's memory flat. Only the command line sets this:
it changes the whole process, which in a notebook is the user's. There, `MALLOC_ARENA_MAX=2` in
the environment before Python starts has the same effect.
"""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD = -3  # glibc's malloc.h: blocks at least this large are mapped, and unmapped when freed
M_ARENA_MAX = -8  # glibc's malloc.h: at most this many heaps, whatever the number of threads
ARENAS = 2
MAPPED_FROM = 1 << 20  # a page's text columns and parse buffers are larger; small objects are not


def lean_heap() -> bool:
    """Set glibc's allocator for a long sync; False where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_ARENA_MAX, ARENAS)) and bool(mallopt(M_MMAP_THRESHOLD, MAPPED_FROM))
