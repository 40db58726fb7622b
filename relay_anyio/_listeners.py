"""``Call.on`` / ``Call.wait_for``: the raw events of one call, for code that wants them.

The client already turns every event into state and results (``Call.state``, action handles,
``Message``); these hooks are for code ported from the official SDK, which registers
handlers by event type. A ``CallEvent`` is the server's event as it came: its type and its
inner params. The core's own reports that did not come from the server (an action ended
because its call did) are not events of the call and are not delivered.

Invariants: handlers run in the order they were registered, on the read loop for a plain
function (keep it short) and as a task for a coroutine function; what a handler raises is
logged, never raised into the session. Nothing is kept per call until a handler is
registered, and the session pays one attribute check per event until then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from relay_proto import (
    ActionStateChanged,
    CallStateChanged,
    ConnectStateChanged,
    Event,
    PlayStateChanged,
    UnhandledEvent,
)

__all__ = ["CallEvent", "call_event"]

JSONObject = dict[str, Any]
#: The event type a verb's events come as, where it is not ``calling.call.<verb>``.
_EVENT_OF_VERB = {
    "play_and_collect": "calling.call.collect",
    "send_fax": "calling.call.fax",
    "receive_fax": "calling.call.fax",
}


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One event of a call as the server sent it (``event_type`` and its inner ``params``)."""

    event_type: str
    params: JSONObject = field(repr=False)

    @property
    def call_id(self) -> str:
        value = self.params.get("call_id")
        return value if isinstance(value, str) else ""


#: ``handler(event)``: a plain function or a coroutine function.
Listener = Callable[[CallEvent], object]


def call_event(event: Event) -> CallEvent | None:
    """The server's event behind a core event about one call, or None."""
    match event:
        case CallStateChanged():
            return CallEvent("calling.call.state", event.raw)
        case PlayStateChanged():
            return CallEvent("calling.call.play", event.raw) if event.raw else None
        case ActionStateChanged():
            if not event.raw:  # the core's own report (its call ended), not the server's
                return None
            verb = event.verb
            return CallEvent(_EVENT_OF_VERB.get(verb, f"calling.call.{verb}"), event.raw)
        case ConnectStateChanged():
            return CallEvent("calling.call.connect", event.raw)
        case UnhandledEvent() if isinstance(event.params.get("call_id"), str):
            return CallEvent(event.event_type, event.params)
        case _:
            return None
