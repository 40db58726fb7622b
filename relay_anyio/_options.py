"""``RelayClient``'s tunables, grouped: ``Timeouts``, ``Reconnect`` and ``Limits``.

Each group is a small frozen dataclass that checks its own fields when it is built (the
settings the core owns -- ``ping_interval``, ``silence``, ``tombstone_grace``,
``max_queued`` -- are checked once, by the core). ``RelayClient`` also accepts every field
as the flat keyword of the seed API (``connect_timeout=5`` is ``Timeouts(connect=5)``);
``resolve`` turns the flat keywords into groups and refuses a group given together with
one of its own flat keywords (which one should win would be a guess).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from ._errors import ConfigurationError
from ._frames import DEFAULT_MAX_MESSAGE_SIZE, check_max_message_size

__all__ = ["FLAT_OPTIONS", "FlatOptions", "Limits", "Overflow", "Reconnect", "Timeouts", "resolve"]

#: What becomes of an inbound call nobody here can take (``Limits.inbound_overflow``).
Overflow = Literal["pass", "busy"]


def _positive(name: str, value: Any) -> None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{name}: must be a finite number > 0, got {value!r}")


def _count(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigurationError(f"{name}: must be an integer, got {value!r}")
    if value <= 0:
        raise ConfigurationError(f"{name}: must be > 0, got {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Seconds. ``connect``: TCP + TLS + WebSocket handshake, and separately the reply to
    ``signalwire.connect``; ``write``: one socket write; ``request``: the wait for the reply
    to one request (``RequestTimeoutError``; the socket stays up), and ``hangup()``'s wait
    for ``ended`` after its reply; ``cleanup``: the hang-ups made when leaving
    ``async with``; ``close``: the WebSocket close handshake; ``ping_interval``: between
    client pings (``None``: no pings); ``silence``: without any frame from the server before
    the socket counts as dead (``None``: no watchdog); ``drain_on_exit``: leaving
    ``async with`` first drains the client within this long (``None``: no drain)."""

    connect: float = 10.0
    write: float = 10.0
    request: float = 30.0
    cleanup: float = 5.0
    close: float = 2.0
    ping_interval: float | None = 30.0
    silence: float | None = 90.0
    drain_on_exit: float | None = None

    def __post_init__(self) -> None:
        _positive("connect_timeout", self.connect)
        _positive("write_timeout", self.write)
        _positive("request_timeout", self.request)
        _positive("cleanup_timeout", self.cleanup)
        _positive("close_timeout", self.close)
        if self.drain_on_exit is not None:
            _positive("drain_on_exit", self.drain_on_exit)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconnect:
    """``connect_attempts`` failed connects, or ``auth_attempts`` credential refusals, before
    a first session end ``async with`` with an error; between attempts the delay starts at
    ``backoff_initial`` seconds and doubles up to ``backoff_max`` (times a random factor in
    [0.5, 1.0])."""

    connect_attempts: int = 3
    auth_attempts: int = 3
    backoff_initial: float = 1.0
    backoff_max: float = 30.0

    def __post_init__(self) -> None:
        _count("connect_attempts", self.connect_attempts)
        _count("auth_attempts", self.auth_attempts)
        _positive("backoff_initial", self.backoff_initial)
        _positive("backoff_max", self.backoff_max)


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """``max_message_size``: bytes of one inbound message; ``inbound_buffer``: inbound calls
    waiting for ``inbound_calls()``; ``max_handlers``: ``on_call`` handlers running at once;
    ``inbound_overflow``: what becomes of an inbound call beyond either, or arriving while
    the client drains or closes: ``"pass"`` (``calling.pass``: the platform offers it to
    another consumer of the context) or ``"busy"`` (ended with ``busy``);
    ``max_queued``: requests waiting for a connection; ``tombstone_grace``: seconds a
    finished dial's tag is remembered."""

    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    inbound_buffer: int = 64
    max_handlers: int = 64
    inbound_overflow: Overflow = "pass"
    max_queued: int = 10_000
    tombstone_grace: float = 60.0

    def __post_init__(self) -> None:
        check_max_message_size(self.max_message_size)
        buffer = self.inbound_buffer
        if isinstance(buffer, bool) or not isinstance(buffer, int):
            raise ConfigurationError(f"inbound_buffer: must be an int >= 0, got {buffer!r}")
        if buffer < 0:
            raise ConfigurationError(f"inbound_buffer: must be >= 0, got {buffer}")
        _count("max_handlers", self.max_handlers)
        if self.inbound_overflow not in ("pass", "busy"):
            raise ConfigurationError(
                f"inbound_overflow: must be 'pass' or 'busy', got {self.inbound_overflow!r}"
            )


class FlatOptions(TypedDict, total=False):
    """The seed API's flat keywords, each standing for one field of a group."""

    connect_timeout: float
    write_timeout: float
    request_timeout: float
    cleanup_timeout: float
    close_timeout: float
    ping_interval: float | None
    silence_timeout: float | None
    drain_on_exit: float | None
    connect_attempts: int
    auth_attempts: int
    backoff_initial: float
    backoff_max: float
    max_message_size: int
    inbound_buffer: int
    max_handlers: int
    inbound_overflow: Overflow
    max_queued: int
    tombstone_grace: float


#: flat keyword -> (group, field)
FLAT_OPTIONS: Mapping[str, tuple[type[Any], str]] = {
    "connect_timeout": (Timeouts, "connect"),
    "write_timeout": (Timeouts, "write"),
    "request_timeout": (Timeouts, "request"),
    "cleanup_timeout": (Timeouts, "cleanup"),
    "close_timeout": (Timeouts, "close"),
    "ping_interval": (Timeouts, "ping_interval"),
    "silence_timeout": (Timeouts, "silence"),
    "drain_on_exit": (Timeouts, "drain_on_exit"),
    "connect_attempts": (Reconnect, "connect_attempts"),
    "auth_attempts": (Reconnect, "auth_attempts"),
    "backoff_initial": (Reconnect, "backoff_initial"),
    "backoff_max": (Reconnect, "backoff_max"),
    "max_message_size": (Limits, "max_message_size"),
    "inbound_buffer": (Limits, "inbound_buffer"),
    "max_handlers": (Limits, "max_handlers"),
    "inbound_overflow": (Limits, "inbound_overflow"),
    "max_queued": (Limits, "max_queued"),
    "tombstone_grace": (Limits, "tombstone_grace"),
}

_GROUP_KEYWORDS = {Timeouts: "timeouts", Reconnect: "reconnect", Limits: "limits"}


def resolve(
    timeouts: Timeouts | None,
    reconnect: Reconnect | None,
    limits: Limits | None,
    flat: Mapping[str, Any],
) -> tuple[Timeouts, Reconnect, Limits]:
    """The three groups, from the groups given and the flat keywords given."""
    unknown = sorted(set(flat) - set(FLAT_OPTIONS))
    if unknown:
        raise TypeError(f"RelayClient() got an unexpected keyword argument {unknown[0]!r}")
    given: dict[type[Any], Any] = {Timeouts: timeouts, Reconnect: reconnect, Limits: limits}
    fields: dict[type[Any], dict[str, Any]] = {group: {} for group in given}
    for name, value in flat.items():
        group, field = FLAT_OPTIONS[name]
        if given[group] is not None:
            raise ConfigurationError(
                f"{name} was given together with {_GROUP_KEYWORDS[group]}=: "
                f"set it in the {group.__name__} group instead"
            )
        fields[group][field] = value
    built = {
        group: given[group] if given[group] is not None else group(**fields[group])
        for group in given
    }
    for group, value in built.items():
        if not isinstance(value, group):
            keyword = _GROUP_KEYWORDS[group]
            raise ConfigurationError(f"{keyword}: must be a {group.__name__}, got {value!r}")
    return built[Timeouts], built[Reconnect], built[Limits]
