"""``Surface``: the session's part for the call-control surface beyond dial and hang-up.

The session hands it the core's action, bridge and message events (one ``case`` arm);
it routes them to the ``Call`` / ``Message`` objects, registers a bridge's peer as a call of
the client, delivers inbound messages (``on_message`` / ``inbound_messages()``, bounded
like inbound calls: ``_inbound``), and runs user callbacks in the client's task group.

Invariants:

* It changes the session's call registry in one way only: a bridge's peer that the core
  tracks (a live call of the session) is added as a ``Call``, like an answered dial. It
  leaves the registry as every call does (its ``ENDED`` state, or ``CallLost``).
* The read loop never waits on user code: handlers and async callbacks run as tasks;
  an inbound message nobody can take is dropped with a warning (a message cannot be
  refused).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from relay_proto import (
    ActionStateChanged,
    ClientConnection,
    ConnectStateChanged,
    Event,
    InboundMessage,
    MessageStateChanged,
)

from ._call_base import CallSession
from ._calls import Call
from ._errors import CallGoneError, RelayError
from ._inbound import Inbound
from ._listeners import call_event
from ._messages import Message, Messages, Sender, send_params
from ._options import Limits

__all__ = ["Surface", "SurfaceEvent"]

logger = logging.getLogger("relay_anyio")

SurfaceEvent = ActionStateChanged | ConnectStateChanged | MessageStateChanged | InboundMessage


class Surface:
    def __init__(
        self,
        session: CallSession,
        calls: dict[str, Call],
        core: ClientConnection,
        limits: Limits,
    ) -> None:
        self._session = session
        self._calls = calls
        self._core = core
        self.inbound_messages = Inbound[Message](
            buffer=limits.inbound_buffer, max_handlers=limits.max_handlers, kind="message"
        )
        self.messages = Messages(self)
        #: Whether any call has a ``Call.on``/``wait_for`` listener (then ``notify`` runs).
        self.listening = False

    # ------------------------------------------------------------------ lifecycle

    def open(self, tg: Any) -> None:
        self.inbound_messages.open(tg)

    def end(self) -> None:
        self.inbound_messages.end()

    def close(self) -> None:
        self.inbound_messages.close()

    def fail(self, error: RelayError) -> None:
        """The client is closed or lost: message waits fail with ``error``."""
        self.messages.fail(error)

    def spawn(self, what: str, fn: Callable[[], Awaitable[Any]]) -> None:
        """Run a user callback as a task of the client (errors logged)."""
        self.inbound_messages.spawn(what, fn)

    # ------------------------------------------------------------------ events

    def notify(self, event: Event) -> None:
        """Hand the server's event behind ``event`` to its call's listeners, if any."""
        raw = call_event(event)
        if raw is not None and (call := self._calls.get(raw.call_id)) is not None:
            call.deliver(raw)

    def apply(self, event: SurfaceEvent) -> None:
        match event:
            case ActionStateChanged(call_id=call_id):  # PlayStateChanged included
                call = self._calls.get(call_id)
                if call is not None:
                    call.apply_action(event)
            case ConnectStateChanged():
                self._on_connect(event)
            case MessageStateChanged():
                self.messages.on_state(event)
            case InboundMessage(message=info):
                message = Message(info, self)
                why = self.inbound_messages.offer(message)
                if why is not None:
                    logger.warning("inbound message %s dropped: %s", info.message_id, why)

    def _on_connect(self, event: ConnectStateChanged) -> None:
        peer: Call | None = None
        info = event.peer
        if info is not None:
            peer = self._calls.get(info.call_id)
            if peer is None:
                peer = Call.from_info(self._session, info)
                if self._core.get_call(info.call_id) is not None:
                    self._calls[info.call_id] = peer
                else:  # it ended already: the core does not track it
                    peer.finish(CallGoneError("the peer leg has ended", code=410))
        call = self._calls.get(event.call_id)
        if call is not None:
            call.apply_connect(event, peer)

    # ------------------------------------------------------------------ commands

    async def send_message(
        self,
        sender: Sender,
        *,
        to_number: str,
        from_number: str,
        context: str | None,
        body: str | None,
        media: Sequence[str] | None,
        tags: Sequence[str] | None,
        region: str | None,
        on_completed: Any,
    ) -> Message:
        params = send_params(
            to_number=to_number,
            from_number=from_number,
            context=context,
            body=body,
            media=media,
            tags=tags,
            region=region,
        )
        return await self.messages.send(sender, params, on_completed)

    def message_iterator(self) -> AsyncIterator[Message]:
        return self.inbound_messages.items()
