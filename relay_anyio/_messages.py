"""Messaging: ``Message`` (a sent or received SMS/MMS) and ``Messages``, the client's book of
the messages it sent.

Invariants:

* A sent ``Message`` exists once the server accepted the send (its reply names the
  ``message_id``); its state moves as the core reports (``MessageStateChanged``: forward
  only, deduplicated). ``wait()`` returns the final state (delivered, undelivered, failed)
  and raises ``ConnectionLostError`` if the client was closed or lost before it came.
* State events can come before the send's reply: the core holds them until the reply,
  then reports them right after it, in the same read, before the sender has resumed.
  ``Messages`` holds such events (bounded) while any send awaits its reply and applies
  them when the sender registers the message; with no send in flight they are dropped.
* A received message (``InboundMessage``) is a ``Message`` whose state is ``received``,
  handed to ``on_message`` or the ``inbound_messages()`` buffer (``_inbound``).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import anyio

from relay_proto import ClientConnection, MessageInfo, MessageState, MessageStateChanged

from ._errors import ProtocolViolationError, RelayError
from ._waiters import Runner, call_back

__all__ = ["Message", "Messages"]

logger = logging.getLogger("relay_anyio")

JSONObject = dict[str, Any]
_STATES = {state.value: state for state in MessageState}
_EARLY_LIMIT = 256


class Sender(Protocol):
    async def command(self, start: Callable[[ClientConnection], str]) -> JSONObject: ...


class Message:
    """An SMS/MMS: ``state`` (a ``MessageState`` where known), ``reason`` (on failure),
    ``done``; the rest as the server described it."""

    def __init__(self, info: MessageInfo, runner: Runner, on_completed: Any = None) -> None:
        self.message_id = info.message_id
        self.context = info.context
        self.direction = info.direction
        self.from_number = info.from_number
        self.to_number = info.to_number
        self.body = info.body
        self.media = info.media
        self.tags = info.tags
        self.segments = info.segments
        self.state: str = _STATES.get(info.state, info.state)
        self.reason = info.reason
        self._runner = runner
        self._on_completed = on_completed
        self._done = anyio.Event()
        self._lost: RelayError | None = None
        if self.state in _FINAL or self.state == MessageState.RECEIVED:
            self._done.set()

    def __repr__(self) -> str:
        return f"<Message message_id={self.message_id!r} state={self.state}>"

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def apply(self, event: MessageStateChanged) -> None:
        """The core reported a new state of this message."""
        info = event.message
        self.state = _STATES.get(info.state, info.state)
        self.reason = info.reason or self.reason
        if info.segments is not None:
            self.segments = info.segments
        if event.done and not self.done:
            self._done.set()
            self._completed()

    def lose(self, error: RelayError) -> None:
        if not self.done:
            self._lost = error
            self._done.set()

    def _completed(self) -> None:
        if self._on_completed is not None:
            what = f"on_completed of message {self.message_id}"
            call_back(self._runner, what, self._on_completed, self)

    async def wait(self, timeout: float | None = None) -> str:  # noqa: ASYNC109
        """Wait for the final state (``delivered``, ``undelivered`` or ``failed``) and
        return it. ``timeout``: ``TimeoutError`` after that many seconds."""
        with anyio.fail_after(timeout):
            await self._done.wait()
        if self._lost is not None:
            raise self._lost
        return self.state


_FINAL = frozenset(state for state in MessageState if state.terminal)


class Messages:
    """The messages this client sent and still follows, by ``message_id``."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self.sent: dict[str, Message] = {}
        self._sending = 0
        self._early: OrderedDict[str, list[MessageStateChanged]] = OrderedDict()

    def on_state(self, event: MessageStateChanged) -> None:
        message_id = event.message.message_id
        message = self.sent.get(message_id)
        if message is not None:
            message.apply(event)
            if message.done:
                del self.sent[message_id]
        elif self._sending:
            self._early.setdefault(message_id, []).append(event)
            if len(self._early) > _EARLY_LIMIT:
                self._early.popitem(last=False)
        else:
            logger.debug("state of a message this client does not follow: %s", message_id)

    async def send(self, sender: Sender, params: JSONObject, on_completed: Any = None) -> Message:
        """Send a message (``params``: ``send_message``'s keywords) and return it."""
        self._sending += 1
        try:
            result = await sender.command(lambda core: core.send_message(**params))
        except BaseException:
            self._sending -= 1
            if not self._sending:  # what was held belongs to no send of this client
                self._early.clear()
            raise
        self._sending -= 1
        message_id = result.get("message_id")
        if not isinstance(message_id, str) or not message_id:
            raise ProtocolViolationError("messaging.send: the reply names no message_id")
        info = MessageInfo(
            message_id=message_id,
            context=params.get("context"),
            direction="outbound",
            from_number=params["from_number"],
            to_number=params["to_number"],
            body=params.get("body"),
            media=tuple(params.get("media") or ()),
            tags=tuple(params.get("tags") or ()),
            segments=None,
            state=MessageState.QUEUED,
        )
        message = Message(info, self._runner, on_completed)
        self.sent[message_id] = message
        for event in self._early.pop(message_id, ()):
            self.on_state(event)
        if not self._sending:
            self._early.clear()
        return message

    def fail(self, error: RelayError) -> None:
        sent, self.sent = self.sent, {}
        for message in sent.values():
            message.lose(error)


def send_params(
    *,
    to_number: str,
    from_number: str,
    context: str | None,
    body: str | None,
    media: Sequence[str] | None,
    tags: Sequence[str] | None,
    region: str | None,
) -> JSONObject:
    """``send_message``'s keywords for the core (lists copied)."""
    return {
        "to_number": to_number,
        "from_number": from_number,
        "context": context,
        "body": body,
        "media": None if media is None else list(media),
        "tags": None if tags is None else list(tags),
        "region": region,
    }
