"""Client core, session level: connect, resume, disconnect, server requests, liveness."""

from __future__ import annotations

import pytest
from client_frames import PHONE_A, Client, error, event, ok, request, result, state_params

from relay_proto import (
    CallLost,
    CallState,
    ClientConnection,
    Connected,
    ConnectFailed,
    DialFailed,
    DialFailureCause,
    DisconnectRequested,
    LivenessLost,
    LocalProtocolError,
    RemoteProtocolError,
    RequestFailed,
    RequestSucceeded,
    SessionState,
    UnhandledEvent,
    UnreadableEvent,
)
from relay_proto._ids import uuid4

# ---------------------------------------------------------------------------- connect


def test_connect_with_project_and_token() -> None:
    c = Client(contexts=["office", "home"], agent="relay-test/9")
    frame, events = c.connect(protocol="signalwire_SIG_7d1b")
    assert frame == {
        "jsonrpc": "2.0",
        "id": "r1",
        "method": "signalwire.connect",
        "params": {
            "version": {"major": 2, "minor": 0, "revision": 0},
            "agent": "relay-test/9",
            "event_acks": True,
            "authentication": {"project": "P-UUID", "token": "PT-secret"},
            "contexts": ["office", "home"],
        },
    }
    assert events == [
        Connected(
            protocol="signalwire_SIG_7d1b",
            identity="id@example",
            session_restored=False,
            resume_requested=False,
        )
    ]
    assert c.core.state is SessionState.READY
    assert c.core.protocol == "signalwire_SIG_7d1b"
    assert c.core.identity == "id@example"
    assert c.sent() == []


def test_connect_with_jwt_and_no_contexts() -> None:
    c = Client(project=None, token=None, jwt_token="JWT-xyz")
    frame, _ = c.connect()
    assert frame["params"]["authentication"] == {"jwt_token": "JWT-xyz"}
    assert "contexts" not in frame["params"]
    assert frame["params"]["agent"] == "relay-proto/0.1"


def test_connect_result_identity_optional_and_unknown_keys_ignored() -> None:
    c = Client()
    c.core.connect(now=0)
    c.sent()
    body = {"protocol": "p1", "authorization": {}, "ice_servers": [], "sessionid": "s"}
    [connected] = c.feed(result("r1", body))
    assert isinstance(connected, Connected)
    assert connected.identity is None
    assert connected.raw == body


@pytest.mark.parametrize(
    "kwargs",
    [
        {"project": None, "token": None},
        {"project": "P", "token": ""},
        {"jwt_token": "J"},  # plus the default project/token: both given
        {"jwt_token": ""},
        {"contexts": "office"},
        {"contexts": ["ok", ""]},
        {"agent": ""},
        {"tombstone_grace": 0},
        {"ping_interval": -1},
        {"max_ping_failures": 0},
        {"silence_timeout": float("nan")},
        {"max_queued": 0},
    ],
)
def test_constructor_rejects_bad_configuration(kwargs: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        Client(**kwargs)


def test_connect_twice_is_refused() -> None:
    c = Client()
    c.core.connect(now=0)
    with pytest.raises(LocalProtocolError, match="idle"):
        c.core.connect(now=0)
    assert len(c.sent()) == 1


def test_connect_failure_is_an_event() -> None:
    c = Client()
    c.core.connect(now=0)
    c.sent()
    events = c.feed(error("r1", -32002, "authentication failed"))
    assert events == [
        ConnectFailed(code=-32002, message="authentication failed", retry_fresh=False)
    ]
    assert c.core.state is SessionState.IDLE
    # A late duplicate of the reply is dropped quietly.
    assert c.feed(error("r1", -32002, "authentication failed")) == []


def test_malformed_connect_result_is_a_protocol_error_and_the_real_one_still_counts() -> None:
    c = Client()
    c.core.connect(now=0)
    c.sent()
    with pytest.raises(RemoteProtocolError):
        c.feed(result("r1", {"identity": "x"}))
    with pytest.raises(RemoteProtocolError):
        c.feed(result("r1", ["not", "an", "object"]))
    assert c.core.state is SessionState.CONNECTING
    [connected] = c.feed(result("r1", {"protocol": "p1"}))
    assert isinstance(connected, Connected)


# ---------------------------------------------------------------------------- resume


def _resumable(**kwargs: object) -> Client:
    c = Client(**kwargs)
    c.connect(protocol="proto-1")
    c.event("signalwire.authorization.state", {"authorization_state": "BLOB-1"})
    c.event("signalwire.authorization.state", {"authorization_state": ""})  # ignored
    c.event("signalwire.authorization.state", {"authorization_state": 7})  # ignored
    return c


def test_authorization_state_is_sent_on_reconnect_and_never_shown() -> None:
    c = _resumable()
    assert "BLOB-1" not in repr(c.core)
    assert "PT-secret" not in repr(c.core)
    assert c.core.connection_lost(now=1) == []
    frame, events = c.connect(protocol="proto-1", session_restored=True)
    assert frame["params"]["protocol"] == "proto-1"
    assert frame["params"]["authorization_state"] == "BLOB-1"
    assert events == [
        Connected(
            protocol="proto-1", identity="id@example", session_restored=True, resume_requested=True
        )
    ]


def test_secrets_lists_the_credential_and_the_blob_for_masking() -> None:
    c = Client()
    assert c.core.secrets == ("PT-secret",)  # the project is not a secret
    c = _resumable()
    assert c.core.secrets == ("PT-secret", "BLOB-1")
    assert Client(jwt_token="JWT-xyz", project=None, token=None).core.secrets == ("JWT-xyz",)


def test_a_blob_let_go_is_still_a_secret_for_masking() -> None:
    # A refused resume drops the blob while its reply is read; the server may have echoed
    # the blob in that very reply, so it must still be listed for masking afterwards.
    c = _resumable()
    c.event("signalwire.authorization.state", {"authorization_state": "BLOB-2"})
    c.core.connection_lost(now=1)
    request_id = c.core.connect(now=1)
    c.sent()
    c.feed(error(request_id, -32003, "stale authorization state BLOB-2"))
    assert "BLOB-2" in c.core.secrets
    assert "BLOB-1" in c.core.secrets


def test_resume_without_a_blob_sends_only_the_protocol() -> None:
    c = Client()
    c.connect(protocol="proto-1")
    c.core.connection_lost(now=1)
    frame, _ = c.connect(protocol="proto-1")
    assert frame["params"]["protocol"] == "proto-1"
    assert "authorization_state" not in frame["params"]


def test_stale_resume_failure_asks_for_a_fresh_retry() -> None:
    c = _resumable()
    _tag, _ = c.dial()
    c.core.connection_lost(now=1)
    c.core.connect(now=1)
    c.sent()
    events = c.feed(error("r3", -32003, "stale authorization state"))
    assert events[0] == ConnectFailed(
        code=-32003, message="stale authorization state", retry_fresh=True
    )
    assert isinstance(events[1], DialFailed)
    assert events[1].cause is DialFailureCause.CONNECTION_LOST
    assert c.core.protocol is None
    frame, _ = c.connect(protocol="proto-2")
    assert "protocol" not in frame["params"]
    assert "authorization_state" not in frame["params"]


@pytest.mark.parametrize("code", [-32002, -32602])
def test_other_stale_codes_also_retry_fresh(code: int) -> None:
    c = _resumable()
    c.core.connection_lost(now=1)
    c.core.connect(now=1)
    [frame] = c.sent()
    [failed] = c.feed(error(frame["id"], code, "no"))
    assert failed == ConnectFailed(code=code, message="no", retry_fresh=True)


def test_generic_failure_of_a_resume_keeps_the_session_state() -> None:
    c = _resumable()
    c.core.connection_lost(now=1)
    c.core.connect(now=1)
    [frame] = c.sent()
    [failed] = c.feed(error(frame["id"], -32000, "try later"))
    assert failed == ConnectFailed(code=-32000, message="try later", retry_fresh=False)
    assert c.core.protocol == "proto-1"


def _with_a_live_session() -> tuple[Client, str, str]:
    """A session with a pending dial, an answered call and a user request in flight."""
    c = Client()
    c.connect(protocol="proto-1")
    c.answered_call("CALL-1")
    c.sent()
    pending, frame = c.dial([[PHONE_A]])
    c.feed(ok(frame["id"]))
    c.state("CALL-2", "ringing", tag=pending)
    request_id = c.core.answer("CALL-1")
    c.sent()
    return c, pending, request_id


@pytest.mark.parametrize("restored_flag", [True, None])
def test_resume_restored_keeps_dials_and_calls(restored_flag: bool | None) -> None:
    c, pending, request_id = _with_a_live_session()
    c.core.connection_lost(now=5)
    c.now = 5
    extra = {} if restored_flag is None else {"session_restored": restored_flag}
    _, events = c.connect(protocol="proto-1", **extra)
    # The answer request's reply was lost: it fails; nothing else does.
    assert events[1:] == [
        RequestFailed(
            request_id=request_id,
            method="calling.answer",
            code=-1,
            message="connection lost before the reply arrived",
            connection_lost=True,
        )
    ]
    assert events[0] == Connected(
        protocol="proto-1", identity="id@example", session_restored=True, resume_requested=True
    )
    assert c.core.pending_dials == {pending}
    assert c.core.live_call_ids == {"CALL-1"}
    # The dial is reconciled by its tag, not re-sent.
    assert c.sent() == []
    assert c.feed(ok(request_id)) == []  # a late reply to the failed request is dropped
    *_, answered = c.dial_event(pending, "answered", call_id="CALL-2")
    assert answered.call.call_id == "CALL-2"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("protocol", "extra"),
    [
        ("proto-2", {}),
        ("proto-1", {"session_restored": False}),
        ("proto-2", {"session_restored": False}),
    ],
)
def test_resume_refused_fails_what_was_lost(protocol: str, extra: dict[str, object]) -> None:
    c, pending, request_id = _with_a_live_session()
    c.event("signalwire.authorization.state", {"authorization_state": "BLOB"})
    c.core.connection_lost(now=5)
    _, events = c.connect(protocol=protocol, **extra)
    assert events[0] == Connected(
        protocol=protocol, identity="id@example", session_restored=False, resume_requested=True
    )
    kinds = [type(e) for e in events[1:]]
    assert kinds == [RequestFailed, DialFailed, CallLost]
    assert events[1] == RequestFailed(
        request_id=request_id,
        method="calling.answer",
        code=-1,
        message="connection lost before the reply arrived",
        connection_lost=True,
    )
    failed = events[2]
    assert isinstance(failed, DialFailed)
    assert failed.tag == pending
    assert failed.cause is DialFailureCause.CONNECTION_LOST
    assert [leg.call_id for leg in failed.legs] == ["CALL-2"]
    assert events[3] == CallLost(call_id="CALL-1")
    assert c.core.pending_dials == frozenset()
    assert c.core.live_call_ids == frozenset()
    # Nothing the client knew of is left up: the ringing leg and the call are hung up.
    hangups = c.sent()
    assert sorted(
        (f["method"], f["params"]["call_id"], f["params"]["reason"]) for f in hangups
    ) == [
        ("calling.end", "CALL-1", "hangup"),
        ("calling.end", "CALL-2", "cancel"),
    ]
    # The old blob belonged to the refused session: not sent again.
    c.core.connection_lost(now=6)
    frame, _ = c.connect(protocol=protocol)
    assert frame["params"]["protocol"] == protocol
    assert "authorization_state" not in frame["params"]


def test_requests_made_while_disconnected_wait_and_survive_a_reset() -> None:
    c = Client()
    c.connect(protocol="proto-1")
    c.answered_call("CALL-1")
    c.sent()
    c.core.connection_lost(now=1)
    held_dial = c.core.dial([[PHONE_A]], now=1)
    held_answer = c.core.answer("CALL-1")
    held_ping = c.core.ping(now=1)
    assert c.sent() == []
    assert c.core.pending_request_count == 3
    _, events = c.connect(protocol="proto-2")
    # The call is lost with the session, so the command waiting for it fails too.
    assert (
        RequestFailed(
            request_id=held_answer,
            method="calling.answer",
            code=-1,
            message="connection lost before the reply arrived",
            connection_lost=True,
        )
        in events
    )
    assert CallLost(call_id="CALL-1") in events
    out = c.sent()
    assert [f["method"] for f in out] == ["calling.end", "calling.dial", "signalwire.ping"]
    assert out[0]["params"]["call_id"] == "CALL-1"
    assert out[1]["params"]["tag"] == held_dial
    assert out[2]["id"] == held_ping
    assert c.core.pending_dials == {held_dial}


# ---------------------------------------------------------------------------- disconnect


@pytest.mark.parametrize("restart", [False, True])
def test_disconnect_holds_requests_until_the_next_connect(restart: bool) -> None:
    c = Client()
    c.connect(protocol="proto-1")
    tag, frame = c.dial()
    c.feed(ok(frame["id"]))
    params = {"restart": True} if restart else {}
    assert c.feed(request("d1", "signalwire.disconnect", params)) == [
        DisconnectRequested(restart=restart)
    ]
    assert c.sent() == [{"jsonrpc": "2.0", "id": "d1", "result": {}}]
    assert c.core.state is SessionState.DRAINING
    held = c.core.ping(now=0)
    c.state("CALL-9", "ringing", tag=tag)  # events still acked while draining
    assert c.sent() == []
    c.core.connection_lost(now=1)
    frame, events = c.connect(protocol="proto-1" if not restart else "proto-2")
    assert ("protocol" in frame["params"]) is not restart
    assert events[0].session_restored is not restart  # type: ignore[union-attr]
    out = c.sent()
    if restart:
        assert isinstance(events[1], DialFailed)
        hangup = out.pop(0)  # the leg seen under the failed dial is ended
        assert (hangup["method"], hangup["params"]["call_id"]) == ("calling.end", "CALL-9")
    else:
        assert events[1:] == []
    [ping] = out
    assert ping["id"] == held
    assert ping["method"] == "signalwire.ping"


def test_disconnect_while_connecting_keeps_requests_held() -> None:
    c = Client()
    c.core.connect(now=0)
    c.sent()
    [disc] = c.feed(request("d1", "signalwire.disconnect", {}))
    assert disc == DisconnectRequested(restart=False)
    c.sent()
    held = c.core.ping(now=0)
    [connected] = c.feed(result("r1", {"protocol": "p1"}))
    assert isinstance(connected, Connected)
    assert c.core.state is SessionState.DRAINING
    assert c.sent() == []
    c.core.connection_lost(now=1)
    c.connect(protocol="p1")
    assert [f["id"] for f in c.sent()] == [held]


def test_disconnect_whose_params_are_not_an_object_is_answered_and_ignored() -> None:
    c = Client()
    c.connect()
    assert c.feed(request("d1", "signalwire.disconnect", ["restart"])) == []
    assert c.sent() == [{"jsonrpc": "2.0", "id": "d1", "result": {}}]
    assert c.core.state is SessionState.READY


def test_credentials_never_appear_in_validation_errors() -> None:
    with pytest.raises(LocalProtocolError) as info:
        ClientConnection(project="p", token=b"PT-secret")  # type: ignore[arg-type]
    assert "PT-secret" not in str(info.value)
    assert "bytes" in str(info.value)
    with pytest.raises(LocalProtocolError) as info:
        ClientConnection(jwt_token=["JWT-secret"])  # type: ignore[arg-type]
    assert "JWT-secret" not in str(info.value)


def test_disconnect_notification_while_idle() -> None:
    c = Client()
    assert c.feed(request(None, "signalwire.disconnect", {"restart": "yes"})) == [
        DisconnectRequested(restart=False)
    ]
    assert c.core.state is SessionState.IDLE
    assert c.sent() == []


# ---------------------------------------------------------------------------- server requests


def test_every_event_is_acked_even_unknown_ones() -> None:
    c = Client()
    c.connect()
    events = c.event("calling.conference", {"call_id": "X"}, timestamp=12)
    assert events == [
        UnhandledEvent(event_type="calling.conference", timestamp=12.0, params={"call_id": "X"})
    ]
    # Events for calls this session does not know: acked, ignored.
    assert c.state("UNKNOWN", "answered", tag=None) == []
    assert c.state("UNKNOWN", "answered", tag="not-ours") == []
    # An action this session did not start through the core: handed on as it came.
    [play] = c.event("calling.call.play", {"control_id": "nope", "state": "playing"})
    assert isinstance(play, UnhandledEvent)
    assert c.dial_event("not-ours", "answered", call_id="X") == []
    assert c.dial_event("not-ours", "failed") == []
    # params that are not an object are ignored after the ack.
    [ack] = (c.feed(request("e1", "signalwire.event", ["x"])), c.sent())[1]
    assert ack == {"jsonrpc": "2.0", "id": "e1", "result": {}}
    # Integer ids are echoed as they came.
    c.feed(event(5, "x.y", {}))
    assert c.sent() == [{"jsonrpc": "2.0", "id": 5, "result": {}}]
    # A notification (no id) cannot be acked and is still processed.
    assert len(c.feed(event(None, "x.y", {}))) == 1
    assert c.sent() == []


@pytest.mark.parametrize("stamp", [None, "12", True, 10**400])
def test_event_timestamps_that_are_not_numbers_become_none(stamp: object) -> None:
    c = Client()
    [unhandled] = c.event("x.y", {}, timestamp=stamp)
    assert isinstance(unhandled, UnhandledEvent)
    assert unhandled.timestamp is None


def test_bad_event_envelope_is_acked_then_reported() -> None:
    c = Client()
    [first] = c.feed(request("e1", "signalwire.event", {"event_type": 3, "params": {}}))
    assert first == UnreadableEvent(
        event_type=None,
        reason="signalwire.event without a string event_type",
        params={"event_type": 3, "params": {}},
    )
    [second] = c.feed(request("e2", "signalwire.event", {"event_type": "x", "params": []}))
    assert isinstance(second, UnreadableEvent)
    assert (second.event_type, second.reason) == ("x", "signalwire.event without a params object")
    assert [f["id"] for f in c.sent()] == ["e1", "e2"]


def test_ping_is_echoed() -> None:
    c = Client()
    c.connect()
    assert c.feed(request("p1", "signalwire.ping", {"timestamp": 17.5, "payload": "x"})) == []
    assert c.sent() == [
        {"jsonrpc": "2.0", "id": "p1", "result": {"timestamp": 17.5, "payload": "x"}}
    ]
    c.feed(request("p2", "signalwire.ping", {}))
    c.feed(request("p3", "signalwire.ping", "junk"))
    c.feed(request(None, "signalwire.ping", {}))
    assert c.sent() == [
        {"jsonrpc": "2.0", "id": "p2", "result": {}},
        {"jsonrpc": "2.0", "id": "p3", "result": {}},
    ]


def test_unknown_server_method() -> None:
    c = Client()
    assert c.feed(request("q1", "signalwire.frobnicate", {})) == []
    [reply] = c.sent()
    assert reply["id"] == "q1"
    assert reply["error"]["code"] == -32601
    assert c.feed(request(None, "signalwire.frobnicate", {})) == []
    assert c.sent() == []


# ---------------------------------------------------------------------------- replies


def test_reply_rules() -> None:
    c = Client()
    c.connect()
    rid = c.core.ping(now=0)
    assert c.sent_one()["params"] == {"timestamp": 0}
    assert c.feed(result(rid, {"timestamp": 0})) == [
        RequestSucceeded(request_id=rid, method="signalwire.ping", result={"timestamp": 0})
    ]
    # A recently finished id: dropped. Never issued: a protocol violation.
    assert c.feed(result(rid)) == []
    with pytest.raises(RemoteProtocolError, match="never made"):
        c.feed(result("r999"))
    with pytest.raises(RemoteProtocolError, match="never made"):
        c.feed(error("r999", -32000, "x"))
    with pytest.raises(RemoteProtocolError, match="without an id"):
        c.feed(error(None, -32700, "parse error"))
    # A result that is not an object is still a success.
    rid = c.core.execute("signalwire.custom", {"a": [1, 2]})
    assert c.sent_one()["params"] == {"a": [1, 2]}
    [done] = c.feed(result(rid, "fine"))
    assert done == RequestSucceeded(request_id=rid, method="signalwire.custom", result={})
    # Non-2xx codes and error objects are failures.
    rid = c.core.execute("signalwire.custom", {})
    [failed] = c.feed(result(rid, {"code": "abc", "message": "weird"}))
    assert failed == RequestFailed(
        request_id=rid, method="signalwire.custom", code=-1, message="weird"
    )
    rid = c.core.execute("signalwire.custom", {})
    [failed] = c.feed(error(rid, -32602, "bad", data={"why": 1}))
    assert isinstance(failed, RequestFailed)
    assert (failed.code, failed.data, failed.call_gone) == (-32602, {"why": 1}, False)


def test_subscribe_and_unsubscribe() -> None:
    c = Client(contexts=["a"])
    c.connect()
    assert c.core.subscribe([]) is None
    assert c.core.unsubscribe([]) is None
    rid = c.core.subscribe(["b", "a"])
    assert c.sent_one() == {
        "jsonrpc": "2.0",
        "id": rid,
        "method": "signalwire.receive",
        "params": {"contexts": ["b", "a"]},
    }
    assert rid is not None
    c.feed(result(rid, {"code": "200"}))  # recorded for later connects once accepted
    c.core.unsubscribe(["a"])
    assert c.sent_one()["method"] == "signalwire.unreceive"
    c.core.connection_lost(now=1)
    frame, _ = c.connect()
    assert frame["params"]["contexts"] == ["b"]


def test_dial_executed_by_hand_is_an_ordinary_request() -> None:
    c = Client()
    c.connect()
    rid = c.core.execute("calling.dial", {"tag": "t", "devices": [[PHONE_A]]})
    c.sent()
    [failed] = c.feed(result(rid, {"code": "500", "message": "no"}))
    assert isinstance(failed, RequestFailed)
    assert failed.code == 500


# ---------------------------------------------------------------------------- liveness


def test_ping_schedule_and_three_missed_pings() -> None:
    c = Client(ping_interval=30, max_ping_failures=3)
    c.connect()
    assert c.core.next_deadline() == 30
    assert c.tick(29) == []
    assert c.tick(30) == []
    [ping] = c.sent()
    assert ping["method"] == "signalwire.ping"
    assert ping["params"] == {"timestamp": 30}
    assert c.feed(result(ping["id"], {})) == []  # internal: no event
    assert c.core.next_deadline() == 60
    for when in (60, 90, 120):
        assert c.tick(when) == []
        assert c.sent_one()["method"] == "signalwire.ping"
    assert c.tick(150) == [LivenessLost(reason="3 pings went unanswered")]
    assert c.sent() == []
    assert c.core.next_deadline() is None
    assert c.tick(500) == []  # reported once
    # A late pong for a ping given up on is dropped quietly.
    assert c.feed(result("r4")) == []


@pytest.mark.parametrize("success", [True, False])
def test_missed_pings_reset_only_after_a_successful_answer(success: bool) -> None:
    c = Client(ping_interval=10, max_ping_failures=2)
    c.connect()
    c.tick(10)
    c.sent()
    assert c.tick(20) == []  # first ping missed
    second = c.sent_one()
    c.feed(result(second["id"]) if success else error(second["id"], -32000, "busy"))
    assert c.tick(30) == []
    c.sent()
    if success:
        assert c.tick(40) == []  # one miss since the last success
        c.sent()
    assert [type(e) for e in c.tick(50)] == [LivenessLost]


def test_pings_pause_while_draining_and_stop_while_idle() -> None:
    c = Client(ping_interval=10)
    c.connect()
    c.feed(request("d", "signalwire.disconnect", {}))
    c.sent()
    assert c.core.next_deadline() is None
    assert c.tick(100) == []
    assert c.sent() == []
    c.core.connection_lost(now=100)
    assert c.core.next_deadline() is None
    assert c.tick(200) == []


def test_silence_timeout() -> None:
    c = Client(silence_timeout=90, ping_interval=30)
    c.core.connect(now=0)
    c.sent()
    assert c.core.next_deadline() == 90
    c.now = 50
    c.feed(result("r1", {"protocol": "p"}))
    assert c.core.next_deadline() == 80  # the first ping
    c.now = 70
    c.feed(request("p", "signalwire.ping", {}))
    c.sent()
    c.tick(80)
    c.sent()
    assert c.core.next_deadline() == 110
    c.tick(110)
    c.sent()
    [lost] = c.tick(160)
    assert lost == LivenessLost(reason="no frame from the server for 90 s")
    # A new socket starts afresh.
    c.core.connection_lost(now=161)
    c.now = 161
    c.connect()
    assert c.core.next_deadline() == 191


def test_per_request_slowness_never_kills_the_socket() -> None:
    c = Client()
    c.connect()
    c.core.execute("calling.slow", {})
    c.sent()
    assert c.core.next_deadline() is None
    assert c.tick(10_000) == []


# ---------------------------------------------------------------------------- garbage


GARBAGE: list[str | bytes] = [
    b'{"jsonrpc":"2.0"}',
    "not json",
    "",
    "[]",
    "42",
    '"text"',
    "null",
    '{"jsonrpc":"2.0","id":true,"result":{}}',
    '{"jsonrpc":"2.0","id":[1],"result":{}}',
    '{"jsonrpc":"2.0","method":5}',
    '{"jsonrpc":"2.0","id":"x"}',
    '{"jsonrpc":"2.0","id":"x","error":"bad"}',
    '{"jsonrpc":"2.0","id":"x","result":NaN}',
    '{"jsonrpc":"2.0","id":"x","result":1e999}',
    "[" * 100_000,
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_raises_remote_protocol_error_only_and_the_session_carries_on(
    garbage: str | bytes,
) -> None:
    c = Client()
    c.connect()
    tag, frame = c.dial()
    c.feed(ok(frame["id"]))
    with pytest.raises(RemoteProtocolError):
        c.feed(garbage)
    c.sent()
    [answered, *_] = c.dial_event(tag, "answered", call_id="CALL-1")
    assert answered is not None
    assert c.core.live_call_ids == {"CALL-1"}


# ---------------------------------------------------------------------------- queue bound


def test_queue_bound_refuses_user_requests_but_not_cleanup() -> None:
    c = Client(max_queued=2, tombstone_grace=5)
    c.connect()
    tag, frame = c.dial()
    c.feed(ok(frame["id"]))
    c.state("CALL-1", "ringing", tag=tag)
    c.core.connection_lost(now=1)
    c.core.ping(now=1)
    c.core.dial([[PHONE_A]], now=1)
    with pytest.raises(LocalProtocolError, match="max_queued"):
        c.core.ping(now=1)
    with pytest.raises(LocalProtocolError, match="max_queued"):
        c.core.dial([[PHONE_A]], now=1, tag="refused")
    assert "refused" not in c.core.pending_dials
    # Cleanup is exempt: cancelling the first dial queues a hang-up beyond the bound.
    assert c.core.cancel_dial(tag, now=1)
    c.connect(protocol="signalwire_SIG_1")
    out = c.sent()
    assert [f["method"] for f in out] == ["signalwire.ping", "calling.dial", "calling.end"]


def test_default_tags_are_uuid4_and_request_ids_are_unique_per_connection() -> None:
    one, two = uuid4(), uuid4()
    assert one != two
    parts = one.split("-")
    assert [len(p) for p in parts] == [8, 4, 4, 4, 12]
    assert parts[2][0] == "4"
    assert parts[3][0] in "89ab"
    core = ClientConnection(project="p", token="t")
    rid = core.connect(now=0)
    prefix, number = rid.rsplit("-", 1)
    assert (len(prefix), number) == (12, "1")
    other = ClientConnection(project="p", token="t").connect(now=0)
    assert other != rid  # a random prefix per connection
    assert repr(core) == "<ClientConnection state=connecting protocol=None dials=0 calls=0>"


def test_event_params_are_kept_raw() -> None:
    c = Client()
    c.connect()
    inner = state_params("X", "ringing")
    [unhandled] = c.event("calling.conference", inner)
    assert isinstance(unhandled, UnhandledEvent)
    assert unhandled.params == inner
    assert CallState.RINGING.rank < CallState.ANSWERED.rank


def test_socket_lost_while_connecting() -> None:
    c = Client()
    c.core.connect(now=0)
    c.sent()
    assert c.core.connection_lost(now=1) == []
    assert c.core.state is SessionState.IDLE
    assert c.feed(result("r1", {"protocol": "late"})) == []  # the old socket's reply
    frame, _ = c.connect()
    assert frame["id"] == "r2"


def test_in_flight_play_and_hangup_across_a_restored_resume() -> None:
    c = Client()
    c.connect(protocol="p")
    tag, _ = c.answered_call("CALL-1")
    c.sent()
    rid, control_id = c.core.play("CALL-1", [{"type": "tts", "text": "x"}])
    c.core.cancel_dial(tag, now=1)  # hangs the winner up (internal, re-sent if lost)
    [play, hangup] = c.sent()
    assert hangup["method"] == "calling.end"
    c.core.connection_lost(now=2)
    _, events = c.connect(protocol="p")
    assert events[1:] == [
        RequestFailed(
            request_id=rid,
            method="calling.play",
            code=-1,
            message="connection lost before the reply arrived",
            connection_lost=True,
        )
    ]
    [again] = c.sent()
    assert again["method"] == "calling.end"
    assert again["params"] == hangup["params"]
    assert again["id"] != hangup["id"]
    assert c.event("calling.call.play", {"control_id": control_id, "state": "playing"}) == []
    assert c.feed(ok(hangup["id"])) == []  # the old id: finished, dropped quietly
    assert c.feed(ok(again["id"])) == []
    assert play["id"] == rid


def test_hangups_in_flight_are_resent_even_after_a_reset() -> None:
    c = Client()
    c.connect(protocol="p")
    tag, _frame = c.dial()
    c.state("A", "ringing", tag=tag)
    c.core.cancel_dial(tag, now=1)
    hangup = c.sent_one()
    c.core.connection_lost(now=2)
    c.connect(protocol="q")
    [again] = c.sent()
    assert again["params"] == hangup["params"]


def test_recent_replies_record_is_bounded() -> None:
    c = Client()
    c.connect()
    first = c.core.ping(now=0)
    c.feed(result(first))
    for _ in range(4100):
        c.feed(result(c.core.ping(now=0)))
    c.sent()
    with pytest.raises(RemoteProtocolError, match="never made"):
        c.feed(result(first))


def test_a_dial_resolved_and_forgotten_before_it_was_sent_does_not_break_the_flush() -> None:
    c = Client(tombstone_grace=1)
    c.connect()
    c.feed(request("d", "signalwire.disconnect", {}))
    tag = c.core.dial([[PHONE_A]], now=0)
    c.sent()
    # A (bogus) answer for a dial the server cannot have seen yet.
    c.dial_event(tag, "answered", call_id="CALL-1")
    c.tick(1)
    c.core.connection_lost(now=1)
    c.connect()
    [dial] = c.sent()
    assert dial["params"]["tag"] == tag


def test_has_data_to_send_tracks_the_outbox() -> None:
    c = Client()
    assert not c.core.has_data_to_send
    c.core.connect(now=0)
    assert c.core.has_data_to_send
    c.sent()
    assert not c.core.has_data_to_send


# ---------------------------------------------------------------------------- unwritten frames


@pytest.mark.parametrize("protocol", ["signalwire_SIG_1", "proto-new"])
def test_requests_never_drained_wait_for_the_next_session(protocol: str) -> None:
    # The socket dies before the outbox is drained: nothing of it reached the server,
    # so the requests are not "in flight": they go out on the next socket, restored
    # session or not (a dial included: it cannot have created anything yet).
    c = Client()
    c.connect()
    c.answered_call("CALL-1")
    c.sent()
    tag = c.core.dial([[PHONE_A]], now=0)
    play_id, _ = c.core.play("CALL-1", [{"type": "tts", "text": "hi"}])
    ping_id = c.core.ping(now=0)
    c.feed(event("ev-x", "calling.call.dial", {"tag": "other", "dial_state": "dialing"}))
    c.core.connection_lost(now=1)
    assert not c.core.has_data_to_send  # the ack was for a dead socket
    _, events = c.connect(protocol=protocol)
    assert not any(isinstance(e, DialFailed) for e in events)
    assert not any(isinstance(e, RequestFailed) and e.request_id == ping_id for e in events)
    out = c.sent()
    methods = [(f["method"], f["id"]) for f in out]
    if protocol == "signalwire_SIG_1":  # restored: everything goes out again, in order
        assert [m for m, _ in methods] == ["calling.dial", "calling.play", "signalwire.ping"]
        assert out[1]["id"] == play_id
    else:  # a new session: the call (and so its play) is lost, the dial and ping go out
        assert [m for m, _ in methods] == ["calling.end", "calling.dial", "signalwire.ping"]
        assert (
            RequestFailed(
                request_id=play_id,
                method="calling.play",
                code=-1,
                message="connection lost before the reply arrived",
                connection_lost=True,
            )
            in events
        )
    dial_frame = next(f for f in out if f["method"] == "calling.dial")
    assert dial_frame["params"]["tag"] == tag
    assert next(f for f in out if f["method"] == "signalwire.ping")["id"] == ping_id
    assert c.core.pending_dials == {tag}


def test_a_dial_cancelled_before_it_was_drained_is_never_written() -> None:
    c = Client()
    c.connect()
    ping_id = c.core.ping(now=0)
    tag = c.core.dial([[PHONE_A]], now=0)
    pong_id = c.core.ping(now=0)
    assert c.core.cancel_dial(tag, now=0)
    assert [f["id"] for f in c.sent()] == [ping_id, pong_id]
    assert c.core.pending_dials == frozenset()
