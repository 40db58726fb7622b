"""The deadlines that bound the client's waits (``relay_anyio._waiters.Deadlines``)."""

from __future__ import annotations

import operator
from functools import partial

from relay_anyio._waiters import Deadlines


def test_due_waits_expire_in_order_and_finished_ones_do_not() -> None:
    deadlines = Deadlines()
    fired: list[str] = []
    finished = {"b"}
    for name, when in (("c", 3.0), ("a", 1.0), ("b", 2.0)):
        deadlines.add(when, partial(operator.contains, finished, name), partial(fired.append, name))
    assert deadlines.next_deadline() == 1.0
    deadlines.expire_due(2.5)
    assert fired == ["a"]
    deadlines.expire_due(10.0)
    assert fired == ["a", "c"]
    assert deadlines.next_deadline() is None


def test_add_says_whether_it_is_the_earliest() -> None:
    deadlines = Deadlines()
    assert deadlines.add(5.0, lambda: False, lambda: None)
    assert not deadlines.add(6.0, lambda: False, lambda: None)
    assert deadlines.add(1.0, lambda: False, lambda: None)


def test_finished_waits_do_not_pile_up() -> None:
    deadlines = Deadlines()
    for _ in range(10_000):  # each wait is over long before its far deadline
        deadlines.add(1e9, lambda: True, lambda: None)
    assert len(deadlines) <= 256
