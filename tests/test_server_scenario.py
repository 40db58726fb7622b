"""Scenario values and the scenario file format."""

from __future__ import annotations

from typing import Any

import pytest

from relay_proto._errors import LocalProtocolError
from relay_proto.simulator import Faults, Outcome, OutcomeKind, Refusal, Scenario


def test_from_dict_full_example() -> None:
    scenario = Scenario.from_dict(
        {
            "default": {"outcome": "answer", "after": 0.2},
            "destinations": {
                "+15550000001": {"outcome": "busy", "after": 0.5},
                "+15550000002": {"outcome": "noAnswer"},
                "sip:x@y": {"outcome": "answer", "after": 1, "hangup_after": 3},
            },
            "faults": {
                "duplicate_events": True,
                "delay_events": 0.5,
                "drop_after_frames": 10,
                "disconnect_after_dial": "restart",
                "dial_refused": {"code": "500", "message": "boom"},
                "create_call_after_refusal": True,
            },
            "play_seconds_per_char": 0.05,
            "ring_timeout": 20,
        }
    )
    assert scenario.default == Outcome(kind=OutcomeKind.ANSWER, after=0.2)
    assert scenario.outcome_for("+15550000001") == Outcome(kind=OutcomeKind.BUSY, after=0.5)
    assert scenario.outcome_for("+15550000002").kind is OutcomeKind.NO_ANSWER
    assert scenario.outcome_for("sip:x@y").hangup_after == 3
    assert scenario.outcome_for("+1999") is scenario.default
    assert scenario.outcome_for(None) is scenario.default
    assert scenario.faults == Faults(
        duplicate_events=True,
        delay_events=0.5,
        drop_after_frames=10,
        disconnect_after_dial="restart",
        dial_refused=Refusal(code="500", message="boom"),
        create_call_after_refusal=True,
    )
    assert scenario.play_seconds_per_char == 0.05
    assert scenario.ring_timeout == 20
    assert Scenario.from_dict({}) == Scenario()
    assert OutcomeKind.ANSWER.end_reason is None
    assert OutcomeKind.NO_ANSWER.end_reason == "noAnswer"


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"defaults": {}},
        {"default": "answer"},
        {"default": {"outcome": "maybe"}},
        {"default": {"outcome": 1}},
        {"default": {"outcome": "busy", "after": -1}},
        {"default": {"outcome": "busy", "after": "1"}},
        {"default": {"outcome": "busy", "after": float("nan")}},
        {"default": {"outcome": "busy", "wait": 1}},
        {"default": {"outcome": "answer", "hangup_after": 0}},
        {"destinations": []},
        {"destinations": {"+1": "busy"}},
        {"faults": {"duplicate": True}},
        {"faults": {"duplicate_events": 1}},
        {"faults": {"delay_events": -0.5}},
        {"faults": {"drop_after_frames": 0}},
        {"faults": {"drop_after_frames": True}},
        {"faults": {"drop_after_frames": 1.5}},
        {"faults": {"disconnect_after_dial": "yes"}},
        {"faults": {"disconnect_after_dial": 1}},
        {"faults": {"dial_refused": "500"}},
        {"faults": {"dial_refused": {"message": "x"}}},
        {"faults": {"dial_refused": {"code": "500", "reason": "x"}}},
        {"faults": {"dial_refused": {"code": 1.5}}},
        {"faults": {"dial_refused": {"code": "500", "message": 5}}},
        {"play_seconds_per_char": -1},
        {"min_play_seconds": 0},
        {"play_default_seconds": 0},
        {"ring_timeout": 0},
        {"inbound_ring_timeout": True},
    ],
)
def test_from_dict_rejects_bad_input(data: Any) -> None:
    with pytest.raises(LocalProtocolError):
        Scenario.from_dict(data)


def test_direct_construction_is_validated() -> None:
    with pytest.raises(LocalProtocolError):
        Outcome(kind="busy")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        Refusal(code=True)
    with pytest.raises(LocalProtocolError):
        Faults(dial_refused={"code": "500"})  # type: ignore[arg-type]
