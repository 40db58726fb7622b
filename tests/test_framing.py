"""The frame codec (``relay_anyio._frames``) against wsproto as an independent peer.

Four directions, each a Hypothesis round trip: wsproto client -> our server codec, our
client codec -> wsproto server, wsproto server -> our client codec, our server codec ->
wsproto client; random text (non-ASCII included), sizes on the 7/16/64-bit length
boundaries, random fragmentation (wsproto's ``message_finished=False``) with pings between
fragments, random chunking of the byte stream. Then every way a peer can break RFC 6455,
written byte by byte, with wsproto asked for its verdict on the same bytes.
"""

from __future__ import annotations

import itertools
import struct
import tracemalloc
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import WSConnection
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    TextMessage,
)
from wsproto.events import Ping as WsPing
from wsproto.events import Pong as WsPong
from wsproto_framer import WsprotoFramer, open_pair, wsproto_framer

from relay_anyio._frames import (
    BinaryMessage,
    Close,
    FrameCodec,
    FrameEvent,
    FramingError,
    Ping,
    Pong,
    mask,
)
from relay_anyio._websocket import CloseState, Framer

LIMIT = 1 << 20
#: Example counts come from the Hypothesis profile (tests/conftest.py: 100 in ci/dev, more
#: under ``make fuzz``); the wall clock is no deadline.
PROPERTY = settings(deadline=None)

# ---------------------------------------------------------------------------- helpers


def chunked(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def decode_all(codec: FrameCodec, chunks: Iterable[bytes]) -> list[FrameEvent]:
    events: list[FrameEvent] = []
    for chunk in chunks:
        codec.feed(chunk)
        events += codec.events()
    return events


def wsproto_messages(peer: WSConnection, chunks: Iterable[bytes]) -> list[object]:
    """What ``peer`` received: whole texts, ``("ping", payload)``, ``("close", code, reason)``."""
    out: list[object] = []
    parts: list[str] = []
    for chunk in chunks:
        peer.receive_data(chunk)
        for event in peer.events():
            if isinstance(event, TextMessage):
                parts.append(event.data)
                if event.message_finished:
                    out.append("".join(parts))
                    parts = []
            elif isinstance(event, WsPing):
                out.append(("ping", bytes(event.payload)))
            elif isinstance(event, WsPong):
                out.append(("pong", bytes(event.payload)))
            elif isinstance(event, CloseConnection):
                out.append(("close", int(event.code), event.reason))
            else:
                out.append(event)
    assert not parts
    return out


def frame(
    first: int,
    payload: bytes = b"",
    *,
    key: bytes | None = None,
    length: int | None = None,
    width: int | None = None,
) -> bytes:
    """One frame written by hand. ``first`` is the FIN/RSV/opcode byte; ``length`` overrides
    the announced size, ``width`` (1, 2 or 8 bytes) its encoding."""
    size = len(payload) if length is None else length
    if width is None:
        width = 1 if size < 126 else 2 if size < 65536 else 8
    mask_bit = 0x80 if key is not None else 0
    if width == 1:
        header = bytes((first, mask_bit | size))
    elif width == 2:
        header = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, size)
    if key is None:
        return header + payload
    return header + key + mask(payload, key)


KEY = b"\x01\x02\x03\x04"


def from_client(first: int, payload: bytes = b"", **options: int) -> bytes:
    return frame(first, payload, key=KEY, **options)


# ------------------------------------------------------------------------- strategies


def _exact_utf8(size: int, wide: int, char: str) -> str:
    """A text of exactly ``size`` UTF-8 bytes, with up to ``wide`` multi-byte ``char``s."""
    width = len(char.encode())
    count = min(wide, size // width)
    return char * count + "x" * (size - count * width)


BOUNDARIES = [0, 1, 124, 125, 126, 127, 65534, 65535, 65536, 65537]
boundary_texts = st.builds(
    _exact_utf8,
    st.sampled_from(BOUNDARIES),
    st.integers(0, 40),
    st.sampled_from(["é", "☎", "𝄞"]),
)
texts = st.one_of(st.text(max_size=300), boundary_texts)
payloads = st.binary(max_size=125)
cuts = st.lists(st.integers(min_value=0), max_size=12)


@st.composite
def fragmented(draw: st.DrawFn) -> tuple[list[Event], list[FrameEvent]]:
    """wsproto events sending some messages (fragmented at random, pings between fragments),
    and what our decoder must make of them."""
    sent: list[Event] = []
    expected: list[FrameEvent] = []
    for text in draw(st.lists(texts, max_size=6)):
        points = sorted(draw(st.lists(st.integers(0, len(text)), max_size=4)))
        pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            sent.append(TextMessage(data=piece, message_finished=last))
            if not last and draw(st.booleans()):
                payload = draw(payloads)
                sent.append(WsPing(payload=payload))
                expected.append(Ping(payload=payload))
        expected.append(text)
    if draw(st.booleans()):
        payload = draw(payloads)
        sent.append(WsPong(payload=payload))
        expected.append(Pong(payload=payload))
    return sent, expected


# ---------------------------------------------------------------- round trips (Hypothesis)


@PROPERTY
@given(fragmented(), cuts)
def test_wsproto_client_to_our_server(
    plan: tuple[list[Event], list[FrameEvent]], cut_points: list[int]
) -> None:
    events, expected = plan
    client, _ = open_pair()
    wire = b"".join(client.send(event) for event in events)
    codec = FrameCodec(client=False, max_message_size=LIMIT)
    assert decode_all(codec, chunked(wire, cut_points)) == expected
    assert codec.buffered == 0


@PROPERTY
@given(fragmented(), cuts)
def test_wsproto_server_to_our_client(
    plan: tuple[list[Event], list[FrameEvent]], cut_points: list[int]
) -> None:
    events, expected = plan
    _, server = open_pair()
    wire = b"".join(server.send(event) for event in events)
    codec = FrameCodec(client=True, max_message_size=LIMIT)
    assert decode_all(codec, chunked(wire, cut_points)) == expected
    assert codec.buffered == 0


@PROPERTY
@given(st.lists(st.lists(texts, max_size=4), max_size=4), st.lists(payloads, max_size=3), cuts)
def test_our_client_to_wsproto_server(
    batches: list[list[str]], pings: list[bytes], cut_points: list[int]
) -> None:
    _, server = open_pair()
    codec = FrameCodec(client=True, max_message_size=LIMIT)
    wire = b"".join(codec.encode_texts(batch) for batch in batches)
    wire += b"".join(codec.encode_ping(payload) + codec.encode_pong(payload) for payload in pings)
    wire += codec.encode_close(4000, "done ☎")
    expected: list[object] = [text for batch in batches for text in batch]
    for payload in pings:
        expected += [("ping", payload), ("pong", payload)]
    expected.append(("close", 4000, "done ☎"))
    assert wsproto_messages(server, chunked(wire, cut_points)) == expected


@PROPERTY
@given(st.lists(st.lists(texts, max_size=4), max_size=4), cuts)
def test_our_server_to_wsproto_client(batches: list[list[str]], cut_points: list[int]) -> None:
    client, _ = open_pair()
    codec = FrameCodec(client=False, max_message_size=LIMIT)
    wire = b"".join(codec.encode_texts(batch) for batch in batches) + codec.encode_close()
    expected: list[object] = [text for batch in batches for text in batch]
    expected.append(("close", 1000, ""))
    assert wsproto_messages(client, chunked(wire, cut_points)) == expected


@PROPERTY
@given(st.lists(texts, max_size=5), cuts)
def test_our_client_to_our_server(batch: list[str], cut_points: list[int]) -> None:
    sender = FrameCodec(client=True, max_message_size=LIMIT)
    receiver = FrameCodec(client=False, max_message_size=LIMIT)
    wire = sender.encode_texts(iter(batch))  # any iterable, a generator too
    assert decode_all(receiver, chunked(wire, cut_points)) == batch


@PROPERTY
@given(
    st.booleans(),
    st.lists(texts, min_size=1, max_size=3),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=4),
    cuts,
)
def test_mutated_frames_never_raise_and_agree_with_wsproto_when_valid(
    client: bool, batch: list[str], flips: list[tuple[int, int]], cut_points: list[int]
) -> None:
    """Garbage in: the codec returns events or one final ``FramingError``, never raises,
    whatever the chunking; when wsproto finds the bytes valid, both read the same texts."""
    ws_client, ws_server = open_pair()
    sender = ws_server if client else ws_client
    wire = bytearray(b"".join(sender.send(TextMessage(data=text)) for text in batch))
    for position, value in flips:
        wire[position % len(wire)] = value
    data = bytes(wire)
    codec = FrameCodec(client=client, max_message_size=LIMIT)
    events = decode_all(codec, chunked(data, cut_points))
    assert events == decode_all(FrameCodec(client=client, max_message_size=LIMIT), [data])
    assert not any(isinstance(event, FramingError | Close) for event in events[:-1])
    receiver = ws_client if client else ws_server
    receiver.receive_data(data)
    theirs: list[FrameEvent] = []
    parts: list[str] = []
    for event in receiver.events():
        if isinstance(event, CloseConnection):
            if event.code == 1002 and receiver.state.name == "OPEN":  # a framing error
                # We see it too, unless the frame is still incomplete for us.
                last = events[-1] if events else None
                assert codec.buffered > 0 or (isinstance(last, FramingError) and last.code == 1002)
            return  # other verdicts (1007, a real close): the error table checks them
        if isinstance(event, TextMessage):
            parts.append(event.data)
            if event.message_finished:
                theirs.append("".join(parts))
                parts = []
        elif isinstance(event, WsPing | WsPong):
            kind = Ping if isinstance(event, WsPing) else Pong
            theirs.append(kind(payload=bytes(event.payload)))
        elif isinstance(event, BytesMessage) and event.message_finished:
            theirs.append(BinaryMessage(data=b""))  # compared by kind only
    normalized = [
        BinaryMessage(data=b"") if isinstance(event, BinaryMessage) else event for event in events
    ]
    if normalized and isinstance(normalized[-1], FramingError):
        # We judge a frame from its first bytes; wsproto may still wait for its length.
        assert normalized[:-1] == theirs[: len(normalized) - 1]
    else:
        assert normalized == theirs


@PROPERTY
@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_mask_is_an_involution_and_matches_a_byte_loop(payload: bytes, key: bytes) -> None:
    masked = mask(payload, key)
    assert masked == bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))
    assert mask(masked, key) == payload


# --------------------------------------------------------------------------- decoding


def test_many_frames_in_one_read_and_one_byte_at_a_time() -> None:
    _, server = open_pair()
    messages = [f'{{"n":{n}}}' for n in range(2000)]
    wire = b"".join(server.send(TextMessage(data=text)) for text in messages)
    codec = FrameCodec(client=True, max_message_size=LIMIT)
    codec.feed(wire)
    assert codec.events() == messages
    assert codec.buffered == 0
    head = wire[:3001]  # ends inside a frame
    at_once = decode_all(FrameCodec(client=True, max_message_size=LIMIT), [head])
    trickled = FrameCodec(client=True, max_message_size=LIMIT)
    assert decode_all(trickled, (head[i : i + 1] for i in range(len(head)))) == at_once
    assert at_once == messages[: len(at_once)]
    assert 0 < trickled.buffered < 12


def test_binary_control_and_64_bit_frames() -> None:
    _, server = open_pair()
    big = "ü" * 40000  # 80000 bytes: a 64-bit length
    wire = b"".join(
        server.send(event)
        for event in (
            BytesMessage(data=b"\x00\x01", message_finished=False),
            WsPing(payload=b"in between"),
            BytesMessage(data=b"\x02"),
            TextMessage(data=big),
            WsPong(payload=b""),
            CloseConnection(code=1001, reason="going away"),
        )
    )
    wire += frame(0x81, b"after the close: ignored")
    codec = FrameCodec(client=True, max_message_size=LIMIT)
    codec.feed(wire)
    assert codec.events() == [
        Ping(payload=b"in between"),
        BinaryMessage(data=b"\x00\x01\x02"),
        big,
        Pong(payload=b""),
        Close(code=1001, reason="going away"),
    ]
    assert codec.finished
    codec.feed(frame(0x81, b"more"))
    assert codec.events() == []


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", Close(code=1005, reason="")),
        (b"\x03\xe8", Close(code=1000, reason="")),
        (b"\x0b\xb8" + "bye ☎".encode(), Close(code=3000, reason="bye ☎")),
        (b"\x13\x87", Close(code=4999, reason="")),
        (b"\x03\xf4", Close(code=1012, reason="")),
    ],
)
def test_valid_close_frames(payload: bytes, expected: Close) -> None:
    codec = FrameCodec(client=True, max_message_size=LIMIT)
    codec.feed(frame(0x88, payload))
    assert codec.events() == [expected]


def test_split_code_point_across_fragments_is_fine() -> None:
    euro = "€".encode()
    codec = FrameCodec(client=False, max_message_size=LIMIT)
    codec.feed(from_client(0x01, euro[:2]) + from_client(0x89, b"p") + from_client(0x80, euro[2:]))
    assert codec.events() == [Ping(payload=b"p"), "€"]


def test_message_at_the_size_limit_is_accepted() -> None:
    codec = FrameCodec(client=True, max_message_size=10)
    codec.feed(frame(0x81, b"x" * 10) + frame(0x01, b"y" * 5) + frame(0x80, b"z" * 5))
    assert codec.events() == ["x" * 10, "y" * 5 + "z" * 5]


@pytest.mark.parametrize("client", [True, False])
def test_a_fragment_flood_costs_its_payload_not_an_object_per_frame(client: bool) -> None:
    """One byte per frame: the message is held in one buffer, so the memory of a message in
    progress is its payload bytes (at most ``max_message_size``), not ~50 bytes per frame."""
    size = 20_000
    make = frame if client else from_client
    wire = make(0x01, b"[") + b"".join(make(0x00, b" ") for _ in range(size - 2))
    codec = FrameCodec(client=client, max_message_size=size)
    tracemalloc.start()
    try:
        for cut in range(0, len(wire), 4096):  # as the socket would deliver it
            codec.feed(wire[cut : cut + 4096])
            assert codec.events() == []
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 4 * size + 8192  # the buffered message plus one unread chunk
    codec.feed(make(0x80, b"]"))
    assert codec.events() == ["[" + " " * (size - 2) + "]"]


def test_oversize_fails_before_the_payload_arrives() -> None:
    codec = FrameCodec(client=True, max_message_size=1000)
    codec.feed(frame(0x81, length=1 << 40, width=8))  # the header alone
    assert codec.events() == [FramingError(code=1009, reason="message too big")]


# ------------------------------------------------------------------------------ errors

TOO_BIG = 1009
Case = tuple[bool, bytes, int]  # client side?, bytes from the peer, expected close code


ERRORS: dict[str, Case] = {
    "rsv1": (True, frame(0xC1, b"x"), 1002),
    "rsv2": (False, from_client(0xA1, b"x"), 1002),
    "rsv3 on a control frame": (True, frame(0x99, b""), 1002),
    "opcode 3": (True, frame(0x83, b"x"), 1002),
    "opcode 0xB": (False, from_client(0x8B), 1002),
    "masked from the server": (True, frame(0x81, b"x", key=KEY), 1002),
    "unmasked from the client": (False, frame(0x81, b"x"), 1002),
    "control frame over 125": (True, frame(0x89, b"p" * 126), 1002),
    "fragmented control": (True, frame(0x09, b"p"), 1002),
    "fragmented close": (False, from_client(0x08, b"\x03\xe8"), 1002),
    "continuation without start": (True, frame(0x80, b"x"), 1002),
    "new data frame while fragmented": (True, frame(0x01, b"a") + frame(0x81, b"b"), 1002),
    "binary inside text": (False, from_client(0x01, b"a") + from_client(0x82, b"b"), 1002),
    "16-bit length not minimal": (True, frame(0x81, b"x" * 5, width=2), 1002),
    "16-bit length not minimal (fragment)": (True, frame(0x01, b"x" * 125, width=2), 1002),
    "64-bit length not minimal": (True, frame(0x82, b"x" * 200, width=8), 1002),
    "64-bit length top bit": (True, frame(0x82, length=1 << 63, width=8), 1002),
    "invalid utf-8": (True, frame(0x81, b"\xff"), 1007),
    "invalid utf-8 (16-bit frame)": (True, frame(0x81, b"x" * 200 + b"\xc0\xaf"), 1007),
    "surrogate in utf-8": (False, from_client(0x81, b"\xed\xa0\x80"), 1007),
    "invalid utf-8 split across fragments": (
        True,
        frame(0x01, "€".encode()[:2]) + frame(0x80, b"\x28"),
        1007,
    ),
    "truncated utf-8 at message end": (True, frame(0x01, b"ok") + frame(0x80, b"\xe2\x82"), 1007),
    "close with a 1-byte payload": (True, frame(0x88, b"\x03"), 1002),
    "close code 999": (True, frame(0x88, b"\x03\xe7"), 1002),
    "close code 1004": (True, frame(0x88, b"\x03\xec"), 1002),
    "close code 1005": (False, from_client(0x88, b"\x03\xed"), 1002),
    "close code 1006": (True, frame(0x88, b"\x03\xee"), 1002),
    "close code 1015": (True, frame(0x88, b"\x03\xf7"), 1002),
    "close code 2000": (True, frame(0x88, b"\x07\xd0"), 1002),
    "close code 5000": (True, frame(0x88, b"\x13\x88"), 1002),
    "close reason not utf-8": (True, frame(0x88, b"\x03\xe8\xff"), 1007),
}

TOO_BIG_CASES: dict[str, Case] = {
    "one frame": (True, frame(0x81, b"x" * 11), TOO_BIG),
    "one masked frame": (False, from_client(0x81, b"x" * 11), TOO_BIG),
    "16-bit header": (True, frame(0x81, b"x" * 300), TOO_BIG),
    "fragments": (True, frame(0x01, b"x" * 6) + frame(0x80, b"x" * 5), TOO_BIG),
    "binary": (False, from_client(0x02, b"x" * 8) + from_client(0x80, b"x" * 3), TOO_BIG),
    "utf-8 bytes counted": (True, frame(0x81, "é".encode() * 6), TOO_BIG),
}


def _our_verdict(client: bool, data: bytes, limit: int) -> list[FrameEvent]:
    codec = FrameCodec(client=client, max_message_size=limit)
    events = decode_all(codec, [data])
    assert codec.finished
    codec.feed(frame(0x81, b"ignored"))
    assert codec.events() == []
    # Fed one byte at a time, the verdict is the same.
    trickled = FrameCodec(client=client, max_message_size=limit)
    assert decode_all(trickled, (data[i : i + 1] for i in range(len(data)))) == events
    return events


@pytest.mark.parametrize("case", ERRORS.values(), ids=ERRORS.keys())
def test_protocol_errors_agree_with_wsproto(case: Case) -> None:
    client, data, code = case
    events = _our_verdict(client, data, LIMIT)
    assert isinstance(events[-1], FramingError)
    assert events[-1].code == code
    assert not any(isinstance(event, FramingError | Close) for event in events[:-1])
    ws_client, ws_server = open_pair()
    peer = ws_client if client else ws_server
    peer.receive_data(data)
    verdicts = [event for event in peer.events() if isinstance(event, CloseConnection)]
    assert [int(event.code) for event in verdicts] == [code]


@pytest.mark.parametrize("case", TOO_BIG_CASES.values(), ids=TOO_BIG_CASES.keys())
def test_too_big_is_1009(case: Case) -> None:
    client, data, code = case
    assert _our_verdict(client, data, 10)[-1] == FramingError(code=code, reason="message too big")


# --------------------------------------------------------------------------- encoding


def test_masking_keys_are_fresh_per_frame_and_the_pool_refills() -> None:
    codec = FrameCodec(client=True, max_message_size=LIMIT)
    texts = [f"m{n}" for n in range(1500)]  # more keys than one pool holds
    wire = codec.encode_texts(texts)
    keys = {wire[offset + 2 : offset + 6] for offset in range(0, len(wire), 6 + 3)}
    assert len(keys) > 1400  # 1500 random 32-bit keys: collisions are vanishingly rare
    _, server = open_pair()
    assert wsproto_messages(server, [wire]) == texts


def test_masked_frames_are_byte_exact_at_every_size_and_pool_position() -> None:
    """Every payload size across the header (125/126) and mask-table (511/512) boundaries,
    with keys at every position of a pool and across a refill: the wire is exactly header,
    key, payload XOR the repeated key (``mask``, a byte loop's twin), and wsproto agrees."""
    codec = FrameCodec(client=True, max_message_size=LIMIT)
    texts = [("é" * size)[: size // 2] + "x" * (size % 2) for size in range(1100)]
    wire = codec.encode_texts(texts)
    offset = 0
    for text in texts:
        data = text.encode()
        size = len(data)
        head = bytes((0x81, 0x80 | size)) if size < 126 else struct.pack("!BBH", 0x81, 0xFE, size)
        assert wire[offset : offset + len(head)] == head
        offset += len(head)
        key = wire[offset : offset + 4]
        offset += 4
        assert wire[offset : offset + size] == mask(data, key)
        offset += size
    assert offset == len(wire)
    _, server = open_pair()
    assert wsproto_messages(server, [wire]) == texts


def test_encode_close_rules() -> None:
    codec = FrameCodec(client=False, max_message_size=LIMIT)
    assert codec.encode_close(1005) == b"\x88\x00"  # no status: no payload
    assert codec.encode_close(1006, "x") == b"\x88\x03\x03\xe8x"  # local-only: 1000
    long = codec.encode_close(1000, "é" * 100)  # 200 bytes cut at a character boundary
    assert long[1] == 2 + 122
    assert long[4:].decode() == "é" * 61
    with pytest.raises(ValueError, match="out of range"):
        codec.encode_close(70000)
    with pytest.raises(ValueError, match="125"):
        codec.encode_ping(b"p" * 126)
    _, server = open_pair()
    client_codec = FrameCodec(client=True, max_message_size=LIMIT)
    assert wsproto_messages(server, [client_codec.encode_close(1005)]) == [("close", 1005, "")]


def test_bad_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        FrameCodec(client=True, max_message_size=0)


# ---------------------------------------------------------------------------- framers


def state(framer: Framer | WsprotoFramer) -> CloseState:
    return framer.state  # read through a call: mypy would keep a narrowed property


def _close_frame(code: int) -> bytes:
    return frame(0x88, code.to_bytes(2, "big"))


def new_framer(framing: str, *, client: bool) -> Framer | WsprotoFramer:
    if framing == "wsproto":  # the oracle
        return wsproto_framer(client=client, max_message_size=LIMIT)
    return Framer(client=client, max_message_size=LIMIT)


@pytest.mark.parametrize("framing", ["fast", "wsproto"])
def test_framer_close_handshake_table(framing: str) -> None:
    """Our framer and wsproto's follow the same table and produce the same bytes (where
    unmasked)."""
    # The peer closes first: we owe a reply, then we are closed; pongs stop at once.
    framer = new_framer(framing, client=True)
    assert isinstance(framer, Framer) == (framing == "fast")
    assert framer.receive(frame(0x8A, b"q") + frame(0x89, b"p") + _close_frame(1001)) == [
        Pong(payload=b"q"),
        Ping(payload=b"p"),
        Close(code=1001, reason=""),
    ]
    assert state(framer) is CloseState.REMOTE_CLOSING
    assert framer.encode_pongs([b"p"]) == b""
    assert framer.encode_close(1000, "") == b""
    with pytest.raises(RuntimeError, match="REMOTE_CLOSING"):
        framer.encode_texts(["late"])
    reply = framer.encode_close_reply(Close(code=1001, reason=""))
    assert reply[:2] == b"\x88\x82"
    assert state(framer) is CloseState.CLOSED
    assert framer.encode_close_reply(Close(code=1001, reason="")) == b""
    assert framer.encode_close(1000, "") == b""
    assert framer.receive(frame(0x81, b"after the end")) == []
    # We close first: the peer's close is the reply.
    framer = new_framer(framing, client=False)
    assert framer.encode_pongs([b"a", b"b"]) == frame(0x8A, b"a") + frame(0x8A, b"b")
    assert framer.encode_close(1000, "bye") == frame(0x88, b"\x03\xe8bye")
    assert state(framer) is CloseState.LOCAL_CLOSING
    assert framer.encode_close_reply(Close(code=1000, reason="")) == b""
    assert framer.receive(from_client(0x81, b"still delivered")) == ["still delivered"]
    assert framer.receive(from_client(0x88, b"\x03\xe8")) == [Close(code=1000, reason="")]
    assert state(framer) is CloseState.CLOSED
