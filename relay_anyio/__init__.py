"""relay_anyio: a RELAY (SignalWire call control) client on anyio, for asyncio and trio.

The protocol lives in ``relay_proto`` (pure, no I/O); this package drives it over
WebSockets (wsproto) and also serves the local RELAY simulator.
"""

from relay_proto import CallState, PlayState

from ._actions import PlayAction
from ._calls import Call
from ._client import RelayClient
from ._errors import (
    AuthenticationError,
    CallGoneError,
    ConfigurationError,
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
from ._options import Limits, Reconnect, Timeouts
from ._simulator import SimulatorServer, serve_simulator
from ._websocket import WebSocket

__all__ = [
    "AuthenticationError",
    "Call",
    "CallGoneError",
    "CallState",
    "ConfigurationError",
    "ConnectionLostError",
    "DialFailedError",
    "DialTimeoutError",
    "Limits",
    "PlayAction",
    "PlayState",
    "ProtocolViolationError",
    "Reconnect",
    "RelayClient",
    "RelayError",
    "RequestError",
    "RequestTimeoutError",
    "SimulatorServer",
    "Timeouts",
    "Transport",
    "TransportFactory",
    "WebSocket",
    "accept_websocket",
    "connect_websocket",
    "serve_simulator",
]
