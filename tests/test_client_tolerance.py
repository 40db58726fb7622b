"""The tolerant reader (PROTOCOL.md 2.6), one test per row of docs/reading.md, and what the
client sends as the official SDKs do (UUID4 control ids, ``loop=0``, ``volume`` range, the
ping's wall-clock timestamp, a project id alongside a JWT).

Transcripts: frames in, events and frames out, on the core alone.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from client_frames import PHONE_A, Client, dial_params, ended, event, ok, request, state_params

from relay_proto import (
    CallState,
    CallStateChanged,
    ClientConnection,
    DialAnswered,
    DialFailureCause,
    DialTimedOut,
    InboundCall,
    LocalProtocolError,
    PlayState,
    PlayStateChanged,
    SessionState,
    UnhandledEvent,
    UnknownState,
    UnreadableEvent,
)


def ready() -> Client:
    c = Client()
    c.connect()
    return c


def with_call() -> Client:
    c = ready()
    c.answered_call("CALL-1")
    c.sent()
    return c


def without(params: dict[str, Any], *names: str) -> dict[str, Any]:
    return {key: value for key, value in params.items() if key not in names}


def unreadable(events: list[Any], event_type: str | None, word: str) -> UnreadableEvent:
    [report] = events
    assert isinstance(report, UnreadableEvent), report
    assert report.event_type == event_type
    assert word in report.reason
    return report


# ---------------------------------------------------------------------------- envelope


def test_envelope_params_not_an_object_is_reported() -> None:
    c = ready()
    report = unreadable(c.feed(request("e1", "signalwire.event", ["x"])), None, "not an object")
    assert report.params == ["x"]
    assert c.sent() == [{"jsonrpc": "2.0", "id": "e1", "result": {}}]


def test_envelope_without_event_type_is_reported() -> None:
    c = ready()
    unreadable(c.feed(request("e1", "signalwire.event", {"params": {}})), None, "event_type")


def test_envelope_without_inner_params_is_reported() -> None:
    c = ready()
    frame = request("e1", "signalwire.event", {"event_type": "calling.call.state"})
    report = unreadable(c.feed(frame), "calling.call.state", "params object")
    assert report.params == {"event_type": "calling.call.state"}


def test_envelope_without_timestamp_is_read() -> None:
    c = ready()
    [unhandled] = c.event("calling.conference", {}, timestamp=None)
    assert unhandled == UnhandledEvent(event_type="calling.conference", timestamp=None, params={})


def test_receive_still_refuses_what_is_not_json_rpc() -> None:
    from relay_proto import RemoteProtocolError

    c = ready()
    with pytest.raises(RemoteProtocolError):
        c.feed("not json")


# ---------------------------------------------------------------------------- calling.call.state


def test_state_without_call_id_is_unreadable_and_changes_nothing() -> None:
    c = with_call()
    params = without(state_params("CALL-1", "ended"), "call_id")
    unreadable(c.event("calling.call.state", params), "calling.call.state", "call_id")
    assert c.core.live_call_ids == {"CALL-1"}


def test_state_without_node_id_uses_the_known_call() -> None:
    c = with_call()
    params = without(state_params("CALL-1", "ended", end_reason="hangup"), "node_id")
    [changed] = c.event("calling.call.state", params)
    assert isinstance(changed, CallStateChanged)
    assert (changed.state, changed.node_id, changed.end_reason) == (
        CallState.ENDED,
        "NODE-1",
        "hangup",
    )
    assert changed.raw["node_id"] == "NODE-1"  # filled in from what the client knew
    assert c.core.live_call_ids == frozenset()


def test_state_without_node_id_uses_the_known_leg() -> None:
    c = ready()
    tag, frame = c.dial()
    c.feed(ok(frame["id"]))
    c.state("LEG-1", "created", tag=tag)
    params = without(state_params("LEG-1", "ringing", tag=tag), "node_id")
    [changed] = c.event("calling.call.state", params)
    assert isinstance(changed, CallStateChanged)
    assert (changed.state, changed.node_id) == (CallState.RINGING, "NODE-1")


def test_state_without_node_id_for_an_unknown_call_is_unreadable() -> None:
    c = ready()
    tag, frame = c.dial()
    c.feed(ok(frame["id"]))
    params = without(state_params("LEG-1", "created", tag=tag), "node_id")
    unreadable(c.event("calling.call.state", params), "calling.call.state", "node_id")
    [changed] = c.state("LEG-1", "created", tag=tag)  # the leg still counts once readable
    assert isinstance(changed, CallStateChanged)


def test_state_without_call_state_is_unreadable() -> None:
    c = with_call()
    params = without(state_params("CALL-1", "ended"), "call_state")
    unreadable(c.event("calling.call.state", params), "calling.call.state", "call_state")
    assert c.core.live_call_ids == {"CALL-1"}


def test_unknown_call_state_is_carried_and_moves_nothing() -> None:
    c = with_call()
    [unknown] = c.state("CALL-1", "early_media", tag=None)
    assert unknown == UnknownState(
        event_type="calling.call.state",
        key="call_state",
        raw_state="early_media",
        call_id="CALL-1",
        tag=None,
        control_id=None,
        params=state_params("CALL-1", "early_media", tag=None),
    )
    info = c.core.get_call("CALL-1")
    assert info is not None
    assert info.state is CallState.ANSWERED
    assert c.extra == []
    [changed] = c.state("CALL-1", "ended", tag=None)  # the next known state still counts
    assert isinstance(changed, CallStateChanged)
    assert changed.previous is CallState.ANSWERED


def test_unknown_call_state_of_a_leg_does_not_resolve_or_disturb_the_dial() -> None:
    c = ready()
    tag, frame = c.dial()
    c.feed(ok(frame["id"]))
    [unknown] = c.state("LEG-1", "pre_answer", tag=tag)
    assert isinstance(unknown, UnknownState)
    assert unknown.tag == tag
    assert c.core.pending_dials == {tag}
    c.state("LEG-1", "answered", tag=tag)
    events = c.dial_event(tag, "answered", call_id="LEG-1")
    assert isinstance(events[-1], DialAnswered)


def test_state_without_tag_moves_only_a_known_call() -> None:
    c = with_call()
    assert c.state("OTHER", "ended", tag=None) == []
    [changed] = c.state("CALL-1", "ending", tag=None)
    assert isinstance(changed, CallStateChanged)
    assert changed.tag is None


def test_unknown_end_reason_and_no_device_are_carried() -> None:
    c = with_call()
    params = without(state_params("CALL-1", "ended", end_reason="gremlins"), "device")
    [changed] = c.event("calling.call.state", params)
    assert isinstance(changed, CallStateChanged)
    assert changed.end_reason == "gremlins"


# ---------------------------------------------------------------------------- calling.call.dial


def test_dial_event_without_tag_is_unreadable() -> None:
    c = ready()
    tag, _ = c.dial()
    params = without(dial_params(tag, "answered", call_id="X"), "tag")
    unreadable(c.event("calling.call.dial", params), "calling.call.dial", "tag")
    assert c.core.pending_dials == {tag}


def test_dial_event_without_dial_state_is_unreadable() -> None:
    c = ready()
    tag, _ = c.dial()
    params = without(dial_params(tag, "failed"), "dial_state")
    unreadable(c.event("calling.call.dial", params), "calling.call.dial", "dial_state")
    assert c.core.pending_dials == {tag}


def test_unknown_dial_state_is_carried_and_the_dial_keeps_waiting() -> None:
    c = ready()
    tag, frame = c.dial()
    c.feed(ok(frame["id"]))
    [unknown] = c.dial_event(tag, "progressing")
    assert isinstance(unknown, UnknownState)
    assert (unknown.key, unknown.raw_state, unknown.tag) == ("dial_state", "progressing", tag)
    assert c.core.pending_dials == {tag}
    events = c.dial_event(tag, "answered", call_id="CALL-1")
    assert isinstance(events[-1], DialAnswered)


def test_answered_dial_without_call_object_is_unreadable_and_the_deadline_still_holds() -> None:
    c = ready()
    tag, frame = c.dial(dial_timeout=5)
    c.feed(ok(frame["id"]))
    c.state("LEG-1", "answered", tag=tag)
    unreadable(c.dial_event(tag, "answered"), "calling.call.dial", "call object")
    assert c.core.pending_dials == {tag}
    [timed_out] = c.tick(5)
    assert isinstance(timed_out, DialTimedOut)
    assert any(ended(f, "LEG-1", "hangup") for f in c.sent())  # no leg left behind


def test_answered_dial_without_call_id_is_unreadable() -> None:
    c = ready()
    tag, _ = c.dial()
    params = dial_params(tag, "answered", call_id="X")
    del params["call"]["call_id"]
    unreadable(c.event("calling.call.dial", params), "calling.call.dial", "call_id")
    assert c.core.pending_dials == {tag}


def test_answered_dial_without_node_id_uses_the_known_leg() -> None:
    c = ready()
    tag, frame = c.dial()
    c.feed(ok(frame["id"]))
    c.state("LEG-1", "answered", tag=tag, node_id="NODE-7")
    params = dial_params(tag, "answered", call_id="LEG-1")
    del params["call"]["node_id"]
    [answered] = c.event("calling.call.dial", params)
    assert isinstance(answered, DialAnswered)
    assert answered.call.node_id == "NODE-7"


def test_answered_dial_without_node_id_for_an_unseen_leg_is_unreadable() -> None:
    c = ready()
    tag, _ = c.dial()
    params = dial_params(tag, "answered", call_id="LEG-9")
    del params["call"]["node_id"]
    unreadable(c.event("calling.call.dial", params), "calling.call.dial", "node_id")
    assert c.core.pending_dials == {tag}


def test_failed_dial_without_reason_or_source() -> None:
    c = ready()
    tag, frame = c.dial()
    c.feed(ok(frame["id"]))
    [failed] = c.dial_event(tag, "failed")
    assert failed.cause is DialFailureCause.FAILED  # type: ignore[union-attr]
    assert (failed.reason, failed.source) == (None, None)  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- calling.call.play


def play(c: Client, state: str | None, control_id: str | None) -> list[Any]:
    params: dict[str, Any] = {"call_id": "CALL-1"}
    if state is not None:
        params["state"] = state
    if control_id is not None:
        params["control_id"] = control_id
    return c.event("calling.call.play", params)


def test_play_event_without_control_id_is_unreadable() -> None:
    c = with_call()
    c.core.play("CALL-1", [{"type": "tts", "text": "hi"}])
    c.sent()
    unreadable(play(c, "finished", None), "calling.call.play", "control_id")


def test_play_event_without_state_is_unreadable() -> None:
    c = with_call()
    _, control_id = c.core.play("CALL-1", [{"type": "tts", "text": "hi"}])
    c.sent()
    unreadable(play(c, None, control_id), "calling.call.play", "state")


def test_unknown_play_state_is_carried_and_the_play_goes_on() -> None:
    c = with_call()
    _, control_id = c.core.play("CALL-1", [{"type": "tts", "text": "hi"}])
    c.sent()
    [unknown] = play(c, "buffering", control_id)
    assert isinstance(unknown, UnknownState)
    assert (unknown.key, unknown.raw_state, unknown.control_id) == (
        "state",
        "buffering",
        control_id,
    )
    [finished] = play(c, "finished", control_id)
    assert isinstance(finished, PlayStateChanged)
    assert finished.state is PlayState.FINISHED


# ---------------------------------------------------------------------------- calling.call.receive


def receive(**params: Any) -> dict[str, Any]:
    return {"call_id": "IN-1", "node_id": "NODE-1", "context": "office", **params}


def test_receive_without_call_id_or_node_id_is_unreadable() -> None:
    c = ready()
    params = without(receive(), "call_id")
    unreadable(c.event("calling.call.receive", params), "calling.call.receive", "call_id")
    params = without(receive(), "node_id")
    unreadable(c.event("calling.call.receive", params), "calling.call.receive", "node_id")
    assert c.core.live_call_ids == frozenset()


def test_receive_without_call_state_is_a_created_call() -> None:
    c = ready()
    [inbound] = c.event("calling.call.receive", receive())
    assert isinstance(inbound, InboundCall)
    assert inbound.call.state is CallState.CREATED
    assert (inbound.call.tag, inbound.call.device) == (None, {})


def test_receive_with_an_unknown_call_state_is_carried_not_taken() -> None:
    c = ready()
    [unknown] = c.event("calling.call.receive", receive(call_state="queued"))
    assert isinstance(unknown, UnknownState)
    assert (unknown.call_id, unknown.raw_state) == ("IN-1", "queued")
    assert c.core.live_call_ids == frozenset()


# ---------------------------------------------------------------------------- other events


def test_authorization_state_without_a_blob_keeps_the_previous_one() -> None:
    c = ready()
    c.event("signalwire.authorization.state", {"authorization_state": "BLOB"})
    assert c.event("signalwire.authorization.state", {}) == []
    assert "BLOB" in c.core.secrets


def test_notification_that_is_unreadable_is_still_reported() -> None:
    c = ready()
    events = c.feed(event(None, "calling.call.state", {"call_state": "ended"}))
    unreadable(events, "calling.call.state", "call_id")
    assert c.sent() == []


# ---------------------------------------------------------------------------- enums


def test_state_enums_equal_their_wire_strings() -> None:
    c = with_call()
    info = c.core.get_call("CALL-1")
    assert info is not None
    assert info.state == "answered"
    assert CallState("ended") is CallState.ENDED
    finished, refused = PlayState.FINISHED, DialFailureCause.REFUSED
    assert finished == "finished"
    assert SessionState.READY == c.core.state == "ready"
    assert refused == "refused"
    assert f"{CallState.RINGING}" == "ringing"
    assert {"answered": 1}[CallState.ANSWERED] == 1
    match info.state:
        case CallState.ANSWERED:
            pass
        case _:  # pragma: no cover
            raise AssertionError(info.state)


# ---------------------------------------------------------------------------- what is sent


def test_control_ids_are_uuid4_by_default_and_injectable() -> None:
    c = with_call()
    _, control_id = c.core.play("CALL-1", [{"type": "tts", "text": "hi"}])
    assert uuid.UUID(control_id).version == 4
    assert str(uuid.UUID(control_id)) == control_id
    [frame] = c.sent()
    assert frame["params"]["control_id"] == control_id
    fixed = Client(control_id_factory=lambda: "CTRL-1")
    fixed.connect()
    fixed.answered_call("CALL-1")
    assert fixed.core.play("CALL-1", [{"type": "tts", "text": "hi"}])[1] == "CTRL-1"


def test_play_loop_zero_plays_forever() -> None:
    c = with_call()
    c.core.play("CALL-1", [{"type": "tts", "text": "hi"}], loop=0)
    [frame] = c.sent()
    assert frame["params"]["loop"] == 0


@pytest.mark.parametrize("volume", [-40, -40.0, 0, 12.5, 40])
def test_volume_in_range_is_sent(volume: float) -> None:
    c = with_call()
    _, control_id = c.core.play("CALL-1", [{"type": "tts", "text": "hi"}], volume=volume)
    c.core.play_control("CALL-1", control_id, "volume", volume=volume)
    play_frame, control_frame = c.sent()
    assert play_frame["params"]["volume"] == control_frame["params"]["volume"] == volume


@pytest.mark.parametrize("volume", [-40.01, 41, 1e9, float("inf"), True, "3"])
def test_volume_out_of_range_is_refused(volume: Any) -> None:
    c = with_call()
    with pytest.raises(LocalProtocolError, match="volume"):
        c.core.play("CALL-1", [{"type": "tts", "text": "hi"}], volume=volume)
    with pytest.raises(LocalProtocolError, match="volume"):
        c.core.play_control("CALL-1", "CTRL", "volume", volume=volume)
    assert c.sent() == []


def test_ping_carries_the_timestamp_given_and_now_otherwise() -> None:
    c = ready()
    c.core.ping(now=5.0, timestamp=1_721_930_000.25)
    c.core.ping(now=6.0)
    first, second = c.sent()
    assert first["params"] == {"timestamp": 1_721_930_000.25}
    assert second["params"] == {"timestamp": 6.0}


def test_liveness_ping_carries_the_wall_clock_and_keeps_its_timers_on_now() -> None:
    c = Client(ping_interval=10)
    c.connect()
    assert c.core.next_deadline() == 10
    c.now = 10
    assert c.core.handle_timer(now=10, timestamp=1_721_930_000.5) == []
    [ping] = c.sent()
    assert ping["method"] == "signalwire.ping"
    assert ping["params"] == {"timestamp": 1_721_930_000.5}
    assert c.core.next_deadline() == 20
    c.feed(ok(ping["id"]))
    assert c.tick(20) == []
    assert c.sent_one()["params"] == {"timestamp": 20}


def test_a_project_id_may_come_with_a_jwt_and_is_not_sent() -> None:
    c = Client(project="P-UUID", token=None, jwt_token="JWT-xyz")
    frame, _ = c.connect()
    assert frame["params"]["authentication"] == {"jwt_token": "JWT-xyz"}
    assert c.core.secrets == ("JWT-xyz",)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"project": "P", "token": "T", "jwt_token": "J"},
        {"project": None, "token": "T", "jwt_token": "J"},
        {"project": "", "token": None, "jwt_token": "J"},
    ],
)
def test_a_token_with_a_jwt_or_an_empty_project_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        ClientConnection(**kwargs)


def test_phone_device_constant_is_the_one_dialled() -> None:
    # Keeps PHONE_A in use for the transcripts above (the default device of ``dial``).
    assert PHONE_A["type"] == "phone"
