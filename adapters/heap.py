"""Giving freed heap memory back to the system (glibc's `malloc_trim`): every few seconds
from the daemon's supervisor, and after a mint whose ledger trees were hashed in a thread.

CPython hands objects larger than 512 bytes, and its own 1 MiB arenas when the heap is
fragmented, to the C library's malloc. glibc keeps what is freed in its heaps for reuse
and returns it to the system only when the top of a heap is free: under the daemon's
steady churn (buckets, HTTP buffers, SQL rows of each poll) the resident size creeps up
by the freed pages in between. `malloc_trim(0)` releases every free page of every heap
(about 1 MB each time in `bench/soak.py`, 0.2 ms of CPU), so the resident size stays
the live one (docs/performance.md, "Daemon memory"). Each thread allocates from a heap of
its own: what a thread that hashed a large mint's trees freed would otherwise stay
resident beside what the mint's next steps allocate elsewhere. Elsewhere than glibc
(musl) there is no `malloc_trim` and this does nothing.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

TRIM_INTERVAL_S = 15.0


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None


def release_free_memory() -> bool:
    """Return the C heap's free pages to the system; False when the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
