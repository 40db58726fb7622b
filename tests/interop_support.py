"""Helpers for the interop tests (``test_interop_official*.py``): the official SignalWire
SDK (``signalwire-sdk``, import name ``signalwire``) against ``relay serve`` in a
subprocess.

Importing this module skips the importing test module unless the SDK is importable
(``make interop`` builds ``.venv-interop`` with it).

* ``serve``: ``python -m relay_anyio serve --verbose`` from this checkout; yields a
  ``Served`` with the URL, the stderr lines as they come, and (with ``control=True``,
  ``relay serve --control 0``) ``ask()`` / ``status()`` / ``assert_idle()`` over the
  simulator's control socket (docs/simulator.md, "The control socket");
* ``plain_ws``: the SDK always dials ``wss://{host}``; this makes it dial ``ws://``;
* ``phone`` / ``make_client``: a phone device and an SDK client for a simulator URL;
* ``expect``: a future for the first event of a type a call sees, registered at once (so
  an event that arrives before the request's reply is not missed).
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

SKIP_REASON = "official signalwire-sdk not installed; run `make interop` to check against it"

sw_client: Any = pytest.importorskip("signalwire.relay.client", reason=SKIP_REASON)
if not hasattr(sw_client, "RelayClient"):  # the unrelated 2.x `signalwire` package
    pytest.skip(f"`signalwire` is not signalwire-sdk 3.x; {SKIP_REASON}", allow_module_level=True)
websockets: Any = pytest.importorskip("websockets", reason=SKIP_REASON)

ROOT = Path(__file__).absolute().parent.parent  # this checkout
PROJECT = "interop-project"
TOKEN = "interop-token"
FROM = "+15550000001"
URL_WAIT = 15.0  # seconds for the simulator to print its URL
STEP = 10.0  # seconds for any one SDK operation


def read_line(stream: Any, timeout: float) -> str | None:
    """``stream.readline()`` bounded by ``timeout`` (None when nothing came in time)."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0] if box else None


def ask(port: int, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One request on a new connection to the control socket, and its answer line."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as control:
        control.sendall(json.dumps(request).encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = control.recv(1 << 16)
            assert chunk, f"the control socket closed before answering {request}"
            answer += chunk
    reply: dict[str, Any] = json.loads(answer)
    return reply


class Served:
    """A ``relay serve --verbose`` subprocess: its URL, its control socket's port (or
    None), and its stderr lines as they come (``--verbose`` prints one when a socket
    opens a session and when one closes)."""

    def __init__(self, proc: subprocess.Popen[str], url: str, control_port: int | None) -> None:
        self.proc = proc
        self.url = url
        self.control_port = control_port
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stderr is not None
        threading.Thread(target=self._pump, args=(proc.stderr,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    async def next_line(self, within: float = STEP) -> str:
        """The next stderr line, waited for at most ``within`` seconds (off the loop, so
        the SDK keeps running, answering pings)."""

        def get() -> str:
            try:
                return self.lines.get(timeout=within)
            except queue.Empty:
                raise AssertionError(f"no simulator line in {within} s; saw {self.seen}") from None

        line = await anyio.to_thread.run_sync(get)
        self.seen.append(line)
        return line

    async def ask(self, op: str, **params: Any) -> dict[str, Any]:
        """One control socket request and its answer (off the loop, bounded)."""
        assert self.control_port is not None, "start the simulator with control=True"
        request = {"op": op, **params}
        with anyio.fail_after(STEP):
            return await anyio.to_thread.run_sync(ask, self.control_port, request, STEP)

    async def status(self) -> dict[str, list[dict[str, Any]]]:
        """The simulator's live calls, actions and messages (``live_calls``,
        ``live_actions``, ``live_messages``)."""
        answers = [
            await self.ask("calls", live=True),
            await self.ask("actions"),
            await self.ask("messages", live=True),
        ]
        assert all(answer["ok"] for answer in answers), answers
        calls, actions, messages = answers
        return {
            "live_calls": calls["calls"],
            "live_actions": actions["actions"],
            "live_messages": messages["messages"],
        }

    async def assert_idle(self) -> None:
        """No live call, no live action and no live message on the simulator."""
        reply = await self.status()
        assert (reply["live_calls"], reply["live_actions"], reply["live_messages"]) == (
            [],
            [],
            [],
        ), reply


@contextmanager
def serve(
    workdir: Path, scenario: dict[str, Any], *extra: str, control: bool = False
) -> Iterator[Served]:
    """``python -m relay_anyio serve --verbose ...`` from this checkout, in a subprocess
    (with ``control=True``, ``--control 0`` as well: its port is the second line out)."""
    path = workdir / f"scenario-{len(list(workdir.iterdir()))}.json"
    path.write_text(json.dumps(scenario), encoding="utf-8")
    command = [sys.executable, "-m", "relay_anyio", "serve", "--listen", "127.0.0.1:0"]
    command += ["--project", PROJECT, "--token", TOKEN, "--scenario", str(path), "--verbose"]
    if control:
        command += ["--control", "0"]
    # This checkout's sources, whatever an editable install of another checkout says.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [*command, *extra],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = read_line(proc.stdout, URL_WAIT)
        if not line or not line.startswith("ws://"):
            proc.kill()
            _, err = proc.communicate(timeout=5)
            raise AssertionError(f"simulator printed {line!r} (exit {proc.poll()}); stderr:\n{err}")
        yield Served(proc, line.strip(), _control_port(proc) if control else None)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _control_port(proc: subprocess.Popen[str]) -> int:
    """The port of ``control 127.0.0.1:PORT``, the line after the URL."""
    line = read_line(proc.stdout, URL_WAIT) or ""
    host, _, port = line.strip().removeprefix("control ").rpartition(":")
    assert (host, port.isdigit()) == ("127.0.0.1", True), f"not a control line: {line!r}"
    return int(port)


def plain_ws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the SDK's hard-coded ``wss://{host}`` dial ``ws://{host}`` (test-only)."""

    async def connect(uri: str, **kwargs: Any) -> Any:
        assert uri.startswith("wss://"), uri
        assert kwargs.get("ssl") is None, "SIGNALWIRE_RELAY_CA_FILE must be unset here"
        kwargs.pop("ssl", None)
        return await websockets.connect("ws://" + uri.removeprefix("wss://"), **kwargs)

    shim = types.SimpleNamespace(connect=connect, exceptions=websockets.exceptions)
    monkeypatch.setattr(sw_client, "websockets", shim)
    monkeypatch.delenv("SIGNALWIRE_RELAY_CA_FILE", raising=False)


def phone(to_number: str) -> dict[str, Any]:
    return {"type": "phone", "params": {"to_number": to_number, "from_number": FROM, "timeout": 30}}


def make_client(url: str, *, token: str = TOKEN, **options: Any) -> Any:
    return sw_client.RelayClient(
        project=PROJECT, token=token, host=url.removeprefix("ws://"), **options
    )


def expect(
    call: Any, event_type: str, predicate: Callable[[Any], bool] = lambda _: True
) -> asyncio.Future[Any]:
    """The first ``event_type`` event of ``call`` that ``predicate`` accepts; the listener
    is registered before this returns."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def listener(event: Any) -> None:
        if not future.done() and predicate(event):
            future.set_result(event)

    call.on(event_type, listener)
    return future
