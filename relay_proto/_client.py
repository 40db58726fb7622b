"""The client role: a RELAY session as a pure state machine.

Inputs are whole WebSocket text messages, caller commands and the current time; outputs are
events (returned) and text frames (queued; drain them with ``data_to_send()`` after ANY
call, even one that raised). The core never reads a clock: calls that start timers take
``now``, ``next_deadline()`` says when to call ``handle_timer(now)``.

Invariants:

* Every ``signalwire.event`` that carries an id is acknowledged exactly once per delivery,
  before anything else is done with it, whatever its type or content.
* Control replies (acks, pongs, disconnect replies) go straight to the outbox in every
  state; requests go out only while READY and otherwise wait in a bounded queue.
* Each dial resolves exactly once (``DialAnswered``, ``DialFailed`` or ``DialTimedOut``),
  or is abandoned by ``cancel_dial()``; after that its tag is kept for a grace period so a
  late leg is ended on sight and never surfaces as a call.
* Call and play states only move forward; duplicates produce no events.
* A request whose reply was lost with a socket is never re-sent blindly: a dial is
  reconciled by its tag, hang-ups queued for cleanup are re-sent (they are idempotent),
  anything else fails with ``connection_lost``.
"""

from __future__ import annotations

import heapq
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _validate as validate
from . import _wire as wire
from ._dials import DialRecord, DialStatus, LegRecord, end_reason_for
from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import (
    CallInfo,
    CallLost,
    CallState,
    CallStateChanged,
    Connected,
    ConnectFailed,
    DialAnswered,
    DialFailed,
    DialFailureCause,
    DialTimedOut,
    DisconnectRequested,
    Event,
    InboundCall,
    LivenessLost,
    MaxDurationReached,
    PlayState,
    PlayStateChanged,
    RequestFailed,
    RequestSucceeded,
    SessionState,
    UnhandledEvent,
)

JSONObject = dict[str, Any]

PROTOCOL_VERSION: JSONObject = {"major": 2, "minor": 0, "revision": 0}
DEFAULT_AGENT = "relay-proto/0.1"
_STALE_STATE_CODES = frozenset({-32002, -32003, -32602})
_GONE_CODES = frozenset({404, 410})
_RECENT_LIMIT = 4096
_ENDING = CallState.ENDING.rank
_PLAY_ACTIONS = frozenset({"pause", "resume", "stop", "volume"})


def _uuid4() -> str:
    return str(uuid.uuid4())


@dataclass(slots=True)
class _Request:
    method: str
    #: ``tag`` for dials, ``call_id`` for call commands, else None.
    key: str | None = None
    #: Whether its outcome is reported as ``RequestSucceeded``/``RequestFailed``.
    surface: bool = True
    #: For internal hang-ups: the params to re-send after a reconnect.
    resend: JSONObject | None = None
    #: For ``calling.play``: the play it started.
    control_id: str | None = None
    sent: bool = False


@dataclass(slots=True)
class _Call:
    call_id: str
    node_id: str
    tag: str | None
    device: JSONObject
    direction: str
    state: CallState
    context: str | None
    raw: JSONObject
    max_duration_at: float | None = None

    def info(self) -> CallInfo:
        return CallInfo(
            call_id=self.call_id,
            node_id=self.node_id,
            tag=self.tag,
            device=self.device,
            direction=self.direction,
            state=self.state,
            context=self.context,
            raw=self.raw,
        )


@dataclass(order=True, slots=True)
class _Timer:
    when: float
    seq: int
    kind: str = field(compare=False)
    key: str = field(compare=False)


def _str_field(params: Mapping[str, Any], name: str, where: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise RemoteProtocolError(f"{where}: missing or invalid {name!r}")
    return value


def _opt_str(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    return value if isinstance(value, str) else None


def _device_of(params: Mapping[str, Any]) -> JSONObject:
    device = params.get("device")
    return device if isinstance(device, dict) else {}


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
            validate.non_empty_str("jwt_token", jwt_token)
            self._auth: JSONObject = {"jwt_token": jwt_token}
        else:
            validate.non_empty_str("project", project)
            validate.non_empty_str("token", token)
            self._auth = {"project": project, "token": token}
        self._contexts = validate.contexts_list(contexts)
        self._agent = validate.non_empty_str("agent", agent)
        self._new_id = id_factory or _uuid4
        self._new_tag = tag_factory or _uuid4
        self._grace = validate.positive_number("tombstone_grace", tombstone_grace)
        self._ping_interval = (
            None
            if ping_interval is None
            else validate.positive_number("ping_interval", ping_interval)
        )
        self._max_ping_failures = validate.positive_int("max_ping_failures", max_ping_failures)
        self._silence_timeout = (
            None
            if silence_timeout is None
            else validate.positive_number("silence_timeout", silence_timeout)
        )
        self._max_queued = validate.positive_int("max_queued", max_queued)

        self.state = SessionState.IDLE
        self.protocol: str | None = None
        self.identity: str | None = None
        self._authorization_state: str | None = None
        self._connect_id: str | None = None
        self._resume_requested = False
        self._had_session = False

        self._outbox: list[str] = []
        self._held: deque[tuple[str, str, JSONObject]] = deque()
        self._requests: dict[str, _Request] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._dials: dict[str, DialRecord] = {}
        self._calls: dict[str, _Call] = {}
        self._plays: dict[str, tuple[str, PlayState | None]] = {}
        self._timers: list[_Timer] = []
        self._timer_seq = 0

        self._last_rx: float | None = None
        self._next_ping_at: float | None = None
        self._ping_id: str | None = None
        self._ping_failures = 0
        self._liveness_reported = False

    def __repr__(self) -> str:
        return (
            f"<ClientConnection state={self.state.value} protocol={self.protocol!r} "
            f"dials={len(self.pending_dials)} calls={len(self._calls)}>"
        )

    # ------------------------------------------------------------------ introspection

    @property
    def pending_dials(self) -> frozenset[str]:
        return frozenset(t for t, d in self._dials.items() if d.status is DialStatus.PENDING)

    @property
    def live_call_ids(self) -> frozenset[str]:
        return frozenset(self._calls)

    def get_call(self, call_id: str) -> CallInfo | None:
        call = self._calls.get(call_id)
        return None if call is None else call.info()

    @property
    def pending_request_count(self) -> int:
        return len(self._requests) + len(self._held)

    # ------------------------------------------------------------------ output and time

    def data_to_send(self) -> list[str]:
        """Drain and return the text frames to write, in order."""
        out, self._outbox = self._outbox, []
        return out

    def next_deadline(self) -> float | None:
        """The earliest time at which ``handle_timer`` has work to do, or None."""
        while self._timers and not self._timer_valid(self._timers[0]):
            heapq.heappop(self._timers)
        best = self._timers[0].when if self._timers else None
        for candidate in self._liveness_deadlines():
            if best is None or candidate < best:
                best = candidate
        return best

    def handle_timer(self, *, now: float) -> list[Event]:
        events: list[Event] = []
        while self._timers and self._timers[0].when <= now:
            timer = heapq.heappop(self._timers)
            if self._timer_valid(timer):
                self._fire(timer, now, events)
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
        self._last_rx = now
        return request_id

    def connection_lost(self, *, now: float) -> list[Event]:
        """The socket is gone. Requests in flight wait for the next ``Connected``."""
        if self._connect_id is not None:
            self._forget(self._connect_id)
            self._connect_id = None
        self.state = SessionState.IDLE
        self._last_rx = None
        self._next_ping_at = None
        if self._ping_id is not None:
            self._requests.pop(self._ping_id, None)
            self._ping_id = None
        self._ping_failures = 0
        self._liveness_reported = False
        return []

    def ping(self, *, now: float) -> str:
        return self._request("signalwire.ping", {"timestamp": now})

    def subscribe(self, contexts: Sequence[str]) -> str | None:
        names = validate.contexts_list(contexts)
        if not names:
            return None
        self._contexts.extend(name for name in names if name not in self._contexts)
        return self._request("signalwire.receive", {"contexts": names})

    def unsubscribe(self, contexts: Sequence[str]) -> str | None:
        names = validate.contexts_list(contexts)
        if not names:
            return None
        self._contexts = [name for name in self._contexts if name not in names]
        return self._request("signalwire.unreceive", {"contexts": names})

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
        timeout = validate.positive_number("dial_timeout", dial_timeout)
        if tag is None:
            tag = self._new_tag()
        validate.non_empty_str("tag", tag)
        if tag in self._dials:
            raise LocalProtocolError(f"tag {tag!r} is already in use by another dial")
        params["tag"] = tag
        request_id = self._request("calling.dial", params, key=tag)
        record = DialRecord(
            tag=tag,
            request_id=request_id,
            deadline=now + timeout,
            max_duration=max_duration,
            sent=self._requests[request_id].sent,
        )
        self._dials[tag] = record
        self._schedule(record.deadline, "dial", tag)
        return tag

    def cancel_dial(self, tag: str, *, now: float) -> bool:
        """Abandon a dial: end every live leg under ``tag`` (the winner too) and tombstone it.

        Returns whether anything was abandoned. Use it when the caller gives up on a dial
        whose outcome it has not handed on (cancellation, its own deadline).
        """
        record = self._dials.get(tag)
        if record is None or record.status is DialStatus.DEAD:
            return False
        if record.status is DialStatus.ANSWERED:
            winner = record.winner
            assert winner is not None
            call = self._calls.get(winner)
            if call is None or call.state.rank >= CallState.ENDING.rank:
                return False
        self._kill(record, now)
        return True

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
        request_id = self._call_request(call, "calling.play", params)
        self._requests[request_id].control_id = control_id
        self._plays[control_id] = (call_id, None)
        return request_id, control_id

    def play_control(
        self, call_id: str, control_id: str, action: str, *, volume: float | None = None
    ) -> str:
        """``calling.play.pause|resume|stop|volume`` for a running play."""
        if action not in _PLAY_ACTIONS:
            raise LocalProtocolError(f"action: must be one of {sorted(_PLAY_ACTIONS)}")
        call = self._live_call(call_id)
        params: JSONObject = {"control_id": control_id}
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
        self._last_rx = now
        message = wire.parse(text)
        events: list[Event] = []
        if isinstance(message, wire.Request):
            self._on_server_request(message, now, events)
        elif message.id is None:
            raise RemoteProtocolError(f"error reply without an id: {message.message!r}")
        else:
            self._on_reply(message, now, events)
        return events

    # ------------------------------------------------------------------ internals: requests

    def _request(
        self,
        method: str,
        params: JSONObject,
        *,
        key: str | None = None,
        surface: bool = True,
        resend: JSONObject | None = None,
    ) -> str:
        request_id = self._new_id()
        request = _Request(method, key, surface, resend)
        if self.state is SessionState.READY:
            request.sent = True
            self._outbox.append(wire.encode_request(request_id, method, params))
        else:
            if len(self._held) >= self._max_queued:
                raise LocalProtocolError(
                    f"{len(self._held)} requests already wait for a connection (max_queued)"
                )
            self._held.append((request_id, method, params))
        self._requests[request_id] = request
        return request_id

    def _call_request(self, call: _Call, method: str, params: JSONObject) -> str:
        body = {"node_id": call.node_id, "call_id": call.call_id, **params}
        return self._request(method, body, key=call.call_id)

    def _live_call(self, call_id: str) -> _Call:
        call = self._calls.get(call_id)
        if call is None:
            raise LocalProtocolError(f"call {call_id!r} is not a live call of this session")
        return call

    def _forget(self, request_id: str) -> None:
        self._requests.pop(request_id, None)
        self._recent[request_id] = None
        if len(self._recent) > _RECENT_LIMIT:
            self._recent.popitem(last=False)

    def _end_leg(self, node_id: str, call_id: str, reason: str) -> str:
        """Queue an internal hang-up; it is re-sent after a reconnect until answered."""
        params: JSONObject = {"node_id": node_id, "call_id": call_id, "reason": reason}
        return self._request("calling.end", params, key=call_id, surface=False, resend=params)

    def _flush_held(self) -> None:
        while self._held:
            request_id, method, params = self._held.popleft()
            request = self._requests.get(request_id)
            if request is None:
                continue
            request.sent = True
            if request.method == "calling.dial" and request.key in self._dials:
                self._dials[request.key].sent = True
            self._outbox.append(wire.encode_request(request_id, method, params))

    # ------------------------------------------------------------------ internals: replies

    def _on_reply(
        self, message: wire.Result | wire.ErrorReply, now: float, events: list[Event]
    ) -> None:
        request_id = str(message.id)
        if request_id == self._connect_id:
            self._connect_id = None
            self._forget(request_id)
            self._on_connect_reply(message, now, events)
            return
        request = self._requests.get(request_id)
        if request is None:
            if request_id in self._recent:
                return
            raise RemoteProtocolError(f"reply to a request that was never made: id {request_id!r}")
        self._forget(request_id)
        if request_id == self._ping_id:
            self._ping_id = None
            if isinstance(message, wire.Result):
                self._ping_failures = 0
            return
        failure: tuple[int, str] | None
        if isinstance(message, wire.ErrorReply):
            failure, data = (message.code, message.message), message.data
        else:
            failure, data = wire.result_failure(message.result), None
        if request.method == "calling.dial":
            if failure is not None:
                self._on_dial_refused(request, failure, now, events)
            return
        if not request.surface:
            return
        if failure is None:
            assert isinstance(message, wire.Result)
            result = message.result if isinstance(message.result, dict) else {}
            events.append(
                RequestSucceeded(request_id=request_id, method=request.method, result=result)
            )
            return
        code, text = failure
        gone = request.key in self._calls and code in _GONE_CODES
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
        if request.control_id is not None:
            self._plays.pop(request.control_id, None)
        if gone:
            assert request.key is not None
            self._drop_call(request.key)
            events.append(CallLost(call_id=request.key))

    def _on_connect_reply(
        self, message: wire.Result | wire.ErrorReply, now: float, events: list[Event]
    ) -> None:
        if isinstance(message, wire.ErrorReply):
            retry_fresh = self._resume_requested and message.code in _STALE_STATE_CODES
            self.state = SessionState.IDLE
            if retry_fresh:
                self.protocol = None
                self._authorization_state = None
            events.append(
                ConnectFailed(code=message.code, message=message.message, retry_fresh=retry_fresh)
            )
            if retry_fresh:
                self._reset_session(events)
            return
        result = message.result
        if not isinstance(result, dict):
            raise RemoteProtocolError("signalwire.connect result is not an object")
        protocol = _str_field(result, "protocol", "signalwire.connect result")
        flag = result.get("session_restored")
        if self._resume_requested:
            restored = flag is True if isinstance(flag, bool) else protocol == self.protocol
        else:
            restored = False
        if not restored and self.protocol != protocol:
            self._authorization_state = None
        self.protocol = protocol
        identity = result.get("identity")
        self.identity = identity if isinstance(identity, str) else None
        draining = self.state is SessionState.DRAINING
        if not draining:
            self.state = SessionState.READY
        if self._ping_interval is not None:
            self._next_ping_at = now + self._ping_interval
        events.append(
            Connected(
                protocol=protocol,
                identity=self.identity,
                session_restored=restored,
                resume_requested=self._resume_requested,
                raw=result,
            )
        )
        if restored:
            self._settle_in_flight(events)
        elif self._had_session:
            self._reset_session(events)
        self._had_session = True
        if not draining:
            self._flush_held()

    def _in_flight(self) -> list[tuple[str, _Request]]:
        return [(rid, req) for rid, req in self._requests.items() if req.sent]

    def _settle_in_flight(self, events: list[Event]) -> None:
        """After a resumed session: decide the fate of requests whose replies were lost."""
        for request_id, request in self._in_flight():
            self._forget(request_id)
            if request.method == "calling.dial":
                continue  # reconciled by its tag: the session's events will resolve it
            if request.resend is not None:
                self._request("calling.end", request.resend, surface=False, resend=request.resend)
                continue
            self._fail_lost(request_id, request, events)

    def _fail_lost(self, request_id: str, request: _Request, events: list[Event]) -> None:
        if request.control_id is not None:
            self._plays.pop(request.control_id, None)
        if request.surface:
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
        """The server did not keep the session: fail everything that lived in it."""
        for request_id, request in self._in_flight():
            self._forget(request_id)
            if request.method != "calling.dial":
                self._fail_lost(request_id, request, events)
        for tag, record in list(self._dials.items()):
            if record.status is DialStatus.PENDING and record.sent:
                del self._dials[tag]
                events.append(
                    DialFailed(
                        tag=tag,
                        cause=DialFailureCause.CONNECTION_LOST,
                        code=None,
                        message="the session was lost and the server did not restore it",
                        reason=None,
                        source=None,
                        legs=record.legs_snapshot(),
                    )
                )
            elif record.status is not DialStatus.PENDING:
                del self._dials[tag]
        for call_id in list(self._calls):
            self._drop_call(call_id)
            events.append(CallLost(call_id=call_id))

    def _drop_call(self, call_id: str) -> None:
        del self._calls[call_id]
        self._drop_plays(call_id)

    def _on_dial_refused(
        self, request: _Request, failure: tuple[int, str], now: float, events: list[Event]
    ) -> None:
        assert request.key is not None
        record = self._dials.get(request.key)
        if record is None or record.status is not DialStatus.PENDING:
            return
        code, text = failure
        self._kill(record, now)
        events.append(
            DialFailed(
                tag=record.tag,
                cause=DialFailureCause.REFUSED,
                code=code,
                message=text,
                reason=None,
                source=None,
                legs=record.legs_snapshot(),
            )
        )

    # ------------------------------------------------------------------ internals: server requests

    def _on_server_request(self, message: wire.Request, now: float, events: list[Event]) -> None:
        params = message.params
        method = message.method
        if method == "signalwire.event":
            if message.id is not None:
                self._outbox.append(wire.encode_result(message.id, {}))
            if isinstance(params, dict):
                self._on_event(params, now, events)
        elif method == "signalwire.ping":
            if message.id is not None:
                reply: JSONObject = {}
                if isinstance(params, dict):
                    for key in ("timestamp", "payload"):
                        if key in params:
                            reply[key] = params[key]
                self._outbox.append(wire.encode_result(message.id, reply))
        elif method == "signalwire.disconnect":
            if message.id is not None:
                self._outbox.append(wire.encode_result(message.id, {}))
            restart = isinstance(params, dict) and params.get("restart") is True
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

    def _on_event(self, envelope: JSONObject, now: float, events: list[Event]) -> None:
        event_type = envelope.get("event_type")
        inner = envelope.get("params")
        if not isinstance(event_type, str) or not isinstance(inner, dict):
            raise RemoteProtocolError(
                "signalwire.event without a string event_type and params object"
            )
        stamp = envelope.get("timestamp")
        timestamp = (
            float(stamp) if isinstance(stamp, int | float) and not isinstance(stamp, bool) else None
        )
        if event_type == "calling.call.state":
            self._on_call_state(inner, timestamp, now, events)
        elif event_type == "calling.call.dial":
            self._on_dial_event(inner, now, events)
        elif event_type == "calling.call.play":
            self._on_play_event(inner, events)
        elif event_type == "calling.call.receive":
            self._on_receive(inner, events)
        elif event_type == "signalwire.authorization.state":
            value = inner.get("authorization_state")
            if isinstance(value, str) and value:
                self._authorization_state = value
        else:
            events.append(UnhandledEvent(event_type=event_type, timestamp=timestamp, params=inner))

    def _on_call_state(
        self, inner: JSONObject, timestamp: float | None, now: float, events: list[Event]
    ) -> None:
        where = "calling.call.state"
        call_id = _str_field(inner, "call_id", where)
        node_id = _str_field(inner, "node_id", where)
        raw_state = _str_field(inner, "call_state", where)
        try:
            state = CallState(raw_state)
        except ValueError:
            raise RemoteProtocolError(f"{where}: unknown call_state {raw_state!r}") from None
        tag = _opt_str(inner, "tag")
        end_reason = _opt_str(inner, "end_reason")
        previous: CallState | None = None
        moved = False
        record = self._dials.get(tag) if tag is not None else None
        if record is not None:
            leg = record.legs.get(call_id)
            if leg is None:
                leg = record.legs[call_id] = LegRecord(call_id, node_id, _device_of(inner), state)
                moved = True
            elif state.rank > leg.state.rank:
                previous, leg.state, moved = leg.state, state, True
            if moved and end_reason is not None:
                leg.end_reason = end_reason
            if record.needs_end(leg):
                leg.end_sent = True
                self._end_leg(leg.node_id, call_id, end_reason_for(leg))
        call = self._calls.get(call_id)
        if call is not None:
            if state.rank > call.state.rank:
                previous, call.state, moved = call.state, state, True
            else:
                moved = False
            if state is CallState.ENDED:
                self._drop_call(call_id)
        elif record is None:
            return  # a call this session does not track: acknowledged and ignored
        if moved:
            events.append(
                CallStateChanged(
                    call_id=call_id,
                    node_id=node_id,
                    tag=tag,
                    state=state,
                    previous=previous,
                    end_reason=end_reason,
                    timestamp=timestamp,
                    raw=inner,
                )
            )

    def _on_dial_event(self, inner: JSONObject, now: float, events: list[Event]) -> None:
        where = "calling.call.dial"
        tag = _str_field(inner, "tag", where)
        dial_state = _str_field(inner, "dial_state", where)
        record = self._dials.get(tag)
        if record is None or dial_state == "dialing":
            return
        if dial_state == "answered":
            call_obj = inner.get("call")
            if not isinstance(call_obj, dict):
                raise RemoteProtocolError(f"{where}: answered without a call object")
            call_id = _str_field(call_obj, "call_id", where)
            node_id = _str_field(call_obj, "node_id", where)
            self._on_dial_answered(record, call_id, node_id, call_obj, now, events)
        elif dial_state == "failed":
            if record.status is not DialStatus.PENDING:
                return
            self._kill(record, now)
            events.append(
                DialFailed(
                    tag=tag,
                    cause=DialFailureCause.FAILED,
                    code=None,
                    message="every device failed",
                    reason=_opt_str(inner, "reason"),
                    source=_opt_str(inner, "source"),
                    legs=record.legs_snapshot(),
                )
            )
        else:
            raise RemoteProtocolError(f"{where}: unknown dial_state {dial_state!r}")

    def _on_dial_answered(
        self,
        record: DialRecord,
        call_id: str,
        node_id: str,
        call_obj: JSONObject,
        now: float,
        events: list[Event],
    ) -> None:
        leg = record.legs.get(call_id)
        if leg is None:
            leg = record.legs[call_id] = LegRecord(
                call_id, node_id, _device_of(call_obj), CallState.CREATED
            )
        if record.status is not DialStatus.PENDING:
            # A winner for a dial nobody waits for any more, or a second winner: end it.
            if record.winner != call_id and not leg.end_sent and leg.state.rank < _ENDING:
                leg.state = CallState.ANSWERED
                leg.end_sent = True
                self._end_leg(leg.node_id, call_id, "hangup")
            return
        if leg.state.rank < CallState.ANSWERED.rank:
            previous, leg.state = leg.state, CallState.ANSWERED
            events.append(
                CallStateChanged(
                    call_id=call_id,
                    node_id=node_id,
                    tag=record.tag,
                    state=CallState.ANSWERED,
                    previous=previous,
                    end_reason=None,
                    timestamp=None,
                    raw=call_obj,
                )
            )
        record.status = DialStatus.ANSWERED
        record.winner = call_id
        self._retire(record, now)
        device = _device_of(call_obj) or leg.device
        call = _Call(call_id, node_id, record.tag, device, "outbound", leg.state, None, call_obj)
        if leg.state.rank < CallState.ENDED.rank:
            self._calls[call_id] = call
            if record.max_duration is not None:
                call.max_duration_at = now + record.max_duration
                self._schedule(call.max_duration_at, "max_duration", call_id)
        events.append(DialAnswered(tag=record.tag, call=call.info(), legs=record.legs_snapshot()))
        for other in record.legs.values():
            if record.needs_end(other):
                other.end_sent = True
                self._end_leg(other.node_id, other.call_id, "hangup")

    def _on_play_event(self, inner: JSONObject, events: list[Event]) -> None:
        where = "calling.call.play"
        control_id = _str_field(inner, "control_id", where)
        raw_state = _str_field(inner, "state", where)
        try:
            state = PlayState(raw_state)
        except ValueError:
            raise RemoteProtocolError(f"{where}: unknown state {raw_state!r}") from None
        entry = self._plays.get(control_id)
        if entry is None:
            return
        call_id, current = entry
        if state is current:
            return
        if state.terminal:
            del self._plays[control_id]
        else:
            self._plays[control_id] = (call_id, state)
        events.append(
            PlayStateChanged(call_id=call_id, control_id=control_id, state=state, raw=inner)
        )

    def _on_receive(self, inner: JSONObject, events: list[Event]) -> None:
        where = "calling.call.receive"
        call_id = _str_field(inner, "call_id", where)
        node_id = _str_field(inner, "node_id", where)
        if call_id in self._calls:
            return  # a duplicate delivery
        raw_state = inner.get("call_state")
        try:
            state = CallState(raw_state) if isinstance(raw_state, str) else CallState.CREATED
        except ValueError:
            raise RemoteProtocolError(f"{where}: unknown call_state {raw_state!r}") from None
        call = _Call(
            call_id,
            node_id,
            _opt_str(inner, "tag"),
            _device_of(inner),
            "inbound",
            state,
            _opt_str(inner, "context"),
            inner,
        )
        if state is not CallState.ENDED:
            self._calls[call_id] = call
            events.append(InboundCall(call=call.info()))

    # ------------------------------------------------------------------ internals: dial lifecycle

    def _retire(self, record: DialRecord, now: float) -> None:
        """Start the grace period after which the tag is forgotten."""
        record.expires = now + self._grace
        self._schedule(record.expires, "tombstone", record.tag)

    def _kill(self, record: DialRecord, now: float) -> None:
        """Make a dial dead: end every live leg (winner included) and tombstone the tag."""
        record.status = DialStatus.DEAD
        if record.winner is not None and self._calls.pop(record.winner, None) is not None:
            self._drop_plays(record.winner)
        self._retire(record, now)
        if not record.sent:
            self._cancel_held(record.request_id)
        for leg in record.legs.values():
            if record.needs_end(leg):
                leg.end_sent = True
                self._end_leg(leg.node_id, leg.call_id, end_reason_for(leg))

    def _drop_plays(self, call_id: str) -> None:
        for control_id in [c for c, (cid, _) in self._plays.items() if cid == call_id]:
            del self._plays[control_id]

    def _cancel_held(self, request_id: str) -> None:
        """A dial abandoned before it was ever sent is simply not sent."""
        self._requests.pop(request_id, None)
        self._held = deque(item for item in self._held if item[0] != request_id)

    # ------------------------------------------------------------------ internals: timers

    def _schedule(self, when: float, kind: str, key: str) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, _Timer(when, self._timer_seq, kind, key))

    def _timer_valid(self, timer: _Timer) -> bool:
        if timer.kind == "dial":
            record = self._dials.get(timer.key)
            return (
                record is not None
                and record.status is DialStatus.PENDING
                and record.deadline == timer.when
            )
        if timer.kind == "tombstone":
            record = self._dials.get(timer.key)
            return record is not None and record.expires == timer.when
        call = self._calls.get(timer.key)
        return call is not None and call.max_duration_at == timer.when

    def _fire(self, timer: _Timer, now: float, events: list[Event]) -> None:
        if timer.kind == "dial":
            record = self._dials[timer.key]
            self._kill(record, now)
            events.append(DialTimedOut(tag=record.tag, legs=record.legs_snapshot()))
        elif timer.kind == "tombstone":
            del self._dials[timer.key]
        else:
            call = self._calls[timer.key]
            call.max_duration_at = None
            request_id = self._end_leg(call.node_id, call.call_id, "hangup")
            events.append(MaxDurationReached(call_id=call.call_id, request_id=request_id))

    def _liveness_deadlines(self) -> list[float]:
        if self.state is SessionState.IDLE or self._liveness_reported:
            return []
        out = []
        if self._next_ping_at is not None and self.state is SessionState.READY:
            out.append(self._next_ping_at)
        if self._silence_timeout is not None and self._last_rx is not None:
            out.append(self._last_rx + self._silence_timeout)
        return out

    def _check_liveness(self, now: float, events: list[Event]) -> None:
        if self.state is SessionState.IDLE or self._liveness_reported:
            return
        if (
            self._silence_timeout is not None
            and self._last_rx is not None
            and now >= self._last_rx + self._silence_timeout
        ):
            self._liveness_reported = True
            events.append(
                LivenessLost(reason=f"no frame from the server for {self._silence_timeout:g} s")
            )
            return
        if (
            self._next_ping_at is not None
            and self.state is SessionState.READY
            and now >= self._next_ping_at
        ):
            assert self._ping_interval is not None
            if self._ping_id is not None:
                self._ping_failures += 1
                self._forget(self._ping_id)
                self._ping_id = None
                if self._ping_failures >= self._max_ping_failures:
                    self._liveness_reported = True
                    events.append(
                        LivenessLost(reason=f"{self._ping_failures} pings went unanswered")
                    )
                    return
            self._ping_id = self._request("signalwire.ping", {"timestamp": now}, surface=False)
            self._next_ping_at = now + self._ping_interval
