"""``relay serve --control``: JSON commands on stdin, one JSON reply a line on stdout.

The simulator runs in a subprocess on the test's backend (``--backend``); the project's
own client talks to it over a socket while the test checks what the simulator reports
(``status``) and drives it (``inject_call``, ``inject_message``). Every read of the
subprocess's output is bounded and off the event loop.
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
import pytest

from relay_anyio import RelayClient

ROOT = Path(__file__).absolute().parent.parent
FROM, TO, CONTEXT = "+15551230000", "+15559870000", "office"
BOUND = 10.0
NOBODY = {"context": "x", "from_number": FROM, "to_number": TO}  # no session receives "x"


def _read_line(stream: Any) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(BOUND)
    assert box, f"no line from relay serve in {BOUND} s"
    return box[0]


class Control:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        assert process.stdin is not None
        assert process.stdout is not None
        self.stdin, self.stdout = process.stdin, process.stdout

    async def send(self, line: str) -> dict[str, Any]:
        self.stdin.write(line + "\n")
        self.stdin.flush()
        reply: dict[str, Any] = json.loads(await anyio.to_thread.run_sync(_read_line, self.stdout))
        return reply

    async def command(self, op: str, **params: Any) -> dict[str, Any]:
        return await self.send(json.dumps({"op": op, **params}))


@contextmanager
def serve_with_control(backend: str) -> Iterator[tuple[str, Control]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "relay_anyio", "--backend", backend, "serve"]
    argv += ["--listen", "127.0.0.1:0", "--ping-interval", "off", "--control"]
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = _read_line(process.stdout).strip()
        assert url.startswith("ws://127.0.0.1:"), url
        yield url, Control(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _phone(to_number: str) -> dict[str, Any]:
    return {"type": "phone", "params": {"from_number": FROM, "to_number": to_number}}


@pytest.mark.anyio
async def test_serve_control_answers_bad_commands_and_keeps_serving(
    anyio_backend_name: str,
) -> None:
    with serve_with_control(anyio_backend_name) as (_, control), anyio.fail_after(30):
        idle = {"ok": True, "live_calls": [], "live_actions": [], "live_messages": []}
        assert await control.command("status") == idle
        refusals = [
            ("not json", "Expecting value"),
            ("[1, 2]", "a command is a JSON object"),
            ('{"op": "reboot"}', "unknown op 'reboot'"),
            ('{"op": "inject_call", "context": "x", "color": "red"}', "unknown keys ['color']"),
            ('{"op": "inject_message", "context": 7}', "'context' must be a string"),
            (json.dumps({"op": "inject_call", **NOBODY}), "no session receives context 'x'"),
        ]
        for line, error in refusals:
            reply = await control.send(line)
            assert reply["ok"] is False, line
            assert error in reply["error"], reply
        assert await control.command("status") == idle  # still serving, nothing created
        control.stdin.close()  # end of commands: the server keeps running until a signal
        assert control.process.poll() is None
        control.process.terminate()
        assert control.process.wait(timeout=10) == 0
        stderr = control.process.stderr
        assert stderr is not None
        assert "Traceback" not in stderr.read()


@pytest.mark.anyio
async def test_serve_control_reports_live_calls_and_injects(anyio_backend_name: str) -> None:
    with serve_with_control(anyio_backend_name) as (url, control), anyio.fail_after(30):
        async with RelayClient(project="p", token="t", url=url, contexts=[CONTEXT]) as client:
            outbound = await client.dial([[_phone(TO)]], dial_timeout=BOUND)
            status = await control.command("status")
            assert [(c["call_id"], c["state"], c["direction"]) for c in status["live_calls"]] == [
                (outbound.call_id, "answered", "outbound")
            ]

            injected = await control.command(
                "inject_call", context=CONTEXT, from_number=FROM, to_number=TO
            )
            assert injected["ok"] is True, injected
            async for inbound in client.inbound_calls():  # noqa: B007 (the first one)
                break
            assert inbound.call_id == injected["call_id"]
            status = await control.command("status")
            assert {c["call_id"] for c in status["live_calls"]} == {
                outbound.call_id,
                inbound.call_id,
            }

            sent = await control.command(
                "inject_message", context=CONTEXT, from_number=FROM, to_number=TO, body="hi"
            )
            assert sent["ok"] is True, sent
            assert sent["message_id"]
            bad = await control.command(
                "inject_message", context=CONTEXT, from_number="nope", to_number=TO, body="hi"
            )
            assert bad["ok"] is False
            assert "from_number" in bad["error"]

            await outbound.hangup()
            await inbound.hangup()
        status = await control.command("status")
        assert (status["live_calls"], status["live_actions"], status["live_messages"]) == (
            [],
            [],
            [],
        )
