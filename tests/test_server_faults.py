"""Every scriptable fault of the simulator, driven with raw JSON frames."""

from __future__ import annotations

import dataclasses
import json

from test_server_core import A, B, Frame, Peer, call_id_of, make_sim, phone, resume, s

from relay_proto.simulator import (
    GARBAGE_FRAME,
    ConnectionState,
    Faults,
    Outcome,
    OutcomeKind,
    Refusal,
    Scenario,
)


def faulty(**faults: object) -> Peer:
    sim = make_sim(scenario=Scenario(faults=Faults(**faults)))  # type: ignore[arg-type]
    peer = Peer(sim)
    peer.connect()
    return peer


def test_duplicate_events() -> None:
    peer = faulty(duplicate_events=True)
    frames = peer.dial([[phone(A)]], 0.0)
    assert s(frames) == [
        ("result", "d1", "200"),
        ("dial", "dialing", None),
        ("dial", "dialing", None),
        ("state", A, "created", None),
        ("state", A, "created", None),
        ("state", A, "ringing", None),
        ("state", A, "ringing", None),
    ]
    first, second = frames[1], frames[2]
    assert first["id"] != second["id"]
    assert first["params"] == second["params"]
    assert peer.sim.unacked_events(str(peer.protocol)) == 0


def test_events_before_result() -> None:
    peer = faulty(events_before_result=True)
    assert s(peer.dial([[phone(A)]], 0.0)) == [
        ("dial", "dialing", None),
        ("state", A, "created", None),
        ("state", A, "ringing", None),
        ("result", "d1", "200"),
    ]


def test_dial_event_first() -> None:
    peer = faulty(dial_event_first=True)
    peer.dial([[phone(A), phone(B)]], 0.0)
    peer.sim.scenario.destinations[B] = Outcome(kind=OutcomeKind.NO_ANSWER)
    assert s(peer.tick(1.0)) == [
        ("dial", "answered", A),
        ("state", A, "answered", None),
        ("state", B, "ended", "cancel"),
    ]


def test_reorder_swaps_adjacent_pairs_within_a_step() -> None:
    peer = faulty(reorder=True)
    assert s(peer.dial([[phone(A), phone(B)]], 0.0)) == [
        ("result", "d1", "200"),
        ("state", A, "created", None),
        ("dial", "dialing", None),
        ("state", A, "ringing", None),
        ("state", B, "created", None),
        ("state", B, "ringing", None),  # odd one out stays in place
    ]


def test_delay_events_keeps_order_and_timestamps() -> None:
    peer = faulty(delay_events=2.0)
    assert s(peer.dial([[phone(A)]], 0.0)) == [("result", "d1", "200")]
    assert peer.sim.next_deadline() == 0.2  # the answer itself is not delayed
    assert s(peer.tick(1.9)) == []
    frames = peer.tick(2.0)
    assert s(frames) == [
        ("dial", "dialing", None),
        ("state", A, "created", None),
        ("state", A, "ringing", None),
    ]
    assert {f["params"]["timestamp"] for f in frames} == {0.0}
    assert s(peer.tick(2.2)) == [("state", A, "answered", None), ("dial", "answered", A)]


def test_drop_after_frames_is_one_shot_and_rearms() -> None:
    peer = faulty(drop_after_frames=4)
    frames = peer.dial([[phone(A)]], 0.0)
    assert s(frames) == [
        ("result", "d1", "200"),
        ("dial", "dialing", None),
    ]  # connect result, auth state, dial result, dialing: 4 frames, then the socket drops
    assert peer.conn.closed
    assert peer.conn.close_reason == "drop fault"
    sim = peer.sim
    peer.conn.connection_lost(0.1)
    assert peer.conn.close_reason == "drop fault"  # the first reason stays
    sim.handle_timer(0.5)
    new, frames = resume(sim, peer, 1.0)
    assert s(frames) == [
        ("result", "c1", None),
        ("dial", "dialing", None),  # its ack came after the drop: ignored
        ("state", A, "created", None),
        ("state", A, "ringing", None),
        ("state", A, "answered", None),
        ("dial", "answered", A),
        ("signalwire.authorization.state",),
    ]
    assert not new.conn.closed  # fired once
    assert (new.conn.session_restored, new.conn.close_reason) == (True, None)
    sim.scenario.faults = dataclasses.replace(sim.scenario.faults)  # a new object re-arms
    new.request("signalwire.ping", {}, 2.0)
    assert new.conn.closed


def test_refuse_resume() -> None:
    peer = faulty(refuse_resume=True)
    peer.conn.connection_lost(1.0)
    _, frames = resume(peer.sim, peer, 2.0)
    result = frames[0]["result"]
    assert result["session_restored"] is False
    assert result["protocol"] != peer.protocol


def disconnect_frame(frames: list[Frame]) -> Frame:
    (frame,) = [f for f in frames if f.get("method") == "signalwire.disconnect"]
    return frame


def test_disconnect_after_dial_then_resume() -> None:
    peer = faulty(disconnect_after_dial=True)
    frames = peer.dial([[phone(A)]], 0.0)
    assert s(frames) == [("result", "d1", "200"), ("signalwire.disconnect", {"restart": False})]
    peer.send({"jsonrpc": "2.0", "id": frames[1]["id"], "result": {}}, 0.1)
    assert peer.conn.closed
    peer.conn.connection_lost(0.1)
    new, frames = resume(peer.sim, peer, 0.5)
    assert frames[0]["result"]["session_restored"] is True
    assert s(frames[1:4]) == [
        ("dial", "dialing", None),
        ("state", A, "created", None),
        ("state", A, "ringing", None),
    ]
    assert s(new.dial([[phone(B)]], 1.0, tag="T2"))[0] == ("result", "d1", "200")  # one-shot
    assert new.conn.state is ConnectionState.OPEN


def test_disconnect_after_dial_restart() -> None:
    peer = faulty(disconnect_after_dial="restart")
    frames = peer.dial([[phone(A)]], 0.0)
    assert disconnect_frame(frames)["params"] == {"restart": True}
    peer.send({"jsonrpc": "2.0", "id": frames[1]["id"], "error": {"code": 1, "message": ""}}, 0.1)
    peer.conn.connection_lost(0.1)
    _, frames = resume(peer.sim, peer, 0.5)
    assert frames[0]["result"]["session_restored"] is False


def test_garbage_after_connect() -> None:
    sim = make_sim(scenario=Scenario(faults=Faults(garbage=True)))
    peer = Peer(sim)
    peer.conn.receive(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": "c1",
                "method": "signalwire.connect",
                "params": {"authentication": {"project": "P-UUID", "token": "PT-secret-token"}},
            }
        ),
        0.0,
    )
    frames = peer.conn.data_to_send()
    assert frames[-1] == GARBAGE_FRAME
    assert len(frames) == 3
    assert sim.unacked_events(str(json.loads(frames[0])["result"]["protocol"])) == 0  # no acks


def test_dial_refused_with_code_and_error() -> None:
    peer = faulty(dial_refused=Refusal(code="500", message="nope"))
    assert peer.dial([[phone(A)]], 0.0) == [
        {"jsonrpc": "2.0", "id": "d1", "result": {"code": "500", "message": "nope"}}
    ]
    assert peer.sim.all_calls() == []
    assert peer.sim.next_deadline() is None
    peer.sim.scenario.faults = Faults(dial_refused=Refusal(code=-32000))
    assert peer.dial([[phone(A)]], 0.0) == [
        {"jsonrpc": "2.0", "id": "d1", "error": {"code": -32000, "message": "Dial refused"}}
    ]


def test_create_call_after_refusal() -> None:
    peer = faulty(dial_refused=Refusal(code="503"), create_call_after_refusal=True)
    assert s(peer.dial([[phone(A)]], 0.0)) == [
        ("result", "d1", "503"),
        ("dial", "dialing", None),
        ("state", A, "created", None),
        ("state", A, "ringing", None),
    ]
    assert s(peer.tick(1.0)) == [("state", A, "answered", None), ("dial", "answered", A)]


def test_ignore_end() -> None:
    peer = faulty(ignore_end=True)
    call_id = call_id_of(peer.dial([[phone(A)]], 0.0), A)
    assert s(peer.call_cmd("calling.end", call_id, 0.1, reason="cancel")) == [
        ("result", "x", "200")
    ]
    assert s(peer.tick(1.0)) == [("state", A, "answered", None), ("dial", "answered", A)]
    assert len(peer.sim.live_calls()) == 1


def test_drop_on_the_connect_result_and_resume_without_connection_lost() -> None:
    peer = faulty()
    peer.dial([[phone(A)]], 0.0)
    peer.auto_ack = False
    peer.tick(1.0)
    peer.sim.scenario.faults = Faults(drop_after_frames=1)
    new, frames = resume(peer.sim, peer, 2.0)
    assert s(frames) == [("result", "c1", None)]  # re-delivery cut off by the drop
    assert new.conn.closed
    # the adapter has not reported the loss yet: a third socket still resumes
    third, frames = resume(peer.sim, peer, 3.0)
    assert s(frames)[1:] == [
        ("state", A, "answered", None),
        ("dial", "answered", A),
        ("signalwire.authorization.state",),  # queued for the dropped socket, never sent
        ("signalwire.authorization.state",),
    ]
    assert new.conn.close_reason == "drop fault"
    new.conn.connection_lost(3.0)  # late loss of a socket that lost the session
    assert not third.conn.closed


def test_disconnect_frame_itself_dropped() -> None:
    peer = faulty()
    peer.sim.scenario.faults = Faults(drop_after_frames=1)
    peer.conn.send_disconnect(restart=False)
    assert peer.conn.closed
