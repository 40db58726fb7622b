"""What ``relay dial --collect`` and ``relay sms`` do once connected (``_cli`` runs them).

``collect_spec`` turns the ``--collect`` options into the collect params, checked before
anything is dialled; ``read_digits`` plays the prompt and reads the digits; ``heard`` says
what was read in one word (or the digits); ``MessageProgress`` is the ``on_event`` hook
that prints a message's states. Usage errors are ``ConfigurationError`` (exit code 2).
"""

from __future__ import annotations

import time
from typing import Any, TextIO

from relay_proto import (
    ActionResult,
    CollectKind,
    CollectResult,
    Event,
    MessageState,
    MessageStateChanged,
)

from ._calls import Call
from ._errors import ConfigurationError

__all__ = ["MessageProgress", "collect_spec", "heard", "read_digits"]

_DTMF = frozenset("0123456789*#")
_MAX_DIGITS = 100


def collect_spec(
    count: str, terminators: str | None, initial_timeout: float | None
) -> dict[str, Any]:
    """``--collect N`` (``count``), ``--terminators`` and ``--collect-timeout`` (already
    checked seconds) as ``play_and_collect``'s ``collect`` params."""
    if not count.isdigit() or not 1 <= int(count) <= _MAX_DIGITS:
        raise ConfigurationError(
            f"--collect must be a number of digits from 1 to {_MAX_DIGITS}, got {count!r}"
        )
    digits: dict[str, Any] = {"max": int(count)}
    if terminators is not None:
        if not terminators or not set(terminators) <= _DTMF:
            raise ConfigurationError(
                f"--terminators must be DTMF digits (0-9, *, #), got {terminators!r}"
            )
        digits["terminators"] = terminators
    spec: dict[str, Any] = {"digits": digits}
    if initial_timeout is not None:
        spec["initial_timeout"] = initial_timeout
    return spec


async def read_digits(call: Call, say: str | None, spec: dict[str, Any]) -> str:
    """Read digits on ``call``, after ``say`` as a TTS prompt (``play_and_collect``) or
    without one (``collect``); return what was heard (``heard``)."""
    if say:
        prompt = [{"type": "tts", "params": {"text": say}}]
        action: Any = await call.play_and_collect(prompt, spec)
    else:
        action = await call.collect(**spec)
    return heard(await action.wait())


def heard(result: ActionResult) -> str:
    """The digits (``1234``, ``1234 (terminator #)``), else the result's kind
    (``no_input``, ``no_match``, ...), ``call ended``, or the state of a collect that
    ended without a result."""
    if result.call_ended:
        return "call ended"
    if not isinstance(result, CollectResult):
        return result.state
    if result.kind == CollectKind.DIGIT:
        digits = result.digits or ""
        return f"{digits} (terminator {result.terminator})" if result.terminator else digits
    return str(result.kind)


class MessageProgress:
    """Prints one line per state of the message being sent, with elapsed time. The first
    state, ``queued``, is the send's own (the core reports only the moves after it), so it
    is printed before the first later state or when the send returns, whichever is first."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._start = time.monotonic()
        self._last: str | None = None

    def show(self, state: str, reason: str | None = None) -> None:
        if self._last is None and state != MessageState.QUEUED:
            self.show(MessageState.QUEUED)
        if state == self._last:
            return
        self._last = state
        elapsed = time.monotonic() - self._start
        print(f"  {elapsed:6.2f}s  {state}{f' ({reason})' if reason else ''}", file=self._out)

    def __call__(self, event: Event) -> None:
        if isinstance(event, MessageStateChanged):
            self.show(event.message.state, event.message.reason)
