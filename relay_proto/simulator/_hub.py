"""What every socket of the simulator shares: credentials, sessions, the switch, timers,
fault arming, and which sockets have work for the adapter.

``Hub`` is the small interface a ``ServerConnection`` talks to (it never sees the
``Simulator`` facade, so neither module imports the other); the ``Simulator`` owns one.

Invariants:
- ``connections`` holds exactly the sockets opened and not yet lost; ``ready`` is the
  subset that queued a frame or closed since ``take_ready()``.
- Every step ends with ``flush()`` (the caller's duty), so the events a step caused are
  framed before the step returns.
- Secrets (tokens, JWTs) are compared and dropped; they never reach a repr, a frame, an
  error message or a stored value.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection, Mapping
from typing import Generic, TypeVar

from .. import _validate as validate
from .. import _wire as wire
from .._ids import IdFactory
from .._timers import TimerQueue
from .._wire import JSONObject
from . import _faults as faults_
from ._legs import RpcError, TimerCallback
from ._scenario import Faults, Scenario
from ._sessions import EventSocket, Session, Sessions
from ._switch import Switch

__all__ = ["Hub"]

C = TypeVar("C", bound=EventSocket)


class Hub(Generic[C]):
    """The simulator's shared state, as its sockets see it."""

    def __init__(
        self,
        *,
        credentials: Mapping[str, str] | None,
        jwt_tokens: Collection[str],
        scenario: Scenario,
        new_id: IdFactory,
        resume_grace: float,
        node_id: str | None,
        space_id: str,
        max_history: int,
        epoch: float,
        ping_interval: float | None,
        ping_timeout: float,
    ) -> None:
        #: Seconds between a socket's pong and its next server ping (None: no server pings).
        self.ping_interval = ping_interval
        #: Seconds a server ping may stay unanswered before its socket is closed.
        self.ping_timeout = ping_timeout
        self._credentials = dict(credentials) if credentials is not None else None
        self._jwt_tokens = frozenset(jwt_tokens)
        self.new_id = new_id
        self.timers: TimerQueue[TimerCallback] = TimerQueue()
        #: The time ``handle_timer`` was last driven at: a timer run late (its driver woke
        #: late) sees how late, so a ping's answer is waited for from when it really went.
        self.clock = 0.0
        self.switch = Switch(
            scenario=scenario,
            timers=self.timers,
            new_id=new_id,
            route=self._offer_passed,
            node_id=node_id,
            max_history=max_history,
        )
        self.sessions = self._sessions(resume_grace=resume_grace, space_id=space_id, epoch=epoch)
        #: End of a step: deliver the events it caused (``Sessions.flush`` itself, reason:
        #: it runs after every frame a socket reads, so no forwarding layer).
        self.flush: Callable[[], None] = self.sessions.flush
        #: Handle one ``calling.*`` request (``Switch.command`` itself: no forwarding layer).
        self.command: Callable[[Session, str, JSONObject, float], JSONObject] = self.switch.command
        self.connections: dict[C, None] = {}
        self._ready: dict[C, None] = {}
        self._one_shots = faults_.OneShots()

    def _sessions(self, *, resume_grace: float, space_id: str, epoch: float) -> Sessions:
        """The session registry (after the switch: it drops an expired session's calls)."""
        return Sessions(
            timers=self.timers,
            new_id=self.new_id,
            drop_calls=self.switch.drop_session,
            switch=self.switch,
            resume_grace=resume_grace,
            space_id=space_id,
            epoch=epoch,
        )

    def _offer_passed(self, context: str, passed: Collection[object]) -> Session | None:
        """Who a passed call goes to: the next session with a socket on its context, in
        turns, never one that passed it."""
        return self.sessions.receiver(context, "call", passed)

    @property
    def faults(self) -> Faults:
        """The faults of the scenario in force."""
        return self.switch.scenario.faults

    def fire(self, name: str) -> bool:
        """True the first time the one-shot fault ``name`` fires for the installed faults."""
        return self._one_shots.fire(self.switch.scenario.faults, name)

    # ---- sockets ---------------------------------------------------------------------

    def mark_ready(self, connection: C) -> None:
        self._ready[connection] = None

    def take_ready(self) -> list[C]:
        ready = list(self._ready)
        self._ready.clear()
        return ready

    def lost(self, connection: C, session: Session | None, now: float) -> None:
        """``connection`` is gone: it has no more work, and its session starts its grace."""
        self._ready.pop(connection, None)
        del self.connections[connection]
        if session is not None:
            self.sessions.detach(connection, session, now)

    # ---- what a socket asks for ------------------------------------------------------

    def authenticate(self, auth: object) -> str | None:
        """The project these credentials log into, or None when they are refused.

        Malformed credentials raise ``RpcError`` or ``LocalProtocolError`` (answered with
        a -32602 that never shows a secret)."""
        if not isinstance(auth, dict):
            raise RpcError(-32602, "authentication must be an object")
        jwt = auth.get("jwt_token")
        if jwt is not None:
            validate.secret("authentication.jwt_token", jwt)
            if self._jwt_tokens:
                return "jwt" if jwt in self._jwt_tokens else None
            return "jwt" if self._credentials is None else None
        project = validate.non_empty_str("authentication.project", auth.get("project"))
        token = validate.secret("authentication.token", auth.get("token"))
        if self._credentials is None:
            return project
        expected = self._credentials.get(project)
        if expected is None or not hmac.compare_digest(expected.encode(), token.encode()):
            return None
        return project

    def attach(
        self, connection: C, project: str, params: JSONObject, now: float
    ) -> tuple[Session, bool]:
        """The session this ``signalwire.connect`` opens or resumes, and whether resumed."""
        refuse = self.switch.scenario.faults.refuse_resume
        return self.sessions.attach(connection, project, params, now, refuse=refuse)

    def greet(self, session: Session, now: float) -> None:
        """Deliver the session's ``signalwire.authorization.state`` event (after connect)."""
        params = wire.dumps({"authorization_state": session.auth_state})
        copies = faults_.copies(self.faults)
        self.sessions.deliver([(session, "signalwire.authorization.state", params, now)], copies)
