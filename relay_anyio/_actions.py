"""Action handles: what ``Call.record()``, ``Call.detect()``, ... return.

One class, ``Action``, serves every verb with a ``control_id``; the named subclasses
(``RecordAction``, ``CollectAction``, ...) only add the controls their verb has, under the
official SDK's names. A handle holds no protocol logic: its state changes only through
``apply`` (the core's ``ActionStateChanged`` for it, routed by the session through its call)
and ``call_gone`` (the call is over for this client).

Invariants:

* ``wait()`` returns once the action has *settled* (its answer is known: a final collect
  result, the first detection, else its end), with the typed result (``relay_proto``'s
  ``RecordResult``, ``CollectResult``, ...). When the call ended first the result's
  ``call_ended`` is true; ``wait()`` never hangs on a call that is gone. Only a client that
  was closed or lost its session (with the call still up as far as it knows) makes
  ``wait()`` raise (``ConnectionLostError``).
* Cancelling ``wait()`` does not stop the action; ``stop()`` does.
* ``on_completed`` runs once, when the action settles: a plain function inline, a
  coroutine function as a task of the client; whatever it raises is logged, never raised
  into the client.
* ``PlayAction`` keeps its own contract: ``wait()`` returns the final ``PlayState`` and
  raises ``CallGoneError`` when the call ended first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol

import anyio

from relay_proto import (
    CALL_ENDED,
    ActionResult,
    ActionStateChanged,
    ClientConnection,
    CollectResult,
    DetectResult,
    FaxResult,
    PlayState,
    PlayStateChanged,
    RecordResult,
    SendDigitsResult,
    TapResult,
)

from ._errors import CallGoneError, RelayError
from ._waiters import Runner, call_back

__all__ = [
    "AIAction",
    "Action",
    "CollectAction",
    "DetectAction",
    "FaxAction",
    "OnCompleted",
    "PayAction",
    "PlayAction",
    "RecordAction",
    "SendDigitsAction",
    "StandaloneCollectAction",
    "StreamAction",
    "TapAction",
    "TranscribeAction",
    "handle_class",
]

logger = logging.getLogger("relay_anyio")

JSONObject = dict[str, Any]
#: ``on_completed``: called with the action once it settles (sync or async).
OnCompleted = Callable[["Action"], Any]


class Commands(Protocol):
    """What a handle needs of the session: a command, and where callbacks run."""

    @property
    def surface(self) -> Runner: ...

    async def command(
        self, start: Callable[[ClientConnection], str], call: Any = None, *, give_up: bool = True
    ) -> JSONObject: ...


class Owner(Protocol):
    """The call an action runs on (``Call``)."""

    call_id: str

    @property
    def session(self) -> Commands: ...


class Action:
    """A running action of a call (any verb with a ``control_id``).

    ``state``: the last state reported (a wire string; ``call_ended`` when the call ended
    first); ``result``: the typed result once settled (the latest partial one before);
    ``done``: the action is over; ``settled``: its answer is known (``wait()`` returns).
    """

    #: The controls this handle offers besides ``stop`` (checked by the core as well).
    controls: ClassVar[frozenset[str]] = frozenset({"stop"})

    def __init__(
        self, call: Owner, verb: str, control_id: str, on_completed: OnCompleted | None = None
    ) -> None:
        self.call = call
        self.verb = verb
        self.control_id = control_id
        self.state: str | None = None
        self.result: ActionResult | None = None
        #: The prompt's play state (``play_and_collect`` only).
        self.prompt_state: PlayState | None = None
        self._on_completed = on_completed
        self._settled = anyio.Event()
        self._done = False
        self._lost: RelayError | None = None

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} verb={self.verb} control_id={self.control_id!r} "
            f"state={self.state}>"
        )

    @property
    def done(self) -> bool:
        return self._done

    @property
    def settled(self) -> bool:
        return self._settled.is_set()

    @property
    def completed(self) -> bool:
        """The official SDK's name for ``settled``."""
        return self.settled

    # -------------------------------------------------------------- updates (session, call)

    def apply(self, event: ActionStateChanged) -> None:
        """The core reported progress of this action."""
        if isinstance(event, PlayStateChanged) and event.verb != "play":
            self.prompt_state = event.state  # the prompt of a play_and_collect
            return
        self.state = event.state
        if event.result is not None and not self.settled:
            self.result = event.result
        if event.done:
            self._done = True
        if event.settled or (event.done and not self.settled):
            self._settle(event.result or ActionResult(verb=self.verb, state=event.state))

    def call_gone(self, error: RelayError) -> None:
        """The call is over for this client: settle as ``call_ended`` (it ended, or it is
        gone), or fail ``wait()`` with ``error`` (the client was closed or lost)."""
        self._done = True
        if self.settled:
            return
        if isinstance(error, CallGoneError):
            self.state = CALL_ENDED
            self._settle(ActionResult(verb=self.verb, state=CALL_ENDED))
        else:
            self._lost = error
            self._settled.set()

    def _settle(self, result: ActionResult) -> None:
        if self.settled:
            return
        self.result = result
        self._settled.set()
        if self._on_completed is not None:
            what = f"on_completed of {self.verb} {self.control_id}"
            call_back(self.call.session.surface, what, self._on_completed, self)

    # -------------------------------------------------------------- user API

    async def wait(self, timeout: float | None = None) -> ActionResult:  # noqa: ASYNC109
        """Wait until the action settles; return its typed result (``call_ended`` true if
        the call ended first). ``timeout``: raise ``TimeoutError`` after that many seconds
        (the action goes on). Raises ``ConnectionLostError`` if the client was closed or
        its session lost while the action ran."""
        with anyio.fail_after(timeout):
            await self._settled.wait()
        if self._lost is not None:
            raise self._lost
        assert self.result is not None
        return self.result

    async def stop(self) -> JSONObject:
        """Stop the action (``calling.<verb>.stop``); returns the reply's result.

        Stopping an action that is over does nothing and returns ``{}``: nothing is sent if
        it was over already, and if it ends while the stop is on its way, the server's
        ``404`` for it is not an error (it says the action is gone, not the call)."""
        if self._done:
            return {}
        try:
            return await self.control("stop")
        except CallGoneError:
            if self._done:
                return {}
            raise

    async def control(self, control: str, params: Mapping[str, Any] | None = None) -> JSONObject:
        """Send one of the verb's controls (``stop``, ``pause``, ``volume``, ...)."""
        call, verb, control_id = self.call, self.verb, self.control_id

        def start(core: ClientConnection) -> str:
            return core.action_control(call.call_id, verb, control_id, control, params)

        return await call.session.command(start, call=call)


class _Pausable(Action):
    controls = frozenset({"stop", "pause", "resume"})

    async def pause(self, behavior: str | None = None) -> JSONObject:
        return await self.control("pause", None if behavior is None else {"behavior": behavior})

    async def resume(self) -> JSONObject:
        return await self.control("resume")


class RecordAction(_Pausable):
    """``record()``: ``wait()`` returns a ``RecordResult`` (url, duration, size)."""

    result: RecordResult | ActionResult | None


class CollectAction(Action):
    """``play_and_collect()``: ``wait()`` returns a ``CollectResult``; ``prompt_state`` is
    the prompt's play state."""

    controls = frozenset({"stop", "volume", "start_input_timers"})
    result: CollectResult | ActionResult | None

    async def volume(self, volume: float) -> JSONObject:
        return await self.control("volume", {"volume": volume})

    async def start_input_timers(self) -> JSONObject:
        return await self.control("start_input_timers")


class StandaloneCollectAction(Action):
    """``collect()``: ``wait()`` returns a ``CollectResult``."""

    controls = frozenset({"stop", "start_input_timers"})
    result: CollectResult | ActionResult | None

    async def start_input_timers(self) -> JSONObject:
        return await self.control("start_input_timers")


class DetectAction(Action):
    """``detect()`` and its shortcuts: ``wait()`` returns the first ``DetectResult`` (the
    detector may go on until ``stop()`` or its timeout); ``detections`` lists every result
    it reported, and ``wait_for()`` waits for a later one (a machine's ``READY``)."""

    result: DetectResult | ActionResult | None

    def __init__(
        self, call: Owner, verb: str, control_id: str, on_completed: OnCompleted | None = None
    ) -> None:
        super().__init__(call, verb, control_id, on_completed)
        #: Every detection so far, in order (``DetectResult.result`` set).
        self.detections: list[DetectResult] = []
        self._moved = anyio.Event()

    def apply(self, event: ActionStateChanged) -> None:
        # First the list, then the handle's state: ``on_completed`` sees this detection.
        if isinstance(event.result, DetectResult) and event.result.result is not None:
            self.detections.append(event.result)
        super().apply(event)
        self._wake()

    def call_gone(self, error: RelayError) -> None:
        super().call_gone(error)
        self._wake()

    def _wake(self) -> None:
        moved, self._moved = self._moved, anyio.Event()
        moved.set()

    async def wait_for(
        self,
        *results: str,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> DetectResult | None:
        """Wait until the detector reports one of ``results`` (``"READY"``: the machine's
        greeting is over, leave the message now) and return that detection, at once if it
        already has; ``None`` if the detector ends first (its timeout, ``stop()``, the
        call ending). ``timeout``: ``TimeoutError`` after that many seconds (the detector
        goes on). Raises ``ConnectionLostError`` if the client was closed or lost."""
        with anyio.fail_after(timeout):
            while True:
                for detection in self.detections:
                    if detection.result in results:
                        return detection
                if self._done:
                    if self._lost is not None:
                        raise self._lost
                    return None
                await self._moved.wait()


class TapAction(Action):
    result: TapResult | ActionResult | None


class FaxAction(Action):
    result: FaxResult | ActionResult | None


class StreamAction(Action):
    pass


class PayAction(Action):
    pass


class TranscribeAction(Action):
    pass


class AIAction(Action):
    pass


class SendDigitsAction(Action):
    controls = frozenset()
    result: SendDigitsResult | ActionResult | None


class PlayAction(_Pausable):
    """A running ``calling.play``: wait for it, or pause/resume/stop/adjust it.

    ``wait()`` returns the final ``PlayState`` (``FINISHED`` or ``ERROR``) and raises
    ``CallGoneError`` if the call ended first, ``ConnectionLostError`` if the session was
    lost.
    """

    controls = frozenset({"stop", "pause", "resume", "volume"})
    state: Any

    def __repr__(self) -> str:
        state = None if self.state is None else str(self.state)
        return f"<PlayAction control_id={self.control_id!r} state={state}>"

    def apply(self, event: ActionStateChanged) -> None:
        if event.state == CALL_ENDED:
            self.call_gone(CallGoneError("the call ended before the play finished", code=410))
        else:
            super().apply(event)

    def call_gone(self, error: RelayError) -> None:
        self._done = True
        if not self.settled:
            self._lost = error
            self._settled.set()

    async def wait(  # type: ignore[override]
        self,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> PlayState:
        """Wait until the play finishes; return ``FINISHED`` or ``ERROR``.

        Raises ``CallGoneError`` if the call ended before the play did (with no final
        play event from the server), ``ConnectionLostError`` if the session was lost.
        """
        with anyio.fail_after(timeout):
            await self._settled.wait()
        if self._lost is not None:
            raise self._lost
        return PlayState(self.state)

    async def volume(self, volume: float) -> JSONObject:
        return await self.control("volume", {"volume": volume})


_HANDLES: dict[str, type[Action]] = {
    "play": PlayAction,
    "record": RecordAction,
    "play_and_collect": CollectAction,
    "collect": StandaloneCollectAction,
    "detect": DetectAction,
    "send_digits": SendDigitsAction,
    "tap": TapAction,
    "stream": StreamAction,
    "transcribe": TranscribeAction,
    "pay": PayAction,
    "send_fax": FaxAction,
    "receive_fax": FaxAction,
    "ai": AIAction,
}


def handle_class(verb: str) -> type[Action]:
    """The handle class for ``verb`` (``Action`` for a verb with no named handle)."""
    return _HANDLES.get(verb, Action)
