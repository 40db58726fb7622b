"""One timer heap for both roles.

Clock-free: every time is an argument. ``TimerQueue`` holds ``(when, payload)`` entries;
``schedule`` returns an integer handle that ``cancel(handle)`` takes (lazy cancellation:
the entry stays in the heap and is skipped). Handles are plain ints and heap entries plain
tuples (reason: a client keeps two timers per dial for a minute after it resolves; tuples
of atomic values are untracked by the garbage collector, objects would be walked at every
collection). Invariants:

* ``pop_due(now)`` returns due entries earliest first, ties in scheduling order, and never
  a cancelled one; an entry is live from ``schedule`` until it is popped or cancelled.
* ``next_deadline()`` is the earliest live deadline, or None.
* Cancelled entries never outnumber live ones by more than a constant: the heap is
  compacted when they do, so it stays proportional to what is scheduled (amortised O(1)).
"""

from __future__ import annotations

import heapq
from typing import Generic, TypeVar

__all__ = ["TimerHandle", "TimerQueue"]

T = TypeVar("T")

#: What ``schedule`` returns and ``cancel`` takes.
TimerHandle = int

_SLACK = 64


class TimerQueue(Generic[T]):
    """A heap of timers with lazy cancellation. See the module docstring."""

    __slots__ = ("_heap", "_live", "_seq")

    def __init__(self) -> None:
        # (when, handle, payload): tuples compare in C, and handles are unique, so ties
        # stop there and the payload is never compared.
        self._heap: list[tuple[float, int, T]] = []
        self._live: set[int] = set()
        self._seq = 0

    def __len__(self) -> int:
        """Live (scheduled, not yet popped or cancelled) timers."""
        return len(self._live)

    def schedule(self, when: float, payload: T) -> TimerHandle:
        self._seq = handle = self._seq + 1
        self._live.add(handle)
        heapq.heappush(self._heap, (when, handle, payload))
        return handle

    def cancel(self, handle: TimerHandle) -> None:
        """Forget a timer; a no-op once it has fired or been cancelled."""
        live = self._live
        if handle in live:
            live.remove(handle)
            heap = self._heap
            if len(heap) > _SLACK + 2 * len(live):
                self._heap = [entry for entry in heap if entry[1] in live]
                heapq.heapify(self._heap)

    def next_deadline(self) -> float | None:
        heap, live = self._heap, self._live
        while heap and heap[0][1] not in live:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> tuple[float, T] | None:
        """The earliest live entry due at ``now`` as ``(when, payload)``, removed; or None."""
        deadline = self.next_deadline()
        if deadline is None or deadline > now:
            return None
        when, handle, payload = heapq.heappop(self._heap)
        self._live.remove(handle)
        return when, payload
