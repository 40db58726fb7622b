"""Garbage in: whatever arrives, ``receive`` raises ``RemoteProtocolError`` or nothing.

The client core is fed random text, random JSON values, and mutations of valid server
frames (a key dropped, a node replaced by random JSON, huge integers, ``NaN``/``Infinity``
tokens, truncation). It must only ever raise ``RemoteProtocolError``; when it does, nothing
observable but the outbox changed; its outbox always drains to well-formed frames; and it
stays usable (a server ping is answered, a new dial goes out).

The server core's request side is fuzzed in ``test_server_fuzz``; here only what that file
does not feed it: non-object JSON values, NaN tokens, and mutated replies (event acks and
pongs), which must never corrupt a session.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from test_pair import check_frame
from test_totality import World, assert_still_usable, event, frame, leg_state, ready, snapshot

from relay_proto import RemoteProtocolError, RequestSucceeded
from relay_proto.testing import Outcome, OutcomeKind, Pair, Scenario, phone

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["answered", "ended", "finished", "calling.call.state", "200", "tag2"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


def valid_frames(world: World) -> list[str]:
    """One valid frame of every kind the client handles, aimed at what lives in ``world``."""
    control = {"control_id": world.control_id, "state": "finished"}
    winner = {"call_id": world.leg_id, "node_id": "NODE-1", "dial_winner": True}
    return [
        frame(id=world.dial_request, result={"code": "200", "message": "Dialing"}),
        frame(id=world.play_request, error={"code": -32000, "message": "no", "data": [1]}),
        frame(id=world.ping_id, result={"timestamp": 30}),
        event("calling.call.state", leg_state("LEG-2", "answered", world.dial_tag)),
        event("calling.call.state", leg_state("CALL-1", "ended", None, end_reason="hangup")),
        event(
            "calling.call.dial", {"tag": world.dial_tag, "dial_state": "answered", "call": winner}
        ),
        event("calling.call.dial", {"tag": world.dial_tag, "dial_state": "failed"}),
        event("calling.call.play", control),
        event("calling.call.receive", {"call_id": "IN", "node_id": "N", "context": "office"}),
        event("signalwire.authorization.state", {"authorization_state": "blob-2"}),
        frame(id="sp", method="signalwire.ping", params={"timestamp": 1, "payload": "x"}),
        frame(id="d", method="signalwire.disconnect", params={"restart": True}),
    ]


def mutate(value: Any, path: list[int], replacement: Any, drop: bool) -> Any:
    """Replace (or, with ``drop``, delete) one node of a JSON tree chosen by ``path``."""
    if isinstance(value, dict) and value:
        key = sorted(value)[path[0] % len(value)] if path else None
        if key is not None and (len(path) > 1 and isinstance(value[key], dict | list)):
            return {**value, key: mutate(value[key], path[1:], replacement, drop)}
        if key is not None:
            rest = {k: v for k, v in value.items() if k != key}
            return rest if drop else {**rest, key: replacement}
    if isinstance(value, list) and value and path:
        index = path[0] % len(value)
        item = mutate(value[index], path[1:], replacement, drop)
        return [*value[:index], *([] if drop else [item]), *value[index + 1 :]]
    return replacement


_NUMBER = re.compile(r"(?<=[:\[,])-?\d+(\.\d+)?(?=[,}\]])")


def feed_and_check(world: World, text: str | bytes) -> None:
    client = world.client
    before = snapshot(client)
    try:
        events = client.receive(text, now=world.now)
    except RemoteProtocolError:
        assert snapshot(client) == before, "a refused frame changed the core"
    else:
        assert isinstance(events, list)
    for out in client.data_to_send():
        check_frame(out)
    assert_still_usable(world)
    if client.state.value == "ready":
        client.dial([[phone("+15550000009")]], now=world.now)
        (dial,) = client.data_to_send()
        assert check_frame(dial)["method"] == "calling.dial"


@given(text=st.text(max_size=60) | st.binary(max_size=30))
@example(text="\ud800")
@example(text='{"jsonrpc":"2.0","id":"x","result":{}}\x00')
def test_random_text(text: str | bytes) -> None:
    feed_and_check(ready(), text)


@given(value=json_values)
@example(value={"jsonrpc": "2.0", "id": None, "result": {}})
@example(value={"jsonrpc": "2.0", "method": "signalwire.event", "id": 10**400})
def test_random_json_values(value: Any) -> None:
    feed_and_check(ready(), json.dumps(value))


@given(
    which=st.integers(min_value=0, max_value=11),
    path=st.lists(st.integers(min_value=0, max_value=7), max_size=5),
    replacement=json_values,
    drop=st.booleans(),
)
def test_mutated_valid_frames(which: int, path: list[int], replacement: Any, drop: bool) -> None:
    world = ready()
    original = json.loads(valid_frames(world)[which])
    feed_and_check(world, json.dumps(mutate(original, path, replacement, drop)))


@given(
    which=st.integers(min_value=0, max_value=11),
    token=st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "9" * 5000]),
    nth=st.integers(min_value=0, max_value=5),
    cut=st.none() | st.integers(min_value=0, max_value=200),
)
def test_number_tokens_and_truncation(which: int, token: str, nth: int, cut: int | None) -> None:
    world = ready()
    text = valid_frames(world)[which]
    numbers = list(_NUMBER.finditer(text))
    if numbers:
        match = numbers[nth % len(numbers)]
        text = text[: match.start()] + token + text[match.end() :]
    else:
        text = text[:-1] + f',"x":{token}}}'
    feed_and_check(world, text if cut is None else text[:cut])


def test_every_valid_frame_is_accepted() -> None:
    """The mutation seeds are valid: each one alone is accepted by a READY client."""
    for index in range(12):
        world = ready()
        world.client.receive(valid_frames(world)[index], now=world.now)


# ---------------------------------------------------------------------------- server side


def _server_pair() -> Pair:
    pair = Pair(scenario=Scenario(default=Outcome(kind=OutcomeKind.ANSWER, after=1)))
    pair.connect()
    pair.client.dial([[phone("+15550000002")]], now=pair.now)
    pair.advance(2)
    return pair


@given(
    value=json_values,
    path=st.lists(st.integers(min_value=0, max_value=7), max_size=4),
    drop=st.booleans(),
    mode=st.sampled_from(["value", "ack", "pong"]),
)
def test_server_survives_garbage_replies(
    value: Any, path: list[int], drop: bool, mode: str
) -> None:
    pair = _server_pair()
    server = pair.server
    assert server is not None
    protocol = pair.client.protocol or ""
    if mode == "value":
        text = json.dumps(value)
    else:
        # an ack of an event, or a pong, as the client would send it, then mutated
        sent = [json.loads(f) for f in pair.server_frames if '"method"' in f]
        target = sent[len(path) % len(sent)]
        reply = {"jsonrpc": "2.0", "id": target["id"], "result": {} if mode == "ack" else {"t": 1}}
        text = json.dumps(mutate(reply, path, value, drop))
    before = pair.simulator.unacked_events(protocol)
    with contextlib.suppress(RemoteProtocolError):
        server.receive(text, pair.now)
    assert pair.simulator.unacked_events(protocol) <= before
    for out in server.data_to_send():
        assert isinstance(json.loads(out), dict)
    # still usable: a request from the client is answered and the clock runs
    request_id = pair.client.ping(now=pair.now)
    events = pair.pump()
    assert [e.request_id for e in events if isinstance(e, RequestSucceeded)] == [request_id]
    pair.advance(100)
    assert pair.simulator.unacked_events(protocol) == 0


@given(
    token=st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400"]),
    where=st.sampled_from(["id", "result", "params"]),
)
def test_server_refuses_number_tokens(token: str, where: str) -> None:
    pair = _server_pair()
    server = pair.server
    assert server is not None
    text = {
        "id": f'{{"jsonrpc":"2.0","id":{token},"result":{{}}}}',
        "result": f'{{"jsonrpc":"2.0","id":"x","result":{{"t":{token}}}}}',
        "params": '{"jsonrpc":"2.0","id":"p","method":"signalwire.ping",'
        f'"params":{{"timestamp":{token}}}}}',
    }[where]
    with pytest.raises(RemoteProtocolError) as refused:
        server.receive(text, pair.now)
    assert server.violations[-1] == str(refused.value)
    assert server.data_to_send() == []
    request_id = pair.client.ping(now=pair.now)
    (succeeded,) = [e for e in pair.pump() if isinstance(e, RequestSucceeded)]
    assert succeeded.request_id == request_id
