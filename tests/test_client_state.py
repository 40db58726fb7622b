"""The client core's transition tables and the one rule for ending legs, read directly."""

from __future__ import annotations

import pytest
from client_frames import Client, ok

from relay_proto import CallState, LocalProtocolError, SessionState
from relay_proto._state import (
    DIAL,
    SESSION,
    DialInput,
    DialStatus,
    SessionInput,
    end_reason,
    next_dial_status,
    next_session_state,
    reply_means_call_gone,
)


def test_every_session_state_has_a_move_for_a_lost_connection() -> None:
    for state in SessionState:
        assert next_session_state(state, SessionInput.CONNECTION_LOST) is SessionState.IDLE


@pytest.mark.parametrize("state", [SessionState.CONNECTING, SessionState.READY])
def test_a_local_move_not_in_the_table_is_a_local_protocol_error(state: SessionState) -> None:
    assert (state, SessionInput.CONNECT) not in SESSION
    with pytest.raises(LocalProtocolError, match="not allowed in session state"):
        next_session_state(state, SessionInput.CONNECT)


def test_dial_status_only_moves_forward() -> None:
    assert next_dial_status(DialStatus.PENDING, DialInput.ANSWER) is DialStatus.ANSWERED
    assert next_dial_status(DialStatus.ANSWERED, DialInput.KILL) is DialStatus.DEAD
    assert all(status is not DialStatus.PENDING for status in DIAL.values())
    for status, event in [
        (DialStatus.DEAD, DialInput.KILL),
        (DialStatus.ANSWERED, DialInput.ANSWER),
    ]:
        with pytest.raises(LocalProtocolError, match="dial cannot"):
            next_dial_status(status, event)


def test_the_one_rule_for_ending_legs() -> None:
    answered, ringing = CallState.ANSWERED, CallState.RINGING
    # Under a pending dial nothing is ended; under a dead one everything still up is.
    assert end_reason(answered, end_sent=False, dial=DialStatus.PENDING) is None
    assert end_reason(ringing, end_sent=False, dial=DialStatus.DEAD) == "cancel"
    assert end_reason(answered, end_sent=False, dial=DialStatus.DEAD) == "hangup"
    # Under an answered dial only a loser that answered too.
    assert end_reason(answered, end_sent=False, dial=DialStatus.ANSWERED, winner=True) is None
    assert end_reason(ringing, end_sent=False, dial=DialStatus.ANSWERED) is None
    assert end_reason(answered, end_sent=False, dial=DialStatus.ANSWERED) == "hangup"
    # Never twice, never what is ending already; calls of the session are hung up.
    assert end_reason(answered, end_sent=True, dial=DialStatus.DEAD) is None
    assert end_reason(CallState.ENDING, end_sent=False, dial=None) is None
    assert end_reason(ringing, end_sent=False, dial=None) == "hangup"


def test_only_call_level_commands_speak_for_the_call() -> None:
    assert reply_means_call_gone("calling.end", 404)
    assert reply_means_call_gone("calling.play", 410)
    assert not reply_means_call_gone("calling.play.stop", 404)
    assert not reply_means_call_gone("calling.end", 500)


def test_a_reply_to_a_request_still_waiting_for_a_socket_settles_it() -> None:
    # A peer answering an id it was never sent: the request is done and never goes out.
    c = Client()
    c.connect()
    c.core.connection_lost(now=1)
    rid = c.core.execute("signalwire.receive", {"contexts": ["x"]})
    [done] = c.feed(ok(rid))
    assert done.request_id == rid  # type: ignore[union-attr]
    c.connect()
    assert c.sent() == []
