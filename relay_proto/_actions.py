"""The action machine: every verb with a ``control_id`` and a ``calling.call.<verb>`` event.

``VERBS`` has one row per verb: its request method, the event type it reports on, the
controls it has (``.stop``, ``.pause``, ...: control name -> request method), the states it
knows (None: an open set), the states that end it, how a result is read from its event
(``_results``), how its start params are checked, and which event class reports it.
Adding a verb is a row here plus, where it has typed fields, a result type in
``_results``; no new code path. ``generic_verb(name)`` makes the row for a verb this client
does not know (``calling.<name>``, ``calling.call.<name>``, ``.stop``, ends on finished/error).

``ActionTable`` holds the running actions of a session by ``control_id``.

Invariants:

* An action is in the table from its start until it is done: its final event (a terminal
  state, or a final result of a collect that is not continuous), a refused start, its
  call's end or loss (then it is reported done with the state ``call_ended``), or its
  abandonment. ``done`` is reported exactly once; ``settled`` (the action's answer: a final
  collect result, the first detection, or the end) exactly once, never after ``done``.
* A state repeated without a result is a duplicate and reports nothing, as does a late
  event for an action that has left the table (its control_id is remembered, bounded). An
  event for a ``control_id`` this session never started through the core (``execute``) is
  read, then handed on as ``UnhandledEvent``: nothing the application asked for is dropped.
* An unknown state of a verb with a closed set is carried (``UnknownState``) and changes
  nothing.
* Nothing is touched before the event has been read completely.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from . import _results as results
from . import _verb_rules as rules
from ._errors import LocalProtocolError
from ._events import ActionStateChanged, Event, PlayState, PlayStateChanged, UnhandledEvent
from ._records import str_field, unknown_state
from ._wire import JSONObject


@dataclass(frozen=True, slots=True)
class Verb:
    name: str
    event_type: str
    controls: Mapping[str, str]
    states: frozenset[str] | None
    terminal: frozenset[str]
    read: results.Reader
    #: Checks the start params (nested wire form, no ids) and returns a fresh copy.
    build: Callable[[object], JSONObject] = rules.build_any
    #: A final result ends the action (unless it was started ``continuous``).
    ends_on_result: bool = False
    #: ``calling.call.play`` events under the same ``control_id`` report its prompt.
    prompt: bool = False
    report: type[ActionStateChanged] = ActionStateChanged

    @property
    def method(self) -> str:
        return f"calling.{self.name}"


def _controls(prefix: str, *names: str) -> Mapping[str, str]:
    table = {name: f"calling.{prefix}.{name}" for name in names}
    return MappingProxyType(table)


_GONE_LIMIT = 4096
_FINISHED_ERROR = frozenset({"finished", "error"})
_FINISHED = frozenset({"finished"})
_COLLECT_STATES = frozenset({"collecting", *results.CollectKind, "finished"})
_COLLECT_END = frozenset({"finished", "error", "no_input", "no_match"})
_PLAY_CONTROLS = ("stop", "pause", "resume", "volume")
_START_TIMERS = "calling.collect.start_input_timers"


def _row(name: str, event: str, controls: tuple[str, ...], **kw: object) -> Verb:
    return Verb(name, f"calling.call.{event}", _controls(name, *controls), **kw)  # type: ignore[arg-type]


VERBS: Mapping[str, Verb] = MappingProxyType(
    {
        verb.name: verb
        for verb in (
            _row(
                "play",
                "play",
                _PLAY_CONTROLS,
                states=frozenset(PlayState),
                terminal=_FINISHED_ERROR,
                read=results.read_plain,
                build=rules.build_play,
                report=PlayStateChanged,
            ),
            _row(
                "record",
                "record",
                ("stop", "pause", "resume"),
                states=frozenset(results.RecordState),
                terminal=frozenset({"finished", "no_input"}),
                read=results.read_record,
                build=rules.build_record,
            ),
            Verb(
                "play_and_collect",
                "calling.call.collect",
                MappingProxyType(
                    {
                        **_controls("play_and_collect", "stop", "volume"),
                        "start_input_timers": _START_TIMERS,
                    }
                ),
                states=_COLLECT_STATES,
                terminal=_COLLECT_END,
                read=results.read_collect,
                build=rules.build_play_and_collect,
                ends_on_result=True,
                prompt=True,
            ),
            Verb(
                "collect",
                "calling.call.collect",
                MappingProxyType(
                    {"stop": "calling.collect.stop", "start_input_timers": _START_TIMERS}
                ),
                states=_COLLECT_STATES,
                terminal=_COLLECT_END,
                read=results.read_collect,
                build=rules.build_collect,
                ends_on_result=True,
            ),
            _row(
                "detect",
                "detect",
                ("stop",),
                states=None,
                terminal=_FINISHED_ERROR,
                read=results.read_detect,
                build=rules.build_detect,
            ),
            _row(
                "send_digits",
                "send_digits",
                (),
                states=None,
                terminal=_FINISHED_ERROR,
                read=results.read_send_digits,
                build=rules.build_send_digits,
            ),
            _row(
                "tap",
                "tap",
                ("stop",),
                states=frozenset({"tapping", "finished"}),
                terminal=_FINISHED,
                read=results.read_tap,
                build=rules.build_tap,
            ),
            _row(
                "stream",
                "stream",
                ("stop",),
                states=None,
                terminal=_FINISHED_ERROR,
                read=results.read_plain,
            ),
            _row(
                "transcribe",
                "transcribe",
                ("stop",),
                states=None,
                terminal=_FINISHED_ERROR,
                read=results.read_plain,
            ),
            _row(
                "pay",
                "pay",
                ("stop",),
                states=None,
                terminal=_FINISHED_ERROR,
                read=results.read_plain,
            ),
            _row(
                "send_fax",
                "fax",
                ("stop",),
                states=None,
                terminal=_FINISHED_ERROR,
                read=results.read_fax,
            ),
            _row(
                "receive_fax",
                "fax",
                ("stop",),
                states=None,
                terminal=_FINISHED_ERROR,
                read=results.read_fax,
            ),
            _row(
                "ai",
                "ai",
                ("stop",),
                states=None,
                terminal=_FINISHED_ERROR,
                read=results.read_plain,
            ),
        )
    }
)

#: The first verb reporting on each event type (reads events for actions no longer known).
BY_EVENT: Mapping[str, Verb] = MappingProxyType(
    {verb.event_type: verb for verb in reversed(list(VERBS.values()))}
)


def generic_verb(name: str) -> Verb:
    """The row for a verb this client has no row for: ``calling.<name>`` reporting on
    ``calling.call.<name>``, with ``.stop``, ending on ``finished``/``error``."""
    return _row(
        name, name, ("stop",), states=None, terminal=_FINISHED_ERROR, read=results.read_plain
    )


@dataclass(slots=True)
class ActionRecord:
    call_id: str
    verb: Verb
    start_id: str
    ends_on_result: bool
    state: str | None = None
    settled: bool = False
    accepted: bool = False
    #: Nobody waits for it: stop it as soon as the server has accepted it.
    abandoned: bool = False
    prompt: str | None = None


class ActionTable:
    """The running actions of one session, by ``control_id``. See the module docstring."""

    def __init__(self) -> None:
        self.running: dict[str, ActionRecord] = {}
        #: The control_ids of actions that have left the table (bounded): a late event for
        #: one of them is dropped, not handed on.
        self._gone: OrderedDict[str, None] = OrderedDict()
        #: The row reading each event type; generic verbs add theirs when started.
        self.by_event: dict[str, Verb] = dict(BY_EVENT)

    def add(
        self, control_id: str, call_id: str, verb: Verb, start_id: str, continuous: bool
    ) -> None:
        ends = verb.ends_on_result and not continuous
        self.running[control_id] = ActionRecord(call_id, verb, start_id, ends)
        self.by_event.setdefault(verb.event_type, verb)

    def handler(
        self, event_type: str
    ) -> Callable[[JSONObject, float | None, float, list[Event], list[Any]], None]:
        """The tracker's handler for ``event_type`` (the tracker's handler signature)."""

        def handle(
            inner: JSONObject,
            timestamp: float | None,
            now: float,
            events: list[Event],
            intents: list[Any],
        ) -> None:
            self.on_event(event_type, inner, events, timestamp)

        return handle

    def on_event(
        self,
        event_type: str,
        inner: JSONObject,
        events: list[Event],
        timestamp: float | None = None,
    ) -> None:
        """Read one ``calling.call.<verb>`` event (raises ``RemoteProtocolError`` if it
        cannot be read, before anything changes)."""
        control_id = str_field(inner, "control_id", event_type)
        record = self.running.get(control_id)
        verb = self.by_event[event_type] if record is None else record.verb
        if verb.event_type != event_type:  # the prompt of a play_and_collect
            assert record is not None
            self._on_prompt(record, control_id, inner, events)
            return
        reading = verb.read(verb.name, inner, verb.terminal)
        if verb.states is not None and reading.state not in verb.states:
            events.append(unknown_state(event_type, _state_key(inner), reading.state, inner))
            return
        if record is None:
            if control_id not in self._gone:  # started some other way (``execute``)
                unhandled = UnhandledEvent(event_type=event_type, timestamp=timestamp, params=inner)
                events.append(unhandled)
            return
        if reading.result is None and reading.state == record.state:
            return
        if reading.from_result:  # a collect's result: it ends the collect unless continuous
            done = record.ends_on_result and reading.settles
        else:
            done = reading.state in verb.terminal
        settles = not record.settled and (done or reading.settles)
        record.state = reading.state
        record.settled = record.settled or settles
        if done:
            self.retire(control_id)
        events.append(
            verb.report(
                call_id=record.call_id,
                control_id=control_id,
                verb=verb.name,
                state=_typed(verb, reading.state),
                done=done,
                settled=settles,
                result=reading.result,
                raw=inner,
            )
        )

    def _on_prompt(
        self, record: ActionRecord, control_id: str, inner: JSONObject, events: list[Event]
    ) -> None:
        reading = results.read_plain("play", inner, _FINISHED_ERROR)
        if reading.state not in PlayState.__members__.values():
            events.append(unknown_state("calling.call.play", "state", reading.state, inner))
            return
        if reading.state == record.prompt:
            return
        record.prompt = reading.state
        events.append(
            PlayStateChanged(
                call_id=record.call_id,
                control_id=control_id,
                verb=record.verb.name,
                state=PlayState(reading.state),
                raw=inner,
            )
        )

    def accepted(self, control_id: str) -> ActionRecord | None:
        """The start was accepted: the record if it was abandoned meanwhile (stop it now)."""
        record = self.running.get(control_id)
        if record is None:
            return None
        record.accepted = True
        if record.abandoned:
            self.retire(control_id)
            return record
        return None

    def forget(self, control_id: str) -> None:
        """The start was refused or lost: nothing runs."""
        if control_id in self.running:
            self.retire(control_id)

    def retire(self, control_id: str) -> None:
        """Take an action out of the table, remembering its control_id (bounded)."""
        del self.running[control_id]
        self._gone[control_id] = None
        if len(self._gone) > _GONE_LIMIT:
            self._gone.popitem(last=False)

    def end_for_call(self, call_id: str, events: list[Event]) -> None:
        """The call ended or was lost: every action on it is done, state ``call_ended``."""
        doomed = [c for c, record in self.running.items() if record.call_id == call_id]
        for control_id in doomed:
            record = self.running[control_id]
            self.retire(control_id)
            events.append(
                ActionStateChanged(
                    call_id=call_id,
                    control_id=control_id,
                    verb=record.verb.name,
                    state=results.CALL_ENDED,
                    done=True,
                    settled=not record.settled,
                    result=results.ActionResult(verb=record.verb.name, state=results.CALL_ENDED),
                )
            )


def _state_key(inner: JSONObject) -> str:
    if "result" in inner:
        return "result.type"
    return "state"


def _typed(verb: Verb, state: str) -> str:
    if verb.report is PlayStateChanged:
        return PlayState(state)
    if verb.name == "record":
        return results.RecordState(state)
    return state


def verb_named(name: str) -> Verb:
    """The row of ``name`` (a generic one for a verb with no row)."""
    verb = VERBS.get(name)
    if verb is not None:
        return verb
    if not name or not all(part.isidentifier() for part in name.split(".")):
        raise LocalProtocolError(f"verb: must be a method name like 'record', got {name!r}")
    return generic_verb(name)
