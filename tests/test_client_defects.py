"""Client core regressions for the reliability defects that lived in the core.

Each test failed before its fix: a play control's 404 read as "call gone", deep JSON in a
server ping escaping ``receive()``, a queued ping put back after a reconnect, and cleanup
hang-ups refused by ``max_queued``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from client_frames import PHONE_A, Client, error, ok, request

from relay_proto import (
    CallLost,
    InboundCall,
    LocalProtocolError,
    RemoteProtocolError,
    RequestFailed,
    RequestSucceeded,
)


def receive_params(call_id: str = "IN-1") -> dict[str, Any]:
    return {
        "call_id": call_id,
        "node_id": "NODE-1",
        "call_state": "ringing",
        "context": "office",
        "direction": "inbound",
        "device": PHONE_A,
    }


def with_call() -> Client:
    c = Client()
    c.connect()
    c.answered_call("CALL-1")
    c.sent()
    return c


# ---------------------------------------------------------------------------- (a) 404 on an action


@pytest.mark.parametrize("action", ["stop", "pause", "resume", "volume"])
@pytest.mark.parametrize("code", [404, 410])
def test_a_play_control_gone_is_about_the_play_not_the_call(action: str, code: int) -> None:
    c = with_call()
    _, control_id = c.core.play("CALL-1", [{"type": "tts", "text": "x"}])
    c.sent()
    volume = 1.0 if action == "volume" else None
    rid = c.core.play_control("CALL-1", control_id, action, volume=volume)
    c.sent()
    events = c.feed(error(rid, code, "Play not found"))
    assert events == [
        RequestFailed(
            request_id=rid,
            method=f"calling.play.{action}",
            code=code,
            message="Play not found",
            call_gone=False,
        )
    ]
    assert c.core.live_call_ids == frozenset({"CALL-1"})
    c.core.end("CALL-1")  # still a live call: it can be hung up
    assert c.sent_one()["method"] == "calling.end"


def test_any_action_control_404_keeps_the_call() -> None:
    c = with_call()
    rid = c.core.execute("calling.record.stop", {"control_id": "X"}, call_id="CALL-1")
    c.sent()
    [failed] = c.feed(error(rid, 404, "Record not found"))
    assert isinstance(failed, RequestFailed)
    assert not failed.call_gone
    assert c.core.live_call_ids == frozenset({"CALL-1"})


@pytest.mark.parametrize("method", ["calling.end", "calling.answer", "calling.play"])
def test_a_call_level_command_404_still_loses_the_call(method: str) -> None:
    c = with_call()
    if method == "calling.play":
        rid, _ = c.core.play("CALL-1", [{"type": "tts", "text": "x"}])
    else:
        rid = c.core.execute(method, {}, call_id="CALL-1")
    c.sent()
    events = c.feed(error(rid, 404, "Call not found"))
    assert [type(e) for e in events] == [RequestFailed, CallLost]
    assert isinstance(events[0], RequestFailed)
    assert events[0].call_gone
    assert events[1] == CallLost(call_id="CALL-1", gone=True)
    assert c.core.live_call_ids == frozenset()


# ---------------------------------------------------------------------------- (b) deep JSON


def deep_ping_replies(field: str) -> list[dict[str, Any] | None]:
    """Feed pings whose ``field`` nests 850..999 deep; the echoed results (None: refused)."""
    replies: list[dict[str, Any] | None] = []
    for depth in range(850, 1000):
        c = Client()
        c.connect()
        deep = "[" * depth + "]" * depth
        params = '{"timestamp":5,"payload":' + deep + "}"
        if field == "timestamp":
            params = '{"payload":1,"timestamp":' + deep + "}"
        text = '{"jsonrpc":"2.0","id":"srv-1","method":"signalwire.ping","params":' + params + "}"
        try:
            assert c.feed(text) == []
        except RemoteProtocolError:
            assert c.sent() == []
            replies.append(None)
            continue
        [pong] = c.sent()
        assert pong["id"] == "srv-1"
        replies.append(pong["result"])
    return replies


def test_deep_json_in_a_server_ping_only_ever_raises_remote_protocol_error() -> None:
    # Around the recursion limit some depths parse but cannot be encoded again from the
    # (deeper) frame that echoes them; none may escape as anything but RemoteProtocolError.
    replies = deep_ping_replies("payload")
    assert None in replies
    assert {"timestamp": 5} in replies  # echoing failed: answered without the payload
    for reply in replies:
        assert reply is None or reply["timestamp"] == 5


def test_a_deep_ping_timestamp_is_left_out_of_the_echo_too() -> None:
    replies = deep_ping_replies("timestamp")
    assert {"payload": 1} not in replies  # the payload only goes out with the timestamp
    assert {} in replies


def test_a_ping_payload_that_encodes_is_echoed() -> None:
    c = Client()
    c.connect()
    c.feed(request(7, "signalwire.ping", {"timestamp": 1.5, "payload": {"a": [1, "b"]}}))
    assert c.sent() == [
        {"jsonrpc": "2.0", "id": 7, "result": {"timestamp": 1.5, "payload": {"a": [1, "b"]}}}
    ]


# ---------------------------------------------------------------------------- (c) queued ping


def test_a_queued_ping_lost_with_the_socket_is_not_sent_again() -> None:
    c = Client(ping_interval=10.0)
    c.connect()
    c.tick(10.0)  # the liveness ping is queued, never drained
    assert c.core.has_data_to_send
    c.core.connection_lost(now=11.0)
    _, events = c.connect()  # same protocol: the session is restored
    assert events[0].session_restored  # type: ignore[union-attr]
    assert c.sent() == []
    assert c.core.pending_request_count == 0


def test_a_queued_user_ping_survives_a_restored_reconnect() -> None:
    c = Client()
    c.connect()
    rid = c.core.ping(now=1.0)
    c.core.connection_lost(now=2.0)
    c.connect()
    [again] = c.sent()
    assert (again["id"], again["method"]) == (rid, "signalwire.ping")


# ---------------------------------------------------------------------------- (d) cleanup hang-ups


def offline_with_inbound_call(max_queued: int) -> Client:
    c = Client(contexts=["office"], max_queued=max_queued)
    c.connect()
    [inbound] = c.event("calling.call.receive", receive_params())
    assert isinstance(inbound, InboundCall)
    c.core.connection_lost(now=1)
    c.core.execute("signalwire.receive", {"contexts": ["more"]})  # the queue is now full
    return c


def test_a_plain_end_is_refused_by_max_queued() -> None:
    c = offline_with_inbound_call(max_queued=1)
    with pytest.raises(LocalProtocolError, match="max_queued"):
        c.core.end("IN-1", "busy")


def test_a_cleanup_end_is_never_refused_by_max_queued_and_goes_out_on_reconnect() -> None:
    c = offline_with_inbound_call(max_queued=1)
    rid = c.core.end("IN-1", "busy", cleanup=True)
    rid2 = c.core.end("IN-1", "busy", cleanup=True)
    c.connect()
    frames = c.sent()
    ends = [f for f in frames if f["method"] == "calling.end"]
    assert [f["id"] for f in ends] == [rid, rid2]
    assert ends[0]["params"] == {"node_id": "NODE-1", "call_id": "IN-1", "reason": "busy"}
    assert c.feed(ok(rid)) == [
        RequestSucceeded(request_id=rid, method="calling.end", result=json.loads(ok(rid))["result"])
    ]


def test_a_cleanup_end_whose_reply_was_lost_is_re_sent_and_reported_under_its_id() -> None:
    c = Client(contexts=["office"])
    c.connect()
    c.event("calling.call.receive", receive_params())
    rid = c.core.end("IN-1", cleanup=True)
    first = c.sent_one()
    c.core.connection_lost(now=1)
    _, events = c.connect()
    assert events[1:] == []  # not failed with connection_lost
    again = c.sent_one()
    assert again["method"] == "calling.end"
    assert again["params"] == first["params"]
    [failed, lost] = c.feed(error(again["id"], 404, "Call not found"))
    assert isinstance(failed, RequestFailed)
    assert (failed.request_id, failed.call_gone) == (rid, True)
    assert lost == CallLost(call_id="IN-1", gone=True)


def test_a_cleanup_end_waiting_for_a_socket_outlives_a_reset_session() -> None:
    c = Client(contexts=["office"])
    c.connect(protocol="proto-1")
    c.event("calling.call.receive", receive_params())
    c.core.connection_lost(now=1)
    rid = c.core.end("IN-1", "busy", cleanup=True)
    _, events = c.connect(protocol="proto-2")  # not restored: the call is lost
    assert CallLost(call_id="IN-1") in events
    assert not [e for e in events if isinstance(e, RequestFailed)]
    ends = [f for f in c.sent() if f["method"] == "calling.end"]
    assert rid in [f["id"] for f in ends]


def test_giving_up_an_unsent_request_means_it_is_never_sent() -> None:
    c = Client()
    c.connect()
    c.core.connection_lost(now=1)
    held = c.core.execute("calling.never", {})
    c.core.give_up(held)
    c.core.give_up("never-made")  # unknown ids are ignored
    c.connect()
    assert c.sent() == []  # nothing went out with the new session
    assert c.core.pending_request_count == 0


def test_giving_up_a_sent_request_forgets_it_and_drops_its_late_reply() -> None:
    c = Client()
    c.connect()
    sent = c.core.execute("calling.never", {})
    c.sent()
    c.core.give_up(sent)
    assert c.core.pending_request_count == 0
    assert c.feed(ok(sent)) == []  # late: dropped quietly, no RemoteProtocolError


def test_a_cleanup_hang_up_is_never_given_up() -> None:
    c = Client()
    c.connect()
    c.answered_call("CALL-1")
    c.sent()
    hangup = c.core.end("CALL-1", cleanup=True)
    c.core.give_up(hangup)
    assert [frame["method"] for frame in c.sent()] == ["calling.end"]
    assert c.core.pending_request_count == 1
