"""One server-side socket of the simulator: the JSON-RPC session protocol, seen from the switch.

Frames in through ``receive(text, now)``, frames out through ``data_to_send()``. The
switch-wide state (sessions, calls, timers, faults) is reached through the small ``Hub``
interface; this module owns the per-socket state machine. Frames are built and parsed by
``_wire`` only.

Invariants:
- ``ConnectionState`` only moves along ``_CONNECTION_TRANSITIONS``. Once CLOSED a
  connection queues nothing and ignores input (the adapter closes the socket and calls
  ``connection_lost``). A DISCONNECTING connection still answers requests but gets no new
  events: they wait, un-acked, for the session's next connection.
- Every request with an id gets exactly one reply (result or JSON-RPC error), queued before
  anything the request caused, except the ``events_before_result`` fault. A ``calling.*``
  param that breaks the shared rules (``_validate``) is answered with a result ``code``
  ``"400"`` and its message (as the calling API answers); a frame-level problem (params not
  an object, an unknown method, a bad ``signalwire.*`` param) with a JSON-RPC error.
- A reply from the client is matched against this socket's own requests (ping,
  disconnect) first, then against its session's un-acked events; anything else is a
  tolerated violation, recorded in ``violations``.
- Credentials are checked and dropped: nothing secret is stored, queued or in a repr.
- While OPEN (and only then), the socket pings its peer every ``Hub.ping_interval`` seconds
  after the last pong, one ping at a time; a ping unanswered for ``Hub.ping_timeout``
  seconds closes it (recorded in ``violations``).
"""

from __future__ import annotations

import enum
from functools import partial

from .. import _validate as validate
from .. import _wire as wire
from .._errors import LocalProtocolError, RemoteProtocolError
from .._timers import TimerHandle
from .._wire import ErrorReply, JSONObject, Request
from ._hub import Hub
from ._legs import RpcError
from ._sessions import Session

__all__ = ["GARBAGE_FRAME", "ConnectionState", "ServerConnection"]

#: The ``data`` of a refused ``signalwire.connect``, as the official test server sends it.
_AUTH_REQUIRED: JSONObject = {"signalwire_error_code": "AUTH_REQUIRED"}

#: What the ``garbage`` fault sends after a connect result: not JSON at all.
GARBAGE_FRAME = "this is not JSON {"


class ConnectionState(enum.Enum):
    """Where one server-side socket stands.

    ``HANDSHAKE``: waiting for ``signalwire.connect``. ``OPEN``: session attached.
    ``DISCONNECTING``: ``signalwire.disconnect`` sent, waiting for its reply.
    ``CLOSED``: the simulator wants the socket closed (or it is gone).
    """

    HANDSHAKE = "handshake"
    OPEN = "open"
    DISCONNECTING = "disconnecting"
    CLOSED = "closed"


_CONNECTION_TRANSITIONS: dict[ConnectionState, frozenset[ConnectionState]] = {
    ConnectionState.HANDSHAKE: frozenset(
        {ConnectionState.OPEN, ConnectionState.DISCONNECTING, ConnectionState.CLOSED}
    ),
    ConnectionState.OPEN: frozenset({ConnectionState.DISCONNECTING, ConnectionState.CLOSED}),
    ConnectionState.DISCONNECTING: frozenset({ConnectionState.CLOSED}),
    ConnectionState.CLOSED: frozenset(),
}


class ServerConnection:
    """One client socket, seen from the switch."""

    def __init__(self, hub: Hub[ServerConnection], now: float) -> None:
        self._hub = hub
        self._state = ConnectionState.HANDSHAKE
        self._outbox: list[str] = []
        self._frames = 0
        self._session: Session | None = None
        self._pending: dict[str, str] = {}
        self._lost = False
        #: The server's own ping cycle: the next ping's timer, or the outstanding ping's
        #: deadline (``_ping_id`` set) after which this socket is closed.
        self._ping_timer: TimerHandle | None = None
        self._ping_id: str | None = None
        self.opened_at = now
        #: Protocol violations by the peer that were tolerated (for test assertions).
        self.violations: list[str] = []
        #: Whether this socket's ``signalwire.connect`` resumed an earlier session.
        self.session_restored = False
        #: Why the socket is CLOSED (None while it is not): ``"ping unanswered"``,
        #: ``"drop fault"``, ``"disconnect answered"``, ``"session taken over"`` or
        #: ``"connection lost"``. For logs and test assertions.
        self.close_reason: str | None = None

    def __repr__(self) -> str:
        return f"<ServerConnection {self._state.value} protocol={self.protocol}>"

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def protocol(self) -> str | None:
        return self._session.protocol if self._session is not None else None

    @property
    def closed(self) -> bool:
        """True when the simulator wants this socket closed (or it is gone)."""
        return self._state is ConnectionState.CLOSED

    @property
    def takes_events(self) -> bool:
        """True while events go out on this socket at once (OPEN): only then is it
        given new inbound calls and messages."""
        return self._state is ConnectionState.OPEN

    def data_to_send(self) -> list[str]:
        out, self._outbox = self._outbox, []
        return out

    def receive(self, text: str | bytes, now: float) -> None:
        """Handle one client frame. Raises ``RemoteProtocolError`` on garbage; stays usable."""
        if self._state is ConnectionState.CLOSED:
            return
        # The most frequent client frame, an event's ack (``parse_ack``): an un-acked event
        # of this session is dropped from ``unacked``, just as ``parse`` + ``_on_reply``
        # would (and, emitting nothing, needs no flush); anything else (this socket's own
        # requests first) takes the full path.
        event_id = wire.parse_ack(text)
        if event_id is not None:
            session = self._session
            if (
                session is not None
                and event_id not in self._pending
                and session.unacked.pop(event_id, None) is not None
            ):
                return
        try:
            message = wire.parse(text)
        except RemoteProtocolError as exc:
            self.violations.append(str(exc))
            raise
        if isinstance(message, Request):
            self._on_request(message, now)
        else:
            self._on_reply(message.id, isinstance(message, ErrorReply), now)
        self._hub.flush()

    def connection_lost(self, now: float) -> None:
        """The socket is gone. The session waits ``resume_grace`` seconds for a resume."""
        if self._lost:
            return
        self._lost = True
        if self._state is not ConnectionState.CLOSED:
            self._close("connection lost")
        self._outbox = []
        self._hub.lost(self, self._session, now)

    def send_disconnect(self, *, restart: bool) -> None:
        """Queue ``signalwire.disconnect``; the socket closes once the client replies.

        ``restart=True`` also makes the session un-resumable (the client starts afresh).
        """
        self._send_request("signalwire.disconnect", {"restart": restart})
        if not self.closed:  # the drop fault may have closed it on that very frame
            self._set_state(ConnectionState.DISCONNECTING)
        if restart and self._session is not None:
            self._session.resumable = False

    def send_ping(self, now: float | None = None) -> None:
        self._send_request("signalwire.ping", {} if now is None else {"timestamp": now})

    # ---- the server's own pings (the guide: the server pings periodically) -------------
    #
    # One ping at a time: the next is scheduled ``ping_interval`` after the pong, so a fake
    # clock that jumps far ahead fires one ping, not one per interval; a ping unanswered
    # for ``ping_timeout`` seconds closes the socket (its session waits for a resume).

    def _schedule_ping(self, now: float) -> None:
        interval = self._hub.ping_interval
        if interval is not None:
            self._ping_timer = self._hub.timers.schedule(now + interval, self._ping_due)

    def _ping_due(self, when: float) -> None:
        self._ping_timer = None
        self._ping_id = request_id = self._hub.new_id()
        self._pending[request_id] = "signalwire.ping"
        self._queue(wire.encode_request(request_id, "signalwire.ping", {"timestamp": when}))
        # From when the ping really goes out: a late wake-up must not time it out at once.
        deadline = max(when, self._hub.clock) + self._hub.ping_timeout
        self._ping_timer = self._hub.timers.schedule(deadline, partial(self._ping_lost, request_id))

    def _ping_lost(self, request_id: str, when: float) -> None:
        self._ping_timer = None
        self.violations.append(f"ping {request_id} unanswered: connection closed")
        self._close("ping unanswered")

    def _pong(self, now: float) -> None:
        self._stop_pinging()
        self._schedule_ping(now)

    def _stop_pinging(self) -> None:
        self._ping_id = None
        if self._ping_timer is not None:
            self._hub.timers.cancel(self._ping_timer)
            self._ping_timer = None

    # ---- what the session asks of its socket (``_sessions.EventSocket``) -------------

    def push_event(self, frame: str) -> None:
        """Queue an event frame if this socket takes events (OPEN); else drop it (it
        stays un-acked in its session for the next socket)."""
        if self._state is ConnectionState.OPEN:
            self._queue(frame)

    def take_over(self) -> None:
        """Another socket resumed this one's session: close this one."""
        self._close("session taken over")

    # ---- internals -------------------------------------------------------------------

    def _close(self, reason: str) -> None:
        self.close_reason = reason
        self._set_state(ConnectionState.CLOSED)

    def _set_state(self, state: ConnectionState) -> None:
        if state not in _CONNECTION_TRANSITIONS[self._state]:  # guarded by every caller
            raise AssertionError(f"connection cannot go from {self._state} to {state}")
        self._state = state
        if state is not ConnectionState.OPEN:  # the ping cycle runs only while OPEN
            self._stop_pinging()
        if state is ConnectionState.CLOSED and not self._lost:
            self._hub.mark_ready(self)

    def _send_request(self, method: str, params: JSONObject) -> None:
        if self._state not in (ConnectionState.HANDSHAKE, ConnectionState.OPEN):
            raise LocalProtocolError(f"cannot send {method} on a {self._state.value} connection")
        request_id = self._hub.new_id()
        self._pending[request_id] = method
        self._queue(wire.encode_request(request_id, method, params))

    def _queue(self, frame: str) -> None:
        if self._state is ConnectionState.CLOSED:
            return
        outbox = self._outbox
        if not outbox:
            self._hub.mark_ready(self)
        outbox.append(frame)
        self._frames += 1
        limit = self._hub.switch.scenario.faults.drop_after_frames  # every frame: no property
        if limit is not None and self._frames >= limit and self._hub.fire("drop"):
            self._close("drop fault")

    def _reply(self, request_id: str | int | None, result: JSONObject) -> None:
        if request_id is not None:
            self._queue(wire.encode_result(request_id, result))

    def _error(
        self, request_id: str | int | None, code: int, message: str, data: JSONObject | None = None
    ) -> None:
        if request_id is not None:
            self._queue(wire.encode_error(request_id, code, message, data))

    def _on_reply(self, reply_id: str | int | None, is_error: bool, now: float) -> None:
        key = reply_id if isinstance(reply_id, str) else ""
        method = self._pending.pop(key, None)
        if method is not None:
            if method == "signalwire.disconnect":
                self._close("disconnect answered")
            elif key == self._ping_id:  # any reply, even an error, proves the peer alive
                self._pong(now)
            return
        session = self._session
        if session is not None and session.take_ack(key):
            if is_error:
                self.violations.append(f"event {key} answered with an error")
            return
        self.violations.append(f"reply to an id never issued: {reply_id!r}")

    def _on_request(self, request: Request, now: float) -> None:
        method, params = request.method, request.params
        if method == "signalwire.connect":
            self._connect(request, now)
            return
        session = self._session
        if session is None:
            self._error(request.id, -32000, "signalwire.connect must come first")
            return
        if method == "signalwire.ping":
            pong: JSONObject = {"timestamp": now}
            if isinstance(params, dict):
                pong.update({k: params[k] for k in ("timestamp", "payload") if k in params})
            self._reply(request.id, pong)
        elif method in ("signalwire.receive", "signalwire.unreceive"):
            if not isinstance(params, dict):
                self._error(request.id, -32602, f"{method} params must be an object")
                return
            try:
                contexts = validate.check_contexts(params.get("contexts"))
            except LocalProtocolError as exc:
                self._error(request.id, -32602, str(exc))
                return
            adding = method == "signalwire.receive"
            self._hub.sessions.subscribe(session, contexts, add=adding)
            self._reply(
                request.id,
                {
                    "code": "200",
                    "message": (
                        "Receiving all inbound related to the requested relay contexts"
                        if adding
                        else "No longer receiving inbound related to the requested relay contexts"
                    ),
                },
            )
        elif method.startswith(("calling.", "messaging.")):
            self._calling(request, session, now)
        else:
            self._error(request.id, -32601, f"Method not found: {method}")

    def _calling(self, request: Request, session: Session, now: float) -> None:
        params = request.params
        if not isinstance(params, dict):
            self._error(request.id, -32602, f"{request.method} params must be an object")
            return
        hub = self._hub
        try:
            result = hub.command(session, request.method, params, now)
        except RpcError as exc:
            self._error(request.id, exc.code, exc.message)
            return
        except LocalProtocolError as exc:  # a param rule: the calling API answers 400
            self._reply(request.id, {"code": "400", "message": str(exc)})
            return
        if request.method != "calling.dial":
            self._reply(request.id, result)
            return
        faults = hub.faults
        if faults.events_before_result:
            hub.flush()
        self._reply(request.id, result)
        mode = faults.disconnect_after_dial
        if mode and self._state is ConnectionState.OPEN and hub.fire("disconnect"):
            self.send_disconnect(restart=mode == "restart")

    def _connect(self, request: Request, now: float) -> None:
        params = request.params
        if self._state is not ConnectionState.HANDSHAKE:
            self._error(request.id, -32000, "this socket already has a session")
            return
        if not isinstance(params, dict):
            self._error(request.id, -32602, "signalwire.connect params must be an object")
            return
        hub = self._hub
        try:
            project = hub.authenticate(params.get("authentication"))
            contexts = validate.check_contexts(params.get("contexts", []))
        except RpcError as exc:
            self._error(request.id, exc.code, exc.message)
            return
        except LocalProtocolError as exc:  # a rule of ``_validate``
            self._error(request.id, -32602, str(exc))
            return
        if project is None:
            self._error(request.id, -32002, "Authentication failed", _AUTH_REQUIRED)
            return
        session, restored = hub.attach(self, project, params, now)
        self._session = session
        self.session_restored = restored
        session.event_acks = params.get("event_acks") is True
        hub.sessions.subscribe(session, contexts, add=True)
        self._set_state(ConnectionState.OPEN)
        self._schedule_ping(now)
        result: JSONObject = {
            "identity": session.identity,
            "protocol": session.protocol,
            "authorization": {
                "project": session.project,
                "scopes": ["calling"],
                "signature": session.signature,
            },
        }
        if "protocol" in params:
            result["session_restored"] = restored
        self._reply(request.id, result)
        if restored:
            for frame in list(session.unacked.values()):
                self._queue(frame)
        hub.greet(session, now)
        if hub.faults.garbage:
            self._queue(GARBAGE_FRAME)
