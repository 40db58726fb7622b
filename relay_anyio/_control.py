"""The simulator's control socket: inject inbound calls and messages, and read what
happened, from outside the process (``relay serve --control PORT``, ``serve_simulator(
control_port=...)``). For tests and benchmarks of a deployment of many worker processes.

A line protocol on a loopback TCP socket: each request is one JSON object on one line,
each answer one JSON object on one line, in order. ``{"op": "call", "context": ...,
"from": ..., "to": ..., "count": n, "script": {...}}`` offers ``n`` inbound calls (the
simulator spreads them over the sessions of the context) and answers ``{"ok": true,
"call_ids": [...]}``; ``{"op": "message", ...}`` delivers a message; ``{"op": "stats"}``,
``{"op": "calls"}``, ``{"op": "actions"}`` and ``{"op": "messages"}`` report. A request
that fails answers ``{"ok": false, "error": ...}`` and the connection stays usable. See
docs/simulator.md, "Many consumers".

Invariants: it listens on loopback only; a line longer than ``MAX_LINE`` bytes, or a
connection gone, ends that connection and nothing else; nothing secret is ever read or
written (the control socket knows no credentials).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from relay_proto import LocalProtocolError
from relay_proto.simulator import LiveAction, LiveCall, LiveMessage

__all__ = ["MAX_CALLS", "MAX_LINE", "ControlTarget", "serve_control"]

logger = logging.getLogger("relay_anyio.simulator")

#: The longest request line accepted (bytes, the newline excluded).
MAX_LINE = 1 << 20
#: The most calls one ``call`` request may offer.
MAX_CALLS = 100_000


class ControlTarget(Protocol):
    """What the control socket drives (a ``SimulatorServer``)."""

    @property
    def connection_count(self) -> int: ...

    def live_calls(self) -> list[LiveCall]: ...

    def all_calls(self) -> list[LiveCall]: ...

    def all_messages(self) -> list[LiveMessage]: ...

    def live_messages(self) -> list[LiveMessage]: ...

    def live_actions(self) -> list[LiveAction]: ...

    async def inject_inbound_call(
        self,
        *,
        context: str,
        from_number: str,
        to_number: str,
        script: Mapping[str, object] | None = None,
    ) -> str: ...

    async def inject_message(
        self,
        *,
        context: str,
        from_number: str,
        to_number: str,
        body: str = "",
        media: list[str] | None = None,
        tags: list[str] | None = None,
    ) -> str: ...


Request = dict[str, Any]
Op = Callable[[ControlTarget, Request], Awaitable[dict[str, Any]]]


async def serve_control(
    target: ControlTarget, listener: anyio.abc.Listener[anyio.abc.SocketStream]
) -> None:
    """Serve the control protocol on every connection of ``listener`` until cancelled."""

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await _serve_lines(target, stream)

    await listener.serve(handle)


async def _serve_lines(target: ControlTarget, stream: anyio.abc.SocketStream) -> None:
    reader = BufferedByteReceiveStream(stream)
    while True:
        try:
            line = await reader.receive_until(b"\n", MAX_LINE)
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
            return
        except anyio.DelimiterNotFound:
            await stream.send(_encode({"ok": False, "error": "request line too long"}))
            return
        if not line.strip():
            continue
        answer = await answer_line(target, line)
        try:
            await stream.send(_encode(answer))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return


async def answer_line(target: ControlTarget, line: bytes) -> dict[str, Any]:
    """The answer to one request line (never raises for bad input: it says what was wrong)."""
    try:
        request = json.loads(line)
    except ValueError:
        return {"ok": False, "error": "a request is one JSON object per line"}
    if not isinstance(request, dict):
        return {"ok": False, "error": "a request is one JSON object per line"}
    name = request.get("op")
    op = _OPS.get(name) if isinstance(name, str) else None
    if op is None:
        return {"ok": False, "error": f"op must be one of {sorted(_OPS)}"}
    try:
        return await op(target, request)
    except (LocalProtocolError, ValueError, TypeError) as exc:
        return {"ok": False, "error": str(exc)}


def _encode(answer: Mapping[str, Any]) -> bytes:
    return json.dumps(answer, separators=(",", ":")).encode() + b"\n"


def _text(request: Request, key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key!r} must be a non-empty string")
    return value


def _strings(request: Request, key: str) -> list[str] | None:
    value = request.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{key!r} must be a list of strings")
    return value


async def _call(target: ControlTarget, request: Request) -> dict[str, Any]:
    context, from_number, to_number = (_text(request, k) for k in ("context", "from", "to"))
    count = request.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_CALLS:
        raise ValueError(f"'count' must be an integer from 1 to {MAX_CALLS}")
    script = request.get("script")
    if script is not None and not isinstance(script, dict):
        raise ValueError("'script' must be an object")
    call_ids: list[str] = []
    for _ in range(count):
        call_ids.append(
            await target.inject_inbound_call(
                context=context, from_number=from_number, to_number=to_number, script=script
            )
        )
    return {"ok": True, "call_ids": call_ids}


async def _message(target: ControlTarget, request: Request) -> dict[str, Any]:
    body = request.get("body", "")
    if not isinstance(body, str):
        raise ValueError("'body' must be a string")
    message_id = await target.inject_message(
        context=_text(request, "context"),
        from_number=_text(request, "from"),
        to_number=_text(request, "to"),
        body=body,
        media=_strings(request, "media"),
        tags=_strings(request, "tags"),
    )
    return {"ok": True, "message_id": message_id}


async def _stats(target: ControlTarget, request: Request) -> dict[str, Any]:
    calls = target.all_calls()
    inbound = [call for call in calls if call.direction == "inbound"]
    return {
        "ok": True,
        "connections": target.connection_count,
        "live_calls": len(target.live_calls()),
        "live_actions": len(target.live_actions()),
        "live_messages": len(target.live_messages()),
        "calls": len(calls),
        "states": dict(Counter(call.state.value for call in calls)),
        "end_reasons": dict(Counter(call.end_reason for call in calls if call.end_reason)),
        "inbound_by_session": dict(Counter(call.protocol for call in inbound)),
        "messages_by_session": dict(
            Counter(m.protocol for m in target.all_messages() if m.direction == "inbound")
        ),
    }


def _live(request: Request) -> bool:
    live = request.get("live", False)
    if not isinstance(live, bool):
        raise ValueError("'live' must be true or false")
    return live


async def _calls(target: ControlTarget, request: Request) -> dict[str, Any]:
    calls = target.live_calls() if _live(request) else target.all_calls()
    return {
        "ok": True,
        "calls": [
            {
                "call_id": call.call_id,
                "node_id": call.node_id,
                "tag": call.tag,
                "direction": call.direction,
                "state": call.state.value,
                "end_reason": call.end_reason,
                "protocol": call.protocol,
                "context": call.context,
            }
            for call in calls
        ],
    }


async def _actions(target: ControlTarget, request: Request) -> dict[str, Any]:
    """The running actions (plays aside): the simulator keeps no history of them."""
    return {
        "ok": True,
        "actions": [
            {
                "call_id": action.call_id,
                "control_id": action.control_id,
                "verb": action.verb,
                "state": action.state,
            }
            for action in target.live_actions()
        ],
    }


async def _messages(target: ControlTarget, request: Request) -> dict[str, Any]:
    messages = target.live_messages() if _live(request) else target.all_messages()
    return {
        "ok": True,
        "messages": [
            {
                "message_id": message.message_id,
                "direction": message.direction,
                "state": message.state,
                "reason": message.reason,
                "context": message.context,
                "protocol": message.protocol,
                "from": message.from_number,
                "to": message.to_number,
            }
            for message in messages
        ],
    }


_OPS: dict[str, Op] = {
    "call": _call,
    "message": _message,
    "stats": _stats,
    "calls": _calls,
    "actions": _actions,
    "messages": _messages,
}
