"""The simulated switch's plays: ``calling.play`` and its controls, timed by the scenario.

Invariant: a play is in its call's ``plays`` exactly while it is not terminal; its finish
timer is pending only while it is playing (absent while paused or when it loops for ever).
Events go to the call's session, stamped with the simulated time they happen at.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

from .. import _validate as validate
from .. import _wire as wire
from .._errors import LocalProtocolError
from .._events import CallState, PlayState
from .._timers import TimerQueue
from .._wire import JSONObject
from ._legs import Leg, Play, TimerCallback
from ._scenario import Scenario

_OK = "200"
#: A verb on a call that exists but is not answered yet (see docs/simulator.md, Fidelity).
_NOT_ANSWERED: JSONObject = {"code": "409", "message": "Call is not answered"}
_PLAYABLE = frozenset({"tts", "audio", "ringtone", "silence"})


class Plays:
    """Every running play of the switch (see the module docstring)."""

    def __init__(
        self, *, scenario: Callable[[], Scenario], timers: TimerQueue[TimerCallback]
    ) -> None:
        self._scenario = scenario
        self._timers = timers

    def call_ended(self, call: Leg, now: float) -> None:
        """The call is ending: every play on it ends with ``error``."""
        for play in list(call.plays.values()):
            self._finish_play(play, PlayState.ERROR, now)

    def drop(self, call: Leg) -> None:
        """The call's session expired: its plays stop silently."""
        for play in call.plays.values():
            self._stop_timer(play)
        call.plays.clear()

    def start(self, call: Leg, params: JSONObject, now: float) -> JSONObject:
        control_id = validate.non_empty_str("control_id", params.get("control_id"))
        seconds = self.play_seconds(params.get("play"))
        if "volume" in params:
            validate.volume("volume", params["volume"])
        loop = validate.non_negative_int("loop", params.get("loop", 1))
        if call.state is not CallState.ANSWERED:  # still there: never a gone-call code
            return dict(_NOT_ANSWERED)
        if control_id in call.plays:
            return {"code": "409", "message": f"control_id {control_id!r} is already playing"}
        play = Play(call, control_id, seconds * loop if loop else math.inf, now)
        call.plays[control_id] = play
        self._emit_play(play, now)
        self._arm_play(play, now)
        return {"code": _OK, "message": "Playing"}

    def play_seconds(self, media: object) -> float:
        """How long a ``play`` list lasts; ``LocalProtocolError`` when it breaks a rule."""
        if type(media) is not list or not media:
            raise LocalProtocolError("calling.play needs a non-empty play list")
        return sum(self.media_seconds(f"play[{i}]", item) for i, item in enumerate(media))

    def media_seconds(self, where: str, item: object) -> float:
        """How long one media item plays (the scenario's rules); only known types play."""
        kind, params = validate.check_media(where, item)  # the required keys are there
        if kind not in _PLAYABLE:
            raise LocalProtocolError(f"unsupported play type {kind!r}")
        scenario = self._scenario()
        if kind == "tts":
            text = params["text"]
            return max(len(text) * scenario.play_seconds_per_char, scenario.min_play_seconds)
        duration = params.get("duration")
        return scenario.play_default_seconds if duration is None else float(duration)

    def _stop_timer(self, holder: Play) -> None:
        """Cancel the play's pending timer, if any."""
        if holder.timer is not None:
            self._timers.cancel(holder.timer)
            holder.timer = None

    def _arm_play(self, play: Play, now: float) -> None:
        play.started = now
        if math.isfinite(play.remaining):
            play.timer = self._timers.schedule(now + play.remaining, partial(self._play_done, play))

    def _play_done(self, play: Play, when: float) -> None:
        play.timer = None
        self._finish_play(play, PlayState.FINISHED, when)

    def _finish_play(self, play: Play, state: PlayState, now: float) -> None:
        self._stop_timer(play)
        del play.call.plays[play.control_id]
        play.state = state
        self._emit_play(play, now)

    def _find_play(self, call: Leg, params: JSONObject) -> Play | None:
        return call.plays.get(validate.non_empty_str("control_id", params.get("control_id")))

    def stop(self, call: Leg, params: JSONObject, now: float) -> JSONObject:
        play = self._find_play(call, params)
        if play is None:
            return {"code": "404", "message": "Play not found"}
        self._finish_play(play, PlayState.FINISHED, now)
        return {"code": _OK, "message": "Stopped"}

    def pause(self, call: Leg, params: JSONObject, now: float) -> JSONObject:
        play = self._find_play(call, params)
        if play is None:
            return {"code": "404", "message": "Play not found"}
        if play.state is PlayState.PLAYING:
            self._stop_timer(play)
            play.remaining -= now - play.started
            play.state = PlayState.PAUSED
            self._emit_play(play, now)
        return {"code": _OK, "message": "Paused"}

    def resume(self, call: Leg, params: JSONObject, now: float) -> JSONObject:
        play = self._find_play(call, params)
        if play is None:
            return {"code": "404", "message": "Play not found"}
        if play.state is PlayState.PAUSED:
            play.state = PlayState.PLAYING
            self._emit_play(play, now)
            self._arm_play(play, now)
        return {"code": _OK, "message": "Resumed"}

    def volume(self, call: Leg, params: JSONObject, now: float) -> JSONObject:
        play = self._find_play(call, params)
        if play is None:
            return {"code": "404", "message": "Play not found"}
        if "volume" not in params:
            raise LocalProtocolError("calling.play.volume needs a volume")
        validate.volume("volume", params["volume"])
        return {"code": _OK, "message": "Volume set"}

    def _emit_play(self, play: Play, now: float) -> None:
        call = play.call
        params = {
            "call_id": call.call_id,
            "node_id": call.node_id,
            "control_id": play.control_id,
            "state": play.state.value,
            "segment_id": call.segment_id,
        }
        call.sink.emit("calling.call.play", wire.dumps(params), now)
