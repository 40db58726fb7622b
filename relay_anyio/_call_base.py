"""The core of a user-facing call: its state, its actions, and the plumbing of its commands.

``CallBase`` holds no protocol logic: every command goes through ``CallSession.command`` (and
so through the core), and its state changes only through the ``apply_*`` / ``finish``
methods, which the session calls from its event dispatch (user code has no reason to).
The verbs themselves are layered on top: ``_call_media`` (actions: play, record, collect,
detect, ...), then ``_calls.Call`` (bridging and the reply-only requests).

Invariants:

* An action handle is in ``actions`` from the moment its start is queued until the core
  reports it done, its start fails, or the call is over; every handle left when the call
  is over is told so (``Action.call_gone``), so no ``wait()`` hangs on a gone call.
* A start that is cancelled, times out or loses its reply with the socket is handed to
  ``core.abandon_action``: the core withdraws it, or stops it once (or as soon as) the
  server accepted it; no action is left running without a handle. A start whose reply
  timed out is also stopped at once (its reply may never come); if the reply does come,
  the core stops it again, which is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, Self, TypeVar

import anyio

from relay_proto import ActionStateChanged, CallInfo, CallState, ClientConnection

from ._actions import Action, OnCompleted, PlayAction, handle_class
from ._errors import CallGoneError, RelayError, RequestError
from ._listeners import CallEvent, Listener
from ._waiters import Flag, Runner, call_back, wait_flag

__all__ = ["CallBase", "CallSession"]

JSONObject = dict[str, Any]
A = TypeVar("A", bound=Action)

logger = logging.getLogger("relay_anyio")


class Hooks(Runner, Protocol):
    """Where a call's user callbacks run, and the flag that turns ``Call.on`` routing on."""

    listening: bool


class CallSession(Protocol):
    """What a call needs of the session that owns it: a way to run a command, a way to
    send one nobody waits for, the bound of a wait for the server, and where user
    callbacks run."""

    #: Makes the running loop's own event (``_waiters.event_factory``; every call makes one).
    new_event: Callable[[], Flag]

    @property
    def request_timeout(self) -> float: ...

    @property
    def surface(self) -> Hooks: ...

    def expire_at(self, when: float, done: Callable[[], bool], expire: Callable[[], None]) -> None:
        """Bound a wait: at ``when``, call ``expire()`` unless ``done()``."""

    def send(self, start: Callable[[ClientConnection], object]) -> None:
        """Run ``start(core)`` (it queues requests) and write; replies are dropped."""
        ...

    async def command(
        self,
        start: Callable[[ClientConnection], str],
        call: CallBase | None = None,
        *,
        give_up: bool = True,
    ) -> JSONObject:
        """Run ``start(core)`` (it queues one request and returns its id); wait for and
        return the result. ``call``: the call the command is for (``CallGoneError`` once
        it has ended). ``give_up=False``: on timeout the caller abandons the request."""
        ...


class CallBase:
    """A live call leg owned by this client (an answered dial, an inbound call, or the
    peer of a bridge)."""

    def __init__(
        self,
        session: CallSession,
        *,
        call_id: str,
        node_id: str,
        tag: str | None,
        device: JSONObject,
        direction: str,
        state: CallState,
        context: str | None = None,
    ) -> None:
        #: Where this call's commands go.
        self.session = session
        self.call_id = call_id
        self.node_id = node_id
        self.tag = tag
        self.device = device
        self.direction = direction
        self.state = state
        self.context = context
        self.end_reason: str | None = None
        self._ended = session.new_event()
        #: Set (and dropped) at the next state change; made only when someone waits.
        self._moved: Flag | None = None
        #: The running actions, by ``control_id``.
        self.actions: dict[str, Action] = {}
        #: ``Call.on`` handlers by event type (None until one is registered).
        self._listeners: dict[str, list[Listener]] | None = None

    @classmethod
    def from_info(cls, session: CallSession, info: CallInfo) -> Self:
        """A call object for a call the core reported (answered dial, inbound call, peer)."""
        return cls(
            session,
            call_id=info.call_id,
            node_id=info.node_id,
            tag=info.tag,
            device=info.device,
            direction=info.direction,
            state=info.state,
            context=info.context,
        )

    def __repr__(self) -> str:
        return (
            f"<Call call_id={self.call_id!r} direction={self.direction} state={self.state.value}>"
        )

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    # -------------------------------------------------------------- updates from the session

    def apply_state(self, state: CallState, end_reason: str | None) -> None:
        """The core reported a new call state."""
        self.state = state
        if end_reason is not None:
            self.end_reason = end_reason
        if self._moved is not None:
            self._moved.set()
            self._moved = None
        if state is CallState.ENDED:
            self.finish(CallGoneError("the call ended before the play finished", code=410))

    def apply_action(self, event: ActionStateChanged) -> None:
        """The core reported progress of one of this call's actions."""
        action = self.actions.get(event.control_id)
        if action is not None:
            action.apply(event)
            if event.done:
                del self.actions[event.control_id]

    def finish(self, error: RelayError) -> None:
        """The call is over for this client: its actions are told (``call_gone``)."""
        actions, self.actions = self.actions, {}
        for action in actions.values():
            action.call_gone(error)
        self._ended.set()
        if self._moved is not None:
            self._moved.set()
            self._moved = None

    # -------------------------------------------------------------- actions

    async def begin(
        self,
        cls: type[A],
        verb: str,
        params: Mapping[str, Any],
        control_id: str | None = None,
        on_completed: OnCompleted | None = None,
    ) -> A:
        """Start ``verb`` with ``params`` (nested wire form, no ids) and return its handle
        of class ``cls`` once the server accepted it (see the module's invariants)."""
        created: list[A] = []

        def start(core: ClientConnection) -> str:
            request_id, cid = core.start_action(self.call_id, verb, params, control_id=control_id)
            action = cls(self, verb, cid, on_completed)
            self.actions[cid] = action
            created.append(action)
            return request_id

        try:
            await self.session.command(start, call=self, give_up=False)
        except BaseException as exc:
            if created:
                cid = created[0].control_id
                self.actions.pop(cid, None)
                timed_out = isinstance(exc, TimeoutError)
                if timed_out or not isinstance(exc, RequestError):  # else refused: nothing runs
                    self.session.send(lambda core: self._abandon(core, cls, verb, cid, timed_out))
            raise
        # The same object the dispatch updates: if the action's final event (or the call's
        # end) arrived in the same read as the reply, it is already done.
        return created[0]

    def _abandon(
        self, core: ClientConnection, cls: type[Action], verb: str, cid: str, timed_out: bool
    ) -> None:
        core.abandon_action(cid)
        if timed_out and "stop" in cls.controls and not self.ended:
            # Its reply may never come (the core would stop it on the reply): stop it now.
            core.action_control(self.call_id, verb, cid, "stop")

    async def start_action(
        self,
        verb: str,
        params: Mapping[str, Any],
        *,
        control_id: str | None = None,
        on_completed: OnCompleted | None = None,
    ) -> Action:
        """Start any action (``calling.<verb>`` with a ``control_id``; a verb this client
        has no method for gets a generic row: ``calling.call.<verb>`` events, ``.stop``).
        ``params``: the nested wire form without ids. Returns its handle."""
        return await self.begin(handle_class(verb), verb, params, control_id, on_completed)

    async def play(
        self,
        media: Sequence[Mapping[str, Any]],
        *,
        volume: float | None = None,
        direction: str | None = None,
        loop: int | None = None,
        control_id: str | None = None,
        on_completed: OnCompleted | None = None,
    ) -> PlayAction:
        """Start playing ``media``; returns once the server accepted the play.

        Media may be nested (``{"type": "tts", "params": {"text": "Hi"}}``) or flat
        (``{"type": "tts", "text": "Hi"}``). If this is cancelled, times out or loses its
        reply with the socket after the request was made, the play is abandoned: not sent,
        or stopped as soon as the server accepted it, so no play runs without a handle.
        """
        params: JSONObject = {"play": list(media)}
        for key, value in (("volume", volume), ("direction", direction), ("loop", loop)):
            if value is not None:
                params[key] = value
        return await self.begin(PlayAction, "play", params, control_id, on_completed)

    # -------------------------------------------------------------- call commands

    async def hangup(self, reason: str = "hangup") -> None:
        """End the call and wait for it to be ended. Does nothing if it already has.

        Waits up to ``request_timeout`` for the reply, then as long again for the call's
        ``ended``; if that does not come, the call is reported ended by the client
        (``state`` ENDED, ``end_reason`` = ``reason``) and a warning is logged.
        """
        if self.ended:
            return
        await self.session.command(lambda core: core.end(self.call_id, reason), call=self)
        if self.ended:  # usually: ``ended`` came in the same read as the reply
            return
        timeout = self.session.request_timeout
        self.session.expire_at(
            anyio.current_time() + timeout,
            lambda: self.ended,
            lambda: self._report_ended(reason, timeout),
        )
        await self._ended.wait()

    def _report_ended(self, reason: str, timeout: float) -> None:
        logger.warning(
            "call %s: not ended %g s after its hang-up was accepted; reporting it ended",
            self.call_id,
            timeout,
        )
        self.apply_state(CallState.ENDED, reason)

    async def answer(self, **kwargs: Any) -> None:
        """Answer an inbound call (``kwargs``: extra params of ``calling.answer``, as the
        official SDK sends them)."""
        if kwargs:
            await self.execute("calling.answer", kwargs)
        else:
            await self.session.command(lambda core: core.answer(self.call_id), call=self)

    async def execute(self, method: str, params: Mapping[str, Any] | None = None) -> JSONObject:
        """Send any ``calling.<verb>`` for this call; returns the result object."""
        return await self.session.command(
            lambda core: core.execute(method, params or {}, call_id=self.call_id), call=self
        )

    async def wait_for_ended(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 (the official SDK's keyword)
    ) -> str | None:
        """Wait until the call has ended; return its end reason. ``timeout``:
        ``TimeoutError`` after that many seconds."""
        with anyio.fail_after(timeout):
            await wait_flag(self._ended)
        return self.end_reason

    # -------------------------------------------------------------- raw events

    def on(self, event_type: str, handler: Listener) -> None:
        """Call ``handler(event)`` for every event of this call of type ``event_type``
        (``calling.call.state``, ``calling.call.record``, ...): a ``CallEvent`` with the
        server's params. A coroutine function runs as a task; what it raises is logged."""
        if self._listeners is None:
            self._listeners = {}
            self.session.surface.listening = True
        self._listeners.setdefault(event_type, []).append(handler)

    async def wait_for(
        self,
        event_type: str,
        predicate: Callable[[CallEvent], bool] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the official SDK's keyword)
    ) -> CallEvent:
        """The next event of this call of type ``event_type`` (for which ``predicate`` is
        true); ``TimeoutError`` after ``timeout`` seconds."""
        got: list[CallEvent] = []
        arrived = self.session.new_event()

        def take(event: CallEvent) -> None:
            if not got and (predicate is None or predicate(event)):
                got.append(event)
                arrived.set()

        self.on(event_type, take)
        try:
            with anyio.fail_after(timeout):
                await wait_flag(arrived)
        finally:
            assert self._listeners is not None
            self._listeners[event_type].remove(take)
        return got[0]

    def deliver(self, event: CallEvent) -> None:
        """An event of this call came (called by the session)."""
        if self._listeners is not None:
            for handler in list(self._listeners.get(event.event_type, ())):
                call_back(self.session.surface, f"handler of {event.event_type}", handler, event)

    async def wait_for_state(
        self,
        target: CallState,
        timeout: float | None = None,  # noqa: ASYNC109 (the official SDK's keyword)
    ) -> CallState:
        """Wait until the call has reached ``target`` or a later state (at once if it has);
        return the state it is in. ``timeout``: ``TimeoutError`` after that many seconds."""
        with anyio.fail_after(timeout):
            while self.state.rank < target.rank and not self.ended:
                if self._moved is None:
                    self._moved = self.session.new_event()
                await wait_flag(self._moved)
        return self.state

    async def wait_for_ringing(self, timeout: float | None = None) -> CallState:  # noqa: ASYNC109
        return await self.wait_for_state(CallState.RINGING, timeout)

    async def wait_for_answered(self, timeout: float | None = None) -> CallState:  # noqa: ASYNC109
        return await self.wait_for_state(CallState.ANSWERED, timeout)

    async def wait_for_ending(self, timeout: float | None = None) -> CallState:  # noqa: ASYNC109
        return await self.wait_for_state(CallState.ENDING, timeout)
