"""The client against a hostile server (``hostile_peer``), on asyncio and trio.

For each attack: the test ends within a bound, memory stays bounded where the attack is
about memory (tracemalloc growth), and only documented errors (``RelayError``) leave
``async with`` -- never an ``ExceptionGroup`` or a stray exception.
"""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hostile_peer import (
    BOUND,
    TOKEN,
    Peer,
    Script,
    certificate,
    client_for,
    deep,
    event,
    fragmented,
    frame,
    hostile_server,
    ping,
    polite,
)

from relay_anyio import (
    AuthenticationError,
    ConnectionLostError,
    RelayClient,
    RelayError,
    RequestError,
)

pytestmark = pytest.mark.anyio

MiB = 1 << 20
#: How long a wait the issue calls unbounded may take once it is bounded.
WAIT_BOUND = 3.0


async def alive(client: RelayClient) -> None:
    """The client answers again (after reconnecting if it had to)."""
    with anyio.fail_after(BOUND):
        while True:
            try:
                await client.ping()
                return
            except ConnectionLostError:
                continue  # the ping was lost with a socket the client dropped


@contextlib.contextmanager
def growth() -> Iterator[list[int]]:
    """Peak traced memory growth inside the block, in bytes (``result[0]``)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    result = [0]
    try:
        yield result
    finally:
        result[0] = tracemalloc.get_traced_memory()[1] - base
        if started:
            tracemalloc.stop()


def then_polite(attack: bytes) -> list[Script]:
    """Connection 1: a session, then ``attack`` on the wire; later connections: polite."""

    async def script(peer: Peer) -> None:
        await peer.session()
        await peer.raw(attack)
        await peer.serve()

    return [script, polite]


@contextlib.asynccontextmanager
async def survives(*scripts: Script, **options: Any) -> AsyncIterator[RelayClient]:
    async with (
        hostile_server(*scripts) as server,
        client_for(server.url, **options) as client,
    ):
        yield client
        await alive(client)


# ------------------------------------------------------------------ frames


async def test_oversized_frame_is_refused_from_its_header() -> None:
    attack = frame(0x1, b"{", length=1 << 40)  # declares 1 TiB, sends one byte
    with growth() as grown:
        async with survives(*then_polite(attack), max_message_size=MiB) as client:
            await alive(client)
    assert grown[0] < 4 * MiB


async def test_fragments_over_the_limit_are_refused() -> None:
    attack = fragmented(ping("big", json.dumps({"payload": "x" * (300 << 10)})), 300)
    async with survives(*then_polite(attack), max_message_size=256 << 10) as client:
        await alive(client)


async def test_fragment_flood_memory_is_bounded() -> None:
    limit = 128 << 10
    text = event("x.flood", json.dumps({"pad": "x" * (limit - 400)}))
    attack = fragmented(text, len(text))  # one byte per frame
    with growth() as grown:
        async with survives(*then_polite(attack), max_message_size=limit) as client:
            await alive(client)
    assert grown[0] < 8 * limit


MALFORMED = {
    "reserved-bit": bytes([0xC1, 0x01]) + b"{",
    "masked-by-server": bytes([0x81, 0x81, 1, 2, 3, 4, ord("x") ^ 1]),
    "unknown-opcode": frame(0x3, b"hi"),
    "bad-utf8": frame(0x1, b"\xff\xfe"),
    "long-control": frame(0x9, b"x" * 126),
    "fragmented-control": frame(0x9, b"x", fin=False),
    "orphan-continuation": frame(0x0, b"x"),
    "text-inside-fragments": frame(0x1, b"[", fin=False) + frame(0x1, b"]"),
    "bad-close-code": frame(0x8, b"\x03\xec"),  # 1004 is reserved
    "not-json": frame(0x1, b"{not json"),
    "json-not-object": frame(0x1, b"[1, 2, 3]"),
}


@pytest.mark.parametrize("attack", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_frames(attack: bytes) -> None:
    async with survives(*then_polite(attack)) as client:
        await alive(client)


# ------------------------------------------------------------------ deep JSON

DEPTHS = [990, 100_000]


def deep_case(place: str, depth: int) -> str:
    nested = deep(depth)
    if place == "event":
        return event("calling.call.state", f'{{"call_id":"c","device":{{"d":{nested}}}}}')
    if place == "ping":
        return ping("deep", f'{{"payload":{nested}}}')
    raise AssertionError(place)


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("place", ["event", "ping"])
async def test_deep_json_from_the_server(place: str, depth: int) -> None:
    text = deep_case(place, depth)

    async def script(peer: Peer) -> None:
        await peer.session()
        await peer.send(text)
        await peer.serve()

    async with survives(script, polite) as client:
        await alive(client)


@pytest.mark.parametrize("depth", DEPTHS)
async def test_deep_json_in_the_connect_result(depth: int) -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        connect = await peer.request("signalwire.connect")
        result = (
            '{"identity":"p@s","protocol":"signalwire_deep","authorization":'
            f'{{"project":"p","scopes":["calling"],"signature":"s","x":{deep(depth)}}}}}'
        )
        await peer.send(f'{{"jsonrpc":"2.0","id":"{connect["id"]}","result":{result}}}')
        await peer.serve()

    async with hostile_server(script, polite) as server:
        with contextlib.suppress(RelayError):
            async with client_for(server.url, connect_attempts=2, connect_timeout=0.5) as client:
                await alive(client)


@pytest.mark.parametrize(("where", "depth"), [("error-data", 990), ("result", 100_000)])
async def test_deep_json_in_a_reply(where: str, depth: int) -> None:
    """The reply cannot be parsed, so it is skipped: the request must still resolve."""

    async def script(peer: Peer) -> None:
        await peer.session()
        request = await peer.request("signalwire.noop")
        body = (
            f'"error":{{"code":-32000,"message":"no","data":{deep(depth)}}}'
            if where == "error-data"
            else f'"result":{{"x":{deep(depth)}}}'
        )
        await peer.send(f'{{"jsonrpc":"2.0","id":"{request["id"]}",{body}}}')
        await peer.serve()

    async with survives(script, polite, request_timeout=1.0) as client:
        with anyio.fail_after(WAIT_BOUND), contextlib.suppress(RequestError, ConnectionLostError):
            await client.execute("signalwire.noop", {})


# ------------------------------------------------------------------ floods


async def test_event_flood_is_handled_in_bounded_memory() -> None:
    count = 10_000
    flood = b"".join(
        frame(0x1, event("x.flood", f'{{"n":{n}}}', f"ev-{n}").encode()) for n in range(count)
    )

    async def script(peer: Peer) -> None:
        await peer.session()
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.raw, flood + frame(0x1, ping("after").encode()))
            await peer.reply_to("after")  # reads (the acks) while the flood is written
        acks = [m for m in peer.received if str(m.get("id", "")).startswith("ev-")]
        assert len(acks) == count
        await peer.serve()

    with growth() as grown:
        async with survives(script) as client:
            await alive(client)
    assert grown[0] < 32 * MiB


# ------------------------------------------------------------------ handshakes

BAD_RESPONSES = {
    "status-500": b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
    "status-200": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "bad-accept": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n",
    "no-upgrade": b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    "garbage": b"\x00\xff\x13garbage\r\n\r\n",
    "endless-header": b"HTTP/1.1 101 Switching Protocols\r\nX-Pad: " + b"a" * (4 * MiB),
    "closed": b"",
}


@pytest.mark.parametrize("response", BAD_RESPONSES.values(), ids=BAD_RESPONSES.keys())
async def test_bad_handshake(response: bytes) -> None:
    async def script(peer: Peer) -> None:
        await peer.http_request()
        await peer.raw(response)

    with growth() as grown:
        async with hostile_server(script) as server:
            with anyio.fail_after(BOUND), pytest.raises(ConnectionLostError):
                async with client_for(server.url):
                    pass
    assert grown[0] < 16 * MiB


async def test_silent_handshake_times_out() -> None:
    async def script(peer: Peer) -> None:
        await peer.http_request()
        await anyio.sleep_forever()

    async with hostile_server(script) as server:
        with anyio.fail_after(BOUND), pytest.raises(ConnectionLostError):
            async with client_for(server.url, connect_timeout=0.5):
                pass


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirects_are_not_followed(status: int) -> None:
    async with hostile_server(polite) as target:

        async def script(peer: Peer) -> None:
            await peer.http_request()
            await peer.raw(
                f"HTTP/1.1 {status} Moved\r\nLocation: {target.url}/\r\n"
                "Content-Length: 0\r\n\r\n".encode()
            )

        async with hostile_server(script) as server:
            with anyio.fail_after(BOUND), pytest.raises(ConnectionLostError):
                async with client_for(server.url):
                    pass
        assert target.peers == []


# ------------------------------------------------------------------ TLS


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    return certificate(tmp_path)


@pytest.mark.parametrize("trusted", [False, True])
async def test_tls(tls_files: tuple[Path, Path], trusted: bool) -> None:
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(*tls_files)
    client_context = ssl.create_default_context(cafile=str(tls_files[0])) if trusted else None
    async with hostile_server(polite, tls=server_context) as server:
        client = client_for(server.url, ssl_context=client_context)
        if trusted:
            async with client:
                await alive(client)
        else:
            with anyio.fail_after(BOUND), pytest.raises(ConnectionLostError):
                async with client:
                    pass
            assert all(peer.received == [] for peer in server.peers)


# ------------------------------------------------------------------ secrets


def leaks(error: BaseException, caplog: pytest.LogCaptureFixture) -> list[str]:
    places = {"str": str(error), "repr": repr(error), "args": repr(error.args)}
    places.update({f"log:{r.name}": r.getMessage() for r in caplog.records})
    return [where for where, text in places.items() if TOKEN in text]


async def test_token_echoed_in_an_auth_refusal_does_not_leak(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    async def script(peer: Peer) -> None:
        await peer.accept()
        connect = await peer.request("signalwire.connect")
        error = {"code": -32002, "message": f"bad token {TOKEN}", "data": {"token": TOKEN}}
        await peer.send({"jsonrpc": "2.0", "id": connect["id"], "error": error})

    async with hostile_server(script) as server:
        with anyio.fail_after(BOUND), pytest.raises(AuthenticationError) as caught:
            async with client_for(server.url):
                pass
    assert leaks(caught.value, caplog) == []


async def test_token_echoed_in_a_request_error_does_not_leak(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    async def script(peer: Peer) -> None:
        await peer.session()
        request = await peer.request("signalwire.noop")
        error = {"code": -32000, "message": f"your token {TOKEN} is wrong"}
        await peer.send({"jsonrpc": "2.0", "id": request["id"], "error": error})
        await peer.serve()

    async with hostile_server(script) as server, client_for(server.url) as client:
        with anyio.fail_after(BOUND), pytest.raises(RequestError) as caught:
            await client.execute("signalwire.noop", {})
    assert leaks(caught.value, caplog) == []
