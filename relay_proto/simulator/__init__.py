"""relay_proto.simulator: the server role of RELAY, a simulated SignalWire switch.

Sans-IO like the client core: standard library only, no clock, no I/O. A ``Simulator`` is
the switch (sessions, calls, dials, plays, timers, scripted faults); each WebSocket is a
``ServerConnection`` it opens: feed it whole text messages with ``receive(text, now)``,
write out what ``data_to_send()`` returns, and drive time with ``handle_timer(now)``.
A ``Scenario`` scripts what each destination does (``Outcome``) and how the switch
misbehaves (``Faults``). ``relay_anyio.serve_simulator`` runs it on a real socket;
``relay_proto.testing.Pair`` joins it to a client core in memory.

Ids: ``sequential_uuids()`` (the default, deterministic) or ``uuid4_batched()`` (random
version-4 UUIDs, cheap enough for an id per event), or any ``IdFactory``.
"""

from .._ids import IdFactory, sequential_uuids, uuid4_batched
from ._connection import GARBAGE_FRAME, ConnectionState, ServerConnection
from ._legs import LiveAction, LiveCall
from ._messaging import LiveMessage
from ._scenario import Faults, MessageOutcome, Outcome, OutcomeKind, Refusal, Scenario
from ._script import CallScript, Detection, FaxScript, Input, InputKind, RecordScript
from ._simulator import DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT, Simulator

__all__ = [
    "DEFAULT_PING_INTERVAL",
    "DEFAULT_PING_TIMEOUT",
    "GARBAGE_FRAME",
    "CallScript",
    "ConnectionState",
    "Detection",
    "Faults",
    "FaxScript",
    "IdFactory",
    "Input",
    "InputKind",
    "LiveAction",
    "LiveCall",
    "LiveMessage",
    "MessageOutcome",
    "Outcome",
    "OutcomeKind",
    "RecordScript",
    "Refusal",
    "Scenario",
    "ServerConnection",
    "Simulator",
    "sequential_uuids",
    "uuid4_batched",
]
