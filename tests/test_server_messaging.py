"""The simulator's messaging driven with raw JSON frames: ``messaging.send`` checked with
the shared rules, ``messaging.state`` along the scenario's per-destination outcome, and
inbound ``messaging.receive`` injected on a context. Time is a fake ``now``.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_server_core import FROM, A, B, C, Frame, Peer, make_sim

from relay_anyio import RelayClient, SimulatorServer
from relay_proto._errors import LocalProtocolError
from relay_proto.simulator import MessageOutcome, Outcome, OutcomeKind, Scenario

ANSWER = Outcome(kind=OutcomeKind.ANSWER)


def m(frames: list[Frame]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for frame in frames:
        if "method" not in frame:
            result = frame.get("result")
            out.append(("result", result["code"]) if result else ("error", frame["error"]["code"]))
            continue
        event_type, inner = frame["params"]["event_type"], frame["params"]["params"]
        out.append((event_type, inner.get("message_state"), inner.get("reason")))
    return out


def session(sc: Scenario | None = None, **connect: Any) -> Peer:
    peer = Peer(make_sim(scenario=sc if sc is not None else Scenario()))
    peer.connect(**connect)
    return peer


def send(peer: Peer, now: float, **params: Any) -> list[Frame]:
    body: dict[str, Any] = {"from_number": FROM, "to_number": A, "body": "Hello"}
    body.update(params)
    return peer.request("messaging.send", {k: v for k, v in body.items() if v is not None}, now)


def inner(frame: Frame) -> dict[str, Any]:
    return dict(frame["params"]["params"])


# ---- outbound -------------------------------------------------------------------------


def test_a_delivered_message_exact_frames() -> None:
    quarter = MessageOutcome(after=0.25)
    peer = session(Scenario(default=Outcome(kind=OutcomeKind.ANSWER, message=quarter)))
    frames = send(peer, 1.0, tags=["t1"], media=["https://example.com/a.png"])
    result = frames[0]["result"]
    message_id = result["message_id"]
    assert result == {"code": "200", "message": "Message accepted", "message_id": message_id}
    assert m(frames) == [("result", "200"), ("messaging.state", "queued", None)]
    assert inner(frames[1]) == {
        "message_id": message_id,
        "context": peer.protocol,  # no context given: the session's own
        "direction": "outbound",
        "tags": ["t1"],
        "from_number": FROM,
        "to_number": A,
        "body": "Hello",
        "media": ["https://example.com/a.png"],
        "segments": 1,
        "message_state": "queued",
    }
    (live,) = peer.sim.live_messages()
    assert (live.message_id, live.state, live.direction) == (message_id, "queued", "outbound")
    assert (live.media, live.tags, live.protocol) == (
        ("https://example.com/a.png",),
        ("t1",),
        peer.protocol,
    )
    assert peer.sim.next_deadline() == 1.25
    assert m(peer.tick(1.25)) == [("messaging.state", "initiated", None)]
    assert m(peer.tick(1.5)) == [("messaging.state", "sent", None)]
    frames = peer.tick(1.75)
    assert m(frames) == [("messaging.state", "delivered", None)]
    assert "reason" not in inner(frames[0])
    assert peer.sim.live_messages() == []
    assert peer.sim.next_deadline() is None
    (done,) = peer.sim.all_messages()
    assert (done.state, done.reason) == ("delivered", None)


def test_undelivered_and_failed_carry_a_reason() -> None:
    sc = Scenario(
        destinations={
            A: Outcome(
                kind=OutcomeKind.ANSWER, message=MessageOutcome(state="undelivered", after=1)
            ),
            B: Outcome(
                kind=OutcomeKind.ANSWER,
                message=MessageOutcome(state="failed", after=0.5, reason="Carrier blocked"),
            ),
        }
    )
    peer = session(sc)
    send(peer, 0.0, to_number=A)
    send(peer, 0.0, to_number=B, context="office")
    frames = []
    for now in (0.5, 1.0, 1.5, 2.0, 3.0):
        frames += peer.tick(now)
    assert m(frames) == [
        ("messaging.state", "initiated", None),  # B
        ("messaging.state", "initiated", None),  # A
        ("messaging.state", "failed", "Carrier blocked"),  # B: no "sent"
        ("messaging.state", "sent", None),  # A
        ("messaging.state", "undelivered", "Unreachable destination"),  # A
    ]
    assert inner(frames[2])["context"] == "office"
    assert {msg.to_number: msg.reason for msg in peer.sim.all_messages()} == {
        A: "Unreachable destination",
        B: "Carrier blocked",
    }
    assert peer.sim.live_messages() == []


def test_the_default_entry_gives_unlisted_destinations_their_outcome() -> None:
    sc = Scenario(
        default=Outcome(kind=OutcomeKind.ANSWER, message=MessageOutcome(state="failed")),
        destinations={B: ANSWER, C: Outcome(kind=OutcomeKind.ANSWER, message=MessageOutcome())},
    )
    assert sc.message_for(A).state == "failed"
    assert sc.message_for(B).state == "failed"  # listed, without its own message
    assert sc.message_for(C).state == "delivered"
    assert Scenario().message_for(A) == MessageOutcome()
    peer = session(sc)
    send(peer, 0.0)
    assert m(peer.tick(0.1) + peer.tick(0.2)) == [
        ("messaging.state", "initiated", None),
        ("messaging.state", "failed", "Message failed"),
    ]


def test_segments_count_the_body() -> None:
    peer = session()
    assert inner(send(peer, 0.0, body="x" * 161)[1])["segments"] == 2
    assert inner(send(peer, 0.0, body=None, media=["http://a/b"])[1])["segments"] == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"to_number": None}, "to_number"),
        ({"to_number": "5551234"}, "to_number"),
        ({"from_number": 15550000009}, "from_number"),
        ({"body": None}, "body or media"),
        ({"body": ""}, "body or media"),
        ({"body": 3}, "body"),
        ({"media": "https://a/b"}, "media"),
        ({"media": [""]}, "media[0]"),
        ({"media": ["not a url"]}, "media[0]"),
        ({"tags": "t"}, "tags"),
        ({"tags": [1]}, "tags[0]"),
        ({"context": ""}, "context"),
        ({"region": 5}, "region"),
    ],
)
def test_send_params_are_checked(params: dict[str, Any], field: str) -> None:
    peer = session()
    frames = send(peer, 0.0, **params)
    assert len(frames) == 1
    assert frames[0]["result"]["code"] == "400"
    assert field in frames[0]["result"]["message"]
    assert peer.sim.all_messages() == []


def test_other_messaging_methods_are_not_found() -> None:
    peer = session()
    assert m(peer.request("messaging.nope", {}, 0.0)) == [("error", -32601)]
    assert m(peer.request("messaging.send", [], 0.0)) == [("error", -32602)]


def test_an_expired_session_stops_its_messages_only() -> None:
    sc = Scenario(default=Outcome(kind=OutcomeKind.ANSWER, message=MessageOutcome(after=20)))
    peer = session(sc)
    send(peer, 0.0)
    other = Peer(peer.sim)
    other.connect()
    send(other, 0.0)
    peer.conn.connection_lost(0.0)
    peer.sim.handle_timer(peer.sim.resume_grace)
    (live,) = peer.sim.live_messages()
    assert (live.protocol, live.state) == (other.protocol, "initiated")
    assert [msg.state for msg in peer.sim.all_messages()] == ["initiated", "initiated"]


def test_an_expired_session_stops_a_message_in_flight() -> None:
    sc = Scenario(default=Outcome(kind=OutcomeKind.ANSWER, message=MessageOutcome(after=100)))
    peer = session(sc)
    send(peer, 0.0)
    peer.conn.connection_lost(1.0)
    peer.sim.handle_timer(1.0 + peer.sim.resume_grace)
    assert peer.sim.live_messages() == []
    assert peer.sim.next_deadline() is None


# ---- inbound --------------------------------------------------------------------------


def test_an_injected_message_reaches_a_session_on_its_context() -> None:
    peer = session(contexts=["office"])
    message_id = peer.sim.inject_message(
        context="office", from_number=B, to_number=A, body="Hi", media=["https://x/y"], now=2.0
    )
    (frame,) = peer.drain()
    assert frame["params"]["event_type"] == "messaging.receive"
    assert inner(frame) == {
        "message_id": message_id,
        "context": "office",
        "direction": "inbound",
        "tags": [],
        "from_number": B,
        "to_number": A,
        "body": "Hi",
        "media": ["https://x/y"],
        "segments": 1,
        "message_state": "received",
    }
    assert peer.sim.live_messages() == []
    (msg,) = peer.sim.all_messages()
    assert (msg.direction, msg.state, msg.protocol) == ("inbound", "received", peer.protocol)


def test_an_injected_message_goes_to_the_connected_session() -> None:
    sim = make_sim()
    gone, here = Peer(sim), Peer(sim)
    gone.connect(contexts=["office"])
    here.connect(contexts=["office"])
    gone.conn.connection_lost(1.0)
    sim.inject_message(context="office", from_number=B, to_number=A, body="Hi", tags=["x"], now=1.0)
    assert [f["params"]["event_type"] for f in here.drain()] == ["messaging.receive"]


def test_an_injected_message_without_a_receiver_or_with_bad_params_raises() -> None:
    peer = session(contexts=["office"])
    with pytest.raises(LocalProtocolError, match="no session receives context 'home'"):
        peer.sim.inject_message(context="home", from_number=B, to_number=A, body="Hi", now=0.0)
    with pytest.raises(LocalProtocolError, match="body or media"):
        peer.sim.inject_message(context="office", from_number=B, to_number=A, now=0.0)
    with pytest.raises(LocalProtocolError, match="from_number"):
        peer.sim.inject_message(context="office", from_number="B", to_number=A, body="x", now=0.0)
    assert peer.drain() == []
    assert peer.sim.all_messages() == []


# ---- scenario -------------------------------------------------------------------------


def test_scenario_file_message_keys() -> None:
    sc = Scenario.from_dict(
        {
            "default": {"outcome": "answer", "message": "undelivered"},
            "destinations": {
                A: {"outcome": "busy", "message": {"state": "failed", "reason": "r", "after": 2}},
                B: {"outcome": "answer", "message": {"state": "delivered"}},
            },
        }
    )
    assert sc.message_for(A) == MessageOutcome(state="failed", reason="r", after=2.0)
    assert sc.message_for(B) == MessageOutcome()
    assert sc.message_for(C) == MessageOutcome(state="undelivered")
    assert sc.outcome_for(A).kind is OutcomeKind.BUSY


@pytest.mark.parametrize(
    "message",
    [
        "read",
        1,
        [],
        {"state": "delivered", "when": 1},
        {"after": 1},
        {"state": "failed", "after": -1},
        {"state": "failed", "after": "1"},
        {"state": "failed", "reason": ""},
        {"state": "failed", "reason": 7},
        {"state": ["delivered"]},
    ],
)
def test_bad_message_outcomes_are_refused(message: Any) -> None:
    with pytest.raises(LocalProtocolError, match="message"):
        Scenario.from_dict({"destinations": {A: {"outcome": "answer", "message": message}}})


def test_message_outcome_objects_are_checked() -> None:
    with pytest.raises(LocalProtocolError, match=r"Outcome\.message"):
        Outcome(kind=OutcomeKind.ANSWER, message="failed")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="message must be one of"):
        MessageOutcome(state="sent")


# ---- over a socket --------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.relay_scenario(
    {"default": {"outcome": "answer", "message": {"state": "delivered", "after": 0.01}}}
)
async def test_messaging_over_a_socket(
    relay_client: RelayClient, relay_simulator: SimulatorServer
) -> None:
    result = await relay_client.execute(
        "messaging.send", {"from_number": FROM, "to_number": A, "body": "Hi", "context": "c"}
    )
    assert result["code"] == "200"
    assert [msg.message_id for msg in relay_simulator.all_messages()] == [result["message_id"]]
    assert [msg.state for msg in relay_simulator.live_messages()] in (
        [],
        ["queued"],
        ["initiated"],
        ["sent"],
    )
    with pytest.raises(LocalProtocolError, match="no session receives"):
        await relay_simulator.inject_message(
            context="nowhere", from_number=B, to_number=A, body="x"
        )
