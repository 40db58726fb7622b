"""Garbage in, replies out: hostile params never crash the simulator.

Every request frame (random params, or a valid request with one field replaced by random
JSON) gets exactly one reply with its id, ``receive`` raises nothing (the frames are valid
JSON-RPC), and the clock can still run afterwards. Random text only ever raises
``RemoteProtocolError``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_server_core import NODE, A, B, Peer, call_id_of, make_sim, phone, tts

from relay_proto._errors import RemoteProtocolError
from relay_proto.simulator import Outcome, OutcomeKind, Scenario

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _setup() -> tuple[Peer, str, str]:
    sim = make_sim(scenario=Scenario(destinations={B: Outcome(kind=OutcomeKind.NO_ANSWER)}))
    peer = Peer(sim)
    peer.connect()
    answered = call_id_of(peer.dial([[phone(A)]], 0.0, tag="T0"), A)
    peer.tick(0.2)
    peer.call_cmd("calling.play", answered, 0.3, control_id="P0", play=[tts("hello")])
    ringing = call_id_of(peer.dial([[phone(B)]], 0.3, tag="T1"), B)
    return peer, answered, ringing


def _valid(method: str, answered: str, ringing: str) -> dict[str, Any]:
    call = {"node_id": NODE, "call_id": answered}
    table: dict[str, dict[str, Any]] = {
        "calling.dial": {
            "tag": "TX",
            "devices": [[phone(A, timeout=5, max_duration=3)]],
            "max_duration": 2,
        },
        "calling.end": {"node_id": NODE, "call_id": ringing, "reason": "cancel"},
        "calling.answer": call,
        "calling.play": {**call, "control_id": "PX", "play": [tts("hi")], "loop": 2, "volume": 1},
        "calling.play.pause": {**call, "control_id": "P0"},
        "calling.play.resume": {**call, "control_id": "P0"},
        "calling.play.stop": {**call, "control_id": "P0"},
        "calling.play.volume": {**call, "control_id": "P0", "volume": 3},
        "signalwire.receive": {"contexts": ["office"]},
        "signalwire.ping": {"timestamp": 1.0},
        "signalwire.connect": {"authentication": {"project": "x", "token": "y"}},
    }
    return table[method]


METHODS = [
    "calling.dial",
    "calling.end",
    "calling.answer",
    "calling.play",
    "calling.play.pause",
    "calling.play.resume",
    "calling.play.stop",
    "calling.play.volume",
    "signalwire.receive",
    "signalwire.ping",
    "signalwire.connect",
]


def _mutate(value: Any, path: list[int], replacement: Any) -> Any:
    """Replace one node of a JSON tree, chosen by ``path`` (indices modulo the fan-out)."""
    if not path or not isinstance(value, dict | list) or not value:
        return replacement
    if isinstance(value, dict):
        key = sorted(value)[path[0] % len(value)]
        return {**value, key: _mutate(value[key], path[1:], replacement)}
    index = path[0] % len(value)
    return [*value[:index], _mutate(value[index], path[1:], replacement), *value[index + 1 :]]


@settings(deadline=None, max_examples=300)
@given(
    method=st.sampled_from(METHODS),
    path=st.lists(st.integers(min_value=0, max_value=7), max_size=6),
    replacement=json_values,
    whole=st.booleans(),
)
def test_hostile_params_get_exactly_one_reply(
    method: str, path: list[int], replacement: Any, whole: bool
) -> None:
    peer, answered, ringing = _setup()
    params = replacement if whole else _mutate(_valid(method, answered, ringing), path, replacement)
    frames = peer.request(method, params, 1.0, rid="fuzz")
    replies = [f for f in frames if f.get("id") == "fuzz" and "method" not in f]
    assert len(replies) == 1
    peer.tick(10_000.0)
    peer.tick(1e12)


@settings(deadline=None)
@given(text=st.text(max_size=30) | st.binary(max_size=30))
def test_random_text_only_raises_remote_protocol_error(text: str | bytes) -> None:
    peer, _, _ = _setup()
    with contextlib.suppress(RemoteProtocolError):
        peer.conn.receive(text, 1.0)
    peer.drain()


def test_huge_numbers_are_refused_not_crashing() -> None:
    peer, answered, _ = _setup()
    huge = 10**400
    cases = [
        ("calling.dial", {"tag": "H", "devices": [[phone(A, timeout=huge)]]}),
        ("calling.dial", {"tag": "H", "devices": [[phone(A)]], "max_duration": huge}),
        (
            "calling.play",
            {
                "node_id": NODE,
                "call_id": answered,
                "control_id": "H",
                "play": [{"type": "silence", "params": {"duration": huge}}],
            },
        ),
        (
            "calling.play",
            {
                "node_id": NODE,
                "call_id": answered,
                "control_id": "H",
                "play": [tts("x")],
                "loop": huge,
            },
        ),
    ]
    for method, params in cases:
        (reply,) = peer.request(method, params, 1.0, rid="h")
        assert reply["result"]["code"] == "400", (method, json.dumps(reply))
