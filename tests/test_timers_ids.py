"""The shared timer heap and id factories."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from relay_proto._ids import counter_ids, sequential_uuids, uuid4, uuid4_batched
from relay_proto._timers import TimerQueue

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_uuid_factories_make_version_4_uuids() -> None:
    batched = uuid4_batched(batch=2)
    ids = [uuid4() for _ in range(50)] + [batched() for _ in range(5)]
    assert all(UUID4.match(value) for value in ids)
    assert len(set(ids)) == len(ids)


def test_counter_and_sequential_ids() -> None:
    new_id = counter_ids()
    first, second = new_id(), new_id()
    assert first != second
    assert first.endswith("-1")
    assert second.endswith("-2")
    seq = sequential_uuids()
    assert seq() == "00000000-0000-4000-8000-000000000001"
    assert UUID4.match(seq())


def test_timers_fire_in_order_and_skip_cancelled() -> None:
    queue: TimerQueue[str] = TimerQueue()
    assert queue.next_deadline() is None
    assert queue.pop_due(100.0) is None
    b = queue.schedule(2.0, "b")
    queue.schedule(1.0, "a")
    queue.schedule(2.0, "c")
    queue.cancel(b)
    queue.cancel(b)  # twice counts once
    assert len(queue) == 2
    assert queue.next_deadline() == 1.0
    assert queue.pop_due(0.5) is None
    fired = []
    while (due := queue.pop_due(10.0)) is not None:
        fired.append(due)
    assert fired == [(1.0, "a"), (2.0, "c")]
    assert len(queue) == 0


def test_cancelling_a_fired_timer_is_a_no_op() -> None:
    queue: TimerQueue[str] = TimerQueue()
    handle = queue.schedule(1.0, "a")
    later = queue.schedule(5.0, "b")
    assert queue.pop_due(1.0) == (1.0, "a")
    queue.cancel(handle)
    assert len(queue) == 1
    assert queue.pop_due(9.0) == (5.0, "b")
    queue.cancel(later)
    assert len(queue) == 0


def test_cancelled_timers_are_compacted() -> None:
    queue: TimerQueue[int] = TimerQueue()
    queue.schedule(1e9, -1)
    for index in range(1000):
        queue.cancel(queue.schedule(float(index), index))
    assert len(queue) == 1
    assert len(queue._heap) < 200
    assert queue.pop_due(2e9) == (1e9, -1)


@given(st.lists(st.tuples(st.floats(0, 100), st.booleans()), max_size=60))
def test_timer_queue_matches_a_sorted_list(entries: list[tuple[float, bool]]) -> None:
    queue: TimerQueue[int] = TimerQueue()
    expected = []
    for index, (when, cancel) in enumerate(entries):
        handle = queue.schedule(when, index)
        if cancel:
            queue.cancel(handle)
        else:
            expected.append((when, index))
    expected.sort()
    got = []
    while (due := queue.pop_due(100.0)) is not None:
        got.append(due)
    assert got == expected
