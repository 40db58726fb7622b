"""Several client processes on one ``relay serve``: the control socket (``--control``)
injects inbound calls from outside, the simulator spreads them over three worker
processes, each answered by exactly one; and the control protocol's answers to good and
bad requests (``serve_simulator(control_port=...)``, on asyncio and trio).
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio_support import BOUND, FAST, A, B, barrier, make_client

from relay_anyio import serve_simulator
from relay_anyio._cli import EXIT_USAGE, main

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "scale_worker.py"
#: The longest request line the control socket takes (docs/simulator.md).
LINE_LIMIT = 1 << 20


def readline(stream: Any, timeout: float = 20.0) -> str:
    """One line of a child's output, or fail after ``timeout`` seconds."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert lines, "no line within the timeout"
    return lines[0].strip()


def start(*argv: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    if process.poll() is None:
        process.kill()
    return process.communicate(timeout=10)


def ask(control: socket.socket, request: dict[str, Any]) -> dict[str, Any]:
    control.sendall(json.dumps(request).encode() + b"\n")
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = control.recv(1 << 16)
        assert chunk, "the control socket closed"
        answer += chunk
    result: dict[str, Any] = json.loads(answer)
    return result


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    process = start("-m", "relay_anyio", "serve", "--listen", "127.0.0.1:0", "--control", "0")
    try:
        url = readline(process.stdout)
        host, _, port = readline(process.stdout).removeprefix("control ").rpartition(":")
        assert host == "127.0.0.1"
        yield url, int(port)
        process.terminate()
        _, err = process.communicate(timeout=10)
        assert "Traceback" not in err
    finally:
        stop(process)


def test_three_worker_processes_share_calls_injected_through_the_control_socket(
    server: tuple[str, int],
) -> None:
    url, port = server
    workers = [start(str(WORKER), url) for _ in range(3)]
    answered: queue.Queue[tuple[int, str]] = queue.Queue()

    def follow(number: int, stream: Any) -> None:
        for line in stream:
            answered.put((number, line.strip()))

    try:
        for number, worker in enumerate(workers):
            assert readline(worker.stdout) == "ready"
            threading.Thread(target=follow, args=(number, worker.stdout), daemon=True).start()
        with socket.create_connection(("127.0.0.1", port), timeout=20) as control:
            call = {"op": "call", "context": "office", "from": A, "to": B, "count": 30}
            injected = ask(control, call)
            handled = [answered.get(timeout=20) for _ in range(30)]
            stats = ask(control, {"op": "stats"})
        for worker in workers:
            worker.communicate("stop\n", timeout=20)
            assert worker.returncode == 0
    finally:
        for worker in workers:
            stop(worker)
    assert injected["ok"] is True
    assert sorted(call_id for _, call_id in handled) == sorted(injected["call_ids"])
    assert sorted(Counter(number for number, _ in handled).values()) == [10, 10, 10]
    assert stats["live_calls"] == 0
    assert sorted(stats["inbound_by_session"].values()) == [10, 10, 10]
    assert stats["end_reasons"] == {"hangup": 30}


# ---- the control protocol, in process ---------------------------------------------------


class Control:
    """A line client of the control socket."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.buffered = BufferedByteReceiveStream(stream)

    async def raw(self, line: bytes) -> dict[str, Any]:
        await self.stream.send(line)
        answer: dict[str, Any] = json.loads(await self.buffered.receive_until(b"\n", 1 << 24))
        return answer

    async def ask(self, **request: Any) -> dict[str, Any]:
        return await self.raw(json.dumps(request).encode() + b"\n")


@pytest.mark.anyio
async def test_the_control_socket_injects_and_reports() -> None:
    async with serve_simulator(scenario=FAST, control_port=0) as sim:
        assert sim.control_port is not None
        clients = [make_client(sim, contexts=["office"]) for _ in range(2)]
        async with (
            clients[0],
            clients[1],
            await anyio.connect_tcp("127.0.0.1", sim.control_port) as stream,
        ):
            for client in clients:
                await barrier(client)
            control = Control(stream)
            with anyio.fail_after(BOUND):
                calls = await control.ask(op="call", context="office", **{"from": A, "to": B})
                script = {"input": "no_input"}
                two = await control.ask(
                    op="call", context="office", count=2, script=script, **{"from": A, "to": B}
                )
                sent = await control.ask(
                    op="message", context="office", body="hi", tags=["t"], **{"from": A, "to": B}
                )
                stats = await control.ask(op="stats")
                live = await control.ask(op="calls", live=True)
                every = await control.ask(op="calls")
                actions = await control.ask(op="actions")
                moving = await control.ask(op="messages", live=True)
                messages = await control.ask(op="messages")
            assert calls["ok"] is True
            assert len(calls["call_ids"]) == 1
            assert len(two["call_ids"]) == 2
            (message,) = sim.all_messages()
            assert sent == {"ok": True, "message_id": message.message_id}
            assert (message.body, message.tags) == ("hi", ("t",))
            assert stats["connections"] == 2
            assert stats["live_calls"] == stats["calls"] == 3
            assert (stats["live_actions"], stats["live_messages"]) == (0, 0)
            assert stats["states"] == {"created": 3}
            assert sorted(stats["inbound_by_session"].values()) == [1, 2]
            assert list(stats["messages_by_session"].values()) == [1]
            ids = calls["call_ids"] + two["call_ids"]
            assert [c["call_id"] for c in live["calls"]] == ids
            assert [c["call_id"] for c in every["calls"]] == ids
            assert {c["state"] for c in every["calls"]} == {"created"}
            assert {c["context"] for c in every["calls"]} == {"office"}
            legs = {(c.call_id, c.node_id, c.tag) for c in sim.all_calls()}
            assert {(c["call_id"], c["node_id"], c["tag"]) for c in every["calls"]} == legs
            assert actions == {"ok": True, "actions": []}
            assert moving == {"ok": True, "messages": []}  # an inbound message is not "moving"
            assert messages["messages"] == [
                {
                    "message_id": message.message_id,
                    "direction": "inbound",
                    "state": "received",
                    "reason": None,
                    "context": "office",
                    "protocol": message.protocol,
                    "from": A,
                    "to": B,
                }
            ]


BAD_REQUESTS = [
    pytest.param(b"not json\n", "one JSON object", id="not-json"),
    pytest.param(b"[1, 2]\n", "one JSON object", id="not-an-object"),
    pytest.param(b'{"op": ["call"]}\n', "op must be one of", id="op-not-a-string"),
    pytest.param(b'{"op": "dial"}\n', "op must be one of", id="unknown-op"),
    pytest.param(b'{"op": "call", "from": "+15550000001", "to": "x"}\n', "'context'", id="no-ctx"),
    pytest.param(
        b'{"op": "call", "context": "lab", "from": "a", "to": "b"}\n', "no session", id="lab"
    ),
    pytest.param(
        b'{"op": "call", "context": "office", "from": "a", "to": "b", "count": 0}\n',
        "'count'",
        id="count-0",
    ),
    pytest.param(
        b'{"op": "call", "context": "office", "from": "a", "to": "b", "count": true}\n',
        "'count'",
        id="count-bool",
    ),
    pytest.param(
        b'{"op": "call", "context": "office", "from": "a", "to": "b", "script": 3}\n',
        "'script'",
        id="script-not-object",
    ),
    pytest.param(
        b'{"op": "call", "context": "office", "from": "a", "to": "b", "script": {"x": 1}}\n',
        "x",
        id="script-unknown-key",
    ),
    pytest.param(
        b'{"op": "message", "context": "office", "from": "+15550000001", "to": "+15550000002",'
        b' "body": 5}\n',
        "'body'",
        id="body-not-text",
    ),
    pytest.param(
        b'{"op": "message", "context": "office", "from": "+15550000001", "to": "+15550000002",'
        b' "media": [1]}\n',
        "'media'",
        id="media-not-strings",
    ),
    pytest.param(
        b'{"op": "message", "context": "office", "from": "1", "to": "+15550000002", "body": "x"}\n',
        "from_number",
        id="message-number",
    ),
    pytest.param(b'{"op": "calls", "live": 1}\n', "'live'", id="live-not-bool"),
    pytest.param(b'{"op": "messages", "live": "yes"}\n', "'live'", id="messages-live-not-bool"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("line", "error"), BAD_REQUESTS)
async def test_a_bad_request_is_answered_and_the_connection_stays_usable(
    line: bytes, error: str
) -> None:
    async with serve_simulator(scenario=FAST, control_port=0) as sim:
        assert sim.control_port is not None
        async with (
            make_client(sim, contexts=["office"]) as client,
            await anyio.connect_tcp("127.0.0.1", sim.control_port) as stream,
        ):
            await barrier(client)
            control = Control(stream)
            with anyio.fail_after(BOUND):
                answer = await control.raw(b"\n" + line)  # a blank line is skipped
                stats = await control.ask(op="stats")
        assert answer["ok"] is False
        assert error in answer["error"]
        assert stats["ok"] is True
        assert sim.all_calls() == []


@pytest.mark.anyio
async def test_a_line_too_long_ends_that_connection_only() -> None:
    async with serve_simulator(control_port=0) as sim:
        assert sim.control_port is not None
        async with (
            await anyio.connect_tcp("127.0.0.1", sim.control_port) as long,
            await anyio.connect_tcp("127.0.0.1", sim.control_port) as other,
        ):
            with anyio.fail_after(BOUND):
                answer = await Control(long).raw(b"x" * (LINE_LIMIT + 1))
                assert answer == {"ok": False, "error": "request line too long"}
                with pytest.raises(anyio.EndOfStream):
                    await long.receive()  # that connection was closed
                stats = await Control(other).ask(op="stats")
        assert stats["connections"] == 0


@pytest.mark.parametrize("port", ["99999", "-1", "x", "127.0.0.1:8766"])
def test_control_takes_a_port_only(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--listen", "127.0.0.1:0", "--control", port]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--control must be a port from 0 to 65535" in err
