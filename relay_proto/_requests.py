"""The client's request table: requests awaiting a reply, or a socket to go out on.

Invariants:

* A request is either *held* (waiting for a READY session, in ``add`` order) or *sent*
  (its frame is in the outbox); ``flush`` sends every held request, in order.
* At most ``max_queued`` requests made through the public API wait for a socket; internal
  ones (pings, hang-ups) are exempt so that cleanup is never refused.
* A finished id is remembered in a bounded record, so a late reply to it can be told apart
  from a reply to an id that was never issued.
"""

from __future__ import annotations

import itertools
import os
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _wire as wire
from ._errors import LocalProtocolError

JSONObject = dict[str, Any]

_RECENT_LIMIT = 4096


@dataclass(slots=True)
class PendingRequest:
    method: str
    #: ``call_id`` for call commands (including internal hang-ups), else None.
    call_id: str | None = None
    #: The tag of a ``calling.dial`` made by ``dial()`` (not one sent through ``execute``).
    dial_tag: str | None = None
    #: Whether its outcome is reported as ``RequestSucceeded``/``RequestFailed``.
    surface: bool = True
    #: For internal hang-ups: the params to re-send after a reconnect.
    resend: JSONObject | None = None
    #: For ``calling.play``: the play it started.
    control_id: str | None = None
    sent: bool = False


def uuid4() -> str:
    """A random (version 4) UUID string, built from ``os.urandom``.

    Not ``uuid.uuid4()``: importing ``uuid`` drags in ``platform`` and more, and the core
    keeps its imports to the few modules it needs.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def counter_ids() -> Callable[[], str]:
    """The default request id factory: a random prefix per connection, then a counter.

    Ids only need to be unique within a session; this is cheaper than a UUID per frame.
    """
    prefix = os.urandom(6).hex() + "-"
    count = itertools.count(1)
    return lambda: prefix + str(next(count))


class RequestTable:
    def __init__(self, *, outbox: list[str], new_id: Callable[[], str], max_queued: int) -> None:
        self._outbox = outbox
        self._new_id = new_id
        self._max_queued = max_queued
        self._pending: dict[str, PendingRequest] = {}
        self._held: deque[tuple[str, JSONObject]] = deque()
        #: Written to the outbox but not drained yet: (id, params, frame). A request is
        #: ``sent`` only once its frame has been drained, so a socket that dies before
        #: the drain loses nothing: the request goes back to ``_held``.
        self._queued: list[tuple[str, JSONObject, str]] = []
        self._recent: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, request: PendingRequest, params: JSONObject, send: bool) -> str:
        """Register ``request``; write its frame now when ``send``, else hold it."""
        if request.surface and not send and len(self._held) >= self._max_queued:
            raise LocalProtocolError(
                f"{len(self._held)} requests already wait for a connection (max_queued)"
            )
        request_id = self._new_id()
        if send:
            self._queue(request_id, request.method, params)
        else:
            self._held.append((request_id, params))
        self._pending[request_id] = request
        return request_id

    def _queue(self, request_id: str, method: str, params: JSONObject) -> None:
        frame = wire.encode_request(request_id, method, params)
        self._outbox.append(frame)
        self._queued.append((request_id, params, frame))

    def drained(self) -> list[PendingRequest]:
        """The outbox was drained: its requests are on their way. Returns them."""
        out = []
        for request_id, _, _ in self._queued:
            request = self._pending.get(request_id)
            if request is not None:
                request.sent = True
                out.append(request)
        self._queued.clear()
        return out

    def unsend(self) -> None:
        """The socket died before the outbox was drained: hold those requests again,
        ahead of the ones already held (they were made first)."""
        self._held.extendleft(
            (request_id, params) for request_id, params, _ in reversed(self._queued)
        )
        self._queued.clear()

    def is_recent(self, request_id: str) -> bool:
        return request_id in self._recent

    def take(self, request_id: str) -> PendingRequest | None:
        """``finish`` a pending request and return it; None (and no change) if not pending."""
        request = self._pending.pop(request_id, None)
        if request is not None:
            self._remember(request_id)
        return request

    def finish(self, request_id: str) -> None:
        """Forget a request (answered, given up on); a late reply to it will be dropped."""
        self._pending.pop(request_id, None)
        self._remember(request_id)

    def _remember(self, request_id: str) -> None:
        self._recent[request_id] = None
        if len(self._recent) > _RECENT_LIMIT:
            self._recent.popitem(last=False)

    def withdraw(self, request_id: str) -> None:
        """Forget a request that was never sent: it is simply not sent."""
        self._pending.pop(request_id, None)
        self._held = deque(item for item in self._held if item[0] != request_id)
        for index, (queued_id, _, frame) in enumerate(self._queued):
            if queued_id == request_id:
                del self._queued[index]
                self._outbox.remove(frame)
                break

    def in_flight(self) -> list[tuple[str, PendingRequest]]:
        return [(rid, req) for rid, req in self._pending.items() if req.sent]

    def held(self) -> list[tuple[str, PendingRequest]]:
        return [(rid, self._pending[rid]) for rid, _ in self._held]

    def flush(self) -> None:
        """Queue every held request for writing, in order."""
        while self._held:
            request_id, params = self._held.popleft()
            self._queue(request_id, self._pending[request_id].method, params)
