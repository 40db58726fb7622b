"""The simulator's media and input verbs, driven with raw JSON frames on a fake clock.

Each verb: its happy path, its error and no-input paths, stop, pause/resume where it has
them, its call ending mid-action (the terminal event comes before the call's ``ending``),
a call not answered (409) or gone (404), bad params (400). ``view`` strips the ids every
action event carries, after checking they are there.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_server_core import NODE, A, B, Frame, Peer, call_id_of, make_sim, phone

from relay_proto.simulator import Scenario

View = list[tuple[Any, ...]]


def view(frames: list[Frame]) -> View:
    out: View = []
    for frame in frames:
        if frame.get("method") != "signalwire.event":
            if "result" in frame:
                out.append(("result", frame["result"]["code"]))
            else:
                out.append(("error", frame["error"]["code"]))
            continue
        event_type, inner = frame["params"]["event_type"], dict(frame["params"]["params"])
        if event_type == "calling.call.state":
            out.append(("state", inner["call_state"]))
            continue
        assert inner.pop("node_id") == NODE
        assert isinstance(inner.pop("call_id"), str)
        inner.pop("control_id", None)
        out.append((event_type.removeprefix("calling.call."), inner))
    return out


def peer_with(scenario: dict[str, Any] | None = None) -> Peer:
    peer = Peer(make_sim(scenario=Scenario.from_dict(scenario or {})))
    peer.connect()
    return peer


def up(peer: Peer, to: str = A, now: float = 0.0) -> str:
    """Dial ``to`` and let it answer (an outcome answers after 1 s at most here)."""
    call_id = call_id_of(peer.dial([[phone(to)]], now, tag=f"T{now}"), to)
    peer.tick(now + 1.0)
    return call_id


def cmd(peer: Peer, method: str, call_id: str, now: float, **params: Any) -> View:
    return view(peer.call_cmd(method, call_id, now, **params))


def tick(peer: Peer, now: float) -> View:
    return view(peer.tick(now))


def result(kind: str, **params: Any) -> tuple[str, Frame]:
    return ("collect", {"result": {"type": kind, "params": params}, "final": True})


def partial(kind: str, **params: Any) -> tuple[str, Frame]:
    return ("collect", {"result": {"type": kind, "params": params}, "final": False})


AUDIO = {"format": "wav", "end_silence_timeout": 0.5, "terminators": "#"}
URL = "https://sim.invalid/recordings/R.wav"


# ---- record ------------------------------------------------------------------------------


def test_record_finishes_after_the_talk_and_the_end_silence() -> None:
    peer = peer_with({"destinations": {A: {"outcome": "answer", "record": {"seconds": 3}}}})
    call_id = up(peer)
    assert cmd(peer, "calling.record", call_id, 1.0, control_id="R", record={"audio": AUDIO}) == [
        ("result", "200"),
        ("record", {"state": "recording", "url": URL, "record": {"audio": AUDIO}}),
    ]
    assert peer.sim.next_deadline() == pytest.approx(4.5)
    assert peer.sim.live_actions()[0].verb == "record"
    finished = {"state": "finished", "url": URL, "duration": 3.5, "size": 56000}
    assert tick(peer, 4.5) == [("record", {**finished, "record": {"audio": AUDIO}})]
    assert peer.sim.live_actions() == []
    assert cmd(peer, "calling.record.stop", call_id, 5.0, control_id="R") == [("result", "404")]


def test_record_reply_carries_its_control_id_and_url() -> None:
    """As the real server's reply: the recording's url is known at once."""
    peer = peer_with()
    call_id = up(peer)
    frames = peer.call_cmd("calling.record", call_id, 1.0, control_id="R", record={"audio": AUDIO})
    (reply,) = [frame["result"] for frame in frames if "result" in frame]
    assert reply == {"code": "200", "message": "Recording", "control_id": "R", "url": URL}


@pytest.mark.parametrize(
    ("audio", "deadline"),
    [({"terminators": "#"}, 3.0), ({}, 4.0), ({"end_silence_timeout": 0}, 3.0)],
)
def test_record_ended_by_a_terminator_needs_one_in_the_request(
    audio: Frame, deadline: float
) -> None:
    script = {"outcome": "answer", "record": {"seconds": 2, "end": "terminator"}}
    peer = peer_with({"destinations": {A: script}})
    call_id = up(peer)
    cmd(peer, "calling.record", call_id, 1.0, control_id="R", record={"audio": audio})
    assert peer.sim.next_deadline() == pytest.approx(deadline)
    assert tick(peer, deadline)[0][1]["state"] == "finished"


def test_record_no_input() -> None:
    peer = peer_with({"default": {"outcome": "answer", "after": 0.2, "record": "no_input"}})
    call_id = up(peer)
    cmd(peer, "calling.record", call_id, 1.0, control_id="R", record={"audio": {}})
    assert peer.sim.next_deadline() == pytest.approx(6.0)  # initial_timeout: 5 s by default
    assert tick(peer, 6.0) == [("record", {"state": "no_input"})]
    cmd(peer, "calling.record", call_id, 7.0, control_id="R2", record={"initial_timeout": 1})
    assert peer.sim.next_deadline() == pytest.approx(12.0)  # audio absent: defaults


def test_record_pause_resume_stop_counts_only_recorded_time() -> None:
    peer = peer_with({"destinations": {A: {"outcome": "answer", "record": {"seconds": 3}}}})
    call_id = up(peer)
    cmd(peer, "calling.record", call_id, 1.0, control_id="R", record={"audio": {}})
    assert cmd(peer, "calling.record.pause", call_id, 2.0, control_id="R", behavior="skip") == [
        ("result", "200"),
        ("record", {"state": "paused", "url": URL[:-3] + "mp3", "record": {"audio": {}}}),
    ]
    assert cmd(peer, "calling.record.pause", call_id, 2.5, control_id="R") == [("result", "200")]
    assert peer.sim.next_deadline() is None
    assert cmd(peer, "calling.record.resume", call_id, 10.0, control_id="R")[1][1]["state"] == (
        "recording"
    )
    assert cmd(peer, "calling.record.resume", call_id, 10.0, control_id="R") == [("result", "200")]
    assert peer.sim.next_deadline() == pytest.approx(13.0)  # 3 s of the 4 s were left
    frames = cmd(peer, "calling.record.stop", call_id, 11.0, control_id="R")
    assert frames[0] == ("result", "200")
    assert (frames[1][1]["state"], frames[1][1]["duration"], frames[1][1]["size"]) == (
        "finished",
        2.0,
        8000,
    )
    for method in ("calling.record.pause", "calling.record.resume", "calling.record.stop"):
        assert cmd(peer, method, call_id, 12.0, control_id="R") == [("result", "404")]


def test_record_finishes_before_the_call_ends() -> None:
    peer = peer_with({"destinations": {A: {"outcome": "answer", "record": {"seconds": None}}}})
    call_id = up(peer)
    cmd(peer, "calling.record", call_id, 1.0, control_id="R", record={"audio": {}})
    assert peer.sim.next_deadline() is None  # the far end never stops talking
    cmd(peer, "calling.record.pause", call_id, 2.0, control_id="R")
    cmd(peer, "calling.record.resume", call_id, 3.0, control_id="R")
    assert peer.sim.next_deadline() is None
    frames = cmd(peer, "calling.end", call_id, 4.0)
    assert [f[0] for f in frames] == ["result", "record", "state", "state"]
    assert (frames[1][1]["state"], frames[1][1]["duration"]) == ("finished", 2.0)
    assert peer.sim.live_actions() == []


@pytest.mark.parametrize(
    "params",
    [
        {"record": {"audio": {}}},
        {"control_id": "R"},
        {"control_id": "R", "record": []},
        {"control_id": "R", "record": {"audio": "x"}},
        {"control_id": "R", "record": {"audio": {"beep": 1}}},
        {"control_id": "R", "record": {"audio": {"stereo": "no"}}},
        {"control_id": "R", "record": {"audio": {"format": "ogg"}}},
        {"control_id": "R", "record": {"audio": {"direction": "up"}}},
        {"control_id": "R", "record": {"audio": {"initial_timeout": -1}}},
        {"control_id": "R", "record": {"audio": {"end_silence_timeout": "1"}}},
        {"control_id": "R", "record": {"audio": {"terminators": "x"}}},
        {"control_id": "R", "record": {"audio": {"terminators": 5}}},
    ],
)
def test_record_bad_params(params: Frame) -> None:
    peer = peer_with()
    call_id = up(peer)
    assert cmd(peer, "calling.record", call_id, 1.0, **params) == [("result", "400")]
    assert peer.sim.live_actions() == []


def test_record_pause_behavior_is_checked() -> None:
    peer = peer_with()
    call_id = up(peer)
    cmd(peer, "calling.record", call_id, 1.0, control_id="R", record={"audio": {}})
    bad = cmd(peer, "calling.record.pause", call_id, 1.5, control_id="R", behavior="x")
    assert bad == [("result", "400")]
    assert peer.sim.live_actions()[0].state == "recording"


# ---- collect -----------------------------------------------------------------------------

DIGITS = {"max": 4, "terminators": "#", "digit_timeout": 2}


def test_collect_digits_with_terminator_partials_and_start_of_input() -> None:
    entry = {"digits": "12", "terminator": "#", "after": 1.0, "interval": 0.5}
    peer = peer_with({"destinations": {A: {"outcome": "answer", "input": entry}}})
    call_id = up(peer)
    frames = cmd(
        peer,
        "calling.collect",
        call_id,
        1.0,
        control_id="C",
        digits=DIGITS,
        partial_results=True,
        send_start_of_input=True,
    )
    assert frames == [("result", "200"), ("collect", {"state": "collecting"})]
    assert tick(peer, 2.0) == [
        ("collect", {"result": {"type": "start_of_input"}, "final": False}),
        partial("digit", digits="1"),
    ]
    assert tick(peer, 2.5) == [partial("digit", digits="12")]
    assert tick(peer, 3.0) == [result("digit", digits="12", terminator="#")]
    assert peer.sim.live_actions() == []


def test_collect_digits_end_at_max_or_after_the_digit_timeout() -> None:
    entries = [{"digits": "123456"}, {"digits": "12"}, {"digits": "1#"}]
    peer = peer_with({"destinations": {A: {"outcome": "answer", "input": entries}}})
    call_id = up(peer)
    cmd(peer, "calling.collect", call_id, 1.0, control_id="C", digits=DIGITS)
    assert tick(peer, 2.7) == [result("digit", digits="1234", terminator="")]
    cmd(peer, "calling.collect", call_id, 3.0, control_id="C", digits=DIGITS)
    assert tick(peer, 4.2) == []
    assert peer.sim.next_deadline() == pytest.approx(6.2)  # the digit timeout
    assert tick(peer, 6.2) == [result("digit", digits="12", terminator="")]
    # the terminator is only one when the request names it
    cmd(peer, "calling.collect", call_id, 7.0, control_id="C", digits={"max": 5})
    assert tick(peer, 20.0) == [result("digit", digits="1#", terminator="")]
    # the list is used up: nobody presses anything
    cmd(peer, "calling.collect", call_id, 21.0, control_id="C", digits={"max": 5})
    assert peer.sim.next_deadline() == pytest.approx(26.0)
    assert tick(peer, 26.0) == [result("no_input")]


def test_collect_speech_with_partials_and_a_repeated_answer() -> None:
    entry = {"speech": "yes please", "confidence": 0.9, "after": 0.5, "seconds": 2}
    peer = peer_with({"destinations": {A: {"outcome": "answer", "input": entry}}})
    call_id = up(peer)
    speech = {"end_silence_timeout": 1, "language": "en-US"}
    cmd(peer, "calling.collect", call_id, 1.0, control_id="C", speech=speech, partial_results=True)
    assert tick(peer, 1.5) == [partial("speech", text="yes")]
    assert tick(peer, 2.5) == []
    assert tick(peer, 4.5) == [result("speech", text="yes please", confidence=0.9)]
    cmd(peer, "calling.collect", call_id, 5.0, control_id="C", speech=speech)
    assert tick(peer, 7.5) == [result("speech", text="yes please", confidence=0.9)]


@pytest.mark.parametrize(
    ("entry", "params", "when", "expected"),
    [
        ("no_match", {"digits": DIGITS}, 2.0, result("no_match")),
        ({"no_match": True, "after": 3}, {"digits": DIGITS}, 4.0, result("no_match")),
        ({"no_match": True, "after": 9}, {"digits": DIGITS}, 6.0, result("no_input")),
        ({"digits": "1", "after": 6}, {"digits": DIGITS}, 6.0, result("no_input")),
        ({"digits": "1"}, {"speech": {}}, 6.0, result("no_input")),  # not listening
        ({"speech": "hi"}, {"digits": DIGITS}, 6.0, result("no_input")),
        ("no_input", {"digits": DIGITS, "initial_timeout": 2}, 3.0, result("no_input")),
    ],
)
def test_collect_no_match_and_no_input(
    entry: Any, params: Frame, when: float, expected: tuple[str, Frame]
) -> None:
    peer = peer_with({"destinations": {A: {"outcome": "answer", "input": [entry]}}})
    call_id = up(peer)
    cmd(peer, "calling.collect", call_id, 1.0, control_id="C", **params)
    assert peer.sim.next_deadline() == pytest.approx(when)
    assert tick(peer, when) == [expected]


def test_collect_waits_for_start_input_timers_and_can_be_continuous() -> None:
    entries = [{"digits": "1", "after": 0}, {"digits": "2", "after": 0}]
    peer = peer_with({"destinations": {A: {"outcome": "answer", "input": entries}}})
    call_id = up(peer)
    digits = {"max": 1}
    params = {"control_id": "C", "digits": digits, "start_input_timers": False, "continuous": True}
    cmd(peer, "calling.collect", call_id, 1.0, **params)
    assert peer.sim.next_deadline() is None
    timers = "calling.collect.start_input_timers"
    assert cmd(peer, timers, call_id, 3.0, control_id="C") == [("result", "200")]
    assert tick(peer, 3.0) == [
        result("digit", digits="1", terminator=""),
        result("digit", digits="2", terminator=""),
    ]
    assert cmd(peer, timers, call_id, 3.0, control_id="C") == [("result", "200")]  # once
    assert tick(peer, 8.0) == [result("no_input")]  # continuous: it keeps listening
    assert cmd(peer, "calling.collect.stop", call_id, 9.0, control_id="C") == [
        ("result", "200"),
        ("collect", {"state": "finished"}),
    ]
    assert cmd(peer, timers, call_id, 9.0, control_id="C") == [("result", "404")]
    assert peer.sim.live_actions() == []


@pytest.mark.parametrize(
    "params",
    [
        {"digits": DIGITS},
        {"control_id": "C"},
        {"control_id": "C", "digits": {}},
        {"control_id": "C", "digits": {"max": 0}},
        {"control_id": "C", "digits": {"max": 1, "terminators": "x"}},
        {"control_id": "C", "digits": {"max": 1, "digit_timeout": -1}},
        {"control_id": "C", "speech": []},
        {"control_id": "C", "speech": {"end_silence_timeout": "1"}},
        {"control_id": "C", "digits": DIGITS, "initial_timeout": -1},
        {"control_id": "C", "digits": DIGITS, "partial_results": "yes"},
        {"control_id": "C", "digits": DIGITS, "continuous": 1},
        {"control_id": "C", "digits": DIGITS, "send_start_of_input": None},
        {"control_id": "C", "digits": DIGITS, "start_input_timers": "no"},
    ],
)
def test_collect_bad_params(params: Frame) -> None:
    peer = peer_with()
    call_id = up(peer)
    assert cmd(peer, "calling.collect", call_id, 1.0, **params) == [("result", "400")]


# ---- play_and_collect --------------------------------------------------------------------

PROMPT = [{"type": "silence", "params": {"duration": 2}}]


def test_play_and_collect_plays_the_prompt_then_listens() -> None:
    entry = {"digits": "7", "after": 1}
    peer = peer_with({"destinations": {A: {"outcome": "answer", "input": entry}}})
    call_id = up(peer)
    collect = {"digits": {"max": 1}, "initial_timeout": 4}
    params = {"control_id": "PC", "play": PROMPT, "collect": collect, "volume": 2}
    assert cmd(peer, "calling.play_and_collect", call_id, 1.0, **params) == [
        ("result", "200"),
        ("play", {"state": "playing"}),
    ]
    assert tick(peer, 3.0) == [("play", {"state": "finished"})]
    assert tick(peer, 4.0) == [result("digit", digits="7", terminator="")]
    # the volume control, the stop control and the input timers of a finished collect
    for method in ("calling.play_and_collect.volume", "calling.play_and_collect.stop"):
        assert cmd(peer, method, call_id, 5.0, control_id="PC", volume=1) == [("result", "404")]


def test_play_and_collect_barge_in_after_start_input_timers() -> None:
    entry = {"digits": "9", "after": 0.5}
    peer = peer_with({"destinations": {A: {"outcome": "answer", "input": [entry]}}})
    call_id = up(peer)
    params = {"control_id": "PC", "play": PROMPT, "collect": {"digits": {"max": 1}}}
    cmd(peer, "calling.play_and_collect", call_id, 1.0, **params)
    volume = "calling.play_and_collect.volume"
    assert cmd(peer, volume, call_id, 1.0, control_id="PC", volume=-4) == [("result", "200")]
    assert cmd(peer, volume, call_id, 1.0, control_id="PC") == [("result", "400")]
    cmd(peer, "calling.collect.start_input_timers", call_id, 1.2, control_id="PC")
    assert tick(peer, 1.7) == [
        ("play", {"state": "finished"}),  # the caller pressed a key during the prompt
        result("digit", digits="9", terminator=""),
    ]
    # timers started early, input after the prompt: the prompt's end changes nothing
    params["collect"] = {"digits": {"max": 1}, "initial_timeout": 4}
    cmd(peer, "calling.play_and_collect", call_id, 2.0, **params)
    cmd(peer, "calling.collect.start_input_timers", call_id, 2.0, control_id="PC")
    assert tick(peer, 4.0) == [("play", {"state": "finished"})]
    assert peer.sim.next_deadline() == pytest.approx(6.0)
    assert tick(peer, 6.0) == [result("no_input")]  # the list was used up


def test_play_and_collect_stop_and_call_end() -> None:
    peer = peer_with()
    call_id = up(peer)
    params = {"control_id": "PC", "play": PROMPT, "collect": {"speech": {}}}
    cmd(peer, "calling.play_and_collect", call_id, 1.0, **params)
    assert cmd(peer, "calling.play_and_collect.stop", call_id, 1.5, control_id="PC") == [
        ("result", "200"),
        ("play", {"state": "finished"}),
        ("collect", {"state": "finished"}),
    ]
    cmd(peer, "calling.play_and_collect", call_id, 2.0, **params)
    assert cmd(peer, "calling.end", call_id, 2.5) == [
        ("result", "200"),
        ("play", {"state": "error"}),
        ("collect", {"state": "error", "result": {"type": "error"}}),
        ("state", "ending"),
        ("state", "ended"),
    ]
    assert peer.sim.live_actions() == []
    assert peer.sim.next_deadline() is None


@pytest.mark.parametrize(
    "params",
    [
        {"control_id": "PC", "collect": {"digits": {"max": 1}}},
        {"control_id": "PC", "play": PROMPT},
        {"control_id": "PC", "play": PROMPT, "collect": {}},
        {"control_id": "PC", "play": PROMPT, "collect": {"digits": {"max": 1}}, "volume": "x"},
    ],
)
def test_play_and_collect_bad_params(params: Frame) -> None:
    peer = peer_with()
    call_id = up(peer)
    assert cmd(peer, "calling.play_and_collect", call_id, 1.0, **params) == [("result", "400")]


# ---- detect ------------------------------------------------------------------------------


def detect(kind: str, event: str) -> tuple[str, Frame]:
    return ("detect", {"detect": {"type": kind, "params": {"event": event}}})


def test_detect_machine_then_ready_when_asked_for_the_message_end() -> None:
    machine = {"result": "MACHINE", "after": 2, "ready_after": 5}
    peer = peer_with({"destinations": {A: {"outcome": "answer", "machine": machine}}})
    call_id = up(peer)
    params = {"detect_message_end": True, "initial_timeout": 3, "machine_words_threshold": 6}
    body = {"type": "machine", "params": params}
    assert cmd(peer, "calling.detect", call_id, 1.0, control_id="D", detect=body) == [
        ("result", "200")
    ]
    assert tick(peer, 3.0) == [detect("machine", "MACHINE")]
    assert tick(peer, 6.0) == [detect("machine", "READY"), detect("machine", "finished")]
    # without detect_message_end, the verdict ends it; a default far end is a human
    cmd(peer, "calling.detect", call_id, 7.0, control_id="D", detect={"type": "machine"})
    assert tick(peer, 9.0) == [detect("machine", "MACHINE"), detect("machine", "finished")]
    other = up(peer, B, now=10.0)
    cmd(peer, "calling.detect", other, 11.0, control_id="D", detect={"type": "machine"})
    assert tick(peer, 12.0) == [detect("machine", "HUMAN"), detect("machine", "finished")]


def test_detect_timeout_fax_and_digits() -> None:
    script = {"outcome": "answer", "fax": "CED", "machine": {"result": "UNKNOWN", "after": 9}}
    peer = peer_with({"destinations": {A: {**script, "digit": {"digits": "15", "after": 1}}}})
    call_id = up(peer)
    cmd(peer, "calling.detect", call_id, 1.0, control_id="D", detect={"type": "machine"}, timeout=4)
    assert tick(peer, 5.0) == [detect("machine", "finished")]  # the verdict came too late
    fax = {"type": "fax", "params": {"tone": "CED"}}
    cmd(peer, "calling.detect", call_id, 6.0, control_id="D", detect=fax)
    assert tick(peer, 7.0) == [detect("fax", "CED"), detect("fax", "finished")]
    fax = {"type": "fax", "params": {"tone": "CNG"}}
    cmd(peer, "calling.detect", call_id, 8.0, control_id="D", detect=fax, timeout=1)
    assert tick(peer, 9.0) == [detect("fax", "finished")]
    digit = {"type": "digit", "params": {"digits": "5"}}
    cmd(peer, "calling.detect", call_id, 10.0, control_id="D", detect=digit, timeout=3)
    assert tick(peer, 11.0) == []
    assert tick(peer, 11.2) == [detect("digit", "5")]
    assert tick(peer, 13.0) == [detect("digit", "finished")]


def test_detect_nothing_to_hear_stop_and_call_end() -> None:
    peer = peer_with()
    call_id = up(peer)
    for kind in ("fax", "digit"):
        cmd(peer, "calling.detect", call_id, 1.0, control_id=kind, detect={"type": kind})
    assert peer.sim.next_deadline() == pytest.approx(31.0)
    assert cmd(peer, "calling.detect.stop", call_id, 2.0, control_id="fax") == [
        ("result", "200"),
        detect("fax", "finished"),
    ]
    assert cmd(peer, "calling.detect.stop", call_id, 2.0, control_id="fax") == [("result", "404")]
    assert cmd(peer, "calling.end", call_id, 3.0)[:2] == [
        ("result", "200"),
        detect("digit", "error"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        None,
        {"type": "voice"},
        {"type": "machine", "params": []},
        {"type": "machine", "params": {"initial_timeout": -2}},
        {"type": "machine", "params": {"machine_words_threshold": 1.5}},
        {"type": "machine", "params": {"detect_interruptions": "yes"}},
        {"type": "machine", "params": {"detect_message_end": 1}},
        {"type": "fax", "params": {"tone": "BEEP"}},
        {"type": "digit", "params": {"digits": "x"}},
    ],
)
def test_detect_bad_params(body: Frame | None) -> None:
    peer = peer_with()
    call_id = up(peer)
    assert cmd(peer, "calling.detect", call_id, 1.0, control_id="D", detect=body) == [
        ("result", "400")
    ]
    assert cmd(
        peer, "calling.detect", call_id, 1.0, control_id="D", detect={"type": "fax"}, timeout=-1
    ) == [("result", "400")]


# ---- send_digits -------------------------------------------------------------------------


def test_send_digits_takes_time_per_digit() -> None:
    peer = peer_with()
    call_id = up(peer)
    assert cmd(peer, "calling.send_digits", call_id, 1.0, control_id="S", digits="12w#") == [
        ("result", "200")
    ]
    assert peer.sim.next_deadline() == pytest.approx(2.1)
    assert tick(peer, 2.1) == [("send_digits", {"state": "finished"})]
    cmd(peer, "calling.send_digits", call_id, 3.0, control_id="S", digits="1W")
    assert cmd(peer, "calling.end", call_id, 3.5)[1] == ("send_digits", {"state": "error"})


@pytest.mark.parametrize("digits", [None, "", "12x", 12])
def test_send_digits_bad_digits(digits: Any) -> None:
    peer = peer_with()
    call_id = up(peer)
    assert cmd(peer, "calling.send_digits", call_id, 1.0, control_id="S", digits=digits) == [
        ("result", "400")
    ]


# ---- tap, stream, transcribe, pay, fax, echo ---------------------------------------------

TAP = {"type": "audio", "params": {"direction": "both"}}
RTP = {"type": "rtp", "params": {"addr": "10.0.0.1", "port": 4000}}


def test_tap_replies_with_its_source_device_and_runs_until_stopped() -> None:
    peer = peer_with()
    call_id = up(peer)
    frames = peer.call_cmd("calling.tap", call_id, 1.0, control_id="T", tap=TAP, device=RTP)
    assert frames[0]["result"]["source_device"]["type"] == "rtp"
    assert view(frames[1:]) == [("tap", {"state": "tapping", "tap": TAP, "device": RTP})]
    assert peer.sim.next_deadline() is None
    assert cmd(peer, "calling.tap.stop", call_id, 5.0, control_id="T") == [
        ("result", "200"),
        ("tap", {"state": "finished", "tap": TAP, "device": RTP}),
    ]
    ws = {"type": "ws", "params": {"uri": "wss://example.com/tap"}}
    cmd(peer, "calling.tap", call_id, 6.0, control_id="T", tap=TAP, device=ws)
    assert cmd(peer, "calling.end", call_id, 7.0)[1][1]["state"] == "finished"


@pytest.mark.parametrize(
    "params",
    [
        {"tap": TAP},
        {"tap": {"type": "video"}, "device": RTP},
        {"tap": {"type": "audio", "params": {"direction": "up"}}, "device": RTP},
        {"tap": TAP, "device": {"type": "sip", "params": {}}},
        {"tap": TAP, "device": {"type": "rtp", "params": {"addr": "x"}}},
        {"tap": TAP, "device": {"type": "rtp"}},
        {"tap": TAP, "device": {"type": "ws", "params": {"uri": "http://x"}}},
    ],
)
def test_tap_bad_params(params: Frame) -> None:
    peer = peer_with()
    call_id = up(peer)
    assert cmd(peer, "calling.tap", call_id, 1.0, control_id="T", **params) == [("result", "400")]


def test_stream_and_transcribe_run_until_stopped_or_the_call_ends() -> None:
    peer = peer_with()
    call_id = up(peer)
    url = "wss://example.com/s"
    assert cmd(peer, "calling.stream", call_id, 1.0, control_id="S", url=url, name="n") == [
        ("result", "200"),
        ("stream", {"state": "streaming", "url": url, "name": "n"}),
    ]
    assert cmd(peer, "calling.stream.stop", call_id, 2.0, control_id="S")[1] == (
        "stream",
        {"state": "finished", "url": url, "name": "n"},
    )
    assert cmd(peer, "calling.stream", call_id, 1.0, control_id="S", url="http://x") == [
        ("result", "400")
    ]
    assert cmd(peer, "calling.transcribe", call_id, 3.0, control_id="X", status_url="u") == [
        ("result", "200"),
        ("transcribe", {"state": "transcribing"}),
    ]
    cmd(peer, "calling.stream", call_id, 3.0, control_id="S", url=url)
    frames = cmd(peer, "calling.end", call_id, 5.0)
    assert frames[1] == (
        "transcribe",
        {
            "state": "finished",
            "url": "https://sim.invalid/transcriptions/X.json",
            "recording_id": "X",
            "duration": 2.0,
            "size": 32000,
        },
    )
    assert frames[2] == ("stream", {"state": "finished", "url": url})
    assert [f[0] for f in frames[3:]] == ["state", "state"]


def test_pay_settles_per_scenario() -> None:
    peer = peer_with({"destinations": {B: {"outcome": "answer", "pay": {"state": "error"}}}})
    call_id = up(peer)
    params = {"control_id": "P", "payment_connector_url": "https://pay", "input": "dtmf"}
    assert cmd(peer, "calling.pay", call_id, 1.0, **params) == [("result", "200")]
    assert tick(peer, 3.0) == [("pay", {"state": "finished"})]
    other = up(peer, B, now=4.0)
    cmd(peer, "calling.pay", other, 5.0, **params)
    assert tick(peer, 7.0) == [("pay", {"state": "error"})]
    cmd(peer, "calling.pay", call_id, 8.0, **params)
    assert cmd(peer, "calling.pay.stop", call_id, 8.5, control_id="P")[1] == (
        "pay",
        {"state": "finished"},
    )
    cmd(peer, "calling.pay", call_id, 9.0, **params)
    assert cmd(peer, "calling.end", call_id, 9.5)[1] == ("pay", {"state": "error"})
    assert cmd(peer, "calling.pay", other, 10.0, control_id="P") == [("result", "400")]


def fax(kind: str, **params: Any) -> tuple[str, Frame]:
    return ("fax", {"fax": {"type": kind, "params": params}})


def test_send_and_receive_fax_page_by_page() -> None:
    script = {"outcome": "answer", "fax": {"pages": 2, "page_seconds": 3}}
    peer = peer_with({"destinations": {A: script}})
    call_id = up(peer)
    doc = "https://example.com/doc.pdf"
    params = {"control_id": "F", "document": doc, "identity": "+15551112222", "header_info": "h"}
    assert cmd(peer, "calling.send_fax", call_id, 1.0, **params) == [("result", "200")]
    assert tick(peer, 4.0) == [fax("page", direction="send", pages=1)]
    done = {
        "direction": "send",
        "document": doc,
        "identity": "+15551112222",
        "remote_identity": A,
        "pages": 2,
        "success": True,
        "result": "1231",
        "result_text": "Success",
        "format": "T.4",
    }
    assert tick(peer, 7.0) == [fax("page", direction="send", pages=2), fax("finished", **done)]
    cmd(peer, "calling.receive_fax", call_id, 8.0, control_id="F")
    frames = cmd(peer, "calling.receive_fax.stop", call_id, 9.0, control_id="F")
    stopped = frames[1][1]["fax"]["params"]
    assert (stopped["direction"], stopped["success"], stopped["pages"]) == ("receive", False, 0)
    assert stopped["result_text"] == "Stopped"
    assert cmd(peer, "calling.send_fax", call_id, 10.0, control_id="F") == [("result", "400")]


def test_a_failed_fax_and_a_fax_of_no_pages() -> None:
    script = {"outcome": "answer", "fax": {"pages": 0, "success": False}}
    peer = peer_with({"destinations": {A: script}})
    call_id = up(peer)
    cmd(peer, "calling.receive_fax", call_id, 1.0, control_id="F")
    [event] = tick(peer, 3.0)
    assert event[1]["fax"]["params"]["result_text"] == "Transmission failed"
    cmd(peer, "calling.send_fax", call_id, 4.0, control_id="F", document="d")
    frames = cmd(peer, "calling.end", call_id, 4.5)
    assert frames[1][1]["fax"]["params"]["result_text"] == "Call ended"


def test_inbound_fax_identities_are_swapped() -> None:
    sim = make_sim()
    peer = Peer(sim)
    peer.connect()
    peer.request("signalwire.receive", {"contexts": ["office"]}, 0.0)
    call_id = sim.inject_inbound_call(context="office", from_number=B, to_number=A, now=0.0)
    peer.drain()
    cmd(peer, "calling.answer", call_id, 0.5)
    cmd(peer, "calling.receive_fax", call_id, 1.0, control_id="F")
    [event] = tick(peer, 3.0)[-1:]
    params = event[1]["fax"]["params"]
    assert (params["identity"], params["remote_identity"]) == (A, B)


def test_echo_events_and_timeout() -> None:
    peer = peer_with()
    call_id = up(peer)
    assert cmd(peer, "calling.echo", call_id, 1.0, timeout=2, status_url="u") == [
        ("result", "200"),
        ("echo", {"state": "echoing"}),
    ]
    assert tick(peer, 3.0) == [("echo", {"state": "finished"})]
    cmd(peer, "calling.echo", call_id, 4.0)
    assert peer.sim.next_deadline() is None
    assert cmd(peer, "calling.end", call_id, 5.0)[1] == ("echo", {"state": "finished"})
    assert cmd(peer, "calling.echo", up(peer, now=6.0), 7.0, timeout=-1) == [("result", "400")]


# ---- reply-only verbs and the queue ------------------------------------------------------

SIP = {"type": "sip", "params": {"to": "sip:bob@example.com"}}


@pytest.mark.parametrize(
    ("method", "params", "events"),
    [
        ("calling.hold", {}, [("hold", {"state": "hold"})]),
        ("calling.unhold", {}, [("hold", {"state": "unhold"})]),
        ("calling.denoise", {}, [("denoise", {"denoised": True})]),
        ("calling.denoise.stop", {}, [("denoise", {"denoised": False})]),
        ("calling.transfer", {"dest": "swml:x"}, []),
        ("calling.bind_digit", {"digits": "*1", "bind_method": "calling.play"}, []),
        ("calling.bind_digit", {"digits": "1", "bind_method": "m", "params": {}, "realm": "r"}, []),
        ("calling.clear_digit_bindings", {}, []),
        ("calling.join_conference", {"name": "c"}, []),
        ("calling.leave_conference", {"conference_id": "c"}, []),
        ("calling.join_room", {"name": "r"}, []),
        ("calling.leave_room", {}, []),
        ("calling.live_transcribe", {"action": {"start": {}}}, []),
        ("calling.live_translate", {"action": {"stop": {}}}, []),
        ("calling.user_event", {"event": "x"}, []),
        (
            "calling.refer",
            {"device": SIP},
            [
                (
                    "refer",
                    {
                        "state": "success",
                        "sip_refer_to": "sip:bob@example.com",
                        "sip_refer_response_code": "202",
                        "sip_notify_response_code": "200",
                    },
                )
            ],
        ),
    ],
)
def test_reply_only_verbs(method: str, params: Frame, events: View) -> None:
    peer = peer_with()
    call_id = up(peer)
    frames = peer.call_cmd(method, call_id, 1.0, **params)
    assert frames[0]["result"]["code"] == "200"
    assert isinstance(frames[0]["result"]["message"], str)
    assert view(frames[1:]) == events
    assert peer.sim.live_actions() == []


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("calling.transfer", {}),
        ("calling.transfer", {"dest": ""}),
        ("calling.bind_digit", {"digits": "1"}),
        ("calling.bind_digit", {"digits": "1", "bind_method": "m", "params": 1}),
        ("calling.join_conference", {}),
        ("calling.leave_conference", {}),
        ("calling.join_room", {"name": 5}),
        ("calling.live_transcribe", {}),
        ("calling.live_translate", {"action": "start"}),
        ("calling.refer", {}),
        ("calling.refer", {"device": {"type": "sip"}}),
        ("calling.refer", {"device": {"type": "phone", "params": {"to": "+15550000001"}}}),
        ("calling.refer", {"device": {"type": "sip", "params": {"to": "bob"}}}),
        ("calling.queue.enter", {"control_id": "Q"}),
        ("calling.queue.enter", {"queue_name": "q"}),
        ("calling.queue.leave", {}),
    ],
)
def test_reply_only_verbs_check_their_required_params(method: str, params: Frame) -> None:
    peer = peer_with()
    call_id = up(peer)
    assert cmd(peer, method, call_id, 1.0, **params) == [("result", "400")]


def test_queue_enter_leave_and_call_end() -> None:
    peer = peer_with(None)
    call_id = up(peer)
    frames = peer.call_cmd("calling.queue.enter", call_id, 1.0, control_id="Q", queue_name="q")
    entered = view(frames)
    assert entered[0] == ("result", "200")
    queue_id = entered[1][1].pop("id")
    assert entered[1] == ("queue", {"status": "enqueue", "name": "q", "position": 1, "size": 1})
    leave = "calling.queue.leave"
    assert cmd(peer, leave, call_id, 2.0, queue_name="other") == [("result", "404")]
    assert cmd(peer, leave, call_id, 2.0, queue_name="q", queue_id="nope") == [("result", "404")]
    left = cmd(peer, leave, call_id, 2.0, queue_name="q", queue_id=queue_id, control_id="L")
    assert left[1][1]["status"] == "leave"
    cmd(peer, "calling.queue.enter", call_id, 3.0, control_id="Q", queue_name="q")
    cmd(peer, "calling.record", call_id, 3.0, control_id="R", record={})  # not a queue
    assert cmd(peer, "calling.queue.leave", call_id, 3.5, queue_name="x") == [("result", "404")]
    ended = cmd(peer, "calling.end", call_id, 4.0)
    assert [f[0] for f in ended] == ["result", "queue", "record", "state", "state"]
    assert peer.sim.live_actions() == []


# ---- the rules every verb shares ---------------------------------------------------------

VERBS: list[tuple[str, Frame]] = [
    ("calling.record", {"control_id": "X", "record": {}}),
    ("calling.collect", {"control_id": "X", "digits": {"max": 1}}),
    ("calling.play_and_collect", {"control_id": "X", "play": PROMPT, "collect": {"speech": {}}}),
    ("calling.detect", {"control_id": "X", "detect": {"type": "machine"}}),
    ("calling.send_digits", {"control_id": "X", "digits": "1"}),
    ("calling.tap", {"control_id": "X", "tap": TAP, "device": RTP}),
    ("calling.stream", {"control_id": "X", "url": "wss://x"}),
    ("calling.transcribe", {"control_id": "X"}),
    ("calling.pay", {"control_id": "X", "payment_connector_url": "https://p"}),
    ("calling.send_fax", {"control_id": "X", "document": "https://d"}),
    ("calling.receive_fax", {"control_id": "X"}),
    ("calling.queue.enter", {"control_id": "X", "queue_name": "q"}),
    ("calling.echo", {}),
    ("calling.hold", {}),
    ("calling.refer", {"device": SIP}),
]


@pytest.mark.parametrize(("method", "params"), VERBS)
def test_every_verb_409_unanswered_404_gone_409_duplicate(method: str, params: Frame) -> None:
    peer = peer_with({"destinations": {B: {"outcome": "no_answer"}}})
    ringing = call_id_of(peer.dial([[phone(B)]], 0.0, tag="R"), B)
    assert cmd(peer, method, ringing, 0.5, **params) == [("result", "409")]
    call_id = up(peer, now=1.0)
    assert cmd(peer, method, call_id, 2.5, **params)[0] == ("result", "200")
    if "control_id" in params:
        assert cmd(peer, method, call_id, 2.5, **params) == [("result", "409")]
    cmd(peer, "calling.end", call_id, 3.0)
    assert cmd(peer, method, call_id, 4.0, **params) == [("result", "404")]
    assert [a.call_id for a in peer.sim.live_actions()] == []
    assert peer.sim.live_calls()[0].call_id == ringing


@pytest.mark.parametrize(
    "method",
    [
        "calling.record.stop",
        "calling.tap.stop",
        "calling.stream.stop",
        "calling.transcribe.stop",
        "calling.pay.stop",
        "calling.send_fax.stop",
        "calling.detect.stop",
        "calling.collect.stop",
        "calling.play_and_collect.stop",
    ],
)
def test_controls_need_a_known_control_id_of_their_verb(method: str) -> None:
    peer = peer_with()
    call_id = up(peer)
    cmd(peer, "calling.receive_fax", call_id, 1.0, control_id="F")  # another verb's id
    assert cmd(peer, method, call_id, 1.0, control_id="F") == [("result", "404")]
    assert cmd(peer, method, call_id, 1.0) == [("result", "400")]


def test_unmodelled_methods_still_get_an_error() -> None:
    peer = peer_with()
    call_id = up(peer)
    for method in ("calling.ai", "calling.record.volume", "calling.tap.pause"):
        assert cmd(peer, method, call_id, 1.0, control_id="X") == [("error", -32601)]


def test_an_expired_session_drops_its_actions_silently() -> None:
    sim = make_sim(resume_grace=1.0)
    peer = Peer(sim)
    peer.connect()
    call_id = call_id_of(peer.dial([[phone(A)]], 0.0), A)
    peer.tick(0.2)
    cmd(peer, "calling.tap", call_id, 0.5, control_id="T", tap=TAP, device=RTP)
    cmd(peer, "calling.record", call_id, 0.5, control_id="R", record={})
    assert len(sim.live_actions()) == 2
    peer.conn.connection_lost(1.0)
    sim.handle_timer(2.5)
    assert sim.live_calls() == []
    assert sim.live_actions() == []
    assert sim.next_deadline() is None


# ---- the script of an inbound call -------------------------------------------------------


def test_inbound_calls_follow_their_script_or_the_callers_destination() -> None:
    scenario = {"destinations": {B: {"outcome": "answer", "input": {"digits": "4"}}}}
    sim = make_sim(scenario=Scenario.from_dict(scenario))
    peer = Peer(sim)
    peer.connect()
    peer.request("signalwire.receive", {"contexts": ["office"]}, 0.0)
    by_caller = sim.inject_inbound_call(context="office", from_number=B, to_number=A, now=0.0)
    scripted = sim.inject_inbound_call(
        context="office", from_number=B, to_number=A, now=0.0, script={"input": {"digits": "8"}}
    )
    peer.drain()
    for call_id in (by_caller, scripted):
        cmd(peer, "calling.answer", call_id, 0.5)
        cmd(peer, "calling.collect", call_id, 1.0, control_id="C", digits={"max": 1})
    assert tick(peer, 2.0) == [
        result("digit", digits="4", terminator=""),
        result("digit", digits="8", terminator=""),
    ]
    with pytest.raises(Exception, match="script"):
        sim.inject_inbound_call(context="office", from_number=B, to_number=A, now=0.0, script=5)  # type: ignore[arg-type]


# ---- scenario keys -------------------------------------------------------------------------


def test_script_keys_in_the_scenario_file() -> None:
    from relay_proto.simulator import (
        CallScript,
        Detection,
        FaxScript,
        Input,
        InputKind,
        Outcome,
        RecordScript,
    )

    data = {
        "outcome": "answer",
        "input": [
            {"digits": "12", "terminator": "#", "after": 2, "interval": 0.1},
            {"speech": "yes", "confidence": 0.5, "seconds": 3},
            "no_input",
            "no_match",
            {"no_match": True, "after": 0.5},
        ],
        "record": {"seconds": 5, "end": "terminator"},
        "machine": {"result": "MACHINE", "after": 2, "ready_after": 4},
        "fax": {"tone": "CNG", "tone_after": 0.5, "pages": 3, "page_seconds": 1, "success": False},
        "digit": "5",
        "pay": {"state": "error", "after": 1},
    }
    script = Outcome.from_dict(data).script
    assert script == CallScript(
        inputs=(
            Input(kind=InputKind.DIGITS, digits="12", terminator="#", after=2, interval=0.1),
            Input(kind=InputKind.SPEECH, text="yes", confidence=0.5, seconds=3),
            Input(kind=InputKind.NO_INPUT),
            Input(kind=InputKind.NO_MATCH),
            Input(kind=InputKind.NO_MATCH, after=0.5),
        ),
        record=RecordScript(seconds=5, end="terminator"),
        machine=Detection(result="MACHINE", after=2, ready_after=4),
        fax=FaxScript(tone="CNG", tone_after=0.5, pages=3, page_seconds=1, success=False),
        digit=Input(kind=InputKind.DIGITS, digits="5"),
        pay=("error", 1.0),
    )
    assert script.input_for(4).kind is InputKind.NO_MATCH
    assert script.input_for(5).kind is InputKind.NO_INPUT
    short = Outcome.from_dict({"outcome": "answer", "machine": "UNKNOWN", "pay": "finished"})
    assert (short.script.machine.result, short.script.pay) == ("UNKNOWN", ("finished", 2.0))
    assert Outcome.from_dict({"outcome": "busy"}).script == CallScript()
    with pytest.raises(Exception, match="CallScript"):
        Outcome(kind=Outcome.from_dict({"outcome": "busy"}).kind, script={})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "extra",
    [
        {"inputs": []},
        {"input": "maybe"},
        {"input": 5},
        {"input": [{"digits": "12x"}]},
        {"input": {"digits": ""}},
        {"input": {"digits": 12}},
        {"input": {"digits": "1", "terminator": "##"}},
        {"input": {"digits": "1", "terminator": "x"}},
        {"input": {"digits": "1", "pressed": True}},
        {"input": {"digits": "1", "after": -1}},
        {"input": {"digits": "1", "interval": "fast"}},
        {"input": {"digits": "1", "after": float("nan")}},
        {"input": {"speech": ""}},
        {"input": {"speech": "hi", "confidence": 2}},
        {"input": {"speech": "hi", "confidence": True}},
        {"input": {"speech": "hi", "seconds": -1}},
        {"input": {"no_match": False}},
        {"input": {}},
        {"record": "nothing"},
        {"record": {"seconds": -1}},
        {"record": {"end": "hangup"}},
        {"record": {"length": 2}},
        {"machine": "ROBOT"},
        {"machine": {"result": "HUMAN", "when": 1}},
        {"machine": 5},
        {"fax": "BEEP"},
        {"fax": {"pages": -1}},
        {"fax": {"pages": True}},
        {"fax": {"success": "yes"}},
        {"fax": {"page_seconds": -2}},
        {"fax": {"colour": True}},
        {"digit": "x"},
        {"digit": 5},
        {"pay": "paid"},
        {"pay": {"state": "finished", "after": -1}},
        {"pay": {"amount": 1}},
    ],
)
def test_script_keys_are_validated_strictly(extra: Frame) -> None:
    from relay_proto import LocalProtocolError

    with pytest.raises(LocalProtocolError):
        Scenario.from_dict({"destinations": {A: {"outcome": "answer", **extra}}})
