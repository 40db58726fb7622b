"""The simulator's shapes pinned to the real server's, as the references show them.

References: the RELAY implementation guide (signalwire-typescript,
``relay/RELAY_IMPLEMENTATION_GUIDE.md``), the official SDKs' event types and their test
server. Where the real behaviour is unknown, docs/simulator.md ("Fidelity") says what the
simulator chose; these tests pin that choice.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_server_core import (
    PROJECT,
    A,
    B,
    Frame,
    Peer,
    call_id_of,
    connected,
    make_sim,
    phone,
)

from relay_proto import LocalProtocolError
from relay_proto.simulator import Outcome, OutcomeKind, Scenario
from relay_proto.testing import Pair

TTS = [{"type": "tts", "params": {"text": "hi"}}]


def inner_events(frames: list[Frame], event_type: str) -> list[Frame]:
    return [
        f["params"]["params"]
        for f in frames
        if f.get("method") == "signalwire.event" and f["params"]["event_type"] == event_type
    ]


def reply(frames: list[Frame]) -> Any:
    (first, *_) = frames
    return first.get("result", first.get("error"))


# ---- gone-call codes only for calls that are gone --------------------------------------


def test_a_verb_on_a_ringing_call_is_not_a_gone_call() -> None:
    peer = connected(destinations={A: Outcome(kind=OutcomeKind.NO_ANSWER)})
    ringing = call_id_of(peer.dial([[phone(A)]], 0.0), A)
    result = reply(peer.call_cmd("calling.play", ringing, 1.0, control_id="P", play=TTS))
    assert result == {"code": "409", "message": "Call is not answered"}
    assert [c.call_id for c in peer.sim.live_calls()] == [ringing]  # still there
    peer.call_cmd("calling.end", ringing, 2.0, reason="cancel")
    gone = reply(peer.call_cmd("calling.play", ringing, 3.0, control_id="P", play=TTS))
    assert gone["code"] == "404"  # now it is gone


def test_unknown_calling_methods_are_refused_never_a_silent_200() -> None:
    peer = connected()
    call_id = call_id_of(peer.dial([[phone(A)]], 0.0), A)
    peer.tick(1.0)
    for method in ("calling.ai", "calling.no_such_verb"):
        error = reply(peer.call_cmd(method, call_id, 2.0))
        assert error == {"code": -32601, "message": f"Method not found: {method}"}
    # an unknown signalwire.* method: JSON-RPC -32601 as before
    assert reply(peer.request("signalwire.nope", {}, 2.0))["code"] == -32601


def test_bad_params_get_a_400_result_frame_problems_a_jsonrpc_error() -> None:
    peer = connected()
    bad_dial = peer.request("calling.dial", {"tag": "T", "devices": [[{"type": "phone"}]]}, 0.0)
    assert reply(bad_dial)["code"] == "400"
    assert reply(bad_dial)["message"]
    assert reply(peer.request("calling.end", {"call_id": "x"}, 0.0))["code"] == "400"
    assert reply(peer.request("calling.end", ["not", "an", "object"], 0.0))["code"] == -32602
    assert reply(peer.request("signalwire.connect", None, 0.0))["code"] == -32000  # 2nd connect


# ---- sessions ---------------------------------------------------------------------------


def test_bad_credentials_carry_auth_required() -> None:
    peer = Peer(make_sim())
    error = reply(peer.connect(authentication={"project": PROJECT, "token": "wrong"}))
    assert error["code"] == -32002
    assert error["data"] == {"signalwire_error_code": "AUTH_REQUIRED"}


def test_resume_on_protocol_alone_state_blob_ignored() -> None:
    sim = make_sim()
    for extra in ({}, {"authorization_state": "garbage"}, {"authorization_state": 7}):
        peer = connected(sim)
        assert peer.conn.close_reason is None
        peer.conn.connection_lost(1.0)
        assert peer.conn.close_reason == "connection lost"
        again = Peer(sim, 2.0)
        result = reply(again.connect(2.0, protocol=peer.protocol, **extra))
        assert (result["protocol"], result["session_restored"]) == (peer.protocol, True)


# ---- event shapes -----------------------------------------------------------------------


def test_answered_dial_event_call_object() -> None:
    peer = connected()
    frames = peer.dial([[phone(A)]], 0.0) + peer.tick(1.0)
    (state,) = [
        e for e in inner_events(frames, "calling.call.state") if e["call_state"] == "answered"
    ]
    (answered,) = [
        e for e in inner_events(frames, "calling.call.dial") if e["dial_state"] == "answered"
    ]
    call = answered["call"]
    assert call == {**state, "dial_winner": "true"}  # the JS types: a string
    assert {"call_state", "direction", "segment_id", "node_id", "tag", "device"} <= set(call)
    assert (call["call_state"], call["direction"]) == ("answered", "outbound")
    assert "context" not in call  # unknown for an outbound dial


def test_failed_dial_event_has_reason_and_source() -> None:
    peer = connected(destinations={A: Outcome(kind=OutcomeKind.BUSY, after=1)})
    frames = peer.dial([[phone(A)]], 0.0) + peer.tick(1.0)
    (failed,) = [
        e for e in inner_events(frames, "calling.call.dial") if e["dial_state"] == "failed"
    ]
    assert (failed["reason"], failed["source"]) == ("busy", "endpoint")
    peer = connected(destinations={A: Outcome(kind=OutcomeKind.NO_ANSWER)})
    call_id = call_id_of(peer.dial([[phone(A)]], 0.0), A)
    frames = peer.call_cmd("calling.end", call_id, 1.0, reason="cancel")
    (failed,) = [
        e for e in inner_events(frames, "calling.call.dial") if e["dial_state"] == "failed"
    ]
    assert (failed["reason"], failed["source"]) == ("cancel", "client")


def test_inbound_offer_says_created_and_carries_a_segment() -> None:
    sim = make_sim()
    peer = connected(sim)
    peer.request("signalwire.receive", {"contexts": ["office"]}, 0.0)
    sim.inject_inbound_call(context="office", from_number=A, to_number=B, now=1.0)
    (offer,) = inner_events(peer.drain(1.0), "calling.call.receive")
    assert (offer["call_state"], offer["context"]) == ("created", "office")
    assert offer["segment_id"]


def test_node_ids_vary_per_call_and_every_call_event_has_a_segment() -> None:
    sim = make_sim(node_id=None, scenario=Scenario(play_seconds_per_char=0.1))
    peer = connected(sim)
    frames = peer.dial([[phone(A), phone(B)]], 0.0) + peer.tick(1.0)
    states = inner_events(frames, "calling.call.state")
    assert len({e["node_id"] for e in states}) == 2  # two legs, two nodes
    assert all(e["segment_id"] for e in states)
    assert len({e["segment_id"] for e in states}) == 2  # one segment per leg
    (answered,) = [e for e in inner_events(frames, "calling.call.dial") if "call" in e]
    winner = answered["call"]
    target = {"node_id": winner["node_id"], "call_id": winner["call_id"]}
    play = peer.request("calling.play", {**target, "control_id": "P", "play": TTS}, 1.0)
    (playing,) = inner_events(play, "calling.call.play")
    assert playing["segment_id"] == winner["segment_id"]
    assert playing["node_id"] == winner["node_id"]


# ---- the server's own pings -------------------------------------------------------------


def pings(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f.get("method") == "signalwire.ping"]


def test_the_server_pings_every_interval_after_each_pong() -> None:
    sim = make_sim(ping_interval=10.0, ping_timeout=5.0)
    peer = connected(sim)
    assert sim.next_deadline() == 10.0
    assert pings(peer.tick(9.9)) == []
    (ping,) = pings(peer.tick(10.0))
    assert ping["params"] == {"timestamp": 10.0}
    assert sim.next_deadline() == 15.0  # its deadline
    peer.send({"jsonrpc": "2.0", "id": ping["id"], "result": {}}, 12.0)  # pong at 12
    assert sim.next_deadline() == 22.0
    (ping,) = pings(peer.tick(22.0))
    # an error reply also proves the peer alive
    peer.send({"jsonrpc": "2.0", "id": ping["id"], "error": {"code": 1, "message": "x"}}, 23.0)
    assert sim.next_deadline() == 33.0
    assert not peer.conn.closed
    assert not peer.conn.violations


def test_a_silent_peer_is_closed_after_one_ping_not_flooded() -> None:
    sim = make_sim(ping_interval=10.0, ping_timeout=5.0)
    peer = connected(sim)
    protocol = peer.protocol
    sim.handle_timer(1_000_000.0)  # a fake clock far ahead (or a late wake-up): one ping
    assert len(pings(peer.drain())) == 1
    # ... whose answer is waited for from when it really went out, not from when it was due
    assert not peer.conn.closed
    assert sim.next_deadline() == 1_000_005.0
    sim.handle_timer(1_000_005.0)
    assert peer.drain() == []  # still one ping: no flood
    assert peer.conn.closed
    assert peer.conn.violations == ["ping id-3 unanswered: connection closed"]
    assert peer.conn.close_reason == "ping unanswered"
    assert sim.next_deadline() is None
    peer.conn.connection_lost(1_000_000.0)
    again = Peer(sim, 1_000_001.0)  # the session waits for a resume as after any loss
    assert reply(again.connect(1_000_001.0, protocol=protocol))["session_restored"] is True


def test_pings_stop_while_disconnecting_and_can_be_turned_off() -> None:
    sim = make_sim(ping_interval=10.0)
    peer = connected(sim)
    peer.conn.send_disconnect(restart=False)
    peer.drain()
    assert sim.next_deadline() is None
    sim.ping_interval = None
    sim.ping_timeout = 3.0
    assert (sim.ping_interval, sim.ping_timeout) == (None, 3.0)
    quiet = connected(sim)
    assert sim.next_deadline() is None
    assert pings(quiet.tick(100.0)) == []
    for bad in (0, -1.0, float("nan"), "10"):
        with pytest.raises(LocalProtocolError):
            sim.ping_timeout = bad  # type: ignore[assignment]
        with pytest.raises(LocalProtocolError):
            make_sim(ping_interval=bad)


def test_the_projects_client_answers_pings_and_stays_connected() -> None:
    pair = Pair(simulator_kwargs={"ping_interval": 10.0, "ping_timeout": 1.0})
    pair.connect()
    server = pair.server
    pair.advance(3_600.0)  # one ping per 10 s of fake time, each answered at once
    assert pair.server is server
    assert not pair.simulator.connections()[0].violations
    sent = [json.loads(f) for f in pair.server_frames]
    assert len(pings(sent)) == 360
