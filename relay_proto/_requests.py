"""The client's request table: requests awaiting a reply, or a socket to go out on.

This module owns whether a request has been sent: ``PendingRequest.sent`` is the one
record of it (a dial's record in the tracker does not keep its own copy).

Invariants:

* A pending request is either *held* (waiting for a READY session, in ``add`` order),
  *queued* (its frame is in the outbox, not drained yet) or *sent* (drained: its fate is
  on the wire); ``flush`` queues every held request, in order. Only pending requests are
  ever queued: one finished or withdrawn while held or queued is never written.
* At most ``max_queued`` requests made through the public API wait for a socket; internal
  ones (pings, hang-ups) and cleanup hang-ups (anything with ``resend``) are exempt, so
  that cleanup is never refused.
* A finished id is remembered in a bounded record, so a late reply to it can be told apart
  from a reply to an id that was never issued.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from . import _wire as wire
from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import RequestFailed, RequestSucceeded
from ._wire import JSONObject

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
    #: For hang-ups that must happen (internal or cleanup): the params to send again, under
    #: a new id, after a reconnect. Such requests are exempt from ``max_queued``.
    resend: JSONObject | None = None
    #: The id the caller was given, when this is a re-send under a new id: its outcome is
    #: reported under that one.
    origin: str | None = None
    #: For an action's start (``calling.play``, ``calling.record``, ...): the action.
    control_id: str | None = None
    #: For ``signalwire.receive``: the contexts it subscribes to (recorded once accepted).
    contexts: list[str] | None = None
    #: Drained from the outbox: the frame is on its way (the one record of "sent").
    sent: bool = False

    def succeeded(self, request_id: str, result: Any) -> RequestSucceeded:
        body = result if isinstance(result, dict) else {}
        return RequestSucceeded(
            request_id=self.origin or request_id, method=self.method, result=body
        )

    def failed(
        self, request_id: str, code: int, message: str, data: Any, call_gone: bool
    ) -> RequestFailed:
        return RequestFailed(
            request_id=self.origin or request_id,
            method=self.method,
            code=code,
            message=message,
            data=data,
            call_gone=call_gone,
        )

    def lost(self, request_id: str) -> RequestFailed:
        """Its reply was lost with the socket (or the call it waited for, with the session)."""
        return RequestFailed(
            request_id=self.origin or request_id,
            method=self.method,
            code=-1,
            message="connection lost before the reply arrived",
            connection_lost=True,
        )


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
        if (
            not send
            and request.surface
            and request.resend is None
            and len(self._held) >= self._max_queued
        ):
            raise LocalProtocolError(
                f"{len(self._held)} requests already wait for a connection (max_queued)"
            )
        request_id = self._new_id()
        self._pending[request_id] = request
        self._hold_or_queue(request_id, request.method, params, send)
        return request_id

    def _hold_or_queue(self, request_id: str, method: str, params: JSONObject, send: bool) -> None:
        if send:
            frame = wire.encode_request(request_id, method, params)
            self._outbox.append(frame)
            self._queued.append((request_id, params, frame))
        else:
            self._held.append((request_id, params))

    def drained(self) -> None:
        """The outbox was drained: its requests are on their way."""
        pending = self._pending
        for request_id, _, _ in self._queued:
            request = pending.get(request_id)
            if request is not None:
                request.sent = True
        self._queued.clear()

    def unsend(self) -> None:
        """The socket died before the outbox was drained: hold those requests again,
        ahead of the ones already held (they were made first). Finished ones are dropped."""
        self._held.extendleft(
            (request_id, params)
            for request_id, params, _ in reversed(self._queued)
            if request_id in self._pending
        )
        self._queued.clear()

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

    def withdraw_unsent(self, request_id: str) -> None:
        """``withdraw`` a request if it is still pending and has not been sent."""
        request = self._pending.get(request_id)
        if request is not None and not request.sent:
            self.withdraw(request_id)

    def unsent(self, request_id: str) -> bool:
        """Whether ``request_id`` is pending and has not gone out yet."""
        request = self._pending.get(request_id)
        return request is not None and not request.sent

    def mute(self, request_id: str) -> None:
        """Nobody waits for this request's outcome any more: do not report it."""
        request = self._pending.get(request_id)
        if request is not None:
            request.surface = False

    def give_up(self, request_id: str) -> None:
        """Nobody waits for ``request_id`` any more: not sent if it has not been, else
        forgotten (a late reply is dropped). Hang-ups that must happen (``resend``) stay."""
        request = self._pending.get(request_id)
        if request is None or request.resend is not None:
            return
        if request.sent:
            self.finish(request_id)
        else:
            self.withdraw(request_id)

    def take_reply(self, request_id: str) -> PendingRequest | None:
        """Finish the request a reply answers and return it; None for a late reply to a
        finished one (a reply to an id never made raises)."""
        request = self._pending.pop(request_id, None)
        if request is not None:
            self._remember(request_id)
        elif request_id not in self._recent:
            raise RemoteProtocolError(f"reply to a request that was never made: id {request_id!r}")
        return request

    def settle(self, send: bool) -> list[tuple[str, PendingRequest]]:
        """Settle the requests whose replies were lost with the socket; return the failed.

        Hang-ups that must happen (``resend``) go out again under new ids, keeping the id
        the caller was given as ``origin``; a dial is forgotten (it is reconciled by its
        tag); every other one has failed and is returned.
        """
        failed = []
        for request_id, request in [(r, q) for r, q in self._pending.items() if q.sent]:
            self.finish(request_id)
            if request.resend is not None:
                origin = request.origin or request_id
                self.add(replace(request, sent=False, origin=origin), request.resend, send)
            elif request.dial_tag is None:
                failed.append((request_id, request))
        return failed

    def withdraw_held_for(self, call_ids: set[str]) -> list[tuple[str, PendingRequest]]:
        """Withdraw the held requests the caller made for ``call_ids`` (lost calls);
        hang-ups that must happen stay. Returns the withdrawn."""
        doomed = [
            (rid, self._pending[rid])
            for rid, _ in self._held
            if rid in self._pending
            and self._pending[rid].surface
            and self._pending[rid].resend is None
            and self._pending[rid].call_id in call_ids
        ]
        for request_id, _ in doomed:
            self.withdraw(request_id)
        return doomed

    def unsent_dial_tags(self) -> frozenset[str]:
        """Tags of ``dial()`` requests that have not gone out (held or not drained)."""
        return frozenset(
            request.dial_tag
            for request in self._pending.values()
            if request.dial_tag is not None and not request.sent
        )

    def flush(self) -> None:
        """Queue every held request for writing, in order."""
        while self._held:
            request_id, params = self._held.popleft()
            request = self._pending.get(request_id)
            if request is not None:  # finished while held (a ping given up on)
                self._hold_or_queue(request_id, request.method, params, send=True)
