"""Every transition table of the client core, and the one rule for ending legs.

Like h11's ``_state.py``: the connection and the tracker ask this module what may happen
next; they never decide it themselves. It owns no mutable state.

* The session: ``SESSION`` maps ``(SessionState, SessionInput)`` to the next state. A local
  input (``CONNECT``, ``CONNECTION_LOST``) not in the table raises ``LocalProtocolError``;
  the remote inputs are only fed where the table has them (a connect reply is matched by
  its request id, so it only ever arrives while a connect is outstanding).
* A dial: ``DIAL`` maps ``(DialStatus, DialInput)`` to the next status: PENDING ->
  ANSWERED | DEAD, ANSWERED -> DEAD (abandoned after the answer), never back.
* Calls and legs: ``CALL_ORDER`` is the forward order (``CallState.rank`` is the index): a
  reported state moves a call forward only if its rank is higher (duplicates and backward
  moves never do; the tracker compares the ranks inline, on every state event).
* Plays: ``PLAY_MOVES`` lists where a play may go from where it is (terminal: nowhere).
* ``end_reason``: THE rule that decides whether a leg or call must be ended now to keep the
  no-orphan promise, and with which reason (``cancel`` before answer, ``hangup`` after).
"""

from __future__ import annotations

import enum

from ._errors import LocalProtocolError
from ._events import CallState, PlayState, SessionState


class SessionInput(enum.Enum):
    CONNECT = "connect"  # local: connect() on a fresh socket
    CONNECTION_LOST = "connection_lost"  # local: the socket is gone
    CONNECTED = "connected"  # remote: the connect reply succeeded
    CONNECT_REFUSED = "connect_refused"  # remote: the connect reply was an error
    DISCONNECT_REQUESTED = "disconnect_requested"  # remote: signalwire.disconnect


_S, _I = SessionState, SessionInput

SESSION: dict[tuple[SessionState, SessionInput], SessionState] = {
    (_S.IDLE, _I.CONNECT): _S.CONNECTING,
    (_S.CONNECTING, _I.CONNECTED): _S.READY,
    # Asked to drain while the connect was on its way: stay draining.
    (_S.DRAINING, _I.CONNECTED): _S.DRAINING,
    (_S.CONNECTING, _I.CONNECT_REFUSED): _S.IDLE,
    (_S.DRAINING, _I.CONNECT_REFUSED): _S.IDLE,
    # A disconnect request with no socket (a frame fed after connection_lost) changes nothing.
    (_S.IDLE, _I.DISCONNECT_REQUESTED): _S.IDLE,
    (_S.CONNECTING, _I.DISCONNECT_REQUESTED): _S.DRAINING,
    (_S.READY, _I.DISCONNECT_REQUESTED): _S.DRAINING,
    (_S.DRAINING, _I.DISCONNECT_REQUESTED): _S.DRAINING,
    (_S.IDLE, _I.CONNECTION_LOST): _S.IDLE,
    (_S.CONNECTING, _I.CONNECTION_LOST): _S.IDLE,
    (_S.READY, _I.CONNECTION_LOST): _S.IDLE,
    (_S.DRAINING, _I.CONNECTION_LOST): _S.IDLE,
}


def next_session_state(state: SessionState, event: SessionInput) -> SessionState:
    """The session's next state; a move not in ``SESSION`` is the caller's mistake."""
    try:
        return SESSION[state, event]
    except KeyError:
        raise LocalProtocolError(
            f"{event.value} is not allowed in session state {state.value}"
        ) from None


class DialStatus(enum.Enum):
    PENDING = "pending"
    ANSWERED = "answered"
    DEAD = "dead"

    # Identity hash (members are singletons and compare by identity): ``Enum.__hash__`` is
    # a Python-level call, and ``DIAL`` is looked up by (status, input) on every dial.
    __hash__ = object.__hash__


class DialInput(enum.Enum):
    ANSWER = "answer"  # the server reported a winner
    KILL = "kill"  # failed, refused, timed out, abandoned or lost with the session

    __hash__ = object.__hash__  # as DialStatus


DIAL: dict[tuple[DialStatus, DialInput], DialStatus] = {
    (DialStatus.PENDING, DialInput.ANSWER): DialStatus.ANSWERED,
    (DialStatus.PENDING, DialInput.KILL): DialStatus.DEAD,
    (DialStatus.ANSWERED, DialInput.KILL): DialStatus.DEAD,
}


def next_dial_status(status: DialStatus, event: DialInput) -> DialStatus:
    try:
        return DIAL[status, event]
    except KeyError:
        raise LocalProtocolError(f"a {status.value} dial cannot {event.value}") from None


#: The forward order of call (and leg) states; ``CallState.rank`` is the index here.
CALL_ORDER: tuple[CallState, ...] = (
    CallState.CREATED,
    CallState.RINGING,
    CallState.ANSWERED,
    CallState.ENDING,
    CallState.ENDED,
)
assert all(state.rank == index for index, state in enumerate(CALL_ORDER))

_ENDING = CallState.ENDING.rank


#: Where a play may move from its current state (None: started, no event seen yet).
PLAY_MOVES: dict[PlayState | None, frozenset[PlayState]] = {
    None: frozenset(PlayState),
    PlayState.PLAYING: frozenset(PlayState) - {PlayState.PLAYING},
    PlayState.PAUSED: frozenset(PlayState) - {PlayState.PAUSED},
    PlayState.FINISHED: frozenset(),
    PlayState.ERROR: frozenset(),
}


def end_reason(
    state: CallState, *, end_sent: bool, dial: DialStatus | None, winner: bool = False
) -> str | None:
    """THE rule for ending legs: the ``calling.end`` reason if this leg must end now, else None.

    ``dial`` is the status of the dial the leg belongs to, or None for a call that must go
    whatever it is (its session was lost, its ``max_duration`` passed). Nothing that has
    already been ended (or is ending) is ended twice. Under a pending dial nothing is
    ended (the dial decides); under an answered dial only a loser that answered too (the
    server cancels ringing losers itself); under a dead dial, and outside any dial, every
    leg still up. A leg of our dial: ``cancel`` before answer, ``hangup`` after; a call of
    the session (handed over, or inbound and still ringing at us): ``hangup``.
    """
    if end_sent or state.rank >= _ENDING or dial is DialStatus.PENDING:
        return None
    if dial is DialStatus.ANSWERED and (winner or state is not CallState.ANSWERED):
        return None
    if dial is None or state is CallState.ANSWERED:
        return "hangup"
    return "cancel"


def reply_means_call_gone(method: str, code: int) -> bool:
    """Whether a 404/410 reply to a call command means the call itself is gone.

    Only call-level commands (``calling.end``, ``calling.answer``, a verb's start such as
    ``calling.play``) speak for the call; an action's control (``calling.<verb>.<control>``,
    e.g. ``calling.play.stop``) speaks for the action only: its 404 says the play is gone.
    """
    return code in _GONE_CODES and method.count(".") == 1


_GONE_CODES = frozenset({404, 410})
