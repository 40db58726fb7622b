"""The simulator's bridging (``calling.connect`` / ``calling.disconnect``) driven with raw
JSON frames: the peer legs ring with the dial's rules and outcomes, ``calling.call.connect``
reports the bridge, and bridged legs end together. Time is a fake ``now``; nothing sleeps.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_server_core import NODE, A, B, C, Frame, Peer, call_id_of, make_sim, phone, tts

from relay_proto._events import CallState
from relay_proto.simulator import Faults, Outcome, OutcomeKind, Scenario


def b(frames: list[Frame]) -> list[tuple[Any, ...]]:
    """Compact frames: connect events with their peer's number, state events with a
    flag saying whether they name a peer."""
    out: list[tuple[Any, ...]] = []
    for frame in frames:
        if "method" not in frame:
            result = frame.get("result")
            out.append(("result", result["code"]) if result else ("error", frame["error"]["code"]))
            continue
        event_type, inner = frame["params"]["event_type"], frame["params"]["params"]
        if event_type == "calling.call.connect":
            peer = inner.get("peer", {}).get("device", {}).get("params", {}).get("to_number")
            out.append(("connect", inner["connect_state"], peer, inner.get("reason")))
        elif event_type == "calling.call.state":
            to = inner["device"]["params"]["to_number"]
            flag = "peer" if "peer" in inner else ""
            out.append(("state", to, inner["call_state"], inner.get("end_reason"), flag))
        else:
            out.append((event_type,))
    return out


def scenario(**destinations: Outcome) -> Scenario:
    return Scenario(destinations=dict(destinations))


def answer(after: float = 0.2, **extra: Any) -> Outcome:
    return Outcome(kind=OutcomeKind.ANSWER, after=after, **extra)


def connected_peer(sc: Scenario | None = None) -> tuple[Peer, str]:
    """A session with an answered call to A (at 0.2 s)."""
    peer = Peer(make_sim(scenario=sc if sc is not None else Scenario()))
    peer.connect()
    call_id = call_id_of(peer.dial([[phone(A)]], 0.0), A)
    peer.tick(0.2)
    return peer, call_id


def connect(peer: Peer, call_id: str, now: float, devices: Any, **extra: Any) -> list[Frame]:
    return peer.call_cmd("calling.connect", call_id, now, devices=devices, **extra)


def connect_event(frames: list[Frame]) -> dict[str, Any]:
    (inner,) = [
        f["params"]["params"]
        for f in frames
        if f.get("method") == "signalwire.event"
        and f["params"]["event_type"] == "calling.call.connect"
    ]
    return dict(inner)


# ---- happy paths ----------------------------------------------------------------------


def test_connect_rings_the_peer_then_bridges() -> None:
    peer, call_id = connected_peer()
    frames = connect(peer, call_id, 1.0, [[phone(B)]], tag="bridge-1")
    assert b(frames) == [
        ("result", "200"),
        ("connect", "connecting", None, None),
        ("state", B, "created", None, ""),
        ("state", B, "ringing", None, ""),
    ]
    assert frames[0]["result"]["message"] == "Connecting"
    assert connect_event(frames) == {
        "node_id": NODE,
        "call_id": call_id,
        "connect_state": "connecting",
        "tag": "bridge-1",
    }
    peer_id = call_id_of(frames, B)
    frames = peer.tick(1.2)
    assert b(frames) == [
        ("state", B, "answered", None, ""),
        ("connect", "connected", B, None),
    ]
    event = connect_event(frames)
    assert event["peer"] == {
        "call_id": peer_id,
        "node_id": NODE,
        "tag": "bridge-1",
        "device": phone(B),
    }
    live = {call.call_id: call for call in peer.sim.live_calls()}
    assert set(live) == {call_id, peer_id}
    assert (live[peer_id].tag, live[peer_id].direction) == ("bridge-1", "outbound")
    assert live[peer_id].protocol == peer.protocol


def test_a_connect_without_tag_gives_the_peer_a_fresh_tag() -> None:
    peer, call_id = connected_peer()
    frames = connect(peer, call_id, 1.0, [[phone(B)]])
    assert "tag" not in connect_event(frames)
    frames = peer.tick(1.2)
    tag = connect_event(frames)["peer"]["tag"]
    assert tag
    assert tag != next(call.tag for call in peer.sim.live_calls() if call.call_id == call_id)


def test_serial_groups_and_parallel_devices_use_the_dial_outcomes() -> None:
    sc = scenario(**{B: Outcome(kind=OutcomeKind.BUSY, after=0.5), C: answer(0.3)})
    sc.destinations["+15550000004"] = answer(0.6)
    peer, call_id = connected_peer(sc)
    connect(peer, call_id, 1.0, [[phone(B)], [phone(C), phone("+15550000004")]])
    assert b(peer.tick(1.5)) == [
        ("state", B, "ended", "busy", ""),
        ("state", C, "created", None, ""),
        ("state", "+15550000004", "created", None, ""),
        ("state", C, "ringing", None, ""),
        ("state", "+15550000004", "ringing", None, ""),
    ]
    assert b(peer.tick(1.8)) == [
        ("state", C, "answered", None, ""),
        ("state", "+15550000004", "ended", "cancel", ""),
        ("connect", "connected", C, None),
    ]
    assert peer.sim.pending_dials() == 0
    assert len(peer.sim.live_calls()) == 2


def test_dial_faults_do_not_reach_the_connect_events() -> None:
    sc = Scenario(faults=Faults(dial_event_first=True))
    peer, call_id = connected_peer(sc)
    connect(peer, call_id, 1.0, [[phone(B)]])
    assert b(peer.tick(1.2)) == [
        ("state", B, "answered", None, ""),
        ("connect", "connected", B, None),
    ]


# ---- failures -------------------------------------------------------------------------


def test_every_peer_failing_fails_the_connect_and_the_call_stays_up() -> None:
    sc = scenario(**{B: Outcome(kind=OutcomeKind.BUSY, after=0.5)})
    peer, call_id = connected_peer(sc)
    connect(peer, call_id, 1.0, [[phone(B)]])
    frames = peer.tick(1.5)
    assert b(frames) == [("state", B, "ended", "busy", ""), ("connect", "failed", None, "busy")]
    assert connect_event(frames)["source"] == "endpoint"
    assert [c.call_id for c in peer.sim.live_calls()] == [call_id]
    # the bridge is gone: the call can connect again
    assert b(connect(peer, call_id, 2.0, [[phone(C)]]))[:2] == [
        ("result", "200"),
        ("connect", "connecting", None, None),
    ]


def test_peer_ring_timeout_fails_with_no_answer() -> None:
    sc = scenario(**{B: Outcome(kind=OutcomeKind.NO_ANSWER)})
    peer, call_id = connected_peer(sc)
    connect(peer, call_id, 1.0, [[phone(B, timeout=5)]])
    assert peer.sim.next_deadline() == pytest.approx(6.0)
    assert b(peer.tick(6.0))[-1] == ("connect", "failed", None, "noAnswer")


def test_ending_a_ringing_peer_leg_counts_as_the_client() -> None:
    peer, call_id = connected_peer(scenario(**{B: answer(5.0)}))
    peer_id = call_id_of(connect(peer, call_id, 1.0, [[phone(B)]]), B)
    frames = peer.call_cmd("calling.end", peer_id, 1.5)
    assert b(frames) == [
        ("result", "200"),
        ("state", B, "ending", "hangup", ""),
        ("state", B, "ended", "hangup", ""),
        ("connect", "failed", None, "hangup"),
    ]
    assert connect_event(frames)["source"] == "client"


# ---- bridged legs end together --------------------------------------------------------


def test_the_peer_hanging_up_ends_the_call_after_disconnected() -> None:
    peer, call_id = connected_peer(scenario(**{B: answer(0.2, hangup_after=5)}))
    connect(peer, call_id, 1.0, [[phone(B)]])
    peer.tick(1.2)
    frames = peer.tick(6.2)
    assert b(frames) == [
        ("state", B, "ending", "hangup", "peer"),
        ("state", B, "ended", "hangup", "peer"),
        ("connect", "disconnected", B, None),
        ("state", A, "ending", "hangup", ""),
        ("state", A, "ended", "hangup", ""),
    ]
    state = frames[0]["params"]["params"]
    assert state["peer"] == {"call_id": call_id, "node_id": NODE}
    assert peer.sim.live_calls() == []
    assert peer.sim.next_deadline() is None


def test_the_call_hanging_up_ends_the_peer() -> None:
    peer, call_id = connected_peer()
    peer_id = call_id_of(connect(peer, call_id, 1.0, [[phone(B)]]), B)
    peer.tick(1.2)
    frames = peer.call_cmd("calling.end", call_id, 2.0)
    assert b(frames) == [
        ("result", "200"),
        ("state", A, "ending", "hangup", "peer"),
        ("state", A, "ended", "hangup", "peer"),
        ("connect", "disconnected", B, None),
        ("state", B, "ending", "hangup", ""),
        ("state", B, "ended", "hangup", ""),
    ]
    assert frames[1]["params"]["params"]["peer"]["call_id"] == peer_id
    assert peer.sim.live_calls() == []


def test_the_client_hanging_up_the_peer_ends_the_call() -> None:
    peer, call_id = connected_peer()
    peer_id = call_id_of(connect(peer, call_id, 1.0, [[phone(B)]]), B)
    peer.tick(1.2)
    assert b(peer.call_cmd("calling.end", peer_id, 2.0))[3:] == [
        ("connect", "disconnected", B, None),
        ("state", A, "ending", "hangup", ""),
        ("state", A, "ended", "hangup", ""),
    ]
    assert peer.sim.live_calls() == []


def test_connect_max_duration_ends_the_peer_then_the_call() -> None:
    peer, call_id = connected_peer()
    connect(peer, call_id, 1.0, [[phone(B)]], max_duration=3)
    peer.tick(1.2)
    assert peer.sim.next_deadline() == pytest.approx(4.2)
    assert b(peer.tick(4.2)) == [
        ("state", B, "ending", "max_duration", "peer"),
        ("state", B, "ended", "max_duration", "peer"),
        ("connect", "disconnected", B, None),
        ("state", A, "ending", "hangup", ""),
        ("state", A, "ended", "hangup", ""),
    ]
    assert peer.sim.live_calls() == []


def test_the_call_ending_while_connecting_cancels_the_peers() -> None:
    peer, call_id = connected_peer(scenario(**{B: answer(5.0), C: answer(5.0)}))
    connect(peer, call_id, 1.0, [[phone(B), phone(C)], [phone("+15550000004")]])
    frames = peer.call_cmd("calling.end", call_id, 2.0)
    assert b(frames) == [
        ("result", "200"),
        ("state", A, "ending", "hangup", ""),
        ("state", A, "ended", "hangup", ""),
        ("state", B, "ended", "cancel", ""),
        ("state", C, "ended", "cancel", ""),
        ("connect", "failed", None, "cancel"),
    ]
    assert connect_event(frames)["source"] == "endpoint"
    assert peer.sim.live_calls() == []
    assert peer.sim.next_deadline() is None


def test_an_expired_session_leaves_no_bridged_leg() -> None:
    peer, call_id = connected_peer()
    connect(peer, call_id, 1.0, [[phone(B)]])
    peer.tick(1.2)
    peer.conn.connection_lost(2.0)
    peer.sim.handle_timer(2.0 + peer.sim.resume_grace)
    assert peer.sim.live_calls() == []
    assert peer.sim.next_deadline() is None


def test_an_expired_session_leaves_no_ringing_peer() -> None:
    peer, call_id = connected_peer(scenario(**{B: answer(50.0)}))
    connect(peer, call_id, 1.0, [[phone(B, timeout=60)]])
    peer.conn.connection_lost(2.0)
    peer.sim.handle_timer(2.0 + peer.sim.resume_grace)
    assert peer.sim.live_calls() == []
    assert peer.sim.next_deadline() is None


# ---- disconnect -----------------------------------------------------------------------


def test_disconnect_unbridges_and_hangs_up_the_peer() -> None:
    peer, call_id = connected_peer()
    connect(peer, call_id, 1.0, [[phone(B)]])
    peer.tick(1.2)
    frames = peer.call_cmd("calling.disconnect", call_id, 2.0)
    assert b(frames) == [
        ("result", "200"),
        ("connect", "disconnected", B, None),
        ("state", B, "ending", "hangup", ""),
        ("state", B, "ended", "hangup", ""),
    ]
    (call,) = peer.sim.live_calls()
    assert (call.call_id, call.state) == (call_id, CallState.ANSWERED)
    # the call keeps going, unbridged: its events name no peer, it may connect again
    assert b(peer.call_cmd("calling.play", call_id, 3.0, control_id="P", play=[tts("hi")])) == [
        ("result", "200"),
        ("calling.call.play",),
    ]
    assert b(connect(peer, call_id, 4.0, [[phone(C)]]))[0] == ("result", "200")
    assert b(peer.call_cmd("calling.end", call_id, 5.0)) == [
        ("result", "200"),
        ("calling.call.play",),
        ("state", A, "ending", "hangup", ""),
        ("state", A, "ended", "hangup", ""),
        ("state", C, "ended", "cancel", ""),
        ("connect", "failed", None, "cancel"),
    ]
    assert peer.sim.live_calls() == []


def test_disconnect_on_the_peer_leg_also_hangs_up_the_peer() -> None:
    peer, call_id = connected_peer()
    peer_id = call_id_of(connect(peer, call_id, 1.0, [[phone(B)]]), B)
    peer.tick(1.2)
    assert b(peer.call_cmd("calling.disconnect", peer_id, 2.0))[:2] == [
        ("result", "200"),
        ("connect", "disconnected", B, None),
    ]
    assert [c.call_id for c in peer.sim.live_calls()] == [call_id]


def test_disconnect_while_connecting_cancels_the_peers() -> None:
    peer, call_id = connected_peer(scenario(**{B: answer(5.0)}))
    connect(peer, call_id, 1.0, [[phone(B)], [phone(C)]])
    frames = peer.call_cmd("calling.disconnect", call_id, 2.0)
    assert b(frames) == [
        ("result", "200"),
        ("state", B, "ended", "cancel", ""),
        ("connect", "failed", None, "cancel"),
    ]
    assert connect_event(frames)["source"] == "client"
    assert [c.call_id for c in peer.sim.live_calls()] == [call_id]


def test_disconnect_without_a_bridge() -> None:
    peer, call_id = connected_peer(scenario(**{B: Outcome(kind=OutcomeKind.NO_ANSWER)}))
    assert b(peer.call_cmd("calling.disconnect", call_id, 1.0)) == [("result", "409")]
    ringing = call_id_of(peer.dial([[phone(B)]], 1.0, tag="T2"), B)
    frames = peer.call_cmd("calling.disconnect", ringing, 1.5)
    assert frames[0]["result"] == {"code": "409", "message": "Call is not answered"}


# ---- refusals -------------------------------------------------------------------------


def test_connect_on_an_unanswered_call_is_409() -> None:
    peer = Peer(make_sim(scenario=scenario(**{A: Outcome(kind=OutcomeKind.NO_ANSWER)})))
    peer.connect(contexts=["office"])
    ringing = call_id_of(peer.dial([[phone(A)]], 0.0), A)
    frames = connect(peer, ringing, 0.5, [[phone(B)]])
    assert [f["result"] for f in frames] == [{"code": "409", "message": "Call is not answered"}]
    inbound = peer.sim.inject_inbound_call(context="office", from_number=B, to_number=C, now=1.0)
    peer.drain()
    assert b(connect(peer, inbound, 1.5, [[phone(B)]])) == [("result", "409")]
    assert len(peer.sim.live_calls()) == 2


def test_connect_on_a_gone_call_is_404() -> None:
    peer, call_id = connected_peer()
    peer.call_cmd("calling.end", call_id, 1.0)
    assert b(connect(peer, call_id, 2.0, [[phone(B)]])) == [("result", "404")]
    assert b(connect(peer, "no-such-call", 2.0, [[phone(B)]])) == [("result", "404")]
    assert peer.sim.live_calls() == []


def test_a_second_connect_is_409_while_connecting_and_while_connected() -> None:
    peer, call_id = connected_peer()
    connect(peer, call_id, 1.0, [[phone(B)]])
    frames = connect(peer, call_id, 1.1, [[phone(C)]])
    assert [f["result"] for f in frames] == [
        {"code": "409", "message": "Call is already connecting"}
    ]
    peer_id = connect_event(peer.tick(1.2))["peer"]["call_id"]
    frames = connect(peer, call_id, 1.3, [[phone(C)]])
    assert frames[0]["result"]["message"] == "Call is already connected"
    assert b(connect(peer, peer_id, 1.3, [[phone(C)]])) == [("result", "409")]
    assert len(peer.sim.live_calls()) == 2


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"devices": []}, "devices"),
        ({"devices": [[{"type": "phone", "params": {"to_number": "555"}}]]}, "devices[0][0]"),
        ({"devices": "x"}, "devices"),
        ({"ringback": {"type": "tts"}}, "ringback"),
        ({"ringback": [{"type": "tts", "params": {}}]}, "ringback[0].text"),
        ({"ringback": [{"type": "video", "params": {}}]}, "unsupported play type"),
        ({"tag": ""}, "tag"),
        ({"max_duration": 0}, "max_duration"),
        ({"max_price_per_minute": -1}, "max_price_per_minute"),
        ({"status_url": ""}, "status_url"),
        ({"status_url": 7}, "status_url"),
    ],
)
def test_connect_params_are_checked(extra: dict[str, Any], field: str) -> None:
    peer, call_id = connected_peer()
    params = {"devices": [[phone(B)]], **extra}
    frames = peer.call_cmd("calling.connect", call_id, 1.0, **params)
    assert len(frames) == 1
    assert frames[0]["result"]["code"] == "400"
    assert field in frames[0]["result"]["message"]
    assert len(peer.sim.live_calls()) == 1


def test_a_valid_ringback_and_price_are_accepted() -> None:
    peer, call_id = connected_peer()
    ringback = [tts("please hold"), {"type": "ringtone", "params": {"name": "us"}}]
    frames = connect(
        peer,
        call_id,
        1.0,
        [[phone(B)]],
        ringback=ringback,
        max_price_per_minute=1.5,
        status_url="https://example.com/bridge",
    )
    assert b(frames)[:2] == [("result", "200"), ("connect", "connecting", None, None)]
