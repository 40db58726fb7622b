"""JSON-RPC framing: parse and encode, checked against the stdlib ``json`` module."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relay_proto import RemoteProtocolError
from relay_proto import _wire as wire


def test_encoders_round_trip_through_json() -> None:
    assert json.loads(wire.encode_request("1", "m", {"a": 1})) == {
        "jsonrpc": "2.0",
        "id": "1",
        "method": "m",
        "params": {"a": 1},
    }
    assert json.loads(wire.encode_result(7, {})) == {"jsonrpc": "2.0", "id": 7, "result": {}}
    assert json.loads(wire.encode_error(None, -32600, "bad")) == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": "bad"},
    }
    assert json.loads(wire.encode_error("x", 1, "m", data=[1]))["error"]["data"] == [1]


def test_output_is_ascii_and_compact() -> None:
    text = wire.dumps({"t": "héllo \ud800", "n": [1, 2]})
    assert text.isascii()
    assert " " not in text.replace("h\\u00e9llo \\ud800", "")
    assert json.loads(text) == {"t": "héllo \ud800", "n": [1, 2]}
    with pytest.raises(ValueError):
        wire.dumps({"x": float("nan")})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"id":"a","method":"m","params":{"x":1}}', wire.Request("a", "m", {"x": 1})),
        ('{"method":"m"}', wire.Request(None, "m", None)),
        ('{"id":3,"result":[1]}', wire.Result(3, [1])),
        ('{"id":"a","result":null}', wire.Result("a", None)),
        ('{"id":"a","method":null,"result":{}}', wire.Result("a", {})),
        (
            '{"id":"a","error":{"code":-32000,"message":"m","data":{"d":1}}}',
            wire.ErrorReply("a", -32000, "m", {"d": 1}),
        ),
        ('{"id":null,"error":{}}', wire.ErrorReply(None, -32000, "", None)),
        ('{"id":"a","error":{"code":true,"message":5}}', wire.ErrorReply("a", -32000, "", None)),
        ('{"id":"a","error":{"code":"500"}}', wire.ErrorReply("a", -32000, "", None)),
    ],
)
def test_parse(text: str, expected: Any) -> None:
    assert wire.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        b"{}",
        "",
        "{",
        "[1]",
        "1",
        "NaN",
        '{"id":"a","result":Infinity}',
        '{"id":"a","result":-Infinity}',
        '{"id":"a","result":1e999}',
        '{"id":"a","result":' + "1" * 5000 + "}",
        '{"id":1.5,"result":{}}',
        '{"id":false,"result":{}}',
        '{"id":"a","method":["m"]}',
        '{"id":"a"}',
        '{"id":null,"result":{}}',
        '{"id":"a","error":[1]}',
        "[" * 50_000 + "]" * 50_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
    ],
)
def test_parse_garbage(text: str | bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        wire.parse(text)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"code": "200", "message": "OK"}, None),
        ({"code": "299"}, None),
        ({}, None),
        ({"code": 404}, None),  # not a string: no RELAY code
        ("text", None),
        ({"code": "404", "message": "Not found"}, (404, "Not found")),
        ({"code": "2000", "message": 5}, (2000, "")),
        ({"code": "20x"}, (-1, "")),
        ({"code": "²⁰⁰"}, (-1, "")),
        ({"code": ""}, (-1, "")),
    ],
)
def test_result_failure(body: Any, expected: Any) -> None:
    assert wire.result_failure(body) == expected
