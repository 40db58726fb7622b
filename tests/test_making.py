"""The core's quick constructors make exactly what the events' own constructors make."""

from __future__ import annotations

import dataclasses

import pytest

from relay_proto import CallInfo, CallState, CallStateChanged, DialAnswered, Leg
from relay_proto._making import call_info, call_state_changed, dial_answered, new_leg


def _same(made: object, built: object) -> None:
    assert type(made) is type(built)
    assert made == built
    assert repr(made) == repr(built)
    for f in dataclasses.fields(built):  # type: ignore[arg-type]
        assert getattr(made, f.name) is getattr(built, f.name)


def test_call_state_changed_matches_its_constructor() -> None:
    raw = {"call_id": "c1"}
    made = call_state_changed("c1", "n1", "t1", CallState.ENDED, CallState.ENDING, "busy", 1.5, raw)
    built = CallStateChanged(
        call_id="c1",
        node_id="n1",
        tag="t1",
        state=CallState.ENDED,
        previous=CallState.ENDING,
        end_reason="busy",
        timestamp=1.5,
        raw=raw,
    )
    _same(made, built)
    assert hash(made) == hash(built)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.state = CallState.CREATED  # type: ignore[misc]


def test_call_info_matches_its_constructor() -> None:
    device = {"type": "phone", "params": {}}
    raw = {"call_id": "c2"}
    made = call_info("c2", "n2", None, device, "outbound", CallState.ANSWERED, "ctx", raw)
    built = CallInfo(
        call_id="c2",
        node_id="n2",
        tag=None,
        device=device,
        direction="outbound",
        state=CallState.ANSWERED,
        context="ctx",
        raw=raw,
    )
    _same(made, built)


def test_leg_matches_its_constructor() -> None:
    device = {"type": "sip", "params": {}}
    made = new_leg("c3", "n3", device, CallState.RINGING, None)
    built = Leg(call_id="c3", node_id="n3", device=device, state=CallState.RINGING, end_reason=None)
    _same(made, built)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.end_reason = "x"  # type: ignore[misc]


def test_dial_answered_matches_its_constructor() -> None:
    info = call_info("c4", "n4", "t4", {}, "outbound", CallState.ANSWERED, None, {})
    legs = (new_leg("c4", "n4", {}, CallState.ANSWERED, None),)
    _same(dial_answered("t4", info, legs), DialAnswered(tag="t4", call=info, legs=legs))
