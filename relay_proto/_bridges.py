"""Bridges: ``calling.call.connect`` events for the calls of a session.

``Bridges`` keeps each bridged call's connect state and reads its events: states move only
along ``ConnectState``'s order (connecting -> connected -> disconnected, or -> failed; a
new ``connecting`` after a bridge ended starts another), duplicates report nothing, an
unknown state is carried (``UnknownState``). The peer the server names becomes a call of
the session through ``adopt`` (tracked, and ended on the same rules as any call).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._events import CallInfo, CallState, ConnectStateChanged, Event
from ._records import TrackedCall, device_of, opt_str, str_field, unknown_state
from ._results import ConnectState
from ._wire import JSONObject

_STATES = {state.value: state for state in ConnectState}
_ORDER = {
    None: frozenset(ConnectState),
    ConnectState.CONNECTING: frozenset(ConnectState) - {ConnectState.CONNECTING},
    ConnectState.CONNECTED: frozenset({ConnectState.DISCONNECTED, ConnectState.FAILED}),
    ConnectState.DISCONNECTED: frozenset({ConnectState.CONNECTING}),
    ConnectState.FAILED: frozenset({ConnectState.CONNECTING}),
}
_WHERE = "calling.call.connect"


class Bridges:
    def __init__(
        self, calls: dict[str, TrackedCall], adopt: Callable[[TrackedCall], TrackedCall | None]
    ) -> None:
        self._calls = calls
        self._adopt = adopt
        self.states: dict[str, ConnectState] = {}
        #: Calls with a ``calling.connect`` asked for and no news of it yet: a
        #: ``disconnected`` now is the previous bridge's, late, and reports nothing.
        self.asked: set[str] = set()

    def requested(self, call_id: str) -> None:
        """A new ``calling.connect`` for ``call_id`` was queued."""
        self.asked.add(call_id)

    def on_event(
        self,
        inner: JSONObject,
        timestamp: float | None,
        now: float,
        events: list[Event],
        intents: list[Any],
    ) -> None:
        call_id = str_field(inner, "call_id", _WHERE)
        raw_state = str_field(inner, "connect_state", _WHERE)
        state = _STATES.get(raw_state)
        if state is None:
            events.append(unknown_state(_WHERE, "connect_state", raw_state, inner))
            return
        peer = self._peer(inner.get("peer"))
        if call_id in self.asked:
            if state is ConnectState.DISCONNECTED:
                return  # the end of the previous bridge, late
            self.asked.discard(call_id)
            self.states.pop(call_id, None)  # a new bridge starts from nothing
        if call_id not in self._calls or state not in _ORDER[self.states.get(call_id)]:
            return
        self.states[call_id] = state
        info: CallInfo | None = None
        if peer is not None:
            known = self._adopt(peer)  # None: the peer has ended already
            info = (peer if known is None else known).info()
        events.append(
            ConnectStateChanged(
                call_id=call_id,
                state=state,
                peer=info,
                reason=opt_str(inner, "reason"),
                source=opt_str(inner, "source"),
                raw=inner,
            )
        )

    def _peer(self, peer: object) -> TrackedCall | None:
        """The peer leg, when the event names one with its ids (else None)."""
        if not isinstance(peer, dict):
            return None
        call_id, node_id = peer.get("call_id"), peer.get("node_id")
        if not (isinstance(call_id, str) and call_id and isinstance(node_id, str) and node_id):
            return None
        raw_state = peer.get("call_state")
        state = _CALL_STATES.get(raw_state) if type(raw_state) is str else None
        state = CallState.ANSWERED if state is None else state
        return TrackedCall(
            call_id, node_id, opt_str(peer, "tag"), device_of(peer), "outbound", state, None, peer
        )

    def forget(self, call_id: str) -> None:
        self.states.pop(call_id, None)
        self.asked.discard(call_id)


_CALL_STATES = {state.value: state for state in CallState}
