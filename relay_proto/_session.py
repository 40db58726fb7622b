"""The session of one client: its state, its resume state and the connect handshake.

``Session`` owns ``state`` (moved only through ``_state.SESSION``), the protocol and
authorization state a resume needs, and the outstanding ``signalwire.connect``. It builds
the connect params, reads the connect reply, and answers the server's own requests
(ping, disconnect); it returns events, decisions and reply frames, queues nothing itself,
and knows nothing of requests or calls (the connection acts on what it returns).

Invariants: ``connect_id`` is set exactly while a ``signalwire.connect`` awaits its reply;
stored resume state (``protocol``, ``authorization_state``) is forgotten whenever the server
refuses it or asks for a restart; ``had_session`` is true once a session was established
and has not been reset since.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from . import _wire as wire
from ._errors import RemoteProtocolError
from ._events import Connected, ConnectFailed, DisconnectRequested, SessionState, UnhandledEvent
from ._records import str_field
from ._state import SessionInput, next_session_state
from ._wire import JSONObject

PROTOCOL_VERSION: JSONObject = {"major": 2, "minor": 0, "revision": 0}
_STALE_STATE_CODES = frozenset({-32002, -32003, -32602})


class Session:
    def __init__(self, *, auth: JSONObject, agent: str, contexts: list[str]) -> None:
        self.state = SessionState.IDLE
        self.protocol: str | None = None
        self.identity: str | None = None
        self.contexts = contexts
        self._auth = auth
        self._agent = agent
        self._authorization_state: str | None = None
        #: Blobs let go of lately: still secrets if the server echoes one back in a reply
        #: that is read after the session dropped it (so still masked in output).
        self._old_blobs: deque[str] = deque(maxlen=4)
        #: The id of the outstanding ``signalwire.connect``, and whether it asked to resume.
        self.connect_id: str | None = None
        self._resume_requested = False
        #: Whether a session was established (a first one has nothing to reset).
        self._had_session = False

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secret values held now: the token or JWT, and the authorization blob."""
        held = (*(value for key, value in self._auth.items() if key != "project"), *self._old_blobs)
        return (*held, self._authorization_state) if self._authorization_state else held

    def move(self, event: SessionInput) -> None:
        self.state = next_session_state(self.state, event)

    def connect(self, request_id: str) -> JSONObject:
        """Start connecting (``LocalProtocolError`` unless idle); the connect params."""
        self.move(SessionInput.CONNECT)
        params: JSONObject = {
            "version": PROTOCOL_VERSION,
            "agent": self._agent,
            "event_acks": True,
            "authentication": self._auth,
        }
        if self.contexts:
            params["contexts"] = self.contexts
        self._resume_requested = self.protocol is not None
        if self.protocol is not None:
            params["protocol"] = self.protocol
            if self._authorization_state:
                params["authorization_state"] = self._authorization_state
        self.connect_id = request_id
        return params

    def lost(self) -> str | None:
        """The socket is gone: the id of a connect that will never be answered, if any."""
        connect_id, self.connect_id = self.connect_id, None
        self.move(SessionInput.CONNECTION_LOST)
        return connect_id

    def connected(self, result: Any) -> tuple[Connected, bool]:
        """A successful connect reply: ``(event, keep)``; ``keep`` false means the server
        did not keep the session the client had, so what lived in it must be reset."""
        if not isinstance(result, dict):
            raise RemoteProtocolError("signalwire.connect result is not an object")
        protocol = str_field(result, "protocol", "signalwire.connect result")
        self.connect_id = None
        flag = result.get("session_restored")
        resumed = self._resume_requested
        restored = resumed and (flag if isinstance(flag, bool) else protocol == self.protocol)
        if resumed and not restored:
            self._set_blob(None)  # it belonged to the session that was refused
        self.protocol = protocol
        identity = result.get("identity")
        self.identity = identity if isinstance(identity, str) else None
        self.move(SessionInput.CONNECTED)
        keep = restored or not self._had_session
        self._had_session = True
        event = Connected(
            protocol=protocol,
            identity=self.identity,
            session_restored=restored,
            resume_requested=resumed,
            raw=result,
        )
        return event, keep

    def refused(self, code: int, message: str) -> ConnectFailed:
        """A connect error reply. With ``retry_fresh`` the caller must reset the session."""
        self.connect_id = None
        # PROTOCOL.md: retry fresh when stored resume state was sent and refused. We read
        # "resume state" as the protocol (authorization_state goes with it when we have
        # one): a refused resume without a blob is just as stale.
        retry_fresh = self._resume_requested and code in _STALE_STATE_CODES
        self.move(SessionInput.CONNECT_REFUSED)
        if retry_fresh:
            self._forget_resume_state()
            self._had_session = False  # reset now: the next session starts clean
        return ConnectFailed(code=code, message=message, retry_fresh=retry_fresh)

    def disconnect_requested(self, params: Any) -> DisconnectRequested | None:
        """``signalwire.disconnect`` (already answered); None when its params are not an
        object (PROTOCOL.md 2.2: then it is otherwise ignored)."""
        if not isinstance(params, dict):
            return None
        restart = params.get("restart") is True
        if restart:
            self._forget_resume_state()
        self.move(SessionInput.DISCONNECT_REQUESTED)
        return DisconnectRequested(restart=restart)

    def accepted(self, contexts: list[str] | None) -> None:
        """The server accepted a ``signalwire.receive`` for ``contexts`` (None: not one):
        send them on every later connect."""
        if contexts:
            self.contexts.extend(name for name in contexts if name not in self.contexts)

    def answer(self, message: wire.Request) -> tuple[str | None, DisconnectRequested | None]:
        """A server request other than ``signalwire.event``: ``(reply frame, event)``."""
        reply: str | None = None
        event: DisconnectRequested | None = None
        if message.method == "signalwire.ping":
            if message.id is not None:
                reply = wire.encode_pong(message.id, message.params)
        elif message.method == "signalwire.disconnect":
            if message.id is not None:
                reply = wire.encode_ack(message.id)
            event = self.disconnect_requested(message.params)
        elif message.id is not None:
            reply = wire.encode_error(message.id, -32601, f"method not found: {message.method}")
        return reply, event

    def other_event(
        self, event_type: str, inner: JSONObject, timestamp: float | None
    ) -> UnhandledEvent | None:
        """A ``signalwire.event`` the tracker does not handle: the authorization blob is
        kept for the next resume, anything else is reported as ``UnhandledEvent``."""
        if event_type != "signalwire.authorization.state":
            return UnhandledEvent(event_type=event_type, timestamp=timestamp, params=inner)
        value = inner.get("authorization_state")
        if isinstance(value, str) and value:
            self._set_blob(value)
        return None

    def _forget_resume_state(self) -> None:
        self.protocol = None
        self._set_blob(None)

    def _set_blob(self, value: str | None) -> None:
        if self._authorization_state is not None and self._authorization_state != value:
            self._old_blobs.append(self._authorization_state)
        self._authorization_state = value
