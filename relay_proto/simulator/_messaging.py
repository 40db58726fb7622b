"""The simulated switch's messaging: ``messaging.send`` and inbound messages.

An outbound message moves ``queued`` -> ``initiated`` -> ``sent`` -> ``delivered`` (or
``undelivered``; ``failed`` straight after ``initiated``), one step every
``MessageOutcome.after`` seconds of the destination's scenario entry; each step is a
``messaging.state`` event to the session that sent it. An inbound message is one
``messaging.receive`` event to a session that receives its context.

Invariants:
- A message is in ``Messages._live`` exactly while it is outbound and not in a final
  state; it then has exactly one pending timer (its next step), cancelled when its
  session is dropped.
- Every message, outbound or inbound, is kept in the bounded history (``all_messages``).
- Params are checked with the shared rules (``_validate.check_message``) before anything
  is created: a failure is a ``LocalProtocolError`` (answered with a result code
  ``"400"``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from .. import _validate as validate
from .. import _wire as wire
from .._ids import IdFactory
from .._timers import TimerHandle, TimerQueue
from .._wire import JSONObject
from ._legs import EventSink, TimerCallback
from ._scenario import MessageOutcome, Scenario

__all__ = ["LiveMessage", "Messages"]

#: The states a message passes through before its final one, by final state.
_STEPS = {
    "delivered": ("queued", "initiated", "sent", "delivered"),
    "undelivered": ("queued", "initiated", "sent", "undelivered"),
    "failed": ("queued", "initiated", "failed"),
}
#: The ``reason`` of a final failure when the scenario gives none.
_DEFAULT_REASONS = {"undelivered": "Unreachable destination", "failed": "Message failed"}
#: The outcome an inbound message carries (it has no steps of its own).
_INBOUND = MessageOutcome()
#: Characters per segment (the GSM-7 single-message length).
_SEGMENT = 160


class HasScenario(Protocol):
    """Where the scenario in force is read (it may be replaced at any time)."""

    @property
    def scenario(self) -> Scenario: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveMessage:
    """A snapshot of one simulated message (for assertions)."""

    message_id: str
    direction: str
    state: str
    context: str
    from_number: str
    to_number: str
    body: str
    media: tuple[str, ...]
    tags: tuple[str, ...]
    protocol: str
    reason: str | None = None


class _Message:
    __slots__ = ("fields", "outcome", "reason", "sink", "state", "step", "timer")

    def __init__(self, sink: EventSink, fields: JSONObject, outcome: MessageOutcome) -> None:
        self.sink = sink
        self.fields = fields
        self.outcome = outcome
        self.step = 0
        self.state = str(fields["message_state"])
        self.reason: str | None = None
        self.timer: TimerHandle | None = None

    def snapshot(self) -> LiveMessage:
        fields = self.fields
        return LiveMessage(
            message_id=fields["message_id"],
            direction=fields["direction"],
            state=self.state,
            context=fields["context"],
            from_number=fields["from_number"],
            to_number=fields["to_number"],
            body=fields["body"],
            media=tuple(fields["media"]),
            tags=tuple(fields["tags"]),
            protocol=self.sink.protocol,
            reason=self.reason,
        )


class Messages:
    """Every message of the switch: outbound ones moving along their states, and history."""

    def __init__(
        self,
        *,
        host: HasScenario,
        timers: TimerQueue[TimerCallback],
        new_id: IdFactory,
        max_history: int,
    ) -> None:
        self._host = host
        self._timers = timers
        self._new_id = new_id
        self._live: dict[str, _Message] = {}
        self._history: deque[_Message] = deque(maxlen=max_history)

    def live_messages(self) -> list[LiveMessage]:
        return [message.snapshot() for message in self._live.values()]

    def all_messages(self) -> list[LiveMessage]:
        return [message.snapshot() for message in self._history]

    def send(self, sink: EventSink, params: JSONObject, now: float) -> JSONObject:
        """Accept a ``messaging.send``: its ``queued`` event now, the next step timed."""
        request = validate.check_message(params)
        context = request.context if request.context is not None else sink.protocol
        fields = self._fields(request, context, "outbound", "queued")
        message = _Message(sink, fields, self._host.scenario.message_for(request.to_number))
        self._live[fields["message_id"]] = message
        self._history.append(message)
        self._emit(message, "messaging.state", now)
        self._schedule(message, now)
        return {"code": "200", "message": "Message accepted", "message_id": fields["message_id"]}

    def receive(self, sink: EventSink, params: JSONObject, context: str, now: float) -> str:
        """Deliver an inbound message on ``context`` to ``sink``; returns its id."""
        request = validate.check_message(params)
        fields = self._fields(request, context, "inbound", "received")
        message = _Message(sink, fields, _INBOUND)
        self._history.append(message)
        self._emit(message, "messaging.receive", now)
        return str(fields["message_id"])

    def drop_session(self, sink: EventSink) -> None:
        """The session expired: its messages stop where they are, silently."""
        for message_id, message in list(self._live.items()):
            if message.sink is sink:
                if message.timer is not None:  # pragma: no branch - live: a next step is due
                    self._timers.cancel(message.timer)
                    message.timer = None
                del self._live[message_id]

    # ---- internals -------------------------------------------------------------------

    def _fields(
        self, request: validate.MessageRequest, context: str, direction: str, state: str
    ) -> JSONObject:
        body = request.body
        return {
            "message_id": self._new_id(),
            "context": context,
            "direction": direction,
            "tags": list(request.tags),
            "from_number": request.from_number,
            "to_number": request.to_number,
            "body": body,
            "media": list(request.media),
            "segments": max(1, -(-len(body) // _SEGMENT)),
            "message_state": state,
        }

    def _schedule(self, message: _Message, now: float) -> None:
        when = now + message.outcome.after
        message.timer = self._timers.schedule(when, partial(self._advance, message))

    def _advance(self, message: _Message, when: float) -> None:
        message.timer = None
        message.step += 1
        steps = _STEPS[message.outcome.state]
        state = steps[message.step]
        message.state = message.fields["message_state"] = state
        if message.step == len(steps) - 1:
            del self._live[message.fields["message_id"]]
            if state in _DEFAULT_REASONS:
                message.reason = message.outcome.reason or _DEFAULT_REASONS[state]
                message.fields["reason"] = message.reason
        else:
            self._schedule(message, when)
        self._emit(message, "messaging.state", when)

    def _emit(self, message: _Message, event_type: str, now: float) -> None:
        message.sink.emit(event_type, wire.dumps(message.fields), now)
