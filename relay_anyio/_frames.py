"""A small, strict RFC 6455 frame codec (Sans-IO): bytes in, decoded messages out, and back.

wsproto does the HTTP upgrade; once the socket is open, this codec frames every message. It
exists for speed: wsproto spends ~15 µs encoding one small masked frame and ~24 µs decoding
one 400-byte frame, which alone would exceed the per-dial CPU budget. No extensions are
negotiated, so the codec knows none.

Invariants (the reasons behind the code below):

* Input is ``self._buf[self._pos:]``: ``feed`` appends, ``events`` parses forward by moving
  the ``_pos`` index. Nothing is sliced off the front per frame, so N frames in one read
  cost O(N + bytes), never O(N * bytes). A buffer fully consumed is replaced by the next
  chunk as is (no copy); leftovers are compacted once per ``feed``, not per frame.
* A frame is decoded only once all of it is buffered; its header is validated as soon as it
  is complete, so a bad or oversized frame fails before its payload is waited for.
* Every message is checked against ``max_message_size`` (UTF-8 bytes, counted across
  fragments) from the frame headers alone: an oversized message is never buffered.
* A fragmented message accumulates in ONE ``bytearray`` (each fragment is appended in place
  and not kept as an object), so what a message in progress holds is its payload bytes: at
  most ``max_message_size`` however many frames it came in (a flood of one-byte frames used
  to cost ~50 bytes of objects per byte on the wire).
* Text is decoded strictly when its message completes (a code point split across fragments
  is fine; invalid UTF-8 anywhere is 1007).
* ``events`` returns everything complete, in wire order, with state already updated. After
  a ``Close`` or a ``FramingError`` the codec is finished: later input is ignored (nothing
  may follow a close frame; nothing can be trusted after a framing error).
* Roles are strict: a server accepts only masked frames, a client only unmasked ones (1002).
* Every frame a client encodes gets its own 4-byte key (RFC 6455 §5.3) from a pool that one
  ``os.urandom`` call fills for 1024 frames; a key is never used twice.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ._errors import ConfigurationError

__all__ = [
    "ABNORMAL_CLOSURE",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MESSAGE_TOO_BIG",
    "BinaryMessage",
    "Close",
    "FrameCodec",
    "FrameEvent",
    "FramingError",
    "Ping",
    "Pong",
    "check_max_message_size",
    "mask",
]

_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_FIN = 0x80
_MASK_BIT = 0x80
MAX_CONTROL_PAYLOAD = 125
DEFAULT_MAX_MESSAGE_SIZE = 10 * 1024 * 1024

# The close codes (RFC 6455 §7.4), the one table of them in the package.
NORMAL_CLOSURE = 1000
PROTOCOL_ERROR = 1002
NO_STATUS = 1005  # local only: the close frame carried no code
ABNORMAL_CLOSURE = 1006  # local only: the connection dropped without a close frame
INVALID_DATA = 1007
MESSAGE_TOO_BIG = 1009
TLS_FAILURE = 1015  # local only
#: Close codes a peer may send: RFC 6455 §7.4 as wsproto accepts them (1004-1006, 1014, 1015
#: and the rest of 1000-2999 are reserved or local-only), plus 3000-4999 for applications.
VALID_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1007, 1014), *range(3000, 5000)})

_KEY_POOL_SIZE = 4096
_KEYS_PER_POOL = _KEY_POOL_SIZE // 4
#: Frames up to this size are masked with a precomputed repeat factor (see ``encode_texts``);
#: the table costs ~33 KB. Bigger frames are rare and their per-frame overhead amortised.
_REPEAT_LIMIT = 512
#: ``_REPEAT[words]``: an integer with a 1 at the bottom of each of ``words`` 32-bit words.
_REPEAT = [((1 << (32 * words)) - 1) // 0xFFFFFFFF for words in range(_REPEAT_LIMIT // 4 + 1)]

_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack
_unpack_short = struct.Struct("!H").unpack_from
_unpack_long = struct.Struct("!Q").unpack_from
_unpack_keys = struct.Struct(f"<{_KEYS_PER_POOL}I").unpack


@dataclass(frozen=True, slots=True, kw_only=True)
class BinaryMessage:
    """A complete binary message (RELAY has none: the adapter reports it as a violation)."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong:
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Close:
    """The peer's close frame; ``code`` is 1005 when it carried none."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FramingError:
    """The peer broke RFC 6455: fail the connection with a close frame carrying ``code``
    (1002 protocol error, 1007 invalid UTF-8, 1009 message too big)."""

    code: int
    reason: str


#: What ``FrameCodec.events`` returns: a ``str`` is a complete text message.
FrameEvent = str | BinaryMessage | Ping | Pong | Close | FramingError


def check_max_message_size(value: int) -> int:
    """The one rule for ``max_message_size``: a positive int (bytes of one message)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"max_message_size must be a positive int, got {value!r}")
    return value


class _Failed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def mask(payload: bytes | bytearray, key: bytes) -> bytes:
    """``payload`` XOR the repeated 4-byte ``key`` (masking and unmasking are the same)."""
    size = len(payload)
    if not size:
        return b""
    stream = (key * ((size >> 2) + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")).to_bytes(
        size, "little"
    )


def _header(opcode_byte: int, size: int, masked: int) -> bytes:
    if size < 126:
        return bytes((opcode_byte, masked | size))
    if size < 65536:
        return _pack_short(opcode_byte, masked | 126, size)
    return _pack_long(opcode_byte, masked | 127, size)


_TEXT_HEADERS = [bytes((0x81, size)) for size in range(126)]
#: Precomputed headers of masked text frames up to ``_REPEAT_LIMIT`` (no struct.pack per frame).
_MASKED_TEXT_HEADERS = [_header(0x81, size, _MASK_BIT) for size in range(_REPEAT_LIMIT)]


class FrameCodec:
    """One side of an open WebSocket's framing. ``client=True`` masks what it encodes and
    requires unmasked input; ``client=False`` the reverse.

    ``feed(data)`` then ``events()`` decodes; the ``encode_*`` methods return wire bytes.
    The codec keeps no close-handshake state: the caller decides what may still be sent.
    """

    __slots__ = (
        "_buf",
        "_client",
        "_done",
        "_frag_buf",
        "_frag_opcode",
        "_key_index",
        "_key_ints",
        "_keys",
        "_max_size",
        "_pos",
    )

    def __init__(self, *, client: bool, max_message_size: int) -> None:
        self._client = client
        self._max_size = check_max_message_size(max_message_size)
        self._buf: bytes | bytearray = b""
        self._pos = 0
        self._done = False
        self._frag_opcode = 0  # the opcode of the fragmented message in progress, or 0
        #: The fragmented message so far, in ONE buffer: its memory is its payload bytes
        #: (at most ``max_message_size``), however many frames it came in.
        self._frag_buf = bytearray()
        self._keys = b""
        self._key_ints: tuple[int, ...] = ()
        self._key_index = _KEYS_PER_POOL  # refilled on first use

    @property
    def finished(self) -> bool:
        """True once a close frame or a framing error was decoded: input is ignored since."""
        return self._done

    @property
    def buffered(self) -> int:
        """Bytes fed but not decoded yet (a frame still incomplete)."""
        return len(self._buf) - self._pos

    # ------------------------------------------------------------------------ decoding

    def feed(self, data: bytes) -> None:
        """Append bytes read from the peer."""
        if self._done or not data:
            return
        buf = self._buf
        if self._pos >= len(buf):
            self._buf = data  # everything before was consumed: no copy
        elif isinstance(buf, bytearray):
            del buf[: self._pos]
            buf += data
        else:
            grown = bytearray(memoryview(buf)[self._pos :])
            grown += data
            self._buf = grown
        self._pos = 0

    def events(self) -> list[FrameEvent]:
        """Decode every complete frame fed so far, in wire order."""
        out: list[FrameEvent] = []
        if self._done:
            return out
        try:
            self._parse(out)
        except _Failed as failed:
            self._finish()
            out.append(FramingError(code=failed.code, reason=failed.reason))
        return out

    def _finish(self) -> None:
        self._done = True
        self._buf = b""
        self._pos = 0
        self._frag_buf = bytearray()

    def _parse(self, out: list[FrameEvent]) -> None:
        buf = self._buf
        pos = self._pos
        end_of_data = len(buf)
        client = self._client
        max_size = self._max_size
        append = out.append
        while end_of_data - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            # Inline fast path, because it is nearly every frame a client reads: a whole
            # unfragmented unmasked text frame with a 7- or 16-bit length.
            if b0 == 0x81 and client and not self._frag_opcode:
                if b1 < 126:
                    start = pos + 2
                    end = start + b1
                elif b1 == 126 and end_of_data - pos >= 4:
                    (size,) = _unpack_short(buf, pos + 2)
                    start = pos + 4
                    end = start + size
                    if size < 126:
                        raise _Failed(PROTOCOL_ERROR, "frame length not minimally encoded")
                else:
                    end = -1
                if end >= 0:
                    if end - start > max_size:
                        raise _Failed(MESSAGE_TOO_BIG, "message too big")
                    if end > end_of_data:
                        break
                    try:
                        append(buf[start:end].decode())
                    except UnicodeDecodeError:
                        raise _Failed(INVALID_DATA, "invalid UTF-8 in a text message") from None
                    pos = end
                    continue
            header = self._header(buf, pos, b0, b1)
            if header is None:
                break
            start, end = header
            if end > end_of_data:
                break
            pos = end
            if self._frame(b0, b1 & _MASK_BIT, buf, start, end, append):
                return
        self._pos = pos

    def _header(self, buf: bytes | bytearray, pos: int, b0: int, b1: int) -> tuple[int, int] | None:
        """Validate a frame header as far as it is buffered: ``(payload start, frame end)``
        once the whole header is in, ``None`` while it is not (the payload may be missing)."""
        if b0 & 0x70:
            raise _Failed(PROTOCOL_ERROR, "reserved bit set (no extension was negotiated)")
        opcode = b0 & 0x0F
        masked = b1 & _MASK_BIT
        if bool(masked) == self._client:
            side = "masked frame from the server" if masked else "unmasked frame from the client"
            raise _Failed(PROTOCOL_ERROR, side)
        size = b1 & 0x7F
        self._check_opcode(b0, opcode, size)
        available = len(buf) - pos
        start = pos + 2
        if size == 126:
            if available < 4:
                return None
            (size,) = _unpack_short(buf, start)
            start += 2
            if size < 126:
                raise _Failed(PROTOCOL_ERROR, "frame length not minimally encoded")
        elif size == 127:
            if available < 10:
                return None
            (size,) = _unpack_long(buf, start)
            start += 8
            if size < 65536:
                raise _Failed(PROTOCOL_ERROR, "frame length not minimally encoded")
            if size >> 63:
                raise _Failed(PROTOCOL_ERROR, "frame length with the top bit set")
        if opcode < _CLOSE and len(self._frag_buf) + size > self._max_size:
            raise _Failed(MESSAGE_TOO_BIG, "message too big")
        if masked:
            start += 4
        return start, start + size

    def _check_opcode(self, b0: int, opcode: int, size: int) -> None:
        if opcode >= _CLOSE:
            if opcode > _PONG:
                raise _Failed(PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
            if not b0 & _FIN:
                raise _Failed(PROTOCOL_ERROR, "fragmented control frame")
            if size > MAX_CONTROL_PAYLOAD:
                raise _Failed(PROTOCOL_ERROR, "control frame payload over 125 bytes")
        elif opcode > _BINARY:
            raise _Failed(PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
        elif opcode == _CONTINUATION:
            if not self._frag_opcode:
                raise _Failed(PROTOCOL_ERROR, "continuation frame with no message started")
        elif self._frag_opcode:
            raise _Failed(PROTOCOL_ERROR, "new data frame inside a fragmented message")

    def _frame(
        self,
        b0: int,
        masked: int,
        buf: bytes | bytearray,
        start: int,
        end: int,
        append: Callable[[FrameEvent], None],
    ) -> bool:
        """Deliver one whole, validated frame; True if it was the close frame (the end)."""
        opcode = b0 & 0x0F
        if opcode == _CONTINUATION:
            # Appended in place (a view, not a slice): no object per fragment.
            if masked:
                self._frag_buf += mask(buf[start:end], bytes(buf[start - 4 : start]))
            else:
                self._frag_buf += memoryview(buf)[start:end]
            if b0 & _FIN:
                whole = self._frag_buf
                message_opcode = self._frag_opcode
                self._frag_opcode = 0
                self._frag_buf = bytearray()
                append(_complete(message_opcode, whole))
            return False
        payload = buf[start:end]
        if masked:
            payload = mask(payload, bytes(buf[start - 4 : start]))
        if opcode < _CLOSE:  # text or binary
            if b0 & _FIN:
                append(_complete(opcode, payload))
            else:
                self._frag_opcode = opcode
                self._frag_buf = bytearray(payload)
        elif opcode == _PING:
            append(Ping(payload=bytes(payload)))
        elif opcode == _PONG:
            append(Pong(payload=bytes(payload)))
        else:
            append(_close(payload))
            self._finish()
            return True
        return False

    # ------------------------------------------------------------------------ encoding

    def encode_texts(self, texts: Iterable[str]) -> bytes:
        """Frames for whole text messages, one unfragmented frame each, in one buffer.

        A client masks each frame with its own 4-byte key, taken from a pool that
        ``os.urandom`` refills 1024 keys at a time (one system call per 1024 frames). Each
        frame's masking is a handful of big-int operations, the whole payload at once.
        """
        parts: list[bytes] = []
        append = parts.append
        if not self._client:
            for text in texts:
                data = text.encode()
                size = len(data)
                append(_TEXT_HEADERS[size] if size < 126 else _header(0x81, size, 0))
                append(data)
            return b"".join(parts)
        keys = self._keys
        key_ints = self._key_ints
        index = self._key_index
        for text in texts:
            data = text.encode()
            size = len(data)
            if index >= _KEYS_PER_POOL:
                keys, key_ints = self._refill_keys()
                index = 0
            key = keys[index << 2 : (index << 2) + 4]
            if size < _REPEAT_LIMIT:
                append(_MASKED_TEXT_HEADERS[size])
                append(key)
                # The key repeated over the payload is ONE multiplication: the key's integer
                # times 0x..00000001_00000001 (one 1 per 32-bit word; words = ceil(size/4)).
                # That skips building and converting a repeated-key bytes object per frame.
                words = (size + 3) >> 2
                masked = int.from_bytes(data, "little") ^ key_ints[index] * _REPEAT[words]
                append(masked.to_bytes(words << 2, "little")[:size])
            else:
                append(_header(0x81, size, _MASK_BIT))
                append(key)
                append(mask(data, key))
            index += 1
        self._key_index = index
        return b"".join(parts)

    def _key(self) -> bytes:
        """A fresh masking key (for control frames)."""
        index = self._key_index
        keys = self._keys
        if index >= _KEYS_PER_POOL:
            keys, _ = self._refill_keys()
            index = 0
        self._key_index = index + 1
        return keys[index << 2 : (index << 2) + 4]

    def _refill_keys(self) -> tuple[bytes, tuple[int, ...]]:
        """One ``os.urandom`` call for the next 1024 keys, also unpacked to integers at once
        (one ``struct`` call instead of an ``int.from_bytes`` per frame)."""
        keys = self._keys = os.urandom(_KEY_POOL_SIZE)
        key_ints = self._key_ints = _unpack_keys(keys)
        self._key_index = 0
        return keys, key_ints

    def encode_ping(self, payload: bytes = b"") -> bytes:
        return self._control(_PING, payload)

    def encode_pong(self, payload: bytes = b"") -> bytes:
        return self._control(_PONG, payload)

    def encode_close(self, code: int = 1000, reason: str = "") -> bytes:
        """A close frame. 1005 ("no status") sends an empty payload; the local-only codes
        1006 and 1015 become 1000, as in wsproto; ``reason`` is cut to fit 125 bytes."""
        if code == NO_STATUS:
            return self._control(_CLOSE, b"")
        if code in (ABNORMAL_CLOSURE, TLS_FAILURE):
            code = NORMAL_CLOSURE
        if not 0 <= code <= 0xFFFF:
            raise ValueError(f"close code out of range: {code}")
        data = reason.encode()
        if len(data) > MAX_CONTROL_PAYLOAD - 2:
            data = data[: MAX_CONTROL_PAYLOAD - 2].decode(errors="ignore").encode()
        return self._control(_CLOSE, code.to_bytes(2, "big") + data)

    def _control(self, opcode: int, payload: bytes) -> bytes:
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError(f"control frame payload over 125 bytes ({len(payload)})")
        if not self._client:
            return _header(_FIN | opcode, len(payload), 0) + payload
        key = self._key()
        return _header(_FIN | opcode, len(payload), _MASK_BIT) + key + mask(payload, key)


def _complete(opcode: int, payload: bytes | bytearray) -> str | BinaryMessage:
    if opcode == _BINARY:
        return BinaryMessage(data=bytes(payload))
    try:
        return payload.decode()
    except UnicodeDecodeError:
        raise _Failed(INVALID_DATA, "invalid UTF-8 in a text message") from None


def _close(payload: bytes | bytearray) -> Close:
    if not payload:
        return Close(code=NO_STATUS, reason="")
    if len(payload) == 1:
        raise _Failed(PROTOCOL_ERROR, "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if code not in VALID_CLOSE_CODES:
        raise _Failed(PROTOCOL_ERROR, f"close frame with invalid code {code}")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError:
        raise _Failed(INVALID_DATA, "invalid UTF-8 in a close reason") from None
    return Close(code=code, reason=reason)
