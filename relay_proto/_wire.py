"""JSON-RPC 2.0 framing shared by both roles.

One JSON object per WebSocket text message. ``parse`` turns a text message into one of
three message values or raises ``RemoteProtocolError``; the ``encode_*`` helpers build the
text of outgoing frames. Nothing here holds state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, cast

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
    """The empty result that acknowledges an event (the most frequent frame there is)."""
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


def parse(text: str | bytes) -> Message:
    """Parse one text message. Raises ``RemoteProtocolError`` on anything malformed."""
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
    return result_failure(message.result), None


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
