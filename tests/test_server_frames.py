"""The simulator's frames as text: its hand-assembled event envelopes and its ack fast path.

The server core builds event frames from pieces encoded once (``_wire.EventFramer``,
``_wire.leg_state_params``, ``_wire.dial_params``) and recognises the compact ack by its
text (``_wire.parse_ack``). These tests pin both to what a plain JSON encoder / decoder
makes of the same values, so the shortcuts can never change a byte or a meaning.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_server_core import PROJECT, TOKEN, counter_ids, phone

from relay_proto import RemoteProtocolError
from relay_proto import _wire as wire
from relay_proto.simulator import (
    Faults,
    Outcome,
    OutcomeKind,
    Scenario,
    ServerConnection,
    Simulator,
    uuid4_batched,
)

Frame = dict[str, Any]


def reference(obj: Any) -> str:
    """An independent encoder with the wire's settings: compact, ASCII-only, no NaN."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def compact_ack(event_id: str) -> str:
    return reference({"jsonrpc": "2.0", "id": event_id, "result": {}})


class TextPeer:
    """A client that checks every frame's text and acks events in the compact form."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.conn: ServerConnection = sim.open_connection(0)
        self.texts: list[str] = []

    def drain(self, now: float) -> list[Frame]:
        frames = []
        for text in self.conn.data_to_send():
            frame = json.loads(text)
            assert text == reference(frame), text  # byte for byte, keys in wire order
            self.texts.append(text)
            frames.append(frame)
        for frame in frames:
            if frame.get("method") == "signalwire.event":
                self.conn.receive(compact_ack(frame["id"]), now)
        return frames

    def tick(self, now: float) -> list[Frame]:
        self.sim.handle_timer(now)
        return self.drain(now)

    def request(self, method: str, params: Frame, now: float) -> list[Frame]:
        self.conn.receive(
            reference({"jsonrpc": "2.0", "id": "r", "method": method, "params": params}), now
        )
        return self.drain(now)

    def connect(self, now: float) -> list[Frame]:
        auth = {"project": PROJECT, "token": TOKEN}
        params = {"authentication": auth, "event_acks": True, "contexts": ["office"]}
        return self.request("signalwire.connect", params, now)


def events(frames: list[Frame]) -> list[Frame]:
    return [f["params"] for f in frames if f.get("method") == "signalwire.event"]


@pytest.mark.parametrize("epoch", [0, 0.0, 1_700_000_000.25])
@pytest.mark.parametrize("duplicate", [False, True])
def test_event_frames_are_canonical_json(epoch: float, duplicate: bool) -> None:
    scenario = Scenario(
        default=Outcome(kind=OutcomeKind.ANSWER, after=1),
        destinations={"+15550000002": Outcome(kind=OutcomeKind.BUSY, after=1)},
        faults=Faults(duplicate_events=duplicate),
    )
    sim = Simulator(
        credentials={PROJECT: TOKEN},
        id_factory=counter_ids(),
        scenario=scenario,
        epoch=epoch,
        space_id='sp\u00e4ce "one"',
    )
    peer = TextPeer(sim)
    assert events(peer.connect(0))[0]["space_id"] == 'sp\u00e4ce "one"'
    odd = phone("+15550000001", note='caf\u00e9 \\ "q" \u2603', n=12, x=1.5, ok=True, no=None)
    tag = 't\u00e4g "quoted" \\ \U0001f600'
    peer.request("calling.dial", {"tag": tag, "devices": [[phone("+15550000002")], [odd]]}, 0)
    frames = [*peer.drain(0), *peer.tick(1), *peer.tick(2)]
    dial_events = [e["params"] for e in events(frames) if e["event_type"] == "calling.call.dial"]
    assert dial_events[-1]["call"]["device"] == odd
    assert dial_events[-1]["call"]["tag"] == tag
    call_id = dial_events[-1]["call"]["call_id"]
    target = {"node_id": dial_events[-1]["call"]["node_id"], "call_id": call_id}
    peer.request(
        "calling.play",
        {**target, "control_id": "p\u00e9", "play": [{"type": "tts", "params": {"text": "hi"}}]},
        2,
    )
    peer.request("calling.end", {**target, "reason": "hang \u00fcp"}, 3)
    call = sim.inject_inbound_call(context="office", from_number="+1", to_number="+2", now=4)
    received = events(peer.drain(4))
    assert received[0]["params"]["call_id"] == call
    assert received[0]["params"]["context"] == "office"
    assert received[0]["timestamp"] == 4 + epoch
    assert sim.unacked_events(peer.conn.protocol or "") == 0  # every compact ack landed
    assert not peer.conn.violations
    assert len(peer.texts) > 15


def test_space_id_can_change() -> None:
    sim = Simulator(id_factory=counter_ids())
    sim.space_id = "other"
    peer = TextPeer(sim)
    assert events(peer.connect(0))[0]["space_id"] == "other"


def ids(*special: str) -> Callable[[], str]:
    """The given ids first (the session signature, then events), then counter ids."""
    it: Iterator[str] = iter(special)
    rest = counter_ids()
    return lambda: next(it, None) or rest()


def connected(*special: str) -> tuple[Simulator, ServerConnection, str]:
    sim = Simulator(id_factory=ids("sig", *special))
    conn = sim.open_connection(0)
    auth = {"project": "p", "token": "t"}
    params = {"authentication": auth, "event_acks": True}
    conn.receive(
        reference({"jsonrpc": "2.0", "id": "c", "method": "signalwire.connect", "params": params}),
        0,
    )
    conn.data_to_send()
    return sim, conn, "signalwire_sig"


@pytest.mark.parametrize("event_id", ["plain", "caf\u00e9", 'quo"te', "back\\slash", "ctl\x01"])
def test_ack_with_any_id_in_its_json_form(event_id: str) -> None:
    sim, conn, protocol = connected(event_id)
    assert sim.unacked_events(protocol) == 1
    conn.receive(compact_ack(event_id), 0)
    assert sim.unacked_events(protocol) == 0
    assert not conn.violations


def test_raw_text_that_is_not_valid_json_is_not_an_ack() -> None:
    # The id as raw text inside the ack template: not what JSON makes of these ids.
    sim, conn, protocol = connected('x","y')
    with pytest.raises(RemoteProtocolError):
        conn.receive('{"jsonrpc":"2.0","id":"x","y","result":{}}', 0)
    sim, conn, protocol = connected("ctl\x01")
    with pytest.raises(RemoteProtocolError):
        conn.receive('{"jsonrpc":"2.0","id":"ctl\x01","result":{}}', 0)
    assert sim.unacked_events(protocol) == 1


def test_raw_backslash_means_another_id() -> None:
    sim, conn, protocol = connected("a\\nb")  # the four characters a \ n b
    conn.receive('{"jsonrpc":"2.0","id":"a\\nb","result":{}}', 0)  # JSON: "a", newline, "b"
    assert sim.unacked_events(protocol) == 1
    assert conn.violations == ["reply to an id never issued: 'a\\nb'"]


def test_compact_reply_to_unknown_id_or_own_request() -> None:
    _sim, conn, _protocol = connected()
    conn.receive(compact_ack("nope"), 0)
    assert conn.violations == ["reply to an id never issued: 'nope'"]
    conn.send_ping()
    ping_id = json.loads(conn.data_to_send()[0])["id"]
    conn.receive(compact_ack(ping_id), 0)
    conn.receive(compact_ack(ping_id), 0)  # the second time it is unknown
    assert conn.violations[1:] == [f"reply to an id never issued: {ping_id!r}"]


def test_compact_ack_before_connect_is_a_violation() -> None:
    sim = Simulator()
    conn = sim.open_connection(0)
    conn.receive(compact_ack("00000000-0000-4000-8000-000000000001"), 0)
    assert len(conn.violations) == 1


def test_own_request_ids_are_matched_before_events() -> None:
    # An id factory that repeats itself: the socket's own ping still comes first.
    sim, conn, protocol = connected("dup", "dup")
    conn.send_ping()
    conn.data_to_send()
    conn.receive(compact_ack("dup"), 0)
    assert sim.unacked_events(protocol) == 1
    conn.receive(compact_ack("dup"), 0)
    assert sim.unacked_events(protocol) == 0
    assert not conn.violations


def test_adapter_ids_are_version_4_uuids() -> None:
    import uuid

    new_id = uuid4_batched(batch=3)
    made = [new_id() for _ in range(10)]  # across several refills
    assert len(set(made)) == 10
    for text in made:
        value = uuid.UUID(text)
        assert str(value) == text
        assert value.version == 4
        assert value.variant == uuid.RFC_4122


def test_ready_connections_names_those_with_work() -> None:
    sim = Simulator()
    quiet, busy = sim.open_connection(0), sim.open_connection(0)
    assert sim.ready_connections() == []
    busy.receive(reference({"jsonrpc": "2.0", "id": 1, "method": "signalwire.ping"}), 0)
    busy.receive(reference({"jsonrpc": "2.0", "id": 2, "method": "signalwire.ping"}), 0)
    assert sim.ready_connections() == [busy]  # once, however many frames
    assert sim.ready_connections() == []
    assert len(busy.data_to_send()) == 2
    quiet.send_ping()
    busy.send_ping()
    busy.connection_lost(1)  # a lost connection is nobody's work any more
    assert sim.ready_connections() == [quiet]
    sim.scenario = Scenario(faults=Faults(drop_after_frames=1))
    quiet.send_ping()  # closes on that frame: ready once, to be flushed and closed
    assert quiet.closed
    assert sim.ready_connections() == [quiet]
    quiet.data_to_send()
    quiet.connection_lost(2)
    assert sim.ready_connections() == []


@settings(deadline=None)
@given(
    event_id=st.text(max_size=12),
    indent=st.sampled_from([None, 1]),
    reverse=st.booleans(),
    ascii_only=st.booleans(),
)
def test_parse_ack_never_disagrees_with_parse(
    event_id: str, indent: int | None, reverse: bool, ascii_only: bool
) -> None:
    """Whatever valid ack text arrives, ``parse_ack`` gives its id or defers to ``parse``."""
    items = [("jsonrpc", "2.0"), ("id", event_id), ("result", {})]
    text = json.dumps(
        dict(reversed(items) if reverse else items),
        separators=(",", ":") if indent is None else None,
        indent=indent,
        ensure_ascii=ascii_only,
    )
    found = wire.parse_ack(text)
    assert found is None or (found == event_id == wire.parse(text).id)
    if text == compact_ack(event_id) and event_id.isprintable() and event_id.isascii():
        assert found == event_id or '"' in event_id or "\\" in event_id
    assert wire.parse_ack(text.encode()) is None


def test_simulator_applies_the_client_rules() -> None:
    sim, conn, _protocol = connected()
    bad = [
        {"type": "phone", "params": {"to_number": "5550000002", "from_number": "+15550000001"}},
        {
            "type": "sip",
            "params": {
                "to": "sip:b@x",
                "from": "sip:a@x",
                "headers": [{"name": "H", "value": "v"}],
            },
        },
    ]
    for device in bad:
        conn.receive(
            reference(
                {
                    "jsonrpc": "2.0",
                    "id": "d",
                    "method": "calling.dial",
                    "params": {"tag": "t", "devices": [[device]]},
                }
            ),
            0,
        )
        (reply,) = [json.loads(text) for text in conn.data_to_send()]
        assert reply["result"]["code"] == "400"  # the calling API's answer to bad params
        assert reply["result"]["message"].startswith("devices[0][0].params.")
    assert sim.all_calls() == []
