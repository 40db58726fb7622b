"""Client core, dials: validation, every event order, refusal, timeout, cancel, tombstones."""

from __future__ import annotations

from typing import Any

import pytest
from client_frames import PHONE_A, PHONE_B, PHONE_C, Client, ended, error, ok, result

from relay_proto import (
    ActionStateChanged,
    CallInfo,
    CallLost,
    CallState,
    CallStateChanged,
    DialAnswered,
    DialFailed,
    DialFailureCause,
    DialTimedOut,
    Leg,
    LocalProtocolError,
    MaxDurationReached,
    PlayStateChanged,
    UnknownState,
    UnreadableEvent,
)


def ready(**kwargs: Any) -> Client:
    c = Client(**kwargs)
    c.connect()
    return c


def leg(
    call_id: str, state: CallState, end_reason: str | None = None, device: Any = PHONE_A
) -> Leg:
    return Leg(call_id=call_id, node_id="NODE-1", device=device, state=state, end_reason=end_reason)


def changed(
    call_id: str,
    state: CallState,
    previous: CallState | None,
    *,
    tag: str | None = "tag1",
    end_reason: str | None = None,
) -> tuple[str, CallState, CallState | None, str | None, str | None]:
    return (call_id, state, previous, tag, end_reason)


def summary(events: list[Any]) -> list[Any]:
    """CallStateChanged reduced to a tuple; other events kept as they are."""
    return [
        (e.call_id, e.state, e.previous, e.tag, e.end_reason)
        if isinstance(e, CallStateChanged)
        else e
        for e in events
    ]


# ---------------------------------------------------------------------------- the request


def test_dial_frame_with_every_option() -> None:
    c = ready()
    tag, frame = c.dial(
        [[PHONE_A], (PHONE_B, PHONE_C)],
        max_duration=60,
        region="us-east",
        node_id="NODE-9",
        max_price_per_minute=0.5,
        dial_timeout=30,
    )
    assert tag == "tag1"
    assert frame == {
        "jsonrpc": "2.0",
        "id": "r2",
        "method": "calling.dial",
        "params": {
            "tag": "tag1",
            "devices": [[PHONE_A], [PHONE_B, PHONE_C]],
            "max_duration": 60,
            "region": "us-east",
            "node_id": "NODE-9",
            "max_price_per_minute": 0.5,
        },
    }
    assert c.core.pending_dials == {"tag1"}
    assert c.core.next_deadline() == 30


def test_dial_with_own_tag_and_tag_reuse_refused() -> None:
    c = ready(tombstone_grace=10)
    tag, frame = c.dial(tag="mine")
    assert tag == "mine"
    assert frame["params"]["tag"] == "mine"
    with pytest.raises(LocalProtocolError, match="already in use"):
        c.core.dial([[PHONE_A]], tag="mine", now=0)
    assert c.sent() == []
    # Still refused while the tag is a tombstone; free again once it has expired.
    c.feed(error(frame["id"], -32000, "no"))
    with pytest.raises(LocalProtocolError, match="already in use"):
        c.core.dial([[PHONE_A]], tag="mine", now=0)
    c.tick(10)
    assert c.dial(tag="mine")[0] == "mine"


SIP: dict[str, Any] = {"type": "sip", "params": {"to": "sip:a@example.com", "from": "sips:b@x"}}


def _phone(**params: Any) -> dict[str, Any]:
    return {"type": "phone", "params": {**PHONE_A["params"], **params}}


def _sip(**params: Any) -> dict[str, Any]:
    return {"type": "sip", "params": {**SIP["params"], **params}}


@pytest.mark.parametrize(
    ("devices", "kwargs", "match"),
    [
        ({"type": "phone"}, {}, "devices"),
        ("+15550000002", {}, "devices"),
        ([], {}, "at least one group"),
        ([[]], {}, r"devices\[0\]"),
        ([PHONE_A], {}, r"devices\[0\]"),
        ([[PHONE_A], "x"], {}, r"devices\[1\]"),
        ([["x"]], {}, "a device must be an object"),
        ([[{"params": {}}]], {}, "type"),
        ([[{"type": "phone"}]], {}, "params"),
        ([[_phone(to_number="5550000002")]], {}, "E.164"),
        ([[_phone(to_number="+05550000002")]], {}, "E.164"),
        ([[_phone(from_number="+1555000000200000")]], {}, "E.164"),
        ([[{"type": "phone", "params": {"from_number": "+15550000001"}}]], {}, "to_number"),
        ([[_phone(timeout=0)]], {}, "timeout"),
        ([[_phone(timeout=1.5)]], {}, "timeout"),
        ([[_phone(timeout=True)]], {}, "timeout"),
        ([[_phone(max_duration=-1)]], {}, "max_duration"),
        ([[_sip(to="a@example.com")]], {}, "sip"),
        ([[_sip(to="sip:")]], {}, "sip"),
        ([[_sip(**{"from": "sip:has space@x"})]], {}, "sip"),
        ([[{"type": "sip", "params": {"to": "sip:a@x"}}]], {}, "from"),
        ([[_sip(timeout=-5)]], {}, "timeout"),
        ([[_sip(headers={"X-A": "1"})]], {}, "headers"),
        ([[_sip(headers=[{"name": "Y-A", "value": "1"}])]], {}, "X-"),
        ([[_sip(headers=[{"name": "X-", "value": "1"}])]], {}, "X-"),
        ([[_sip(headers=[{"name": "X-A"}])]], {}, "name"),
        ([[_sip(headers=[{"name": "X-A", "value": 1}])]], {}, "value"),
        ([[_sip(headers=["X-A: 1"])]], {}, "name"),
        ([[{"type": "webrtc", "params": {"x": {1: 2}}}]], {}, "keys"),
        ([[{"type": "webrtc", "params": {"x": float("inf")}}]], {}, "finite"),
        ([[{"type": "webrtc", "params": {"x": object()}}]], {}, "JSON"),
        ([[PHONE_A]], {"max_duration": 0}, "max_duration"),
        ([[PHONE_A]], {"max_duration": -3}, "max_duration"),
        ([[PHONE_A]], {"max_duration": True}, "max_duration"),
        ([[PHONE_A]], {"max_duration": 1.5}, "max_duration"),
        ([[PHONE_A]], {"region": ""}, "region"),
        ([[PHONE_A]], {"node_id": 3}, "node_id"),
        ([[PHONE_A]], {"max_price_per_minute": -1}, "max_price"),
        ([[PHONE_A]], {"dial_timeout": 0}, "dial_timeout"),
        ([[PHONE_A]], {"tag": ""}, "tag"),
    ],
)
def test_dial_validation_errors_queue_nothing(devices: Any, kwargs: Any, match: str) -> None:
    c = ready()
    with pytest.raises(LocalProtocolError, match=match):
        c.core.dial(devices, now=0, **kwargs)
    assert c.sent() == []
    assert c.core.pending_dials == frozenset()
    assert c.core.pending_request_count == 0


def test_valid_devices_are_copied_and_passed_through() -> None:
    c = ready()
    headers = [{"name": "X-Trace", "value": "1"}]
    webrtc = {"type": "webrtc", "params": {"to": "u", "n": [1, 2.5, None, True]}, "extra": "k"}
    sip = _sip(headers=headers, from_name="Bob", timeout=20)
    _, frame = c.dial([[_phone(timeout=30, max_duration=100)], [sip, webrtc, SIP]])
    assert frame["params"]["devices"] == [
        [_phone(timeout=30, max_duration=100)],
        [sip, webrtc, SIP],
    ]
    headers.append({"name": "X-Late", "value": "2"})
    assert len(sip["params"]["headers"]) == 2  # the caller's own object
    assert frame["params"]["devices"][1][0]["params"]["headers"] == [
        {"name": "X-Trace", "value": "1"}
    ]


# ---------------------------------------------------------------------------- answers


def test_single_device_answers() -> None:
    c = ready()
    tag, frame = c.dial(max_duration=None)
    assert c.feed(ok(frame["id"], "Dialing")) == []
    assert c.dial_event(tag, "dialing") == []
    assert summary(c.state("CALL-1", "created")) == [changed("CALL-1", CallState.CREATED, None)]
    assert summary(c.state("CALL-1", "ringing")) == [
        changed("CALL-1", CallState.RINGING, CallState.CREATED)
    ]
    [state] = c.state("CALL-1", "answered")
    assert isinstance(state, CallStateChanged)
    assert state.timestamp == 1721930000.5
    [answered] = c.dial_event(tag, "answered", call_id="CALL-1")
    assert answered == DialAnswered(
        tag=tag,
        call=CallInfo(
            call_id="CALL-1",
            node_id="NODE-1",
            tag=tag,
            device=PHONE_A,
            direction="outbound",
            state=CallState.ANSWERED,
        ),
        legs=(leg("CALL-1", CallState.ANSWERED),),
    )
    assert c.extra == []
    assert c.core.pending_dials == frozenset()
    assert c.core.live_call_ids == {"CALL-1"}
    assert c.core.get_call("CALL-1") == answered.call
    assert c.core.get_call("nope") is None
    # Duplicates after the fact change nothing; the tag stays reserved for the grace period.
    assert c.dial_event(tag, "answered", call_id="CALL-1") == []
    assert c.state("CALL-1", "answered") == []
    assert c.state("CALL-1", "ringing") == []
    assert c.extra == []
    assert summary(c.state("CALL-1", "ended", end_reason="hangup")) == [
        changed("CALL-1", CallState.ENDED, CallState.ANSWERED, end_reason="hangup")
    ]
    assert c.core.live_call_ids == frozenset()
    assert c.state("CALL-1", "ended") == []


def test_dial_winner_as_string_and_no_device() -> None:
    c = ready()
    tag, frame = c.dial()
    c.feed(ok(frame["id"]))
    inner = {
        "tag": tag,
        "node_id": "N",
        "dial_state": "answered",
        "call": {"call_id": "CALL-1", "node_id": "NODE-1", "dial_winner": "true"},
    }
    *_, answered = c.event("calling.call.dial", inner)
    assert isinstance(answered, DialAnswered)
    assert answered.call.device == {}


def test_serial_failover() -> None:
    c = ready()
    tag, frame = c.dial([[PHONE_A], [PHONE_B]])
    c.feed(ok(frame["id"]))
    c.state("A", "created")
    c.state("A", "ended", end_reason="busy")
    assert c.extra == []  # no hang-up for a leg that ended by itself
    c.state("B", "created", device=PHONE_B)
    c.state("B", "ringing", device=PHONE_B)
    c.state("B", "answered", device=PHONE_B)
    [answered] = c.dial_event(tag, "answered", call_id="B")
    assert isinstance(answered, DialAnswered)
    assert answered.call.call_id == "B"
    assert answered.legs == (
        leg("A", CallState.ENDED, "busy"),
        leg("B", CallState.ANSWERED, device=PHONE_B),
    )
    assert c.extra == []


@pytest.mark.parametrize("dial_event_first", [True, False])
def test_parallel_race_loser_cancelled_by_the_server(dial_event_first: bool) -> None:
    c = ready()
    tag, frame = c.dial([[PHONE_A, PHONE_B]])
    c.feed(ok(frame["id"]))
    for call_id in ("A", "B"):
        c.state(call_id, "created")
        c.state(call_id, "ringing")
    c.state("B", "answered")
    if dial_event_first:
        [answered] = c.dial_event(tag, "answered", call_id="B")
        assert summary(c.state("A", "ended", end_reason="cancel")) == [
            ("A", CallState.ENDED, CallState.RINGING, "tag1", "cancel")
        ]  # resolved: reported as leg progress only
    else:
        assert summary(c.state("A", "ended", end_reason="cancel")) == [
            changed("A", CallState.ENDED, CallState.RINGING, end_reason="cancel")
        ]
        [answered] = c.dial_event(tag, "answered", call_id="B")
    assert isinstance(answered, DialAnswered)
    assert answered.call.call_id == "B"
    assert c.extra == []
    assert c.core.live_call_ids == {"B"}


def test_parallel_loser_that_answers_too_is_hung_up() -> None:
    c = ready()
    tag, frame = c.dial([[PHONE_A, PHONE_B]])
    c.feed(ok(frame["id"]))
    c.state("A", "answered")
    c.state("B", "answered")
    events = c.dial_event(tag, "answered", call_id="B")
    assert [type(e) for e in events] == [DialAnswered]
    [hangup] = c.extra
    assert ended(hangup, "A", "hangup")
    # Only once; its later states are reported as leg progress, never as a call.
    assert c.state("A", "answered") == []
    assert c.extra == []
    [progress] = c.state("A", "ended")
    assert isinstance(progress, CallStateChanged)
    assert (progress.call_id, progress.state) == ("A", CallState.ENDED)
    # A second "winner" for the same dial is hung up too.
    assert c.dial_event(tag, "answered", call_id="C") == []
    [hangup] = c.extra
    assert ended(hangup, "C", "hangup")
    assert c.core.live_call_ids == {"B"}


def test_all_devices_fail() -> None:
    c = ready()
    tag, frame = c.dial([[PHONE_A], [PHONE_B]])
    c.feed(ok(frame["id"]))
    c.state("A", "created")
    c.state("A", "ended", end_reason="noAnswer")
    c.state("B", "created", device=PHONE_B)
    c.state("B", "ended", end_reason="decline", device=PHONE_B)
    [failed] = c.dial_event(tag, "failed", reason="all devices failed", source="server")
    assert failed == DialFailed(
        tag=tag,
        cause=DialFailureCause.FAILED,
        code=None,
        message="every device failed",
        reason="all devices failed",
        source="server",
        legs=(leg("A", CallState.ENDED, "noAnswer"), leg("B", CallState.ENDED, "decline", PHONE_B)),
    )
    assert c.extra == []
    assert c.core.pending_dials == frozenset()
    assert c.dial_event(tag, "failed") == []  # a duplicate
    assert c.tick(1000) == []


def test_failed_without_reason_ends_legs_still_up() -> None:
    c = ready()
    tag, frame = c.dial()
    c.feed(ok(frame["id"]))
    c.state("A", "ringing")
    [failed] = c.dial_event(tag, "failed")
    assert isinstance(failed, DialFailed)
    assert (failed.reason, failed.source) == (None, None)
    [hangup] = c.extra
    assert ended(hangup, "A", "cancel")


def test_dial_event_before_state_event() -> None:
    c = ready()
    tag, frame = c.dial()
    c.feed(ok(frame["id"]))
    c.state("CALL-1", "created")
    c.state("CALL-1", "ringing")
    events = c.dial_event(tag, "answered", call_id="CALL-1")
    assert summary(events[:1]) == [changed("CALL-1", CallState.ANSWERED, CallState.RINGING)]
    answered = events[1]
    assert isinstance(answered, DialAnswered)
    assert answered.call.state is CallState.ANSWERED
    assert answered.legs == (leg("CALL-1", CallState.ANSWERED),)
    # The late state event produces nothing.
    assert c.state("CALL-1", "answered") == []
    assert c.extra == []


def test_dial_event_before_any_state_event_and_before_the_result() -> None:
    c = ready()
    tag, frame = c.dial()
    events = c.dial_event(tag, "answered", call_id="CALL-1")
    assert summary(events[:1]) == [changed("CALL-1", CallState.ANSWERED, None)]
    assert isinstance(events[1], DialAnswered)
    assert c.state("CALL-1", "created") == []
    assert c.state("CALL-1", "answered") == []
    assert c.feed(ok(frame["id"], "Dialing")) == []
    assert c.core.live_call_ids == {"CALL-1"}


def test_events_before_the_result_then_refused_is_ignored_once_resolved() -> None:
    c = ready()
    tag, frame = c.dial()
    c.state("CALL-1", "answered")
    *_, answered = c.dial_event(tag, "answered", call_id="CALL-1")
    assert isinstance(answered, DialAnswered)
    assert c.feed(result(frame["id"], {"code": "500", "message": "late"})) == []
    assert c.core.live_call_ids == {"CALL-1"}


def test_winner_that_already_ended_is_not_kept() -> None:
    c = ready()
    tag, frame = c.dial()
    c.feed(ok(frame["id"]))
    c.state("CALL-1", "answered")
    c.state("CALL-1", "ended", end_reason="hangup")
    *_, answered = c.dial_event(tag, "answered", call_id="CALL-1")
    assert isinstance(answered, DialAnswered)
    assert answered.call.state is CallState.ENDED
    assert c.core.live_call_ids == frozenset()


def test_duplicates_and_backward_moves_are_dropped() -> None:
    c = ready()
    tag, frame = c.dial()
    c.feed(ok(frame["id"]))
    assert len(c.state("A", "ringing")) == 1
    assert c.state("A", "ringing") == []
    assert c.state("A", "created") == []
    assert c.dial_event(tag, "dialing") == []
    assert len(c.state("A", "answered")) == 1


@pytest.mark.parametrize(
    "inner",
    [
        {"tag": "tag1", "dial_state": "exploded"},
        {"tag": "tag1", "dial_state": "answered"},
        {"tag": "tag1", "dial_state": "answered", "call": {"call_id": "X"}},
        {"tag": "tag1", "dial_state": "answered", "call": {"node_id": "N"}},
        {"tag": "", "dial_state": "failed"},
        {"dial_state": "failed"},
        {"tag": "tag1"},
    ],
)
def test_malformed_dial_events(inner: dict[str, Any]) -> None:
    """Reported (an unknown dial_state as ``UnknownState``, the rest as ``UnreadableEvent``),
    never raised; the dial keeps waiting (its deadline still holds)."""
    c = ready()
    c.dial()
    [report] = c.event("calling.call.dial", inner)
    expected = UnknownState if inner.get("dial_state") == "exploded" else UnreadableEvent
    assert isinstance(report, expected)
    assert c.core.pending_dials == {"tag1"}


@pytest.mark.parametrize(
    "inner",
    [
        {"node_id": "N", "call_state": "ringing", "tag": "tag1"},
        {"call_id": "C", "call_state": "ringing", "tag": "tag1"},
        {"call_id": "C", "node_id": "N", "tag": "tag1"},
        {"call_id": "C", "node_id": "N", "call_state": "dancing", "tag": "tag1"},
    ],
)
def test_malformed_state_events(inner: dict[str, Any]) -> None:
    c = ready()
    tag, _ = c.dial()
    [report] = c.event("calling.call.state", inner)
    unknown = inner.get("call_state") == "dancing"
    assert isinstance(report, UnknownState if unknown else UnreadableEvent)
    assert c.extra == []  # acked (``event`` checks it), nothing else sent
    [state] = c.state("C", "ringing", tag=tag)
    assert isinstance(state, CallStateChanged)
    assert state.previous is None


# ---------------------------------------------------------------------------- refusal


@pytest.mark.parametrize(
    "reply",
    [
        lambda rid: error(rid, -32602, "invalid devices", data={"f": 1}),
        lambda rid: result(rid, {"code": "403", "message": "forbidden"}),
    ],
)
def test_dial_refused_ends_legs_seen_and_tombstones_the_tag(reply: Any) -> None:
    c = ready(tombstone_grace=60)
    tag, frame = c.dial([[PHONE_A, PHONE_B]])
    c.state("A", "ringing")  # the server created a leg after all
    c.state("B", "ended", end_reason="error")
    [failed] = c.feed(reply(frame["id"]))
    assert isinstance(failed, DialFailed)
    assert failed.cause is DialFailureCause.REFUSED
    assert (failed.code, failed.message) in [(-32602, "invalid devices"), (403, "forbidden")]
    assert failed.legs == (leg("A", CallState.RINGING), leg("B", CallState.ENDED, "error"))
    [hangup] = c.sent()
    assert ended(hangup, "A", "cancel")
    assert c.core.pending_dials == frozenset()
    # A leg appearing later under the tag is ended on sight and never becomes a call.
    assert [e.state for e in c.state("C", "ringing")] == [CallState.RINGING]  # type: ignore[union-attr]
    [hangup] = c.extra
    assert ended(hangup, "C", "cancel")
    assert [type(e) for e in c.state("D", "answered")] == [CallStateChanged]
    [hangup] = c.extra
    assert ended(hangup, "D", "hangup")
    assert c.dial_event(tag, "answered", call_id="E") == []
    [hangup] = c.extra
    assert ended(hangup, "E", "hangup")
    assert c.dial_event(tag, "failed") == []
    assert c.core.live_call_ids == frozenset()
    # The hang-up replies are internal: no events, 404 included.
    assert c.feed(error(hangup["id"], 404, "gone")) == []


# ---------------------------------------------------------------------------- timeout


def test_dial_timeout_cancels_ringing_legs() -> None:
    c = ready(tombstone_grace=30)
    tag, frame = c.dial([[PHONE_A, PHONE_B, PHONE_C]], dial_timeout=20)
    c.feed(ok(frame["id"]))
    c.state("A", "ringing")
    c.state("B", "created")
    c.state("C", "ended", end_reason="busy")
    assert c.tick(19.9) == []
    assert c.core.next_deadline() == 20
    [timed_out] = c.tick(20)
    assert timed_out == DialTimedOut(
        tag=tag,
        legs=(
            leg("A", CallState.RINGING),
            leg("B", CallState.CREATED),
            leg("C", CallState.ENDED, "busy"),
        ),
    )
    assert isinstance(timed_out, DialTimedOut)
    out = c.sent()
    assert len(out) == 2
    assert ended(out[0], "A", "cancel")
    assert ended(out[1], "B", "cancel")
    assert c.core.next_deadline() == 50  # the tombstone
    # The late winner is hung up, never handed over.
    assert [type(e) for e in c.state("A", "answered")] == [CallStateChanged]
    assert c.extra == []  # already being ended
    assert c.dial_event(tag, "answered", call_id="A") == []
    assert c.extra == []
    assert c.dial_event(tag, "answered", call_id="D") == []
    [hangup] = c.extra
    assert ended(hangup, "D", "hangup")
    assert c.core.live_call_ids == frozenset()
    # After the grace period the tag is forgotten.
    assert c.tick(50) == []
    assert c.core.next_deadline() is None
    assert c.state("F", "answered", tag=tag) == []
    assert c.extra == []


def test_dial_timeout_while_disconnected_sends_nothing() -> None:
    c = Client()
    tag = c.core.dial([[PHONE_A]], now=0, dial_timeout=5)
    assert c.core.pending_request_count == 1
    [timed_out] = c.tick(5)
    assert timed_out == DialTimedOut(tag=tag, legs=())
    assert c.core.pending_request_count == 0
    c.connect()
    assert c.sent() == []


def test_answer_beats_the_deadline() -> None:
    c = ready()
    tag, frame = c.dial(dial_timeout=10)
    c.feed(ok(frame["id"]))
    c.dial_event(tag, "answered", call_id="CALL-1")
    assert c.core.next_deadline() == 60  # the tombstone; the dial deadline is gone
    assert c.tick(10) == []
    assert c.sent() == []


# ---------------------------------------------------------------------------- cancel


def test_cancel_a_pending_dial() -> None:
    c = ready()
    tag, frame = c.dial()
    c.state("A", "ringing")
    assert c.core.cancel_dial(tag, now=1)
    [hangup] = c.sent()
    assert ended(hangup, "A", "cancel")
    assert not c.core.cancel_dial(tag, now=1)
    assert not c.core.cancel_dial("unknown", now=1)
    assert c.feed(ok(frame["id"])) == []
    assert c.tick(1000) == []  # neither a timeout nor anything else comes out


def test_cancel_an_answered_dial_not_yet_handed_on() -> None:
    c = ready()
    tag, _ = c.answered_call("CALL-1")
    c.sent()
    _rid, control_id = c.core.play("CALL-1", [{"type": "tts", "text": "hi"}])
    c.sent()
    assert c.core.cancel_dial(tag, now=1)
    [hangup] = c.sent()
    assert ended(hangup, "CALL-1", "hangup")
    assert c.core.live_call_ids == frozenset()
    # Its play is still followed until the leg ends: nothing is left unresolved.
    [playing] = c.event("calling.call.play", {"control_id": control_id, "state": "playing"})
    assert isinstance(playing, PlayStateChanged)
    play_end, changed = c.state("CALL-1", "ended")
    assert isinstance(play_end, ActionStateChanged)
    assert (play_end.control_id, play_end.state, play_end.done) == (control_id, "call_ended", True)
    assert isinstance(changed, CallStateChanged)


def test_cancel_is_refused_once_the_winner_is_ending() -> None:
    c = ready()
    tag, _ = c.answered_call("CALL-1")
    c.state("CALL-1", "ending")
    assert not c.core.cancel_dial(tag, now=1)
    c.state("CALL-1", "ended")
    assert not c.core.cancel_dial(tag, now=1)
    assert c.sent() == []


def test_cancel_a_dial_that_was_never_sent() -> None:
    c = Client()
    tag = c.core.dial([[PHONE_A]], now=0)
    assert c.core.cancel_dial(tag, now=0)
    c.connect()
    assert c.sent() == []


# ---------------------------------------------------------------------------- max_duration


def test_max_duration_ends_the_call() -> None:
    c = ready()
    c.now = 100
    c.answered_call("CALL-1", max_duration=30)
    c.sent()
    assert c.core.next_deadline() == 130
    [reached] = c.tick(130)
    assert isinstance(reached, MaxDurationReached)
    [hangup] = c.sent()
    assert reached == MaxDurationReached(call_id="CALL-1", request_id=hangup["id"])
    assert ended(hangup, "CALL-1", "hangup")
    assert c.tick(1000) == []
    assert c.feed(ok(hangup["id"])) == []
    c.state("CALL-1", "ended", end_reason="max_duration")
    assert c.core.live_call_ids == frozenset()


def test_max_duration_timer_is_dropped_when_the_call_ends_first() -> None:
    c = ready(tombstone_grace=1)
    c.answered_call("CALL-1", max_duration=30)
    c.state("CALL-1", "ended")
    assert c.tick(30) == []
    assert c.sent() == []


def test_max_duration_hangup_answered_404_loses_the_call() -> None:
    c = ready()
    c.answered_call("CALL-1", max_duration=5)
    c.sent()
    c.tick(5)
    hangup = c.sent_one()
    assert c.feed(error(hangup["id"], 410, "gone")) == [CallLost(call_id="CALL-1", gone=True)]
    assert c.core.live_call_ids == frozenset()


def test_max_duration_timer_goes_with_a_call_that_is_gone() -> None:
    c = ready(tombstone_grace=1)
    c.answered_call("CALL-1", max_duration=30)
    c.sent()
    request_id = c.core.answer("CALL-1")
    c.sent()
    events = c.feed(error(request_id, 404, "gone"))
    assert events[-1] == CallLost(call_id="CALL-1", gone=True)
    assert c.tick(30) == []  # the tombstone went; no max_duration hang-up for a gone call
    assert c.sent() == []
    assert c.core.next_deadline() is None


def test_stale_timers_are_compacted_away() -> None:
    # Each answered dial cancels its 120 s deadline; once the tombstones are gone nothing
    # is left to fire (the heap's own compaction is tested with TimerQueue).
    c = ready(tombstone_grace=0.01)
    for index in range(200):
        call_id = f"CALL-{index}"
        tag, _ = c.answered_call(call_id)
        c.state(call_id, "ended", tag=tag)
        c.tick(c.now + 0.02)  # the tombstone expires; the deadline is far away
        c.sent()
    assert c.core.live_call_ids == frozenset()
    assert c.core.next_deadline() is None  # every one of them was stale


def test_a_winner_already_ending_gets_no_max_duration_timer() -> None:
    # The callee hangs up at once: the leg's ``ending`` comes before the dial's
    # ``answered``, and its ``ended`` is late. The max_duration deadline must not fire a
    # hang-up for a call that is already ending (nor fail looking for a reason).
    c = ready()
    tag, frame = c.dial(max_duration=10)
    c.feed(ok(frame["id"], "Dialing"))
    for state in ("created", "ringing", "answered", "ending"):
        c.state("CALL-1", state, tag=tag)
    c.dial_event(tag, "answered", call_id="CALL-1")
    assert c.core.get_call("CALL-1") is not None
    c.sent()
    assert c.tick(20.0) == []
    assert c.sent() == []
