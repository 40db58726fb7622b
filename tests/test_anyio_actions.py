"""The action handles of ``Call`` against a scripted server (both backends).

The test plays the server: it reads each request the client writes and answers with
hand-made replies and ``calling.call.<verb>`` events, in the orders it wants (events in the
same read as the reply, a call that ends mid-action, late replies).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from scripted_calls import (
    CALL_ID,
    NODE_ID,
    action_event,
    call_state,
    expect,
    quiet,
    refuse,
    reply,
    scripted_call,
    serving,
)

from relay_anyio import (
    CALL_ENDED,
    Action,
    CallGoneError,
    CollectAction,
    CollectResult,
    ConfigurationError,
    ConnectionLostError,
    DetectAction,
    DetectResult,
    PlayState,
    RecordAction,
    RecordResult,
    RecordState,
    RequestError,
    RequestTimeoutError,
    SendDigitsResult,
    TapResult,
)

pytestmark = pytest.mark.anyio


def ids(frame: dict[str, Any]) -> tuple[str, str]:
    params = frame["params"]
    assert params["call_id"] == CALL_ID
    assert params["node_id"] == NODE_ID
    return params["control_id"], frame["id"]


# ----------------------------------------------------------------------------- happy paths


async def test_record_happy_path_with_callbacks() -> None:
    seen: list[Any] = []
    done = anyio.Event()

    async def later(action: Action) -> None:
        seen.append(("async", action.state))
        done.set()

    async with scripted_call() as (_, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.record")
            assert frame["params"]["record"] == {"audio": {"beep": True, "format": "mp3"}}
            control_id, _ = ids(frame)
            peer.deliver(reply(frame), action_event("record", control_id, state="recording"))

        action = await serving(
            server,
            lambda: call.record(
                {"beep": True, "format": "mp3"}, on_completed=lambda a: seen.append(a.result)
            ),
        )
        assert isinstance(action, RecordAction)
        await anyio.wait_all_tasks_blocked()
        assert action.state == RecordState.RECORDING
        assert not action.done
        finished = {"state": "finished", "url": "https://x/r.mp3", "duration": 3, "size": 99}
        peer.deliver(action_event("record", action.control_id, **finished))
        result = await action.wait()
        assert isinstance(result, RecordResult)
        assert (result.url, result.duration, result.size) == ("https://x/r.mp3", 3.0, 99)
        assert action.done
        assert action.completed
        assert not result.call_ended
        assert seen == [result]

        # An async callback runs as a task of the client.
        async def server2() -> None:
            frame = await expect(peer, "calling.record")
            control_id, _ = ids(frame)
            peer.deliver(reply(frame), action_event("record", control_id, state="no_input"))

        second = await serving(server2, lambda: call.record(on_completed=later))
        assert (await second.wait()).state == "no_input"
        await done.wait()
        assert seen[-1] == ("async", "no_input")


async def test_play_and_collect_prompt_does_not_settle_it() -> None:
    async with scripted_call() as (_, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.play_and_collect")
            params = frame["params"]
            assert params["play"] == [{"type": "tts", "params": {"text": "Press 1"}}]
            assert params["collect"] == {"digits": {"max": 2, "terminators": "#"}}
            control_id, _ = ids(frame)
            peer.deliver(
                reply(frame),
                action_event("play", control_id, state="playing"),
                action_event("play", control_id, state="finished"),
            )

        collect = {"digits": {"max": 2, "terminators": "#"}}
        action = await serving(server, lambda: call.prompt_tts("Press 1", collect))
        assert isinstance(action, CollectAction)
        await anyio.wait_all_tasks_blocked()
        assert action.prompt_state is PlayState.FINISHED
        assert not action.settled
        assert not action.done
        result = {"type": "digit", "params": {"digits": "12", "terminator": "#"}}
        peer.deliver(action_event("collect", action.control_id, result=result))
        got = await action.wait()
        assert isinstance(got, CollectResult)
        assert (got.kind, got.digits, got.terminator, got.final) == ("digit", "12", "#", True)
        assert action.done


async def test_collect_partial_results_then_final() -> None:
    async with scripted_call() as (_, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.collect")
            assert frame["params"]["speech"] == {"hints": ["yes"]}
            assert frame["params"]["partial_results"] is True
            control_id, _ = ids(frame)
            partial = {"type": "speech", "params": {"text": "ye", "confidence": 0.4}}
            peer.deliver(
                reply(frame), action_event("collect", control_id, result=partial, final=False)
            )

        action = await serving(
            server, lambda: call.collect(speech={"hints": ["yes"]}, partial_results=True)
        )
        await anyio.wait_all_tasks_blocked()
        assert isinstance(action.result, CollectResult)
        assert action.result.final is False
        assert not action.settled
        final = {"type": "speech", "params": {"text": "yes", "confidence": 0.9}}
        peer.deliver(action_event("collect", action.control_id, result=final, final=True))
        got = await action.wait()
        assert isinstance(got, CollectResult)
        assert (got.text, got.confidence, got.final) == ("yes", 0.9, True)


async def test_detect_settles_on_the_first_detection_and_stops() -> None:
    async with scripted_call() as (_, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.detect")
            assert frame["params"]["detect"] == {
                "type": "machine",
                "params": {"initial_timeout": 4.5},
            }
            assert frame["params"]["timeout"] == 30
            control_id, _ = ids(frame)
            machine = {"type": "machine", "params": {"event": "MACHINE"}}
            peer.deliver(reply(frame), action_event("detect", control_id, detect=machine))

        action = await serving(
            server, lambda: call.detect_answering_machine(initial_timeout=4.5, timeout=30)
        )
        assert isinstance(action, DetectAction)
        got = await action.wait()
        assert isinstance(got, DetectResult)
        assert (got.kind, got.result) == ("machine", "MACHINE")
        assert not action.done  # the detector goes on until stopped

        async def stopper() -> None:
            frame = await expect(peer, "calling.detect.stop")
            assert frame["params"]["control_id"] == action.control_id
            finished = {"type": "machine", "params": {"event": "finished"}}
            peer.deliver(reply(frame), action_event("detect", action.control_id, detect=finished))

        await serving(stopper, action.stop)
        await anyio.wait_all_tasks_blocked()
        assert action.done
        assert action.result is got


async def test_send_digits_waits_for_finished() -> None:
    async with scripted_call() as (client, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.send_digits")
            assert frame["params"]["digits"] == "12#"
            control_id, _ = ids(frame)
            peer.deliver(reply(frame))
            await anyio.wait_all_tasks_blocked()
            peer.deliver(action_event("send_digits", control_id, state="finished"))

        result = await serving(server, lambda: call.send_digits("12#"))
        assert isinstance(result, SendDigitsResult)
        assert result.state == "finished"
        with pytest.raises(ConfigurationError, match="DTMF"):
            await call.send_digits("12x")
        await quiet(peer, client)


async def test_tap_stop_and_finished() -> None:
    tap = {"type": "audio", "params": {"direction": "both"}}
    device = {"type": "rtp", "params": {"addr": "127.0.0.1", "port": 4000}}
    async with scripted_call() as (_, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.tap")
            assert frame["params"]["device"] == device
            control_id, _ = ids(frame)
            peer.deliver(
                reply(frame, source_device={"type": "rtp"}),
                action_event("tap", control_id, state="tapping", tap=tap, device=device),
            )

        action = await serving(server, lambda: call.tap(tap, device))

        async def stopper() -> None:
            frame = await expect(peer, "calling.tap.stop")
            peer.deliver(
                reply(frame),
                action_event("tap", action.control_id, state="finished", tap=tap, device=device),
            )

        await serving(stopper, action.stop)
        got = await action.wait()
        assert isinstance(got, TapResult)
        assert got.device == device
        assert got.tap == tap


async def test_generic_start_action_for_a_newer_verb() -> None:
    async with scripted_call() as (_, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.hologram")
            assert frame["params"]["depth"] == 3
            control_id, _ = ids(frame)
            peer.deliver(reply(frame), action_event("hologram", control_id, state="finished"))

        action = await serving(server, lambda: call.start_action("hologram", {"depth": 3}))
        assert type(action) is Action
        got = await action.wait()
        assert (got.verb, got.state) == ("hologram", "finished")


# ----------------------------------------------------------------------------- controls


@pytest.mark.parametrize(
    ("control", "method", "extra"),
    [
        ("pause", "calling.record.pause", {"behavior": "skip"}),
        ("resume", "calling.record.resume", {}),
        ("stop", "calling.record.stop", {}),
    ],
)
async def test_record_controls(control: str, method: str, extra: dict[str, Any]) -> None:
    async with scripted_call() as (_, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.record")
            peer.deliver(reply(frame))

        action = await serving(server, call.record)

        async def controlled() -> None:
            frame = await expect(peer, method)
            assert frame["params"] == {
                "node_id": NODE_ID,
                "call_id": CALL_ID,
                "control_id": action.control_id,
                **extra,
            }
            peer.deliver(reply(frame))

        await serving(controlled, lambda: getattr(action, control)(**extra))


async def test_collect_controls_volume_and_input_timers() -> None:
    async with scripted_call() as (_, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.play_and_collect")
            peer.deliver(reply(frame))

        action = await serving(
            server, lambda: call.prompt_audio("https://x/a.mp3", {"digits": {"max": 1}})
        )

        async def volume() -> None:
            frame = await expect(peer, "calling.play_and_collect.volume")
            assert frame["params"]["volume"] == -4.0
            peer.deliver(reply(frame))

        await serving(volume, lambda: action.volume(-4.0))

        async def timers() -> None:
            frame = await expect(peer, "calling.collect.start_input_timers")
            assert frame["params"]["control_id"] == action.control_id
            peer.deliver(reply(frame))

        await serving(timers, action.start_input_timers)
        with pytest.raises(ConfigurationError, match="pause"):
            await action.control("pause")


# ----------------------------------------------------------------------------- call ended


async def test_call_ended_mid_action_settles_every_handle() -> None:
    async with scripted_call() as (_, call, peer):

        async def record_server() -> None:
            frame = await expect(peer, "calling.record")
            peer.deliver(reply(frame))

        async def play_server() -> None:
            frame = await expect(peer, "calling.play")
            peer.deliver(reply(frame))

        record = await serving(record_server, call.record)
        play = await serving(play_server, lambda: call.play_tts("hi"))
        peer.deliver(call_state("ended", end_reason="hangup"))
        got = await record.wait()
        assert got.call_ended
        assert got.state == CALL_ENDED
        assert record.done
        with pytest.raises(CallGoneError):  # the play keeps its own contract
            await play.wait()
        with pytest.raises(CallGoneError):
            await call.record()


async def test_call_ended_in_the_same_read_as_the_reply() -> None:
    async with scripted_call() as (_, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.detect")
            peer.deliver(reply(frame), call_state("ended"))

        action = await serving(server, call.detect_fax)
        assert action.done
        assert (await action.wait()).call_ended


# ----------------------------------------------------------------------------- cancellation


async def test_cancelled_start_is_stopped_once_accepted() -> None:
    async with scripted_call() as (client, call, peer):
        with anyio.CancelScope() as scope:

            async def server() -> None:
                frame = await expect(peer, "calling.record")
                scope.cancel()
                await anyio.wait_all_tasks_blocked()
                peer.deliver(reply(frame))  # accepted after the caller gave up
                stop = await expect(peer, "calling.record.stop")
                assert stop["params"]["control_id"] == frame["params"]["control_id"]
                peer.deliver(reply(stop))

            async with anyio.create_task_group() as tg:
                tg.start_soon(server)
                await call.record()
            pytest.fail("not cancelled")  # pragma: no cover
        assert scope.cancelled_caught
        await quiet(peer, client)


async def test_timed_out_start_is_stopped_when_its_late_reply_comes() -> None:
    async with scripted_call(request_timeout=0.2) as (client, call, peer):
        frames: list[dict[str, Any]] = []

        async def server() -> None:
            frames.append(await expect(peer, "calling.tap"))

        tap = {"type": "audio"}
        device = {"type": "ws", "params": {"uri": "wss://tap.example/x"}}
        with pytest.raises(RequestTimeoutError):
            await serving(server, lambda: call.tap(tap, device))
        frame = frames[0]
        control_id = frame["params"]["control_id"]
        stop = await expect(peer, "calling.tap.stop")  # at once: the reply may never come
        assert stop["params"]["control_id"] == control_id
        peer.deliver(reply(stop))
        peer.deliver(reply(frame))  # the late acceptance: stopped (again) by the core
        stop = await expect(peer, "calling.tap.stop")
        assert stop["params"]["control_id"] == control_id
        peer.deliver(reply(stop))
        await quiet(peer, client)


async def test_refused_start_sends_no_stop() -> None:
    async with scripted_call() as (client, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.record")
            peer.deliver(refuse(frame))

        with pytest.raises(RequestError) as caught:
            await serving(server, call.record)
        assert not isinstance(caught.value, RequestTimeoutError)
        assert call.actions == {}
        await quiet(peer, client)


async def test_cancelling_wait_does_not_stop_the_action() -> None:
    async with scripted_call() as (client, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.record")
            peer.deliver(reply(frame))

        action = await serving(server, call.record)
        with anyio.move_on_after(0.01):
            await action.wait()
        with pytest.raises(TimeoutError):
            await action.wait(timeout=0.01)
        await quiet(peer, client)  # no stop was written
        assert not action.done
        peer.deliver(action_event("record", action.control_id, state="finished", url="u"))
        assert (await action.wait()).state == "finished"


async def test_invalid_params_send_nothing() -> None:
    async with scripted_call() as (client, call, peer):
        with pytest.raises(ConfigurationError, match=r"record\.audio\.format"):
            await call.record({"format": "ogg"})
        with pytest.raises(ConfigurationError, match=r"detect\.type"):
            await call.detect({"params": {}})
        assert call.actions == {}
        await quiet(peer, client)


async def test_closing_the_client_fails_waits_on_running_actions() -> None:
    async with scripted_call() as (_client, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.record")
            peer.deliver(reply(frame))

        action = await serving(server, call.record)
    with pytest.raises(ConnectionLostError):
        await action.wait()
