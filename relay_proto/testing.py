"""Test helpers: a client core wired to the simulator's server core, in memory.

``Pair`` is for property-testing code built on ``relay_proto`` (h11's ``ConnectionPair``
idea): a real ``ClientConnection`` talks to a ``ServerConnection`` of a real
``Simulator``, frames move only when you call ``pump()``, and time moves only when you
call ``advance()`` or ``run_until()``. Nothing sleeps, nothing reads a clock, and ids are
deterministic by default (requests ``req-1``, ``req-2``, ...; tags ``tag-1``, ...), so a
failing run replays exactly::

    from relay_proto import DialAnswered
    from relay_proto.testing import Outcome, OutcomeKind, Pair, Scenario, phone

    pair = Pair(scenario=Scenario(default=Outcome(kind=OutcomeKind.ANSWER, after=2)))
    pair.connect()
    tag = pair.client.dial([[phone("+15550000002")]], now=pair.now)
    events = pair.run_until(lambda: tag not in pair.client.pending_dials, max_seconds=60)
    assert any(isinstance(e, DialAnswered) for e in events)

Semantics, as a real socket would have them:

* ``pump()`` moves frames both ways until both outboxes are empty. When the simulator
  closes the socket (after a ``signalwire.disconnect`` reply, or the ``drop_after_frames``
  fault), the frames it queued first are still delivered, then both sides see
  ``connection_lost``. ``RemoteProtocolError`` from the client (e.g. the ``garbage``
  fault) is recorded in ``protocol_errors`` and the frame skipped, as an adapter would.
* ``drop()`` loses the socket abruptly: frames not yet delivered, either way, are lost.
  The client's in-flight requests and the session's un-acked events carry over to the
  next ``connect()`` as the protocol says.
* ``advance()`` steps through every client and simulator deadline on the way, in order,
  so timers fire at their own time; the client is not disconnected for you on
  ``LivenessLost`` (check ``events`` if you care).

Only this pair's own connections are drained: a ``ServerConnection`` you open yourself on
``pair.simulator`` is yours to drain. Frame logs and ``events`` grow without bound; a
pair is meant to live for one test.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ._connection import ClientConnection
from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import Event
from .simulator import (
    Faults,
    LiveCall,
    Outcome,
    OutcomeKind,
    Refusal,
    Scenario,
    ServerConnection,
    Simulator,
)

__all__ = [
    "Faults",
    "LiveCall",
    "Outcome",
    "OutcomeKind",
    "Pair",
    "Refusal",
    "Scenario",
    "Simulator",
    "counter",
    "phone",
]


_MAX_TICKS_PER_INSTANT = 1000


def counter(prefix: str) -> Callable[[], str]:
    """A deterministic id factory: ``prefix1``, ``prefix2``, ..."""
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


def phone(to_number: str, *, from_number: str = "+15550000001", **params: Any) -> dict[str, Any]:
    """A ``phone`` device for a dial plan; extra ``params`` (``timeout``, ...) are added."""
    return {
        "type": "phone",
        "params": {"to_number": to_number, "from_number": from_number, **params},
    }


class Pair:
    """A ``ClientConnection`` and a ``Simulator`` joined by an in-memory socket.

    ``client_kwargs`` go to ``ClientConnection`` (defaults: project ``"project"`` and token
    ``"token"`` unless ``jwt_token`` is given, deterministic id and tag factories);
    ``simulator_kwargs`` go to ``Simulator`` (e.g. ``resume_grace``, ``credentials``).
    The clock starts at ``start``.
    """

    def __init__(
        self,
        *,
        scenario: Scenario | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        simulator_kwargs: Mapping[str, Any] | None = None,
        start: float = 0.0,
    ) -> None:
        kwargs: dict[str, Any] = {
            "id_factory": counter("req-"),
            "tag_factory": counter("tag-"),
            **(client_kwargs or {}),
        }
        if "jwt_token" not in kwargs:
            kwargs.setdefault("project", "project")
            kwargs.setdefault("token", "token")
        self.client = ClientConnection(**kwargs)
        self.simulator = Simulator(scenario=scenario, **(simulator_kwargs or {}))
        self._now = start
        #: The current server-side socket, or None while disconnected.
        self.server: ServerConnection | None = None
        #: Every server-side socket this pair opened, oldest first.
        self.connections: list[ServerConnection] = []
        #: Every client event so far, in order (from ``receive``, ``handle_timer``, ...).
        self.events: list[Event] = []
        #: Every frame the client wrote (delivered or lost with a socket), in order.
        self.client_frames: list[str] = []
        #: Every frame the simulator delivered to the client, in order.
        self.server_frames: list[str] = []
        #: ``RemoteProtocolError``s the client raised on received frames (frame skipped).
        self.protocol_errors: list[RemoteProtocolError] = []

    def __repr__(self) -> str:
        return f"<Pair now={self._now:g} connected={self.connected} client={self.client!r}>"

    @property
    def now(self) -> float:
        """The fake clock."""
        return self._now

    @property
    def connected(self) -> bool:
        return self.server is not None

    # ------------------------------------------------------------------ the socket

    def connect(self) -> list[Event]:
        """Open a socket, send ``signalwire.connect`` (a resume if the client has a
        session) and pump. Returns the events produced."""
        if self.server is not None:
            raise LocalProtocolError("the pair is already connected; drop() it first")
        self.client.connect(now=self._now)  # raises first if the client is not IDLE
        self.server = self.simulator.open_connection(self._now)
        self.connections.append(self.server)
        return self.pump()

    def drop(self, *, written: bool = True) -> list[Event]:
        """Lose the socket abruptly (no-op while disconnected); undelivered frames are lost.

        ``written``: whether what the client had queued was drained (written to the dying
        socket, so its fate is unknown) or never left the client before the loss.
        """
        if self.server is None:
            return []
        return self._lose(self.server, written=written)

    def reconnect(self) -> list[Event]:
        """``drop()`` (if connected), then ``connect()``."""
        return self.drop() + self.connect()

    def pump(self) -> list[Event]:
        """Move frames both ways until neither side has anything to send."""
        events: list[Event] = []
        while (server := self.server) is not None:
            outgoing = self.client.data_to_send()
            self.client_frames.extend(outgoing)
            for text in outgoing:
                server.receive(text, self._now)
            incoming = server.data_to_send()
            for text in incoming:
                self.server_frames.append(text)
                try:
                    events.extend(self.client.receive(text, now=self._now))
                except RemoteProtocolError as exc:
                    self.protocol_errors.append(exc)
            if server.closed:
                events.extend(self._lose(server))
            elif not outgoing and not incoming:
                break
        self.events.extend(events)
        return events

    def _lose(self, server: ServerConnection, *, written: bool = True) -> list[Event]:
        self.server = None
        if written:  # written to the dying socket: it never arrives
            self.client_frames.extend(self.client.data_to_send())
        server.connection_lost(self._now)
        events = self.client.connection_lost(now=self._now)
        self.events.extend(events)
        return events

    # ------------------------------------------------------------------ the clock

    def advance(self, seconds: float) -> list[Event]:
        """Move the clock forward, firing every deadline on the way; return the events."""
        events: list[Event] = []
        for step in self._steps(seconds):
            events.extend(step)
        return events

    def run_until(self, predicate: Callable[[], bool], max_seconds: float) -> list[Event]:
        """Advance step by step until ``predicate()`` holds; return the events produced.

        The clock stops at the step where it first holds (it is checked before any time
        passes, too). Raises ``TimeoutError`` if it still does not hold ``max_seconds`` on.
        """
        events: list[Event] = []
        if predicate():
            return events
        for step in self._steps(max_seconds):
            events.extend(step)
            if predicate():
                return events
        raise TimeoutError(f"predicate still false after {max_seconds:g} s (now={self._now:g})")

    def _next_deadline(self) -> float | None:
        deadlines = (self.client.next_deadline(), self.simulator.next_deadline())
        return min((d for d in deadlines if d is not None), default=None)

    def _steps(self, seconds: float) -> Iterator[list[Event]]:
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"seconds must be finite and >= 0, got {seconds!r}")
        target = self._now + seconds
        ticks_here = 0
        while (due := self._next_deadline()) is not None and due < target:
            if due > self._now:
                self._now, ticks_here = due, 0
            # Input handled at a tick may start timers due at once (an outcome ``after=0``):
            # tick again at the same instant, but not forever.
            ticks_here += 1
            if ticks_here > _MAX_TICKS_PER_INSTANT:
                raise AssertionError(f"a deadline at {due} does not fire at {self._now}")
            yield self._tick()
        self._now = target
        yield self._tick()

    def _tick(self) -> list[Event]:
        self.simulator.handle_timer(self._now)
        events = self.client.handle_timer(now=self._now)
        # The core's contract: after handle_timer(now), nothing it knows of is due at now
        # (a driver looping on next_deadline() would otherwise spin).
        due = self.client.next_deadline()
        if due is not None and due <= self._now:
            raise AssertionError(f"client deadline {due} still due after handle_timer({self._now})")
        self.events.extend(events)
        return events + self.pump()
