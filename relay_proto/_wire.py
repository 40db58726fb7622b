"""JSON-RPC 2.0 framing shared by both roles.

One JSON object per WebSocket text message. ``parse`` turns a text message into one of
three message values or raises ``RemoteProtocolError``; the ``encode_*`` helpers build the
text of outgoing frames. Nothing here holds state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, cast, overload

from ._errors import RemoteProtocolError

JSONObject = dict[str, Any]

# A set lookup, not a regex: exactly the ASCII strings "200".."299" (str.isdigit would
# also accept non-ASCII digits).
_SUCCESS_CODES = frozenset(str(code) for code in range(200, 300))
_encode_str = json.encoder.encode_basestring_ascii
# The C encoder made once, not per call as ``JSONEncoder.encode`` does (the saving is about
# a microsecond a frame). ASCII-only output: a lone surrogate that came in (JSON allows
# "\\ud800") and is echoed back stays an escape instead of breaking the adapter's UTF-8
# encoding. No circular check (markers None): every object encoded here is a fresh copy
# made by ``_validate`` or built by the core, never a cycle.
_IterEncode = Callable[[Any, int], Iterable[str]]
_make_encoder: Callable[..., _IterEncode] | None = getattr(json.encoder, "c_make_encoder", None)
if _make_encoder is not None:
    _iterencode = _make_encoder(
        None, json.JSONEncoder().default, _encode_str, None, ":", ",", False, False, False
    )
else:  # pragma: no cover - CPython always has the C accelerator
    _iterencode = cast(
        _IterEncode,
        json.JSONEncoder(
            ensure_ascii=True, separators=(",", ":"), allow_nan=False, check_circular=False
        ).iterencode,
    )


def _encode(obj: Any) -> str:
    return "".join(_iterencode(obj, 0))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value - value:  # inf - inf is NaN (truthy); finite - finite is 0.0: cheaper than isfinite
        raise ValueError(f"number {text} is out of range")
    return value


# NaN/Infinity and numbers that overflow a float are refused on the way in, so nothing
# parsed here can later fail to encode (a ping echo, a raw params escape hatch).
_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_decode = _decoder.decode
# The C scanner itself: ``raw_decode`` is a Python wrapper around it that only turns
# StopIteration into an error (``parse`` re-decodes with full rules on any failure).
_scan_once: Callable[[str, int], tuple[Any, int]] = _decoder.scan_once  # type: ignore[attr-defined]


# Parsed messages are named tuples: built for every frame, they must be cheap to make.


class Request(NamedTuple):
    """A request (or notification, when ``id`` is None) from the peer."""

    id: str | int | None
    method: str
    params: Any


class Result(NamedTuple):
    """A successful reply."""

    id: str | int
    result: Any


class ErrorReply(NamedTuple):
    """A JSON-RPC error reply."""

    id: str | int | None
    code: int
    message: str
    data: Any


Message = Request | Result | ErrorReply
_new_tuple = tuple.__new__


def dumps(obj: JSONObject) -> str:
    """Encode one frame (compact, ASCII-only, no NaN)."""
    return _encode(obj)


def encode_request(request_id: str, method: str, params: JSONObject) -> str:
    # The fixed envelope by hand around the encoded params: no dict, one encoder pass less.
    return (
        '{"jsonrpc":"2.0","id":'
        + _encode_str(request_id)
        + ',"method":'
        + _encode_str(method)
        + ',"params":'
        + _encode(params)
        + "}"
    )


def encode_ack(request_id: str | int | None) -> str:
    """The empty result that acknowledges an event (the most frequent frame there is;
    ``_connection.receive`` inlines the string-id case)."""
    if type(request_id) is str:
        return '{"jsonrpc":"2.0","id":' + _encode_str(request_id) + ',"result":{}}'
    return encode_result(request_id, {})


def encode_result(request_id: str | int | None, result: JSONObject) -> str:
    return _encode({"jsonrpc": "2.0", "id": request_id, "result": result})


def encode_pong(request_id: str | int, params: Any) -> str:
    """The reply to a server ``signalwire.ping``: its ``timestamp`` and ``payload`` echoed.

    What the peer sent may parse yet not encode (nested deeper than the encoder's
    recursion allows from where it runs): such a value is left out of the echo rather
    than let the error escape from ``receive()``.
    """
    fields = params if isinstance(params, dict) else {}
    for keys in (("timestamp", "payload"), ("timestamp",)):
        try:
            return encode_result(request_id, {key: fields[key] for key in keys if key in fields})
        except (RecursionError, ValueError):
            continue
    return encode_result(request_id, {})


def encode_error(request_id: str | int | None, code: int, message: str, data: Any = None) -> str:
    error: JSONObject = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return _encode({"jsonrpc": "2.0", "id": request_id, "error": error})


@overload
def parse(text: str | bytes) -> Message: ...
@overload
def parse(text: str | bytes, *, raw_events: bool) -> Message | JSONObject: ...


def parse(text: str | bytes, *, raw_events: bool = False) -> Message | JSONObject:
    """Parse one text message. Raises ``RemoteProtocolError`` on anything malformed.

    ``raw_events``: a ``signalwire.event`` request comes back as its checked frame object
    (a dict; its ``id`` valid as for any request) instead of a ``Request``. Reason: nine
    frames in ten are events, and a named tuple costs more to make than the rest of this.
    """
    if not isinstance(text, str):
        raise RemoteProtocolError("binary message received; RELAY frames are text")
    try:
        try:
            obj, end = _scan_once(text, 0)
        except (ValueError, StopIteration):
            end = -1
        if end != len(text):  # surrounding white space, extra data or an error: the full rules
            obj = _decode(text)
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, overlong integers
        raise RemoteProtocolError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise RemoteProtocolError("invalid JSON: nested too deeply") from None
    if type(obj) is not dict:  # the decoder makes plain dicts only
        raise RemoteProtocolError(f"frame is a JSON {type(obj).__name__}, not an object")
    msg_id = obj.get("id")
    if msg_id is not None and type(msg_id) is not str and type(msg_id) is not int:
        raise RemoteProtocolError("frame has an id that is neither a string nor an integer")
    method = obj.get("method")
    if method is not None:
        if type(method) is not str and not isinstance(method, str):
            raise RemoteProtocolError("frame has a non-string method")
        if raw_events and method == "signalwire.event":
            return obj
        # tuple.__new__ directly: a NamedTuple's own __new__ is a Python-level wrapper.
        return _new_tuple(Request, (msg_id, method, obj.get("params")))
    if msg_id is not None and "result" in obj:
        return _new_tuple(Result, (msg_id, obj["result"]))
    if "error" in obj:
        error = obj["error"]
        if not isinstance(error, dict):
            raise RemoteProtocolError("error reply whose error is not an object")
        code = error.get("code")
        if not isinstance(code, int) or isinstance(code, bool):
            code = -32000
        message = error.get("message")
        return ErrorReply(
            msg_id, code, message if isinstance(message, str) else "", error.get("data")
        )
    raise RemoteProtocolError("frame is neither a request nor a reply")


def timestamp(value: Any) -> float | None:
    """An envelope's ``timestamp`` as a float, or None (``parse`` has refused NaN/inf)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer too large for a float
        return None


def reply_failure(message: Result | ErrorReply) -> tuple[tuple[int, str] | None, Any]:
    """``((code, message) or None when it succeeded, error data)`` for a reply."""
    if isinstance(message, ErrorReply):
        return (message.code, message.message), message.data
    result = message.result
    # Reason: every reply comes here; a result without a failing string code (the usual
    # case) is told apart without a second call.
    code = result.get("code") if isinstance(result, dict) else None
    if not isinstance(code, str) or code in _SUCCESS_CODES:
        return None, None
    return result_failure(result), None


def result_failure(result: Any) -> tuple[int, str] | None:
    """Apply the RELAY ``code`` rule to a result: ``(code, message)`` if it is a failure.

    A result object carrying a string ``code`` that is not ``2xx`` is a failure with
    ``int(code)`` (or -1 when not numeric) and ``result.message``.
    """
    if not isinstance(result, dict):
        return None
    code = result.get("code")
    if not isinstance(code, str) or code in _SUCCESS_CODES:
        return None
    message = result.get("message")
    number = int(code) if code.isascii() and code.isdigit() else -1
    return number, message if isinstance(message, str) else ""


# ---- server side: the simulator's frames ----------------------------------------------
#
# The simulator sends about nine events per dial and reads as many acks: its frames are
# built from pieces encoded once (per session, per leg) and acks are recognised by their
# text. ``test_server_frames`` pins every piece to what a plain encoder / decoder makes of
# the same values, byte for byte.

encode_string = _encode_str  # one JSON string literal, ASCII-only (the C helper)

# The settings of ``dumps`` for a lone number (an int stamp, or its ValueError on NaN).
_encode_number = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode

# An ack as ``encode_ack`` writes it: ``_ACK_HEAD + id + _ACK_TAIL``.
_ACK_HEAD = '{"jsonrpc":"2.0","id":"'
_ACK_TAIL = '","result":{}}'
_ACK_START, _ACK_END = len(_ACK_HEAD), -len(_ACK_TAIL)


def parse_ack(text: str | bytes) -> str | None:
    """The id of an ack (an empty result with a string id) in the compact form, or None.

    Reason: acks are half the frames a server reads, and a prefix/suffix test is several
    times cheaper than ``parse``. Correct for any text: between the fixed head and tail, a
    run of printable characters without ``"`` or ``\\`` is a JSON string that means exactly
    itself, so a non-None answer is what ``parse`` would give. Anything else (escapes,
    other key orders, white space) returns None and must go through ``parse``.
    """
    if type(text) is not str or not (text.startswith(_ACK_HEAD) and text.endswith(_ACK_TAIL)):
        return None
    event_id = text[_ACK_START:_ACK_END]
    if '"' in event_id or "\\" in event_id or not event_id.isprintable():
        return None
    return event_id


class EventFramer:
    """``signalwire.event`` frames of one session (channel and project fixed).

    Reason: encoding the whole envelope per event was the simulator's largest cost, so the
    envelope's fixed pieces are encoded once (per event type) and only the id, the stamp and
    the already-encoded params are new per frame, joined in one call. The frame equals
    ``encode_request(id, "signalwire.event", {"event_type", "event_channel", "timestamp",
    "project_id", "space_id", "params"})``.
    """

    __slots__ = ("_channel", "_heads", "_project")

    def __init__(self, channel: str, project_id: str) -> None:
        self._channel = _encode_str(channel)
        self._heads: dict[str, str] = {}
        self._project = f',"project_id":{_encode_str(project_id)},"space_id":'

    def frame(
        self, event_id: str, event_type: str, stamp: float, space_id: str, params_json: str
    ) -> str:
        """One event frame; ``space_id`` comes from ``space_piece``."""
        head = self._heads.get(event_type)
        if head is None:
            head = self._heads[event_type] = (
                f',"method":"signalwire.event","params":{{"event_type":{_encode_str(event_type)}'
                f',"event_channel":{self._channel},"timestamp":'
            )
        # json writes a finite float as its repr (reason: no encoder call); anything else (an
        # int stamp, or the ValueError for NaN/infinity) takes the encoder's path.
        number = (
            repr(stamp) if type(stamp) is float and stamp - stamp == 0.0 else _encode_number(stamp)
        )
        return (
            f'{{"jsonrpc":"2.0","id":{_encode_str(event_id)}{head}{number}'
            f"{self._project}{space_id}{params_json}}}}}"
        )


def space_piece(space_id: str) -> str:
    """The encoded ``space_id`` piece that ``EventFramer.frame`` takes."""
    return f'{_encode_str(space_id)},"params":'


class LegJSON(NamedTuple):
    """The fixed parts of one call leg's event params, encoded once (reason: a leg
    publishes four or five state events that differ only in their state)."""

    head: str
    tail: str
    device: str


def leg_json(
    call_id: str, node_id: str, tag: str, direction: str, device: JSONObject, segment_id: str
) -> LegJSON:
    device_json = _encode(device)
    return LegJSON(
        f'{{"call_id":{_encode_str(call_id)},"node_id":{_encode_str(node_id)}'
        f',"tag":{_encode_str(tag)},"call_state":',
        f',"direction":{_encode_str(direction)},"segment_id":{_encode_str(segment_id)}'
        f',"device":{device_json}',
        device_json,
    )


def leg_state_params(
    leg: LegJSON, state_json: str, end_reason: str | None, context: str | None
) -> str:
    """``{call_id, node_id, tag, call_state, direction, segment_id, device[, end_reason]
    [, context]}``; ``state_json`` is the state already encoded (``encode_string``, once per
    state)."""
    if end_reason is None and context is None:
        return f"{leg.head}{state_json}{leg.tail}}}"
    extra = ""
    if end_reason is not None:
        extra = f',"end_reason":{_encode_str(end_reason)}'
    if context is not None:
        extra += f',"context":{_encode_str(context)}'
    return f"{leg.head}{state_json}{leg.tail}{extra}}}"


def dial_params(
    tag: str,
    node_id: str,
    state: str,
    winner: str | None = None,
    failure: tuple[str, str] | None = None,
) -> str:
    """``{tag, node_id, dial_state[, call][, reason, source]}``: ``winner`` is the winning
    leg's ``leg_state_params`` (its ``dial_winner`` is added here, the string ``"true"``
    as the JS SDK's types have it); ``failure`` is ``(reason, source)`` of a failed dial."""
    text = (
        f'{{"tag":{_encode_str(tag)},"node_id":{_encode_str(node_id)}'
        f',"dial_state":{_encode_str(state)}'
    )
    if winner is not None:
        text += f',"call":{winner[:-1]},"dial_winner":"true"}}'
    if failure is not None:
        text += f',"reason":{_encode_str(failure[0])},"source":{_encode_str(failure[1])}'
    return text + "}"
