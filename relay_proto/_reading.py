"""The client's reading of what the server sends it unasked: events (already
acknowledged) and other requests.

PROTOCOL.md 2.6: exact in what is sent, tolerant in what is read. The connection hands an
event to the tracker's handler for its type itself (the hot path: no call between); what a
handler refuses is reported with ``unreadable``, and every other event goes through
``read_other_event``: the session's, an ``UnhandledEvent``, or an ``UnreadableEvent`` for an
envelope that cannot be read. The server's other requests get the session's answer
(``answer_request``). An unreadable event is reported instead of raised: it has been
acknowledged, so the server will not send it again, and what it carried must reach the
application. docs/reading.md lists, field by field, which absences make an event unreadable.

Invariant: an unreadable event changes nothing (the handlers validate before they touch a
record) and is reported exactly once; nothing here raises.
"""

from __future__ import annotations

from typing import Any

from . import _wire as wire
from ._errors import RemoteProtocolError
from ._events import Event, UnreadableEvent
from ._session import Session


def unreadable(event_type: str, error: RemoteProtocolError, params: Any) -> UnreadableEvent:
    """The report of an event whose handler refused it (and so changed nothing)."""
    return UnreadableEvent(event_type=event_type, reason=str(error), params=params)


def answer_request(
    request: wire.Request, session: Session, outbox: list[str], events: list[Event]
) -> None:
    """A request from the server other than an event (``signalwire.ping``, ``.disconnect``,
    unknown methods): the session's answer goes straight to ``outbox``."""
    reply, disconnect = session.answer(request)
    if reply is not None:
        outbox.append(reply)
    if disconnect is not None:
        events.append(disconnect)


def read_other_event(envelope: Any, session: Session, events: list[Event]) -> None:
    """Read an event no tracker handler takes: the session's (the authorization blob), an
    ``UnhandledEvent``, or an ``UnreadableEvent`` for an envelope that cannot be read."""
    if type(envelope) is dict:
        event_type = envelope.get("event_type")
        inner = envelope.get("params")
        if type(event_type) is str and type(inner) is dict:
            unhandled = session.other_event(
                event_type, inner, wire.timestamp(envelope.get("timestamp"))
            )
            if unhandled is not None:
                events.append(unhandled)
            return
    events.append(_unreadable_envelope(envelope))


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
