"""Pair tests: the real client core against the real server core, frames in between.

Each test reads as a transcript: dial, move the fake clock, look at the client's events and
at the simulator's calls. Every pair made through the ``make_pair`` fixture has its
client's frames checked on teardown by ``check_client_frames``, an independent peer: the
stdlib ``json`` module plus a schema written here from PROTOCOL.md §2-6, so the client and
the simulator (which share ``_wire``) cannot share one mistake.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

import relay_proto.testing as testing_module
from relay_proto import (
    CallLost,
    CallState,
    CallStateChanged,
    Connected,
    DialAnswered,
    DialFailed,
    DialFailureCause,
    DialTimedOut,
    DisconnectRequested,
    Event,
    LocalProtocolError,
    MaxDurationReached,
    PlayState,
    PlayStateChanged,
    RequestSucceeded,
)
from relay_proto.testing import Faults, Outcome, OutcomeKind, Pair, Scenario, counter, phone

JSON = dict[str, Any]
A, B, C, D = "+15550000002", "+15550000003", "+15550000004", "+15550000005"
MakePair = Callable[..., Pair]
T = TypeVar("T")


def answer(after: float = 1.0, **kwargs: Any) -> Outcome:
    return Outcome(kind=OutcomeKind.ANSWER, after=after, **kwargs)


def busy(after: float = 1.0) -> Outcome:
    return Outcome(kind=OutcomeKind.BUSY, after=after)


def no_answer() -> Outcome:
    return Outcome(kind=OutcomeKind.NO_ANSWER)


def scenario(faults: Faults | None = None, **destinations: Outcome) -> Scenario:
    """``scenario(A=busy())`` keys destinations by the module's number names."""
    numbers = {"A": A, "B": B, "C": C, "D": D}
    return Scenario(
        destinations={numbers[name]: outcome for name, outcome in destinations.items()},
        faults=faults or Faults(),
    )


def of_type(events: list[Event], kind: type[T]) -> list[T]:
    return [event for event in events if isinstance(event, kind)]


def only(events: list[Event], kind: type[T]) -> T:
    (found,) = of_type(events, kind)
    return found


def to_number(device: JSON) -> str:
    number: str = device["params"]["to_number"]
    return number


# ---------------------------------------------------------------------------- the peer check

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def _no_constants(name: str) -> Any:
    raise AssertionError(f"{name} in a client frame")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _keys(
    params: JSON, required: set[str], optional: frozenset[str] | set[str] = frozenset()
) -> None:
    assert required <= set(params) <= required | optional, params


def _check_device(device: Any) -> None:
    assert isinstance(device, dict)
    assert set(device) == {"type", "params"}, device
    assert _is_text(device["type"])
    params = device["params"]
    assert isinstance(params, dict)
    if device["type"] == "phone":
        assert _E164.fullmatch(params["to_number"]), params
        assert _E164.fullmatch(params["from_number"]), params
        for key in ("timeout", "max_duration"):
            if key in params:
                assert _is_int(params[key]), params
                assert params[key] > 0, params


def _check_media(item: Any) -> None:
    assert isinstance(item, dict)
    assert set(item) == {"type", "params"}, item  # §6: always the nested form on the wire
    assert isinstance(item["params"], dict)
    required = {"tts": "text", "audio": "url", "silence": "duration", "ringtone": "name"}
    if item["type"] in required:
        assert required[item["type"]] in item["params"], item


def _check_request(method: str, params: JSON) -> None:
    """PROTOCOL.md §2-6, written out again without looking at ``_wire``/``_validate``."""
    if method == "signalwire.connect":
        _keys(
            params,
            {"version", "agent", "event_acks", "authentication"},
            {"contexts", "protocol", "authorization_state"},
        )
        assert params["version"] == {"major": 2, "minor": 0, "revision": 0}
        assert _is_text(params["agent"])
        assert params["event_acks"] is True
        auth = params["authentication"]
        assert set(auth) in ({"project", "token"}, {"jwt_token"}), auth
        assert all(_is_text(value) for value in auth.values())
        if "contexts" in params:
            assert params["contexts"]
            assert all(_is_text(c) for c in params["contexts"])
        if "authorization_state" in params:
            assert "protocol" in params  # only sent to resume
        for key in ("protocol", "authorization_state"):
            assert key not in params or _is_text(params[key])
    elif method == "signalwire.ping":
        _keys(params, set(), {"timestamp"})
        assert "timestamp" not in params or _is_number(params["timestamp"])
    elif method in ("signalwire.receive", "signalwire.unreceive"):
        _keys(params, {"contexts"})
        assert params["contexts"]
        assert all(_is_text(c) for c in params["contexts"])
    elif method == "calling.dial":
        _keys(
            params,
            {"tag", "devices"},
            {"region", "node_id", "max_price_per_minute", "max_duration"},
        )
        assert _is_text(params["tag"])
        devices = params["devices"]
        assert isinstance(devices, list)
        assert devices
        for group in devices:
            assert isinstance(group, list)
            assert group
            for device in group:
                _check_device(device)
        if "max_duration" in params:
            assert _is_int(params["max_duration"])
            assert params["max_duration"] > 0
        if "max_price_per_minute" in params:
            assert _is_number(params["max_price_per_minute"])
    elif method == "messaging.send":
        _keys(params, {"context", "to_number", "from_number"}, {"body", "media", "tags", "region"})
        assert "body" in params or params.get("media"), params
        for key in ("to_number", "from_number"):
            assert re.fullmatch(r"\+[1-9][0-9]{1,14}", params[key]), params
    elif method.startswith("calling."):
        assert _is_text(params["node_id"]), params
        assert _is_text(params["call_id"]), params
        call = {"node_id", "call_id"}
        if method == "calling.end":
            _keys(params, call | {"reason"})
            assert params["reason"] in {"hangup", "cancel", "busy", "decline"}, params
        elif method == "calling.answer":
            _keys(params, call)
        elif method == "calling.play":
            _keys(params, call | {"control_id", "play"}, {"volume", "direction", "loop"})
            assert _is_text(params["control_id"])
            assert isinstance(params["play"], list)
            assert params["play"]
            for item in params["play"]:
                _check_media(item)
        elif method == "calling.connect":
            optional = {"ringback", "tag", "max_duration", "max_price_per_minute", "status_url"}
            _keys(params, call | {"devices"}, optional)
            for group in params["devices"]:
                for device in group:
                    _check_device(device)
        elif method in _ACTION_STARTS:
            _keys(params, call | {"control_id"} | _ACTION_STARTS[method], _ANY_KEYS)
            assert _is_text(params["control_id"])
        elif method in ("calling.play.pause", "calling.play.resume") or method.endswith(".stop"):
            _keys(params, call | {"control_id"})
            assert _is_text(params["control_id"])
        else:
            assert method == "calling.play.volume", method
            _keys(params, call | {"control_id", "volume"})
            assert _is_number(params["volume"])
    else:
        raise AssertionError(f"the client sent an unexpected method {method!r}")


#: The action starts the state machine makes, with their required keys (beyond the ids).
_ACTION_STARTS = {
    "calling.record": {"record"},
    "calling.collect": set(),
    "calling.detect": {"detect"},
    "calling.send_digits": {"digits"},
    "calling.tap": {"tap", "device"},
}
_ANY_KEYS = {"digits", "speech", "initial_timeout", "timeout", "partial_results"}


def check_frame(text: Any) -> JSON:
    """One client frame on its own: a JSON-RPC 2.0 request of PROTOCOL.md's shape, or a
    reply (``result`` object, or ``error`` with an integer code and a string message)."""
    assert isinstance(text, str), text
    frame = json.loads(text, parse_constant=_no_constants)
    assert isinstance(frame, dict), text
    assert frame["jsonrpc"] == "2.0", text
    if "method" in frame:
        assert set(frame) == {"jsonrpc", "id", "method", "params"}, text
        assert _is_text(frame["id"]), text
        assert isinstance(frame["params"], dict), text
        _check_request(frame["method"], frame["params"])
    elif "result" in frame:
        assert set(frame) == {"jsonrpc", "id", "result"}, text
        assert isinstance(frame["result"], dict), text
    else:
        assert set(frame) == {"jsonrpc", "id", "error"}, text
        assert set(frame["error"]) == {"code", "message"}, text
        assert _is_int(frame["error"]["code"]), text
        assert isinstance(frame["error"]["message"], str), text
    return frame


def check_client_frames(pair: Pair) -> None:
    """Every frame the client wrote, parsed with ``json`` and checked against PROTOCOL.md.

    Requests: ``jsonrpc`` "2.0", a fresh string id, a known method with the params shape of
    its section. Replies: one per server request delivered (events, pings, disconnects),
    ``result`` ``{}`` for events and disconnects, the timestamp echoed for pings.
    """
    server_requests: dict[str | int, JSON] = {}
    deliveries: Counter[str | int] = Counter()
    for text in pair.server_frames:
        frame = json.loads(text)
        if "method" in frame and "id" in frame:
            server_requests[frame["id"]] = frame
            deliveries[frame["id"]] += 1
    request_ids: set[str] = set()
    replies: Counter[str | int] = Counter()
    for text in pair.client_frames:
        frame = check_frame(text)
        if "method" in frame:
            assert frame["id"] not in request_ids, f"request id reused: {text}"
            request_ids.add(frame["id"])
            continue
        assert "result" in frame, text  # the simulator asks nothing the client must refuse
        answered = server_requests.get(frame["id"])
        assert answered is not None, f"reply to nothing the server asked: {text}"
        replies[frame["id"]] += 1
        if answered["method"] == "signalwire.ping":
            expected = {
                k: v for k, v in answered["params"].items() if k in ("timestamp", "payload")
            }
            assert frame["result"] == expected, text
        else:
            assert frame["result"] == {}, text
    assert replies == deliveries, "every server request is answered once per delivery"


@pytest.fixture
def make_pair() -> Iterator[MakePair]:
    """Pairs whose client frames get the independent check when the test ends."""
    pairs: list[Pair] = []

    def factory(**kwargs: Any) -> Pair:
        pair = Pair(**kwargs)
        pairs.append(pair)
        return pair

    yield factory
    for pair in pairs:
        check_client_frames(pair)
        assert pair.protocol_errors == []
        for connection in pair.connections:
            assert connection.violations == []


def dial(pair: Pair, devices: list[list[JSON]], **kwargs: Any) -> str:
    tag = pair.client.dial(devices, now=pair.now, **kwargs)
    pair.pump()
    return tag


def resolve(pair: Pair, tag: str, max_seconds: float = 300.0) -> Event:
    """Run the clock until the dial ``tag`` resolves; return its resolution event."""
    events = pair.run_until(lambda: tag not in pair.client.pending_dials, max_seconds)
    (resolution,) = [
        e
        for e in events
        if isinstance(e, DialAnswered | DialFailed | DialTimedOut) and e.tag == tag
    ]
    return resolution


def answered_call(pair: Pair, devices: list[list[JSON]] | None = None, **kwargs: Any) -> str:
    resolution = resolve(pair, dial(pair, devices or [[phone(A)]], **kwargs))
    assert isinstance(resolution, DialAnswered)
    return resolution.call.call_id


def live_ids(pair: Pair) -> set[str]:
    return {call.call_id for call in pair.simulator.live_calls()}


def end_reasons(pair: Pair) -> dict[str, str | None]:
    """Destination number -> end reason of every call the simulator ever made."""
    return {to_number(call.device): call.end_reason for call in pair.simulator.all_calls()}


# ---------------------------------------------------------------------------- dialing


def test_single_answer(make_pair: MakePair) -> None:
    pair = make_pair(scenario=scenario(A=answer(after=2)))
    (connected,) = pair.connect()
    assert isinstance(connected, Connected)
    assert not connected.session_restored
    tag = dial(pair, [[phone(A)]])
    assert tag == "tag-1"
    assert [(e.state, e.previous) for e in of_type(pair.events, CallStateChanged)] == [
        (CallState.CREATED, None),
        (CallState.RINGING, CallState.CREATED),
    ]
    resolution = resolve(pair, tag)
    assert isinstance(resolution, DialAnswered)
    assert pair.now == 2.0
    call = resolution.call
    assert (call.tag, call.state, call.direction, to_number(call.device)) == (
        tag,
        CallState.ANSWERED,
        "outbound",
        A,
    )
    assert pair.client.live_call_ids == {call.call_id}
    assert live_ids(pair) == {call.call_id}
    assert pair.client.pending_dials == frozenset()
    assert pair.simulator.unacked_events(pair.client.protocol or "") == 0


def test_serial_failover(make_pair: MakePair) -> None:
    pair = make_pair(scenario=scenario(A=busy(after=1), B=answer(after=2)))
    pair.connect()
    resolution = resolve(pair, dial(pair, [[phone(A)], [phone(B)]]))
    assert isinstance(resolution, DialAnswered)
    assert pair.now == 3.0  # B is only dialled once A has ended
    assert to_number(resolution.call.device) == B
    legs = {to_number(leg.device): (leg.state, leg.end_reason) for leg in resolution.legs}
    assert legs == {A: (CallState.ENDED, "busy"), B: (CallState.ANSWERED, None)}
    assert live_ids(pair) == {resolution.call.call_id}


def test_parallel_race(make_pair: MakePair) -> None:
    pair = make_pair(scenario=scenario(A=answer(after=3), B=answer(after=1), C=no_answer()))
    pair.connect()
    resolution = resolve(pair, dial(pair, [[phone(A), phone(B), phone(C)]]))
    assert isinstance(resolution, DialAnswered)
    assert (pair.now, to_number(resolution.call.device)) == (1.0, B)
    pair.advance(60)
    assert live_ids(pair) == {resolution.call.call_id}
    assert end_reasons(pair) == {A: "cancel", B: None, C: "cancel"}
    assert pair.client.live_call_ids == {resolution.call.call_id}


def test_all_fail(make_pair: MakePair) -> None:
    pair = make_pair(
        scenario=scenario(
            A=busy(),
            B=Outcome(kind=OutcomeKind.DECLINE, after=2),
            C=Outcome(kind=OutcomeKind.ERROR, after=0.5),
        )
    )
    pair.connect()
    resolution = resolve(pair, dial(pair, [[phone(A)], [phone(B), phone(C)]]))
    assert isinstance(resolution, DialFailed)
    assert resolution.cause is DialFailureCause.FAILED
    reasons = {to_number(leg.device): leg.end_reason for leg in resolution.legs}
    assert reasons == {A: "busy", B: "decline", C: "error"}
    assert pair.simulator.live_calls() == []
    assert pair.client.live_call_ids == frozenset()


def test_timeout_hangs_up_the_ringing_legs(make_pair: MakePair) -> None:
    pair = make_pair(scenario=scenario(A=no_answer(), B=no_answer()))
    pair.connect()
    tag = dial(pair, [[phone(A), phone(B)]], dial_timeout=5)
    assert len(pair.simulator.live_calls()) == 2
    resolution = resolve(pair, tag)
    assert isinstance(resolution, DialTimedOut)
    assert pair.now == 5.0
    assert {leg.state for leg in resolution.legs} == {CallState.RINGING}
    assert pair.simulator.live_calls() == []
    assert end_reasons(pair) == {A: "cancel", B: "cancel"}
    assert pair.simulator.pending_dials() == 0


def test_caller_cancel_leaves_no_live_call(make_pair: MakePair) -> None:
    pair = make_pair(scenario=scenario(A=answer(after=10), B=no_answer()))
    pair.connect()
    tag = dial(pair, [[phone(A), phone(B)]])
    pair.advance(2)
    assert pair.client.cancel_dial(tag, now=pair.now) is True
    pair.pump()
    assert pair.simulator.live_calls() == []
    assert pair.client.pending_dials == frozenset()
    later = pair.advance(100)
    assert of_type(later, DialAnswered) == []
    assert pair.client.cancel_dial(tag, now=pair.now) is False  # the tombstone is gone too


def test_late_leg_of_the_next_group_is_ended_on_sight(make_pair: MakePair) -> None:
    """Timing out ends A; the switch then dials B, after the client's deadline."""
    pair = make_pair(scenario=scenario(A=no_answer(), B=answer(after=1)))
    pair.connect()
    tag = dial(pair, [[phone(A)], [phone(B)]], dial_timeout=5)
    resolution = resolve(pair, tag)
    assert isinstance(resolution, DialTimedOut)
    assert [to_number(leg.device) for leg in resolution.legs] == [A]
    assert pair.simulator.live_calls() == []
    assert end_reasons(pair) == {A: "cancel", B: "cancel"}
    assert of_type(pair.advance(60), DialAnswered) == []


def test_late_leg_after_timeout_with_delayed_events(make_pair: MakePair) -> None:
    """Every event arrives 10 s late: the client times out at 5 s without having seen a leg,
    and ends the leg when its events finally show up."""
    pair = make_pair(scenario=scenario(Faults(delay_events=10), A=answer(after=1)))
    pair.connect()
    tag = dial(pair, [[phone(A)]], dial_timeout=5)
    resolution = resolve(pair, tag)
    assert isinstance(resolution, DialTimedOut)
    assert resolution.legs == ()
    (leg,) = pair.simulator.live_calls()
    assert leg.state is CallState.ANSWERED  # answered on the switch, unknown to the client
    events = pair.advance(20)
    assert of_type(events, DialAnswered) == []
    assert pair.simulator.live_calls() == []
    assert pair.client.live_call_ids == frozenset()


ORDER_FAULTS = [
    pytest.param(Faults(reorder=True), id="reorder"),
    pytest.param(Faults(duplicate_events=True), id="duplicate_events"),
    pytest.param(Faults(dial_event_first=True), id="dial_event_first"),
    pytest.param(Faults(events_before_result=True), id="events_before_result"),
    pytest.param(Faults(delay_events=0.5), id="delay_events"),
    pytest.param(
        Faults(
            reorder=True, duplicate_events=True, dial_event_first=True, events_before_result=True
        ),
        id="all",
    ),
]


def _race_outcome(faults: Faults, make_pair: MakePair) -> tuple[Any, ...]:
    pair = make_pair(
        scenario=scenario(faults, A=busy(after=1), B=answer(after=2), C=answer(after=3))
    )
    pair.connect()
    resolution = resolve(pair, dial(pair, [[phone(A)], [phone(B), phone(C)]]))
    assert isinstance(resolution, DialAnswered)
    pair.advance(10)
    assert live_ids(pair) == pair.client.live_call_ids == {resolution.call.call_id}
    assert pair.simulator.unacked_events(pair.client.protocol or "") == 0
    changes = [(e.call_id, e.state) for e in of_type(pair.events, CallStateChanged)]
    assert len(changes) == len(set(changes)), "duplicates were reported"
    return (
        to_number(resolution.call.device),
        resolution.call.state,
        sorted(to_number(leg.device) for leg in resolution.legs),  # states: a snapshot
        end_reasons(pair),
    )


@pytest.mark.parametrize("faults", ORDER_FAULTS)
def test_out_of_order_and_duplicate_events_same_outcome(
    faults: Faults, make_pair: MakePair
) -> None:
    baseline = _race_outcome(Faults(), make_pair)
    assert baseline[0] == B
    assert _race_outcome(faults, make_pair) == baseline


# ---------------------------------------------------------------------------- calls


def playing(pair: Pair) -> set[str]:
    """Control ids whose last reported state is not terminal."""
    last = {e.control_id: e.state for e in of_type(pair.events, PlayStateChanged)}
    return {control_id for control_id, state in last.items() if not state.terminal}


def test_play_to_finished(make_pair: MakePair) -> None:
    pair = make_pair(scenario=scenario(A=answer()))
    pair.connect()
    call_id = answered_call(pair)
    request_id, control_id = pair.client.play(
        call_id, [{"type": "audio", "url": "https://example.com/a.mp3", "duration": 3}]
    )
    started = pair.now
    events = pair.pump()
    assert only(events, RequestSucceeded).request_id == request_id
    assert [(e.control_id, e.state) for e in of_type(events, PlayStateChanged)] == [
        (control_id, PlayState.PLAYING)
    ]
    events = pair.run_until(lambda: control_id not in playing(pair), 10)
    assert only(events, PlayStateChanged).state is PlayState.FINISHED
    assert pair.now == started + 3
    assert live_ids(pair) == {call_id}


def test_hangup(make_pair: MakePair) -> None:
    pair = make_pair(scenario=scenario(A=answer()))
    pair.connect()
    call_id = answered_call(pair)
    request_id = pair.client.end(call_id)
    events = pair.pump()
    assert only(events, RequestSucceeded).request_id == request_id
    states = [(e.state, e.end_reason) for e in of_type(events, CallStateChanged)]
    assert states == [(CallState.ENDING, "hangup"), (CallState.ENDED, "hangup")]
    assert pair.client.live_call_ids == frozenset()
    assert pair.simulator.live_calls() == []
    with pytest.raises(LocalProtocolError):
        pair.client.end(call_id)


def test_far_end_hangup(make_pair: MakePair) -> None:
    pair = make_pair(scenario=scenario(A=answer(after=1, hangup_after=4)))
    pair.connect()
    call_id = answered_call(pair)
    pair.run_until(lambda: not pair.client.live_call_ids, 10)
    assert pair.now == 5.0
    assert end_reasons(pair) == {A: "hangup"}
    assert call_id not in live_ids(pair)


def test_max_duration_is_enforced_by_the_client(make_pair: MakePair) -> None:
    """The device asks the switch for 1000 s, the dial for 5: only the client's limit acts."""
    pair = make_pair(scenario=scenario(A=answer(after=1)))
    pair.connect()
    call_id = answered_call(pair, [[phone(A, max_duration=1000)]], max_duration=5)
    answered_at = pair.now
    events = pair.run_until(lambda: not pair.client.live_call_ids, 30)
    assert pair.now == answered_at + 5
    assert only(events, MaxDurationReached).call_id == call_id
    assert [e.state for e in of_type(events, CallStateChanged)] == [
        CallState.ENDING,
        CallState.ENDED,
    ]
    assert end_reasons(pair) == {A: "hangup"}  # ended by the client's calling.end
    assert pair.simulator.live_calls() == []


# ---------------------------------------------------------------------------- the session


@pytest.mark.parametrize("restart", [False, True])
def test_server_disconnect(restart: bool, make_pair: MakePair) -> None:
    pair = make_pair(scenario=scenario(A=answer()), simulator_kwargs={"resume_grace": 10})
    pair.connect()
    call_id = answered_call(pair)
    protocol = pair.client.protocol
    assert pair.server is not None
    pair.server.send_disconnect(restart=restart)
    events = pair.pump()
    assert events == [DisconnectRequested(restart=restart)]
    assert not pair.connected  # the switch closed the socket after the client's reply
    request_id = pair.client.end(call_id) if not restart else None  # held for the next socket
    events = pair.connect()
    connected = events[0]
    assert isinstance(connected, Connected)
    if restart:
        assert (connected.resume_requested, connected.session_restored) == (False, False)
        assert connected.protocol != protocol
        assert events[1:] == [CallLost(call_id=call_id)]
        assert pair.simulator.live_calls() == []  # hung up from the new session
    else:
        assert (connected.session_restored, connected.protocol) == (True, protocol)
        assert only(events, RequestSucceeded).request_id == request_id
        assert pair.simulator.live_calls() == []


def test_disconnect_after_dial_keeps_the_dial(make_pair: MakePair) -> None:
    pair = make_pair(scenario=scenario(Faults(disconnect_after_dial=True), A=answer(after=2)))
    pair.connect()
    tag = dial(pair, [[phone(A)]])
    assert not pair.connected
    assert only(pair.events, DisconnectRequested).restart is False
    pair.advance(1)
    assert only(pair.connect(), Connected).session_restored
    assert isinstance(resolve(pair, tag), DialAnswered)


def test_resume_keeps_a_pending_dial(make_pair: MakePair) -> None:
    pair = make_pair(scenario=scenario(A=answer(after=10)))
    pair.connect()
    tag = dial(pair, [[phone(A)]])
    pair.advance(2)
    assert pair.drop() == []
    assert pair.drop() == []  # already down
    pair.advance(5)  # the answer (t=10) has not happened yet
    events = pair.reconnect()
    assert only(events, Connected).session_restored
    assert tag in pair.client.pending_dials
    resolution = resolve(pair, tag)
    assert isinstance(resolution, DialAnswered)
    assert pair.now == 10.0


def test_resume_redelivers_events_lost_with_the_socket(make_pair: MakePair) -> None:
    """The switch drops the socket after the ``dialing`` event: what it could not deliver
    (or was not acked) waits in the session, is re-delivered on resume, and the dial
    resolves as if nothing had happened."""
    pair = make_pair(scenario=scenario(A=answer(after=1)))
    pair.connect()
    sent = len(pair.server_frames)
    pair.simulator.scenario.faults = Faults(drop_after_frames=4)  # ..., dial result, dialing
    tag = dial(pair, [[phone(A)]])
    assert not pair.connected
    assert len(pair.server_frames) == sent + 2
    protocol = pair.client.protocol or ""
    # dialing (its ack went to a dead socket), created, ringing
    assert pair.simulator.unacked_events(protocol) == 3
    pair.advance(0.5)
    assert only(pair.connect(), Connected).session_restored
    assert pair.simulator.unacked_events(protocol) == 0
    assert isinstance(resolve(pair, tag), DialAnswered)
    assert pair.now == 1.0


def test_dial_lost_with_the_socket_is_not_resent(make_pair: MakePair) -> None:
    """PROTOCOL.md §7: a dial written just before the drop is reconciled by its tag, never
    re-sent; here the switch never saw it, so it can only time out."""
    pair = make_pair(scenario=scenario(A=answer(after=1)))
    pair.connect()
    tag = pair.client.dial([[phone(A)]], now=pair.now, dial_timeout=20)
    pair.drop()
    assert json.loads(pair.client_frames[-1])["method"] == "calling.dial"
    assert only(pair.connect(), Connected).session_restored
    resolution = resolve(pair, tag)
    assert isinstance(resolution, DialTimedOut)
    assert pair.simulator.all_calls() == []
    dials = [f for f in pair.client_frames if json.loads(f).get("method") == "calling.dial"]
    assert len(dials) == 1


@pytest.mark.parametrize("refuse_resume", [False, True])
def test_dial_never_written_before_the_drop_goes_out_on_the_next_socket(
    make_pair: MakePair, refuse_resume: bool
) -> None:
    """The socket died before the client drained its outbox: the server cannot have seen
    the dial, so it is held and written once on the next socket, restored or not."""
    pair = make_pair(scenario=scenario(A=answer(after=1)))
    pair.connect()
    tag = pair.client.dial([[phone(A)]], now=pair.now, dial_timeout=20)
    pair.drop(written=False)
    assert not any(json.loads(f).get("method") == "calling.dial" for f in pair.client_frames)
    pair.simulator.scenario.faults = Faults(refuse_resume=refuse_resume)
    assert only(pair.connect(), Connected).session_restored is not refuse_resume
    resolution = resolve(pair, tag)
    assert isinstance(resolution, DialAnswered)
    dials = [f for f in pair.client_frames if json.loads(f).get("method") == "calling.dial"]
    assert len(dials) == 1


def test_dial_made_while_disconnected_goes_out_on_connect(make_pair: MakePair) -> None:
    pair = make_pair(scenario=scenario(A=answer(after=1)))
    tag = pair.client.dial([[phone(A)]], now=pair.now)
    assert pair.pump() == []  # no socket yet
    pair.connect()
    assert isinstance(resolve(pair, tag), DialAnswered)


def test_resume_refused_loses_everything_and_ends_what_the_client_knew(
    make_pair: MakePair,
) -> None:
    pair = make_pair(
        scenario=scenario(A=answer(), B=no_answer()), simulator_kwargs={"resume_grace": 10}
    )
    pair.connect()
    call_id = answered_call(pair)
    tag = dial(pair, [[phone(B)]])
    old = pair.client.protocol
    pair.simulator.scenario.faults = Faults(refuse_resume=True)
    pair.drop()
    events = pair.reconnect()
    connected = events[0]
    assert isinstance(connected, Connected)
    assert (connected.resume_requested, connected.session_restored) == (True, False)
    assert connected.protocol != old
    failed = only(events, DialFailed)
    assert (failed.tag, failed.cause) == (tag, DialFailureCause.CONNECTION_LOST)
    assert only(events, CallLost).call_id == call_id
    assert pair.client.pending_dials == frozenset()
    assert pair.client.live_call_ids == frozenset()
    # call commands name the call, not the session: the new session ends the old calls
    assert pair.simulator.live_calls() == []
    assert end_reasons(pair) == {A: "hangup", B: "cancel"}


def test_resume_refused_the_switch_ends_orphans_after_resume_grace(make_pair: MakePair) -> None:
    """Ending B (which the client knew) makes the old session's dial move on to C, which the
    client never sees: only the session's expiry, ``resume_grace`` after the drop, ends it."""
    pair = make_pair(
        scenario=scenario(B=no_answer(), C=no_answer()), simulator_kwargs={"resume_grace": 10}
    )
    pair.connect()
    tag = dial(pair, [[phone(B)], [phone(C)]])
    old = pair.client.protocol
    pair.simulator.scenario.faults = Faults(refuse_resume=True)
    pair.drop()
    lost_at = pair.now
    pair.advance(2)
    events = pair.connect()
    assert only(events, DialFailed).tag == tag
    (orphan,) = pair.simulator.live_calls()
    assert (to_number(orphan.device), orphan.protocol) == (C, old)
    pair.run_until(lambda: not pair.simulator.live_calls(), 60)
    assert pair.now == lost_at + 10  # the old session's resume_grace
    assert end_reasons(pair) == {B: "cancel", C: "cancel"}


# ---------------------------------------------------------------------------- the helper


def test_module_docstring_example_runs() -> None:
    doc = testing_module.__doc__ or ""
    (block,) = re.findall(r"::\n\n((?:    .*\n|\n)+)", doc)
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(line[4:] for line in block.splitlines()), "<doc>", "exec"), namespace)
    assert isinstance(namespace["pair"], Pair)


def test_pair_defaults_and_repr() -> None:
    pair = Pair(start=100.0)
    assert pair.now == 100.0
    assert not pair.connected
    assert repr(pair).startswith("<Pair now=100 connected=False client=<ClientConnection")
    events = pair.connect()
    assert pair.connected
    assert only(events, Connected).identity == "project@sim-space"
    assert json.loads(pair.client_frames[0])["id"] == "req-1"
    with pytest.raises(LocalProtocolError, match="already connected"):
        pair.connect()
    ids = counter("x")
    assert (ids(), ids()) == ("x1", "x2")
    assert phone(A, timeout=5) == {
        "type": "phone",
        "params": {"to_number": A, "from_number": "+15550000001", "timeout": 5},
    }


def test_pair_with_jwt_and_credentials() -> None:
    pair = Pair(
        client_kwargs={"jwt_token": "J"}, simulator_kwargs={"jwt_tokens": ["J"], "credentials": {}}
    )
    assert isinstance(pair.connect()[0], Connected)
    refused = Pair(
        client_kwargs={"project": "p", "token": "bad"},
        simulator_kwargs={"credentials": {"p": "good"}},
    )
    (failed,) = refused.connect()
    assert type(failed).__name__ == "ConnectFailed"


@pytest.mark.parametrize("seconds", [-1.0, math.nan, math.inf])
def test_advance_refuses_bad_durations(seconds: float) -> None:
    pair = Pair()
    with pytest.raises(ValueError, match="finite and >= 0"):
        pair.advance(seconds)
    with pytest.raises(ValueError, match="finite and >= 0"):
        pair.run_until(lambda: False, seconds)


def test_advance_fires_deadlines_in_order_and_at_their_time() -> None:
    pair = Pair(client_kwargs={"ping_interval": 30.0})
    pair.connect()
    pair.advance(95)
    pings = [json.loads(f) for f in pair.client_frames if "signalwire.ping" in f]
    assert [p["params"]["timestamp"] for p in pings] == [30.0, 60.0, 90.0]
    assert pair.now == 95.0
    assert pair.advance(0) == []
    assert pair.now == 95.0


def test_run_until_checks_first_and_times_out() -> None:
    pair = Pair()
    assert pair.run_until(lambda: True, 10) == []
    assert pair.now == 0.0
    with pytest.raises(TimeoutError, match="still false after 10 s"):
        pair.run_until(lambda: False, 10)
    assert pair.now == 10.0


def test_a_stuck_deadline_is_reported() -> None:
    pair = Pair()
    pair.simulator.next_deadline = lambda: 1.0  # type: ignore[method-assign]
    with pytest.raises(AssertionError, match="does not fire"):
        pair.advance(5)


def test_garbage_from_the_switch_is_recorded_not_raised() -> None:
    pair = Pair(scenario=Scenario(faults=Faults(garbage=True)))
    events = pair.connect()
    assert isinstance(events[0], Connected)
    (error,) = pair.protocol_errors
    assert "invalid JSON" in str(error)
    assert pair.connected


# ---------------------------------------------------------------------------- the checker


def _checked_transcript() -> Pair:
    """A transcript touching every request kind the checker knows, already valid."""
    pair = Pair(
        scenario=scenario(A=answer()), client_kwargs={"contexts": ["office"], "ping_interval": 5}
    )
    pair.connect()
    call_id = answered_call(pair)
    _, control_id = pair.client.play(call_id, [{"type": "tts", "text": "Hello"}], volume=2, loop=3)
    for action in ("pause", "resume", "stop"):
        pair.client.play_control(call_id, control_id, action)
    pair.client.play_control(call_id, control_id, "volume", volume=-1.5)
    pair.client.subscribe(["sales"])
    pair.client.unsubscribe(["sales"])
    pair.client.ping(now=pair.now)
    pair.client.dial(
        [[phone(B, timeout=9, max_duration=20)]],
        now=pair.now,
        max_duration=30,
        region="us",
        node_id="sim-node-1@local",
        max_price_per_minute=0.5,
    )
    pair.client.end(call_id)
    pair.pump()
    assert pair.server is not None
    pair.server.send_ping(pair.now)
    pair.server.send_disconnect(restart=False)
    pair.advance(6)
    pair.connect()
    check_client_frames(pair)
    return pair


def _edit(frame: str, change: Callable[[JSON], None]) -> str:
    body = json.loads(frame)
    change(body)
    return json.dumps(body)


def _first(pair: Pair, method: str) -> int:
    return next(i for i, f in enumerate(pair.client_frames) if f'"method":"{method}"' in f)


BAD_EDITS: dict[str, tuple[str, Callable[[JSON], None]]] = {
    "jsonrpc": ("calling.dial", lambda f: f.update(jsonrpc="1.0")),
    "int id": ("calling.dial", lambda f: f.update(id=7)),
    "extra key": ("calling.end", lambda f: f["params"].update(extra=1)),
    "flat plan": (
        "calling.dial",
        lambda f: f["params"].update(devices=[f["params"]["devices"][0][0]]),
    ),
    "zero max_duration": ("calling.dial", lambda f: f["params"].update(max_duration=0)),
    "string timeout": (
        "calling.dial",
        lambda f: f["params"]["devices"][0][0]["params"].update(timeout="9"),
    ),
    "bad number": (
        "calling.dial",
        lambda f: f["params"]["devices"][0][0]["params"].update(to_number="5550000003"),
    ),
    "no event_acks": ("signalwire.connect", lambda f: f["params"].pop("event_acks")),
    "bad version": ("signalwire.connect", lambda f: f["params"].update(version={"major": 3})),
    "flat media": (
        "calling.play",
        lambda f: f["params"].update(play=[{"type": "tts", "text": "x"}]),
    ),
    "unknown method": ("calling.end", lambda f: f.update(method="calling.explode")),
    "bad reason": ("calling.end", lambda f: f["params"].update(reason="")),
    "ping extra": ("signalwire.ping", lambda f: f["params"].update(when=1)),
    "empty contexts": ("signalwire.receive", lambda f: f["params"].update(contexts=[])),
    "volume type": ("calling.play.volume", lambda f: f["params"].update(volume="loud")),
}


@pytest.mark.parametrize("name", sorted(BAD_EDITS))
def test_checker_catches_a_bad_request(name: str) -> None:
    pair = _checked_transcript()
    method, change = BAD_EDITS[name]
    index = _first(pair, method)
    pair.client_frames[index] = _edit(pair.client_frames[index], change)
    with pytest.raises(AssertionError):
        check_client_frames(pair)


def test_checker_catches_bad_replies_and_constants() -> None:
    pair = _checked_transcript()
    ack = next(i for i, f in enumerate(pair.client_frames) if '"result":{}' in f)
    pong = next(i for i, f in enumerate(pair.client_frames) if '"result":{"timestamp"' in f)
    cases = [
        [*pair.client_frames, pair.client_frames[ack]],  # acked twice
        [f for i, f in enumerate(pair.client_frames) if i != ack],  # never acked
        [*pair.client_frames, '{"jsonrpc":"2.0","id":"nobody","result":{}}'],
        [*pair.client_frames, '{"jsonrpc":"2.0","id":"nobody","error":{"code":1}}'],
        [*pair.client_frames, pair.client_frames[_first(pair, "calling.end")]],  # id reused
        [*pair.client_frames, "[]"],
        [
            _edit(f, lambda b: b.update(result={"x": 1})) if i == ack else f
            for i, f in enumerate(pair.client_frames)
        ],
        [
            _edit(f, lambda b: b.update(result={})) if i == pong else f
            for i, f in enumerate(pair.client_frames)
        ],
        [f.replace('"volume":-1.5', '"volume":NaN') for f in pair.client_frames],
    ]
    for frames in cases:
        pair.client_frames[:] = frames
        with pytest.raises(AssertionError):
            check_client_frames(pair)


# ---------------------------------------------------------------------------- regressions


def test_timers_started_by_input_fire_at_the_same_instant(make_pair: MakePair) -> None:
    """Found by test_stateful: Pair took a timer due *now*, started while pumping (the
    hang-up sent at the dial's deadline makes the switch dial B, which answers at once),
    for a timer that failed to fire. Delayed events keep the client from ending B first."""
    pair = make_pair(scenario=scenario(Faults(delay_events=0.5), A=no_answer(), B=answer(after=0)))
    pair.connect()
    tag = dial(pair, [[phone(A)], [phone(B)]], dial_timeout=5)
    assert only(pair.advance(10), DialTimedOut).tag == tag  # one call: both ticks at t=5
    # B was ended on sight, as ``cancel``: the client had only seen it ``created`` then
    assert end_reasons(pair) == {A: "cancel", B: "cancel"}
    (b_answered,) = [
        json.loads(f)["params"]
        for f in pair.server_frames
        if '"call_state":"answered"' in f and B in f and "calling.call.state" in f
    ]
    assert b_answered["timestamp"] == 5.0  # it fired at its own time, not at the next tick
    assert pair.simulator.live_calls() == []


def test_winner_ended_before_the_dial_answer_arrives(make_pair: MakePair) -> None:
    """Found by test_stateful: events delayed by 2 s, then the delay switched off, so the
    switch's max_duration end of the winner overtakes the delayed answer. ``DialAnswered``
    then carries the winner in state ENDED and the call is no live call (the adapter hands
    out an already finished Call). Note: the ``DialAnswered`` docstring says ANSWERED."""
    pair = make_pair(scenario=scenario(Faults(delay_events=2), A=answer(after=0)))
    pair.connect()
    tag = dial(pair, [[phone(A)]], max_duration=2)
    pair.advance(0)  # answered on the switch at t=0; its events are due at t=2
    pair.simulator.scenario.faults = Faults()
    resolution = resolve(pair, tag)
    assert isinstance(resolution, DialAnswered)
    assert resolution.call.state is CallState.ENDED
    assert pair.client.live_call_ids == frozenset()
    assert pair.simulator.live_calls() == []
