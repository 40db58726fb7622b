"""The rules of each call-control verb's params, shared by the client core and the simulator.

Each ``build_<verb>(params)`` takes the params of ``calling.<verb>`` without the ids, in the
nested wire form (``{"record": {"audio": {...}}}``), checks them field by field and returns a
fresh JSON copy (the caller's objects are never kept); anything invalid raises
``LocalProtocolError`` naming the field. Fields a rule does not know pass through (the
calling API grows), but the ones it knows are checked. Like ``_validate``, role-neutral: the
simulator runs the same rules on parsed requests.
"""

from __future__ import annotations

import re
from typing import Any

from . import _validate as validate
from ._errors import LocalProtocolError
from ._wire import JSONObject

#: DTMF a call can send: digits, * and #, A-D, and w/W (half and one second pauses).
_DTMF = re.compile(r"[0-9*#A-Da-dwW]+")
_DIRECTIONS = frozenset({"listen", "speak", "both"})
_DETECT_TYPES = frozenset({"machine", "fax", "digit"})
_TAP_DEVICES = frozenset({"rtp", "ws"})
_RECORD_FORMATS = frozenset({"mp3", "wav"})


def _fail(where: str, problem: str) -> LocalProtocolError:
    return LocalProtocolError(f"{where}: {problem}")


def _object(where: str, value: Any) -> JSONObject:
    if not isinstance(value, dict):
        raise _fail(where, f"must be an object, got {value!r}")
    return value


def _bool(where: str, params: JSONObject, key: str) -> None:
    if key in params and not isinstance(params[key], bool):
        raise _fail(f"{where}.{key}", f"must be true or false, got {params[key]!r}")


def _seconds(where: str, params: JSONObject, key: str, *, positive: bool = False) -> None:
    if key not in params:
        return
    value = params[key]
    validate.number(f"{where}.{key}", value)
    if value < 0 or (positive and value == 0):
        raise _fail(f"{where}.{key}", f"must be {'> 0' if positive else '>= 0'}, got {value!r}")


def _one_of(where: str, params: JSONObject, key: str, allowed: frozenset[str]) -> None:
    if key in params and params[key] not in allowed:
        raise _fail(f"{where}.{key}", f"must be one of {sorted(allowed)}, got {params[key]!r}")


def dtmf(where: str, value: Any) -> str:
    """A DTMF string: 0-9, *, #, A-D, w/W."""
    if not isinstance(value, str) or not _DTMF.fullmatch(value):
        raise _fail(where, f"must be DTMF digits (0-9, *, #, A-D, w, W), got {value!r}")
    return value


def _copy(params: Any) -> JSONObject:
    return validate.json_params("params", params)


def build_play(params: Any) -> JSONObject:
    out = _copy(params)
    out["play"] = validate.media_list(out.get("play"))
    if "volume" in out:
        out["volume"] = validate.volume("volume", out["volume"])
    if "loop" in out:
        validate.non_negative_int("loop", out["loop"])  # 0: for ever
    return out


def build_record(params: Any) -> JSONObject:
    out = _copy(params)
    record = _object("record", out.setdefault("record", {"audio": {}}))
    audio = _object("record.audio", record.setdefault("audio", {}))
    _bool("record.audio", audio, "beep")
    _bool("record.audio", audio, "stereo")
    _one_of("record.audio", audio, "format", _RECORD_FORMATS)
    _one_of("record.audio", audio, "direction", _DIRECTIONS)
    _seconds("record.audio", audio, "initial_timeout")
    _seconds("record.audio", audio, "end_silence_timeout")
    if "terminators" in audio:
        dtmf("record.audio.terminators", audio["terminators"])
    return out


def _collect_spec(where: str, spec: JSONObject) -> None:
    """The collect rules (``digits``/``speech``, timers, flags), at ``where``."""
    digits, speech = spec.get("digits"), spec.get("speech")
    if digits is None and speech is None:
        raise _fail(where, "needs 'digits' or 'speech' (or both)")
    if digits is not None:
        _object(f"{where}.digits", digits)
        if "max" in digits:
            validate.positive_int(f"{where}.digits.max", digits["max"])
        if "terminators" in digits:
            dtmf(f"{where}.digits.terminators", digits["terminators"])
        _seconds(f"{where}.digits", digits, "digit_timeout", positive=True)
    if speech is not None:
        _object(f"{where}.speech", speech)
        _seconds(f"{where}.speech", speech, "end_silence_timeout", positive=True)
        _seconds(f"{where}.speech", speech, "speech_timeout", positive=True)
        hints = speech.get("hints", [])
        if not isinstance(hints, list) or not all(isinstance(h, str) for h in hints):
            raise _fail(f"{where}.speech.hints", "must be a list of strings")
    _seconds(where, spec, "initial_timeout", positive=True)
    for flag in ("partial_results", "continuous", "send_start_of_input", "start_input_timers"):
        _bool(where, spec, flag)


def build_collect(params: Any) -> JSONObject:
    out = _copy(params)
    _collect_spec("collect", out)
    return out


def build_play_and_collect(params: Any) -> JSONObject:
    out = _copy(params)
    out["play"] = validate.media_list(out.get("play"))
    _collect_spec("collect", _object("collect", out.get("collect")))
    if "volume" in out:
        out["volume"] = validate.volume("volume", out["volume"])
    return out


def build_detect(params: Any) -> JSONObject:
    out = _copy(params)
    detect = _object("detect", out.get("detect"))
    _one_of("detect", detect, "type", _DETECT_TYPES)
    if "type" not in detect:
        raise _fail("detect.type", f"is required (one of {sorted(_DETECT_TYPES)})")
    inner = _object("detect.params", detect.setdefault("params", {}))
    for key in ("initial_timeout", "end_silence_timeout", "machine_voice_threshold"):
        _seconds("detect.params", inner, key)
    if "digits" in inner:
        dtmf("detect.params.digits", inner["digits"])
    _seconds("detect", out, "timeout", positive=True)
    return out


def build_send_digits(params: Any) -> JSONObject:
    out = _copy(params)
    dtmf("digits", out.get("digits"))
    return out


def build_tap(params: Any) -> JSONObject:
    out = _copy(params)
    tap = _object("tap", out.get("tap"))
    if tap.get("type", "audio") != "audio":
        raise _fail("tap.type", f"must be 'audio', got {tap.get('type')!r}")
    tap["type"] = "audio"
    _one_of(
        "tap.params", _object("tap.params", tap.setdefault("params", {})), "direction", _DIRECTIONS
    )
    device = _object("device", out.get("device"))
    _one_of("device", device, "type", _TAP_DEVICES)
    dparams = _object("device.params", device.get("params"))
    if device.get("type") == "rtp":
        validate.non_empty_str("device.params.addr", dparams.get("addr"))
        port = dparams.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise _fail("device.params.port", f"must be a port number, got {port!r}")
    elif device.get("type") == "ws":
        validate.non_empty_str("device.params.uri", dparams.get("uri"))
    else:
        raise _fail("device.type", f"is required (one of {sorted(_TAP_DEVICES)})")
    return out


def build_any(params: Any) -> JSONObject:
    """A verb with no rules of its own: any JSON object."""
    return _copy(params)
