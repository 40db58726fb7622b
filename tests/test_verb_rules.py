"""The rules of each verb's params (``_verb_rules``), shared by client and simulator."""

from __future__ import annotations

from typing import Any

import pytest

from relay_proto import LocalProtocolError
from relay_proto import _verb_rules as rules

TAP_RTP = {
    "tap": {"type": "audio", "params": {"direction": "both"}},
    "device": {"type": "rtp", "params": {"addr": "127.0.0.1", "port": 4000}},
}


def test_builders_copy_and_fill_defaults() -> None:
    given: dict[str, Any] = {}
    out = rules.build_record(given)
    assert out == {"record": {"audio": {}}}
    assert given == {}
    tap = rules.build_tap({"tap": {}, "device": {"type": "ws", "params": {"uri": "wss://x"}}})
    assert tap["tap"] == {"type": "audio", "params": {}}
    detect = rules.build_detect({"detect": {"type": "fax"}})
    assert detect == {"detect": {"type": "fax", "params": {}}}
    play = rules.build_play({"play": [{"type": "tts", "text": "hi"}], "volume": 2, "loop": 0})
    assert rules.build_play({"play": [{"type": "tts", "text": "hi"}]})["play"]
    assert play == {"play": [{"type": "tts", "params": {"text": "hi"}}], "volume": 2.0, "loop": 0}
    assert rules.build_any({"a": [1]}) == {"a": [1]}
    assert rules.build_tap(TAP_RTP) == TAP_RTP
    assert rules.dtmf("d", "0123456789*#ABCDabcdwW") == "0123456789*#ABCDabcdwW"


@pytest.mark.parametrize(
    ("build", "params", "match"),
    [
        (rules.build_record, {"record": []}, "record: must be an object"),
        (rules.build_record, {"record": {"audio": {"beep": 1}}}, "beep"),
        (rules.build_record, {"record": {"audio": {"format": "ogg"}}}, "format"),
        (rules.build_record, {"record": {"audio": {"direction": "up"}}}, "direction"),
        (rules.build_record, {"record": {"audio": {"initial_timeout": -1}}}, "initial_timeout"),
        (rules.build_record, {"record": {"audio": {"end_silence_timeout": "x"}}}, "end_silence"),
        (rules.build_record, {"record": {"audio": {"terminators": "z"}}}, "terminators"),
        (rules.build_collect, {}, "digits' or 'speech"),
        (rules.build_collect, {"digits": {"max": 0}}, "max"),
        (rules.build_collect, {"digits": {"terminators": "?"}}, "terminators"),
        (rules.build_collect, {"digits": {"digit_timeout": 0}}, "digit_timeout"),
        (rules.build_collect, {"speech": {"hints": "yes"}}, "hints"),
        (rules.build_collect, {"speech": {"speech_timeout": 0}}, "speech_timeout"),
        (rules.build_collect, {"speech": {}, "initial_timeout": 0}, "initial_timeout"),
        (rules.build_collect, {"speech": {}, "partial_results": "yes"}, "partial_results"),
        (rules.build_play_and_collect, {"play": [], "collect": {"speech": {}}}, "media"),
        (rules.build_play_and_collect, {"play": [{"type": "silence", "duration": 1}]}, "collect"),
        (
            rules.build_play_and_collect,
            {"play": [{"type": "silence", "duration": 1}], "collect": {"speech": {}}, "volume": 50},
            "volume",
        ),
        (rules.build_detect, {}, "detect: must be an object"),
        (rules.build_detect, {"detect": {}}, "detect.type"),
        (rules.build_detect, {"detect": {"type": "dog"}}, "detect.type"),
        (rules.build_detect, {"detect": {"type": "digit", "params": {"digits": "x"}}}, "digits"),
        (rules.build_detect, {"detect": {"type": "machine", "params": []}}, "detect.params"),
        (rules.build_detect, {"detect": {"type": "fax"}, "timeout": 0}, "timeout"),
        (rules.build_send_digits, {}, "digits"),
        (rules.build_send_digits, {"digits": ""}, "digits"),
        (rules.build_tap, {"device": {}}, "tap: must be an object"),
        (rules.build_tap, {**TAP_RTP, "tap": {"type": "video"}}, "tap.type"),
        (rules.build_tap, {**TAP_RTP, "tap": {"params": {"direction": "x"}}}, "direction"),
        (rules.build_tap, {"tap": {}, "device": {"type": "rtp"}}, "device.params"),
        (rules.build_tap, {"tap": {}, "device": {"type": "sip", "params": {}}}, "device.type"),
        (rules.build_tap, {"tap": {}, "device": {"params": {}}}, "device.type"),
        (rules.build_tap, {"tap": {}, "device": {"type": "rtp", "params": {"port": 1}}}, "addr"),
        (
            rules.build_tap,
            {"tap": {}, "device": {"type": "rtp", "params": {"addr": "h", "port": 0}}},
            "port",
        ),
        (rules.build_tap, {"tap": {}, "device": {"type": "ws", "params": {}}}, "uri"),
        (rules.build_play, {"play": [{"type": "tts", "text": "x"}], "loop": -1}, "loop"),
        (rules.build_play, {"play": [{"type": "tts", "text": "x"}], "volume": 41}, "volume"),
        (rules.build_any, [], "params: must be an object"),
        (rules.build_any, {"x": float("nan")}, "finite"),
    ],
)
def test_bad_params_are_refused_by_field(build: Any, params: Any, match: str) -> None:
    with pytest.raises(LocalProtocolError, match=match):
        build(params)
