"""``relay serve --control 0`` in a subprocess, on the test's backend (``--backend``): the
control socket's reports of what a client does (``stats``, ``calls``, ``actions``,
``messages``) and its ``message`` injection, as a test in another process uses them to
check that its work left nothing running (docs/simulator.md, "The control socket").

The in-process tests of every op's answers to good and bad requests are in
``test_server_scale_cli.py``. Every read of the subprocess's output is bounded and off the
event loop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from relay_anyio import RelayClient

ROOT = Path(__file__).absolute().parent.parent
FROM, TO, SLOW, CONTEXT = "+15551230000", "+15559870000", "+15559870001", "office"
BOUND = 10.0
SCENARIO = {
    "default": {"outcome": "answer", "after": 0.05, "message": {"state": "delivered"}},
    "destinations": {
        TO: {"outcome": "answer", "after": 0.05, "record": {"seconds": None}},
        SLOW: {"outcome": "answer", "message": {"state": "delivered", "after": 600}},
    },
}


def _read_line(stream: Any) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(BOUND)
    assert box, f"no line from relay serve in {BOUND} s"
    return box[0].strip()


@contextmanager
def serve_with_control(backend: str, workdir: Path) -> Iterator[tuple[str, int]]:
    """``relay --backend BACKEND serve --control 0``: its URL and its control port."""
    scenario = workdir / "scenario.json"
    scenario.write_text(json.dumps(SCENARIO), encoding="utf-8")
    argv = [sys.executable, "-m", "relay_anyio", "--backend", backend, "serve"]
    argv += ["--listen", "127.0.0.1:0", "--ping-interval", "off", "--control", "0"]
    argv += ["--scenario", str(scenario)]
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        url = _read_line(process.stdout)
        assert url.startswith("ws://127.0.0.1:"), url
        host, _, port = _read_line(process.stdout).removeprefix("control ").rpartition(":")
        assert host == "127.0.0.1"
        yield url, int(port)
        process.terminate()
        assert process.wait(timeout=BOUND) == 0
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=BOUND)
        for stream in (process.stdout, process.stderr):
            assert stream is not None
            stream.close()


class Control:
    """A line client of the control socket."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.buffered = BufferedByteReceiveStream(stream)

    async def ask(self, op: str, **request: Any) -> dict[str, Any]:
        await self.stream.send(json.dumps({"op": op, **request}).encode() + b"\n")
        answer: dict[str, Any] = json.loads(await self.buffered.receive_until(b"\n", 1 << 24))
        assert answer.pop("ok") is True, answer
        return answer


def _phone(to_number: str) -> dict[str, Any]:
    return {"type": "phone", "params": {"from_number": FROM, "to_number": to_number}}


@pytest.mark.anyio
async def test_the_control_socket_reports_calls_actions_and_messages(
    anyio_backend_name: str, tmp_path: Path
) -> None:
    with serve_with_control(anyio_backend_name, tmp_path) as (url, port), anyio.fail_after(30):
        async with (
            RelayClient(project="p", token="t", url=url, contexts=[CONTEXT]) as client,
            await anyio.connect_tcp("127.0.0.1", port) as stream,
        ):
            control = Control(stream)
            call = await client.dial([[_phone(TO)]], dial_timeout=BOUND)
            record = await call.record({"direction": "both"})
            (live,) = (await control.ask("calls", live=True))["calls"]
            assert (live["call_id"], live["node_id"], live["tag"]) == (
                call.call_id,
                call.node_id,
                call.tag,
            )
            assert (live["state"], live["direction"]) == ("answered", "outbound")
            assert (await control.ask("actions"))["actions"] == [
                {
                    "call_id": call.call_id,
                    "control_id": record.control_id,
                    "verb": "record",
                    "state": "recording",
                }
            ]
            stats = await control.ask("stats")
            assert (stats["live_calls"], stats["live_actions"], stats["live_messages"]) == (1, 1, 0)
            await record.stop()
            await record.wait(timeout=BOUND)
            assert (await control.ask("actions"))["actions"] == []

            slow = await client.send_message(to_number=SLOW, from_number=FROM, body="later")
            sent = await client.send_message(to_number=TO, from_number=FROM, body="now")
            assert await sent.wait(timeout=BOUND) == "delivered"
            injected = await control.ask(
                "message", context=CONTEXT, body="hi", **{"from": TO, "to": FROM}
            )
            async for inbound in client.inbound_messages():  # noqa: B007 (the first one)
                break
            assert inbound.message_id == injected["message_id"]
            (moving,) = (await control.ask("messages", live=True))["messages"]
            assert moving["message_id"] == slow.message_id
            assert (moving["direction"], moving["from"], moving["to"]) == ("outbound", FROM, SLOW)
            assert moving["state"] not in ("delivered", "undelivered", "failed")
            every = (await control.ask("messages"))["messages"]
            assert [(m["message_id"], m["direction"], m["state"]) for m in every] == [
                (slow.message_id, "outbound", moving["state"]),
                (sent.message_id, "outbound", "delivered"),
                (inbound.message_id, "inbound", "received"),
            ]

            await call.hangup()
            stats = await control.ask("stats")
        assert (stats["live_calls"], stats["live_actions"], stats["live_messages"]) == (0, 0, 1)
        assert stats["end_reasons"] == {"hangup": 1}
