"""A small AMQP 0-9-1 client for the RabbitMQ tests: real connections on the wire (PLAIN login, one channel),
enough to declare a queue, publish, and consume without acknowledging, so that a test creates backlogs, unacked
messages, blocked publishers and connection churn on a real broker. No AMQP library is a dependency of the project;
this speaks the protocol as the specification draws its frames."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = b"\xce"
PROTOCOL = b"AMQP\x00\x00\x09\x01"

CONNECTION, CHANNEL, QUEUE, BASIC = 10, 20, 50, 60


class AmqpError(RuntimeError):
    pass


def shortstr(text: str) -> bytes:
    data = text.encode()
    return struct.pack("B", len(data)) + data


def longstr(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def table(items: dict[str, str | int]) -> bytes:
    """A field table of text ('S') and integer ('l', 64-bit) values."""
    out = b""
    for key, value in items.items():
        if isinstance(value, int):
            out += shortstr(key) + b"l" + struct.pack(">q", value)
        else:
            out += shortstr(key) + b"S" + longstr(value.encode())
    return longstr(out)


@dataclass(frozen=True)
class Frame:
    kind: int
    channel: int
    payload: bytes

    @property
    def method(self) -> tuple[int, int]:
        return struct.unpack(">HH", self.payload[:4]) if self.kind == FRAME_METHOD else (0, 0)


class AmqpConnection:
    """One AMQP connection with channel 1 open. ``name`` shows as the connection's ``connection_name``."""

    def __init__(self, host: str, port: int, user: str, password: str, *, vhost: str = "/", name: str = "",
                 timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self._buffer = b""
        self.sock.sendall(PROTOCOL)
        self._expect(CONNECTION, 10)  # start
        props = {"product": "kubestack-tests"} | ({"connection_name": name} if name else {})
        self._method(0, CONNECTION, 11, table(props) + shortstr("PLAIN")
                     + longstr(f"\0{user}\0{password}".encode()) + shortstr("en_US"))
        tune = self._expect(CONNECTION, 30)
        channel_max, frame_max, _ = struct.unpack(">HIH", tune.payload[4:12])
        self.frame_max = frame_max or 131072
        self._method(0, CONNECTION, 31, struct.pack(">HIH", channel_max, self.frame_max, 0))
        self._method(0, CONNECTION, 40, shortstr(vhost) + shortstr("") + b"\x00")
        self._expect(CONNECTION, 41)
        self._method(1, CHANNEL, 10, shortstr(""))
        self._expect(CHANNEL, 11)

    # --- frames ---------------------------------------------------------------------------------

    def _send(self, kind: int, channel: int, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">BHI", kind, channel, len(payload)) + payload + FRAME_END)

    def _method(self, channel: int, class_id: int, method_id: int, args: bytes) -> None:
        self._send(FRAME_METHOD, channel, struct.pack(">HH", class_id, method_id) + args)

    def _read_exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AmqpError("the broker closed the connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def read_frame(self) -> Frame:
        kind, channel, size = struct.unpack(">BHI", self._read_exact(7))
        payload = self._read_exact(size)
        if self._read_exact(1) != FRAME_END:
            raise AmqpError("frame without its end marker")
        frame = Frame(kind, channel, payload)
        if frame.method in ((CONNECTION, 50), (CHANNEL, 40)):
            code, = struct.unpack(">H", payload[4:6])
            text = payload[7:7 + payload[6]].decode(errors="replace")
            if frame.channel == 0:  # answer close-ok, so that the broker ends the connection at once
                self._method(0, CONNECTION, 51, b"")
            raise AmqpError(f"the broker closed the {'connection' if frame.channel == 0 else 'channel'}: {code} {text}")
        return frame

    def _expect(self, class_id: int, method_id: int) -> Frame:
        while True:
            frame = self.read_frame()
            if frame.method == (class_id, method_id):
                return frame
            if frame.kind == FRAME_METHOD and frame.method != (BASIC, 60):  # a delivery may come in between
                raise AmqpError(f"expected method {class_id}.{method_id}, got {frame.method}")

    # --- operations -----------------------------------------------------------------------------

    def queue_declare(self, queue: str, *, durable: bool = False, arguments: dict[str, str | int] | None = None) -> int:
        """Declares ``queue``; returns the number of messages it holds."""
        bits = 0b10 if durable else 0
        self._method(1, QUEUE, 10, struct.pack(">H", 0) + shortstr(queue) + bytes([bits]) + table(arguments or {}))
        ok = self._expect(QUEUE, 11)
        name_len = ok.payload[4]
        messages, _ = struct.unpack(">II", ok.payload[5 + name_len:13 + name_len])
        return messages

    def publish(self, routing_key: str, body: bytes, *, count: int = 1, exchange: str = "") -> None:
        """``count`` messages to ``exchange`` (the default one routes by queue name)."""
        method = struct.pack(">HHH", BASIC, 40, 0) + shortstr(exchange) + shortstr(routing_key) + b"\x00"
        header = struct.pack(">HHQH", BASIC, 0, len(body), 0)
        frames = []
        for _ in range(count):
            frames.append(struct.pack(">BHI", FRAME_METHOD, 1, len(method)) + method + FRAME_END)
            frames.append(struct.pack(">BHI", FRAME_HEADER, 1, len(header)) + header + FRAME_END)
            frames.append(struct.pack(">BHI", FRAME_BODY, 1, len(body)) + body + FRAME_END)
            if len(frames) >= 300:
                self.sock.sendall(b"".join(frames))
                frames = []
        if frames:
            self.sock.sendall(b"".join(frames))

    def consume(self, queue: str, *, prefetch: int, no_ack: bool = False) -> str:
        """Starts a consumer that takes up to ``prefetch`` messages unacknowledged; returns its tag."""
        self._method(1, BASIC, 10, struct.pack(">IHB", 0, prefetch, 0))
        self._expect(BASIC, 11)
        self._method(1, BASIC, 20, struct.pack(">H", 0) + shortstr(queue) + shortstr("")
                     + bytes([0b10 if no_ack else 0]) + table({}))
        ok = self._expect(BASIC, 21)
        return ok.payload[5:5 + ok.payload[4]].decode()

    def deliveries(self, count: int) -> int:
        """Reads ``count`` deliveries (leaving them unacknowledged); returns the last delivery tag."""
        tag = 0
        received = 0
        while received < count:
            frame = self.read_frame()
            if frame.method == (BASIC, 60):
                tag_at = 5 + frame.payload[4]
                tag, = struct.unpack(">Q", frame.payload[tag_at:tag_at + 8])
                received += 1
        return tag

    def close(self) -> None:
        try:
            self._method(0, CONNECTION, 50, struct.pack(">H", 200) + shortstr("bye") + struct.pack(">HH", 0, 0))
            self._expect(CONNECTION, 51)
        except (OSError, AmqpError):
            pass
        finally:
            self.sock.close()

    def __enter__(self) -> AmqpConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
