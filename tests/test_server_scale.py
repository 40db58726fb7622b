"""Many consumers on one context, driven with raw JSON frames: inbound calls and messages
spread round-robin over the sessions with a socket, ``calling.pass`` offering a call to
another session, what happens when everyone passed, and ``signalwire.unreceive``.
Time is a fake ``now``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from test_server_core import A, B, C, Peer, call_id_of, make_sim, phone, resume, s

from relay_proto import CallState
from relay_proto._errors import LocalProtocolError
from relay_proto.simulator import Scenario, Simulator

RING = 30.0


def consumers(count: int, sim: Simulator | None = None, context: str = "office") -> list[Peer]:
    """``count`` sessions of one project, each subscribed to ``context`` at connect."""
    sim = sim if sim is not None else make_sim(scenario=Scenario(inbound_ring_timeout=RING))
    peers = [Peer(sim) for _ in range(count)]
    for peer in peers:
        peer.connect(contexts=[context])
    return peers


def offers(peer: Peer, now: float = 0.0) -> list[str]:
    """The call_ids offered to ``peer`` (``calling.call.receive``) since its last drain."""
    return [
        frame["params"]["params"]["call_id"]
        for frame in peer.drain(now)
        if frame.get("method") == "signalwire.event"
        and frame["params"]["event_type"] == "calling.call.receive"
    ]


def inject(sim: Simulator, now: float = 1.0, context: str = "office") -> str:
    return sim.inject_inbound_call(context=context, from_number=A, to_number=B, now=now)


def cmd(peer: Peer, method: str, call_id: str, now: float = 2.0) -> list[tuple[Any, ...]]:
    return s(peer.call_cmd(method, call_id, now))


def owner(sim: Simulator, call_id: str) -> str:
    (call,) = [c for c in sim.live_calls() if c.call_id == call_id]
    return call.protocol


# ---- spreading ------------------------------------------------------------------------


def test_sixty_calls_spread_twenty_each_and_messages_in_turns_of_their_own() -> None:
    peers = consumers(3)
    sim = peers[0].sim
    got: dict[str | None, list[str]] = {peer.protocol: [] for peer in peers}
    for n in range(60):
        call_id = inject(sim)
        if n % 3 == 0:  # messages in between do not shift the calls' turns
            sim.inject_message(context="office", from_number=A, to_number=B, body="hi", now=1.0)
        for peer in peers:
            got[peer.protocol].extend(offers(peer))
        assert sum(call_id in ids for ids in got.values()) == 1  # exactly one session
    assert [len(ids) for ids in got.values()] == [20, 20, 20]
    assert [got[peer.protocol][:2] for peer in peers] == [
        [sim.all_calls()[i].call_id, sim.all_calls()[i + 3].call_id] for i in range(3)
    ]
    messages = Counter(message.protocol for message in sim.all_messages())
    assert sorted(messages.values()) == [6, 7, 7]
    assert set(messages) == set(got)


def test_a_session_whose_socket_is_gone_gets_no_new_calls_but_keeps_its_own() -> None:
    peers = consumers(3)
    sim = peers[0].sim
    first, second, third = peers
    mine = inject(sim)
    assert offers(first) == [mine]
    first.conn.connection_lost(1.5)
    new = [inject(sim, 2.0) for _ in range(4)]
    assert offers(second) == new[0::2]
    assert offers(third) == new[1::2]
    assert owner(sim, mine) == first.protocol  # still its own while it may resume
    back, frames = resume(sim, first, 3.0)
    assert frames[0]["result"]["session_restored"] is True
    assert cmd(back, "calling.answer", mine, 3.0)[0] == ("result", "x", "200")
    assert [c.state for c in sim.live_calls() if c.call_id == mine] == [CallState.ANSWERED]
    later = [inject(sim, 4.0) for _ in range(3)]  # back in the rotation
    assert {owner(sim, call_id) for call_id in later} == {p.protocol for p in peers}


def test_a_disconnecting_socket_takes_no_new_calls() -> None:
    first, second = consumers(2)
    sim = first.sim
    first.conn.send_disconnect(restart=False)
    first.drain()
    calls = [inject(sim) for _ in range(2)]
    assert offers(second) == calls


def test_with_no_socket_left_resuming_sessions_take_turns() -> None:
    peers = consumers(2)
    sim = peers[0].sim
    for peer in peers:
        peer.conn.connection_lost(0.5)
    calls = [inject(sim) for _ in range(4)]
    assert [owner(sim, call_id) for call_id in calls] == [p.protocol for p in peers] * 2
    assert [sim.unacked_events(str(p.protocol)) for p in peers] == [2, 2]


def test_no_session_on_the_context_refuses_the_injection() -> None:
    (peer,) = consumers(1)
    with pytest.raises(LocalProtocolError, match="no session receives"):
        inject(peer.sim, context="lab")
    with pytest.raises(LocalProtocolError, match="no session receives"):
        peer.sim.inject_message(context="lab", from_number=A, to_number=B, body="x", now=1.0)


# ---- calling.pass ---------------------------------------------------------------------


def test_pass_offers_the_call_to_another_session_and_never_back() -> None:
    first, second, third = consumers(3)
    sim = first.sim
    call_id = inject(sim)
    assert offers(first) == [call_id]
    assert cmd(first, "calling.pass", call_id) == [("result", "x", "200")]
    assert first.drain() == []  # nothing more for the session that passed
    assert offers(second) == [call_id]
    assert offers(third) == []
    assert cmd(first, "calling.pass", call_id) == [("result", "x", "409")]
    assert cmd(first, "calling.answer", call_id) == [("result", "x", "409")]  # not its own
    assert cmd(second, "calling.pass", call_id) == [("result", "x", "200")]
    assert offers(third) == [call_id]
    assert offers(first) == []
    answered = cmd(third, "calling.answer", call_id)
    assert answered == [("result", "x", "200"), ("state", B, "answered", None)]
    assert cmd(third, "calling.pass", call_id) == [("result", "x", "409")]  # answered
    assert cmd(third, "calling.end", call_id)[0] == ("result", "x", "200")
    assert cmd(third, "calling.pass", call_id) == [("result", "x", "404")]  # gone
    assert first.drain() == []
    assert second.drain() == []
    assert sim.live_calls() == []


def test_pass_reply_and_unknown_or_outbound_calls() -> None:
    first, second = consumers(2)
    sim = first.sim
    call_id = inject(sim)
    offers(first)
    [reply] = first.call_cmd("calling.pass", call_id, 2.0)
    assert reply["result"] == {"code": "200", "message": "Passing call"}
    assert offers(second) == [call_id]
    assert cmd(first, "calling.pass", "no-such-call") == [("result", "x", "404")]
    outbound = call_id_of(first.dial([[phone(C)]], 3.0), C)
    assert cmd(first, "calling.pass", outbound) == [("result", "x", "400")]


def test_pass_by_everyone_rings_out_unseen_then_ends_no_answer() -> None:
    peers = consumers(3)
    sim = peers[0].sim
    call_id = inject(sim, now=1.0)
    for peer in peers:
        assert offers(peer) == [call_id]
        assert cmd(peer, "calling.pass", call_id) == [("result", "x", "200")]
    (live,) = sim.live_calls()
    assert (live.state, live.protocol) == (CallState.CREATED, "")  # nobody holds it
    for peer in peers:
        assert cmd(peer, "calling.answer", call_id) == [("result", "x", "409")]
        assert cmd(peer, "calling.pass", call_id) == [("result", "x", "409")]
    assert sim.next_deadline() == 1.0 + RING  # the ring timeout counts from the offer
    sim.handle_timer(1.0 + RING)
    assert [peer.drain() for peer in peers] == [[], [], []]
    (call,) = sim.all_calls()
    assert (call.state, call.end_reason) == (CallState.ENDED, "noAnswer")
    assert sim.live_calls() == []


def test_pass_skips_sessions_without_a_socket() -> None:
    first, second, third = consumers(3)
    sim = first.sim
    call_id = inject(sim)
    offers(first)
    second.conn.connection_lost(1.5)
    cmd(first, "calling.pass", call_id)
    assert offers(third) == [call_id]
    cmd(third, "calling.pass", call_id)  # only second is left, and it is resuming
    assert owner(sim, call_id) == ""
    assert sim.unacked_events(str(second.protocol)) == 0


def test_pass_then_the_new_owner_expires() -> None:
    first, second = consumers(2, make_sim(resume_grace=5.0))
    sim = first.sim
    call_id = inject(sim)
    offers(first)
    cmd(first, "calling.pass", call_id)
    assert offers(second) == [call_id]
    second.conn.connection_lost(3.0)
    sim.handle_timer(8.0)  # its grace runs out: its calls end silently
    assert sim.live_calls() == []
    assert first.drain() == []


# ---- unreceive ------------------------------------------------------------------------


def test_unreceive_stops_new_calls_and_messages_but_keeps_an_offered_call() -> None:
    first, second = consumers(2)
    sim = first.sim
    kept = inject(sim)
    assert offers(first) == [kept]
    [reply] = first.request("signalwire.unreceive", {"contexts": ["office"]}, 1.5)
    assert reply["result"]["code"] == "200"
    calls = [inject(sim, 2.0) for _ in range(3)]
    sim.inject_message(context="office", from_number=A, to_number=B, body="x", now=2.0)
    assert offers(first) == []
    assert offers(second) == calls
    assert {m.protocol for m in sim.all_messages()} == {second.protocol}
    assert cmd(first, "calling.answer", kept)[0] == ("result", "x", "200")
    second.request("signalwire.unreceive", {"contexts": ["office"]}, 3.0)
    with pytest.raises(LocalProtocolError):
        inject(sim, 3.0)
    # Subscribing again starts the turns afresh, in subscription order.
    for peer in (second, first):
        peer.request("signalwire.receive", {"contexts": ["office"]}, 4.0)
    again = [inject(sim, 4.0) for _ in range(2)]
    assert [owner(sim, call_id) for call_id in again] == [second.protocol, first.protocol]
