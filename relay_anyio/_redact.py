"""Keeping the client's secrets out of what it shows: errors, their ``repr``/``args``, logs.

A server may echo a credential back (a token in a ``-32002`` message, a JWT in
``error.data``). Masking by field name (``"token": ...``) does not catch that, so a
``Redactor`` masks the secret *values* too, wherever they occur in text that came from the
server. It reads the values when it runs (``ClientConnection.secrets``: the token or JWT,
and the ``authorization_state`` the server handed over, which arrives later).

Where it is applied (the one place per path):

* every core event that carries server text and can become an error (``ConnectFailed``,
  ``RequestFailed``, ``DialFailed``) is masked as it leaves the core, in the read loop
  (``Redactor.events``), so errors built from them, and ``on_event``, never see a secret;
* every wire frame logged at DEBUG, and a close frame's reason (``Redactor.frame`` /
  ``Redactor.text`` in the WebSocket);
* the text of a ``RemoteProtocolError`` before it is logged.

Values shorter than ``MIN_SECRET_LENGTH`` are not masked: text would become unreadable
(every "t" starred for a token "t") while so short a credential protects nothing anyway.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from typing import Any

from relay_proto import (
    ConnectFailed,
    DialFailed,
    Event,
    RequestFailed,
    UnknownState,
    UnreadableEvent,
)

__all__ = ["MASK", "MIN_SECRET_LENGTH", "Redactor"]

MASK = "***"
MIN_SECRET_LENGTH = 4
#: Frames logged at DEBUG are cut to this many characters.
LOG_LIMIT = 4000

_SECRET_FIELDS = re.compile(
    r'("(?:token|jwt_token|password|authorization_state|signature)"\s*:\s*)"(?:[^"\\]|\\.)*"'
)
#: The events whose server text can end up in an error.
_WITH_SERVER_TEXT = frozenset(
    {ConnectFailed, RequestFailed, DialFailed, UnknownState, UnreadableEvent}
)


def _no_secrets() -> Iterable[str]:
    return ()


class Redactor:
    """Masks the values ``secrets()`` returns (read at each use) in server text."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Callable[[], Iterable[str]] = _no_secrets) -> None:
        self._secrets = secrets

    def _values(self) -> list[str]:
        # Longest first, so a secret that contains another is masked whole.
        values = {value for value in self._secrets() if len(value) >= MIN_SECRET_LENGTH}
        return sorted(values, key=len, reverse=True)

    def text(self, text: str) -> str:
        """``text`` with every occurrence of every secret value replaced by ``***``."""
        for value in self._values():
            if value in text:
                text = text.replace(value, MASK)
        return text

    def value(self, value: Any) -> Any:
        """A copy of a JSON value (``error.data``) with secrets masked in every string, keys
        included. Iterative, so a deeply nested value cannot exhaust the stack."""
        values = self._values()
        if not values:
            return value

        def scrub(text: str) -> str:
            for secret in values:
                if secret in text:
                    text = text.replace(secret, MASK)
            return text

        return _map_strings(value, scrub)

    def frame(self, text: str) -> str:
        """A wire frame fit for a log: secret fields and values masked, long frames cut."""
        text = self.text(_SECRET_FIELDS.sub(r'\1"***"', text))
        return text if len(text) <= LOG_LIMIT else f"{text[:LOG_LIMIT]}... ({len(text)} chars)"

    def events(self, events: list[Event]) -> list[Event]:
        """``events`` with the server text of the ones that can become errors masked; the
        same list, untouched, when none can (nearly always: one type check per event)."""
        # A plain loop over exact types (events are final classes): this runs for every
        # frame read, and a generator per frame costs more than the check itself.
        for event in events:
            if type(event) in _WITH_SERVER_TEXT:
                return [self._event(each) for each in events]
        return events

    def _event(self, event: Event) -> Event:
        if isinstance(event, ConnectFailed):
            return dataclasses.replace(event, message=self.text(event.message))
        if isinstance(event, RequestFailed):
            return dataclasses.replace(
                event, message=self.text(event.message), data=self.value(event.data)
            )
        if isinstance(event, DialFailed):
            return dataclasses.replace(
                event,
                message=self.text(event.message),
                reason=None if event.reason is None else self.text(event.reason),
                source=None if event.source is None else self.text(event.source),
            )
        if isinstance(event, UnknownState):
            return dataclasses.replace(event, raw_state=self.text(event.raw_state))
        if isinstance(event, UnreadableEvent):
            return dataclasses.replace(event, reason=self.text(event.reason))
        return event


def _map_strings(value: Any, scrub: Callable[[str], str]) -> Any:
    """A copy of ``value`` (dicts, lists, scalars) with ``scrub`` applied to every string."""
    root: list[Any] = [None]
    # Each task: (source container, target container, key in the target to fill).
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        source, target, key = stack.pop()
        if isinstance(source, str):
            target[key] = scrub(source)
        elif isinstance(source, dict):
            copy: dict[Any, Any] = {}
            target[key] = copy
            for name, item in source.items():
                name = scrub(name) if isinstance(name, str) else name
                copy[name] = None  # keeps the key order; filled when its task runs
                stack.append((item, copy, name))
        elif isinstance(source, list | tuple):
            items: list[Any] = [None] * len(source)
            target[key] = items
            stack.extend((item, items, index) for index, item in enumerate(source))
        else:
            target[key] = source
    return root[0]
