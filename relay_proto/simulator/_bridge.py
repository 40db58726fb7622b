"""The simulated switch's bridging: ``calling.connect`` and ``calling.disconnect``.

A connect rings its peer legs with the switch's own dial machinery (a ``Dial`` whose
``bridge`` is set: same groups, outcomes, timeouts and ``max_duration``), but its result
is a ``calling.call.connect`` event on the connecting call instead of a
``calling.call.dial`` one. The switch calls back here when that dial resolves
(``answered`` / ``failed``) and when a leg that is part of a bridge ends (``leg_ended``).

Invariants:
- A call has at most one bridge (``Leg.bridge``): from ``connecting`` until the bridge
  is ``failed`` or ``disconnected``. The peer refers to it only while ``connected``.
- ``connecting`` -> ``connected`` (a peer answered) or ``failed`` (every peer leg ended
  unanswered, or the connect was cancelled); ``connected`` -> ``disconnected`` (either
  leg ended, or ``calling.disconnect``). Each state is sent once, in that order.
- While connected both legs' state events carry ``peer`` (``Leg.peer_json``); when one
  leg ends, ``disconnected`` is sent, then the other leg is ended (``hangup``).
"""

from __future__ import annotations

from collections.abc import Callable

from .. import _validate as validate
from .. import _wire as wire
from .._events import CallState
from .._ids import IdFactory
from .._wire import JSONObject
from ._legs import Bridge, Dial, Leg

__all__ = ["Bridges"]

#: The switch's ways of moving legs that a bridge needs (bound methods of the switch).
StartGroup = Callable[[Dial, float], None]
EndLeg = Callable[..., None]
MediaSeconds = Callable[[str, object], float]

#: As for every verb on a call not answered yet (docs/simulator.md, Fidelity).
_NOT_ANSWERED: JSONObject = {"code": "409", "message": "Call is not answered"}


class Bridges:
    """The connects of one switch; it hands over the few switch methods they need."""

    def __init__(
        self,
        *,
        start_group: StartGroup,
        end: EndLeg,
        media_seconds: MediaSeconds,
        new_id: IdFactory,
    ) -> None:
        self._start_group = start_group
        self._end = end
        self._media_seconds = media_seconds
        self._new_id = new_id

    # ---- commands --------------------------------------------------------------------

    def connect(self, call: Leg, params: JSONObject, now: float) -> JSONObject:
        request = validate.check_connect(params)
        for index, item in enumerate(request.ringback):  # ringback plays like a play
            self._media_seconds(f"ringback[{index}]", item)
        if call.state is not CallState.ANSWERED:
            return dict(_NOT_ANSWERED)
        if call.bridge is not None:
            return {"code": "409", "message": f"Call is already {call.bridge.state}"}
        bridge = Bridge(call, request.tag)
        tag = request.tag if request.tag is not None else self._new_id()
        dial = Dial(call.sink, tag, call.node_id, request.plan, request.max_duration)
        dial.bridge = bridge
        bridge.dial = dial
        call.bridge = bridge
        self._emit(bridge, now)
        self._start_group(dial, now)
        return {"code": "200", "message": "Connecting"}

    def disconnect(self, call: Leg, params: JSONObject, now: float) -> JSONObject:
        """Unbridge: ``disconnected``, and the peer leg (the one the connect made) is
        hung up; while still connecting, the peer legs are cancelled (``failed``)."""
        bridge = call.bridge
        if bridge is None:
            if call.state is not CallState.ANSWERED:
                return dict(_NOT_ANSWERED)
            return {"code": "409", "message": "Call is not connected"}
        peer = bridge.peer
        if peer is None:
            self._cancel(bridge, now, "client")
        else:
            self._unbridge(bridge, peer, now)
            self._end(peer, "hangup", now, ending=True, source="client")
        return {"code": "200", "message": "Disconnected"}

    # ---- what the switch reports -----------------------------------------------------

    def answered(self, bridge: Bridge, peer: Leg, when: float) -> None:
        """The peer dial of ``bridge`` was answered by ``peer``: the legs are bridged."""
        call = bridge.call
        bridge.dial = None
        bridge.peer = peer
        bridge.state = "connected"
        peer.bridge = bridge
        call.peer_json = _peer_piece(peer)
        peer.peer_json = _peer_piece(call)
        self._emit(bridge, when, peer)

    def failed(self, bridge: Bridge, reason: str, source: str, when: float) -> None:
        """Every peer leg of ``bridge`` ended unanswered."""
        bridge.dial = None
        bridge.state = "failed"
        bridge.call.bridge = None
        self._emit(bridge, when, failure=(reason, source))

    def leg_ended(self, call: Leg, now: float) -> None:
        """``call``, part of a bridge, has ended: cancel the ringing peers, or unbridge
        and end the other leg."""
        bridge = call.bridge
        if bridge is None:  # pragma: no cover - the switch asks only for bridged legs
            raise AssertionError("leg_ended for a leg outside any bridge")
        peer = bridge.peer
        if peer is None:
            self._cancel(bridge, now, "endpoint")
            return
        other = peer if call is bridge.call else bridge.call
        self._unbridge(bridge, peer, now)
        self._end(other, "hangup", now, ending=True)

    # ---- internals -------------------------------------------------------------------

    def _cancel(self, bridge: Bridge, now: float, source: str) -> None:
        """End the ringing peer legs (``cancel``); their dial then fails (``failed``)."""
        dial = bridge.dial
        if dial is None:  # pragma: no cover - a connecting bridge always has its dial
            raise AssertionError("a connecting bridge without its dial")
        dial.index = len(dial.groups) - 1  # no further group starts
        for leg in list(dial.active.values()):
            self._end(leg, "cancel", now, ending=False, source=source)

    def _unbridge(self, bridge: Bridge, peer: Leg, now: float) -> None:
        call = bridge.call
        bridge.state = "disconnected"
        call.bridge = peer.bridge = None
        call.peer_json = peer.peer_json = None
        self._emit(bridge, now, peer)

    def _emit(
        self,
        bridge: Bridge,
        now: float,
        peer: Leg | None = None,
        failure: tuple[str, str] | None = None,
    ) -> None:
        call = bridge.call
        params: JSONObject = {
            "node_id": call.node_id,
            "call_id": call.call_id,
            "connect_state": bridge.state,
        }
        if bridge.tag is not None:
            params["tag"] = bridge.tag
        if peer is not None:
            params["peer"] = {
                "call_id": peer.call_id,
                "node_id": peer.node_id,
                "tag": peer.tag,
                "device": peer.device,
            }
        if failure is not None:
            params["reason"], params["source"] = failure
        call.sink.emit("calling.call.connect", wire.dumps(params), now)


def _peer_piece(other: Leg) -> str:
    """``,"peer":{call_id, node_id}`` for the state events of ``other``'s partner."""
    return ',"peer":' + wire.dumps({"call_id": other.call_id, "node_id": other.node_id})
