"""Frames and a harness for transcript-style client-core tests.

The frames are built here with ``json.dumps`` and read back with ``json.loads``: an encoder
and decoder independent of ``relay_proto._wire``, so the core and these tests cannot share
one framing mistake. Ids and tags are deterministic (``r1``, ``r2``, ... and ``tag1``, ...),
and time is whatever the test says it is.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from relay_proto import ClientConnection, Connected, Event

JSON = dict[str, Any]

PHONE_A: JSON = {
    "type": "phone",
    "params": {"to_number": "+15550000002", "from_number": "+15550000001"},
}
PHONE_B: JSON = {
    "type": "phone",
    "params": {"to_number": "+15550000003", "from_number": "+15550000001"},
}
PHONE_C: JSON = {
    "type": "phone",
    "params": {"to_number": "+15550000004", "from_number": "+15550000001"},
}


# ---------------------------------------------------------------------------- frames


def request(frame_id: str | int | None, method: str, params: Any) -> str:
    frame: JSON = {"jsonrpc": "2.0", "method": method, "params": params}
    if frame_id is not None:
        frame["id"] = frame_id
    return json.dumps(frame)


def result(frame_id: str | int, body: Any = None) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": frame_id, "result": {} if body is None else body})


def ok(frame_id: str, message: str = "OK") -> str:
    return result(frame_id, {"code": "200", "message": message})


def error(frame_id: str | int | None, code: int, message: str, data: Any = None) -> str:
    err: JSON = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return json.dumps({"jsonrpc": "2.0", "id": frame_id, "error": err})


def event(
    frame_id: str | int | None, event_type: str, params: Any, *, timestamp: Any = 1721930000.5
) -> str:
    envelope: JSON = {
        "event_type": event_type,
        "event_channel": "signalwire_SIG",
        "timestamp": timestamp,
        "project_id": "P-UUID",
        "space_id": "S-UUID",
        "params": params,
    }
    return request(frame_id, "signalwire.event", envelope)


def state_params(
    call_id: str,
    state: str,
    *,
    tag: str | None = "tag1",
    node_id: str = "NODE-1",
    end_reason: str | None = None,
    device: JSON | None = None,
) -> JSON:
    inner: JSON = {
        "call_id": call_id,
        "node_id": node_id,
        "call_state": state,
        "direction": "outbound",
        "device": device if device is not None else PHONE_A,
    }
    if tag is not None:
        inner["tag"] = tag
    if end_reason is not None:
        inner["end_reason"] = end_reason
    return inner


def dial_params(
    tag: str,
    dial_state: str,
    *,
    call_id: str | None = None,
    node_id: str = "NODE-1",
    winner: Any = True,
    **extra: Any,
) -> JSON:
    inner: JSON = {"tag": tag, "node_id": node_id, "dial_state": dial_state, **extra}
    if call_id is not None:
        inner["call"] = {
            "call_id": call_id,
            "node_id": node_id,
            "tag": tag,
            "device": PHONE_A,
            "dial_winner": winner,
        }
    return inner


# ---------------------------------------------------------------------------- harness


class Client:
    """A ``ClientConnection`` with deterministic ids, a clock, and a transcript view."""

    def __init__(self, **kwargs: Any) -> None:
        ids = itertools.count(1)
        tags = itertools.count(1)
        self._events = itertools.count(1)
        kwargs.setdefault("project", "P-UUID")
        kwargs.setdefault("token", "PT-secret")
        kwargs.setdefault("ping_interval", None)
        kwargs.setdefault("silence_timeout", None)
        self.core = ClientConnection(
            id_factory=lambda: f"r{next(ids)}",
            tag_factory=lambda: f"tag{next(tags)}",
            **kwargs,
        )
        self.now = 0.0

    # input
    def feed(self, text: str | bytes) -> list[Event]:
        return self.core.receive(text, now=self.now)

    def event(self, event_type: str, params: Any, **kwargs: Any) -> list[Event]:
        """Deliver an event with a fresh id and check it was acked (and nothing else sent)."""
        event_id = f"ev{next(self._events)}"
        events = self.feed(event(event_id, event_type, params, **kwargs))
        out = self.sent()
        assert out[0] == {"jsonrpc": "2.0", "id": event_id, "result": {}}, out
        self.extra = out[1:]
        return events

    def state(self, call_id: str, state: str, **kwargs: Any) -> list[Event]:
        return self.event("calling.call.state", state_params(call_id, state, **kwargs))

    def dial_event(self, tag: str, dial_state: str, **kwargs: Any) -> list[Event]:
        return self.event("calling.call.dial", dial_params(tag, dial_state, **kwargs))

    def tick(self, now: float) -> list[Event]:
        self.now = now
        return self.core.handle_timer(now=now)

    # output
    def sent(self) -> list[JSON]:
        frames = self.core.data_to_send()
        for frame in frames:
            assert isinstance(frame, str)
        return [json.loads(frame) for frame in frames]

    def sent_one(self) -> JSON:
        out = self.sent()
        assert len(out) == 1, out
        return out[0]

    # scripted steps
    def connect(
        self, protocol: str = "signalwire_SIG_1", **result_extra: Any
    ) -> tuple[JSON, list[Event]]:
        request_id = self.core.connect(now=self.now)
        frame = self.sent_one()
        assert frame["id"] == request_id
        assert frame["method"] == "signalwire.connect"
        body = {"identity": "id@example", "protocol": protocol, "authorization": {}}
        events = self.feed(result(request_id, {**body, **result_extra}))
        assert isinstance(events[0], Connected)
        return frame, events

    def dial(self, devices: Any = None, **kwargs: Any) -> tuple[str, JSON]:
        """Dial (READY session) and return ``(tag, the calling.dial frame)``."""
        kwargs.setdefault("now", self.now)
        tag = self.core.dial([[PHONE_A]] if devices is None else devices, **kwargs)
        frame = self.sent_one()
        assert frame["method"] == "calling.dial"
        return tag, frame

    def answered_call(self, call_id: str = "CALL-1", **kwargs: Any) -> tuple[str, list[Event]]:
        """Dial one device and get it answered; return ``(tag, events of the answer)``."""
        tag, frame = self.dial(**kwargs)
        assert self.feed(ok(frame["id"], "Dialing")) == []
        self.state(call_id, "created", tag=tag)
        self.state(call_id, "answered", tag=tag)
        events = self.dial_event(tag, "answered", call_id=call_id)
        return tag, events


def ended(frame: JSON, call_id: str, reason: str) -> bool:
    return frame.get("method") == "calling.end" and frame["params"] == {
        "node_id": "NODE-1",
        "call_id": call_id,
        "reason": reason,
    }
