"""``Call``: every command of a call leg, under the official SDK's names.

The actions come from ``_call_media`` and the plumbing from ``_call_base``; this module adds
bridging (``connect`` / ``disconnect``, driven by the core's ``ConnectStateChanged``) and
the requests that have a reply only (transfer, hold, conference, queue, ...), which return
the reply's result object like the official SDK.

Bridging invariants:

* At most one ``connect()`` waits per call. It returns the peer as a ``Call`` of the
  client (registered like any call, hung up on the same rules) once ``connected`` comes,
  and raises ``ConnectError`` (``reason``, ``source``) on ``failed`` or a ``disconnected``
  before that, ``CallGoneError`` if the call ends first.
* A ``connect()`` that is cancelled, times out or loses its reply while the bridge may be
  in the making (no ``failed``/``disconnected`` yet) queues ``calling.disconnect``: no
  bridge is left half-made. The original call is never hung up by it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from relay_proto import ClientConnection, ConnectState, ConnectStateChanged

from ._call_media import MediaCall, given
from ._errors import ConnectError, RelayError, RequestError
from ._waiters import Slot

__all__ = ["Call"]

JSONObject = dict[str, Any]


class Call(MediaCall):
    """A live call leg owned by this client (an answered dial, an inbound call, or the
    peer of a bridge). ``connect_state`` / ``peer``: its bridge, if any."""

    connect_state: ConnectState | None = None
    peer: Call | None = None
    _connecting: Slot[Call] | None = None

    # -------------------------------------------------------------- bridging

    def apply_connect(self, event: ConnectStateChanged, peer: Call | None) -> None:
        """The core reported a bridge state of this call (``peer``: the other leg)."""
        self.connect_state = event.state
        slot = self._connecting
        if event.state is ConnectState.CONNECTED:
            self.peer = peer
            if slot is not None:
                slot.set(peer or ConnectError("connected without naming the peer leg"))
        elif event.state.terminal:
            self.peer = None
            if slot is not None:
                slot.set(ConnectError.of(event))

    async def connect(
        self,
        devices: Sequence[Sequence[Mapping[str, Any]]],
        *,
        ringback: Sequence[Mapping[str, Any]] | None = None,
        tag: str | None = None,
        max_duration: int | None = None,
        max_price_per_minute: float | None = None,
        status_url: str | None = None,
    ) -> Call:
        """Bridge this call to ``devices`` (a plan like a dial's); return the peer once
        connected. See the module docstring for failures and cancellation.

        ``status_url``: where the server also posts the bridge's progress (this client
        follows it through events, on ``connect_state``).
        """
        if self._connecting is not None:
            raise RuntimeError("a connect() is already waiting on this call")
        slot: Slot[Call] = Slot()
        self._connecting, self.connect_state = slot, None
        queued: list[str] = []

        def start(core: ClientConnection) -> str:
            request_id = core.connect_call(
                self.call_id,
                devices,
                ringback=ringback,
                tag=tag,
                max_duration=max_duration,
                max_price_per_minute=max_price_per_minute,
                status_url=status_url,
            )
            queued.append(request_id)
            return request_id

        try:
            await self.session.command(start, call=self)
            return await slot.wait()
        except BaseException as exc:
            refused = isinstance(exc, RequestError) and not isinstance(exc, TimeoutError)
            state = self.connect_state
            if queued and not refused and not self.ended and (state is None or not state.terminal):
                self.session.send(
                    lambda core: core.execute("calling.disconnect", {}, call_id=self.call_id)
                )
            raise
        finally:
            self._connecting = None

    async def disconnect(self) -> JSONObject:
        """Unbridge the call (``calling.disconnect``); the server ends the peer leg."""
        return await self.execute("calling.disconnect")

    def finish(self, error: RelayError) -> None:
        super().finish(error)
        if self._connecting is not None:
            self._connecting.set(error)

    # -------------------------------------------------------------- routing

    async def pass_(self) -> JSONObject:
        """Decline an inbound call not answered yet (``calling.pass``): the platform offers
        it to another consumer of its context. Once the server accepts, the call is no
        longer this client's: it is over here (``ended``; ``wait_for_ended()`` returns, its
        actions end with ``CallGoneError``) and this client never hangs it up, on exit
        either. Refused (an answered call, say): ``RequestError``, and it stays this
        client's."""
        return await self.session.command(lambda core: core.pass_call(self.call_id), call=self)

    async def transfer(self, dest: str, **kwargs: Any) -> JSONObject:
        return await self.execute("calling.transfer", {"dest": dest, **kwargs})

    async def refer(
        self, device: Mapping[str, Any], *, status_url: str | None = None, **kwargs: Any
    ) -> JSONObject:
        params = {"device": dict(device), **given(status_url=status_url), **kwargs}
        return await self.execute("calling.refer", params)

    # -------------------------------------------------------------- audio

    async def hold(self) -> JSONObject:
        return await self.execute("calling.hold")

    async def unhold(self) -> JSONObject:
        return await self.execute("calling.unhold")

    async def denoise(self) -> JSONObject:
        return await self.execute("calling.denoise")

    async def denoise_stop(self) -> JSONObject:
        return await self.execute("calling.denoise.stop")

    async def echo(
        self,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the echo's, sent)
        status_url: str | None = None,
        **kwargs: Any,
    ) -> JSONObject:
        params = {**given(timeout=timeout, status_url=status_url), **kwargs}
        return await self.execute("calling.echo", params)

    async def live_transcribe(self, action: Mapping[str, Any], **kwargs: Any) -> JSONObject:
        return await self.execute("calling.live_transcribe", {"action": dict(action), **kwargs})

    async def live_translate(
        self, action: Mapping[str, Any], *, status_url: str | None = None, **kwargs: Any
    ) -> JSONObject:
        params = {"action": dict(action), **given(status_url=status_url), **kwargs}
        return await self.execute("calling.live_translate", params)

    # -------------------------------------------------------------- conferences, rooms, queues

    async def join_conference(self, name: str, **kwargs: Any) -> JSONObject:
        """Join a conference. The official SDK's keywords (``muted``, ``beep``,
        ``start_on_enter``, ...) go into the request as they are; ``stream_obj`` is sent
        as ``stream``."""
        params = {key: value for key, value in kwargs.items() if value is not None}
        if "stream_obj" in params:
            params["stream"] = params.pop("stream_obj")
        return await self.execute("calling.join_conference", {"name": name, **params})

    async def leave_conference(self, conference_id: str, **kwargs: Any) -> JSONObject:
        params = {"conference_id": conference_id, **kwargs}
        return await self.execute("calling.leave_conference", params)

    async def join_room(
        self, name: str, *, status_url: str | None = None, **kwargs: Any
    ) -> JSONObject:
        params = {"name": name, **given(status_url=status_url), **kwargs}
        return await self.execute("calling.join_room", params)

    async def leave_room(self, **kwargs: Any) -> JSONObject:
        return await self.execute("calling.leave_room", kwargs)

    async def queue_enter(
        self,
        queue_name: str,
        *,
        control_id: str | None = None,
        status_url: str | None = None,
        **kwargs: Any,
    ) -> JSONObject:
        params = {"queue_name": queue_name, **given(control_id=control_id, status_url=status_url)}
        return await self.execute("calling.queue.enter", {**params, **kwargs})

    async def queue_leave(
        self,
        queue_name: str,
        *,
        control_id: str | None = None,
        queue_id: str | None = None,
        status_url: str | None = None,
        **kwargs: Any,
    ) -> JSONObject:
        params = {"queue_name": queue_name}
        params.update(given(control_id=control_id, queue_id=queue_id, status_url=status_url))
        return await self.execute("calling.queue.leave", {**params, **kwargs})

    # -------------------------------------------------------------- digits, events, AI

    async def bind_digit(
        self,
        digits: str,
        bind_method: str,
        *,
        bind_params: Mapping[str, Any] | None = None,
        realm: str | None = None,
        max_triggers: int | None = None,
        **kwargs: Any,
    ) -> JSONObject:
        params: JSONObject = {"digits": digits, "bind_method": bind_method}
        params.update(given(realm=realm, max_triggers=max_triggers))
        if bind_params is not None:
            params["params"] = dict(bind_params)
        return await self.execute("calling.bind_digit", {**params, **kwargs})

    async def clear_digit_bindings(self, *, realm: str | None = None, **kwargs: Any) -> JSONObject:
        return await self.execute("calling.clear_digit_bindings", {**given(realm=realm), **kwargs})

    async def user_event(self, *, event: str | None = None, **kwargs: Any) -> JSONObject:
        return await self.execute("calling.user_event", {**given(event=event), **kwargs})

    async def amazon_bedrock(
        self, *, ai_params: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> JSONObject:
        params = {key: value for key, value in kwargs.items() if value is not None}
        if ai_params is not None:
            params["params"] = dict(ai_params)
        return await self.execute("calling.amazon_bedrock", params)

    async def ai_message(self, **kwargs: Any) -> JSONObject:
        """Send to the call's AI agent (``message_text``, ``role``, ``reset``, ...)."""
        params = {key: value for key, value in kwargs.items() if value is not None}
        return await self.execute("calling.ai_message", params)

    async def ai_hold(
        self,
        *,
        timeout: str | None = None,  # noqa: ASYNC109 (the hold's, sent)
        prompt: str | None = None,
        **kwargs: Any,
    ) -> JSONObject:
        return await self.execute(
            "calling.ai_hold", {**given(timeout=timeout, prompt=prompt), **kwargs}
        )

    async def ai_unhold(self, *, prompt: str | None = None, **kwargs: Any) -> JSONObject:
        return await self.execute("calling.ai_unhold", {**given(prompt=prompt), **kwargs})
