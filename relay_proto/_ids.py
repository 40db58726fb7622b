"""Id factories shared by both roles: request ids, tags, control ids, call ids.

Every factory is a zero-argument callable returning a fresh string, so callers (and tests)
can inject their own. Randomness comes from ``os.urandom``; ``uuid`` is not imported (it
drags in ``platform`` and more, and the core keeps its imports few).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

__all__ = ["IdFactory", "counter_ids", "sequential_uuids", "uuid4", "uuid4_batched"]

#: A source of fresh ids.
IdFactory = Callable[[], str]


def _format(h: str) -> str:
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def uuid4() -> str:
    """A random (version 4) UUID string."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return _format(raw.hex())


def uuid4_batched(batch: int = 512) -> IdFactory:
    """Random version-4 UUID strings, reading the OS randomness ``batch`` ids at a time.

    Several times cheaper than one ``os.urandom`` call per id (a simulator mints an id
    for every event). Each id keeps 120 random bits; the variant nibble is always ``8``.
    """
    hexes, pos = "", 0

    def new_id() -> str:
        nonlocal hexes, pos
        if pos >= len(hexes):
            hexes, pos = os.urandom(15 * batch).hex(), 0
        h = hexes[pos : pos + 30]
        pos += 30
        return f"{h[:8]}-{h[8:12]}-4{h[12:15]}-8{h[15:18]}-{h[18:]}"

    return new_id


def counter_ids() -> IdFactory:
    """Request ids: a random prefix per factory, then a counter.

    Request ids only need to be unique within a session; this is cheaper than a UUID per
    frame.
    """
    prefix = os.urandom(6).hex() + "-"
    count = itertools.count(1)
    return lambda: prefix + str(next(count))


def sequential_uuids() -> IdFactory:
    """Deterministic UUID-shaped ids for tests: ``00000000-0000-4000-8000-000000000001``, ..."""
    count = itertools.count(1)
    return lambda: f"00000000-0000-4000-8000-{next(count):012x}"
