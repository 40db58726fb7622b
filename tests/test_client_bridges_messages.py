"""Client core: bridges (calling.connect) and messaging, transcript by transcript."""

from __future__ import annotations

from typing import Any

import pytest
from client_frames import PHONE_A, Client, ended, error, ok, result

from relay_proto import (
    CallLost,
    CallState,
    CallStateChanged,
    ConnectState,
    ConnectStateChanged,
    InboundMessage,
    LocalProtocolError,
    MessageState,
    MessageStateChanged,
    RequestFailed,
    RequestSucceeded,
    UnknownState,
    UnreadableEvent,
)

PEER = {"call_id": "PEER-1", "node_id": "NODE-2", "tag": "t", "device": PHONE_A}


def with_call(**kwargs: Any) -> Client:
    c = Client(**kwargs)
    c.connect()
    c.answered_call("CALL-1")
    c.sent()
    return c


def connect_event(c: Client, state: str, **params: Any) -> list[Any]:
    return c.event("calling.call.connect", {"call_id": "CALL-1", "connect_state": state, **params})


# ---------------------------------------------------------------------------- bridges


def test_connect_request_shape_and_validation() -> None:
    c = with_call()
    ringback = [{"type": "ringtone", "name": "us"}]
    rid = c.core.connect_call("CALL-1", [[PHONE_A]], ringback=ringback, tag="b1", max_duration=60)
    assert c.sent_one() == {
        "jsonrpc": "2.0",
        "id": rid,
        "method": "calling.connect",
        "params": {
            "node_id": "NODE-1",
            "call_id": "CALL-1",
            "tag": "b1",
            "devices": [[PHONE_A]],
            "max_duration": 60,
            "ringback": [{"type": "ringtone", "params": {"name": "us"}}],
        },
    }
    c.core.connect_call("CALL-1", [[PHONE_A]])
    assert "tag" not in c.sent_one()["params"]
    with pytest.raises(LocalProtocolError, match="devices"):
        c.core.connect_call("CALL-1", [])
    with pytest.raises(LocalProtocolError, match="media"):
        c.core.connect_call("CALL-1", [[PHONE_A]], ringback=[])
    with pytest.raises(LocalProtocolError, match="tag"):
        c.core.connect_call("CALL-1", [[PHONE_A]], tag="")
    for bad in ("", 7):
        with pytest.raises(LocalProtocolError, match="status_url"):
            c.core.connect_call("CALL-1", [[PHONE_A]], status_url=bad)  # type: ignore[arg-type]
    assert c.sent() == []


def test_connect_with_a_status_url() -> None:
    c = with_call()
    url = "https://example.com/bridge"
    rid = c.core.connect_call("CALL-1", [[PHONE_A]], status_url=url)
    frame = c.sent_one()
    assert (frame["id"], frame["method"]) == (rid, "calling.connect")
    assert frame["params"] == {
        "node_id": "NODE-1",
        "call_id": "CALL-1",
        "devices": [[PHONE_A]],
        "status_url": url,
    }
    [succeeded] = c.feed(ok(rid, message="Connecting"))
    assert isinstance(succeeded, RequestSucceeded)
    assert [e.state for e in connect_event(c, "connecting")] == [ConnectState.CONNECTING]
    [connected] = connect_event(c, "connected", peer=PEER)
    assert connected.state is ConnectState.CONNECTED
    assert connected.peer is not None
    assert connected.peer.call_id == "PEER-1"


def test_connect_states_and_the_peer_becomes_a_call() -> None:
    c = with_call()
    [connecting] = connect_event(c, "connecting")
    assert connecting == ConnectStateChanged(
        call_id="CALL-1", state=ConnectState.CONNECTING, peer=None
    )
    assert connect_event(c, "connecting") == []  # a duplicate
    [connected] = connect_event(c, "connected", peer=PEER)
    assert connected.state is ConnectState.CONNECTED
    assert connected.peer is not None
    assert connected.peer.call_id == "PEER-1"
    assert connected.peer.state is CallState.ANSWERED
    assert connected.peer.node_id == "NODE-2"
    assert "PEER-1" in c.core.live_call_ids
    assert connect_event(c, "connecting") == []  # backwards
    [disconnected] = connect_event(c, "disconnected", peer=PEER)
    assert disconnected.state.terminal
    assert disconnected.peer is not None
    [changed] = c.state("PEER-1", "ended", node_id="NODE-2")
    assert isinstance(changed, CallStateChanged)
    assert "PEER-1" not in c.core.live_call_ids
    # A bridge that ended can be made again; a peer that ended is not brought back.
    [again] = connect_event(c, "connecting")
    assert again.state is ConnectState.CONNECTING
    [failed] = connect_event(c, "failed", peer=PEER, reason="busy", source="peer")
    assert (failed.reason, failed.source) == ("busy", "peer")
    assert failed.peer is not None
    assert "PEER-1" not in c.core.live_call_ids


def test_connect_peer_shapes() -> None:
    c = with_call()
    [no_ids] = connect_event(c, "connected", peer={"call_id": "P"})
    assert no_ids.peer is None
    c2 = with_call()
    peer = {**PEER, "call_state": "ringing"}
    [ev] = connect_event(c2, "connected", peer=peer)
    assert ev.peer is not None
    assert ev.peer.state is CallState.RINGING
    [ev2] = connect_event(c2, "disconnected", peer={**PEER, "call_state": "weird"})
    assert ev2.peer is not None
    assert ev2.peer.state is CallState.RINGING
    c3 = with_call()
    [ended_peer] = connect_event(c3, "connected", peer={**PEER, "call_state": "ended"})
    assert ended_peer.peer is not None
    assert "PEER-1" not in c3.core.live_call_ids


def test_connect_events_odd_and_unknown_calls() -> None:
    c = with_call()
    assert c.event("calling.call.connect", {"call_id": "X", "connect_state": "connected"}) == []
    [odd] = connect_event(c, "bridging")
    assert isinstance(odd, UnknownState)
    assert odd.key == "connect_state"
    [bad] = c.event("calling.call.connect", {"connect_state": "connected"})
    assert isinstance(bad, UnreadableEvent)


def test_peer_is_hung_up_when_the_session_is_lost() -> None:
    c = with_call()
    connect_event(c, "connected", peer=PEER)
    c.core.connection_lost(now=1)
    c.connect(protocol="signalwire_OTHER")  # not restored
    frames = c.sent()
    assert any(ended(f, "CALL-1", "hangup") for f in frames)
    assert any(
        f.get("method") == "calling.end" and f["params"]["call_id"] == "PEER-1" for f in frames
    )


def test_bridge_state_goes_with_the_call() -> None:
    c = with_call()
    connect_event(c, "connected", peer=PEER)
    events = c.state("CALL-1", "ended")
    assert any(isinstance(e, CallStateChanged) for e in events)
    assert connect_event(c, "disconnected") == []  # the call is gone


# ---------------------------------------------------------------------------- messaging


def send(c: Client, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    kwargs.setdefault("to_number", "+15551230000")
    kwargs.setdefault("from_number", "+15559870000")
    rid = c.core.send_message(**kwargs)
    frame = c.sent_one()
    assert frame["id"] == rid
    assert frame["method"] == "messaging.send"
    return rid, frame["params"]


def state_event(c: Client, message_id: str, state: str, **params: Any) -> list[Any]:
    inner = {"message_id": message_id, "message_state": state, "direction": "outbound", **params}
    return c.event("messaging.state", inner)


def test_send_message_params_and_validation() -> None:
    c = Client(contexts=["office"])
    c.connect()
    _, params = send(c, body="Hi", media=["https://x/a.png"], tags=["t"], region="us")
    assert params == {
        "context": "signalwire_SIG_1",  # the session's protocol, as the official SDK sends
        "to_number": "+15551230000",
        "from_number": "+15559870000",
        "body": "Hi",
        "media": ["https://x/a.png"],
        "tags": ["t"],
        "region": "us",
    }
    c2 = Client()
    c2.connect()
    _, params2 = send(c2, media=("https://x/b.png",), context="sales")
    assert params2["context"] == "sales"
    assert params2["media"] == ["https://x/b.png"]
    _, params3 = send(c2, body="x")
    assert params3["context"] == "signalwire_SIG_1"
    c3 = Client()  # no session yet: no protocol to name
    c3.core.send_message(to_number="+15551230000", from_number="+15559870000", body="x")
    c3.connect()
    [held] = c3.sent()
    assert held["params"]["context"] == "default"
    bad: list[tuple[dict[str, Any], str]] = [
        ({"body": None}, "body or media"),
        ({"media": []}, "body or media"),
        ({"body": ""}, "body"),
        ({"body": "x", "to_number": "555"}, "to_number"),
        ({"body": "x", "from_number": 5}, "from_number"),
        ({"body": "x", "media": "https://x"}, "media"),
        ({"body": "x", "tags": [""]}, "tags"),
        ({"body": "x", "context": ""}, "context"),
    ]
    for kwargs, match in bad:
        with pytest.raises(LocalProtocolError, match=match):
            c2.core.send_message(
                **{"to_number": "+15551230000", "from_number": "+15559870000", **kwargs}
            )
    assert c2.sent() == []


def test_message_states_forward_only_and_done_once() -> None:
    c = Client()
    c.connect()
    rid, _ = send(c, body="Hi")
    [accepted] = c.feed(result(rid, {"code": "200", "message": "ok", "message_id": "M1"}))
    assert isinstance(accepted, RequestSucceeded)
    assert accepted.result["message_id"] == "M1"
    [sent] = state_event(c, "M1", "sent", segments=1, media=["u", 3], tags=["a"])
    assert isinstance(sent, MessageStateChanged)
    assert not sent.done
    assert (sent.message.state, sent.message.segments) == ("sent", 1)
    assert sent.message.media == ("u",)
    assert sent.message.tags == ("a",)
    assert state_event(c, "M1", "initiated") == []  # backwards
    assert state_event(c, "M1", "sent") == []  # a duplicate
    [done] = state_event(c, "M1", "undelivered", reason="carrier")
    assert done.done
    assert done.message.reason == "carrier"
    # After the end only its id is kept: a late event reports nothing.
    assert state_event(c, "M1", "delivered") == []


def test_state_before_the_reply_is_held_until_it() -> None:
    c = Client()
    c.connect()
    rid, _ = send(c, body="Hi")
    rid2, _ = send(c, body="Other")
    assert state_event(c, "M1", "queued") == []
    assert state_event(c, "M1", "sent") == []
    assert state_event(c, "M9", "sent") == []  # not ours, but a send is in flight
    events: list[Any] = c.feed(result(rid, {"code": "200", "message": "ok", "message_id": "M1"}))
    assert [type(e) for e in events] == [RequestSucceeded, MessageStateChanged]
    assert events[1].message.state == "sent"  # "queued" is where it starts
    [failed, released] = c.feed(error(rid2, 500, "no"))
    assert isinstance(failed, RequestFailed)
    assert isinstance(released, MessageStateChanged)
    assert released.message.message_id == "M9"


def test_send_without_a_message_id_and_lost_sends() -> None:
    c = Client()
    c.connect()
    rid, _ = send(c, body="Hi")
    assert state_event(c, "M1", "sent") == []
    events = c.feed(ok(rid))  # no message_id: the held event belongs to no send of ours
    assert [type(e) for e in events] == [RequestSucceeded, MessageStateChanged]
    send(c, body="again")
    assert state_event(c, "M2", "queued") == []
    c.core.connection_lost(now=1)
    _, events = c.connect()
    kinds = [type(e) for e in events]
    assert RequestFailed in kinds
    assert MessageStateChanged in kinds


def test_held_events_are_bounded() -> None:
    c = Client()
    c.connect()
    send(c, body="Hi")
    for n in range(1030):
        state_event(c, f"X{n}", "sent")
    c.core.connection_lost(now=1)
    _, events = c.connect()
    assert sum(isinstance(e, MessageStateChanged) for e in events) == 1024


def test_finished_message_ids_are_bounded() -> None:
    """Only the last 1024 finished ids are kept: a late event for an older one is reported
    as for a message this client does not follow."""
    c = Client()
    c.connect()
    for n in range(1025):
        rid, _ = send(c, body="Hi")
        c.feed(result(rid, {"code": "200", "message": "ok", "message_id": f"M{n}"}))
        [done] = state_event(c, f"M{n}", "delivered")
        assert done.done
    assert state_event(c, "M1024", "delivered") == []  # still remembered
    assert state_event(c, "M1", "delivered") == []
    [late] = state_event(c, "M0", "delivered")  # forgotten: reported as it comes
    assert isinstance(late, MessageStateChanged)
    assert late.message.message_id == "M0"


def test_messaging_events_unknown_and_unreadable() -> None:
    c = Client()
    c.connect()
    [odd] = state_event(c, "M1", "teleported")
    assert isinstance(odd, UnknownState)
    assert odd.key == "message_state"
    [bad] = c.event("messaging.state", {"message_state": "sent"})
    assert isinstance(bad, UnreadableEvent)
    [bad2] = c.event("messaging.state", {"message_id": "M1"})
    assert isinstance(bad2, UnreadableEvent)


def test_inbound_message() -> None:
    c = Client(contexts=["office"])
    c.connect()
    inner = {
        "message_id": "IN-1",
        "context": "office",
        "direction": "inbound",
        "from_number": "+15551230000",
        "to_number": "+15559870000",
        "body": "Hello",
        "media": [],
        "segments": 1,
        "tags": [],
    }
    [msg] = c.event("messaging.receive", inner)
    assert isinstance(msg, InboundMessage)
    info = msg.message
    assert (info.message_id, info.body, info.state, info.direction) == (
        "IN-1",
        "Hello",
        MessageState.RECEIVED,
        "inbound",
    )
    [bad] = c.event("messaging.receive", {"body": "x"})
    assert isinstance(bad, UnreadableEvent)
    assert not any(isinstance(e, CallLost) for e in [msg, bad])


def test_a_failed_send_keeps_holding_while_another_is_in_flight() -> None:
    c = Client()
    c.connect()
    rid, _ = send(c, body="a")
    rid2, _ = send(c, body="b")
    assert state_event(c, "M2", "sent") == []
    assert [type(e) for e in c.feed(error(rid, 500, "no"))] == [RequestFailed]
    events = c.feed(result(rid2, {"code": "200", "message": "ok", "message_id": "M2"}))
    assert [type(e) for e in events] == [RequestSucceeded, MessageStateChanged]


def test_a_send_given_up_no_longer_holds_state_events() -> None:
    c = Client()
    c.connect()
    rid, _ = send(c, body="hi")
    assert state_event(c, "M-OTHER", "sent") == []  # held: the send may name it
    c.core.give_up(rid)
    released, new = state_event(c, "M-NEW", "delivered")
    assert isinstance(released, MessageStateChanged)
    assert released.message.message_id == "M-OTHER"
    assert isinstance(new, MessageStateChanged)
    assert new.message.message_id == "M-NEW"


def test_a_stale_disconnected_does_not_end_the_next_bridge() -> None:
    c = with_call()
    c.core.connect_call("CALL-1", [[PHONE_A]])
    c.sent()
    connect_event(c, "connected", peer=PEER)
    c.core.connect_call("CALL-1", [[PHONE_A]])  # after a disconnect whose event is late
    c.sent()
    assert connect_event(c, "disconnected", peer=PEER) == []  # the previous bridge's
    [connecting] = connect_event(c, "connecting")
    assert connecting.state is ConnectState.CONNECTING
    [connected] = connect_event(c, "connected", peer={**PEER, "call_id": "PEER-2"})
    assert connected.peer is not None
    assert connected.peer.call_id == "PEER-2"
    [ended] = connect_event(c, "disconnected")  # now it is this bridge's
    assert ended.state is ConnectState.DISCONNECTED


def test_a_peer_with_an_unhashable_call_state_is_read() -> None:
    c = with_call()
    [ev] = connect_event(c, "connected", peer={**PEER, "call_state": []})
    assert ev.peer is not None
    assert ev.peer.state is CallState.ANSWERED
