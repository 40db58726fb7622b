"""One timer heap for both roles.

Clock-free: every time is an argument. ``TimerQueue`` holds ``(when, payload)`` entries;
``schedule`` returns a handle whose ``cancel()`` makes the queue skip it (lazy
cancellation). Invariants:

* ``pop_due(now)`` returns due timers earliest first, ties in scheduling order, and never
  a cancelled one.
* ``next_deadline()`` is the earliest live deadline, or None.
* Cancelled entries never outnumber live ones by more than a constant: the heap is
  compacted when they do, so it stays proportional to what is scheduled (amortised O(1)).
"""

from __future__ import annotations

import heapq
from typing import Generic, TypeVar

__all__ = ["Timer", "TimerQueue"]

T = TypeVar("T")

_SLACK = 64


class Timer(Generic[T]):
    """A scheduled entry; ``cancel()`` makes the queue skip it."""

    __slots__ = ("_queue", "cancelled", "payload", "when")

    def __init__(self, queue: TimerQueue[T], when: float, payload: T) -> None:
        self._queue = queue
        self.when = when
        self.payload = payload
        self.cancelled = False

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self._queue.note_cancelled()

    def __repr__(self) -> str:
        state = " cancelled" if self.cancelled else ""
        return f"<Timer at {self.when:g}{state} {self.payload!r}>"


class TimerQueue(Generic[T]):
    """A heap of timers with lazy cancellation. See the module docstring."""

    __slots__ = ("_cancelled", "_heap", "_seq")

    def __init__(self) -> None:
        # (when, seq, timer): tuples compare in C, and ``seq`` is unique, so ties stop there.
        self._heap: list[tuple[float, int, Timer[T]]] = []
        self._seq = 0
        self._cancelled = 0

    def __len__(self) -> int:
        """Live (not cancelled) timers."""
        return len(self._heap) - self._cancelled

    def schedule(self, when: float, payload: T) -> Timer[T]:
        timer = Timer(self, when, payload)
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, timer))
        return timer

    def note_cancelled(self) -> None:
        """Called by ``Timer.cancel``: compact when cancelled entries pile up."""
        self._cancelled += 1
        if self._cancelled > _SLACK + len(self._heap) // 2:
            self._heap = [entry for entry in self._heap if not entry[2].cancelled]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
            self._cancelled -= 1
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> Timer[T] | None:
        """The earliest live timer due at ``now``, removed from the queue; or None."""
        deadline = self.next_deadline()
        if deadline is None or deadline > now:
            return None
        timer = heapq.heappop(self._heap)[2]
        timer.cancelled = True  # fired: a later cancel() is a no-op and counts nothing
        return timer
