"""Quick constructors for the frozen events the core makes for every call state and dial.

Reason: a frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` by
name (a look-up per field); calling the slots' own setters does the same work in about a
third of the time, and the core makes several of these per dial (one per call state).
The result is the same object: same class, same field values, nothing else runs (none of
these classes has a ``__post_init__``; import fails if their fields ever change).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from ._events import CallInfo, CallState, CallStateChanged, DialAnswered, Leg
from ._wire import JSONObject

Setter = Callable[[Any, Any], None]


def _setters(cls: type, names: tuple[str, ...]) -> tuple[Setter, ...]:
    """The slot setters of ``cls``'s fields, which must be exactly ``names``, in order."""
    if tuple(f.name for f in fields(cls)) != names or hasattr(cls, "__post_init__"):
        raise RuntimeError(f"{cls.__name__} changed: update {__name__}")  # pragma: no cover
    return tuple(cls.__dict__[name].__set__ for name in names)


_new = object.__new__

_STATE_FIELDS = ("call_id", "node_id", "tag", "state", "previous", "end_reason", "timestamp", "raw")
_s_call, _s_node, _s_tag, _s_state, _s_previous, _s_end, _s_stamp, _s_raw = _setters(
    CallStateChanged, _STATE_FIELDS
)
_INFO_FIELDS = ("call_id", "node_id", "tag", "device", "direction", "state", "context", "raw")
_i_call, _i_node, _i_tag, _i_device, _i_direction, _i_state, _i_context, _i_raw = _setters(
    CallInfo, _INFO_FIELDS
)
_l_call, _l_node, _l_device, _l_state, _l_end = _setters(
    Leg, ("call_id", "node_id", "device", "state", "end_reason")
)
_a_tag, _a_call, _a_legs = _setters(DialAnswered, ("tag", "call", "legs"))


def call_state_changed(
    call_id: str,
    node_id: str,
    tag: str | None,
    state: CallState,
    previous: CallState | None,
    end_reason: str | None,
    timestamp: float | None,
    raw: JSONObject,
) -> CallStateChanged:
    event: CallStateChanged = _new(CallStateChanged)
    _s_call(event, call_id)
    _s_node(event, node_id)
    _s_tag(event, tag)
    _s_state(event, state)
    _s_previous(event, previous)
    _s_end(event, end_reason)
    _s_stamp(event, timestamp)
    _s_raw(event, raw)
    return event


def call_info(
    call_id: str,
    node_id: str,
    tag: str | None,
    device: JSONObject,
    direction: str,
    state: CallState,
    context: str | None,
    raw: JSONObject,
) -> CallInfo:
    info: CallInfo = _new(CallInfo)
    _i_call(info, call_id)
    _i_node(info, node_id)
    _i_tag(info, tag)
    _i_device(info, device)
    _i_direction(info, direction)
    _i_state(info, state)
    _i_context(info, context)
    _i_raw(info, raw)
    return info


def new_leg(
    call_id: str, node_id: str, device: JSONObject, state: CallState, end_reason: str | None
) -> Leg:
    made: Leg = _new(Leg)
    _l_call(made, call_id)
    _l_node(made, node_id)
    _l_device(made, device)
    _l_state(made, state)
    _l_end(made, end_reason)
    return made


def dial_answered(tag: str, call: CallInfo, legs: tuple[Leg, ...]) -> DialAnswered:
    event: DialAnswered = _new(DialAnswered)
    _a_tag(event, tag)
    _a_call(event, call)
    _a_legs(event, legs)
    return event
