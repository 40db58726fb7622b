"""Messaging: ``messaging.send`` params, and the ``messaging.state``/``messaging.receive`` events.

``Messages`` keeps the state of each message this session sent, by ``message_id`` (known
from the send's reply), and reads the messaging events.

Invariants:

* A sent message's state only moves forward (queued < initiated < sent < a final state);
  duplicates and backward moves report nothing; ``done`` is reported exactly once, and the
  message is then forgotten but for its id (bounded), so a late event reports nothing.
* A state event may come before the reply that names its message: while any send awaits
  its reply, such events are held (bounded) and reported, in order, right after the reply.
  With no send in flight, an event for an unknown message is reported as it comes.
* An unknown state is carried (``UnknownState``) and changes nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from . import _validate as validate
from ._errors import LocalProtocolError
from ._events import Event, InboundMessage, MessageInfo, MessageStateChanged
from ._records import opt_str, str_field, unknown_state
from ._results import MessageState
from ._wire import JSONObject

_STATES = {state.value: state for state in MessageState}
_EARLY_LIMIT = 1024


def send_params(
    *,
    context: str,
    to_number: Any,
    from_number: Any,
    body: Any,
    media: Any,
    tags: Any,
    region: Any,
) -> JSONObject:
    """``messaging.send`` params: numbers in E.164, a body or media (or both)."""
    params: JSONObject = {
        "context": validate.non_empty_str("context", context),
        "to_number": validate.e164("to_number", to_number),
        "from_number": validate.e164("from_number", from_number),
    }
    if body is not None:
        params["body"] = validate.non_empty_str("body", body)
    if media is not None:
        params["media"] = _strings("media", media)
    if "body" not in params and not params.get("media"):
        raise LocalProtocolError("a message needs a body or media (or both)")
    if tags is not None:
        params["tags"] = _strings("tags", tags)
    if region is not None:
        params["region"] = validate.non_empty_str("region", region)
    return params


def _strings(where: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise LocalProtocolError(f"{where}: must be a list of strings, got {value!r}")
    return [validate.non_empty_str(f"{where}[{i}]", item) for i, item in enumerate(value)]


def message_info(params: JSONObject, where: str, default_state: str | None = None) -> MessageInfo:
    """A ``MessageInfo`` from an event's params (``RemoteProtocolError`` without an id)."""
    message_id = str_field(params, "message_id", where)
    state = params.get("message_state", default_state)
    media, tags = params.get("media"), params.get("tags")
    segments = params.get("segments")
    return MessageInfo(
        message_id=message_id,
        context=opt_str(params, "context"),
        direction=opt_str(params, "direction") or "",
        from_number=opt_str(params, "from_number"),
        to_number=opt_str(params, "to_number"),
        body=opt_str(params, "body"),
        media=tuple(m for m in media if isinstance(m, str)) if isinstance(media, list) else (),
        tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
        segments=segments if type(segments) is int else None,
        state=state if isinstance(state, str) else "",
        reason=opt_str(params, "reason"),
        raw=params,
    )


class Messages:
    def __init__(self) -> None:
        #: The state of each message sent and not yet final, by ``message_id``.
        self.sent: dict[str, MessageState] = {}
        #: Sends awaiting their reply (request ids).
        self.in_flight: set[str] = set()
        self._early: OrderedDict[str, list[JSONObject]] = OrderedDict()
        #: Messages that reached a final state (bounded): later events for them are dropped.
        self._done: OrderedDict[str, None] = OrderedDict()

    def handlers(self) -> dict[str, Callable[[JSONObject, Any, Any, list[Event], Any], None]]:
        """The tracker's handlers for the messaging events."""
        return {
            "messaging.state": lambda inner, _t, _n, events, _i: self.on_state(inner, events),
            "messaging.receive": lambda inner, _t, _n, events, _i: self.on_receive(inner, events),
        }

    def accepted(self, request_id: str, result: JSONObject, events: list[Event]) -> None:
        """A send's reply: the message is known from now on; held events follow."""
        self.in_flight.discard(request_id)
        message_id = result.get("message_id")
        if isinstance(message_id, str) and message_id:
            self.sent.setdefault(message_id, MessageState.QUEUED)
            for params in self._early.pop(message_id, ()):
                self.on_state(params, events)
        if not self.in_flight:
            self._release(events)

    def failed(self, request_id: str, events: list[Event]) -> None:
        self.in_flight.discard(request_id)
        if not self.in_flight:
            self._release(events)

    def _release(self, events: list[Event]) -> None:
        """No send awaits a reply: what was held belongs to no send of ours."""
        early, self._early = self._early, OrderedDict()
        for held in early.values():
            for params in held:
                self.on_state(params, events)

    def on_state(self, inner: JSONObject, events: list[Event]) -> None:
        where = "messaging.state"
        info = message_info(inner, where)
        state = _STATES.get(info.state)
        if state is None:
            raw = str_field(inner, "message_state", where)
            events.append(unknown_state(where, "message_state", raw, inner))
            return
        if self._early and not self.in_flight:  # the sends it waited for were given up
            self._release(events)
        current = self.sent.get(info.message_id)
        if current is None and info.message_id in self._done:
            return  # a late event for a message already final
        if current is None and self.in_flight:
            self._hold(info.message_id, inner)
            return
        if current is not None:
            if state.rank <= current.rank:
                return
            if state.terminal:
                del self.sent[info.message_id]
                self._done[info.message_id] = None
                if len(self._done) > _EARLY_LIMIT:
                    self._done.popitem(last=False)
            else:
                self.sent[info.message_id] = state
        events.append(MessageStateChanged(message=info, done=state.terminal))

    def _hold(self, message_id: str, inner: JSONObject) -> None:
        self._early.setdefault(message_id, []).append(inner)
        if len(self._early) > _EARLY_LIMIT:
            self._early.popitem(last=False)

    def on_receive(self, inner: JSONObject, events: list[Event]) -> None:
        info = message_info(inner, "messaging.receive", MessageState.RECEIVED)
        events.append(InboundMessage(message=info))
