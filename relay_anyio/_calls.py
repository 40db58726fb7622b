"""User-facing call objects: ``Call`` and ``PlayAction``.

They hold no protocol logic: every command goes through ``CallSession.command`` (and so
through the core), and their state changes only through the ``apply_*`` / ``finish``
methods, which the session calls from its event dispatch (user code has no reason to).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import anyio

from relay_proto import CallInfo, CallState, ClientConnection, PlayState

from ._errors import CallGoneError, RelayError, RequestError

__all__ = ["Call", "CallSession", "PlayAction"]

JSONObject = dict[str, Any]

logger = logging.getLogger("relay_anyio")


class CallSession(Protocol):
    """What a ``Call`` needs of the session that owns it: a way to run a command, a way
    to send one nobody waits for, and the bound of a wait for the server."""

    @property
    def request_timeout(self) -> float: ...

    def expire_at(self, when: float, done: Callable[[], bool], expire: Callable[[], None]) -> None:
        """Bound a wait: at ``when``, call ``expire()`` unless ``done()``."""

    def send(self, start: Callable[[ClientConnection], str]) -> None:
        """Queue ``start(core)``'s request and write it; its reply is dropped."""
        ...

    async def command(
        self, start: Callable[[ClientConnection], str], call: Call | None = None
    ) -> JSONObject:
        """Run ``start(core)`` (it queues one request and returns its id); wait for and
        return the result. ``call``: the call the command is for (``CallGoneError`` once
        it has ended)."""
        ...


class PlayAction:
    """A running ``calling.play``: wait for it, or pause/resume/stop/adjust it."""

    __slots__ = ("_call", "_done", "_lost", "control_id", "state")

    def __init__(self, call: Call, control_id: str) -> None:
        self._call = call
        self.control_id = control_id
        self.state: PlayState | None = None
        self._done = anyio.Event()
        self._lost: RelayError | None = None

    def __repr__(self) -> str:
        state = None if self.state is None else self.state.value
        return f"<PlayAction control_id={self.control_id!r} state={state}>"

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def apply_state(self, state: PlayState) -> None:
        """The core reported a new play state (called by the session)."""
        self.state = state
        if state.terminal:
            self._done.set()

    def abandon(self, error: RelayError) -> None:
        """The play can no longer finish: ``wait()`` raises ``error`` (called by the call)."""
        if not self._done.is_set():
            self._lost = error
            self._done.set()

    async def wait(self) -> PlayState:
        """Wait until the play finishes; return ``FINISHED`` or ``ERROR``.

        Raises ``CallGoneError`` if the call ended before the play did (with no final
        play event from the server), ``ConnectionLostError`` if the session was lost.
        """
        await self._done.wait()
        if self._lost is not None:
            raise self._lost
        assert self.state is not None
        return self.state

    async def stop(self) -> None:
        await self._control("stop")

    async def pause(self) -> None:
        await self._control("pause")

    async def resume(self) -> None:
        await self._control("resume")

    async def volume(self, volume: float) -> None:
        await self._control("volume", volume)

    async def _control(self, action: str, volume: float | None = None) -> None:
        await self._call.session.command(
            lambda core: core.play_control(
                self._call.call_id, self.control_id, action, volume=volume
            )
        )


class Call:
    """A live call leg owned by this client (an answered dial, or an inbound call)."""

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
        self._ended = anyio.Event()
        self._actions: dict[str, PlayAction] = {}

    @classmethod
    def from_info(cls, session: CallSession, info: CallInfo) -> Call:
        """A ``Call`` for a call the core reported (answered dial or inbound call)."""
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
        if state is CallState.ENDED:
            self.finish(CallGoneError("the call ended before the play finished", code=410))

    def apply_play_state(self, control_id: str, state: PlayState) -> None:
        """The core reported a new state of one of this call's plays."""
        action = self._actions.get(control_id)
        if action is not None:
            action.apply_state(state)
            if state.terminal:
                del self._actions[control_id]

    def finish(self, error: RelayError) -> None:
        """The call is over for this client: plays still waited on raise ``error``."""
        for action in self._actions.values():
            action.abandon(error)
        self._actions.clear()
        self._ended.set()

    # -------------------------------------------------------------- commands

    async def play(
        self,
        media: Sequence[Mapping[str, Any]],
        *,
        volume: float | None = None,
        direction: str | None = None,
        loop: int | None = None,
    ) -> PlayAction:
        """Start playing ``media``; returns once the server accepted the play.

        Media may be nested (``{"type": "tts", "params": {"text": "Hi"}}``) or flat
        (``{"type": "tts", "text": "Hi"}``). If this is cancelled, times out or loses its
        reply with the socket after the request was made, ``calling.play.stop`` is queued
        for it at once, so no play is left running without a handle.
        """
        created: list[PlayAction] = []

        def start(core: ClientConnection) -> str:
            request_id, control_id = core.play(
                self.call_id, media, volume=volume, direction=direction, loop=loop
            )
            action = PlayAction(self, control_id)
            self._actions[control_id] = action
            created.append(action)
            return str(request_id)

        try:
            await self.session.command(start, call=self)
        except BaseException as exc:
            if created:
                control_id = created[0].control_id
                self._actions.pop(control_id, None)
                refused = isinstance(exc, RequestError) and not isinstance(exc, TimeoutError)
                if not refused and not self.ended:  # it may play: stop it (404: it is gone)
                    self.session.send(
                        lambda core: core.play_control(self.call_id, control_id, "stop")
                    )
            raise
        # The same object the dispatch updates: if the final play event (or the call's
        # end) arrived in the same read as the reply, it is already done.
        return created[0]

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

    async def answer(self) -> None:
        """Answer an inbound call."""
        await self.session.command(lambda core: core.answer(self.call_id), call=self)

    async def execute(self, method: str, params: Mapping[str, Any] | None = None) -> JSONObject:
        """Send any ``calling.<verb>`` for this call; returns the result object."""
        return await self.session.command(
            lambda core: core.execute(method, params or {}, call_id=self.call_id), call=self
        )

    async def wait_for_ended(self) -> str | None:
        """Wait until the call has ended; return its end reason."""
        await self._ended.wait()
        return self.end_reason
