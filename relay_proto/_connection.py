"""The client role: a RELAY session as a pure state machine.

Inputs are whole WebSocket text messages, caller commands and the current time; outputs are
events (returned) and text frames (queued; drain them with ``data_to_send()`` after ANY
call, even one that raised). The core never reads a clock: calls that start timers take
``now``, ``next_deadline()`` says when to call ``handle_timer(now)``.

This module owns the outbox and ties the parts together: the session (``_session``, its
state read from ``_state.SESSION``), requests (``_requests``: the one record of "sent"),
dials, calls and plays (``_tracker``, which returns intents that are turned into frames
here) and liveness (``_liveness``).

Invariants:

* Every ``signalwire.event`` that carries an id is acknowledged exactly once per delivery,
  before anything else is done with it, whatever its type or content.
* Control replies (acks, pongs, disconnect replies) go straight to the outbox in every
  state; requests go out only while READY and otherwise wait in a queue bounded by
  ``max_queued`` (hang-ups that must happen are exempt: the no-orphan promise beats the
  bound).
* Each dial resolves exactly once (``DialAnswered``, ``DialFailed`` or ``DialTimedOut``),
  or is abandoned by ``cancel_dial()``; after that its tag is kept for a grace period so a
  late leg is ended on sight and never surfaces as a call.
* Call and play states only move forward; duplicates produce no events.
* A request whose reply was lost with a socket is never re-sent blindly: a dial is
  reconciled by its tag, hang-ups that must happen (internal ones, ``end(cleanup=True)``)
  are re-sent (they are idempotent; a cleanup's outcome is reported under its first id),
  anything else fails with ``connection_lost``.
* ``receive()`` raises ``RemoteProtocolError`` and nothing else, and only for a frame it
  cannot take as JSON-RPC (or a reply it cannot match); before raising it has changed
  nothing but the silence watchdog and the acknowledgement it queued. An event it cannot
  read is reported (``UnreadableEvent``), an unknown state value is carried
  (``UnknownState``): neither changes anything (``_reading``, docs/reading.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import _commands as commands
from . import _validate as validate
from . import _wire as wire
from ._calling import CallCommands
from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import CallInfo, Event, SessionState
from ._ids import counter_ids, uuid4
from ._liveness import Liveness
from ._reading import answer_request, read_other_event, unreadable
from ._records import Intent
from ._requests import PendingRequest, RequestTable
from ._session import Session
from ._state import reply_means_call_gone
from ._surface import CallSurface
from ._tracker import CallTracker
from ._wire import JSONObject

# ``wire.encode_ack`` for a string id, inlined in ``receive`` (nine frames in ten are acked).
_ACK_HEAD, _ACK_TAIL = '{"jsonrpc":"2.0","id":', ',"result":{}}'
_encode_str = wire.encode_string
# Replies ``CallCommands.accepted`` acts on besides an action's start (the rest: no call).
_ACCEPT_TRACKED = frozenset(("messaging.send", "calling.pass"))

DEFAULT_AGENT = "relay-proto/0.1"
_READY = SessionState.READY


class ClientConnection(CallSurface):
    """A RELAY client session. See the module docstring for the contract."""

    def __init__(
        self,
        *,
        project: str | None = None,
        token: str | None = None,
        jwt_token: str | None = None,
        contexts: Sequence[str] = (),
        agent: str = DEFAULT_AGENT,
        id_factory: Callable[[], str] | None = None,
        tag_factory: Callable[[], str] | None = None,
        control_id_factory: Callable[[], str] | None = None,
        tombstone_grace: float = 60.0,
        ping_interval: float | None = 30.0,
        max_ping_failures: int = 3,
        silence_timeout: float | None = 90.0,
        max_queued: int = 10_000,
    ) -> None:
        self._session = Session(
            auth=commands.auth_params(project, token, jwt_token),
            agent=validate.non_empty_str("agent", agent),
            contexts=validate.contexts_list(contexts),
        )
        self._new_id = id_factory or counter_ids()
        self._new_tag = tag_factory or uuid4
        self._new_control_id = control_id_factory or uuid4
        self._liveness = Liveness(
            ping_interval=commands.optional_positive("ping_interval", ping_interval),
            max_failures=validate.positive_int("max_ping_failures", max_ping_failures),
            silence_timeout=commands.optional_positive("silence_timeout", silence_timeout),
        )
        self._outbox: list[str] = []
        self._requests = RequestTable(
            outbox=self._outbox,
            new_id=self._new_id,
            max_queued=validate.positive_int("max_queued", max_queued),
        )
        grace = validate.positive_number("tombstone_grace", tombstone_grace)
        self._tracker = CallTracker(grace=grace)
        self._calls = CallCommands(
            requests=self._requests,
            tracker=self._tracker,
            ready=lambda: self._session.state is _READY,
            new_control_id=self._new_control_id,
        )
        self._tracker.handlers.update(self._calls.messages.handlers())

    def __repr__(self) -> str:
        return (
            f"<ClientConnection state={self.state.value} protocol={self.protocol!r} "
            f"dials={len(self.pending_dials)} calls={len(self._tracker.calls)}>"
        )

    # ------------------------------------------------------------------ introspection

    @property
    def state(self) -> SessionState:
        return self._session.state

    @property
    def protocol(self) -> str | None:
        """The session's protocol (sent to resume it on the next ``connect()``)."""
        return self._session.protocol

    @property
    def identity(self) -> str | None:
        return self._session.identity

    @property
    def secrets(self) -> tuple[str, ...]:
        """Secret values held now (token or JWT, authorization_state): mask them in output."""
        return self._session.secrets

    @property
    def pending_dials(self) -> frozenset[str]:
        return self._tracker.pending_tags()

    @property
    def live_call_ids(self) -> frozenset[str]:
        return frozenset(self._tracker.calls)

    def get_call(self, call_id: str) -> CallInfo | None:
        call = self._tracker.calls.get(call_id)
        return None if call is None else call.info()

    @property
    def pending_request_count(self) -> int:
        """Requests awaiting a reply or a socket (internal ones included)."""
        return len(self._requests)

    # ------------------------------------------------------------------ output and time

    @property
    def has_data_to_send(self) -> bool:
        """Whether ``data_to_send()`` would return anything (a cheap check before a write)."""
        return bool(self._outbox)

    def data_to_send(self) -> list[str]:
        """Drain and return the text frames to write, in order.

        A request counts as sent from here on: write what this returns, or report the
        socket lost (``connection_lost``) so the core knows the fate of those frames is
        unknown. Frames not drained when the socket is lost are dropped by the core, and
        their requests wait for the next session.
        """
        out = self._outbox[:]
        self._outbox.clear()
        self._requests.drained()
        return out

    def next_deadline(self) -> float | None:
        """The earliest time at which ``handle_timer`` has work to do, or None."""
        earliest = self._tracker.next_deadline()
        if self._session.state is SessionState.IDLE:
            return earliest
        # Called after every batch of reads: plain comparisons, no lists.
        for deadline in self._liveness.deadlines(pinging=self._session.state is _READY):
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        return earliest

    def handle_timer(self, *, now: float, timestamp: float | None = None) -> list[Event]:
        """Act on what is due at ``now``; a liveness ping carries ``timestamp`` (wall-clock
        seconds; default ``now``)."""
        events: list[Event] = []
        intents: list[Intent] = []
        self._tracker.handle_timer(now, events, intents)
        self._apply(intents, events)
        self._check_liveness(now, now if timestamp is None else timestamp, events)
        return events

    # ------------------------------------------------------------------ session

    def connect(self, *, now: float) -> str:
        """Queue ``signalwire.connect`` on a freshly opened socket."""
        if self._session.state is not SessionState.IDLE:
            raise LocalProtocolError(f"connect() needs an idle session, not {self.state.value}")
        request_id = self._new_id()
        params = self._session.connect(request_id)
        self._outbox.append(wire.encode_request(request_id, "signalwire.connect", params))
        self._liveness.start(now)
        return request_id

    def connection_lost(self, *, now: float) -> list[Event]:
        """The socket is gone. Requests in flight wait for the next ``Connected``."""
        connect_id = self._session.lost()
        if connect_id is not None:
            self._requests.finish(connect_id)
        ping_id = self._liveness.stop()
        if ping_id is not None:
            self._requests.finish(ping_id)
        # Replies for a dead socket go nowhere; requests never drained wait for the next.
        self._outbox.clear()
        self._requests.unsend()
        return []

    def ping(self, *, now: float, timestamp: float | None = None) -> str:
        """Queue ``signalwire.ping``; ``timestamp`` (wall-clock seconds, default ``now``)."""
        stamp = now if timestamp is None else timestamp
        return self._request(PendingRequest("signalwire.ping"), {"timestamp": stamp})

    def subscribe(self, contexts: Sequence[str]) -> str | None:
        names = validate.contexts_list(contexts)
        if not names:
            return None
        request = PendingRequest("signalwire.receive", contexts=names)
        return self._request(request, {"contexts": names})  # recorded once accepted

    def unsubscribe(self, contexts: Sequence[str]) -> str | None:
        names = validate.contexts_list(contexts)
        if not names:
            return None
        request_id = self._request(PendingRequest("signalwire.unreceive"), {"contexts": names})
        self._session.contexts = [name for name in self._session.contexts if name not in names]
        return request_id

    # ------------------------------------------------------------------ dialing

    def dial(
        self,
        devices: Any,
        *,
        tag: str | None = None,
        max_duration: int | None = None,
        region: str | None = None,
        node_id: str | None = None,
        max_price_per_minute: float | None = None,
        dial_timeout: float = 120.0,
        now: float,
    ) -> str:
        """Validate and queue a ``calling.dial``; return its tag."""
        params = commands.dial_params(
            devices,
            max_duration=max_duration,
            region=region,
            node_id=node_id,
            max_price_per_minute=max_price_per_minute,
        )
        timeout = validate.positive_number("dial_timeout", dial_timeout)
        tag = validate.non_empty_str("tag", self._new_tag() if tag is None else tag)
        if tag in self._tracker.dials:
            raise LocalProtocolError(f"tag {tag!r} is already in use by another dial")
        params["tag"] = tag
        request_id = self._request(PendingRequest("calling.dial", dial_tag=tag), params)
        self._tracker.add_dial(tag, request_id, now + timeout, max_duration)
        return tag

    def cancel_dial(self, tag: str, *, now: float) -> bool:
        """Abandon a dial: end every live leg under ``tag`` (the winner too) and tombstone it.

        Returns whether anything was abandoned. Use it when the caller gives up on a dial
        whose outcome it has not handed on (cancellation, its own deadline).
        """
        intents: list[Intent] = []
        abandoned = self._tracker.cancel_dial(tag, now, intents)
        self._apply(intents, [])
        return abandoned

    # ------------------------------------------------------------------ input

    def receive(self, text: str | bytes, *, now: float) -> list[Event]:
        """Process one text message. Raises ``RemoteProtocolError`` and nothing else."""
        self._liveness.last_heard = now
        message = wire.parse(text, raw_events=True)
        events: list[Event] = []
        if isinstance(message, dict):  # a signalwire.event, nine frames in ten: acked, then
            if type(event_id := message.get("id")) is str:  # read, never raised; the ack
                self._outbox.append(_ACK_HEAD + _encode_str(event_id) + _ACK_TAIL)  # inlined
            elif event_id is not None:
                self._outbox.append(wire.encode_ack(event_id))
            # Routed here (reason: no call between on the hot path); ``_reading`` does the rest.
            if type(envelope := message.get("params")) is dict:
                event_type, inner = envelope.get("event_type"), envelope.get("params")
                if type(event_type) is str and type(inner) is dict:
                    handler = self._tracker.handlers.get(event_type)
                    if handler is not None:
                        stamp = envelope.get("timestamp")  # a float but in odd cases
                        stamp = stamp if type(stamp) is float else wire.timestamp(stamp)
                        intents: list[Intent] = []
                        try:
                            handler(inner, stamp, now, events, intents)
                        except RemoteProtocolError as exc:  # it changed nothing: reported
                            events.append(unreadable(event_type, exc, inner))
                        if intents:
                            self._apply(intents, events)
                        return events
            read_other_event(envelope, self._session, events)
        elif isinstance(message, wire.Request):
            answer_request(message, self._session, self._outbox, events)
        elif message.id is None:
            raise RemoteProtocolError(f"error reply without an id: {message.message!r}")
        else:
            self._on_reply(message, now, events)
        return events

    # ------------------------------------------------------------------ internals: requests

    def _request(self, request: PendingRequest, params: JSONObject) -> str:
        return self._requests.add(request, params, send=self._session.state is _READY)

    def _apply(self, intents: list[Intent], events: list[Event]) -> None:
        self._calls.apply(intents, events)

    def _on_reply(
        self, message: wire.Result | wire.ErrorReply, now: float, events: list[Event]
    ) -> None:
        request_id = str(message.id)
        if request_id == self._session.connect_id:
            self._on_connect_reply(message, now, events)
            return
        request = self._requests.take_reply(request_id)
        if request is None:
            return
        if request_id == self._liveness.ping_id:
            self._liveness.answered(ok=isinstance(message, wire.Result))
            return
        failure, data = wire.reply_failure(message)
        if request.dial_tag is not None:
            if failure is not None:
                intents: list[Intent] = []
                events.extend(self._tracker.dial_refused(request.dial_tag, *failure, now, intents))
                self._apply(intents, events)
        elif failure is None:
            assert isinstance(message, wire.Result)
            self._session.accepted(request.contexts)
            if request.surface:
                events.append(request.succeeded(request_id, message.result))
            if request.control_id is not None or request.method in _ACCEPT_TRACKED:
                self._calls.accepted(request_id, request, message.result, events)
        else:
            self._on_failure(request_id, request, *failure, data, events)

    def _on_failure(
        self,
        request_id: str,
        request: PendingRequest,
        code: int,
        text: str,
        data: Any,
        events: list[Event],
    ) -> None:
        gone = request.call_id is not None and reply_means_call_gone(request.method, code)
        if request.surface:
            events.append(request.failed(request_id, code, text, data, gone))
        self._calls.forget_start(request_id, request, events)
        if gone:
            assert request.call_id is not None
            self._tracker.call_gone(request.call_id, events)

    def _on_connect_reply(
        self, message: wire.Result | wire.ErrorReply, now: float, events: list[Event]
    ) -> None:
        if isinstance(message, wire.ErrorReply):
            failed = self._session.refused(message.code, message.message)
            self._requests.finish(str(message.id))
            events.append(failed)
            if failed.retry_fresh:
                self._reset_session(events)
            return
        connected, keep = self._session.connected(message.result)
        self._requests.finish(str(message.id))
        self._liveness.ready(now)
        events.append(connected)
        if keep:
            self._settle_in_flight(events)
        else:
            self._reset_session(events)
        if self._session.state is _READY:
            self._requests.flush()

    def _settle_in_flight(self, events: list[Event]) -> None:
        """Decide the fate of requests whose replies were lost with the previous socket."""
        for request_id, request in self._requests.settle(send=self._session.state is _READY):
            self._fail_lost(request_id, request, events)

    def _fail_lost(self, request_id: str, request: PendingRequest, events: list[Event]) -> None:
        if request.surface:  # internal pings die with their socket, hang-ups are re-sent
            events.append(request.lost(request_id))  # (muted: an abandoned action's start)
        self._calls.forget_start(request_id, request, events, lost=True)

    def _reset_session(self, events: list[Event]) -> None:
        """The server did not keep the session: fail everything that lived in it.

        Hang-ups that must happen are re-sent all the same (a call the old session left
        behind may still be up). Call commands still waiting for a socket fail with the call.
        """
        self._settle_in_flight(events)
        for request_id, request in self._requests.withdraw_held_for(set(self._tracker.calls)):
            self._fail_lost(request_id, request, events)
        intents: list[Intent] = []
        self._tracker.reset(self._requests.unsent_dial_tags(), events, intents)
        self._apply(intents, events)

    def _check_liveness(self, now: float, timestamp: float, events: list[Event]) -> None:
        if self._session.state is SessionState.IDLE:
            return
        lost, missed, send_ping = self._liveness.check(now, pinging=self.state is _READY)
        if missed is not None:
            self._requests.finish(missed)
        if lost is not None:
            events.append(lost)
        if send_ping:
            request = PendingRequest("signalwire.ping", surface=False)
            self._liveness.ping_sent(now, self._request(request, {"timestamp": timestamp}))
