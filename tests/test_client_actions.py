"""Client core, the action machine: every verb with a control_id, transcript by transcript."""

from __future__ import annotations

from typing import Any

import pytest
from client_frames import Client, error, ok, result

from relay_proto import (
    CALL_ENDED,
    ActionResult,
    ActionStateChanged,
    CallStateChanged,
    CollectResult,
    DetectResult,
    FaxResult,
    LocalProtocolError,
    PlayState,
    PlayStateChanged,
    RecordResult,
    RecordState,
    RequestFailed,
    RequestSucceeded,
    SendDigitsResult,
    TapResult,
    UnhandledEvent,
    UnknownState,
    UnreadableEvent,
)

AUDIO: dict[str, Any] = {"record": {"audio": {"beep": True, "format": "wav", "direction": "both"}}}
DIGITS: dict[str, Any] = {"digits": {"max": 4, "terminators": "#", "digit_timeout": 3}}
PROMPT = [{"type": "tts", "params": {"text": "Press 1"}}]


def with_call() -> Client:
    c = Client()
    c.connect()
    c.answered_call("CALL-1")
    c.sent()
    return c


def start(c: Client, verb: str, params: dict[str, Any], **kwargs: Any) -> tuple[str, str]:
    rid, cid = c.core.start_action("CALL-1", verb, params, **kwargs)
    frame = c.sent_one()
    assert frame["method"] == f"calling.{verb}"
    assert frame["params"]["control_id"] == cid
    assert frame["params"]["node_id"] == "NODE-1"
    [accepted] = c.feed(ok(rid))
    assert isinstance(accepted, RequestSucceeded)
    return rid, cid


def ev(c: Client, verb_event: str, cid: str, **params: Any) -> list[Any]:
    return c.event(f"calling.call.{verb_event}", {"call_id": "CALL-1", "control_id": cid, **params})


# ---------------------------------------------------------------------------- record


def test_record_happy_path() -> None:
    c = with_call()
    rid, cid = c.core.start_action("CALL-1", "record", AUDIO)
    assert c.sent_one()["params"] == {
        "node_id": "NODE-1",
        "call_id": "CALL-1",
        "control_id": cid,
        "record": {"audio": {"beep": True, "format": "wav", "direction": "both"}},
    }
    # An event may come before the start's reply.
    [recording] = ev(c, "record", cid, state="recording")
    assert isinstance(recording, ActionStateChanged)
    assert (recording.verb, recording.state, recording.done, recording.settled) == (
        "record",
        RecordState.RECORDING,
        False,
        False,
    )
    assert recording.result is None
    assert ev(c, "record", cid, state="recording") == []  # a duplicate
    c.feed(ok(rid))
    [done] = ev(c, "record", cid, state="finished", url="https://x/r.wav", duration=4.5, size=1024)
    assert done.done
    assert done.settled
    assert done.state == "finished"
    assert done.result == RecordResult(
        verb="record", state="finished", url="https://x/r.wav", duration=4.5, size=1024
    )
    assert ev(c, "record", cid, state="finished") == []  # after the end: nothing
    assert c.core.pending_request_count == 0


def test_record_result_inside_record_object_and_no_input() -> None:
    c = with_call()
    _, cid = start(c, "record", {})
    inner = {"url": "https://x/r.mp3", "duration": 2, "size": 99}
    [done] = ev(c, "record", cid, state="finished", record=inner)
    assert done.result == RecordResult(
        verb="record", state="finished", url="https://x/r.mp3", duration=2.0, size=99
    )
    _, cid2 = start(c, "record", {"record": {"audio": {}}})
    [no_input] = ev(c, "record", cid2, state="no_input", duration=True)
    assert no_input.done
    assert isinstance(no_input.result, RecordResult)
    assert no_input.result.duration is None
    assert no_input.result.url is None


def test_record_pause_resume_stop_controls() -> None:
    c = with_call()
    _, cid = start(c, "record", AUDIO)
    for control, extra in (("pause", {"behavior": "skip"}), ("resume", None), ("stop", None)):
        rid = c.core.action_control("CALL-1", "record", cid, control, extra)
        frame = c.sent_one()
        assert frame["id"] == rid
        assert frame["method"] == f"calling.record.{control}"
        assert frame["params"] == {
            "node_id": "NODE-1",
            "call_id": "CALL-1",
            "control_id": cid,
            **(extra or {}),
        }
    with pytest.raises(LocalProtocolError, match="record has"):
        c.core.action_control("CALL-1", "record", cid, "volume")
    with pytest.raises(LocalProtocolError, match="no controls"):
        c.core.action_control("CALL-1", "send_digits", cid, "stop")


# ---------------------------------------------------------------------------- collect


def test_play_and_collect_prompt_events_do_not_end_it() -> None:
    c = with_call()
    params = {"play": PROMPT, "collect": DIGITS, "volume": 3}
    _, cid = start(c, "play_and_collect", params)
    [playing] = ev(c, "play", cid, state="playing")
    assert isinstance(playing, PlayStateChanged)
    assert (playing.verb, playing.state, playing.done) == (
        "play_and_collect",
        PlayState.PLAYING,
        False,
    )
    assert ev(c, "play", cid, state="playing") == []
    [finished] = ev(c, "play", cid, state="finished")
    assert finished.state is PlayState.FINISHED
    assert not finished.done
    [odd] = ev(c, "play", cid, state="buffering")
    assert isinstance(odd, UnknownState)
    result = {"type": "digit", "params": {"digits": "12", "terminator": "#"}}
    [got] = ev(c, "collect", cid, result=result, final=True)
    assert got.done
    assert got.settled
    assert got.state == "digit"
    assert got.result == CollectResult(
        verb="play_and_collect", state="digit", kind="digit", digits="12", terminator="#"
    )
    assert ev(c, "collect", cid, result=result) == []


def test_collect_partial_results_then_final_speech() -> None:
    c = with_call()
    _, cid = start(c, "collect", {"speech": {"hints": ["yes"]}, "partial_results": True})
    partial = {"type": "speech", "params": {"text": "ye", "confidence": 40}}
    [p1] = ev(c, "collect", cid, result=partial, final=False)
    assert not p1.done
    assert not p1.settled
    assert isinstance(p1.result, CollectResult)
    assert p1.result.final is False
    [p2] = ev(c, "collect", cid, result=partial, final=False)  # partials are all reported
    assert not p2.done
    [start_of_input] = ev(c, "collect", cid, result={"type": "start_of_input"})
    assert not start_of_input.done
    assert not start_of_input.settled
    final = {"type": "speech", "params": {"text": "yes", "confidence": 97.5}}
    [got] = ev(c, "collect", cid, result=final)
    assert got.done
    assert got.settled
    assert isinstance(got.result, CollectResult)
    assert (got.result.text, got.result.confidence, got.result.final) == ("yes", 97.5, True)


def test_continuous_collect_settles_once_and_ends_on_state() -> None:
    c = with_call()
    _, cid = start(c, "collect", {**DIGITS, "continuous": True})
    [collecting] = ev(c, "collect", cid, state="collecting")
    assert collecting.result is None
    first = {"type": "digit", "params": {"digits": "1"}}
    [one] = ev(c, "collect", cid, result=first)
    assert one.settled
    assert not one.done
    [two] = ev(c, "collect", cid, result={"type": "digit", "params": {"digits": "2"}})
    assert not two.settled
    assert not two.done
    [end] = ev(c, "collect", cid, state="finished")
    assert end.done
    assert not end.settled
    assert end.result == CollectResult(verb="collect", state="finished", kind="finished")


@pytest.mark.parametrize("kind", ["no_input", "no_match", "error"])
def test_collect_outcomes_without_input(kind: str) -> None:
    c = with_call()
    _, cid = start(c, "collect", DIGITS)
    [got] = ev(c, "collect", cid, result={"type": kind})
    assert got.done
    assert got.state == kind
    assert isinstance(got.result, CollectResult)
    assert got.result.digits is None


def test_collect_unreadable_and_unknown() -> None:
    c = with_call()
    _, cid = start(c, "collect", DIGITS)
    [bad] = ev(c, "collect", cid, result={"params": {}})
    assert isinstance(bad, UnreadableEvent)
    assert "type" in bad.reason
    [bad_state] = ev(c, "collect", cid)
    assert isinstance(bad_state, UnreadableEvent)
    [odd] = ev(c, "collect", cid, state="listening")
    assert isinstance(odd, UnknownState)
    assert odd.raw_state == "listening"
    assert odd.key == "state"
    [odd_kind] = ev(c, "collect", cid, result={"type": "dtmf-ish"})
    assert isinstance(odd_kind, UnknownState)
    assert odd_kind.key == "result.type"
    [got] = ev(c, "collect", cid, result={"type": "digit", "params": {"digits": "9"}})
    assert got.done  # the unknown ones changed nothing


def test_collect_start_input_timers_control() -> None:
    c = with_call()
    _, cid = start(c, "play_and_collect", {"play": PROMPT, "collect": DIGITS})
    c.core.action_control("CALL-1", "play_and_collect", cid, "start_input_timers")
    assert c.sent_one()["method"] == "calling.collect.start_input_timers"
    c.core.action_control("CALL-1", "play_and_collect", cid, "volume", {"volume": -6})
    frame = c.sent_one()
    assert frame["method"] == "calling.play_and_collect.volume"
    assert frame["params"]["volume"] == -6
    with pytest.raises(LocalProtocolError, match="volume"):
        c.core.action_control("CALL-1", "play_and_collect", cid, "volume", {"volume": 99})


# ---------------------------------------------------------------------------- detect


def test_detect_machine_settles_on_first_result_then_ends() -> None:
    c = with_call()
    params = {"detect": {"type": "machine", "params": {"detect_message_end": True}}, "timeout": 30}
    _, cid = start(c, "detect", params)
    [machine] = ev(c, "detect", cid, detect={"type": "machine", "params": {"event": "MACHINE"}})
    assert machine.settled
    assert not machine.done
    assert machine.result == DetectResult(
        verb="detect", state="MACHINE", kind="machine", result="MACHINE"
    )
    [ready] = ev(c, "detect", cid, detect={"type": "machine", "params": {"event": "READY"}})
    assert not ready.settled
    assert ready.result.result == "READY"
    [end] = ev(c, "detect", cid, detect={"type": "machine", "params": {"event": "finished"}})
    assert end.done
    assert not end.settled
    assert end.result == DetectResult(verb="detect", state="finished", kind="machine", result=None)


def test_detect_digit_open_set_and_error_end() -> None:
    c = with_call()
    _, cid = start(c, "detect", {"detect": {"type": "digit", "params": {"digits": "123"}}})
    [digit] = ev(c, "detect", cid, detect={"type": "digit", "params": {"event": "1#"}})
    assert digit.settled
    assert digit.state == "1#"
    [bad] = ev(c, "detect", cid, detect={"type": "digit"})
    assert isinstance(bad, UnreadableEvent)
    [end] = ev(c, "detect", cid, detect={"params": {"event": "error"}})
    assert end.done
    assert end.result.kind is None


# ---------------------------------------------------------------------------- others


def test_send_digits_tap_fax_and_plain_verbs() -> None:
    c = with_call()
    _, cid = start(c, "send_digits", {"digits": "12w#"})
    [sent] = ev(c, "send_digits", cid, state="finished")
    assert sent.result == SendDigitsResult(verb="send_digits", state="finished")
    tap_params = {
        "tap": {"type": "audio", "params": {"direction": "listen"}},
        "device": {"type": "rtp", "params": {"addr": "127.0.0.1", "port": 1234}},
    }
    _, tap = start(c, "tap", tap_params)
    [tapping] = ev(c, "tap", tap, state="tapping", tap=tap_params["tap"])
    assert tapping.result is None
    assert not tapping.done
    [tapped] = ev(c, "tap", tap, state="finished", tap=tap_params["tap"], device="x")
    assert tapped.result == TapResult(verb="tap", state="finished", tap=tap_params["tap"])
    _, fax = start(c, "send_fax", {"document": "https://x/doc.pdf"})
    [page] = ev(c, "fax", fax, fax={"type": "page", "params": {"pages": 1}})
    assert page.result is None
    assert page.state == "page"
    [faxed] = ev(c, "fax", fax, fax={"type": "finished", "params": {"pages": 2, "success": True}})
    assert faxed.result == FaxResult(verb="send_fax", state="finished", pages=2, success=True)
    _, rx = start(c, "receive_fax", {})
    [bad] = ev(c, "fax", rx, fax={})
    assert isinstance(bad, UnreadableEvent)
    [rx_end] = ev(c, "fax", rx, fax={"type": "error"})
    assert rx_end.result == FaxResult(verb="receive_fax", state="error")
    _, stream = start(c, "stream", {"url": "wss://x"})
    [streaming] = ev(c, "stream", stream, state="streaming")
    assert streaming.result is None
    [streamed] = ev(c, "stream", stream, state="finished")
    assert streamed.result == ActionResult(verb="stream", state="finished")


def test_generic_verb_has_a_row_made_for_it() -> None:
    c = with_call()
    _, cid = start(c, "hologram", {"x": [1, 2]})
    [going] = ev(c, "hologram", cid, state="projecting")
    assert going.verb == "hologram"
    assert not going.done
    c.core.action_control("CALL-1", "hologram", cid, "stop")
    assert c.sent_one()["method"] == "calling.hologram.stop"
    [done] = ev(c, "hologram", cid, state="finished")
    assert done.done
    with pytest.raises(LocalProtocolError, match="verb"):
        c.core.start_action("CALL-1", "bad verb!", {})
    with pytest.raises(LocalProtocolError, match="verb"):
        c.core.start_action("CALL-1", "", {})


def test_events_of_actions_not_started_through_the_core_are_handed_on() -> None:
    c = with_call()
    [unhandled] = ev(c, "record", "NOPE", state="finished")
    assert isinstance(unhandled, UnhandledEvent)
    assert unhandled.event_type == "calling.call.record"
    assert unhandled.params["control_id"] == "NOPE"
    [odd] = ev(c, "record", "NOPE", state="exploded")
    assert isinstance(odd, UnknownState)
    assert odd.control_id == "NOPE"
    [bad] = ev(c, "record", "NOPE")
    assert isinstance(bad, UnreadableEvent)
    [no_id] = c.event("calling.call.record", {"call_id": "CALL-1", "state": "finished"})
    assert isinstance(no_id, UnreadableEvent)
    assert "control_id" in no_id.reason


def test_late_events_of_finished_actions_are_dropped_bounded() -> None:
    c = with_call()
    ids = []
    for _ in range(4097):
        _, cid = c.core.start_action("CALL-1", "send_digits", {"digits": "1"})
        ids.append(cid)
        c.sent()
        ev(c, "send_digits", cid, state="finished")
    assert ev(c, "send_digits", ids[-1], state="finished") == []
    [oldest] = ev(c, "send_digits", ids[0], state="finished")  # forgotten: handed on
    assert isinstance(oldest, UnhandledEvent)


# ---------------------------------------------------------------------------- lifecycle


def test_call_end_resolves_every_action_on_it() -> None:
    c = with_call()
    _, rec = start(c, "record", AUDIO)
    _, col = start(c, "collect", DIGITS)
    [recording] = ev(c, "record", rec, state="recording")
    assert not recording.done
    # The col action settles first: its call_ended end must not settle it again.
    [got] = ev(c, "collect", col, result={"type": "digit", "params": {"digits": "1"}}, final=True)
    assert got.done
    _, det = start(c, "detect", {"detect": {"type": "fax"}})
    [ced] = ev(c, "detect", det, detect={"type": "fax", "params": {"event": "CED"}})
    assert ced.settled
    events = c.state("CALL-1", "ended", end_reason="hangup")
    ends = [e for e in events if isinstance(e, ActionStateChanged)]
    assert [(e.control_id, e.state, e.done, e.settled) for e in ends] == [
        (rec, CALL_ENDED, True, True),
        (det, CALL_ENDED, True, False),
    ]
    assert ends[0].result == ActionResult(verb="record", state=CALL_ENDED)
    assert ends[0].result.call_ended
    assert isinstance(events[-1], CallStateChanged)  # the actions first, then the call
    assert ev(c, "record", rec, state="finished") == []


def test_refused_and_gone_starts_forget_the_action() -> None:
    c = with_call()
    rid, cid = c.core.start_action("CALL-1", "record", AUDIO)
    c.sent()
    [failed] = c.feed(error(rid, 400, "bad"))
    assert isinstance(failed, RequestFailed)
    assert ev(c, "record", cid, state="finished") == []
    rid2, cid2 = c.core.start_action("CALL-1", "record", AUDIO)
    c.sent()
    events = c.feed(result(rid2, {"code": "404", "message": "gone"}))
    assert any(isinstance(e, RequestFailed) and e.call_gone for e in events)
    assert ev(c, "record", cid2, state="finished") == []


def test_start_refuses_bad_params_and_duplicate_control_ids() -> None:
    c = with_call()
    with pytest.raises(LocalProtocolError, match="digits"):
        c.core.start_action("CALL-1", "send_digits", {"digits": "12x"})
    with pytest.raises(LocalProtocolError, match="not a live call"):
        c.core.start_action("NOPE", "record", AUDIO)
    c.core.start_action("CALL-1", "record", AUDIO, control_id="mine")
    with pytest.raises(LocalProtocolError, match="already in use"):
        c.core.start_action("CALL-1", "record", AUDIO, control_id="mine")
    with pytest.raises(LocalProtocolError, match="control_id"):
        c.core.start_action("CALL-1", "record", AUDIO, control_id="")
    assert len(c.sent()) == 1


# ---------------------------------------------------------------------------- abandoning


def test_abandon_before_send_withdraws_the_start() -> None:
    c = Client()
    c.connect()
    c.answered_call("CALL-1")
    c.sent()
    _rid, cid = c.core.start_action("CALL-1", "record", AUDIO)
    c.core.abandon_action(cid)
    assert c.sent() == []
    assert ev(c, "record", cid, state="recording") == []
    c.core.abandon_action(cid)  # twice: nothing
    c.core.abandon_action("never")


def test_abandon_in_flight_stops_once_accepted() -> None:
    c = with_call()
    rid, cid = c.core.start_action("CALL-1", "record", AUDIO)
    c.sent()  # on its way
    c.core.abandon_action(cid)
    assert c.sent() == []
    assert c.feed(ok(rid)) == []  # muted: nobody waits for it
    [stop] = c.sent()
    assert stop["method"] == "calling.record.stop"
    assert stop["params"] == {"node_id": "NODE-1", "call_id": "CALL-1", "control_id": cid}
    assert c.feed(ok(stop["id"])) == []  # internal


def test_abandon_in_flight_refused_sends_nothing() -> None:
    c = with_call()
    rid, cid = c.core.start_action("CALL-1", "record", AUDIO)
    c.sent()
    c.core.abandon_action(cid)
    assert c.feed(error(rid, 500, "no")) == []
    assert c.sent() == []


def test_abandon_accepted_stops_now_unless_it_cannot_be_stopped() -> None:
    c = with_call()
    _, cid = start(
        c,
        "tap",
        {
            "tap": {"type": "audio"},
            "device": {"type": "ws", "params": {"uri": "wss://x"}},
        },
    )
    c.core.abandon_action(cid)
    [stop] = c.sent()
    assert stop["method"] == "calling.tap.stop"
    _, digits = start(c, "send_digits", {"digits": "1"})
    c.core.abandon_action(digits)  # send_digits has no stop
    assert c.sent() == []


@pytest.mark.parametrize("abandoned", [False, True])
def test_a_start_whose_reply_is_lost_is_stopped(abandoned: bool) -> None:
    """The start went out, its reply went with the socket: the action may run, and nobody
    holds a handle to it (the caller is told the start failed): the core stops it."""
    c = with_call()
    _rid, cid = c.core.start_action("CALL-1", "record", AUDIO)
    c.sent()
    if abandoned:
        c.core.abandon_action(cid)
    c.core.connection_lost(now=1)
    _, events = c.connect()  # resumed
    failed = [e for e in events if isinstance(e, RequestFailed)]
    assert len(failed) == (0 if abandoned else 1)
    [stop] = c.sent()
    assert stop["method"] == "calling.record.stop"
    assert stop["params"]["control_id"] == cid
    assert ev(c, "record", cid, state="recording") == []


def test_a_start_never_sent_and_lost_with_its_call_sends_no_stop() -> None:
    c = Client()
    c.connect()
    c.answered_call("CALL-1")
    c.sent()
    c.core.connection_lost(now=1)
    c.core.start_action("CALL-1", "record", AUDIO)  # held: no socket
    _, events = c.connect(protocol="signalwire_OTHER")  # not restored: the call is lost
    assert any(isinstance(e, RequestFailed) and e.connection_lost for e in events)
    assert not any(f.get("method") == "calling.record.stop" for f in c.sent())


def test_accepted_after_the_call_is_gone_sends_no_stop() -> None:
    c = with_call()
    rid, cid = c.core.start_action("CALL-1", "record", AUDIO)
    c.sent()
    c.core.abandon_action(cid)
    c.state("CALL-1", "ended")
    c.sent()
    c.feed(ok(rid))
    assert c.sent() == []


def test_send_digits_progress_and_a_start_given_up_then_abandoned() -> None:
    c = with_call()
    rid, cid = c.core.start_action("CALL-1", "send_digits", {"digits": "1"})
    c.sent()
    [sending] = ev(c, "send_digits", cid, state="sending")
    assert sending.result is None
    assert not sending.done
    c.core.give_up(rid)  # forgotten by the request table, still an action
    c.core.abandon_action(cid)  # nothing left to mute: no error
    assert c.sent() == []


def test_abandoned_in_flight_without_a_stop_sends_nothing_once_accepted() -> None:
    c = with_call()
    rid, cid = c.core.start_action("CALL-1", "send_digits", {"digits": "1"})
    c.sent()
    c.core.abandon_action(cid)
    assert c.feed(ok(rid)) == []
    assert c.sent() == []


def test_actions_on_an_abandoned_winner_end_with_its_tombstone() -> None:
    c = Client(tombstone_grace=5)
    c.connect()
    tag, _ = c.answered_call("CALL-1")
    c.sent()
    _, cid = c.core.start_action("CALL-1", "record", AUDIO)
    c.sent()
    assert c.core.cancel_dial(tag, now=0)
    c.sent()
    [end] = c.tick(10)  # the leg's ``ended`` never came; the tombstone goes
    assert isinstance(end, ActionStateChanged)
    assert (end.control_id, end.state, end.done) == (cid, CALL_ENDED, True)


def test_actions_on_an_abandoned_winner_end_when_the_session_is_lost() -> None:
    c = Client()
    c.connect()
    tag, _ = c.answered_call("CALL-1")
    c.sent()
    rid, cid = c.core.start_action("CALL-1", "record", AUDIO)
    c.sent()
    c.feed(ok(rid))
    assert c.core.cancel_dial(tag, now=0)
    c.sent()
    c.core.connection_lost(now=1)
    _, events = c.connect(protocol="signalwire_OTHER")  # not restored
    ends = [e for e in events if isinstance(e, ActionStateChanged)]
    assert [(e.control_id, e.state, e.done) for e in ends] == [(cid, CALL_ENDED, True)]


def test_a_continuous_play_and_collect_goes_on_after_its_first_result() -> None:
    c = with_call()
    collect = {"speech": {}, "continuous": True}
    _, cid = start(c, "play_and_collect", {"play": PROMPT, "collect": collect})
    [first] = ev(c, "collect", cid, result={"type": "speech", "params": {"text": "one"}})
    assert first.settled
    assert not first.done
    [quiet] = ev(c, "collect", cid, result={"type": "no_input"})
    assert not quiet.done  # continuous: it keeps listening
    [end] = ev(c, "collect", cid, state="finished")
    assert end.done


def test_a_live_winners_actions_outlive_its_dial_tombstone() -> None:
    c = Client(tombstone_grace=60)
    c.connect()
    c.answered_call("CALL-1")
    c.sent()
    _, cid = start(c, "record", AUDIO)
    assert not [e for e in c.tick(61) if isinstance(e, ActionStateChanged)]
    [done] = ev(c, "record", cid, state="finished", url="https://r/1.wav")
    assert isinstance(done.result, RecordResult)
    assert done.result.url == "https://r/1.wav"
