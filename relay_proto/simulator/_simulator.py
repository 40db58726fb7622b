"""The server role of the core: the brain of the local RELAY simulator.

``Simulator`` is the public face of one simulated switch (credentials, sessions, calls,
clock-driven timers, faults), shared by every socket; ``ServerConnection``
(``_connection``) is one WebSocket. Frames in through ``ServerConnection.receive(text,
now)``, frames out through ``data_to_send()``; time moves only through the ``now``
arguments and ``Simulator.handle_timer(now)``. No clock, no I/O, no randomness beyond the
injected ``id_factory``. The parts: ``_hub`` (what sockets share), ``_sessions``,
``_switch`` (calls, dials, plays), ``_faults``, ``_scenario``.

Invariants:
- After ANY call (``receive``, ``handle_timer``, ``inject_inbound_call``, ``send_*``,
  ``connection_lost``) drain ``data_to_send()`` of every connection in ``connections()``,
  even after a call that raised. ``ready_connections()`` narrows that to the connections
  that queued a frame or closed since it was last called: the others have nothing to do.
- Every step (one frame, one timer, one injection of a call or a message) ends with the
  events it caused framed and queued (``Hub.flush``).
- Secrets (tokens, JWTs) are checked and dropped; they never reach a repr, a frame or a
  stored value.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from .._errors import LocalProtocolError
from .._ids import IdFactory, sequential_uuids
from ._connection import ServerConnection
from ._hub import Hub
from ._legs import LiveAction, LiveCall
from ._messaging import LiveMessage
from ._scenario import Scenario
from ._script import CallScript

__all__ = ["DEFAULT_PING_INTERVAL", "DEFAULT_PING_TIMEOUT", "Simulator"]

#: The server pings each socket this often: under the 15 s without a server ping after
#: which the official Python, JS and TS SDKs probe or drop the link (the guide gives no
#: number; see docs/simulator.md, Fidelity).
DEFAULT_PING_INTERVAL = 10.0
#: A socket whose ping is unanswered this long is closed.
DEFAULT_PING_TIMEOUT = 10.0


def _check_ping_settings(interval: float | None, timeout: float) -> None:
    for name, value in (("ping_interval", interval), ("ping_timeout", timeout)):
        if value is not None and not (isinstance(value, int | float) and 0 < value < 1e12):
            raise LocalProtocolError(f"{name} must be a positive number of seconds, got {value!r}")


class Simulator:
    """A simulated SignalWire switch shared by every connection.

    ``credentials`` maps project -> token (``None`` accepts any project/token pair, and any
    JWT unless ``jwt_tokens`` is given). ``scenario`` may be replaced at any time; installing
    a new ``Faults`` object re-arms the one-shot faults. ``id_factory`` makes every id the
    simulator mints (default: ``sequential_uuids()``, deterministic; ``uuid4_batched()``
    for random ones).
    """

    def __init__(
        self,
        *,
        credentials: Mapping[str, str] | None = None,
        jwt_tokens: Collection[str] = (),
        scenario: Scenario | None = None,
        id_factory: IdFactory | None = None,
        resume_grace: float = 30.0,
        node_id: str | None = None,
        space_id: str = "sim-space",
        max_history: int = 100_000,
        epoch: float = 0.0,
        ping_interval: float | None = DEFAULT_PING_INTERVAL,
        ping_timeout: float = DEFAULT_PING_TIMEOUT,
    ) -> None:
        _check_ping_settings(ping_interval, ping_timeout)
        self._hub: Hub[ServerConnection] = Hub(
            credentials=credentials,
            jwt_tokens=jwt_tokens,
            scenario=scenario if scenario is not None else Scenario(),
            new_id=id_factory if id_factory is not None else sequential_uuids(),
            resume_grace=resume_grace,
            node_id=node_id,
            space_id=space_id,
            max_history=max_history,
            epoch=epoch,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        )

    def __repr__(self) -> str:
        hub = self._hub
        return (
            f"<Simulator sessions={len(hub.sessions)} connections={len(hub.connections)}"
            f" live_calls={hub.switch.live_count()}>"
        )

    @property
    def epoch(self) -> float:
        """Added to the clock's ``now`` to stamp events: pass ``time.time() - now`` when
        ``now`` is a monotonic clock, so event timestamps are Unix seconds on the wire."""
        return self._hub.sessions.epoch

    @epoch.setter
    def epoch(self, epoch: float) -> None:
        self._hub.sessions.epoch = epoch

    @property
    def resume_grace(self) -> float:
        """Seconds a session outlives its socket, waiting for a resume."""
        return self._hub.sessions.resume_grace

    @resume_grace.setter
    def resume_grace(self, seconds: float) -> None:
        self._hub.sessions.resume_grace = seconds

    @property
    def ping_interval(self) -> float | None:
        """Seconds from a socket's last pong to the server's next ``signalwire.ping``
        (``None``: the server never pings by itself). Applies from each socket's next ping."""
        return self._hub.ping_interval

    @ping_interval.setter
    def ping_interval(self, seconds: float | None) -> None:
        _check_ping_settings(seconds, self._hub.ping_timeout)
        self._hub.ping_interval = seconds

    @property
    def ping_timeout(self) -> float:
        """Seconds a server ping may go unanswered before its socket is closed."""
        return self._hub.ping_timeout

    @ping_timeout.setter
    def ping_timeout(self, seconds: float) -> None:
        _check_ping_settings(self._hub.ping_interval, seconds)
        self._hub.ping_timeout = seconds

    @property
    def space_id(self) -> str:
        return self._hub.sessions.space_id

    @space_id.setter
    def space_id(self, space_id: str) -> None:
        self._hub.sessions.space_id = space_id

    @property
    def scenario(self) -> Scenario:
        return self._hub.switch.scenario

    @scenario.setter
    def scenario(self, scenario: Scenario) -> None:
        self._hub.switch.scenario = scenario

    # ---- sockets ---------------------------------------------------------------------

    def open_connection(self, now: float) -> ServerConnection:
        connection = ServerConnection(self._hub, now)
        self._hub.connections[connection] = None
        return connection

    def connections(self) -> list[ServerConnection]:
        return list(self._hub.connections)

    def ready_connections(self) -> list[ServerConnection]:
        """The connections with frames queued or newly closed since the last call (so an
        adapter flushes those, not every socket after every input). Connections already
        lost are left out."""
        return self._hub.take_ready()

    # ---- time ------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self._hub.timers.next_deadline()

    def handle_timer(self, now: float) -> None:
        hub = self._hub
        hub.clock = now
        timers = hub.timers
        while (due := timers.pop_due(now)) is not None:
            when, callback = due
            callback(when)
            hub.flush()

    # ---- queries and injections ------------------------------------------------------

    def live_calls(self) -> list[LiveCall]:
        return self._hub.switch.live_calls()

    def all_calls(self) -> list[LiveCall]:
        return self._hub.switch.all_calls()

    def pending_dials(self) -> int:
        return self._hub.switch.pending_dials()

    def live_messages(self) -> list[LiveMessage]:
        """Outbound messages not in a final state yet (``delivered`` / ``undelivered`` /
        ``failed``)."""
        return self._hub.switch.messages.live_messages()

    def all_messages(self) -> list[LiveMessage]:
        """Every message sent or received, oldest first (the last ``max_history``)."""
        return self._hub.switch.messages.all_messages()

    def live_actions(self) -> list[LiveAction]:
        """Snapshots of every running action but plays (record, collect, detect, tap,
        ...): after a call ends, none of its actions is left."""
        return self._hub.switch.live_actions()

    def unacked_events(self, protocol: str) -> int:
        session = self._hub.sessions.get(protocol)
        return len(session.unacked) if session is not None else 0

    def inject_inbound_call(
        self,
        *,
        context: str,
        from_number: str,
        to_number: str,
        now: float,
        hangup_after: float | None = None,
        script: CallScript | Mapping[str, object] | None = None,
    ) -> str:
        """Offer an inbound call (``calling.call.receive``) to a session on ``context``.

        The subscribed sessions with an open socket get the calls of a context in turns
        (round-robin); only when none has a socket does a session waiting for its resume
        get it (it sees it on resume). Returns the new call_id.
        ``script``: what the caller does once answered (a ``CallScript`` or its dict form:
        ``{"input": ..., "record": ..., "machine": ...}``); ``None``: the scenario's
        outcome for ``from_number`` says it.
        """
        if isinstance(script, Mapping):
            script = CallScript.from_dict(script)
        elif script is not None and not isinstance(script, CallScript):
            raise LocalProtocolError("script must be a CallScript, a dict or None")
        session = self._hub.sessions.receiver(context, "call")
        if session is None:
            raise LocalProtocolError(f"no session receives context {context!r}")
        call_id = self._hub.switch.inbound(
            session,
            context=context,
            from_number=from_number,
            to_number=to_number,
            now=now,
            hangup_after=hangup_after,
            script=script,
        )
        self._hub.flush()
        return call_id

    def inject_message(
        self,
        *,
        context: str,
        from_number: str,
        to_number: str,
        now: float,
        body: str = "",
        media: list[str] | None = None,
        tags: list[str] | None = None,
    ) -> str:
        """Deliver an inbound message (``messaging.receive``) to a session on ``context``.

        Spread like inbound calls (round-robin, in turns of their own). The params follow
        the ``messaging.send`` rules (E.164 numbers, a body or media); no session on
        ``context`` is a ``LocalProtocolError``, as for calls. Returns the message_id.
        """
        params = {
            "context": context,
            "from_number": from_number,
            "to_number": to_number,
            "body": body,
            "media": [] if media is None else list(media),
            "tags": [] if tags is None else list(tags),
        }
        session = self._hub.sessions.receiver(context, "message")
        if session is None:
            raise LocalProtocolError(f"no session receives context {context!r}")
        message_id = self._hub.switch.messages.receive(session, params, context, now)
        self._hub.flush()
        return message_id
