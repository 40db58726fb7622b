"""The simulator's server core driven with raw JSON frames (no client core involved).

``Peer`` is a hand-written client: it encodes requests with ``json`` directly, acks every
event it drains, and the tests compare the frames the server sent, in order, either in full
or as compact ``summary`` tuples. Time is a fake ``now``; nothing sleeps.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from relay_proto._errors import LocalProtocolError, RemoteProtocolError
from relay_proto._events import CallState
from relay_proto.simulator import (
    ConnectionState,
    Outcome,
    OutcomeKind,
    Scenario,
    ServerConnection,
    Simulator,
)

Frame = dict[str, Any]

PROJECT, TOKEN = "P-UUID", "PT-secret-token"
FROM = "+15550000009"
A, B, C = "+15550000001", "+15550000002", "+15550000003"
NODE = "sim-node-1@local"


def counter_ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"id-{next(counter)}"


def phone(to: str, timeout: int | None = None, **extra: Any) -> Frame:
    params: Frame = {"to_number": to, "from_number": FROM}
    if timeout is not None:
        params["timeout"] = timeout
    params.update(extra)
    return {"type": "phone", "params": params}


def make_sim(**kwargs: Any) -> Simulator:
    kwargs.setdefault("credentials", {PROJECT: TOKEN})
    kwargs.setdefault("node_id", NODE)  # one node: frames are pinned exactly
    kwargs.setdefault("ping_interval", None)  # frames and deadlines are counted exactly
    kwargs.setdefault("id_factory", counter_ids())
    return Simulator(**kwargs)


def summary(frame: Frame) -> tuple[Any, ...]:
    """A compact, order-preserving view of one server frame."""
    if "method" in frame:
        if frame["method"] != "signalwire.event":
            return (frame["method"], frame["params"])
        event_type, inner = frame["params"]["event_type"], frame["params"]["params"]
        if event_type == "calling.call.state":
            to = inner["device"]["params"].get("to_number", inner["device"]["params"].get("to"))
            return ("state", to, inner["call_state"], inner.get("end_reason"))
        if event_type == "calling.call.dial":
            winner = inner.get("call", {}).get("device", {}).get("params", {}).get("to_number")
            return ("dial", inner["dial_state"], winner)
        if event_type == "calling.call.play":
            return ("play", inner["control_id"], inner["state"])
        if event_type == "calling.call.receive":
            return ("receive", inner["context"], inner["call_state"])
        return (event_type,)
    if "result" in frame:
        return ("result", frame["id"], frame["result"].get("code"))
    return ("error", frame["id"], frame["error"]["code"])


class Peer:
    """A raw-JSON client on one simulator connection."""

    def __init__(self, sim: Simulator, now: float = 0.0, *, auto_ack: bool = True) -> None:
        self.sim = sim
        self.conn: ServerConnection = sim.open_connection(now)
        self.auto_ack = auto_ack
        self.protocol: str | None = None
        self.auth_state: str | None = None
        self._ids = itertools.count(1)

    def send(self, frame: Frame, now: float) -> list[Frame]:
        self.conn.receive(json.dumps(frame), now)
        return self.drain(now)

    def request(self, method: str, params: Any, now: float, rid: str | None = None) -> list[Frame]:
        rid = rid if rid is not None else f"r{next(self._ids)}"
        return self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}, now)

    def drain(self, now: float = 0.0) -> list[Frame]:
        frames = [json.loads(text) for text in self.conn.data_to_send()]
        for frame in frames:
            if frame.get("method") == "signalwire.event":
                inner = frame["params"]["params"]
                if frame["params"]["event_type"] == "signalwire.authorization.state":
                    self.auth_state = inner["authorization_state"]
                if self.auto_ack:
                    self.ack(frame, now)
        return frames

    def ack(self, frame: Frame, now: float = 0.0) -> None:
        self.conn.receive(json.dumps({"jsonrpc": "2.0", "id": frame["id"], "result": {}}), now)

    def connect(self, now: float = 0.0, **params: Any) -> list[Frame]:
        body: Frame = {
            "version": {"major": 2, "minor": 0, "revision": 0},
            "agent": "test/0",
            "event_acks": True,
            "authentication": {"project": PROJECT, "token": TOKEN},
        }
        body.update(params)
        frames = self.request("signalwire.connect", body, now, rid="c1")
        result = frames[0].get("result")
        if result is not None:
            self.protocol = result["protocol"]
        return frames

    def dial(
        self, devices: list[list[Frame]], now: float, tag: str = "T1", **extra: Any
    ) -> list[Frame]:
        return self.request(
            "calling.dial", {"tag": tag, "devices": devices, **extra}, now, rid="d1"
        )

    def call_cmd(self, method: str, call_id: str, now: float, **extra: Any) -> list[Frame]:
        return self.request(method, {"node_id": NODE, "call_id": call_id, **extra}, now, rid="x")

    def tick(self, now: float) -> list[Frame]:
        self.sim.handle_timer(now)
        return self.drain(now)


def s(frames: list[Frame]) -> list[tuple[Any, ...]]:
    return [summary(frame) for frame in frames]


def call_id_of(frames: list[Frame], to: str) -> str:
    for frame in frames:
        if frame.get("method") == "signalwire.event":
            inner = frame["params"]["params"]
            if inner.get("device", {}).get("params", {}).get("to_number") == to:
                return str(inner["call_id"])
    raise AssertionError(f"no leg to {to}")


def connected(sim: Simulator | None = None, **scenario: Any) -> Peer:
    peer = Peer(sim if sim is not None else make_sim(scenario=Scenario(**scenario)))
    peer.connect()
    return peer


# ---- session --------------------------------------------------------------------------


def test_connect_ok_exact_frames() -> None:
    sim = make_sim()
    peer = Peer(sim)
    frames = peer.connect(0.5)
    assert frames == [
        {
            "jsonrpc": "2.0",
            "id": "c1",
            "result": {
                "identity": "P-UUID@sim-space",
                "protocol": "signalwire_id-1",
                "authorization": {"project": PROJECT, "scopes": ["calling"], "signature": "id-1"},
            },
        },
        {
            "jsonrpc": "2.0",
            "id": "id-2",
            "method": "signalwire.event",
            "params": {
                "event_type": "signalwire.authorization.state",
                "event_channel": "signalwire_id-1",
                "timestamp": 0.5,
                "project_id": PROJECT,
                "space_id": "sim-space",
                "params": {"authorization_state": "authstate-id-1"},
            },
        },
    ]
    assert peer.conn.state is ConnectionState.OPEN
    assert peer.conn.protocol == "signalwire_id-1"
    assert sim.unacked_events("signalwire_id-1") == 0  # Peer acked it
    assert TOKEN not in repr(sim) + repr(peer.conn)


def test_event_timestamps_add_the_epoch() -> None:
    sim = make_sim()
    sim.epoch = 1_700_000_000.0
    frames = Peer(sim).connect(0.5)
    assert frames[1]["params"]["timestamp"] == 1_700_000_000.5


def test_connect_bad_credentials() -> None:
    peer = Peer(make_sim())
    frames = peer.connect(authentication={"project": PROJECT, "token": "wrong"})
    assert frames == [
        {
            "jsonrpc": "2.0",
            "id": "c1",
            "error": {
                "code": -32002,
                "message": "Authentication failed",
                "data": {"signalwire_error_code": "AUTH_REQUIRED"},
            },
        }
    ]
    assert peer.conn.state is ConnectionState.HANDSHAKE
    assert s(peer.connect(authentication={"project": "other", "token": TOKEN})) == [
        ("error", "c1", -32002)
    ]
    assert s(peer.connect()) == [("result", "c1", None), ("signalwire.authorization.state",)]


@pytest.mark.parametrize(
    "params",
    [
        None,
        {"authentication": "x"},
        {"authentication": {"project": PROJECT}},
        {"authentication": {"project": "", "token": "t"}},
        {"authentication": {"jwt_token": 5}},
        {"authentication": {"project": PROJECT, "token": TOKEN}, "contexts": "office"},
        {"authentication": {"project": PROJECT, "token": TOKEN}, "contexts": [1]},
    ],
)
def test_connect_invalid_params(params: Any) -> None:
    peer = Peer(make_sim())
    assert s(peer.request("signalwire.connect", params, 0.0, rid="c1")) == [("error", "c1", -32602)]


def test_connect_jwt() -> None:
    sim = make_sim(jwt_tokens=["JWT-1"])
    assert s(Peer(sim).connect(authentication={"jwt_token": "JWT-1"}))[0] == ("result", "c1", None)
    assert s(Peer(sim).connect(authentication={"jwt_token": "JWT-2"})) == [("error", "c1", -32002)]
    # credentials but no JWT list: JWTs refused; no credentials at all: anything goes
    assert s(Peer(make_sim()).connect(authentication={"jwt_token": "J"})) == [
        ("error", "c1", -32002)
    ]
    open_sim = make_sim(credentials=None)
    assert s(Peer(open_sim).connect(authentication={"jwt_token": "J"}))[0][0] == "result"
    assert s(Peer(open_sim).connect(authentication={"project": "x", "token": "y"}))[0][0] == (
        "result"
    )


def test_requests_before_and_after_connect() -> None:
    peer = Peer(make_sim())
    assert s(peer.request("signalwire.ping", {}, 0.0, rid="p")) == [("error", "p", -32000)]
    peer.connect()
    assert s(peer.connect()) == [("error", "c1", -32000)]
    assert s(peer.request("nope.method", {}, 0.0, rid="n")) == [("error", "n", -32601)]
    # a notification (no id) gets no reply, even when it fails
    assert peer.send({"jsonrpc": "2.0", "method": "nope.method", "params": {}}, 0.0) == []


def test_ping_echoes_timestamp_and_payload() -> None:
    peer = connected()
    assert peer.request("signalwire.ping", {"timestamp": 12.5, "payload": "x"}, 3.0, rid="p") == [
        {"jsonrpc": "2.0", "id": "p", "result": {"timestamp": 12.5, "payload": "x"}}
    ]
    assert peer.request("signalwire.ping", None, 3.0, rid="q") == [
        {"jsonrpc": "2.0", "id": "q", "result": {"timestamp": 3.0}}
    ]


def test_server_ping_and_unknown_replies() -> None:
    peer = connected()
    peer.conn.send_ping(7.0)
    peer.conn.send_ping()
    (ping, ping2) = peer.drain()
    assert ping["method"] == "signalwire.ping"
    assert ping["params"] == {"timestamp": 7.0}
    assert ping2["params"] == {}
    peer.send({"jsonrpc": "2.0", "id": ping["id"], "result": {"timestamp": 7.0}}, 8.0)
    peer.send({"jsonrpc": "2.0", "id": ping2["id"], "error": {"code": 1, "message": "x"}}, 8.0)
    assert peer.conn.violations == []
    peer.send({"jsonrpc": "2.0", "id": "never-issued", "result": {}}, 8.0)
    peer.send({"jsonrpc": "2.0", "id": 17, "result": {}}, 8.0)
    assert len(peer.conn.violations) == 2
    assert peer.conn.state is ConnectionState.OPEN


def test_garbage_input_raises_and_connection_stays_usable() -> None:
    peer = connected()
    texts: list[str | bytes] = ["not json", "[1]", b'{"id": "x"}']
    for text in texts:
        with pytest.raises(RemoteProtocolError):
            peer.conn.receive(text, 1.0)
    assert len(peer.conn.violations) == 3
    assert s(peer.request("signalwire.ping", {}, 1.0, rid="p")) == [("result", "p", None)]


def test_event_error_reply_counts_as_ack_and_violation() -> None:
    peer = Peer(make_sim(), auto_ack=False)
    _, auth = peer.connect()
    peer.send({"jsonrpc": "2.0", "id": auth["id"], "error": {"code": -1, "message": "no"}}, 0.0)
    assert peer.sim.unacked_events(str(peer.protocol)) == 0
    assert len(peer.conn.violations) == 1


def test_receive_and_unreceive_contexts() -> None:
    sim = make_sim()
    peer = connected(sim)
    assert s(peer.request("signalwire.receive", {"contexts": ["office", "lab"]}, 0.0, rid="r")) == [
        ("result", "r", "200")
    ]
    assert s(peer.request("signalwire.receive", {"contexts": "office"}, 0.0, rid="r")) == [
        ("error", "r", -32602)
    ]
    assert s(peer.request("signalwire.unreceive", None, 0.0, rid="u")) == [("error", "u", -32602)]
    [reply] = peer.request("signalwire.unreceive", {"contexts": ["office", "unknown"]}, 0.0)
    assert reply["result"]["message"].startswith("No longer receiving")
    with pytest.raises(LocalProtocolError):
        sim.inject_inbound_call(context="office", from_number=A, to_number=B, now=1.0)
    sim.inject_inbound_call(context="lab", from_number=A, to_number=B, now=1.0)
    assert s(peer.drain()) == [("receive", "lab", "created")]


# ---- dialing --------------------------------------------------------------------------


def test_single_answer_exact_frames() -> None:
    sim = make_sim()
    peer = connected(sim)
    device = phone(A, timeout=30)
    frames = peer.dial([[device]], 10.0)

    def event(eid: str, event_type: str, ts: float, params: Frame) -> Frame:
        return {
            "jsonrpc": "2.0",
            "id": eid,
            "method": "signalwire.event",
            "params": {
                "event_type": event_type,
                "event_channel": "signalwire_id-1",
                "timestamp": ts,
                "project_id": PROJECT,
                "space_id": "sim-space",
                "params": params,
            },
        }

    leg = {"call_id": "id-3", "node_id": NODE, "tag": "T1"}
    common = {"direction": "outbound", "segment_id": "id-4", "device": device}
    assert frames == [
        {"jsonrpc": "2.0", "id": "d1", "result": {"code": "200", "message": "Dialing"}},
        event(
            "id-5",
            "calling.call.dial",
            10.0,
            {"tag": "T1", "node_id": NODE, "dial_state": "dialing"},
        ),
        event("id-6", "calling.call.state", 10.0, {**leg, "call_state": "created", **common}),
        event("id-7", "calling.call.state", 10.0, {**leg, "call_state": "ringing", **common}),
    ]
    assert sim.next_deadline() == pytest.approx(10.2)
    assert peer.tick(10.1) == []
    assert peer.tick(11.0) == [
        event("id-8", "calling.call.state", 10.2, {**leg, "call_state": "answered", **common}),
        event(
            "id-9",
            "calling.call.dial",
            10.2,
            {
                "tag": "T1",
                "node_id": NODE,
                "dial_state": "answered",
                "call": {**leg, "call_state": "answered", **common, "dial_winner": "true"},
            },
        ),
    ]
    assert sim.next_deadline() is None
    (live,) = sim.live_calls()
    assert (live.call_id, live.state, live.protocol) == ("id-3", CallState.ANSWERED, peer.protocol)
    assert sim.pending_dials() == 0
    assert sim.unacked_events(str(peer.protocol)) == 0


def test_serial_failover_busy_then_answer() -> None:
    peer = connected(destinations={A: Outcome(kind=OutcomeKind.BUSY, after=0.5)})
    assert s(peer.dial([[phone(A)], [phone(B)]], 0.0)) == [
        ("result", "d1", "200"),
        ("dial", "dialing", None),
        ("state", A, "created", None),
        ("state", A, "ringing", None),
    ]
    assert s(peer.tick(0.5)) == [
        ("state", A, "ended", "busy"),
        ("state", B, "created", None),
        ("state", B, "ringing", None),
    ]
    assert s(peer.tick(0.7)) == [("state", B, "answered", None), ("dial", "answered", B)]


def test_parallel_race_loser_cancelled() -> None:
    peer = connected(
        destinations={
            A: Outcome(kind=OutcomeKind.ANSWER, after=2.0),
            B: Outcome(kind=OutcomeKind.ANSWER, after=1.0),
        }
    )
    assert s(peer.dial([[phone(A), phone(B)]], 0.0))[2:] == [
        ("state", A, "created", None),
        ("state", B, "created", None),
        ("state", A, "ringing", None),
        ("state", B, "ringing", None),
    ]
    assert s(peer.tick(5.0)) == [
        ("state", B, "answered", None),
        ("state", A, "ended", "cancel"),
        ("dial", "answered", B),
    ]
    assert [(c.device["params"]["to_number"], c.end_reason) for c in peer.sim.all_calls()] == [
        (A, "cancel"),
        (B, None),
    ]


def test_all_fail() -> None:
    peer = connected(
        destinations={
            A: Outcome(kind=OutcomeKind.DECLINE, after=1.0),
            B: Outcome(kind=OutcomeKind.ERROR, after=0.0),
            C: Outcome(kind=OutcomeKind.BUSY, after=2.0),
        }
    )
    assert s(peer.dial([[phone(A)], [phone(B), phone(C)]], 0.0))[-1] == (
        "state",
        A,
        "ringing",
        None,
    )
    assert s(peer.tick(1.0)) == [
        ("state", A, "ended", "decline"),
        ("state", B, "created", None),
        ("state", C, "created", None),
        ("state", C, "ringing", None),  # an ERROR leg never rings
        ("state", B, "ended", "error"),
    ]
    assert s(peer.tick(3.0)) == [("state", C, "ended", "busy"), ("dial", "failed", None)]
    assert peer.sim.live_calls() == []
    assert peer.sim.pending_dials() == 0


def test_no_answer_ring_timeouts() -> None:
    peer = connected(
        destinations={
            A: Outcome(kind=OutcomeKind.NO_ANSWER),
            B: Outcome(kind=OutcomeKind.ANSWER, after=20.0),  # rings longer than its timeout
        },
        ring_timeout=7.0,
    )
    peer.dial([[phone(A)], [phone(B, timeout=5)], [phone(C)]], 0.0)
    assert peer.sim.next_deadline() == 7.0  # scenario.ring_timeout when the device has none
    assert s(peer.tick(7.0))[0] == ("state", A, "ended", "noAnswer")
    assert s(peer.tick(12.0))[0] == ("state", B, "ended", "noAnswer")
    assert s(peer.tick(12.2)) == [("state", C, "answered", None), ("dial", "answered", C)]


def test_end_cancels_ringing_leg_and_dial_fails() -> None:
    peer = connected(destinations={A: Outcome(kind=OutcomeKind.NO_ANSWER)})
    frames = peer.dial([[phone(A)]], 0.0)
    call_id = call_id_of(frames, A)
    assert s(peer.call_cmd("calling.end", call_id, 1.0, reason="cancel")) == [
        ("result", "x", "200"),
        ("state", A, "ending", "cancel"),
        ("state", A, "ended", "cancel"),
        ("dial", "failed", None),
    ]
    assert peer.sim.next_deadline() is None  # the ring timer was cancelled
    assert s(peer.call_cmd("calling.end", call_id, 2.0)) == [("result", "x", "404")]


def test_end_in_first_group_moves_on_to_next_group() -> None:
    peer = connected(destinations={A: Outcome(kind=OutcomeKind.NO_ANSWER)})
    call_id = call_id_of(peer.dial([[phone(A)], [phone(B)]], 0.0), A)
    assert s(peer.call_cmd("calling.end", call_id, 1.0, reason="cancel"))[3:] == [
        ("state", B, "created", None),
        ("state", B, "ringing", None),
    ]


def test_hangup_after_answer_and_call_lookup_errors() -> None:
    peer = connected()
    call_id = call_id_of(peer.dial([[phone(A)]], 0.0), A)
    peer.tick(1.0)
    assert s(peer.request("calling.end", {"node_id": "other", "call_id": call_id}, 2, rid="e")) == [
        ("result", "e", "404")
    ]
    assert s(peer.request("calling.end", {"call_id": call_id}, 2.0, rid="e")) == [
        ("result", "e", "400")
    ]
    assert s(peer.call_cmd("calling.end", call_id, 2.0, reason="")) == [("result", "x", "400")]
    assert s(peer.request("calling.end", [call_id], 2.0, rid="e")) == [("error", "e", -32602)]
    assert s(peer.call_cmd("calling.ai", call_id, 2.0)) == [("error", "x", -32601)]
    assert s(peer.call_cmd("calling.end", call_id, 3.0)) == [
        ("result", "x", "200"),
        ("state", A, "ending", "hangup"),
        ("state", A, "ended", "hangup"),
    ]
    assert s(peer.call_cmd("calling.ai", call_id, 4.0)) == [("error", "x", -32601)]
    assert peer.sim.live_calls() == []


def test_other_project_cannot_touch_a_call() -> None:
    sim = make_sim(credentials={PROJECT: TOKEN, "Q": "q"})
    peer = connected(sim)
    call_id = call_id_of(peer.dial([[phone(A)]], 0.0), A)
    other = Peer(sim)
    other.connect(authentication={"project": "Q", "token": "q"})
    assert s(other.call_cmd("calling.end", call_id, 1.0)) == [("result", "x", "404")]


def test_max_duration_and_far_end_hangup() -> None:
    peer = connected(destinations={B: Outcome(kind=OutcomeKind.ANSWER, after=0.0, hangup_after=3)})
    peer.dial([[phone(A)]], 0.0, max_duration=5)
    peer.tick(0.2)
    assert s(peer.tick(5.2)) == [
        ("state", A, "ending", "max_duration"),
        ("state", A, "ended", "max_duration"),
    ]
    # the device's own max_duration wins over the dial's; the earlier of limit/hangup fires
    peer.dial([[phone(B, max_duration=10)]], 10.0, tag="T2", max_duration=1)
    assert s(peer.tick(13.0)) == [
        ("state", B, "answered", None),
        ("dial", "answered", B),
        ("state", B, "ending", "hangup"),
        ("state", B, "ended", "hangup"),
    ]
    peer.dial([[phone(B, max_duration=2)]], 20.0, tag="T3")
    assert s(peer.tick(30.0))[-1] == ("state", B, "ended", "max_duration")


def test_duplicate_pending_tag_is_refused() -> None:
    peer = connected()
    peer.dial([[phone(A)]], 0.0)
    assert s(peer.dial([[phone(B)]], 0.0)) == [("result", "d1", "409")]


@pytest.mark.parametrize(
    "params",
    [
        {"devices": [[phone(A)]]},
        {"tag": "T", "devices": []},
        {"tag": "T", "devices": [phone(A)]},
        {"tag": "T", "devices": [[]]},
        {"tag": "T", "devices": [["x"]]},
        {"tag": "T", "devices": [[{"type": "phone"}]]},
        {"tag": "T", "devices": [[{"type": "phone", "params": {"to_number": A}}]]},
        {"tag": "T", "devices": [[{"type": "sip", "params": {"to": "sip:a@b"}}]]},
        {"tag": "T", "devices": [[phone(A, timeout=0)]]},
        {"tag": "T", "devices": [[phone(A, max_duration=1.5)]]},
        {"tag": "T", "devices": [[phone(A)]], "region": 1},
        {"tag": "T", "devices": [[phone(A)]], "node_id": None},
        {"tag": "T", "devices": [[phone(A)]], "max_price_per_minute": "0.1"},
        {"tag": "T", "devices": [[phone(A)]], "max_duration": 0},
        {"tag": "T", "devices": [[phone(A)]], "max_duration": True},
    ],
)
def test_dial_invalid_params(params: Frame) -> None:
    peer = connected()
    assert s(peer.request("calling.dial", params, 0.0, rid="d")) == [("result", "d", "400")]
    assert peer.sim.all_calls() == []


def test_dial_sip_webrtc_and_routing_options() -> None:
    peer = connected(destinations={"sip:b@example.com": Outcome(kind=OutcomeKind.BUSY)})
    sip = {"type": "sip", "params": {"to": "sip:b@example.com", "from": "sip:a@example.com"}}
    webrtc = {"type": "webrtc", "params": {"to": 5}}
    frames = peer.dial(
        [[sip], [webrtc]],
        0.0,
        region="us",
        node_id="node-9",
        max_price_per_minute=0.5,
    )
    assert frames[1]["params"]["params"]["node_id"] == "node-9"
    assert s(peer.tick(1.0))[0] == ("state", "sip:b@example.com", "ended", "busy")
    assert s(peer.tick(2.0))[-1] == ("dial", "answered", None)


# ---- plays ----------------------------------------------------------------------------


def answered_call(peer: Peer, to: str = A) -> str:
    call_id = call_id_of(peer.dial([[phone(to)]], 0.0), to)
    peer.tick(0.2)
    return call_id


def tts(text: str) -> Frame:
    return {"type": "tts", "params": {"text": text}}


def test_play_to_finished() -> None:
    peer = connected(play_seconds_per_char=0.1)
    call_id = answered_call(peer)
    assert s(peer.call_cmd("calling.play", call_id, 1.0, control_id="P1", play=[tts("Hello")])) == [
        ("result", "x", "200"),
        ("play", "P1", "playing"),
    ]
    assert peer.sim.next_deadline() == pytest.approx(1.5)
    assert s(peer.tick(1.5)) == [("play", "P1", "finished")]
    assert s(peer.call_cmd("calling.play.stop", call_id, 2.0, control_id="P1")) == [
        ("result", "x", "404")
    ]


def test_play_media_durations_and_loops() -> None:
    peer = connected(play_default_seconds=2.0, min_play_seconds=0.5)
    call_id = answered_call(peer)
    media = [
        tts("x"),  # 0.02 s of text: at least min_play_seconds
        {"type": "audio", "params": {"url": "https://x/a.mp3"}},
        {"type": "silence", "params": {"duration": 1.5}},
        {"type": "ringtone", "params": {"name": "us", "duration": 3}},
    ]
    peer.call_cmd("calling.play", call_id, 1.0, control_id="P1", play=media, loop=2, volume=-3)
    assert peer.sim.next_deadline() == pytest.approx(1.0 + 2 * 7.0)
    peer.call_cmd("calling.play", call_id, 1.0, control_id="P2", play=[tts("x")], loop=0)
    assert peer.sim.next_deadline() == pytest.approx(15.0)  # P2 loops forever: no timer
    assert s(peer.tick(100.0)) == [("play", "P1", "finished")]
    assert s(peer.call_cmd("calling.play.pause", call_id, 101.0, control_id="P2"))[1:] == [
        ("play", "P2", "paused")
    ]


def test_play_pause_resume_volume_stop() -> None:
    peer = connected(play_seconds_per_char=1.0)
    call_id = answered_call(peer)
    peer.call_cmd("calling.play", call_id, 1.0, control_id="P1", play=[tts("abcd")])  # 4 s
    assert s(peer.call_cmd("calling.play.pause", call_id, 2.0, control_id="P1")) == [
        ("result", "x", "200"),
        ("play", "P1", "paused"),
    ]
    assert s(peer.call_cmd("calling.play.pause", call_id, 2.5, control_id="P1")) == [
        ("result", "x", "200")
    ]
    assert peer.sim.next_deadline() is None
    assert s(peer.call_cmd("calling.play.resume", call_id, 10.0, control_id="P1")) == [
        ("result", "x", "200"),
        ("play", "P1", "playing"),
    ]
    assert s(peer.call_cmd("calling.play.resume", call_id, 10.0, control_id="P1")) == [
        ("result", "x", "200")
    ]
    assert peer.sim.next_deadline() == pytest.approx(13.0)
    assert s(peer.call_cmd("calling.play.volume", call_id, 11.0, control_id="P1", volume=5)) == [
        ("result", "x", "200")
    ]
    assert s(peer.call_cmd("calling.play.volume", call_id, 11.0, control_id="P1")) == [
        ("result", "x", "400")
    ]
    assert s(peer.call_cmd("calling.play.stop", call_id, 11.0, control_id="P1")) == [
        ("result", "x", "200"),
        ("play", "P1", "finished"),
    ]
    for method in ("calling.play.pause", "calling.play.resume", "calling.play.volume"):
        assert s(peer.call_cmd(method, call_id, 12.0, control_id="P1")) == [("result", "x", "404")]
    assert s(peer.call_cmd("calling.play.stop", call_id, 12.0)) == [("result", "x", "400")]
    assert peer.sim.next_deadline() is None


def test_play_errors() -> None:
    peer = connected(destinations={B: Outcome(kind=OutcomeKind.NO_ANSWER)})
    call_id = answered_call(peer)
    ok = [tts("hi")]
    bad_cases: list[Frame] = [
        {"control_id": "P", "play": []},
        {"control_id": "P", "play": ["x"]},
        {"control_id": "P", "play": [{"type": "tts", "text": "flat form"}]},
        {"control_id": "P", "play": [{"type": "video", "params": {}}]},
        {"control_id": "P", "play": [{"type": "audio", "params": {}}]},
        {"control_id": "P", "play": [{"type": "tts", "params": {"text": 5}}]},
        {"control_id": "P", "play": [{"type": "tts", "params": {"text": ""}}]},  # shared rule
        {"control_id": "P", "play": [{"type": "silence", "params": {"duration": -1}}]},
        {"control_id": "P", "play": ok, "volume": "loud"},
        {"control_id": "P", "play": ok, "loop": -1},
        {"control_id": "", "play": ok},
    ]
    for params in bad_cases:
        assert s(peer.call_cmd("calling.play", call_id, 1.0, **params)) == [("result", "x", "400")]
    peer.call_cmd("calling.play", call_id, 1.0, control_id="P", play=ok)
    assert s(peer.call_cmd("calling.play", call_id, 1.0, control_id="P", play=ok)) == [
        ("result", "x", "409")
    ]
    ringing = call_id_of(peer.dial([[phone(B)]], 1.0, tag="T2"), B)
    assert s(peer.call_cmd("calling.play", ringing, 1.0, control_id="Q", play=ok)) == [
        ("result", "x", "409")
    ]


def test_hangup_ends_plays_with_error() -> None:
    peer = connected()
    call_id = answered_call(peer)
    peer.call_cmd("calling.play", call_id, 1.0, control_id="P1", play=[tts("a long text")])
    assert s(peer.call_cmd("calling.end", call_id, 1.1)) == [
        ("result", "x", "200"),
        ("play", "P1", "error"),
        ("state", A, "ending", "hangup"),
        ("state", A, "ended", "hangup"),
    ]
    assert peer.sim.next_deadline() is None


# ---- inbound --------------------------------------------------------------------------


def test_inbound_injection_and_answer() -> None:
    sim = make_sim()
    peer = connected(sim)
    peer.request("signalwire.receive", {"contexts": ["office"]}, 0.0)
    call_id = sim.inject_inbound_call(
        context="office", from_number=A, to_number=B, now=1.0, hangup_after=4.0
    )
    (receive,) = peer.drain()
    inner = receive["params"]["params"]
    assert receive["params"]["event_type"] == "calling.call.receive"
    assert inner == {
        "call_id": call_id,
        "node_id": NODE,
        "tag": inner["tag"],
        "call_state": "created",  # as the official fixtures offer a call
        "direction": "inbound",
        "segment_id": inner["segment_id"],
        "device": {"type": "phone", "params": {"from_number": A, "to_number": B}},
        "context": "office",
    }
    assert s(peer.call_cmd("calling.answer", call_id, 2.0)) == [
        ("result", "x", "200"),
        ("state", B, "answered", None),
    ]
    assert s(peer.call_cmd("calling.answer", call_id, 2.5)) == [("result", "x", "200")]
    assert s(peer.tick(6.0)) == [("state", B, "ending", "hangup"), ("state", B, "ended", "hangup")]


def test_inbound_ring_timeout_and_outbound_cannot_be_answered() -> None:
    sim = make_sim(scenario=Scenario(inbound_ring_timeout=10.0))
    peer = connected(sim)
    peer.request("signalwire.receive", {"contexts": ["office"]}, 0.0)
    sim.inject_inbound_call(context="office", from_number=A, to_number=B, now=1.0)
    peer.drain()
    assert s(peer.tick(11.0)) == [("state", B, "ended", "noAnswer")]
    outbound = call_id_of(peer.dial([[phone(C)]], 12.0), C)
    assert s(peer.call_cmd("calling.answer", outbound, 12.0)) == [("result", "x", "400")]


def test_inbound_prefers_a_connected_session() -> None:
    sim = make_sim()
    first, second = connected(sim), connected(sim)
    for peer in (first, second):
        peer.request("signalwire.receive", {"contexts": ["office"]}, 0.0)
    first.conn.connection_lost(1.0)
    sim.inject_inbound_call(context="office", from_number=A, to_number=B, now=1.0)
    assert s(second.drain()) == [("receive", "office", "created")]
    second.conn.connection_lost(1.0)
    sim.inject_inbound_call(context="office", from_number=A, to_number=C, now=1.0)
    assert sim.unacked_events(str(first.protocol)) == 1  # waits for first's resume


# ---- resume, disconnect ---------------------------------------------------------------


def resume(sim: Simulator, old: Peer, now: float, **extra: Any) -> tuple[Peer, list[Frame]]:
    peer = Peer(sim, now)
    params = {"protocol": old.protocol, "authorization_state": old.auth_state, **extra}
    return peer, peer.connect(now, **params)


def test_resume_redelivers_unacked_events() -> None:
    sim = make_sim()
    peer = Peer(sim, auto_ack=False)
    _, auth = peer.connect()
    peer.ack(auth)
    dial_frames = peer.dial([[phone(A)]], 0.0)
    peer.ack(dial_frames[1])  # acks "dialing" only
    peer.conn.connection_lost(0.1)
    assert sim.connections() == []
    sim.handle_timer(1.0)  # the leg answers while nobody is connected
    assert sim.unacked_events(str(peer.protocol)) == 4
    _new, frames = resume(sim, peer, 2.0)
    assert frames[0]["result"]["session_restored"] is True
    assert frames[0]["result"]["protocol"] == peer.protocol
    assert s(frames[1:]) == [
        ("state", A, "created", None),
        ("state", A, "ringing", None),
        ("state", A, "answered", None),
        ("dial", "answered", A),
        ("signalwire.authorization.state",),
    ]
    # a re-delivered event keeps its id (it is the same event)
    assert frames[1:3] == dial_frames[2:4]
    assert sim.unacked_events(str(peer.protocol)) == 0  # new Peer acked everything


def test_resume_ignores_bad_state_refused_when_grace_passed() -> None:
    sim = make_sim(resume_grace=10.0)
    peer = connected(sim)
    peer.dial([[phone(A)]], 0.0)
    peer.conn.connection_lost(1.0)
    # a wrong authorization_state is ignored: resumed on protocol (the guide)
    resumed, frames = resume(sim, peer, 2.0, authorization_state="bogus")
    assert frames[0]["result"]["session_restored"] is True
    assert frames[0]["result"]["protocol"] == peer.protocol
    # unknown protocol -> fresh
    _, frames = resume(sim, resumed, 2.0, protocol="signalwire_unknown")
    assert frames[0]["result"]["session_restored"] is False
    # grace over (timers not yet run): the old session expires on the spot, its calls end
    resumed.conn.connection_lost(3.0)
    _, frames = resume(sim, peer, 13.5)
    assert frames[0]["result"]["session_restored"] is False
    assert [c.end_reason for c in sim.all_calls()] == ["cancel"]  # it was still ringing


def test_session_expiry_timer_ends_calls_and_dials() -> None:
    sim = make_sim(
        resume_grace=5.0, scenario=Scenario(destinations={B: Outcome(kind=OutcomeKind.NO_ANSWER)})
    )
    peer = connected(sim)
    peer.request("signalwire.receive", {"contexts": ["office"]}, 0.0)
    call_id = answered_call(peer)
    peer.call_cmd("calling.play", call_id, 1.0, control_id="P", play=[tts("x" * 500)])
    peer.dial([[phone(B)]], 1.0, tag="T2")
    other = connected(sim)
    other.dial([[phone(B)]], 1.0, tag="T2")
    peer.conn.connection_lost(2.0)
    peer.conn.connection_lost(2.5)  # idempotent
    assert sim.next_deadline() == 7.0
    sim.handle_timer(7.0)
    assert [(c.state, c.end_reason) for c in sim.all_calls()[:2]] == [
        (CallState.ENDED, "hangup"),
        (CallState.ENDED, "cancel"),
    ]
    assert len(sim.live_calls()) == 1
    assert sim.pending_dials() == 1
    assert sim.unacked_events(str(peer.protocol)) == 0
    with pytest.raises(LocalProtocolError):
        sim.inject_inbound_call(context="office", from_number=A, to_number=B, now=8.0)
    _, frames = resume(sim, peer, 8.0)
    assert frames[0]["result"]["session_restored"] is False


def test_second_socket_takes_over_the_session() -> None:
    sim = make_sim()
    peer = connected(sim)
    new, frames = resume(sim, peer, 1.0)
    assert frames[0]["result"]["session_restored"] is True
    assert peer.conn.closed
    assert peer.conn.close_reason == "session taken over"
    assert not new.conn.closed
    assert new.conn.session_restored
    peer.conn.connection_lost(1.5)  # the old socket going away does not detach the new one
    peer.conn.receive("garbage is ignored once closed", 2.0)
    new.dial([[phone(A)]], 2.0)
    assert s(new.tick(3.0)) == [("state", A, "answered", None), ("dial", "answered", A)]


def test_server_disconnect_and_resume() -> None:
    sim = make_sim()
    peer = connected(sim)
    peer.dial([[phone(A)]], 0.0)
    peer.conn.send_disconnect(restart=False)
    (disconnect,) = peer.drain()
    assert disconnect["method"] == "signalwire.disconnect"
    assert disconnect["params"] == {"restart": False}
    assert peer.conn.state is ConnectionState.DISCONNECTING
    # still answers requests, but new events wait for the next socket
    assert s(peer.request("signalwire.ping", {}, 0.1, rid="p")) == [("result", "p", None)]
    assert peer.tick(1.0) == []
    with pytest.raises(LocalProtocolError):
        peer.conn.send_ping()
    peer.send({"jsonrpc": "2.0", "id": disconnect["id"], "result": {}}, 1.0)
    assert peer.conn.closed
    assert peer.conn.close_reason == "disconnect answered"
    peer.conn.connection_lost(1.0)
    _, frames = resume(sim, peer, 2.0)
    assert s(frames) == [
        ("result", "c1", None),
        ("state", A, "answered", None),
        ("dial", "answered", A),
        ("signalwire.authorization.state",),
    ]


def test_disconnect_restart_makes_session_unresumable() -> None:
    sim = make_sim()
    peer = connected(sim)
    peer.conn.send_disconnect(restart=True)
    (disconnect,) = peer.drain()
    peer.send({"jsonrpc": "2.0", "id": disconnect["id"], "result": {}}, 1.0)
    peer.conn.connection_lost(1.0)
    new, frames = resume(sim, peer, 2.0)
    assert frames[0]["result"]["session_restored"] is False
    assert new.conn.session_restored is False


def test_connection_lost_before_connect() -> None:
    sim = make_sim()
    conn = sim.open_connection(0.0)
    conn.send_ping()
    conn.connection_lost(1.0)
    assert sim.connections() == []
    assert conn.data_to_send() == []
    assert repr(conn) == "<ServerConnection closed protocol=None>"


def test_default_ids_are_uuid_shaped_and_scenario_is_replaceable() -> None:
    sim = Simulator()
    peer = Peer(sim)
    peer.connect()
    assert peer.protocol == "signalwire_00000000-0000-4000-8000-000000000001"
    sim.scenario = Scenario(default=Outcome(kind=OutcomeKind.BUSY, after=0.0))
    peer.dial([[phone(A)]], 0.0)
    assert s(peer.tick(0.0))[0] == ("state", A, "ended", "busy")
    assert sim.unacked_events(str(peer.protocol)) == 0


def test_settings_are_read_and_written_through_the_simulator() -> None:
    sim = make_sim(resume_grace=5.0, epoch=100.0, space_id="s1")
    assert (sim.resume_grace, sim.epoch, sim.space_id) == (5.0, 100.0, "s1")
    sim.resume_grace, sim.epoch, sim.space_id = 1.0, 200.0, "s2"
    assert (sim.resume_grace, sim.epoch, sim.space_id) == (1.0, 200.0, "s2")
    peer = Peer(sim)
    event = peer.connect(0.0)[1]["params"]
    assert (event["timestamp"], event["space_id"]) == (200.0, "s2")
    assert "sessions=1" in repr(sim)
    peer.conn.connection_lost(0.0)
    sim.handle_timer(1.5)  # the new, shorter grace has passed: the session is gone
    assert sim.unacked_events(str(peer.protocol)) == 0
    assert "sessions=0" in repr(sim)


def test_shared_context_and_notifications() -> None:
    sim = make_sim()
    first, second = connected(sim), connected(sim)
    for peer in (first, second):
        peer.request("signalwire.receive", {"contexts": ["office"]}, 0.0)
    first.request("signalwire.unreceive", {"contexts": ["office"]}, 0.0)
    sim.inject_inbound_call(context="office", from_number=A, to_number=B, now=1.0)
    assert first.drain() == []
    assert s(second.drain()) == [("receive", "office", "created")]
    # a successful notification gets no reply either
    assert first.send({"jsonrpc": "2.0", "method": "signalwire.ping", "params": {}}, 1.0) == []


def test_paused_plays_end_with_the_call_and_the_session() -> None:
    sim = make_sim(resume_grace=1.0)
    peer = connected(sim)
    first = answered_call(peer)
    peer.call_cmd("calling.play", first, 1.0, control_id="P", play=[tts("hello")])
    peer.call_cmd("calling.play.pause", first, 1.01, control_id="P")
    assert s(peer.call_cmd("calling.end", first, 2.0)) == [
        ("result", "x", "200"),
        ("play", "P", "error"),
        ("state", A, "ending", "hangup"),
        ("state", A, "ended", "hangup"),
    ]
    second = call_id_of(peer.dial([[phone(B)]], 3.0, tag="T2"), B)
    peer.tick(3.2)
    peer.call_cmd("calling.play", second, 4.0, control_id="P", play=[tts("hello")])
    peer.call_cmd("calling.play", second, 4.0, control_id="Q", play=[tts("hello")])
    peer.call_cmd("calling.play.pause", second, 4.0, control_id="Q")
    peer.conn.connection_lost(4.0)
    sim.handle_timer(5.0)
    assert sim.live_calls() == []
    assert sim.next_deadline() is None
