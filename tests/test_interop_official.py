"""Interop: the official SignalWire SDK (``signalwire-sdk``, import name ``signalwire``)
against our simulator, started from the command line in a subprocess.

The SDK is never a dependency of this project: these tests skip unless it is importable.
``make interop`` builds ``.venv-interop`` with the SDK and the project and runs this file.

Pointing the SDK at ``ws://``: ``signalwire.relay.RelayClient`` has no URL, scheme or
port option. It validates ``host`` (no ``/``, ``@``, ``?``, space) and then always calls
``websockets.connect(f"wss://{host}", ping_interval=None, max_size=10 MiB, ssl=None)``.
``host="127.0.0.1:PORT"`` passes validation, so the only thing to change is the scheme:
these tests replace the ``websockets`` name *inside* ``signalwire.relay.client`` (via
``monkeypatch``, so only for the test) with a namespace whose ``connect`` rewrites
``wss://`` to ``ws://`` and otherwise forwards every argument unchanged.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

_SKIP_REASON = "official signalwire-sdk not installed; run `make interop` to check against it"

sw_client: Any = pytest.importorskip("signalwire.relay.client", reason=_SKIP_REASON)
if not hasattr(sw_client, "RelayClient"):  # the unrelated 2.x `signalwire` package
    pytest.skip(f"`signalwire` is not signalwire-sdk 3.x; {_SKIP_REASON}", allow_module_level=True)
websockets: Any = pytest.importorskip("websockets", reason=_SKIP_REASON)

PROJECT = "interop-project"
TOKEN = "interop-token"
FROM = "+15550000001"
ANSWERS = "+15550000002"
BUSY = "+15550000010"
UNREACHABLE = "+15550000011"
SCENARIO = {
    "default": {"outcome": "answer", "after": 0.1},
    "destinations": {
        BUSY: {"outcome": "busy", "after": 0.1},
        UNREACHABLE: {"outcome": "error", "after": 0.1},
    },
}
URL_WAIT = 15.0  # seconds for the simulator to print its URL
STEP = 10.0  # seconds for any one SDK operation


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the official SDK is asyncio-only


def _read_line(stream: Any, timeout: float) -> str | None:
    """``stream.readline()`` bounded by ``timeout`` (None when nothing came in time)."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0] if box else None


@pytest.fixture(scope="module")
def simulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m relay_anyio serve`` in a subprocess; yields its ws:// URL."""
    workdir = tmp_path_factory.mktemp("interop")
    scenario = workdir / "scenario.json"
    scenario.write_text(json.dumps(SCENARIO), encoding="utf-8")
    stderr_path = workdir / "simulator.stderr"
    command = [
        sys.executable,
        "-m",
        "relay_anyio",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--project",
        PROJECT,
        "--token",
        TOKEN,
        "--scenario",
        str(scenario),
    ]
    with stderr_path.open("w", encoding="utf-8") as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        line = _read_line(proc.stdout, URL_WAIT)
        if not line or not line.startswith("ws://"):
            raise AssertionError(
                f"simulator printed {line!r} (exit {proc.poll()}); stderr:\n"
                + stderr_path.read_text(encoding="utf-8")
            )
        yield line.strip()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        assert proc.stdout is not None
        proc.stdout.close()


@pytest.fixture
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


def _phone(to_number: str) -> dict[str, Any]:
    return {"type": "phone", "params": {"to_number": to_number, "from_number": FROM, "timeout": 30}}


def _client(url: str, *, token: str = TOKEN) -> Any:
    return sw_client.RelayClient(project=PROJECT, token=token, host=url.removeprefix("ws://"))


@pytest.mark.anyio
@pytest.mark.usefixtures("plain_ws")
async def test_official_sdk_dials_plays_and_hangs_up(simulator_url: str) -> None:
    client = _client(simulator_url)
    with anyio.fail_after(30):
        try:
            await client.connect()
            assert client.relay_protocol.startswith("signalwire_")

            call = await client.dial([[_phone(ANSWERS)]], tag="interop-tag-1", dial_timeout=STEP)
            assert call.call_id
            assert call.node_id
            assert call.tag == "interop-tag-1"
            assert call.state == "answered"
            assert call.direction == "outbound"
            assert call.device["params"]["to_number"] == ANSWERS

            action = await call.play_tts("Hello from the official SDK")
            finished = await action.wait(timeout=STEP)
            assert finished.event_type == "calling.call.play"
            assert finished.params["state"] == "finished"
            assert finished.params["control_id"] == action.control_id

            result = await call.hangup()
            assert result["code"] == "200"
            ended = await call.wait_for_ended(timeout=STEP)
            assert ended.params["call_id"] == call.call_id
            assert ended.params["end_reason"] == "hangup"
            assert call.state == "ended"
        finally:
            await client.disconnect()


@pytest.mark.anyio
@pytest.mark.usefixtures("plain_ws")
async def test_official_sdk_serial_failover_and_failed_dial(simulator_url: str) -> None:
    client = _client(simulator_url)
    with anyio.fail_after(30):
        try:
            await client.connect()
            # [[busy], [answers]]: the first group fails, the second one wins.
            call = await client.dial([[_phone(BUSY)], [_phone(ANSWERS)]], dial_timeout=STEP)
            assert call.state == "answered"
            assert call.device["params"]["to_number"] == ANSWERS
            await call.hangup()
            await call.wait_for_ended(timeout=STEP)

            # [[busy, unreachable]]: every leg fails, the dial event says "failed".
            with pytest.raises(sw_client.RelayError, match="Dial failed"):
                await client.dial([[_phone(BUSY), _phone(UNREACHABLE)]], dial_timeout=STEP)
        finally:
            await client.disconnect()


@pytest.mark.anyio
@pytest.mark.usefixtures("plain_ws")
async def test_official_sdk_sees_our_authentication_error(simulator_url: str) -> None:
    client = _client(simulator_url, token="wrong-token")
    with anyio.fail_after(30):
        try:
            with pytest.raises(sw_client.RelayError) as caught:
                await client.connect()
            assert caught.value.code == -32002
        finally:
            await client.disconnect()  # also frees the SDK's process-wide connection slot
