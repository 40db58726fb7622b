"""The commands a ``ClientConnection`` takes for calls and messages.

``CallSurface`` is the part of ``ClientConnection``'s public API that acts on calls (answer,
end, actions and their controls, bridges) and sends messages. Each method validates its
input and hands it to the connection's ``CallCommands`` (``_calling``), which queues the
request; nothing is queued when the input is invalid (``LocalProtocolError``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import _commands as commands
from ._calling import CallCommands
from ._messages import send_params
from ._requests import RequestTable
from ._session import Session


class CallSurface:
    """Call and message commands of ``ClientConnection`` (see the module docstring)."""

    _calls: CallCommands
    _requests: RequestTable
    _session: Session

    # ------------------------------------------------------------------ call commands

    def play(
        self,
        call_id: str,
        media: Any,
        *,
        volume: float | None = None,
        direction: str | None = None,
        loop: int | None = None,
    ) -> tuple[str, str]:
        """Queue ``calling.play``; return ``(request_id, control_id)``."""
        params = commands.play_params(media, volume=volume, direction=direction, loop=loop)
        return self._calls.play(call_id, params)

    def play_control(
        self, call_id: str, control_id: str, action: str, *, volume: float | None = None
    ) -> str:
        """``calling.play.pause|resume|stop|volume`` for a running play."""
        return self._calls.play_control(call_id, control_id, action, volume)

    def start_action(
        self,
        call_id: str,
        verb: str,
        params: Mapping[str, Any],
        *,
        control_id: str | None = None,
    ) -> tuple[str, str]:
        """Start an action (``calling.<verb>``: record, play_and_collect, collect, detect,
        send_digits, tap, ..., or any verb with a ``control_id``); return ``(request_id,
        control_id)``. ``params`` is the nested wire form without ids, checked by the
        verb's rules (``LocalProtocolError`` before anything is queued). Its progress comes
        as ``ActionStateChanged`` events."""
        return self._calls.start_action(call_id, verb, params, control_id)

    def action_control(
        self,
        call_id: str,
        verb: str,
        control_id: str,
        control: str,
        params: Mapping[str, Any] | None = None,
    ) -> str:
        """A control of a running action (``stop``, ``pause``, ``resume``, ``volume``,
        ``start_input_timers``: those its verb has); return the request id."""
        return self._calls.action_control(call_id, verb, control_id, control, params)

    def abandon_action(self, control_id: str) -> None:
        """Nobody waits for this action (its start was cancelled or timed out): a start not
        yet sent is not sent, one on its way is stopped once accepted, one accepted is
        stopped now (``calling.<verb>.stop``, not reported). No action is left running
        without a handle."""
        stop = self._calls.abandon_action(control_id)
        if stop is not None:
            self._calls.apply([stop], [])

    def end(self, call_id: str, reason: str = "hangup", *, cleanup: bool = False) -> str:
        """Queue ``calling.end`` for a live call; return its request id.

        ``cleanup=True`` is for hang-ups that must happen whatever else is going on
        (refusing an inbound call, ending calls on the way out): such a request is never
        refused by ``max_queued``, and when its reply is lost with a socket it is sent
        again on the next session instead of failing with ``connection_lost``. Its outcome
        is reported as usual (``RequestSucceeded``/``RequestFailed``), under the request id
        returned here even when it was re-sent.
        """
        return self._calls.end(call_id, reason, cleanup)

    def give_up(self, request_id: str) -> None:
        """Stop waiting for a request: one not yet sent is not sent, one sent is forgotten
        and its late reply dropped; no event reports it. A cleanup hang-up is kept. A
        message's send given up no longer holds early state events back."""
        self._requests.give_up(request_id)
        self._calls.messages.in_flight.discard(request_id)

    def answer(self, call_id: str) -> str:
        return self._calls.call_request(self._calls.live_call(call_id), "calling.answer", {})

    def pass_call(self, call_id: str) -> str:
        """Decline an inbound call not answered yet (``calling.pass``): the server offers it
        to another consumer of its context. Once accepted, the call is forgotten without a
        hang-up (``CallLost`` with ``passed=True`` follows the ``RequestSucceeded``); a
        refusal leaves it this session's."""
        return self._calls.call_request(self._calls.live_call(call_id), "calling.pass", {})

    def connect_call(
        self,
        call_id: str,
        devices: Any,
        *,
        ringback: Any = None,
        tag: str | None = None,
        max_duration: int | None = None,
        max_price_per_minute: float | None = None,
        status_url: str | None = None,
    ) -> str:
        """Bridge a call (``calling.connect``) to a device plan (the same rules as a dial);
        progress comes as ``ConnectStateChanged``, the peer then is a call of the session.
        ``status_url``: where the server also posts the bridge's progress (a non-empty
        string, sent as it is)."""
        return self._calls.connect(
            call_id,
            devices,
            ringback=ringback,
            tag=tag,
            max_duration=max_duration,
            max_price_per_minute=max_price_per_minute,
            status_url=status_url,
        )

    def send_message(
        self,
        *,
        to_number: str,
        from_number: str,
        context: str | None = None,
        body: str | None = None,
        media: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        region: str | None = None,
    ) -> str:
        """Queue ``messaging.send``; the reply's ``message_id`` names the message, whose
        progress comes as ``MessageStateChanged``. ``context`` (where the state events
        go) defaults, as the official SDK's does, to the session's ``protocol`` (which this
        session receives on, whatever it subscribed to), else ``"default"``."""
        if context is None:
            context = self._session.protocol or "default"
        params = send_params(
            context=context,
            to_number=to_number,
            from_number=from_number,
            body=body,
            media=media,
            tags=tags,
            region=region,
        )
        return self._calls.send_message(params)

    def execute(self, method: str, params: Mapping[str, Any], *, call_id: str | None = None) -> str:
        """Send any request. With ``call_id``, ``node_id`` and ``call_id`` are prefixed."""
        return self._calls.execute(method, params, call_id)
