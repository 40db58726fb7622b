"""Input validation helpers (most paths are exercised through the client tests too)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from relay_proto import LocalProtocolError
from relay_proto import _validate as validate


@pytest.mark.parametrize("value", [0, -1, 1.0, True, "3", None])
def test_positive_int_rejects(value: Any) -> None:
    with pytest.raises(LocalProtocolError, match="where"):
        validate.positive_int("where", value)


def test_positive_int_accepts() -> None:
    assert validate.positive_int("x", 7) == 7


@pytest.mark.parametrize("value", [float("inf"), float("nan"), True, "1", None])
def test_number_rejects(value: Any) -> None:
    with pytest.raises(LocalProtocolError):
        validate.number("x", value)


def test_numbers_accept() -> None:
    assert validate.number("x", -3) == -3.0
    assert validate.positive_number("x", 0.25) == 0.25
    with pytest.raises(LocalProtocolError):
        validate.positive_number("x", 0)


def test_devices_plan_accepts_tuples_and_copies() -> None:
    params = {"to_number": "+15550000002", "from_number": "+4"}
    device = {"type": "phone", "params": params}
    with pytest.raises(LocalProtocolError, match=r"E\.164"):
        validate.devices_plan([[device]])
    params["from_number"] = "+442071234567"
    plan = validate.devices_plan(((device,),))
    assert plan == [[device]]
    assert plan[0][0] is not device
    assert plan[0][0]["params"] is not params


@pytest.mark.parametrize("value", [None, 5, b"ab", {"a": 1}])
def test_devices_plan_rejects_non_lists(value: Any) -> None:
    with pytest.raises(LocalProtocolError, match="list of lists"):
        validate.devices_plan(value)


def test_media_list_keeps_other_types_as_given() -> None:
    assert validate.media_list([{"type": "ringtone", "name": "us", "duration": 2}]) == [
        {"type": "ringtone", "params": {"name": "us", "duration": 2}}
    ]
    assert validate.media_list(({"type": "x", "params": {"k": (1, 2)}},)) == [
        {"type": "x", "params": {"k": [1, 2]}}
    ]


def test_json_params_and_contexts() -> None:
    source = {"a": {"b": [1]}}
    copy = validate.json_params("p", source)
    assert copy == source
    assert copy["a"] is not source["a"]
    assert validate.contexts_list(("a", "b")) == ["a", "b"]
    for bad in ("ab", 3, [""], [None]):
        with pytest.raises(LocalProtocolError):
            validate.contexts_list(bad)


class _Text(str):
    pass


class _Number(int):
    pass


def test_json_params_copy_and_name_the_bad_value_by_its_path() -> None:
    params = {"a": [1, (2.5, None), {"b": True}], "s": _Text("x"), "n": _Number(3)}
    copied = validate.json_params("params", params)
    assert copied == {"a": [1, [2.5, None], {"b": True}], "s": "x", "n": 3}
    assert copied["a"] is not params["a"]
    with pytest.raises(LocalProtocolError, match=r"params\.a\[1\]\[0\]: numbers must be finite"):
        validate.json_params("params", {"a": [1, [float("nan")]]})
    with pytest.raises(LocalProtocolError, match=r"params\.x\[0\]\.y: set is not a JSON value"):
        validate.json_params("params", {"x": [{"y": {1}}]})
    with pytest.raises(LocalProtocolError, match=r"params\.k: object keys must be strings"):
        validate.json_params("params", {"k": {1: "v"}})


# ---- the one rule set, as the simulator applies it to wire params -------------------------


def _phone(**params: object) -> dict[str, object]:
    return {
        "type": "phone",
        "params": {"to_number": "+15550000002", "from_number": "+1555", **params},
    }


def _sip(**params: object) -> dict[str, object]:
    return {"type": "sip", "params": {"to": "sip:b@x", "from": "sip:a@x", **params}}


@pytest.mark.parametrize(
    ("device", "field"),
    [
        ({"type": "phone", "params": {"to_number": "555", "from_number": "+1555"}}, "to_number"),
        (_sip(headers=[{"name": "Foo", "value": "v"}]), "headers[0].name"),
        (_sip(to="b@x"), ".to"),
        ({"type": "webrtc", "params": {"timeout": 1.5}}, "timeout"),
        (_sip(max_duration=0), "max_duration"),
        (_phone(timeout=10**13), "timeout"),
        ({"type": "", "params": {}}, "type"),
        ({"type": "phone", "params": [1]}, "params"),
        ([1], "devices[0][0]"),
    ],
)
def test_client_and_simulator_refuse_the_same_devices(device: object, field: str) -> None:
    with pytest.raises(LocalProtocolError, match=re.escape(field)):
        validate.devices_plan([[device]])
    with pytest.raises(LocalProtocolError, match=re.escape(field)):
        validate.check_dial({"tag": "t", "devices": [[device]]})


def test_check_dial_returns_the_devices_as_given() -> None:
    device = _phone(timeout=30)
    request = validate.check_dial({"tag": "t", "devices": [[device]], "max_duration": 60})
    assert (request.tag, request.plan, request.node_id, request.max_duration) == (
        "t",
        [[device]],
        None,
        60,
    )
    assert request.plan[0][0] is device  # not copied: the wire params are fresh already
    for params in (
        {"devices": [[device]]},
        {"tag": "t", "devices": [[device]], "region": ""},
        {"tag": "t", "devices": [[device]], "max_price_per_minute": 0},
        {"tag": "t", "devices": [[device]], "max_duration": 1.5},
    ):
        with pytest.raises(LocalProtocolError):
            validate.check_dial(params)


def test_media_rules_are_shared_and_the_wire_form_is_nested() -> None:
    for flat in ({"type": "ringtone", "duration": 2}, {"type": "audio", "url": "u", "duration": 0}):
        with pytest.raises(LocalProtocolError):
            validate.media_list([flat])
        nested = {"type": flat["type"], "params": {k: v for k, v in flat.items() if k != "type"}}
        with pytest.raises(LocalProtocolError):
            validate.check_media("play[0]", nested)
    ok = {"type": "tts", "params": {"text": "hi"}}
    assert validate.check_media("play[0]", ok) == ("tts", {"text": "hi"})
    for bad in (
        {"type": "tts", "text": "hi"},
        {**ok, "text": "x"},
        "tts",
        {"type": 1, "params": {}},
    ):
        with pytest.raises(LocalProtocolError, match=r"play\[0\]"):
            validate.check_media("play[0]", bad)


def test_numbers_are_bounded_on_both_sides() -> None:
    assert validate.positive_int("n", 10**12) == 10**12
    for check in (validate.positive_int, validate.number, validate.positive_number):
        with pytest.raises(LocalProtocolError, match="at most"):
            check("n", 10**12 + 1)
    assert validate.non_negative_int("loop", 0) == 0
    for bad in (-1, 1.0, True, 10**13):
        with pytest.raises(LocalProtocolError, match="loop"):
            validate.non_negative_int("loop", bad)
    assert validate.check_contexts(["a"]) == ["a"]
    for bad_contexts in (("a",), [""], "a"):
        with pytest.raises(LocalProtocolError, match="contexts"):
            validate.check_contexts(bad_contexts)


def test_the_cache_of_valid_numbers_is_bounded_and_changes_no_verdict() -> None:
    """Numbers that passed the E.164 rule are remembered (a set lookup next time); the set
    is emptied when full, and a number is judged the same whether remembered or not."""
    for index in range(validate._E164_SEEN_MAX + 10):
        number = f"+1{index:010d}"
        for _ in range(2):  # first by the rule, then from the cache
            validate.devices_plan([[{"type": "phone", "params": _numbers(number)}]])
        assert len(validate._E164_SEEN) <= validate._E164_SEEN_MAX
    for bad in ("+0123", "+1", "15550000001", "+1555000000000000"):
        for _ in range(2):
            with pytest.raises(LocalProtocolError, match="to_number"):
                validate.check_dial({"tag": "t", "devices": [[_phone(to_number=bad)]]})
        assert bad not in validate._E164_SEEN


def _numbers(number: str) -> dict[str, str]:
    return {"to_number": number, "from_number": "+15550000001"}
