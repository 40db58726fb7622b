"""CPU cost of the Sans-IO core for one complete dial exchange, no sockets.

A ``ClientConnection`` and a ``Simulator`` are wired together in memory. Each dial is the
whole exchange, JSON (stdlib ``json``) included:

    dial -> dial result + dial/state events (created, ringing, answered) + dial answered
    -> acks -> calling.end -> end result + ending/ended events -> acks

about 16 frames in all. Dials go out in rounds of ``--in-flight`` (as the adapter would
have them in flight); the fake clock advances at ``--rate`` dials per second, so the
client's tombstones and timers pile up as they would in a real run.

Two figures are reported:

* ``both sides``: the client core and the simulator core together (the recording run);
* ``client core``: every call the client received during the recording run (``dial``,
  ``receive``, ``end``, ``next_deadline``, ``data_to_send``) replayed, with the same
  deterministic ids, into a fresh ``ClientConnection`` -- so nothing of the simulator is
  timed. The replay loop's own cost is measured against a do-nothing stub and subtracted.

Run: ``python benchmarks/bench_core.py [--n 20000] [--profile]``. The target is a client
core cost of at most 100 us per dial (see DEVELOPERS notes); nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import itertools
import json
import pstats
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from relay_proto import ClientConnection, DialAnswered, Event
from relay_proto import _wire as wire
from relay_proto.simulator import Outcome, OutcomeKind, Scenario, ServerConnection, Simulator

TARGET_CLIENT_US = 100.0

DEVICES: list[list[dict[str, Any]]] = [
    [
        {
            "type": "phone",
            "params": {"to_number": "+15550000002", "from_number": "+15550000001"},
        }
    ]
]

# One recorded client operation: (kind, argument, now). Kinds: see ``_replay``.
Op = tuple[int, Any, float]
DIAL, END, RECEIVE, DRAIN, DEADLINE, CONNECT = range(6)


def _counter(prefix: str) -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter)}"


def _new_client() -> ClientConnection:
    return ClientConnection(
        project="bench",
        token="bench-token",
        id_factory=_counter("r"),
        tag_factory=_counter("t"),
    )


@dataclass
class Recording:
    ops: list[Op] = field(default_factory=list)
    client_frames: int = 0
    server_frames: int = 0
    seconds: float = 0.0
    leftovers: str = ""
    #: Every frame the client wrote, in order (to time their JSON encoding alone).
    sent: list[str] = field(default_factory=list)


class _Pair:
    """Client core <-> simulator core, frames handed across in memory; client ops recorded."""

    def __init__(self, record: bool) -> None:
        scenario = Scenario(default=Outcome(kind=OutcomeKind.ANSWER, after=0.0))
        self.sim = Simulator(scenario=scenario)
        self.now = 0.0
        self.conn: ServerConnection = self.sim.open_connection(self.now)
        self.client = _new_client()
        self.ops: list[Op] = []
        self.record = record
        self.client_frames = 0
        self.server_frames = 0
        self.sent: list[str] = []

    def _op(self, kind: int, arg: Any) -> None:
        if self.record:
            self.ops.append((kind, arg, self.now))

    def pump(self) -> list[Event]:
        """Exchange frames (and run due server timers) until both sides are quiet."""
        client, conn, sim, now = self.client, self.conn, self.sim, self.now
        events: list[Event] = []
        while True:
            self._op(DRAIN, None)
            out = client.data_to_send()
            self.client_frames += len(out)
            if self.record:
                self.sent.extend(out)
            for frame in out:
                conn.receive(frame, now)
            deadline = sim.next_deadline()
            if deadline is not None and deadline <= now:
                sim.handle_timer(now)
            back = conn.data_to_send()
            self.server_frames += len(back)
            for frame in back:
                self._op(RECEIVE, frame)
                events.extend(client.receive(frame, now=now))
            if back:
                # The adapter's read loop pokes its timer after every batch it reads.
                self._op(DEADLINE, None)
                client.next_deadline()
            if not out and not back:
                return events

    def connect(self) -> None:
        self._op(CONNECT, None)
        self.client.connect(now=self.now)
        self.pump()

    def round(self, count: int, dt: float) -> None:
        """``count`` dials in flight at once, each answered and then hung up."""
        client = self.client
        for _ in range(count):
            self.now += dt
            self._op(DIAL, None)
            client.dial(DEVICES, now=self.now)
            self._op(DEADLINE, None)
            client.next_deadline()
        calls = [e.call.call_id for e in self.pump() if isinstance(e, DialAnswered)]
        if len(calls) != count:
            raise RuntimeError(f"expected {count} answered dials, got {len(calls)}")
        for call_id in calls:
            self._op(END, call_id)
            client.end(call_id)
        self.pump()


def record_run(n: int, in_flight: int, rate: float, *, record: bool = True) -> Recording:
    pair = _Pair(record)
    pair.connect()
    gc.collect()
    start = time.process_time()
    done = 0
    while done < n:
        count = min(in_flight, n - done)
        pair.round(count, 1.0 / rate)
        done += count
    seconds = time.process_time() - start
    client = pair.client
    leftovers = ""
    if client.pending_dials or client.live_call_ids or pair.sim.live_calls():
        leftovers = (
            f"{len(client.pending_dials)} dials, {len(client.live_call_ids)} calls, "
            f"{len(pair.sim.live_calls())} server calls left over"
        )
    return Recording(
        pair.ops, pair.client_frames, pair.server_frames, seconds, leftovers, pair.sent
    )


def time_json(rec: Recording) -> float:
    """The stdlib-json floor of the client: decode what it received, encode what it sent."""
    received = [arg for kind, arg, _ in rec.ops if kind == RECEIVE]
    objects = [json.loads(frame) for frame in rec.sent]
    decode, encode = wire._decode, wire.dumps
    gc.collect()
    start = time.process_time()
    for frame in received:
        decode(frame)
    for obj in objects:
        encode(obj)
    return time.process_time() - start


class _Stub:
    """Does nothing: measures the replay loop's own cost."""

    def connect(self, *, now: float) -> str:
        return ""

    def dial(self, devices: Any, *, now: float) -> str:
        return ""

    def end(self, call_id: str) -> str:
        return ""

    def receive(self, text: str, *, now: float) -> list[Event]:
        return []

    def data_to_send(self) -> list[str]:
        return []

    def next_deadline(self) -> float | None:
        return None


def _replay(client: ClientConnection | _Stub, ops: list[Op]) -> None:
    dial, end, receive = client.dial, client.end, client.receive
    drain, deadline = client.data_to_send, client.next_deadline
    devices = DEVICES
    for kind, arg, now in ops:
        if kind == RECEIVE:
            receive(arg, now=now)
        elif kind == DRAIN:
            drain()
        elif kind == DEADLINE:
            deadline()
        elif kind == DIAL:
            dial(devices, now=now)
        elif kind == END:
            end(arg)
        else:
            client.connect(now=now)


def time_replay(ops: list[Op], make: Callable[[], ClientConnection | _Stub]) -> float:
    client = make()
    gc.collect()
    start = time.process_time()
    _replay(client, ops)
    return time.process_time() - start


def retained_per_dial(in_flight: int, rate: float, dials: int = 2000) -> tuple[float, int, int]:
    """Bytes the client still holds per resolved dial (tombstones, timers), heap, records.

    Every dial here is resolved and hung up, and far less fake time passes than the
    tombstone grace, so what the client still holds is what each dial leaves behind for
    that grace period.
    """
    rec = record_run(dials, in_flight, rate)
    gc.collect()
    tracemalloc.start()
    try:
        client = _new_client()
        _replay(client, rec.ops)
        gc.collect()
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    tracker = client._tracker
    return held / dials, len(tracker.dials), len(tracker._timers)  # diagnostics only


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="dials to run (default 5000)")
    parser.add_argument("--in-flight", type=int, default=200, help="dials per round")
    parser.add_argument("--rate", type=float, default=3000.0, help="dials per second of fake clock")
    parser.add_argument("--repeat", type=int, default=3, help="client replays; best is kept")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the client replay (top 25 by tottime)"
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.in_flight < 1 or args.rate <= 0 or args.repeat < 1:
        parser.error("--n, --in-flight, --repeat must be >= 1 and --rate > 0")

    record_run(min(args.n, 2000), args.in_flight, args.rate)  # warm-up
    rec = record_run(args.n, args.in_flight, args.rate)
    if rec.leftovers:
        print(f"warning: {rec.leftovers}", file=sys.stderr)
    n = args.n
    stub = min(time_replay(rec.ops, _Stub) for _ in range(args.repeat))
    client = min(time_replay(rec.ops, _new_client) for _ in range(args.repeat))
    client_only = max(client - stub, 0.0)
    json_floor = min(time_json(rec) for _ in range(args.repeat))

    def us(seconds: float) -> str:
        return f"{seconds / n * 1e6:8.1f}"

    print(
        f"relay_proto core, {n} dials ({args.in_flight} per round), "
        f"{rec.client_frames / n:.1f} frames out + {rec.server_frames / n:.1f} in per dial, "
        f"Python {sys.version.split()[0]}"
    )
    print(f"{'part':<34}{'us/dial':>8}{'dials/s':>12}")
    rows = [
        ("both sides (client + simulator)", rec.seconds),
        ("client core (replay, loop removed)", client_only),
        ("  of which stdlib json (in + out)", json_floor),
        ("simulator core (difference)", max(rec.seconds - client_only, 0.0)),
        ("replay loop overhead (removed)", stub),
    ]
    for name, seconds in rows:
        rate = f"{n / seconds:12,.0f}" if seconds > 0 else f"{'-':>12}"
        print(f"{name:<34}{us(seconds)}{rate}")
    per_dial = client_only / n * 1e6
    verdict = "meets" if per_dial <= TARGET_CLIENT_US else "MISSES"
    print(f"client core {per_dial:.1f} us/dial {verdict} the {TARGET_CLIENT_US:g} us target")
    per_dial, records, timers = retained_per_dial(args.in_flight, args.rate)
    grace, rate = 60.0, args.rate
    print(
        f"client memory held per resolved dial: {per_dial:,.0f} B ({records} dial records, "
        f"{timers} heap timers after {2000} dials); with the default {grace:g} s tombstone "
        f"grace at {rate:,.0f} dials/s that is ~{per_dial * grace * rate / 2**20:,.0f} MiB"
    )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process {peak_mib:.0f} MiB")

    if args.profile:
        fresh = _new_client()
        profiler = cProfile.Profile()
        profiler.runcall(_replay, fresh, rec.ops)
        print("\nclient core profile (replay), top 25 by tottime:")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats(pstats.SortKey.TIME).print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
