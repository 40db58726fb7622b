"""Client core, calls after the dial: play, commands, gone calls, inbound calls."""

from __future__ import annotations

from typing import Any

import pytest
from client_frames import PHONE_A, Client, error, ok, result

from relay_proto import (
    CallInfo,
    CallLost,
    CallState,
    CallStateChanged,
    InboundCall,
    LocalProtocolError,
    PlayState,
    PlayStateChanged,
    RequestFailed,
    RequestSucceeded,
    UnknownState,
    UnreadableEvent,
)


def with_call() -> Client:
    c = Client()
    c.connect()
    c.answered_call("CALL-1")
    c.sent()
    return c


def play_event(c: Client, control_id: str, state: str) -> list[Any]:
    return c.event(
        "calling.call.play", {"call_id": "CALL-1", "control_id": control_id, "state": state}
    )


# ---------------------------------------------------------------------------- play


def test_play_flat_and_nested_media() -> None:
    c = with_call()
    media = [
        {"type": "tts", "text": "Hello!"},
        {"type": "audio", "params": {"url": "https://x/a.mp3"}},
        {"type": "silence", "duration": 1.5},
        {"type": "ringtone", "params": {"name": "us", "duration": 3}},
    ]
    rid, control_id = c.core.play("CALL-1", media, volume=-2.5, direction="both", loop=2)
    assert c.sent_one() == {
        "jsonrpc": "2.0",
        "id": rid,
        "method": "calling.play",
        "params": {
            "node_id": "NODE-1",
            "call_id": "CALL-1",
            "control_id": control_id,
            "play": [
                {"type": "tts", "params": {"text": "Hello!"}},
                {"type": "audio", "params": {"url": "https://x/a.mp3"}},
                {"type": "silence", "params": {"duration": 1.5}},
                {"type": "ringtone", "params": {"name": "us", "duration": 3}},
            ],
            "volume": -2.5,
            "direction": "both",
            "loop": 2,
        },
    }
    assert control_id != rid
    [done] = c.feed(ok(rid, "Playing"))
    assert isinstance(done, RequestSucceeded)
    assert done.method == "calling.play"


@pytest.mark.parametrize(
    ("media", "kwargs", "match"),
    [
        ([], {}, "media"),
        ({"type": "tts", "text": "x"}, {}, "media"),
        ("hello", {}, "media"),
        (["hello"], {}, r"media\[0\]"),
        ([{"text": "x"}], {}, "type"),
        ([{"type": "tts"}], {}, "text"),
        ([{"type": "tts", "text": ""}], {}, "text"),
        ([{"type": "audio", "params": {}}], {}, "url"),
        ([{"type": "silence", "duration": 0}], {}, "duration"),
        ([{"type": "silence", "duration": "1"}], {}, "duration"),
        ([{"type": "tts", "params": {"text": "x"}, "text": "y"}], {}, "mixes"),
        ([{"type": "tts", "params": "x"}], {}, "params"),
        ([{"type": "tts", "text": "x"}], {"volume": float("nan")}, "volume"),
        ([{"type": "tts", "text": "x"}], {"volume": True}, "volume"),
        ([{"type": "tts", "text": "x"}], {"direction": ""}, "direction"),
        ([{"type": "tts", "text": "x"}], {"loop": -1}, "loop"),
        ([{"type": "tts", "text": "x"}], {"volume": 40.5}, "volume"),
        ([{"type": "tts", "text": "x"}], {"volume": -41}, "volume"),
    ],
)
def test_play_validation(media: Any, kwargs: Any, match: str) -> None:
    c = with_call()
    with pytest.raises(LocalProtocolError, match=match):
        c.core.play("CALL-1", media, **kwargs)
    assert c.sent() == []


def test_play_events_dedupe_and_terminal() -> None:
    c = with_call()
    rid, control_id = c.core.play("CALL-1", [{"type": "tts", "text": "x"}])
    c.sent()
    # Events may come before the reply.
    [playing] = play_event(c, control_id, "playing")
    assert playing == PlayStateChanged(
        call_id="CALL-1", control_id=control_id, state=PlayState.PLAYING
    )
    assert play_event(c, control_id, "playing") == []
    c.feed(ok(rid))
    assert [e.state for e in play_event(c, control_id, "paused")] == [PlayState.PAUSED]
    assert [e.state for e in play_event(c, control_id, "playing")] == [PlayState.PLAYING]
    assert [e.state for e in play_event(c, control_id, "finished")] == [PlayState.FINISHED]
    assert play_event(c, control_id, "finished") == []
    assert play_event(c, control_id, "error") == []
    _, second = c.core.play("CALL-1", [{"type": "tts", "text": "x"}])
    c.sent()
    assert [e.state for e in play_event(c, second, "error")] == [PlayState.ERROR]
    [unknown] = play_event(c, second, "exploded")  # carried, changes nothing
    assert isinstance(unknown, UnknownState)
    assert (unknown.key, unknown.raw_state, unknown.control_id) == ("state", "exploded", second)
    c.sent()
    [unreadable] = c.event("calling.call.play", {"state": "playing"})
    assert isinstance(unreadable, UnreadableEvent)
    assert "control_id" in unreadable.reason


def test_failed_play_is_forgotten() -> None:
    c = with_call()
    rid, control_id = c.core.play("CALL-1", [{"type": "tts", "text": "x"}])
    c.sent()
    [failed] = c.feed(result(rid, {"code": "400", "message": "bad media"}))
    assert failed == RequestFailed(
        request_id=rid, method="calling.play", code=400, message="bad media"
    )
    assert play_event(c, control_id, "playing") == []


def test_plays_end_with_their_call() -> None:
    c = with_call()
    _, control_id = c.core.play("CALL-1", [{"type": "tts", "text": "x"}])
    c.sent()
    c.state("CALL-1", "ended")
    assert play_event(c, control_id, "finished") == []


@pytest.mark.parametrize(
    ("action", "kwargs", "params"),
    [
        ("pause", {}, {}),
        ("resume", {}, {}),
        ("stop", {"volume": 3}, {}),
        ("volume", {"volume": 3}, {"volume": 3.0}),
    ],
)
def test_play_control(action: str, kwargs: Any, params: dict[str, Any]) -> None:
    c = with_call()
    rid = c.core.play_control("CALL-1", "ctl-1", action, **kwargs)
    assert c.sent_one() == {
        "jsonrpc": "2.0",
        "id": rid,
        "method": f"calling.play.{action}",
        "params": {"node_id": "NODE-1", "call_id": "CALL-1", "control_id": "ctl-1", **params},
    }


@pytest.mark.parametrize(
    ("call_id", "control_id", "action", "kwargs"),
    [
        ("CALL-1", "ctl", "rewind", {}),
        ("CALL-1", "ctl", "volume", {}),
        ("CALL-1", "", "pause", {}),
        ("CALL-2", "ctl", "pause", {}),
    ],
)
def test_play_control_validation(call_id: str, control_id: str, action: str, kwargs: Any) -> None:
    c = with_call()
    with pytest.raises(LocalProtocolError):
        c.core.play_control(call_id, control_id, action, **kwargs)
    assert c.sent() == []


# ---------------------------------------------------------------------------- commands


def test_end_answer_execute() -> None:
    c = with_call()
    rid = c.core.end("CALL-1")
    assert c.sent_one()["params"] == {"node_id": "NODE-1", "call_id": "CALL-1", "reason": "hangup"}
    c.core.end("CALL-1", "busy")
    assert c.sent_one()["params"]["reason"] == "busy"
    with pytest.raises(LocalProtocolError):
        c.core.end("CALL-1", "")
    c.core.answer("CALL-1")
    assert c.sent_one()["method"] == "calling.answer"
    c.core.execute("calling.record", {"record": {"audio": {}}}, call_id="CALL-1")
    assert c.sent_one()["params"] == {
        "node_id": "NODE-1",
        "call_id": "CALL-1",
        "record": {"audio": {}},
    }
    for bad in [("", {}), ("x", []), ("x", {"a": {1}})]:
        with pytest.raises(LocalProtocolError):
            c.core.execute(*bad)  # type: ignore[arg-type]
    for command in (c.core.answer, c.core.end):
        with pytest.raises(LocalProtocolError, match="not a live call"):
            command("CALL-404")
    with pytest.raises(LocalProtocolError, match="not a live call"):
        c.core.execute("calling.x", {}, call_id="CALL-404")
    assert c.sent() == []
    [done] = c.feed(ok(rid))
    assert isinstance(done, RequestSucceeded)
    summary = c.state("CALL-1", "ending", end_reason="hangup")
    assert [(e.state, e.previous) for e in summary if isinstance(e, CallStateChanged)] == [
        (CallState.ENDING, CallState.ANSWERED)
    ]


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (lambda rid: result(rid, {"code": "404", "message": "Call not found"}), 404),
        (lambda rid: error(rid, 410, "Gone"), 410),
    ],
)
def test_gone_call(reply: Any, code: int) -> None:
    c = with_call()
    rid, control_id = c.core.play("CALL-1", [{"type": "tts", "text": "x"}])
    c.sent()
    events = c.feed(reply(rid))
    message = "Call not found" if code == 404 else "Gone"
    assert events == [
        RequestFailed(
            request_id=rid, method="calling.play", code=code, message=message, call_gone=True
        ),
        CallLost(call_id="CALL-1", gone=True),
    ]
    assert c.core.live_call_ids == frozenset()
    assert play_event(c, control_id, "playing") == []


def test_gone_reply_for_a_call_already_forgotten() -> None:
    c = with_call()
    first = c.core.answer("CALL-1")
    second = c.core.answer("CALL-1")
    c.sent()
    c.feed(error(first, 404, "gone"))
    [failed] = c.feed(error(second, 404, "gone"))
    assert isinstance(failed, RequestFailed)
    assert failed.call_gone


def test_non_gone_failure_of_a_call_command_keeps_the_call() -> None:
    c = with_call()
    rid = c.core.answer("CALL-1")
    c.sent()
    [failed] = c.feed(result(rid, {"code": "500"}))
    assert failed == RequestFailed(request_id=rid, method="calling.answer", code=500, message="")
    assert c.core.live_call_ids == {"CALL-1"}


# ---------------------------------------------------------------------------- inbound


def receive_params(call_id: str = "IN-1", **extra: Any) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "node_id": "NODE-2",
        "call_state": "ringing",
        "context": "office",
        "direction": "inbound",
        "device": PHONE_A,
        **extra,
    }


def test_inbound_call_receive_and_answer() -> None:
    c = Client(contexts=["office"])
    c.connect()
    inner = receive_params()
    [inbound] = c.event("calling.call.receive", inner)
    assert inbound == InboundCall(
        call=CallInfo(
            call_id="IN-1",
            node_id="NODE-2",
            tag=None,
            device=PHONE_A,
            direction="inbound",
            state=CallState.RINGING,
            context="office",
        )
    )
    assert inbound.call.raw == inner
    assert c.event("calling.call.receive", inner) == []  # a duplicate
    rid = c.core.answer("IN-1")
    assert c.sent_one() == {
        "jsonrpc": "2.0",
        "id": rid,
        "method": "calling.answer",
        "params": {"node_id": "NODE-2", "call_id": "IN-1"},
    }
    [state] = c.state("IN-1", "answered", tag=None, node_id="NODE-2")
    assert isinstance(state, CallStateChanged)
    assert state.previous is CallState.RINGING
    c.state("IN-1", "ended", tag=None, node_id="NODE-2")
    # A duplicate delivery after the end does not bring the call back.
    assert c.event("calling.call.receive", inner) == []
    assert c.core.live_call_ids == frozenset()


def test_inbound_variants() -> None:
    c = Client()
    c.connect()
    [inbound] = c.event("calling.call.receive", {"call_id": "A", "node_id": "N", "tag": "t"})
    assert isinstance(inbound, InboundCall)
    assert inbound.call.state is CallState.CREATED
    assert inbound.call.tag == "t"
    assert inbound.call.device == {}
    assert c.event("calling.call.receive", receive_params("B", call_state="ended")) == []
    assert c.event("calling.call.receive", receive_params("B")) == []
    [unknown] = c.event("calling.call.receive", receive_params("C", call_state="weird"))
    assert isinstance(unknown, UnknownState)
    assert (unknown.key, unknown.raw_state, unknown.call_id) == ("call_state", "weird", "C")
    c.sent()
    [unreadable] = c.event("calling.call.receive", {"call_id": "D"})
    assert isinstance(unreadable, UnreadableEvent)
    assert "node_id" in unreadable.reason
    c.sent()
    assert c.core.live_call_ids == {"A"}


def test_finished_calls_record_is_bounded() -> None:
    c = Client()
    for n in range(4100):
        c.core.receive(
            '{"jsonrpc":"2.0","method":"signalwire.event","params":{"event_type":'
            '"calling.call.receive","params":{"call_id":"C%d","node_id":"N","call_state":'
            '"ended"}}}'.replace("C%d", f"C{n}"),
            now=0,
        )
    [inbound] = c.event("calling.call.receive", receive_params("C0"))
    assert isinstance(inbound, InboundCall)


def test_inbound_call_is_hung_up_when_the_session_is_reset() -> None:
    c = Client(contexts=["office"])
    c.connect(protocol="proto-1")
    [inbound] = c.event("calling.call.receive", receive_params())
    assert isinstance(inbound, InboundCall)
    c.sent()
    c.core.connection_lost(now=1)
    _, events = c.connect(protocol="proto-2")
    assert CallLost(call_id="IN-1") in events
    [hangup] = c.sent()
    assert (hangup["method"], hangup["params"]["call_id"]) == ("calling.end", "IN-1")
    assert hangup["params"]["reason"] == "hangup"
