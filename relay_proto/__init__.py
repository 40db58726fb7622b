"""relay_proto: the RELAY protocol (SignalWire call control) as a pure state machine.

No I/O, no clock, standard library only. Feed whole WebSocket text messages in with the
current time, get events back, and write out whatever ``data_to_send()`` returns.
"""

from ._connection import DEFAULT_AGENT, ClientConnection
from ._errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ._events import (
    CallInfo,
    CallLost,
    CallState,
    CallStateChanged,
    Connected,
    ConnectFailed,
    DialAnswered,
    DialFailed,
    DialFailureCause,
    DialTimedOut,
    DisconnectRequested,
    Event,
    InboundCall,
    Leg,
    LivenessLost,
    MaxDurationReached,
    PlayState,
    PlayStateChanged,
    RequestFailed,
    RequestSucceeded,
    SessionState,
    UnhandledEvent,
    UnknownState,
    UnreadableEvent,
)
from ._session import PROTOCOL_VERSION

__all__ = [
    "DEFAULT_AGENT",
    "PROTOCOL_VERSION",
    "CallInfo",
    "CallLost",
    "CallState",
    "CallStateChanged",
    "ClientConnection",
    "ConnectFailed",
    "Connected",
    "DialAnswered",
    "DialFailed",
    "DialFailureCause",
    "DialTimedOut",
    "DisconnectRequested",
    "Event",
    "InboundCall",
    "Leg",
    "LivenessLost",
    "LocalProtocolError",
    "MaxDurationReached",
    "PlayState",
    "PlayStateChanged",
    "ProtocolError",
    "RemoteProtocolError",
    "RequestFailed",
    "RequestSucceeded",
    "SessionState",
    "UnhandledEvent",
    "UnknownState",
    "UnreadableEvent",
]
