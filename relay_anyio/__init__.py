"""relay_anyio: a RELAY (SignalWire call control) client on anyio, for asyncio and trio.

The protocol lives in ``relay_proto`` (pure, no I/O); this package drives it over
WebSockets (wsproto) and also serves the local RELAY simulator.
"""

from relay_proto import (
    CALL_ENDED,
    ActionResult,
    CallState,
    CollectKind,
    CollectResult,
    ConnectState,
    DetectKind,
    DetectResult,
    FaxResult,
    MessageState,
    PlayState,
    RecordResult,
    RecordState,
    SendDigitsResult,
    TapResult,
)

from ._actions import (
    Action,
    AIAction,
    CollectAction,
    DetectAction,
    FaxAction,
    PayAction,
    PlayAction,
    RecordAction,
    SendDigitsAction,
    StandaloneCollectAction,
    StreamAction,
    TapAction,
    TranscribeAction,
)
from ._calls import Call
from ._client import RelayClient
from ._errors import (
    AuthenticationError,
    CallGoneError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    DialFailedError,
    DialTimeoutError,
    ProtocolViolationError,
    RelayError,
    RequestError,
    RequestTimeoutError,
)
from ._handshake import accept_websocket, connect_websocket
from ._link import Transport, TransportFactory
from ._listeners import CallEvent
from ._messages import Message
from ._options import Limits, Reconnect, Timeouts
from ._simulator import SimulatorServer, serve_simulator
from ._websocket import WebSocket

__all__ = [
    "CALL_ENDED",
    "AIAction",
    "Action",
    "ActionResult",
    "AuthenticationError",
    "Call",
    "CallEvent",
    "CallGoneError",
    "CallState",
    "CollectAction",
    "CollectKind",
    "CollectResult",
    "ConfigurationError",
    "ConnectError",
    "ConnectState",
    "ConnectionLostError",
    "DetectAction",
    "DetectKind",
    "DetectResult",
    "DialFailedError",
    "DialTimeoutError",
    "FaxAction",
    "FaxResult",
    "Limits",
    "Message",
    "MessageState",
    "PayAction",
    "PlayAction",
    "PlayState",
    "ProtocolViolationError",
    "Reconnect",
    "RecordAction",
    "RecordResult",
    "RecordState",
    "RelayClient",
    "RelayError",
    "RequestError",
    "RequestTimeoutError",
    "SendDigitsAction",
    "SendDigitsResult",
    "SimulatorServer",
    "StandaloneCollectAction",
    "StreamAction",
    "TapAction",
    "TapResult",
    "Timeouts",
    "TranscribeAction",
    "Transport",
    "TransportFactory",
    "WebSocket",
    "accept_websocket",
    "connect_websocket",
    "serve_simulator",
]
