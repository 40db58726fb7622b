"""Fault injection: when a scripted fault fires and what it does to event delivery.

The ``Faults`` values live in ``_scenario``; this module holds the behaviour behind them,
so the switch, the sessions and the sockets each ask one question ("fire now?", "how many
copies?", "in what order?") instead of reading fault flags themselves.

Invariants:
- A one-shot fault (``drop_after_frames``, ``disconnect_after_dial``) fires at most once per
  ``Faults`` object installed: installing a new object re-arms every one-shot fault.
- Delivery faults (duplicate, reorder, delay) change only how and when switch events are
  delivered, never their content; within one step, ``reorder`` swaps a session's events in
  pairs and keeps every other session's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from ._scenario import Faults

__all__ = ["OneShots", "copies", "reorder"]

#: A queued event: a tuple whose first item is the session it goes to.
Item = TypeVar("Item", bound=tuple[Any, ...])


class OneShots:
    """Which one-shot faults already fired for the installed ``Faults`` object."""

    __slots__ = ("_armed_for", "_fired")

    def __init__(self) -> None:
        self._armed_for: Faults | None = None
        self._fired: set[str] = set()

    def fire(self, faults: Faults, name: str) -> bool:
        """True the first time ``name`` fires for ``faults`` (an object, not a value)."""
        if faults is not self._armed_for:
            self._armed_for = faults
            self._fired = set()
        if name in self._fired:
            return False
        self._fired.add(name)
        return True


def copies(faults: Faults) -> int:
    """How many times each event is delivered (``duplicate_events``: twice)."""
    return 2 if faults.duplicate_events else 1


def reorder(batch: Sequence[Item]) -> list[Item]:
    """The ``reorder`` fault: within each session's items of one step, swap pairs."""
    per_key: dict[Any, list[Item]] = {}
    for item in batch:
        per_key.setdefault(item[0], []).append(item)
    out: list[Item] = []
    for items in per_key.values():
        for index in range(0, len(items) - 1, 2):
            items[index], items[index + 1] = items[index + 1], items[index]
        out.extend(items)
    return out
