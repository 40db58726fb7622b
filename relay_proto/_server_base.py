"""Building blocks of the simulated switch: timers, wire-level validation, values.

Sans-IO and clock-free. ``TimerQueue`` is a heap with lazy cancellation: timers fire only
from ``pop_due(now)``, earliest deadline first, ties in scheduling order. The ``validate_*``
and ``media_seconds`` helpers check request params exactly as the wire allows them and
raise ``RpcError`` (answered as a JSON-RPC ``-32602``) on anything malformed; they never
mutate their input.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ._events import CallState
from ._scenario import Scenario

__all__ = [
    "MAX_NUMBER",
    "EventSink",
    "LiveCall",
    "RpcError",
    "Timer",
    "TimerQueue",
    "check_volume",
    "destination",
    "get_control_id",
    "media_seconds",
    "validate_dial",
]

JSONObject = dict[str, Any]


class EventSink(Protocol):
    """Where a call's events go: the session that owns it."""

    @property
    def protocol(self) -> str: ...

    @property
    def project(self) -> str: ...

    def emit(self, event_type: str, params_json: str, timestamp: float) -> None:
        """Queue an event whose ``params`` object is already JSON text."""


class RpcError(Exception):
    """Internal signal: answer the request with a JSON-RPC error object."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Timer:
    """A scheduled callback; ``cancel()`` makes the queue skip it."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[float], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class TimerQueue:
    """A heap of timers with lazy cancellation."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = 0

    def schedule(self, when: float, callback: Callable[[float], None]) -> Timer:
        timer = Timer(when, callback)
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, timer))
        return timer

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> Timer | None:
        deadline = self.next_deadline()
        if deadline is None or deadline > now:
            return None
        return heapq.heappop(self._heap)[2]


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveCall:
    """A snapshot of one simulated call leg (for assertions and the simulator's CLI)."""

    call_id: str
    node_id: str
    tag: str
    device: JSONObject
    state: CallState
    direction: str
    protocol: str
    end_reason: str | None = None
    context: str | None = None


# ---- validation (JSON-RPC -32602 on anything malformed) ---------------------------------


#: Bound on every number the switch does arithmetic with (about 31,700 years in seconds):
#: beyond it, ints no longer convert to float and deadlines stop meaning anything.
MAX_NUMBER = 1e12


def _is_number(value: object) -> bool:
    # comparisons (not float()) so a huge int is refused instead of overflowing; NaN fails
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and -MAX_NUMBER <= value <= MAX_NUMBER
    )


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_NUMBER


_DEVICE_REQUIRED = {"phone": ("to_number", "from_number"), "sip": ("to", "from")}
_MEDIA_REQUIRED = {"tts": "text", "audio": "url", "ringtone": "name", "silence": "duration"}


def _validate_device(device: object) -> JSONObject:
    if not isinstance(device, dict):
        raise RpcError(-32602, "each device must be an object")
    kind, params = device.get("type"), device.get("params")
    if not isinstance(kind, str) or not kind or not isinstance(params, dict):
        raise RpcError(-32602, "a device needs a string type and a params object")
    required = _DEVICE_REQUIRED.get(kind, ())
    for name in required:
        if not isinstance(params.get(name), str) or not params[name]:
            raise RpcError(-32602, f"a {kind} device needs params.{name}")
    timeout = params.get("timeout")
    if timeout is not None and not (_is_number(timeout) and timeout > 0):
        raise RpcError(-32602, "device timeout must be a positive number of seconds")
    limit = params.get("max_duration")
    if limit is not None and not _positive_int(limit):
        raise RpcError(-32602, "device max_duration must be a positive int (seconds)")
    return device


def validate_dial(
    params: JSONObject,
) -> tuple[str, list[list[JSONObject]], str | None, int | None]:
    tag = params.get("tag")
    if not isinstance(tag, str) or not tag:
        raise RpcError(-32602, "calling.dial needs a non-empty string tag")
    devices = params.get("devices")
    if not isinstance(devices, list) or not devices:
        raise RpcError(-32602, "calling.dial devices must be a non-empty list of lists")
    groups: list[list[JSONObject]] = []
    for group in devices:
        if not isinstance(group, list) or not group:
            raise RpcError(-32602, "each devices group must be a non-empty list")
        groups.append([_validate_device(device) for device in group])
    for name in ("region", "node_id"):
        if name in params and not isinstance(params[name], str):
            raise RpcError(-32602, f"calling.dial {name} must be a string")
    if "max_price_per_minute" in params and not _is_number(params["max_price_per_minute"]):
        raise RpcError(-32602, "calling.dial max_price_per_minute must be a number")
    max_duration = params.get("max_duration")
    if max_duration is not None and not _positive_int(max_duration):
        raise RpcError(-32602, "calling.dial max_duration must be a positive int (seconds)")
    return tag, groups, params.get("node_id"), max_duration


def destination(device: JSONObject) -> str | None:
    params = device["params"]
    value = params.get("to_number") if device["type"] == "phone" else params.get("to")
    return value if isinstance(value, str) else None


def get_control_id(params: JSONObject) -> str:
    control_id = params.get("control_id")
    if not isinstance(control_id, str) or not control_id:
        raise RpcError(-32602, "a non-empty string control_id is required")
    return control_id


def check_volume(params: JSONObject) -> None:
    if "volume" in params and not _is_number(params["volume"]):
        raise RpcError(-32602, "volume must be a number")


def media_seconds(media: object, scenario: Scenario) -> float:
    if not isinstance(media, dict):
        raise RpcError(-32602, "each play item must be an object")
    kind, params = media.get("type"), media.get("params")
    if not isinstance(kind, str) or not isinstance(params, dict):
        raise RpcError(-32602, 'each play item needs "type" and a nested "params" object')
    name = _MEDIA_REQUIRED.get(kind)
    if name is None:
        raise RpcError(-32602, f"unsupported play type {kind!r}")
    if name not in params:
        raise RpcError(-32602, f"a {kind} play item needs params.{name}")
    if kind == "tts":
        text = params["text"]
        if not isinstance(text, str):
            raise RpcError(-32602, "tts params.text must be a string")
        return max(len(text) * scenario.play_seconds_per_char, scenario.min_play_seconds)
    duration = params.get("duration")
    if duration is None:
        return scenario.play_default_seconds
    if not (_is_number(duration) and duration > 0):
        raise RpcError(-32602, f"{kind} params.duration must be a positive number")
    return float(duration)
