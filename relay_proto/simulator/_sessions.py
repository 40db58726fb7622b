"""RELAY sessions of the simulator: who they are, which contexts they receive, and how
their events reach a socket (or wait for one).

A ``Session`` is named by its ``protocol`` and outlives its socket by ``resume_grace``
seconds. ``Sessions`` is the registry: attach (new or resumed), detach, expiry, context
subscriptions, who receives the next inbound call or message of a context, and the
delivery of the events the switch emitted during one step.

Invariants:
- A session is attached to at most one socket. Once detached it expires ``resume_grace``
  seconds later (its calls are then dropped silently), unless a resume attaches it first.
- Events are framed and delivered at ``flush``, which the simulator runs at the end of
  every step (one request, one timer, one injection), in the order the switch emitted them
  (delivery faults aside: see ``_faults``). Each frame gets its own fresh id and stays in
  ``Session.unacked`` (when the client asked for ``event_acks``) until the client answers
  that id; a resumed session re-delivers them, oldest first.
- A socket gets frames only while it accepts events (``EventSocket.push_event`` drops them
  otherwise); un-acked frames wait for the next socket.
- Inbound calls and messages of a context are spread round-robin (one turn per kind and
  context) over its subscribed sessions whose socket takes events; only when none has
  one does a session waiting for its resume get a new one. ``_contexts`` holds exactly
  the subscriptions of sessions not expired; ``_turns`` only keys of subscribed contexts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from functools import partial
from typing import Protocol

from .. import _wire as wire
from .._ids import IdFactory
from .._timers import TimerHandle, TimerQueue
from .._wire import JSONObject
from . import _faults as faults_
from ._scenario import Scenario

__all__ = ["EventSocket", "Session", "Sessions"]

#: An event emitted during a step, not yet framed: (session, event_type, params_json, when).
Queued = tuple["Session", str, str, float]
TimerCallback = Callable[[float], None]


class HasScenario(Protocol):
    """Where the faults in force are read (the switch's scenario may be replaced)."""

    @property
    def scenario(self) -> Scenario: ...


class EventSocket(Protocol):
    """What a session needs of the socket it is attached to."""

    @property
    def closed(self) -> bool: ...

    @property
    def takes_events(self) -> bool:
        """True while events pushed to it go out now (so it may take new inbound work)."""

    def push_event(self, frame: str) -> None:
        """Send an event frame now if the socket takes events; else drop it."""

    def take_over(self) -> None:
        """Another socket resumed this session: close this one."""


class Session:
    """One RELAY session; the switch's ``EventSink`` for the calls it owns."""

    __slots__ = (
        "_queue",
        "auth_state",
        "connection",
        "contexts",
        "event_acks",
        "expiry",
        "framer",
        "identity",
        "lost_at",
        "project",
        "protocol",
        "resumable",
        "signature",
        "unacked",
    )

    def __init__(self, queue: list[Queued], signature: str, project: str, space_id: str) -> None:
        self._queue = queue
        self.protocol = f"signalwire_{signature}"
        self.project = project
        self.signature = signature
        self.identity = f"{project}@{space_id}"
        self.auth_state = f"authstate-{signature}"
        self.connection: EventSocket | None = None
        self.contexts: dict[str, None] = {}
        self.event_acks = False
        #: Frames of events not acked yet, by event id, oldest first.
        self.unacked: dict[str, str] = {}
        self.lost_at: float | None = None
        self.expiry: TimerHandle | None = None
        self.resumable = True
        self.framer = wire.EventFramer(self.protocol, project)

    def emit(self, event_type: str, params_json: str, timestamp: float) -> None:
        self._queue.append((self, event_type, params_json, timestamp))

    def take_ack(self, event_id: str) -> bool:
        """Forget an acked event; False when ``event_id`` is not one waiting for its ack."""
        return self.unacked.pop(event_id, None) is not None


class Sessions:
    """Every session by protocol, the contexts they receive, and their event delivery."""

    def __init__(
        self,
        *,
        timers: TimerQueue[TimerCallback],
        new_id: IdFactory,
        drop_calls: Callable[[Session], None],
        switch: HasScenario,
        resume_grace: float,
        space_id: str,
        epoch: float,
    ) -> None:
        self._timers = timers
        self._new_id = new_id
        self._drop_calls = drop_calls
        self._switch = switch
        self.resume_grace = resume_grace
        self.epoch = epoch
        self.space_id = space_id
        self._by_protocol: dict[str, Session] = {}
        self._contexts: dict[str, dict[Session, None]] = {}
        #: Where the next round-robin search starts, by (kind, context).
        self._turns: dict[tuple[str, str], int] = {}
        self._queue: list[Queued] = []

    def __len__(self) -> int:
        return len(self._by_protocol)

    @property
    def space_id(self) -> str:
        return self._space_id

    @space_id.setter
    def space_id(self, space_id: str) -> None:
        self._space_id = space_id
        self._space_piece = wire.space_piece(space_id)

    def get(self, protocol: str) -> Session | None:
        return self._by_protocol.get(protocol)

    def receiver(
        self, context: str, kind: str = "call", passed: Collection[object] = ()
    ) -> Session | None:
        """Who gets the next inbound ``kind`` (``"call"`` or ``"message"``) on ``context``.

        Round-robin over the subscribed sessions whose socket takes events, one turn per
        kind and context. With none, a session waiting for its resume gets it (it sees it
        on resume), also in turns. ``passed``: sessions that may not get it (they passed
        the call); then only a session with a socket qualifies, and None means nobody."""
        sessions = self._contexts.get(context)
        if not sessions:
            return None
        order = list(sessions)
        count = len(order)
        key = (kind, context)
        start = self._turns.get(key, 0)
        for step in range(count):
            index = (start + step) % count
            session = order[index]
            connection = session.connection
            if connection is not None and connection.takes_events and session not in passed:
                self._turns[key] = index + 1
                return session
        if passed:
            return None
        self._turns[key] = start % count + 1
        return order[start % count]

    # ---- attaching -------------------------------------------------------------------

    def attach(
        self, socket: EventSocket, project: str, params: JSONObject, now: float, *, refuse: bool
    ) -> tuple[Session, bool]:
        """Resume the session named by ``params.protocol`` if allowed (same project, not
        ``refuse``d by a fault; ``authorization_state`` plays no part), else open a new one.
        Returns the session and whether it was resumed."""
        protocol = params.get("protocol")
        old = self._by_protocol.get(protocol) if isinstance(protocol, str) else None
        if old is not None and old.lost_at is not None and now - old.lost_at > self.resume_grace:
            self._expire(old)
            old = None
        # Resumed on ``protocol`` alone: a bad or absent ``authorization_state`` is ignored
        # (the guide), the credentials were checked and must name the same project.
        if old is not None and old.resumable and old.project == project and not refuse:
            previous = old.connection
            if previous is not None and not previous.closed:  # a second socket takes over
                previous.take_over()
            if old.expiry is not None:
                self._timers.cancel(old.expiry)
                old.expiry = None
            old.lost_at = None
            old.connection = socket
            return old, True
        session = Session(self._queue, self._new_id(), project, self._space_id)
        session.connection = socket
        self._by_protocol[session.protocol] = session
        return session, False

    def detach(self, socket: EventSocket, session: Session, now: float) -> None:
        """``socket`` is gone: unless another took over, the session's grace starts."""
        if session.connection is socket:
            session.connection = None
            session.lost_at = now
            session.expiry = self._timers.schedule(
                now + self.resume_grace, partial(self._expire_timer, session)
            )

    def subscribe(self, session: Session, contexts: list[str], *, add: bool) -> None:
        for context in contexts:
            if add:
                session.contexts[context] = None
                self._contexts.setdefault(context, {})[session] = None
            else:
                session.contexts.pop(context, None)
                subscribers = self._contexts.get(context)
                if subscribers is not None:
                    subscribers.pop(session, None)
                    if not subscribers:
                        del self._contexts[context]
                        self._turns.pop(("call", context), None)
                        self._turns.pop(("message", context), None)

    def _expire_timer(self, session: Session, when: float) -> None:
        session.expiry = None
        self._expire(session)

    def _expire(self, session: Session) -> None:
        if session.expiry is not None:
            self._timers.cancel(session.expiry)
            session.expiry = None
        del self._by_protocol[session.protocol]
        self.subscribe(session, list(session.contexts), add=False)
        self._drop_calls(session)

    # ---- delivery --------------------------------------------------------------------

    def flush(self) -> None:
        """Deliver the events the last step emitted, applying the delivery faults."""
        queue = self._queue
        if not queue:
            return
        faults = self._switch.scenario.faults  # looked up once per step, not per event
        batch = faults_.reorder(queue) if faults.reorder else queue.copy()
        queue.clear()  # the same list: every session appends to it
        delay = faults.delay_events
        if not delay:
            self.deliver(batch, faults_.copies(faults))
            return
        for item in batch:
            self._timers.schedule(item[3] + delay, partial(self._deliver_later, item))

    def _deliver_later(self, item: Queued, when: float) -> None:
        copies = faults_.copies(self._switch.scenario.faults)  # in force when it lands
        self.deliver((item,), copies)

    def deliver(self, batch: Iterable[Queued], copies: int) -> None:
        """Frame each event ``copies`` times, each with a fresh id, and hand it over (one
        call per step, not per event)."""
        epoch, space, new_id = self.epoch, self._space_piece, self._new_id
        for session, event_type, params_json, timestamp in batch:
            stamp = timestamp + epoch
            unacked = session.unacked if session.event_acks else None
            connection = session.connection
            for _ in range(copies):
                event_id = new_id()
                frame = session.framer.frame(event_id, event_type, stamp, space, params_json)
                if unacked is not None:
                    unacked[event_id] = frame
                if connection is not None:
                    connection.push_event(frame)
