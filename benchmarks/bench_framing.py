"""Per-message CPU cost of WebSocket framing: our ``FrameCodec`` ("fast") versus wsproto.

Client side, as the RELAY client sees it: encoding a small masked text frame (one message
per call, as ``send_text`` does, and in batches of 10 as ``send_texts`` may), a 400-byte one
in batches of 80 (under load the client drains ~80 frames per write), and decoding a
~400-byte server text frame (one frame per read, and 100 frames in one read). Best of
``--repeat`` runs, in µs per message. Run: ``python benchmarks/bench_framing.py --n 20000``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from relay_anyio._frames import FrameCodec

SMALL = '{"jsonrpc":"2.0","id":"e1","result":{}}'
EVENT = (
    '{"jsonrpc":"2.0","id":"e1","method":"signalwire.event","params":{"event_type":'
    '"calling.call.state","params":{"call_id":"C1","node_id":"N","tag":"T","call_state":'
    '"ringing","device":{"type":"phone","params":{"from_number":"+15550000001",'
    '"to_number":"+15550000002"}}}}}'
)
EVENT = EVENT + " " * (400 - len(EVENT))  # exactly 400 bytes: a 16-bit length header
LIMIT = 10 * 1024 * 1024


def open_pair() -> tuple[WSConnection, WSConnection]:
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="bench", target="/")))
    list(server.events())
    client.receive_data(server.send(AcceptConnection()))
    list(client.events())
    return client, server


def best(repeat: int, messages: int, run: Callable[[], object]) -> float:
    """µs per message, best of ``repeat`` runs of ``run`` (which handles ``messages``)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times) / messages * 1e6


def bench_encode(n: int, repeat: int, batch: int, text: str = SMALL) -> tuple[float, float]:
    batches = max(1, n // batch)
    texts = [text] * batch
    codec = FrameCodec(client=True, max_message_size=LIMIT)
    client, _ = open_pair()

    def fast() -> None:
        encode = codec.encode_texts
        for _ in range(batches):
            encode(texts)

    def reference() -> None:
        send = client.send
        for _ in range(batches):
            b"".join([send(TextMessage(data=text)) for text in texts])

    messages = batches * batch
    return best(repeat, messages, fast), best(repeat, messages, reference)


def bench_decode(n: int, repeat: int, per_read: int) -> tuple[float, float]:
    _, server = open_pair()
    frame = server.send(TextMessage(data=EVENT))
    reads = [frame * per_read] * max(1, n // per_read)
    messages = len(reads) * per_read

    def fast() -> None:
        codec = FrameCodec(client=True, max_message_size=LIMIT)
        got = 0
        for data in reads:
            codec.feed(data)
            got += len(codec.events())
        assert got == messages

    def reference() -> None:
        client, _ = open_pair()
        got = 0
        for data in reads:
            client.receive_data(data)
            got += sum(1 for _ in client.events())
        assert got == messages

    return best(repeat, messages, fast), best(repeat, messages, reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="messages per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is shown")
    args = parser.parse_args()
    rows = [
        ("encode-masked-small (1 per call)", bench_encode(args.n, args.repeat, 1)),
        ("encode-masked-small (10 per call)", bench_encode(args.n, args.repeat, 10)),
        ("encode-masked-400-byte (80 per call)", bench_encode(args.n, args.repeat, 80, EVENT)),
        ("decode-400-byte (1 per read)", bench_decode(args.n, args.repeat, 1)),
        ("decode-400-byte (100 per read)", bench_decode(args.n, args.repeat, 100)),
    ]
    print(f"{'µs per message':38} {'fast':>8} {'wsproto':>8} {'speed-up':>9}")
    for name, (fast, reference) in rows:
        print(f"{name:38} {fast:8.2f} {reference:8.2f} {reference / fast:8.1f}x")


if __name__ == "__main__":
    main()
