"""Issue 8 regressions that show in the Sans-IO core alone, through its public API.

A ``ClientConnection`` is fed frames written by hand (the server side of a transcript), so
each test reads as the exchange that broke the client before its fix.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from relay_proto import ClientConnection, RemoteProtocolError

RESULT: dict[str, Any] = {
    "identity": "p@space",
    "protocol": "signalwire_core",
    "authorization": {"project": "p", "scopes": ["calling"], "signature": "sig"},
}


def frames(core: ClientConnection) -> list[dict[str, Any]]:
    return [json.loads(text) for text in core.data_to_send()]


def connect(core: ClientConnection, now: float, *, restored: bool | None = None) -> list[Any]:
    """Send ``signalwire.connect`` and answer it; return the frames sent with it."""
    core.connect(now=now)
    sent = frames(core)
    (request,) = [frame for frame in sent if frame.get("method") == "signalwire.connect"]
    result = dict(RESULT)
    if restored is not None:
        result["session_restored"] = restored
    core.receive(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}), now=now)
    return sent


def new_core(**options: Any) -> ClientConnection:
    core = ClientConnection(project="p", token="t", **options)
    connect(core, 0.0)
    frames(core)
    return core


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [990, 1_000, 100_000])
def test_deep_ping_payload_is_answered_or_refused(depth: int) -> None:
    """Issue 8 item 2 at the core's own stack depth (it does not crash here on 3.11; the
    adapter's deeper stack does: see test_hostile_server.py)."""
    core = new_core()
    params = f'{{"payload":{deep(depth)}}}'
    ping = f'{{"jsonrpc":"2.0","id":"srv-1","method":"signalwire.ping","params":{params}}}'
    with contextlib.suppress(RemoteProtocolError):  # documented: refusing the frame is fine
        core.receive(ping, now=1.0)
    replies = [frame for frame in frames(core) if frame.get("id") == "srv-1"]
    assert len(replies) <= 1


@pytest.mark.parametrize("place", ["event", "result"])
def test_deep_json_elsewhere_is_carried_or_refused(place: str) -> None:
    """Where the core parses but does not echo, deep JSON must not crash it either."""
    core = new_core()
    nested = deep(100_000)
    if place == "event":
        text = (
            '{"jsonrpc":"2.0","id":"e1","method":"signalwire.event","params":{"event_type":'
            f'"calling.call.state","event_channel":"c","timestamp":0,"params":{nested}}}}}'
        )
    else:
        request_id = core.execute("signalwire.noop", {})
        frames(core)
        text = f'{{"jsonrpc":"2.0","id":"{request_id}","result":{{"x":{nested}}}}}'
    with contextlib.suppress(RemoteProtocolError):
        core.receive(text, now=1.0)
    frames(core)
    assert core.protocol == "signalwire_core"


def test_unsent_ping_then_restored_reconnect() -> None:
    core = new_core(ping_interval=5.0)
    core.handle_timer(now=5.0)  # the core's own ping is queued ...
    assert core.has_data_to_send  # ... and never written: the write stalled
    core.connection_lost(now=6.0)
    connect(core, 7.0, restored=True)
    frames(core)
    assert core.protocol == "signalwire_core"


def test_refused_context_is_not_resent_on_reconnect() -> None:
    core = new_core(contexts=["office"])
    request_id = core.subscribe(["nope"])
    assert request_id is not None
    frames(core)
    refusal = {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {"code": -32602, "message": "unknown context"},
    }
    core.receive(json.dumps(refusal), now=1.0)
    core.connection_lost(now=2.0)
    sent = connect(core, 3.0, restored=False)
    (request,) = [frame for frame in sent if frame.get("method") == "signalwire.connect"]
    assert request["params"].get("contexts") == ["office"]


def test_accepted_context_is_resent_on_reconnect() -> None:
    """The counterpart that must keep working: an accepted context survives a reconnect."""
    core = new_core(contexts=["office"])
    request_id = core.subscribe(["sales"])
    frames(core)
    accepted = {"jsonrpc": "2.0", "id": request_id, "result": {"code": "200"}}
    core.receive(json.dumps(accepted), now=1.0)
    core.connection_lost(now=2.0)
    sent = connect(core, 3.0, restored=False)
    (request,) = [frame for frame in sent if frame.get("method") == "signalwire.connect"]
    assert request["params"]["contexts"] == ["office", "sales"]
