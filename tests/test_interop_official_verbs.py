"""Interop, the call-control surface: the official SDK (``signalwire-sdk``) records,
collects digits, detects a machine, sends digits, connects and texts through ``relay
serve`` in a subprocess, with the far end scripted per destination in the scenario.

The simulator runs with ``--control 0``: after every test its control socket must report
no live call, no live action and no live message, and the inbound message is injected
through it. Listeners for events that may arrive before a request's reply are registered before
the request (``expect``): the SDK dispatches events in its reader while the caller waits
for the reply. Each test's docstring says what the SDK was observed to do where that is
not obvious from its code.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
from interop_support import (
    FROM,
    STEP,
    Served,
    expect,
    make_client,
    phone,
    plain_ws,
    serve,
    sw_client,
)
from signalwire.relay.event import RecordEvent

HUMAN = "+15550000021"  # PIN 1234#, then nothing; talks 0.5 s into a recording; a human
MACHINE = "+15550000022"  # an answering machine
TALKER = "+15550000023"  # talks into a recording until it is stopped
SILENT = "+15550000024"  # says nothing into a recording
DIGITS = "+15550000025"  # presses 42 to every collect
AGENT = "+15550000026"  # answers a connect
BUSY = "+15550000010"
UNDELIVERED = "+15550000030"
FAILED = "+15550000031"
CONTEXT = "office"
SCENARIO = {
    "default": {
        "outcome": "answer",
        "after": 0.1,
        "message": {"state": "delivered", "after": 0.05},
    },
    "destinations": {
        HUMAN: {
            "outcome": "answer",
            "after": 0.1,
            "input": [{"digits": "1234", "terminator": "#", "after": 0.1, "interval": 0.05}],
            "record": {"seconds": 0.5, "end": "silence"},
            "machine": {"result": "HUMAN", "after": 0.2},
        },
        MACHINE: {
            "outcome": "answer",
            "after": 0.1,
            "machine": {"result": "MACHINE", "after": 0.2},
        },
        TALKER: {"outcome": "answer", "after": 0.1, "record": {"seconds": None}},
        SILENT: {"outcome": "answer", "after": 0.1, "record": "no_input"},
        DIGITS: {"outcome": "answer", "after": 0.1, "input": {"digits": "42", "after": 0.1}},
        AGENT: {"outcome": "answer", "after": 0.1},
        BUSY: {"outcome": "busy", "after": 0.1},
        UNDELIVERED: {"outcome": "answer", "message": {"state": "undelivered", "after": 0.05}},
        FAILED: {"outcome": "answer", "message": {"state": "failed", "after": 0.05}},
    },
    "play_seconds_per_char": 0.005,
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the official SDK is asyncio-only


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("interop-verbs"), SCENARIO, control=True) as sim:
        yield sim


@pytest.fixture
async def client(served: Served, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """A connected SDK client, disconnected after the test. A call a failed test left up
    is ended first, so that the next test's idle check sees only its own calls."""
    plain_ws(monkeypatch)
    sdk = make_client(served.url, contexts=[CONTEXT])
    try:
        with anyio.fail_after(STEP):
            await sdk.connect()
        yield sdk
    finally:
        with anyio.fail_after(STEP):
            for left in (await served.status())["live_calls"]:
                end = {"node_id": left["node_id"], "call_id": left["call_id"], "reason": "hangup"}
                with contextlib.suppress(sw_client.RelayError):
                    await sdk.execute("calling.end", end)
            await sdk.disconnect()


async def _dial(client: Any, to_number: str) -> Any:
    call = await client.dial([[phone(to_number)]], dial_timeout=STEP)
    assert call.state == "answered"
    return call


async def _hang_up(call: Any) -> None:
    await call.hangup()
    ended = await call.wait_for_ended(timeout=STEP)
    assert ended.params["end_reason"] == "hangup"


def _record_event(event: Any) -> Any:
    """A record event as the SDK's typed reader sees it (url, duration and size may sit
    in the params or in their ``record``)."""
    return RecordEvent.from_payload({"event_type": event.event_type, "params": event.params})


def _has_state(state: str) -> Any:
    return lambda event: event.params.get("state") == state


@pytest.mark.anyio
async def test_official_sdk_records_until_silence_until_stop_and_nothing(
    client: Any, served: Served
) -> None:
    with anyio.fail_after(30):
        call = await _dial(client, HUMAN)
        action = await call.record({"format": "wav", "end_silence_timeout": 0.2})
        done = _record_event(await action.wait(timeout=STEP))
        assert (done.event_type, done.state) == ("calling.call.record", "finished")
        assert done.control_id == action.control_id
        assert done.url.startswith("https://")
        assert done.url.endswith(".wav")
        assert done.duration == pytest.approx(0.7)  # 0.5 s of talk, 0.2 s of silence
        assert done.size > 0
        assert (await served.status())["live_actions"] == []
        await _hang_up(call)
        await served.assert_idle()

        call = await _dial(client, TALKER)
        recording = expect(call, "calling.call.record", _has_state("recording"))
        action = await call.record({"format": "mp3"})
        await asyncio.wait_for(recording, STEP)
        (live,) = (await served.status())["live_actions"]
        assert (live["control_id"], live["verb"], live["state"]) == (
            action.control_id,
            "record",
            "recording",
        )
        stopped = await action.stop()
        assert stopped["code"] == "200"
        done = _record_event(await action.wait(timeout=STEP))
        assert done.state == "finished"
        assert done.url.endswith(".mp3")
        await _hang_up(call)
        await served.assert_idle()

        call = await _dial(client, SILENT)
        action = await call.record({"initial_timeout": 0.2})
        done = await action.wait(timeout=STEP)
        assert done.params["state"] == "no_input"
        await _hang_up(call)
        await served.assert_idle()


@pytest.mark.anyio
async def test_official_sdk_prompts_and_collects_digits_then_no_input(
    client: Any, served: Served
) -> None:
    with anyio.fail_after(30):
        call = await _dial(client, HUMAN)
        digits = {"max": 5, "terminators": "#", "digit_timeout": 1}
        action = await call.prompt_tts("Enter your PIN", {"digits": digits, "initial_timeout": 2})
        done = await action.wait(timeout=STEP)
        assert done.event_type == "calling.call.collect"
        assert done.params["control_id"] == action.control_id
        assert done.params["result"] == {
            "type": "digit",
            "params": {"digits": "1234", "terminator": "#"},
        }
        assert done.params["final"] is True

        # The script has no second answer: the caller says nothing.
        action = await call.prompt_tts("Again", {"digits": digits, "initial_timeout": 0.2})
        done = await action.wait(timeout=STEP)
        assert done.params["result"]["type"] == "no_input"
        await _hang_up(call)
        await served.assert_idle()


@pytest.mark.anyio
async def test_official_sdk_collects_digits_without_a_prompt(client: Any, served: Served) -> None:
    with anyio.fail_after(30):
        call = await _dial(client, DIGITS)
        action = await call.collect(digits={"max": 2, "digit_timeout": 1}, initial_timeout=2)
        done = await action.wait(timeout=STEP)
        assert done.params["result"] == {
            "type": "digit",
            "params": {"digits": "42", "terminator": ""},
        }
        await _hang_up(call)
        await served.assert_idle()


@pytest.mark.anyio
@pytest.mark.parametrize(("to_number", "verdict"), [(MACHINE, "MACHINE"), (HUMAN, "HUMAN")])
async def test_official_sdk_detects_a_machine_or_a_human(
    client: Any, served: Served, to_number: str, verdict: str
) -> None:
    """The SDK's detect action resolves on the first ``detect`` event (the verdict); the
    simulator's ``finished`` follows at once and reaches the call's listeners only."""
    with anyio.fail_after(30):
        call = await _dial(client, to_number)
        finished = expect(
            call,
            "calling.call.detect",
            lambda event: event.params["detect"]["params"]["event"] == "finished",
        )
        action = await call.detect_answering_machine(timeout=5)
        done = await action.wait(timeout=STEP)
        assert done.params["detect"] == {"type": "machine", "params": {"event": verdict}}
        await asyncio.wait_for(finished, STEP)
        await _hang_up(call)
        await served.assert_idle()


@pytest.mark.anyio
async def test_official_sdk_sends_digits(client: Any, served: Served) -> None:
    with anyio.fail_after(30):
        call = await _dial(client, HUMAN)
        sent = expect(call, "calling.call.send_digits", _has_state("finished"))
        reply = await call.send_digits("123")
        assert reply["code"] == "200"
        done = await asyncio.wait_for(sent, STEP)
        assert done.params["call_id"] == call.call_id
        await _hang_up(call)
        await served.assert_idle()


def _connect_state(state: str) -> Any:
    return lambda event: event.params.get("connect_state") == state


@pytest.mark.anyio
async def test_official_sdk_connects_disconnects_and_fails_to_connect(
    client: Any, served: Served
) -> None:
    """The SDK's ``connect()`` returns the reply; the bridge shows in ``calling.call.connect``
    events on the connecting call. The peer leg is not a call of the SDK's (its events
    carry a call_id it never registered), so it is read from the ``peer`` param and the
    simulator's status."""
    with anyio.fail_after(30):
        call = await _dial(client, HUMAN)
        seen: list[str] = []
        call.on("calling.call.connect", lambda event: seen.append(event.params["connect_state"]))

        connected = expect(call, "calling.call.connect", _connect_state("connected"))
        reply = await call.connect([[phone(AGENT)]], tag="agent-bridge")
        assert reply["code"] == "200"
        peer = (await asyncio.wait_for(connected, STEP)).params["peer"]
        assert peer["device"]["params"]["to_number"] == AGENT
        assert peer["call_id"] != call.call_id
        legs = {(c["call_id"], c["state"]) for c in (await served.status())["live_calls"]}
        assert legs == {(call.call_id, "answered"), (peer["call_id"], "answered")}

        disconnected = expect(call, "calling.call.connect", _connect_state("disconnected"))
        assert (await call.disconnect())["code"] == "200"
        assert (await asyncio.wait_for(disconnected, STEP)).params["peer"]["call_id"] == peer[
            "call_id"
        ]
        legs = {(c["call_id"], c["state"]) for c in (await served.status())["live_calls"]}
        assert legs == {(call.call_id, "answered")}  # the peer leg was hung up

        failed = expect(call, "calling.call.connect", _connect_state("failed"))
        assert (await call.connect([[phone(BUSY)]]))["code"] == "200"
        assert (await asyncio.wait_for(failed, STEP)).params["reason"] == "busy"
        assert call.state == "answered"

        connected = expect(call, "calling.call.connect", _connect_state("connected"))
        await call.connect([[phone(AGENT)]])
        await asyncio.wait_for(connected, STEP)
        await _hang_up(call)  # ends both legs
        # The simulator's last "disconnected" follows this leg's "ended", and the SDK
        # forgets a call at "ended": that event never reaches the listener.
        assert seen == [
            "connecting",
            "connected",
            "disconnected",
            "connecting",
            "failed",
            "connecting",
            "connected",
        ]
        await served.assert_idle()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("to_number", "states", "reason"),
    [
        ("+15550000040", ["initiated", "sent", "delivered"], None),
        (UNDELIVERED, ["initiated", "sent", "undelivered"], "Unreachable destination"),
        (FAILED, ["initiated", "failed"], "Message failed"),
    ],
)
async def test_official_sdk_sends_a_message(
    client: Any, served: Served, to_number: str, states: list[str], reason: str | None
) -> None:
    """The SDK creates its ``Message`` (in state ``queued``) once the reply is back, so
    the ``queued`` event the simulator sends right behind the reply may come too early
    for it ("State event for unknown message", dropped); every later state reaches it."""
    final = states[-1]
    with anyio.fail_after(30):
        message = await client.send_message(
            to_number=to_number, from_number=FROM, body="Your code is 1234", tags=["otp"]
        )
        seen: list[str] = []
        message.on(lambda event: seen.append(event.params["message_state"]))
        assert message.message_id
        assert message.context == client.relay_protocol  # the SDK's default context
        done = await message.wait(timeout=STEP)
        assert [state for state in seen if state != "queued"] == states
        assert done.event_type == "messaging.state"
        assert (done.params["message_id"], done.params["message_state"]) == (
            message.message_id,
            final,
        )
        assert (message.state, message.reason or None) == (final, reason)
        assert done.params["tags"] == ["otp"]
        assert done.params["segments"] == 1
        await served.assert_idle()


@pytest.mark.anyio
async def test_official_sdk_receives_an_injected_message(client: Any, served: Served) -> None:
    """The client subscribed to CONTEXT when it connected (``contexts=``); the message is
    injected through the control socket of ``relay serve --control``."""
    received: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def on_message(message: Any) -> None:
        received.set_result(message)

    client.on_message(on_message)

    with anyio.fail_after(30):
        injected = await served.ask(
            "message",
            context=CONTEXT,
            body="Running late",
            media=["https://example.com/map.png"],
            **{"from": "+15550000050", "to": FROM},
        )
        assert injected["ok"] is True, injected
        message = await asyncio.wait_for(received, STEP)
        assert message.message_id == injected["message_id"]
        assert (message.direction, message.state, message.context) == (
            "inbound",
            "received",
            CONTEXT,
        )
        assert (message.from_number, message.to_number) == ("+15550000050", FROM)
        assert (message.body, message.media) == ("Running late", ["https://example.com/map.png"])
        assert message.segments == 1
        await served.assert_idle()
