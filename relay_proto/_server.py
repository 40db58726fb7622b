"""The server role of the core: the brain of the local RELAY simulator.

``Simulator`` is the shared switch (sessions, calls, clock-driven timers; the call logic
itself is ``_server_switch.Switch``); ``ServerConnection`` (``_server_conn``) is one
WebSocket. Frames in through ``ServerConnection.receive(text,
now)``, frames out through ``data_to_send()``; time moves only through the ``now``
arguments and ``Simulator.handle_timer(now)``. No clock, no I/O, no randomness beyond the
injected ``id_factory``.

Invariants:
- After ANY call (``receive``, ``handle_timer``, ``inject_inbound_call``, ``send_*``,
  ``connection_lost``) drain ``data_to_send()`` of every connection in ``connections()``,
  even after a call that raised. ``ready_connections()`` narrows that to the connections
  that queued a frame or closed since it was last called: the others have nothing to do.
- Events reach a connection in the order the switch generated them (the ``reorder`` fault
  aside), each as its own text frame with its own id, and each stays in its session's
  ``unacked`` map (when the client asked for ``event_acks``) until the client replies to
  that id. A resumed session re-delivers the un-acked ones, oldest first, right after the
  connect result.
- A session is attached to at most one connection. It outlives its connection by
  ``resume_grace`` seconds; then it expires and its calls end silently.
- Delivery faults (duplicate, reorder, delay) apply to switch events only, at ``_flush``,
  which runs at the end of every step (one request, one timer, one injection).
- Secrets (tokens, JWTs) are checked and dropped; they never reach a repr, a frame or a
  stored value.
"""

from __future__ import annotations

import hmac
import itertools
from collections.abc import Callable, Collection, Mapping
from functools import partial
from json import JSONEncoder
from json.encoder import encode_basestring_ascii as _json_str
from typing import Any

from ._errors import LocalProtocolError
from ._scenario import Faults, Scenario
from ._server_base import LiveCall, RpcError, Timer, TimerQueue
from ._server_conn import GARBAGE_FRAME, ConnectionState, ServerConnection
from ._server_switch import Switch

__all__ = ["GARBAGE_FRAME", "ConnectionState", "LiveCall", "ServerConnection", "Simulator"]

JSONObject = dict[str, Any]

# The settings of ``_wire.dumps`` (ASCII-only, compact, no NaN), for a lone number.
_encode_number = JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode


def _counter_ids() -> Callable[[], str]:
    """Deterministic UUID-shaped ids: ``00000000-0000-4000-8000-000000000001``, ..."""
    counter = itertools.count(1)
    return lambda: f"00000000-0000-4000-8000-{next(counter):012x}"


class _Session:
    """One RELAY session (named by its ``protocol``); implements the switch's EventSink."""

    __slots__ = (
        "_sim",
        "auth_state",
        "connection",
        "contexts",
        "event_acks",
        "event_heads",
        "event_project",
        "expiry",
        "identity",
        "lost_at",
        "project",
        "protocol",
        "resumable",
        "signature",
        "unacked",
    )

    def __init__(self, sim: Simulator, protocol: str, project: str, signature: str) -> None:
        self._sim = sim
        self.protocol = protocol
        self.project = project
        self.signature = signature
        self.identity = f"{project}@{sim.space_id}"
        self.auth_state = f"authstate-{signature}"
        self.connection: ServerConnection | None = None
        self.contexts: dict[str, None] = {}
        self.event_acks = False
        self.unacked: dict[str, str] = {}
        self.lost_at: float | None = None
        self.expiry: Timer | None = None
        self.resumable = True
        # Pieces of this session's event envelopes, JSON-encoded once (see ``_deliver``).
        self.event_heads: dict[str, str] = {}
        self.event_project = f',"project_id":{_json_str(project)},"space_id":'

    def __repr__(self) -> str:
        return f"<_Session {self.protocol} unacked={len(self.unacked)}>"

    def emit(self, event_type: str, params_json: str, timestamp: float) -> None:
        self._sim._batch.append((self, event_type, params_json, timestamp))

    def new_event_head(self, event_type: str) -> str:
        """The envelope of this session's ``event_type`` events, from after the id up to
        the timestamp's value; kept in ``event_heads`` (made once per event type)."""
        head = self.event_heads[event_type] = (
            f',"method":"signalwire.event","params":{{"event_type":{_json_str(event_type)}'
            f',"event_channel":{_json_str(self.protocol)},"timestamp":'
        )
        return head

    def deliver(self, event_id: str, frame: str) -> None:
        if self.event_acks:
            self.unacked[event_id] = frame
        connection = self.connection
        if connection is not None and connection._state is ConnectionState.OPEN:
            connection._queue(frame)


class Simulator:
    """A simulated SignalWire switch shared by every connection.

    ``credentials`` maps project -> token (``None`` accepts any project/token pair, and any
    JWT unless ``jwt_tokens`` is given). ``scenario`` may be replaced at any time; installing
    a new ``Faults`` object re-arms the one-shot faults.
    """

    def __init__(
        self,
        *,
        credentials: Mapping[str, str] | None = None,
        jwt_tokens: Collection[str] = (),
        scenario: Scenario | None = None,
        id_factory: Callable[[], str] | None = None,
        resume_grace: float = 30.0,
        node_id: str = "sim-node-1@local",
        space_id: str = "sim-space",
        max_history: int = 100_000,
        epoch: float = 0.0,
    ) -> None:
        #: Added to the clock's ``now`` to stamp events: pass ``time.time() - now`` when
        #: ``now`` is a monotonic clock, so event timestamps are Unix seconds on the wire.
        self.epoch = epoch
        self._credentials = dict(credentials) if credentials is not None else None
        self._jwt_tokens = frozenset(jwt_tokens)
        self._new_id = id_factory if id_factory is not None else _counter_ids()
        self.resume_grace = resume_grace
        self.space_id = space_id  # a property: keeps its encoded envelope piece in step
        self._timers = TimerQueue()
        self._switch = Switch(
            scenario=scenario if scenario is not None else Scenario(),
            timers=self._timers,
            new_id=self._new_id,
            node_id=node_id,
            max_history=max_history,
        )
        self._sessions: dict[str, _Session] = {}
        self._contexts: dict[str, dict[_Session, None]] = {}
        self._connections: dict[ServerConnection, None] = {}
        #: Open connections that queued a frame or closed since ``ready_connections()``.
        self._ready: dict[ServerConnection, None] = {}
        self._batch: list[tuple[_Session, str, str, float]] = []
        self._armed_for: Faults | None = None
        self._fired: set[str] = set()

    def __repr__(self) -> str:
        return (
            f"<Simulator sessions={len(self._sessions)} connections={len(self._connections)}"
            f" live_calls={len(self._switch._live)}>"
        )

    @property
    def space_id(self) -> str:
        return self._space_id

    @space_id.setter
    def space_id(self, space_id: str) -> None:
        self._space_id = space_id
        self._event_space = f'{_json_str(space_id)},"params":'

    @property
    def scenario(self) -> Scenario:
        return self._switch.scenario

    @scenario.setter
    def scenario(self, scenario: Scenario) -> None:
        self._switch.scenario = scenario

    # ---- public API ------------------------------------------------------------------

    def open_connection(self, now: float) -> ServerConnection:
        connection = ServerConnection(self, now)
        self._connections[connection] = None
        return connection

    def connections(self) -> list[ServerConnection]:
        return list(self._connections)

    def ready_connections(self) -> list[ServerConnection]:
        """The connections with frames queued or newly closed since the last call (so an
        adapter flushes those, not every socket after every input). Connections already
        lost are left out."""
        ready = list(self._ready)
        self._ready.clear()
        return ready

    def next_deadline(self) -> float | None:
        return self._timers.next_deadline()

    def handle_timer(self, now: float) -> None:
        while (timer := self._timers.pop_due(now)) is not None:
            timer.callback(timer.when)
            self._flush()

    def live_calls(self) -> list[LiveCall]:
        return self._switch.live_calls()

    def all_calls(self) -> list[LiveCall]:
        return self._switch.all_calls()

    def pending_dials(self) -> int:
        return self._switch.pending_dials()

    def unacked_events(self, protocol: str) -> int:
        session = self._sessions.get(protocol)
        return len(session.unacked) if session is not None else 0

    def inject_inbound_call(
        self,
        *,
        context: str,
        from_number: str,
        to_number: str,
        now: float,
        hangup_after: float | None = None,
    ) -> str:
        """Offer an inbound call (``calling.call.receive``) to a session on ``context``.

        The first subscribed session with an open socket gets it (else the first
        subscribed one, which will see it on resume). Returns the new call_id.
        """
        sessions = self._contexts.get(context)
        if not sessions:
            raise LocalProtocolError(f"no session receives context {context!r}")
        session = next((s for s in sessions if s.connection is not None), next(iter(sessions)))
        call_id = self._switch.inbound(
            session,
            context=context,
            from_number=from_number,
            to_number=to_number,
            now=now,
            hangup_after=hangup_after,
        )
        self._flush()
        return call_id

    # ---- internals used by ServerConnection -------------------------------------------

    def _one_shot(self, name: str) -> bool:
        """True the first time a one-shot fault fires for the installed Faults object."""
        faults = self.scenario.faults
        if faults is not self._armed_for:
            self._armed_for = faults
            self._fired = set()
        if name in self._fired:
            return False
        self._fired.add(name)
        return True

    def _authenticate(self, auth: object) -> str | None:
        """The project these credentials log into, or None when they are refused."""
        if not isinstance(auth, dict):
            raise RpcError(-32602, "authentication must be an object")
        jwt = auth.get("jwt_token")
        if jwt is not None:
            if not isinstance(jwt, str) or not jwt:
                raise RpcError(-32602, "jwt_token must be a non-empty string")
            if self._jwt_tokens:
                return "jwt" if jwt in self._jwt_tokens else None
            return "jwt" if self._credentials is None else None
        project, token = auth.get("project"), auth.get("token")
        if not isinstance(project, str) or not project or not isinstance(token, str):
            raise RpcError(-32602, "authentication needs project and token strings")
        if self._credentials is None:
            return project
        expected = self._credentials.get(project)
        if expected is None or not hmac.compare_digest(expected.encode(), token.encode()):
            return None
        return project

    def _attach(
        self, connection: ServerConnection, project: str, params: JSONObject, now: float
    ) -> tuple[_Session, bool]:
        """Resume the session named by ``params.protocol`` if allowed, else open a new one."""
        protocol = params.get("protocol")
        old = self._sessions.get(protocol) if isinstance(protocol, str) else None
        if old is not None and old.lost_at is not None and now - old.lost_at > self.resume_grace:
            self._expire(old)
            old = None
        if (
            old is not None
            and old.resumable
            and old.project == project
            and params.get("authorization_state") == old.auth_state
            and not self.scenario.faults.refuse_resume
        ):
            previous = old.connection
            if previous is not None and not previous.closed:  # a second socket takes over
                previous._set_state(ConnectionState.CLOSED)
            if old.expiry is not None:
                old.expiry.cancel()
                old.expiry = None
            old.lost_at = None
            old.connection = connection
            return old, True
        signature = self._new_id()
        session = _Session(self, f"signalwire_{signature}", project, signature)
        session.connection = connection
        self._sessions[session.protocol] = session
        return session, False

    def _subscribe(self, session: _Session, contexts: list[str], *, add: bool) -> None:
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

    def _detach(self, connection: ServerConnection, session: _Session, now: float) -> None:
        del self._connections[connection]
        if session.connection is connection:
            session.connection = None
            session.lost_at = now
            session.expiry = self._timers.schedule(
                now + self.resume_grace, partial(self._expire_timer, session)
            )

    def _expire_timer(self, session: _Session, when: float) -> None:
        session.expiry = None
        self._expire(session)

    def _expire(self, session: _Session) -> None:
        if session.expiry is not None:
            session.expiry.cancel()
            session.expiry = None
        del self._sessions[session.protocol]
        self._subscribe(session, list(session.contexts), add=False)
        self._switch.drop_session(session)

    def _flush(self) -> None:
        """Deliver the events the last step generated, applying the delivery faults."""
        batch = self._batch
        if not batch:
            return
        self._batch = []
        faults = self._switch.scenario.faults  # looked up once per step, not per event
        if faults.reorder:
            batch = _swap_pairs_per_session(batch)
        delay = faults.delay_events
        copies = 2 if faults.duplicate_events else 1
        deliver = self._deliver
        for session, event_type, params_json, timestamp in batch:
            if delay:
                self._timers.schedule(
                    timestamp + delay,
                    partial(self._deliver_later, session, event_type, params_json, timestamp),
                )
            else:
                deliver(session, event_type, params_json, timestamp, copies)

    def _deliver_later(
        self, session: _Session, event_type: str, params_json: str, timestamp: float, when: float
    ) -> None:
        copies = 2 if self._switch.scenario.faults.duplicate_events else 1
        self._deliver(session, event_type, params_json, timestamp, copies)

    def _deliver(
        self, session: _Session, event_type: str, params_json: str, timestamp: float, copies: int
    ) -> None:
        """Frame one event ``copies`` times, each with a fresh id.

        The frame is what ``encode_request(event_id, "signalwire.event", {"event_type",
        "event_channel", "timestamp", "project_id", "space_id", "params"})`` gives, but
        assembled from pieces encoded once per session (``_Session.new_event_head``), so only
        the id, the timestamp and the (already encoded) params are new per event: encoding
        the whole envelope was the simulator's largest cost. ``test_server_frames`` checks
        the two agree byte for byte.
        """
        stamp = timestamp + self.epoch
        # json encodes a finite float as its repr; anything else takes the encoder's path
        # (an int stamp, or its ValueError on NaN/infinity).
        number = (
            repr(stamp) if type(stamp) is float and stamp - stamp == 0.0 else _encode_number(stamp)
        )
        body = (
            f"{session.event_heads.get(event_type) or session.new_event_head(event_type)}{number}"
            f"{session.event_project}{self._event_space}{params_json}}}}}"
        )
        new_id = self._new_id
        for _ in range(copies):
            event_id = new_id()
            session.deliver(event_id, f'{{"jsonrpc":"2.0","id":{_json_str(event_id)}{body}')


def _swap_pairs_per_session(
    batch: list[tuple[_Session, str, str, float]],
) -> list[tuple[_Session, str, str, float]]:
    """The ``reorder`` fault: within each session's events of one step, swap pairs."""
    per_session: dict[_Session, list[tuple[_Session, str, str, float]]] = {}
    for item in batch:
        per_session.setdefault(item[0], []).append(item)
    out: list[tuple[_Session, str, str, float]] = []
    for items in per_session.values():
        for index in range(0, len(items) - 1, 2):
            items[index], items[index + 1] = items[index + 1], items[index]
        out.extend(items)
    return out
