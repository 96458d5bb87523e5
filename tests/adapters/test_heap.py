"""Freed heap memory goes back to the system (adapters/heap.py)."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from heliod.adapters.heap import release_free_memory


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_blocks_are_returned() -> None:
    # 30 MB in blocks of 2 KB (malloc's, not Python's small-object arenas), then a block
    # after them that stays: the heap's top is in use, so glibc keeps the freed pages.
    blocks = [bytearray(2048) for _ in range(15_000)]
    keep = bytearray(2048)
    del blocks
    before = _rss_kb()
    assert release_free_memory()
    after = _rss_kb()
    assert before - after > 20_000, (before, after)
    assert len(keep) == 2048
