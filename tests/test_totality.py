"""Totality over (session state x input) for the client core.

For every reachable ``SessionState`` (IDLE fresh and after a session, CONNECTING fresh and
resuming, READY, DRAINING), each carrying a pending dial with a ringing leg, an answered call
with a running play, a request in flight and a ping outstanding where the state allows:

* feeding any server message in the catalogue either returns events or raises
  ``RemoteProtocolError``, and when it raises, nothing but the outbox changed;
* calling any command either succeeds or raises ``LocalProtocolError``;
* afterwards ``data_to_send()`` drains (valid frames, checked by the independent schema of
  ``test_pair``), and the core still answers a server ping: it stayed usable.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from test_pair import check_frame

from relay_proto import (
    ClientConnection,
    Connected,
    DialAnswered,
    LocalProtocolError,
    RemoteProtocolError,
    SessionState,
)
from relay_proto.testing import counter, phone

JSON = dict[str, Any]
A, B = "+15550000002", "+15550000003"
NODE = "NODE-1"


def frame(**body: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", **body})


def event(event_type: str, inner: Any, frame_id: str | None = "ev-x", **envelope: Any) -> str:
    params = {"event_type": event_type, "timestamp": 1.5, "params": inner, **envelope}
    body: JSON = {"method": "signalwire.event", "params": params}
    if frame_id is not None:
        body["id"] = frame_id
    return frame(**body)


def leg_state(call_id: str, state: str, tag: str | None, **extra: Any) -> JSON:
    inner: JSON = {"call_id": call_id, "node_id": NODE, "call_state": state, **extra}
    if tag is not None:
        inner["tag"] = tag
    return inner


@dataclass
class World:
    """A client in some state, and the ids of what lives in it (None where nothing does)."""

    client: ClientConnection
    now: float
    connect_id: str | None = None
    dial_tag: str | None = None
    dial_request: str | None = None
    leg_id: str | None = None
    call_id: str | None = None
    control_id: str | None = None
    play_request: str | None = None
    ping_id: str | None = None
    recent_id: str | None = None
    record_id: str | None = None


def _client() -> ClientConnection:
    return ClientConnection(
        project="p",
        token="t",
        id_factory=counter("r"),
        tag_factory=counter("tag"),
        ping_interval=30,
        silence_timeout=90,
    )


def _connect(world: World) -> None:
    world.connect_id = world.client.connect(now=world.now)


def _connected(world: World, protocol: str = "proto-1") -> None:
    assert world.connect_id is not None
    body = {"protocol": protocol, "identity": "id", "authorization": {}}
    events = world.client.receive(frame(id=world.connect_id, result=body), now=world.now)
    assert isinstance(events[0], Connected)
    world.recent_id, world.connect_id = world.connect_id, None


def idle_fresh() -> World:
    return World(client=_client(), now=0.0)


def connecting_fresh() -> World:
    world = idle_fresh()
    _connect(world)
    return world


def ready() -> World:
    world = connecting_fresh()
    client = world.client
    _connected(world)
    client.receive(
        event("signalwire.authorization.state", {"authorization_state": "blob"}), now=0.0
    )
    # an answered call (tag1) with a running play
    tag = client.dial([[phone(A)]], now=0.0)
    client.receive(event("calling.call.state", leg_state("CALL-1", "answered", tag)), now=0.0)
    dial_answered = {
        "tag": tag,
        "node_id": NODE,
        "dial_state": "answered",
        "call": {"call_id": "CALL-1", "node_id": NODE, "dial_winner": True},
    }
    (*_, answered) = client.receive(event("calling.call.dial", dial_answered), now=0.0)
    assert isinstance(answered, DialAnswered)
    world.call_id = "CALL-1"
    world.play_request, world.control_id = client.play("CALL-1", [{"type": "tts", "text": "hi"}])
    client.receive(
        event("calling.call.play", {"control_id": world.control_id, "state": "playing"}), now=0
    )
    # a running record, and a message on its way
    _, world.record_id = client.start_action("CALL-1", "record", {"record": {"audio": {}}})
    client.send_message(to_number=A, from_number=B, body="hi")
    # a pending dial (tag2) with a ringing leg, its request still unanswered
    client.data_to_send()
    world.dial_tag = client.dial([[phone(B)]], now=0.0)
    (dial_frame,) = client.data_to_send()
    world.dial_request = json.loads(dial_frame)["id"]
    client.receive(
        event("calling.call.state", leg_state("LEG-2", "ringing", world.dial_tag)), now=0.0
    )
    world.leg_id = "LEG-2"
    client.data_to_send()
    # a ping outstanding
    world.now = 30.0
    client.handle_timer(now=30.0)
    (ping,) = client.data_to_send()
    world.ping_id = json.loads(ping)["id"]
    return world


def draining() -> World:
    world = ready()
    world.client.receive(
        frame(id="disc", method="signalwire.disconnect", params={"restart": False}), now=30.0
    )
    world.client.data_to_send()
    return world


def idle_after_session() -> World:
    world = ready()
    world.client.connection_lost(now=30.0)
    world.ping_id = None
    return world


def connecting_resume() -> World:
    world = idle_after_session()
    _connect(world)
    world.client.data_to_send()
    return world


STATES: dict[str, tuple[Callable[[], World], SessionState]] = {
    "idle-fresh": (idle_fresh, SessionState.IDLE),
    "connecting-fresh": (connecting_fresh, SessionState.CONNECTING),
    "ready": (ready, SessionState.READY),
    "draining": (draining, SessionState.DRAINING),
    "idle-after-session": (idle_after_session, SessionState.IDLE),
    "connecting-resume": (connecting_resume, SessionState.CONNECTING),
}


def _id(value: str | None) -> str:
    return value if value is not None else "never-issued"


Input = Callable[[World], str | bytes]

CONNECT_RESULT = {"protocol": "proto-2", "identity": "id", "authorization": {}}
INPUTS: dict[str, Input] = {
    # signalwire.connect replies
    "connect result": lambda w: frame(id=_id(w.connect_id), result=CONNECT_RESULT),
    "connect result same protocol": lambda w: frame(
        id=_id(w.connect_id), result={**CONNECT_RESULT, "protocol": "proto-1"}
    ),
    "connect restored flag": lambda w: frame(
        id=_id(w.connect_id), result={**CONNECT_RESULT, "session_restored": True}
    ),
    "connect result not object": lambda w: frame(id=_id(w.connect_id), result=[1]),
    "connect result no protocol": lambda w: frame(id=_id(w.connect_id), result={"a": 1}),
    "connect error auth": lambda w: frame(
        id=_id(w.connect_id), error={"code": -32002, "message": "no"}
    ),
    "connect error stale": lambda w: frame(
        id=_id(w.connect_id), error={"code": -32003, "message": "stale"}
    ),
    "connect error generic": lambda w: frame(
        id=_id(w.connect_id), error={"code": -32000, "message": "x"}
    ),
    # replies to known, unknown and recent ids
    "dial result 200": lambda w: frame(id=_id(w.dial_request), result={"code": "200"}),
    "dial result 500": lambda w: frame(
        id=_id(w.dial_request), result={"code": "500", "message": "no"}
    ),
    "dial error": lambda w: frame(id=_id(w.dial_request), error={"code": -32000, "message": "x"}),
    "play result 200": lambda w: frame(id=_id(w.play_request), result={"code": "200"}),
    "play result 404": lambda w: frame(id=_id(w.play_request), result={"code": "404"}),
    "play result not object": lambda w: frame(id=_id(w.play_request), result="ok"),
    "ping result": lambda w: frame(id=_id(w.ping_id), result={"timestamp": 30}),
    "ping error": lambda w: frame(id=_id(w.ping_id), error={"code": -32601, "message": "x"}),
    "reply unknown id": lambda w: frame(id="nobody", result={}),
    "reply int id": lambda w: frame(id=7, result={}),
    "reply recent id": lambda w: frame(id=_id(w.recent_id), result={}),
    "error null id": lambda w: frame(id=None, error={"code": -32700, "message": "parse"}),
    "error not object": lambda w: frame(id="nobody", error="bad"),
    "error odd code": lambda w: frame(id=_id(w.dial_request), error={"code": "x", "message": 5}),
    # events of every type, known and unknown calls
    "state leg": lambda w: event(
        "calling.call.state", leg_state(_id(w.leg_id), "answered", w.dial_tag)
    ),
    "state call ended": lambda w: event(
        "calling.call.state", leg_state(_id(w.call_id), "ended", None, end_reason="hangup")
    ),
    "state call backwards": lambda w: event(
        "calling.call.state", leg_state(_id(w.call_id), "ringing", None)
    ),
    "state unknown call": lambda w: event(
        "calling.call.state", leg_state("STRANGER", "ringing", None)
    ),
    "state unknown tag": lambda w: event(
        "calling.call.state", leg_state("STRANGER", "ringing", "other-tag")
    ),
    "state bad state": lambda w: event(
        "calling.call.state", leg_state(_id(w.call_id), "exploded", None)
    ),
    "state no call_id": lambda w: event("calling.call.state", {"call_state": "ended"}),
    "dial dialing": lambda w: event(
        "calling.call.dial", {"tag": _id(w.dial_tag), "dial_state": "dialing"}
    ),
    "dial answered": lambda w: event(
        "calling.call.dial",
        {
            "tag": _id(w.dial_tag),
            "dial_state": "answered",
            "call": {"call_id": _id(w.leg_id), "node_id": NODE, "dial_winner": "true"},
        },
    ),
    "dial answered no call": lambda w: event(
        "calling.call.dial", {"tag": _id(w.dial_tag), "dial_state": "answered"}
    ),
    "dial failed": lambda w: event(
        "calling.call.dial",
        {"tag": _id(w.dial_tag), "dial_state": "failed", "reason": "busy", "source": "x"},
    ),
    "dial unknown state": lambda w: event(
        "calling.call.dial", {"tag": _id(w.dial_tag), "dial_state": "exploded"}
    ),
    "dial no tag": lambda w: event("calling.call.dial", {"dial_state": "failed"}),
    "play finished": lambda w: event(
        "calling.call.play", {"control_id": _id(w.control_id), "state": "finished"}
    ),
    "play duplicate": lambda w: event(
        "calling.call.play", {"control_id": _id(w.control_id), "state": "playing"}
    ),
    "play bad state": lambda w: event(
        "calling.call.play", {"control_id": _id(w.control_id), "state": "exploded"}
    ),
    "record finished": lambda w: event(
        "calling.call.record",
        {"control_id": _id(w.record_id), "state": "finished", "url": "u", "duration": 1},
    ),
    "record bad state": lambda w: event(
        "calling.call.record", {"control_id": _id(w.record_id), "state": "exploded"}
    ),
    "record no state": lambda w: event("calling.call.record", {"control_id": _id(w.record_id)}),
    "record no control_id": lambda w: event("calling.call.record", {"state": "finished"}),
    "collect stranger": lambda w: event(
        "calling.call.collect", {"control_id": "X", "result": {"type": "digit"}}
    ),
    "collect no type": lambda w: event(
        "calling.call.collect", {"control_id": "X", "result": {"params": {}}}
    ),
    "detect no event": lambda w: event("calling.call.detect", {"control_id": "X", "detect": 5}),
    "fax no type": lambda w: event("calling.call.fax", {"control_id": "X", "fax": []}),
    "connect connected": lambda w: event(
        "calling.call.connect",
        {
            "call_id": _id(w.call_id),
            "connect_state": "connected",
            "peer": {"call_id": "PEER", "node_id": NODE},
        },
    ),
    "connect bad state": lambda w: event(
        "calling.call.connect", {"call_id": _id(w.call_id), "connect_state": "exploded"}
    ),
    "connect no call_id": lambda w: event("calling.call.connect", {"connect_state": "failed"}),
    "message state": lambda w: event(
        "messaging.state", {"message_id": "M1", "message_state": "delivered"}
    ),
    "message bad state": lambda w: event(
        "messaging.state", {"message_id": "M1", "message_state": "exploded"}
    ),
    "message no id": lambda w: event("messaging.state", {"message_state": "sent"}),
    "message inbound": lambda w: event(
        "messaging.receive", {"message_id": "IN-M", "context": "office", "body": "hi"}
    ),
    "message inbound no id": lambda w: event("messaging.receive", {"body": "hi"}),
    "receive inbound": lambda w: event(
        "calling.call.receive",
        {"call_id": "IN-1", "node_id": NODE, "context": "office", "call_state": "ringing"},
    ),
    "receive ended": lambda w: event(
        "calling.call.receive", {"call_id": "IN-2", "node_id": NODE, "call_state": "ended"}
    ),
    "receive bad": lambda w: event("calling.call.receive", {"call_id": "IN-3"}),
    "authorization state": lambda w: event(
        "signalwire.authorization.state", {"authorization_state": "blob-2"}
    ),
    "unknown event type": lambda w: event("calling.conference", {"x": 1}),
    "event no id": lambda w: event("calling.conference", {"x": 1}, frame_id=None),
    "event int id": lambda w: event("calling.conference", {"x": 1}, frame_id=None, id=9),
    "event params not object": lambda w: frame(id="ev", method="signalwire.event", params=[1]),
    "event no event_type": lambda w: frame(id="ev", method="signalwire.event", params={}),
    "event inner not object": lambda w: event("calling.call.state", "x"),
    "event huge timestamp": lambda w: event("calling.conference", {}, timestamp=10**400),
    # server requests
    "ping": lambda w: frame(id="sp", method="signalwire.ping", params={"timestamp": 1}),
    "ping payload no params": lambda w: frame(id="sp", method="signalwire.ping"),
    "ping notification": lambda w: frame(method="signalwire.ping", params={}),
    "disconnect": lambda w: frame(id="d", method="signalwire.disconnect", params={}),
    "disconnect restart": lambda w: frame(
        id="d", method="signalwire.disconnect", params={"restart": True}
    ),
    "unknown method": lambda w: frame(id="u", method="signalwire.explode", params={}),
    "unknown notification": lambda w: frame(method="signalwire.explode"),
    # garbage
    "not json": lambda w: "this is not JSON {",
    "json array": lambda w: "[]",
    "json string": lambda w: '"hello"',
    "empty object": lambda w: "{}",
    "jsonrpc only": lambda w: '{"jsonrpc":"2.0"}',
    "bytes": lambda w: b'{"jsonrpc":"2.0","id":"x","result":{}}',
    "NaN": lambda w: '{"jsonrpc":"2.0","id":"x","result":{"t":NaN}}',
    "huge float": lambda w: '{"jsonrpc":"2.0","id":"x","result":{"t":1e400}}',
    "bool id": lambda w: '{"jsonrpc":"2.0","id":true,"result":{}}',
    "method not string": lambda w: '{"jsonrpc":"2.0","id":"x","method":5}',
    "deep nesting": lambda w: "[" * 100_000 + "]" * 100_000,
    "lone surrogate": lambda w: '{"jsonrpc":"2.0","id":"\\ud800","method":"signalwire.ping"}',
}


def snapshot(client: ClientConnection) -> tuple[Any, ...]:
    """Everything observable about the core except the outbox and the silence watchdog."""
    calls = {call_id: client.get_call(call_id) for call_id in client.live_call_ids}
    return (
        client.state,
        client.protocol,
        client.identity,
        client.pending_dials,
        calls,
        client.pending_request_count,
        repr(client),
    )


def drain_and_check(client: ClientConnection) -> list[JSON]:
    out = client.data_to_send()
    assert isinstance(out, list)
    assert client.data_to_send() == []
    return [check_frame(text) for text in out]


def assert_still_usable(world: World) -> None:
    """A server ping is answered, in any state: control replies always go out."""
    world.client.receive(
        frame(id="alive", method="signalwire.ping", params={"timestamp": 7}), now=world.now
    )
    assert drain_and_check(world.client) == [
        {"jsonrpc": "2.0", "id": "alive", "result": {"timestamp": 7}}
    ]


@pytest.mark.parametrize("state", STATES)
def test_states_are_reached(state: str) -> None:
    build, expected = STATES[state]
    world = build()
    assert world.client.state is expected
    drain_and_check(world.client)


@pytest.mark.parametrize("name", INPUTS)
@pytest.mark.parametrize("state", STATES)
def test_every_input_in_every_state(state: str, name: str) -> None:
    world = STATES[state][0]()
    world.client.data_to_send()
    text = INPUTS[name](world)
    before = snapshot(world.client)
    try:
        events = world.client.receive(text, now=world.now)
    except RemoteProtocolError:
        assert snapshot(world.client) == before, "a refused frame changed the core"
    else:
        assert isinstance(events, list)
    drain_and_check(world.client)
    assert_still_usable(world)
    world.client.handle_timer(now=world.now + 1000)
    drain_and_check(world.client)


Command = Callable[[World], object]

MEDIA = [{"type": "tts", "text": "hi"}]
COMMANDS: dict[str, Command] = {
    "connect": lambda w: w.client.connect(now=w.now),
    "connection_lost": lambda w: w.client.connection_lost(now=w.now),
    "ping": lambda w: w.client.ping(now=w.now),
    "subscribe": lambda w: w.client.subscribe(["office"]),
    "subscribe none": lambda w: w.client.subscribe([]),
    "unsubscribe": lambda w: w.client.unsubscribe(["office"]),
    "dial": lambda w: w.client.dial([[phone(A)]], now=w.now, max_duration=5),
    "dial same tag": lambda w: w.client.dial([[phone(A)]], now=w.now, tag=_id(w.dial_tag)),
    "dial bad plan": lambda w: w.client.dial([phone(A)], now=w.now),
    "dial zero max_duration": lambda w: w.client.dial([[phone(A)]], now=w.now, max_duration=0),
    "cancel pending dial": lambda w: w.client.cancel_dial(_id(w.dial_tag), now=w.now),
    "cancel answered dial": lambda w: w.client.cancel_dial("tag1", now=w.now),
    "play": lambda w: w.client.play(_id(w.call_id), MEDIA, volume=1, direction="both", loop=2),
    "play bad media": lambda w: w.client.play(_id(w.call_id), [{"type": "tts"}]),
    "play on a leg": lambda w: w.client.play(_id(w.leg_id), MEDIA),
    "play pause": lambda w: w.client.play_control(_id(w.call_id), _id(w.control_id), "pause"),
    "play volume": lambda w: w.client.play_control(
        _id(w.call_id), _id(w.control_id), "volume", volume=3
    ),
    "play bad action": lambda w: w.client.play_control(_id(w.call_id), "c", "explode"),
    "record": lambda w: w.client.start_action(_id(w.call_id), "record", {}),
    "collect bad": lambda w: w.client.start_action(_id(w.call_id), "collect", {}),
    "record stop": lambda w: w.client.action_control(
        _id(w.call_id), "record", _id(w.record_id), "stop"
    ),
    "record bad control": lambda w: w.client.action_control(
        _id(w.call_id), "record", _id(w.record_id), "volume"
    ),
    "abandon record": lambda w: w.client.abandon_action(_id(w.record_id)),
    "connect_call": lambda w: w.client.connect_call(_id(w.call_id), [[phone(B)]]),
    "connect_call bad": lambda w: w.client.connect_call(_id(w.call_id), []),
    "send_message": lambda w: w.client.send_message(to_number=A, from_number=B, body="x"),
    "send_message bad": lambda w: w.client.send_message(to_number=A, from_number=B),
    "end": lambda w: w.client.end(_id(w.call_id)),
    "end unknown": lambda w: w.client.end("nobody"),
    "answer": lambda w: w.client.answer(_id(w.call_id)),
    "execute": lambda w: w.client.execute("calling.answer", {}, call_id=w.call_id),
    "execute bad params": lambda w: w.client.execute("x.y", {"x": {1, 2}}),
    "handle_timer": lambda w: w.client.handle_timer(now=w.now + 500),
    "next_deadline": lambda w: w.client.next_deadline(),
    "get_call": lambda w: w.client.get_call(_id(w.call_id)),
}


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("state", STATES)
def test_every_command_in_every_state(state: str, name: str) -> None:
    world = STATES[state][0]()
    world.client.data_to_send()
    with contextlib.suppress(LocalProtocolError):
        COMMANDS[name](world)
    drain_and_check(world.client)
    assert_still_usable(world)


def test_the_catalogue_sees_both_outcomes() -> None:
    """Guard against a vacuous totality test: in READY, the catalogue holds inputs and
    commands of both kinds (the ids it targets exist there)."""
    refused_inputs, refused_commands = set(), set()
    for name, make in INPUTS.items():
        world = ready()
        try:
            world.client.receive(make(world), now=world.now)
        except RemoteProtocolError:
            refused_inputs.add(name)
    for name, command in COMMANDS.items():
        world = ready()
        try:
            command(world)
        except LocalProtocolError:
            refused_commands.add(name)
    assert {"not json", "reply unknown id", "bytes"} <= refused_inputs
    accepted = {
        "dial result 200",
        "dial error",
        "play result 404",
        "ping result",
        "reply recent id",
        "state leg",
        "state call ended",
        "state bad state",  # an unknown state is reported (UnknownState), not refused
        "dial answered",
        "dial failed",
        "play finished",
        "receive inbound",
        "unknown event type",
        "ping",
        "disconnect restart",
        "unknown method",
        "record finished",
        "record bad state",
        "connect connected",
        "message state",
        "message inbound",
    }
    assert not accepted & refused_inputs
    assert {"connect", "dial same tag", "end unknown", "play on a leg"} <= refused_commands
    assert {"collect bad", "record bad control", "connect_call bad"} <= refused_commands
    assert {"send_message bad"} <= refused_commands
    assert not {"dial", "play", "end", "cancel pending dial", "execute"} & refused_commands
    new = {"record", "record stop", "abandon record", "connect_call", "send_message"}
    assert not new & refused_commands
