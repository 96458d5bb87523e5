"""The memory of committed QoS 1 messages that recognises a broker's redelivered copies.

When a connection dies, the broker redelivers (DUP set, same packet id) every message
whose PUBACK it never processed, including messages heliod had already stored. Finding a
copy here, heliod acknowledges it again without storing a second reading. Only the last
Receive Maximum messages can be in doubt, so only that many are kept.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict


def digest(topic: str, payload: bytes | bytearray) -> bytes:
    """What identifies a message's content: 128 bits of BLAKE2b over its topic and payload."""
    h = hashlib.blake2b(topic.encode(), digest_size=16)
    h.update(payload)
    return h.digest()


class Committed:
    """The latest committed messages: packet id -> (session, digest); not thread-safe."""

    def __init__(self, size: int) -> None:
        self._size = size
        # A digest, not the payload: kept payloads of refused megabyte messages once held
        # 800 MB here.
        self._by_mid: OrderedDict[int, tuple[int, bytes]] = OrderedDict()

    def clear(self) -> None:
        """Forget everything: a new session numbers its packets afresh."""
        self._by_mid.clear()

    def has(self, mid: int, session: int, content: bytes) -> bool:
        """True if this message (packet id, session and content) was committed."""
        return self._by_mid.get(mid) == (session, content)

    def add(self, mid: int, session: int, content: bytes) -> None:
        """Remember a committed message, forgetting the oldest past `size`."""
        self._by_mid[mid] = (session, content)
        self._by_mid.move_to_end(mid)  # newest last
        if len(self._by_mid) > self._size:
            self._by_mid.popitem(last=False)
