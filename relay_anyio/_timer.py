"""The session's timer task: the core's deadlines and the bounds on waits, in one task.

``TimerTask.run`` sleeps until the earliest of the core's next deadline (dial timeouts,
tombstones, ``max_duration``, pings, the silence watchdog) and the earliest bound on a wait
(``expire_at``: a request's reply, a hang-up's ``ended``), then expires what is due, runs
the core's timers and hands their events on. It never writes to the socket: it only asks
the writer to (a slow write must not delay a timer).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import anyio

from relay_proto import ClientConnection, Event

from ._waiters import Deadlines, Flag, event_factory

__all__ = ["TimerTask"]


class TimerTask:
    """Timers of one session: ``poke`` and ``expire_at`` from any task, ``run`` as a task."""

    __slots__ = ("_at", "_core", "_deadlines", "_dispatch", "_wakeup", "_want_write")

    def __init__(
        self,
        core: ClientConnection,
        dispatch: Callable[[list[Event]], None],
        want_write: Callable[[], None],
    ) -> None:
        self._core = core
        self._dispatch = dispatch
        self._want_write = want_write
        self._deadlines = Deadlines()
        self._wakeup: Flag = anyio.Event()
        self._at: float | None = None  # when the task will wake, None while it runs

    def poke(self) -> None:
        """Wake the task if the core's next deadline moved earlier."""
        self._wake_for(self._core.next_deadline())

    def expire_at(self, when: float, done: Callable[[], bool], expire: Callable[[], None]) -> None:
        """Bound a wait: at ``when`` the task calls ``expire()`` unless ``done()``."""
        if self._deadlines.add(when, done, expire):
            self._wake_for(when)

    def _wake_for(self, deadline: float | None) -> None:
        if deadline is not None and (self._at is None or deadline < self._at):
            self._wakeup.set()

    async def run(self, scope: anyio.CancelScope) -> None:
        # Shielded by ``scope``: a cancellation of the code around ``async with client``
        # must not stop the timers before the exit hang-ups are done.
        new_event = event_factory()
        with scope:
            while True:
                self._wakeup = new_event()
                self._at = _earliest(self._core.next_deadline(), self._deadlines.next_deadline())
                with anyio.CancelScope(deadline=math.inf if self._at is None else self._at):
                    await self._wakeup.wait()
                self._at = None
                now, stamp = anyio.current_time(), time.time()  # the ping carries wall-clock
                self._deadlines.expire_due(now)
                events = self._core.handle_timer(now=now, timestamp=stamp)
                if events:
                    self._dispatch(events)
                self._want_write()


def _earliest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None or a <= b else b
