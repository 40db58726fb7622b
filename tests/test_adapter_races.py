"""Adapter races that a live simulator cannot be made to produce on demand.

The core is driven with hand-made frames (``client_frames``) and the adapter's request
path is replaced by one that feeds the reply and the next events in a single batch, as
one socket read can deliver them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from client_frames import Client, event, ok

from relay_anyio import PlayState, RelayClient
from relay_anyio._calls import Call
from relay_proto import ClientConnection

pytestmark = pytest.mark.anyio


def _client_with_a_call() -> tuple[Client, RelayClient, Call]:
    frames = Client()
    frames.connect()
    frames.answered_call("CALL-1")
    frames.sent()
    client = RelayClient(project="p", token="t", url="ws://127.0.0.1:9")
    client._core = frames.core
    client._tg = object()  # type: ignore[assignment]  # "inside async with" for _check_open
    info = frames.core.get_call("CALL-1")
    assert info is not None
    call = Call._from_info(client, info)
    client._calls["CALL-1"] = call
    return frames, client, call


@pytest.mark.parametrize("final", ["finished", "error"])
async def test_play_whose_final_event_shares_a_read_with_the_reply(final: str) -> None:
    frames, client, call = _client_with_a_call()

    async def answered_with_final_event(
        start: Callable[[ClientConnection], str],
    ) -> Any:
        request_id = start(client._core)
        [play] = frames.sent()
        control_id = play["params"]["control_id"]
        progress = {"call_id": "CALL-1", "control_id": control_id, "state": final}
        events = client._core.receive(ok(request_id), now=0.0)
        events += client._core.receive(event("e9", "calling.call.play", progress), now=0.0)
        client._dispatch(events)
        return {}

    client._request = answered_with_final_event  # type: ignore[method-assign]
    action = await call.play([{"type": "tts", "text": "hi"}])
    assert action.done
    assert await action.wait() is PlayState(final)
    assert not call.ended
