"""The client's reading of one ``signalwire.event`` (already acknowledged).

PROTOCOL.md 2.6: exact in what is sent, tolerant in what is read. ``read_event`` routes an
event to the tracker's handler for its type (or to the session's), and reports what it
cannot read as an ``UnreadableEvent`` instead of raising: the event has been acknowledged,
so the server will not send it again, and what it carried must reach the application.
docs/reading.md lists, field by field, which absences make an event unreadable.

Invariant: an unreadable event changes nothing (the handlers validate before they touch a
record) and is reported exactly once; nothing here raises.
"""

from __future__ import annotations

from typing import Any

from . import _wire as wire
from ._errors import RemoteProtocolError
from ._events import Event, UnreadableEvent
from ._records import Intent
from ._session import Session
from ._tracker import CallTracker


def read_event(
    envelope: Any, tracker: CallTracker, session: Session, now: float, events: list[Event]
) -> list[Intent] | None:
    """Read one event's envelope and act on it: the intents for the connection, if any."""
    if type(envelope) is dict:  # plain checks first: the usual case pays for nothing else
        event_type = envelope.get("event_type")
        inner = envelope.get("params")
        if type(event_type) is str and type(inner) is dict:
            timestamp = envelope.get("timestamp")
            if type(timestamp) is not float:  # the usual case needs no conversion
                timestamp = wire.timestamp(timestamp)
            handler = tracker.handlers.get(event_type)
            if handler is None:
                unhandled = session.other_event(event_type, inner, timestamp)
                if unhandled is not None:
                    events.append(unhandled)
                return None
            intents: list[Intent] = []
            try:
                handler(inner, timestamp, now, events, intents)
            except RemoteProtocolError as exc:
                events.append(UnreadableEvent(event_type=event_type, reason=str(exc), params=inner))
            return intents
    events.append(_unreadable_envelope(envelope))
    return None


def _unreadable_envelope(envelope: Any) -> UnreadableEvent:
    if type(envelope) is not dict:
        return UnreadableEvent(
            event_type=None, reason="signalwire.event params are not an object", params=envelope
        )
    event_type = envelope.get("event_type")
    if type(event_type) is not str:
        return UnreadableEvent(
            event_type=None, reason="signalwire.event without a string event_type", params=envelope
        )
    return UnreadableEvent(
        event_type=event_type,
        reason="signalwire.event without a params object",
        params=envelope,
    )
