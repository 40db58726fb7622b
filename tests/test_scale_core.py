"""Client core, passing an inbound call (``calling.pass``): once the server accepts it the
call is forgotten without a hang-up; a refusal leaves it the session's. Transcripts."""

from __future__ import annotations

from typing import Any

import pytest
from client_frames import PHONE_A, Client, error, ok, result

from relay_proto import (
    ActionStateChanged,
    CallLost,
    InboundCall,
    LocalProtocolError,
    RequestFailed,
    RequestSucceeded,
)


def inbound(call_id: str = "IN-1") -> Client:
    c = Client(contexts=["office"])
    c.connect()
    params = {
        "call_id": call_id,
        "node_id": "NODE-2",
        "call_state": "ringing",
        "context": "office",
        "direction": "inbound",
        "device": PHONE_A,
    }
    [event] = c.event("calling.call.receive", params)
    assert isinstance(event, InboundCall)
    c.sent()
    return c


def test_pass_call_sends_calling_pass_and_forgets_the_call_once_accepted() -> None:
    c = inbound()
    request_id = c.core.pass_call("IN-1")
    assert c.sent_one() == {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "calling.pass",
        "params": {"node_id": "NODE-2", "call_id": "IN-1"},
    }
    assert c.core.live_call_ids == {"IN-1"}  # still ours until the server accepts
    events = c.feed(ok(request_id, "Passing call"))
    assert [type(e) for e in events] == [RequestSucceeded, CallLost]
    assert events[1] == CallLost(call_id="IN-1", passed=True)
    assert c.core.live_call_ids == frozenset()
    assert c.sent() == []  # no hang-up: the call lives on, offered to another consumer


def test_a_passed_call_cannot_be_commanded_or_brought_back() -> None:
    c = inbound()
    request_id = c.core.pass_call("IN-1")
    c.sent()
    c.feed(ok(request_id))
    with pytest.raises(LocalProtocolError, match="IN-1"):
        c.core.answer("IN-1")
    assert c.sent() == []
    # A late duplicate offer of the same call is not taken as new.
    params = {"call_id": "IN-1", "node_id": "NODE-2", "call_state": "ringing"}
    assert c.event("calling.call.receive", params) == []


def test_a_refused_pass_leaves_the_call_the_sessions() -> None:
    c = inbound()
    request_id = c.core.pass_call("IN-1")
    c.sent()
    [failed] = c.feed(result(request_id, {"code": "409", "message": "Call already answered"}))
    assert isinstance(failed, RequestFailed)
    assert (failed.code, failed.call_gone) == (409, False)
    assert c.core.live_call_ids == {"IN-1"}
    c.core.end("IN-1", "busy")  # still a call of the session
    assert c.sent_one()["method"] == "calling.end"


def test_a_pass_answered_gone_is_a_gone_call_not_a_passed_one() -> None:
    c = inbound()
    request_id = c.core.pass_call("IN-1")
    c.sent()
    events = c.feed(error(request_id, 404, "Call not found"))
    assert events[-1] == CallLost(call_id="IN-1", gone=True)
    assert c.core.live_call_ids == frozenset()


def test_pass_through_execute_naming_the_call_releases_it_too() -> None:
    c = inbound()
    request_id = c.core.execute("calling.pass", {}, call_id="IN-1")
    c.sent()
    events = c.feed(ok(request_id))
    assert CallLost(call_id="IN-1", passed=True) in events
    assert c.core.live_call_ids == frozenset()


def test_pass_without_naming_the_call_releases_nothing() -> None:
    c = inbound()
    params: dict[str, Any] = {"node_id": "NODE-2", "call_id": "IN-1"}
    request_id = c.core.execute("calling.pass", params)
    c.sent()
    events = c.feed(ok(request_id))
    assert [type(e) for e in events] == [RequestSucceeded]
    assert c.core.live_call_ids == {"IN-1"}


def test_actions_of_a_passed_call_end_with_it() -> None:
    c = inbound()
    c.feed(ok(c.core.answer("IN-1")))  # the server would refuse this pass; the core follows it
    c.sent()
    start_id, control_id = c.core.start_action("IN-1", "record", {"record": {"audio": {}}})
    c.sent()
    c.feed(ok(start_id))
    pass_id = c.core.pass_call("IN-1")
    c.sent()
    events = c.feed(ok(pass_id))
    ended = [e for e in events if isinstance(e, ActionStateChanged)]
    assert [(e.control_id, e.state, e.done) for e in ended] == [(control_id, "call_ended", True)]
    assert events[-1] == CallLost(call_id="IN-1", passed=True)


def test_pass_call_of_an_unknown_call_queues_nothing() -> None:
    c = inbound()
    with pytest.raises(LocalProtocolError, match="NOPE"):
        c.core.pass_call("NOPE")
    assert c.sent() == []
