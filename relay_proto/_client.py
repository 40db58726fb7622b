"""The client role: a RELAY session as a pure state machine.

Inputs are whole WebSocket text messages, caller commands and the current time; outputs are
events (returned) and text frames (queued; drain them with ``data_to_send()`` after ANY
call, even one that raised). The core never reads a clock: calls that start timers take
``now``, ``next_deadline()`` says when to call ``handle_timer(now)``.

This module owns the session (connect, resume, disconnect), requests and their replies,
server requests and liveness; dials, calls and plays live in ``_calls.CallTracker``.

Invariants:

* Every ``signalwire.event`` that carries an id is acknowledged exactly once per delivery,
  before anything else is done with it, whatever its type or content.
* Control replies (acks, pongs, disconnect replies) go straight to the outbox in every
  state; requests go out only while READY and otherwise wait in a queue bounded by
  ``max_queued`` (internal hang-ups are exempt: the no-orphan promise beats the bound).
* Each dial resolves exactly once (``DialAnswered``, ``DialFailed`` or ``DialTimedOut``),
  or is abandoned by ``cancel_dial()``; after that its tag is kept for a grace period so a
  late leg is ended on sight and never surfaces as a call.
* Call and play states only move forward; duplicates produce no events.
* A request whose reply was lost with a socket is never re-sent blindly: a dial is
  reconciled by its tag, hang-ups queued for cleanup are re-sent (they are idempotent),
  anything else fails with ``connection_lost``.
* ``receive()`` raises ``RemoteProtocolError`` and nothing else; before raising it has
  changed nothing but the silence watchdog and the acknowledgement it queued.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from . import _validate as validate
from . import _wire as wire
from ._calls import CallTracker, TrackedCall, str_field
from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import (
    CallInfo,
    Connected,
    ConnectFailed,
    DisconnectRequested,
    Event,
    RequestFailed,
    RequestSucceeded,
    SessionState,
    UnhandledEvent,
)
from ._liveness import Liveness
from ._requests import PendingRequest, RequestTable, counter_ids, uuid4

JSONObject = dict[str, Any]

PROTOCOL_VERSION: JSONObject = {"major": 2, "minor": 0, "revision": 0}
DEFAULT_AGENT = "relay-proto/0.1"
_STALE_STATE_CODES = frozenset({-32002, -32003, -32602})
_GONE_CODES = frozenset({404, 410})
_PLAY_ACTIONS = frozenset({"pause", "resume", "stop", "volume"})
_INF = float("inf")


class ClientConnection:
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
        tombstone_grace: float = 60.0,
        ping_interval: float | None = 30.0,
        max_ping_failures: int = 3,
        silence_timeout: float | None = 90.0,
        max_queued: int = 10_000,
    ) -> None:
        if jwt_token is not None:
            if project is not None or token is not None:
                raise LocalProtocolError("pass either jwt_token or project+token, not both")
            validate.secret("jwt_token", jwt_token)
            self._auth: JSONObject = {"jwt_token": jwt_token}
        else:
            validate.non_empty_str("project", project)
            validate.secret("token", token)
            self._auth = {"project": project, "token": token}
        self._contexts = validate.contexts_list(contexts)
        self._agent = validate.non_empty_str("agent", agent)
        self._new_id = id_factory or counter_ids()
        self._new_tag = tag_factory or uuid4
        grace = validate.positive_number("tombstone_grace", tombstone_grace)
        self._liveness = Liveness(
            ping_interval=None
            if ping_interval is None
            else validate.positive_number("ping_interval", ping_interval),
            max_failures=validate.positive_int("max_ping_failures", max_ping_failures),
            silence_timeout=None
            if silence_timeout is None
            else validate.positive_number("silence_timeout", silence_timeout),
        )

        self.state = SessionState.IDLE
        self.protocol: str | None = None
        self.identity: str | None = None
        self._authorization_state: str | None = None
        self._connect_id: str | None = None
        self._resume_requested = False
        self._had_session = False

        self._outbox: list[str] = []
        self._requests = RequestTable(
            outbox=self._outbox,
            new_id=self._new_id,
            max_queued=validate.positive_int("max_queued", max_queued),
        )
        self._tracker = CallTracker(
            grace=grace, hang_up=self._end_leg, withdraw=self._requests.withdraw
        )

    def __repr__(self) -> str:
        return (
            f"<ClientConnection state={self.state.value} protocol={self.protocol!r} "
            f"dials={len(self.pending_dials)} calls={len(self._tracker.calls)}>"
        )

    # ------------------------------------------------------------------ introspection

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
        for request in self._requests.drained():
            if request.dial_tag is not None:
                self._tracker.mark_sent(request.dial_tag)
        return out

    def next_deadline(self) -> float | None:
        """The earliest time at which ``handle_timer`` has work to do, or None."""
        earliest = self._tracker.next_deadline()
        if self.state is SessionState.IDLE:
            return earliest
        # Called after every batch of reads: plain comparisons, no lists.
        for deadline in self._liveness.deadlines(pinging=self.state is SessionState.READY):
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        return earliest

    def handle_timer(self, *, now: float) -> list[Event]:
        events: list[Event] = []
        self._tracker.handle_timer(now, events)
        self._check_liveness(now, events)
        return events

    # ------------------------------------------------------------------ session

    def connect(self, *, now: float) -> str:
        """Queue ``signalwire.connect`` on a freshly opened socket."""
        if self.state is not SessionState.IDLE:
            raise LocalProtocolError(f"connect() needs an idle session, not {self.state.value}")
        params: JSONObject = {
            "version": PROTOCOL_VERSION,
            "agent": self._agent,
            "event_acks": True,
            "authentication": self._auth,
        }
        if self._contexts:
            params["contexts"] = self._contexts
        self._resume_requested = self.protocol is not None
        if self.protocol is not None:
            params["protocol"] = self.protocol
            if self._authorization_state:
                params["authorization_state"] = self._authorization_state
        request_id = self._new_id()
        self._connect_id = request_id
        self._outbox.append(wire.encode_request(request_id, "signalwire.connect", params))
        self.state = SessionState.CONNECTING
        self._liveness.start(now)
        return request_id

    def connection_lost(self, *, now: float) -> list[Event]:
        """The socket is gone. Requests in flight wait for the next ``Connected``."""
        if self._connect_id is not None:
            self._requests.finish(self._connect_id)
            self._connect_id = None
        self.state = SessionState.IDLE
        ping_id = self._liveness.stop()
        if ping_id is not None:
            self._requests.finish(ping_id)
        # Replies for a dead socket go nowhere; requests never drained wait for the next.
        self._outbox.clear()
        self._requests.unsend()
        return []

    def ping(self, *, now: float) -> str:
        return self._request("signalwire.ping", {"timestamp": now})

    def subscribe(self, contexts: Sequence[str]) -> str | None:
        names = validate.contexts_list(contexts)
        if not names:
            return None
        request_id = self._request("signalwire.receive", {"contexts": names})
        self._contexts.extend(name for name in names if name not in self._contexts)
        return request_id

    def unsubscribe(self, contexts: Sequence[str]) -> str | None:
        names = validate.contexts_list(contexts)
        if not names:
            return None
        request_id = self._request("signalwire.unreceive", {"contexts": names})
        self._contexts = [name for name in self._contexts if name not in names]
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
        plan = validate.devices_plan(devices)
        params: JSONObject = {"tag": "", "devices": plan}
        if max_duration is not None:
            params["max_duration"] = validate.positive_int("max_duration", max_duration)
        if region is not None:
            params["region"] = validate.non_empty_str("region", region)
        if node_id is not None:
            params["node_id"] = validate.non_empty_str("node_id", node_id)
        if max_price_per_minute is not None:
            params["max_price_per_minute"] = validate.positive_number(
                "max_price_per_minute", max_price_per_minute
            )
        # The plain float/str checks first: the validators only for anything else.
        if type(dial_timeout) is float and 0.0 < dial_timeout < _INF:
            timeout = dial_timeout
        else:
            timeout = validate.positive_number("dial_timeout", dial_timeout)
        if tag is None:
            tag = self._new_tag()
        if type(tag) is not str or not tag:
            validate.non_empty_str("tag", tag)
        if tag in self._tracker.dials:
            raise LocalProtocolError(f"tag {tag!r} is already in use by another dial")
        params["tag"] = tag
        request = PendingRequest("calling.dial", None, tag)
        request_id = self._requests.add(request, params, self.state is SessionState.READY)
        self._tracker.add_dial(tag, request_id, now + timeout, max_duration, False)
        return tag

    def cancel_dial(self, tag: str, *, now: float) -> bool:
        """Abandon a dial: end every live leg under ``tag`` (the winner too) and tombstone it.

        Returns whether anything was abandoned. Use it when the caller gives up on a dial
        whose outcome it has not handed on (cancellation, its own deadline).
        """
        return self._tracker.cancel_dial(tag, now)

    # ------------------------------------------------------------------ call commands

    def play(
        self,
        call_id: str,
        media: Any,
        *,
        volume: float | None = None,
        direction: str | None = None,
        loop: int | None = None,
    ) -> tuple[str, str]:
        """Queue ``calling.play``; return ``(request_id, control_id)``."""
        call = self._live_call(call_id)
        params: JSONObject = {"control_id": "", "play": validate.media_list(media)}
        if volume is not None:
            params["volume"] = validate.number("volume", volume)
        if direction is not None:
            params["direction"] = validate.non_empty_str("direction", direction)
        if loop is not None:
            params["loop"] = validate.positive_int("loop", loop)
        control_id = self._new_id()
        params["control_id"] = control_id
        request = PendingRequest("calling.play", call_id=call_id, control_id=control_id)
        request_id = self._request(request, {"node_id": call.node_id, "call_id": call_id, **params})
        self._tracker.add_play(control_id, call_id)
        return request_id, control_id

    def play_control(
        self, call_id: str, control_id: str, action: str, *, volume: float | None = None
    ) -> str:
        """``calling.play.pause|resume|stop|volume`` for a running play."""
        if action not in _PLAY_ACTIONS:
            raise LocalProtocolError(f"action: must be one of {sorted(_PLAY_ACTIONS)}")
        call = self._live_call(call_id)
        params: JSONObject = {"control_id": validate.non_empty_str("control_id", control_id)}
        if action == "volume":
            params["volume"] = validate.number("volume", volume)
        return self._call_request(call, f"calling.play.{action}", params)

    def end(self, call_id: str, reason: str = "hangup") -> str:
        call = self._live_call(call_id)
        return self._call_request(
            call, "calling.end", {"reason": validate.non_empty_str("reason", reason)}
        )

    def answer(self, call_id: str) -> str:
        return self._call_request(self._live_call(call_id), "calling.answer", {})

    def execute(self, method: str, params: Mapping[str, Any], *, call_id: str | None = None) -> str:
        """Send any request. With ``call_id``, ``node_id`` and ``call_id`` are prefixed."""
        validate.non_empty_str("method", method)
        body = validate.json_params("params", params)
        if call_id is None:
            return self._request(method, body)
        return self._call_request(self._live_call(call_id), method, body)

    # ------------------------------------------------------------------ input

    def receive(self, text: str | bytes, *, now: float) -> list[Event]:
        """Process one text message. Raises ``RemoteProtocolError`` and nothing else."""
        self._liveness.heard(now)
        message = wire.parse(text)
        events: list[Event] = []
        if isinstance(message, wire.Request):
            if message.method == "signalwire.event":  # nine frames in ten: inlined to the handler
                if message.id is not None:
                    self._outbox.append(wire.encode_ack(message.id))
                envelope = message.params
                if type(envelope) is dict:
                    event_type = envelope.get("event_type")
                    inner = envelope.get("params")
                    if type(event_type) is not str or type(inner) is not dict:
                        raise RemoteProtocolError(
                            "signalwire.event without a string event_type and params object"
                        )
                    timestamp = envelope.get("timestamp")
                    if type(timestamp) is not float:  # the usual case needs no conversion
                        timestamp = wire.timestamp(timestamp)
                    handler = self._tracker.handlers.get(event_type)
                    if handler is not None:
                        handler(inner, timestamp, now, events)
                    else:
                        self._on_other_event(event_type, inner, timestamp, events)
            else:
                self._on_server_request(message, now, events)
        elif message.id is None:
            raise RemoteProtocolError(f"error reply without an id: {message.message!r}")
        else:
            self._on_reply(message, now, events)
        return events

    # ------------------------------------------------------------------ internals: requests

    def _request(self, request: PendingRequest | str, params: JSONObject) -> str:
        if isinstance(request, str):
            request = PendingRequest(request)
        return self._requests.add(request, params, send=self.state is SessionState.READY)

    def _call_request(self, call: TrackedCall, method: str, params: JSONObject) -> str:
        body = {"node_id": call.node_id, "call_id": call.call_id, **params}
        return self._request(PendingRequest(method, call_id=call.call_id), body)

    def _live_call(self, call_id: str) -> TrackedCall:
        call = self._tracker.calls.get(call_id)
        if call is None:
            raise LocalProtocolError(f"call {call_id!r} is not a live call of this session")
        return call

    def _end_leg(self, node_id: str, call_id: str, reason: str) -> str:
        """Queue an internal hang-up; it is re-sent after a reconnect until answered."""
        params: JSONObject = {"node_id": node_id, "call_id": call_id, "reason": reason}
        request = PendingRequest("calling.end", call_id=call_id, surface=False, resend=params)
        return self._request(request, params)

    def _flush_held(self) -> None:
        self._requests.flush()

    # ------------------------------------------------------------------ internals: replies

    def _on_reply(
        self, message: wire.Result | wire.ErrorReply, now: float, events: list[Event]
    ) -> None:
        request_id = str(message.id)
        if request_id == self._connect_id:
            self._on_connect_reply(message, now, events)
            return
        request = self._requests.take(request_id)
        if request is None:
            if self._requests.is_recent(request_id):
                return
            raise RemoteProtocolError(f"reply to a request that was never made: id {request_id!r}")
        if request_id == self._liveness.ping_id:
            self._liveness.answered(ok=isinstance(message, wire.Result))
            return
        failure: tuple[int, str] | None
        if isinstance(message, wire.ErrorReply):
            failure, data = (message.code, message.message), message.data
        else:
            failure, data = wire.result_failure(message.result), None
        if request.dial_tag is not None:
            if failure is not None:
                events.extend(self._tracker.dial_refused(request.dial_tag, *failure, now))
            return
        if failure is None:
            if request.surface:
                assert isinstance(message, wire.Result)
                result = message.result if isinstance(message.result, dict) else {}
                events.append(
                    RequestSucceeded(request_id=request_id, method=request.method, result=result)
                )
            return
        code, text = failure
        gone = request.call_id is not None and code in _GONE_CODES
        if request.control_id is not None:
            self._tracker.drop_play(request.control_id)
        if request.surface:
            events.append(
                RequestFailed(
                    request_id=request_id,
                    method=request.method,
                    code=code,
                    message=text,
                    data=data,
                    call_gone=gone,
                )
            )
        if gone:
            assert request.call_id is not None
            self._tracker.call_gone(request.call_id, events)

    def _on_connect_reply(
        self, message: wire.Result | wire.ErrorReply, now: float, events: list[Event]
    ) -> None:
        if isinstance(message, wire.ErrorReply):
            self._connect_id = None
            self._requests.finish(str(message.id))
            # PROTOCOL.md: retry fresh when stored resume state was sent and refused. We
            # read "resume state" as the protocol (authorization_state goes with it when
            # we have one): a refused resume without a blob is just as stale.
            retry_fresh = self._resume_requested and message.code in _STALE_STATE_CODES
            self.state = SessionState.IDLE
            events.append(
                ConnectFailed(code=message.code, message=message.message, retry_fresh=retry_fresh)
            )
            if retry_fresh:
                self.protocol = None
                self._authorization_state = None
                self._reset_session(events)
                self._had_session = False  # already reset: the next session starts clean
            return
        result = message.result
        if not isinstance(result, dict):
            raise RemoteProtocolError("signalwire.connect result is not an object")
        protocol = str_field(result, "protocol", "signalwire.connect result")
        self._connect_id = None
        self._requests.finish(str(message.id))
        flag = result.get("session_restored")
        restored = self._resume_requested and (
            flag if isinstance(flag, bool) else protocol == self.protocol
        )
        if self._resume_requested and not restored:
            self._authorization_state = None  # it belonged to the session that was refused
        self.protocol = protocol
        identity = result.get("identity")
        self.identity = identity if isinstance(identity, str) else None
        draining = self.state is SessionState.DRAINING
        if not draining:
            self.state = SessionState.READY
        self._liveness.ready(now)
        events.append(
            Connected(
                protocol=protocol,
                identity=self.identity,
                session_restored=restored,
                resume_requested=self._resume_requested,
                raw=result,
            )
        )
        if restored or not self._had_session:
            self._settle_in_flight(events)
        else:
            self._reset_session(events)
        self._had_session = True
        if not draining:
            self._flush_held()

    def _settle_in_flight(self, events: list[Event]) -> None:
        """Decide the fate of requests whose replies were lost with the previous socket."""
        for request_id, request in self._requests.in_flight():
            self._requests.finish(request_id)
            if request.dial_tag is not None:
                continue  # reconciled by its tag: the session's events will resolve it
            if request.resend is not None:
                self._request(replace(request, sent=False), request.resend)
            else:
                self._fail_lost(request_id, request, events)

    def _fail_lost(self, request_id: str, request: PendingRequest, events: list[Event]) -> None:
        assert request.surface  # internal pings die with their socket, hang-ups are re-sent
        if request.control_id is not None:
            self._tracker.drop_play(request.control_id)
        events.append(
            RequestFailed(
                request_id=request_id,
                method=request.method,
                code=-1,
                message="connection lost before the reply arrived",
                connection_lost=True,
            )
        )

    def _reset_session(self, events: list[Event]) -> None:
        """The server did not keep the session: fail everything that lived in it.

        Internal hang-ups are re-sent all the same (a call the old session left behind
        may still be up). Call commands still waiting for a socket fail with the call.
        """
        self._settle_in_flight(events)
        lost = set(self._tracker.calls)
        for request_id, request in self._requests.held():
            if request.surface and request.call_id in lost:
                self._requests.withdraw(request_id)
                self._fail_lost(request_id, request, events)
        self._tracker.reset(events)

    # ------------------------------------------------------------------ internals: server requests

    def _on_server_request(self, message: wire.Request, now: float, events: list[Event]) -> None:
        params = message.params
        method = message.method
        if method == "signalwire.ping":  # signalwire.event is handled in receive()
            if message.id is not None:
                reply: JSONObject = {}
                if isinstance(params, dict):
                    for key in ("timestamp", "payload"):
                        if key in params:
                            reply[key] = params[key]
                self._outbox.append(wire.encode_result(message.id, reply))
        elif method == "signalwire.disconnect":
            if message.id is not None:
                self._outbox.append(wire.encode_ack(message.id))
            if not isinstance(params, dict):
                return  # PROTOCOL.md 2.2: answered, otherwise ignored
            restart = params.get("restart") is True
            if restart:
                self.protocol = None
                self._authorization_state = None
            if self.state is not SessionState.IDLE:
                self.state = SessionState.DRAINING
            events.append(DisconnectRequested(restart=restart))
        elif message.id is not None:
            self._outbox.append(
                wire.encode_error(message.id, -32601, f"method not found: {method}")
            )

    def _on_other_event(
        self, event_type: str, inner: JSONObject, timestamp: float | None, events: list[Event]
    ) -> None:
        if event_type == "signalwire.authorization.state":
            value = inner.get("authorization_state")
            if isinstance(value, str) and value:
                self._authorization_state = value
            return
        events.append(UnhandledEvent(event_type=event_type, timestamp=timestamp, params=inner))

    # ------------------------------------------------------------------ internals: liveness

    def _check_liveness(self, now: float, events: list[Event]) -> None:
        if self.state is SessionState.IDLE:
            return
        lost, missed = self._liveness.check(
            now, pinging=self.state is SessionState.READY, send_ping=self._send_ping
        )
        if missed is not None:
            self._requests.finish(missed)
        if lost is not None:
            events.append(lost)

    def _send_ping(self, now: float) -> str:
        return self._request(PendingRequest("signalwire.ping", surface=False), {"timestamp": now})
