"""``RelayClient``: the public face of a ``_session.Session``.

It checks the options (grouped in ``Timeouts``, ``Reconnect`` and ``Limits``, or as the flat
keywords of the seed API), builds the core and the session, and forwards every call. What
happens inside ``async with`` (tasks, sockets, events) is the session's.
"""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Unpack

import anyio

from relay_proto import ClientConnection, Event, LocalProtocolError

from ._calls import Call
from ._errors import ConfigurationError, RelayError
from ._handshake import connect_websocket
from ._link import TransportFactory
from ._messages import Message
from ._options import FlatOptions, Limits, Reconnect, Timeouts, resolve
from ._redact import Redactor
from ._session import Session
from ._url import ParsedURL, build_url

__all__ = ["AGENT", "RelayClient"]

JSONObject = dict[str, Any]
AGENT = "relay-anyio/0.1"


class RelayClient:
    """A supervised, reconnecting RELAY client. Use it as ``async with client:``.

    Credentials: ``project`` + ``token``, or ``jwt_token``. Where to connect: ``host``
    (``wss://host``; default ``relay.signalwire.com``) or ``url`` (any ``ws://``/``wss://``
    URL; plain ``ws://`` only to loopback unless ``allow_insecure=True``).

    Tunables come grouped -- ``timeouts=Timeouts(...)``, ``reconnect=Reconnect(...)``,
    ``limits=Limits(...)`` -- or as flat keywords (``connect_timeout=5`` is
    ``Timeouts(connect=5)``); a group and one of its own flat keywords together are a
    ``ConfigurationError``. Cancelling a command never waits on the network: its hang-ups
    are queued in the core and written by the writer task.

    ``Timeouts(drain_on_exit=S)`` (or ``drain_on_exit=S``): leaving ``async with``
    (normally, by an error or by cancellation) first drains the client
    (``drain(timeout=S)``), so a worker stopped for a rolling restart loses no call.

    ``transport_factory``: an async callable opening one socket per connection attempt
    (see ``Transport``), instead of a WebSocket to the URL; for tests and custom
    transports. The URL options are still checked and name the server in messages.
    """

    def __init__(
        self,
        *,
        project: str | None = None,
        token: str | None = None,
        jwt_token: str | None = None,
        host: str | None = None,
        url: str | None = None,
        path: str = "",
        contexts: Sequence[str] = (),
        ssl_context: ssl.SSLContext | None = None,
        allow_insecure: bool = False,
        agent: str = AGENT,
        hangup_on_exit: bool = True,
        on_event: Callable[[Event], None] | None = None,
        timeouts: Timeouts | None = None,
        reconnect: Reconnect | None = None,
        limits: Limits | None = None,
        transport_factory: TransportFactory | None = None,
        **flat: Unpack[FlatOptions],
    ) -> None:
        parsed_url = build_url(host=host, url=url, path=path, allow_insecure=allow_insecure)
        timeouts, reconnect, limits = resolve(timeouts, reconnect, limits, flat)
        try:
            core = ClientConnection(
                project=project,
                token=token,
                jwt_token=jwt_token,
                contexts=contexts,
                agent=agent,
                ping_interval=timeouts.ping_interval,
                silence_timeout=timeouts.silence,
                tombstone_grace=limits.tombstone_grace,
                max_queued=limits.max_queued,
            )
        except LocalProtocolError as exc:
            raise ConfigurationError(str(exc)) from None
        if transport_factory is None:
            transport_factory = _websocket_factory(parsed_url, ssl_context, timeouts, limits, core)
        self._url, self._core, self._contexts = parsed_url, core, list(contexts)
        self._session = Session(
            core,
            transport_factory,
            name=str(parsed_url),
            timeouts=timeouts,
            reconnect=reconnect,
            limits=limits,
            hangup_on_exit=hangup_on_exit,
            on_event=on_event,
        )

    def __repr__(self) -> str:
        return f"<RelayClient url={str(self._url)!r} state={self._core.state.value}>"

    # ------------------------------------------------------------------ state

    @property
    def protocol(self) -> str | None:
        """The session's protocol string (it names the session; not a secret)."""
        return self._core.protocol

    @property
    def connections(self) -> int:
        """How many sockets have completed the handshake so far (1 + reconnects)."""
        return self._session.connections

    @property
    def calls(self) -> list[Call]:
        """Live calls owned by this client."""
        return self._session.calls

    # ------------------------------------------------------------------ calls

    def on_call(self, handler: Callable[[Call], Awaitable[None]]) -> None:
        """Run ``handler(call)`` in the client's task group for every inbound call.

        At most ``max_handlers`` handlers run at once; a call arriving while that many
        run is handed on (``inbound_overflow``: passed to another consumer by default, or
        ended ``busy``).
        """
        self._session.inbound.handler = handler

    def inbound_calls(self) -> AsyncIterator[Call]:
        """Iterate over inbound calls (when no ``on_call`` handler is set).

        Up to ``inbound_buffer`` calls wait here for the iterator; beyond that an inbound
        call is handed on (``inbound_overflow``: passed by default, or ended ``busy``)
        rather than left ringing. The iteration ends when the client drains or closes. It
        is a plain iterator, not a generator: ``break`` out of it freely, there is nothing
        to finalize.
        """
        return self._session.inbound_calls()

    async def dial(
        self,
        devices: Sequence[Sequence[JSONObject]],
        *,
        tag: str | None = None,
        max_duration: int | None = None,
        region: str | None = None,
        node_id: str | None = None,
        max_price_per_minute: float | None = None,
        dial_timeout: float = 120.0,
    ) -> Call:
        """Dial ``devices`` (outer list serial, inner lists in parallel); return the Call.

        Raises ``DialFailedError`` (every leg failed, or the server refused the dial),
        ``DialTimeoutError`` (``dial_timeout`` passed; ringing legs were hung up),
        ``ConnectionLostError`` (the session was lost and not restored), or
        ``ConfigurationError`` for invalid input (nothing was sent).
        """
        return await self._session.dial(
            devices,
            tag=tag,
            max_duration=max_duration,
            region=region,
            node_id=node_id,
            max_price_per_minute=max_price_per_minute,
            dial_timeout=dial_timeout,
        )

    # ------------------------------------------------------------------ messages

    async def send_message(
        self,
        *,
        to_number: str,
        from_number: str,
        context: str | None = None,
        body: str | None = None,
        media: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        region: str | None = None,
        on_completed: Callable[[Message], Any] | None = None,
    ) -> Message:
        """Send an SMS/MMS (``messaging.send``); return the ``Message`` once the server
        accepted it (its ``message_id`` known). ``await message.wait()`` gives its final
        state (``delivered``, ``undelivered`` or ``failed``; ``reason`` on failure).

        Numbers in E.164, a ``body`` or ``media`` URLs (or both): ``ConfigurationError``
        before anything is sent. ``context`` defaults to the client's first context, else
        ``"default"``. ``on_completed(message)`` (sync or async) runs at the final state.
        Raises ``RequestError`` if the server refused it, ``RequestTimeoutError`` after
        ``request_timeout`` without a reply (the message may still have gone).
        """
        return await self._session.surface.send_message(
            self._session,
            to_number=to_number,
            from_number=from_number,
            context=context,
            body=body,
            media=media,
            tags=tags,
            region=region,
            on_completed=on_completed,
        )

    def on_message(self, handler: Callable[[Message], Awaitable[None]]) -> None:
        """Run ``handler(message)`` in the client's task group for every inbound message
        (``messaging.receive`` on the client's contexts). At most ``max_handlers`` run at
        once; a message arriving while that many run is dropped with a warning."""
        self._session.surface.inbound_messages.handler = handler

    def inbound_messages(self) -> AsyncIterator[Message]:
        """Iterate over inbound messages (when no ``on_message`` handler is set). Up to
        ``inbound_buffer`` messages wait here; beyond that one is dropped with a warning.
        The iteration ends when the client closes."""
        return self._session.surface.message_iterator()

    async def execute(self, method: str, params: JSONObject | None = None) -> JSONObject:
        """Send any request (not tied to a call); return its result object.

        Raises ``RequestError`` if the server refused it, ``RequestTimeoutError`` after
        ``request_timeout`` without a reply. A cancelled or timed-out request may still
        take effect on the server: an arbitrary method cannot be undone generically.
        """
        return await self._session.command(lambda core: core.execute(method, params or {}))

    async def ping(self) -> JSONObject:
        """Send ``signalwire.ping``; return its result."""
        return await self._session.command(
            lambda core: core.ping(now=anyio.current_time(), timestamp=time.time())
        )

    # ------------------------------------------------------------------ lifecycle

    async def drain(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Leave the work of this client's contexts to the other consumers, losing no call.

        Unsubscribes the contexts (``signalwire.unreceive``: new calls go to the other
        consumers), hands on (``inbound_overflow``) the calls still waiting in the buffer
        and any offered meanwhile, then waits up to ``timeout`` seconds for the running
        ``on_call`` handlers, the passes and the live calls to finish; what is still live
        then is hung up (within ``cleanup_timeout``). The iteration of ``inbound_calls()``
        ends. Outbound commands still work; leave ``async with`` next.
        """
        _check_drain_timeout("timeout", timeout)
        self._session.check_open()
        await self._session.handoff.drain(timeout, self._contexts)

    async def __aenter__(self) -> RelayClient:
        await self._session.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        drain = self._session.handoff.drain_on_exit
        if drain is not None and _still_open(self._session):
            with anyio.CancelScope(shield=True):  # bounded: drain() bounds every wait
                await self._session.handoff.drain(drain, self._contexts)
        await self._session.stop()


def _still_open(session: Session) -> bool:
    """Whether the session has neither failed nor started closing."""
    try:
        session.check_open()
    except (RelayError, RuntimeError):
        return False
    return True


def _check_drain_timeout(name: str, value: float) -> None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not 0 < value < float("inf"):
        raise ConfigurationError(f"{name}: must be a finite number > 0, got {value!r}")


def _websocket_factory(
    url: ParsedURL,
    ssl_context: ssl.SSLContext | None,
    timeouts: Timeouts,
    limits: Limits,
    core: ClientConnection,
) -> TransportFactory:
    """Open a WebSocket to ``url`` per connection attempt."""
    return functools.partial(
        connect_websocket,
        url,
        ssl_context=ssl_context,
        connect_timeout=timeouts.connect,
        max_message_size=limits.max_message_size,
        write_timeout=timeouts.write,
        redactor=Redactor(lambda: core.secrets),
    )
