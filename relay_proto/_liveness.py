"""Liveness of one socket: the ping schedule and the inbound-silence watchdog.

PROTOCOL.md: liveness comes from pings and silence, never from per-request timeouts. The
session calls ``start`` when it writes ``signalwire.connect``, ``ready`` when the connect
succeeds, sets ``last_heard`` for every inbound message (an attribute, not a method: it
happens for every frame) and calls ``stop`` when the socket is gone;
``check`` says what is due (it sends nothing itself: the session sends the ping and
reports it with ``ping_sent``).

Invariants: at most one ping is outstanding; a ping still unanswered when the next one is
due counts as one failure; ``max_failures`` consecutive failures, or ``silence_timeout``
seconds without any inbound message, report ``LivenessLost`` once per socket; an answered
ping (even an error reply) proves the peer alive.
"""

from __future__ import annotations

from ._events import LivenessLost


class Liveness:
    def __init__(
        self, *, ping_interval: float | None, max_failures: int, silence_timeout: float | None
    ) -> None:
        self._interval = ping_interval
        self._max_failures = max_failures
        self._silence = silence_timeout
        #: When the last inbound message came (None without a socket): the silence watchdog.
        self.last_heard: float | None = None
        self._next_ping_at: float | None = None
        self.ping_id: str | None = None
        self._failures = 0
        self._reported = False

    def start(self, now: float) -> None:
        self.last_heard = now
        self._next_ping_at = None
        self._failures = 0
        self._reported = False

    def ready(self, now: float) -> None:
        if self._interval is not None:
            self._next_ping_at = now + self._interval

    def stop(self) -> str | None:
        """The socket is gone; return the id of the ping that will never be answered."""
        ping_id, self.ping_id = self.ping_id, None
        self.last_heard = self._next_ping_at = None
        return ping_id

    def answered(self, *, ok: bool) -> None:
        """The outstanding ping got a reply (``ok``: a result, not an error)."""
        self.ping_id = None
        if ok:
            self._failures = 0

    def deadlines(self, *, pinging: bool) -> tuple[float | None, float | None]:
        """``(next ping, silence limit)``; the ping only while ``pinging`` (READY)."""
        if self._reported:
            return None, None
        ping_at = self._next_ping_at if pinging else None
        silence_at = (
            None
            if self._silence is None or self.last_heard is None
            else self.last_heard + self._silence
        )
        return ping_at, silence_at

    def check(self, now: float, *, pinging: bool) -> tuple[LivenessLost | None, str | None, bool]:
        """Act on what is due: ``(LivenessLost or None, id of a ping given up on or None,
        whether a ping must be sent now)``; report a sent ping with ``ping_sent``."""
        ping_at, silence_at = self.deadlines(pinging=pinging)
        if silence_at is not None and now >= silence_at:
            self._reported = True
            lost = LivenessLost(reason=f"no frame from the server for {self._silence:g} s")
            return lost, None, False
        if ping_at is None or now < ping_at:
            return None, None, False
        missed, self.ping_id = self.ping_id, None
        if missed is not None:
            self._failures += 1
            if self._failures >= self._max_failures:
                self._reported = True
                return LivenessLost(reason=f"{self._failures} pings went unanswered"), missed, False
        return None, missed, True

    def ping_sent(self, now: float, ping_id: str) -> None:
        """The ping ``check`` asked for has been queued as ``ping_id``."""
        assert self._interval is not None
        self.ping_id = ping_id
        self._next_ping_at = now + self._interval
