"""Hypothesis strategies for property-testing code built on relay (``pip install relay[testing]``).

They draw what the protocol and the simulator take: E.164 numbers and SIP URIs that the
client's own validation accepts, devices and dial plans (outer list serial, inner lists
rung in parallel), destination outcomes, faults and fault schedules, and orders of events.
Every value is a plain ``relay_proto`` value (``Outcome``, ``Faults``, ``Scenario``, device
dicts), ready for ``relay_proto.testing.Pair`` or ``serve_simulator``.

They live here, not in ``relay_proto.testing``, because ``relay_proto`` imports the
standard library only; Hypothesis is an optional dependency of this package, imported by
this module alone.

Invariants: every device a strategy draws passes ``ClientConnection.dial``'s checks; every
duration is finite, non-negative and bounded by the caller's maximum.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from hypothesis import strategies as st

from relay_proto.testing import Faults, Outcome, OutcomeKind, Refusal, Scenario

__all__ = [
    "CONNECTION_FAULTS",
    "DELIVERY_FAULTS",
    "REFUSAL_FAULTS",
    "device_plans",
    "devices",
    "e164_numbers",
    "event_orders",
    "fault_schedules",
    "faults",
    "interleavings",
    "outcomes",
    "phone_devices",
    "scenarios",
    "sip_devices",
    "sip_uris",
]

T = TypeVar("T")

#: Faults that change only how events are delivered (copies, order, delay): a correct
#: client ends every dial and call exactly as it would without them.
DELIVERY_FAULTS = (
    "duplicate_events",
    "events_before_result",
    "dial_event_first",
    "reorder",
    "delay_events",
)
#: Faults that cut or corrupt the connection: the code under test must reconnect.
CONNECTION_FAULTS = ("drop_after_frames", "disconnect_after_dial", "refuse_resume", "garbage")
#: Faults that refuse dials (and, with ``create_call_after_refusal``, create legs anyway).
REFUSAL_FAULTS = ("dial_refused", "create_call_after_refusal")

_HOST = st.from_regex(r"[a-z][a-z0-9]{0,11}(\.[a-z][a-z0-9]{0,11}){0,2}", fullmatch=True)
_USER = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,15}", fullmatch=True)


def e164_numbers() -> st.SearchStrategy[str]:
    """E.164 numbers: ``+``, a non-zero digit, then 1 to 14 digits."""
    return st.from_regex(r"\+[1-9][0-9]{1,14}", fullmatch=True)


def sip_uris() -> st.SearchStrategy[str]:
    """``sip:user@host`` and ``sips:user@host`` URIs."""
    return st.builds("{}:{}@{}".format, st.sampled_from(["sip", "sips"]), _USER, _HOST)


def _ring_timeouts(max_timeout: int) -> st.SearchStrategy[int | None]:
    return st.none() | st.integers(1, max_timeout)


def _with_timeout(params: dict[str, Any], timeout: int | None) -> dict[str, Any]:
    return params if timeout is None else {**params, "timeout": timeout}


def phone_devices(
    to_numbers: st.SearchStrategy[str] | None = None,
    *,
    from_numbers: st.SearchStrategy[str] | None = None,
    timeouts: st.SearchStrategy[int | None] | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    """``{"type": "phone", "params": {...}}``; ``timeouts`` draws the ring ``timeout``
    (``None`` leaves it out; default: absent or 1..60 s)."""
    return st.builds(
        lambda to, frm, timeout: {
            "type": "phone",
            "params": _with_timeout({"to_number": to, "from_number": frm}, timeout),
        },
        e164_numbers() if to_numbers is None else to_numbers,
        e164_numbers() if from_numbers is None else from_numbers,
        timeouts if timeouts is not None else _ring_timeouts(60),
    )


def sip_devices(
    to_uris: st.SearchStrategy[str] | None = None,
    *,
    from_uris: st.SearchStrategy[str] | None = None,
    timeouts: st.SearchStrategy[int | None] | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    """``{"type": "sip", "params": {"to": ..., "from": ...}}``, optionally with a ``timeout``."""
    return st.builds(
        lambda to, frm, timeout: {
            "type": "sip",
            "params": _with_timeout({"to": to, "from": frm}, timeout),
        },
        sip_uris() if to_uris is None else to_uris,
        sip_uris() if from_uris is None else from_uris,
        timeouts if timeouts is not None else _ring_timeouts(60),
    )


def devices(
    destinations: Sequence[str] | None = None,
    *,
    timeouts: st.SearchStrategy[int | None] | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    """A phone or SIP device. With ``destinations``, only those (``sip:``/``sips:`` ones
    become SIP devices, the others phone devices), so a scenario can script each one."""
    if destinations is None:
        return phone_devices(timeouts=timeouts) | sip_devices(timeouts=timeouts)
    if not destinations:
        raise ValueError("destinations must not be empty")
    phones = [d for d in destinations if not d.startswith(("sip:", "sips:"))]
    sips = [d for d in destinations if d.startswith(("sip:", "sips:"))]
    options = []
    if phones:
        options.append(phone_devices(st.sampled_from(phones), timeouts=timeouts))
    if sips:
        options.append(sip_devices(st.sampled_from(sips), timeouts=timeouts))
    return st.one_of(options)


def device_plans(
    device: st.SearchStrategy[dict[str, Any]] | None = None,
    *,
    max_groups: int = 3,
    max_parallel: int = 3,
) -> st.SearchStrategy[list[list[dict[str, Any]]]]:
    """Dial plans: 1..``max_groups`` groups tried one after another, each of
    1..``max_parallel`` devices rung together. ``max_parallel=1`` gives serial plans,
    ``max_groups=1`` parallel ones."""
    group = st.lists(devices() if device is None else device, min_size=1, max_size=max_parallel)
    return st.lists(group, min_size=1, max_size=max_groups)


def outcomes(
    kinds: Iterable[OutcomeKind] = OutcomeKind,
    *,
    max_after: float = 60.0,
    max_hangup_after: float | None = 60.0,
) -> st.SearchStrategy[Outcome]:
    """A destination's outcome; ``max_hangup_after=None``: the far end never hangs up."""
    hangups: st.SearchStrategy[float | None] = st.none()
    if max_hangup_after is not None:
        hangups = hangups | st.floats(0.001, max_hangup_after)
    return st.builds(
        Outcome,
        kind=st.sampled_from(list(kinds)),
        after=st.floats(0, max_after),
        hangup_after=hangups,
    )


def faults(
    names: Iterable[str] = DELIVERY_FAULTS, *, max_delay: float = 1.0, max_frames: int = 20
) -> st.SearchStrategy[Faults]:
    """A ``Faults`` with any of ``names`` switched on (each drawn independently)."""
    chosen = set(names)
    unknown = chosen - set(Faults.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown faults: {sorted(unknown)}")
    values: dict[str, st.SearchStrategy[Any]] = {name: st.booleans() for name in chosen}
    if "delay_events" in chosen:
        values["delay_events"] = st.just(0.0) | st.floats(0, max_delay)
    if "drop_after_frames" in chosen:
        values["drop_after_frames"] = st.none() | st.integers(1, max_frames)
    if "disconnect_after_dial" in chosen:
        values["disconnect_after_dial"] = st.sampled_from([False, True, "restart"])
    if "dial_refused" in chosen:
        refusal = st.builds(Refusal, code=st.sampled_from(["403", "500", "503", -32000]))
        values["dial_refused"] = st.none() | refusal
    return st.fixed_dictionaries(values).map(lambda kwargs: Faults(**kwargs))


def fault_schedules(
    fault: st.SearchStrategy[Faults] | None = None,
    *,
    max_steps: int = 3,
    max_gap: float = 30.0,
) -> st.SearchStrategy[list[tuple[float, Faults]]]:
    """Up to ``max_steps`` ``(gap, Faults)`` steps: wait ``gap`` seconds, then install the
    faults (``simulator.scenario.faults = ...``; a new object re-arms one-shot faults)."""
    step = st.tuples(st.floats(0, max_gap), faults() if fault is None else fault)
    return st.lists(step, max_size=max_steps)


def scenarios(
    destinations: Sequence[str] = (),
    *,
    outcome: st.SearchStrategy[Outcome] | None = None,
    fault: st.SearchStrategy[Faults] | None = None,
) -> st.SearchStrategy[Scenario]:
    """A ``Scenario`` scripting each of ``destinations`` (and the default) with a drawn
    outcome, and drawn faults (default: none)."""
    each = outcomes() if outcome is None else outcome
    return st.builds(
        Scenario,
        default=each,
        destinations=st.fixed_dictionaries(dict.fromkeys(destinations, each)),
        faults=st.just(Faults()) if fault is None else fault,
    )


def event_orders(events: Sequence[T], *, max_duplicates: int = 0) -> st.SearchStrategy[list[T]]:
    """Every order of ``events``, with up to ``max_duplicates`` extra copies of some of
    them inserted anywhere (a server may deliver an event twice)."""
    items = list(events)
    if not items or max_duplicates == 0:
        return st.permutations(items)
    copy = st.tuples(st.sampled_from(items), st.integers(0, len(items) + max_duplicates))
    extra = st.lists(copy, max_size=max_duplicates)
    return st.tuples(st.permutations(items), extra).map(lambda drawn: _insert(*drawn))


def _insert(order: list[T], copies: list[tuple[T, int]]) -> list[T]:
    out = list(order)
    for item, position in copies:
        out.insert(min(position, len(out)), item)
    return out


def interleavings(*streams: Sequence[T]) -> st.SearchStrategy[list[T]]:
    """Every merge of ``streams`` that keeps each stream's own order (one call's events
    stay in order; different calls' events interleave freely)."""
    labels = [index for index, stream in enumerate(streams) for _ in stream]
    return st.permutations(labels).map(lambda order: _merge(order, streams))


def _merge(order: Sequence[int], streams: Sequence[Sequence[T]]) -> list[T]:
    positions = [0] * len(streams)
    out = []
    for index in order:
        out.append(streams[index][positions[index]])
        positions[index] += 1
    return out
