"""The one rule set for request params, shared by the client core and the simulator.

Every rule raises ``LocalProtocolError`` naming the offending field. The client calls the
normalising functions (``devices_plan``, ``media_list``, ``json_params``, ...), which return
fresh JSON-ready values (the caller's objects are never mutated or kept). The simulator
calls the ``check_*`` functions on parsed wire params, which accept only the nested wire
form, copy nothing, and apply the same per-field rules (it answers a failure with a
JSON-RPC ``-32602`` carrying the message).

Invariant: a number accepted here is finite and at most ``MAX_NUMBER`` in size, so it
converts to a float and any deadline computed from it means something.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from ._errors import LocalProtocolError
from ._wire import JSONObject

#: Bound on every number a rule accepts (about 31,700 years in seconds): beyond it, ints no
#: longer convert to float and deadlines stop meaning anything.
MAX_NUMBER = 1e12

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_SIP_URI = re.compile(r"sips?:[^\s]+")
#: Numbers that passed ``_E164`` (reason: a set lookup instead of a regex match, and the
#: same few numbers come back dial after dial); bounded, emptied when full.
_E164_SEEN: set[str] = set()
_E164_SEEN_MAX = 4096


def _fail(where: str, problem: str) -> LocalProtocolError:
    return LocalProtocolError(f"{where}: {problem}")


def _is_number(value: Any) -> bool:
    # comparisons (not float()) so a huge int is refused instead of overflowing; NaN fails
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and -MAX_NUMBER <= value <= MAX_NUMBER
    )


def positive_int(where: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(where, f"must be an integer, got {value!r}")
    if value <= 0:
        raise _fail(where, f"must be > 0, got {value}")
    if value > MAX_NUMBER:
        raise _fail(where, f"must be at most {MAX_NUMBER:.0e}, got {value}")
    return value


def non_negative_int(where: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_NUMBER:
        raise _fail(where, f"must be an integer from 0 to {MAX_NUMBER:.0e}, got {value!r}")
    return value


def secret(where: str, value: Any) -> str:
    """Like ``non_empty_str`` for credentials: the error never shows the value."""
    if not isinstance(value, str) or not value:
        raise _fail(where, f"must be a non-empty string, got a {type(value).__name__}")
    return value


def number(where: str, value: Any) -> float:
    if not _is_number(value):
        raise _fail(where, f"must be a finite number (at most {MAX_NUMBER:.0e}), got {value!r}")
    return float(value)


#: The range of a play's ``volume`` (dB), as the RELAY API documents it.
VOLUME_RANGE = (-40.0, 40.0)


def volume(where: str, value: Any) -> float:
    low, high = VOLUME_RANGE
    if not _is_number(value) or not low <= value <= high:
        raise _fail(where, f"must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def positive_number(where: str, value: Any) -> float:
    if not _is_number(value) or value <= 0:
        raise _fail(where, f"must be a finite number > 0 (at most {MAX_NUMBER:.0e}), got {value!r}")
    return float(value)


def non_empty_str(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(where, f"must be a non-empty string, got {value!r}")
    return value


def _sip_uri(where: str, value: Any) -> str:
    if not isinstance(value, str) or not _SIP_URI.fullmatch(value):
        raise _fail(where, f"must be a sip: or sips: URI, got {value!r}")
    return value


def _e164(value: str) -> bool:
    if _E164.fullmatch(value) is None:
        return False
    if len(_E164_SEEN) >= _E164_SEEN_MAX:
        _E164_SEEN.clear()
    _E164_SEEN.add(value)
    return True


def e164(where: str, value: Any) -> str:
    """A phone number in E.164 form (``+15551234567``)."""
    if isinstance(value, str) and (value in _E164_SEEN or _e164(value)):
        return value
    raise _fail(where, f"must be an E.164 number like +15551234567, got {value!r}")


def _phone(where: str, params: JSONObject) -> None:
    """``where`` is the device's path; field paths are built only for an error."""
    for key in ("to_number", "from_number"):
        value = params.get(key)
        if type(value) is str and value in _E164_SEEN:
            continue  # the usual case: a number seen before
        if isinstance(value, str) and _e164(value):
            continue
        if key not in params:
            raise _fail(f"{where}.params.{key}", "is required for a phone device")
        raise _fail(
            f"{where}.params.{key}", f"must be an E.164 number like +15551234567, got {value!r}"
        )


def _sip(where: str, params: JSONObject) -> None:
    where = f"{where}.params"
    for key in ("to", "from"):
        if key not in params:
            raise _fail(f"{where}.{key}", "is required for a sip device")
        _sip_uri(f"{where}.{key}", params[key])
    headers = params.get("headers")
    if headers is not None:
        if not isinstance(headers, list):
            raise _fail(f"{where}.headers", "must be a list of {name, value} objects")
        for index, header in enumerate(headers):
            here = f"{where}.headers[{index}]"
            if not isinstance(header, dict) or set(header) != {"name", "value"}:
                raise _fail(here, "must be an object with exactly 'name' and 'value'")
            name = header["name"]
            if not isinstance(name, str) or not name.startswith("X-") or len(name) < 3:
                raise _fail(f"{here}.name", f"must start with 'X-', got {name!r}")
            if not isinstance(header["value"], str):
                raise _fail(f"{here}.value", "must be a string")


def _device_params(where: str, dtype: object, params: JSONObject) -> None:
    """The rules of one device's params (open set of types: the others pass through);
    ``where`` is the device's path."""
    if dtype == "phone":
        _phone(where, params)
    elif dtype == "sip":
        _sip(where, params)
    # Ring and call limits, whatever the type (the simulator counts with them).
    if "timeout" in params:
        positive_int(f"{where}.params.timeout", params["timeout"])
    if "max_duration" in params:
        positive_int(f"{where}.params.max_duration", params["max_duration"])


def _device(where: str, device: Any) -> JSONObject:
    if type(device) is not dict and not isinstance(device, Mapping):
        raise _fail(where, f"a device must be an object with 'type' and 'params', got {device!r}")
    dtype = device.get("type")
    if type(dtype) is not str or not dtype:  # the path is built only for the error
        non_empty_str(f"{where}.type", dtype)
    params = device.get("params")
    if type(params) is not dict and not isinstance(params, Mapping):
        raise _fail(f"{where}.params", "must be an object")
    params = _deep_copy(params, where, ".params")
    _device_params(where, dtype, params)
    # The rest of the device, with a placeholder where the params (copied above) go: one
    # copy of them, not two, and the caller's key order kept.
    out: JSONObject = _deep_copy(
        {key: None if key == "params" else value for key, value in device.items()}, where
    )
    out["params"] = params
    return out


class _NotJSON(Exception):
    """Raised inside ``_copy``; the path to the bad value is collected while unwinding."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        self.path: list[str] = []


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise _NotJSON("numbers must be finite")
        return value
    if kind is dict or isinstance(value, Mapping):  # the exact type first: no ABC check
        out: JSONObject = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotJSON(f"object keys must be strings, got {key!r}")
            kind = type(item)
            if kind is str or kind is int or kind is bool or item is None:
                out[key] = item  # the first rule above, inlined: most leaves, no call each
                continue
            try:
                out[key] = _copy(item)
            except _NotJSON as bad:
                bad.path.append(f".{key}")
                raise
        return out
    if isinstance(value, list | tuple):
        items = []
        for index, item in enumerate(value):
            try:
                items.append(_copy(item))
            except _NotJSON as bad:
                bad.path.append(f"[{index}]")
                raise
        return items
    if isinstance(value, str | int):  # subclasses of the plain types
        return value
    raise _NotJSON(f"{kind.__name__} is not a JSON value")


def _deep_copy(value: Any, where: str, suffix: str = "") -> Any:
    """Copy a JSON-like value, refusing anything that would not encode.

    The error names ``where + suffix`` (two parts, so callers need not join them up front).
    """
    try:
        return _copy(value)
    except _NotJSON as bad:
        raise _fail(where + suffix + "".join(reversed(bad.path)), bad.problem) from None


def _is_list(value: Any) -> bool:
    # ``type(...) is list`` first: the usual case without the (slow) ABC checks.
    return type(value) is list or (
        not isinstance(value, str | bytes | Mapping) and isinstance(value, Sequence)
    )


def _plan(devices: Any, device: Callable[[str, Any], JSONObject]) -> list[list[JSONObject]]:
    """A dial plan's shape (a non-empty list of non-empty lists), ``device`` for each one."""
    if type(devices) is not list and not _is_list(devices):
        raise _fail("devices", "must be a list of lists of devices, e.g. [[{...}], [{...}]]")
    if not devices:
        raise _fail("devices", "must contain at least one group")
    plan: list[list[JSONObject]] = []
    for g, group in enumerate(devices):
        if type(group) is not list and not _is_list(group):
            raise _fail(
                f"devices[{g}]",
                "must be a list of devices (the outer list is serial, inner lists ring at once)",
            )
        if not group:
            raise _fail(f"devices[{g}]", "must contain at least one device")
        plan.append([device(f"devices[{g}][{d}]", item) for d, item in enumerate(group)])
    return plan


def devices_plan(devices: Any) -> list[list[JSONObject]]:
    """Validate a dial plan: a non-empty list of non-empty lists of devices."""
    return _plan(devices, _device)


def _media_params(where: str, mtype: str, params: JSONObject) -> None:
    """The rules of one media item's params (open set of types: the others pass through)."""
    if mtype == "tts":
        non_empty_str(f"{where}.text", params.get("text"))
    elif mtype == "audio":
        non_empty_str(f"{where}.url", params.get("url"))
    elif mtype == "ringtone":
        non_empty_str(f"{where}.name", params.get("name"))
    if mtype == "silence" or "duration" in params:
        positive_number(f"{where}.duration", params.get("duration"))


def media_list(media: Any) -> list[JSONObject]:
    """Normalise play media to the nested wire form; accept the flat seed form too."""
    if isinstance(media, str | bytes | Mapping) or not isinstance(media, Sequence) or not media:
        raise _fail("media", "must be a non-empty list of media objects")
    out = []
    for index, item in enumerate(media):
        where = f"media[{index}]"
        if not isinstance(item, Mapping):
            raise _fail(where, "must be an object like {'type': 'tts', 'text': 'Hello!'}")
        mtype = non_empty_str(f"{where}.type", item.get("type"))
        if "params" in item:
            _nested_only(where, item)
            params = item["params"]
            if not isinstance(params, Mapping):
                raise _fail(f"{where}.params", "must be an object")
        else:
            params = {key: value for key, value in item.items() if key != "type"}
        params = _deep_copy(params, f"{where}.params")
        _media_params(where, mtype, params)
        out.append({"type": mtype, "params": params})
    return out


def _nested_only(where: str, item: Mapping[str, Any]) -> None:
    extra = set(item) - {"type", "params"}
    if extra:
        raise _fail(where, f"mixes nested 'params' with flat keys {sorted(extra)}")


def json_params(where: str, value: Any) -> JSONObject:
    if not isinstance(value, Mapping):
        raise _fail(where, "must be an object")
    return dict(_deep_copy(value, where))


def contexts_list(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise _fail("contexts", "must be a list of context names")
    return [non_empty_str(f"contexts[{i}]", item) for i, item in enumerate(value)]


# ---- the same rules on parsed wire params (the simulator) -----------------------------


def _wire_device(where: str, device: Any) -> JSONObject:
    if type(device) is not dict:
        raise _fail(where, f"a device must be an object with 'type' and 'params', got {device!r}")
    dtype = device.get("type")
    if type(dtype) is not str or not dtype:  # the path is built only for the error
        non_empty_str(f"{where}.type", dtype)
    params = device.get("params")
    if type(params) is not dict:
        raise _fail(f"{where}.params", "must be an object")
    _device_params(where, dtype, params)
    return device


class DialRequest(NamedTuple):
    """The checked params of a ``calling.dial`` request (the devices as given, not copied)."""

    tag: str
    plan: list[list[JSONObject]]
    node_id: str | None
    max_duration: int | None


def check_dial(params: JSONObject) -> DialRequest:
    """The rules ``ClientConnection.dial`` applies, on the wire form of its params."""
    tag = params.get("tag")
    if type(tag) is not str or not tag:  # the plain check first, the precise one to fail
        tag = non_empty_str("tag", tag)
    plan = _plan(params.get("devices"), _wire_device)
    for name in ("region", "node_id"):
        if name in params:
            non_empty_str(name, params[name])
    if "max_price_per_minute" in params:
        positive_number("max_price_per_minute", params["max_price_per_minute"])
    max_duration = params.get("max_duration")
    if max_duration is not None:
        positive_int("max_duration", max_duration)
    return DialRequest(tag, plan, params.get("node_id"), max_duration)


def check_media(where: str, item: Any) -> tuple[str, JSONObject]:
    """One wire media item, nested form only: ``(type, params)``."""
    if type(item) is not dict or type(item.get("params")) is not dict:
        raise _fail(where, 'must be an object with "type" and a nested "params" object')
    mtype = non_empty_str(f"{where}.type", item.get("type"))
    _nested_only(where, item)
    params: JSONObject = item["params"]
    _media_params(where, mtype, params)
    return mtype, params


def check_contexts(value: Any) -> list[str]:
    """A wire ``contexts`` list (the rule of ``contexts_list``, lists only)."""
    if type(value) is not list:
        raise _fail("contexts", "must be a list of context names")
    return contexts_list(value)


class ConnectRequest(NamedTuple):
    """The checked params of a ``calling.connect`` request (as given, not copied)."""

    plan: list[list[JSONObject]]
    ringback: list[JSONObject]
    tag: str | None
    max_duration: int | None


def check_connect(params: JSONObject) -> ConnectRequest:
    """A ``calling.connect``'s wire params: the dial plan rules for ``devices``, media rules
    for each ``ringback`` item, and the optional ``tag``, ``max_duration``,
    ``max_price_per_minute``, ``status_url``."""
    plan = _plan(params.get("devices"), _wire_device)
    ringback = params.get("ringback", [])
    if type(ringback) is not list:
        raise _fail("ringback", "must be a list of media objects")
    for index, item in enumerate(ringback):
        check_media(f"ringback[{index}]", item)
    tag = params.get("tag")
    if tag is not None:
        non_empty_str("tag", tag)
    max_duration = params.get("max_duration")
    if max_duration is not None:
        positive_int("max_duration", max_duration)
    if "max_price_per_minute" in params:
        positive_number("max_price_per_minute", params["max_price_per_minute"])
    if "status_url" in params:
        non_empty_str("status_url", params["status_url"])
    return ConnectRequest(plan, ringback, tag, max_duration)


#: A media URL of a message: a scheme, ``://`` and no blanks.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


class MessageRequest(NamedTuple):
    """The checked params of a ``messaging.send`` (or an injected inbound message)."""

    from_number: str
    to_number: str
    body: str
    media: list[str]
    tags: list[str]
    context: str | None


def _message_number(where: str, value: Any) -> str:
    if not isinstance(value, str) or _E164.fullmatch(value) is None:
        raise _fail(where, f"must be an E.164 number like +15551234567, got {value!r}")
    return value


def _string_list(where: str, value: Any, pattern: re.Pattern[str] | None = None) -> list[str]:
    if type(value) is not list:
        raise _fail(where, "must be a list of strings")
    for index, item in enumerate(value):
        non_empty_str(f"{where}[{index}]", item)
        if pattern is not None and pattern.fullmatch(item) is None:
            raise _fail(f"{where}[{index}]", f"must be a URL like https://..., got {item!r}")
    return value


def check_message(params: JSONObject) -> MessageRequest:
    """A message's wire params: E.164 ``from_number`` and ``to_number``; a ``body`` string
    or a non-empty ``media`` list of URLs (at least one); ``tags`` a list of strings;
    ``context`` and ``region`` non-empty strings when present."""
    from_number = _message_number("from_number", params.get("from_number"))
    to_number = _message_number("to_number", params.get("to_number"))
    body = params.get("body", "")
    if not isinstance(body, str):
        raise _fail("body", f"must be a string, got {body!r}")
    media = _string_list("media", params.get("media", []), _URL)
    if not body and not media:
        raise _fail("body", "a message needs a body or media (at least one)")
    tags = _string_list("tags", params.get("tags", []))
    context = params.get("context")
    for name in ("context", "region"):
        if name in params:
            non_empty_str(name, params[name])
    return MessageRequest(from_number, to_number, body, media, tags, context)
