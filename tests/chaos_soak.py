"""The chaos soak: ``RelayClient`` -> ``FaultProxy`` -> ``serve_simulator``, driven like a
user's service would drive it, with invariants checked at random moments and at the end.

``soak(seed, dials=..., concurrency=...)`` runs ``dials`` dial episodes on ``concurrency``
workers. An episode: a dial with a random plan (serial groups of parallel devices whose
outcomes the scenario decides), a random ``dial_timeout``, sometimes cancelled at a random
moment; when answered, maybe a play with pause/resume/stop or a wait, then a hang-up or
the call is kept (held by the user) and hung up by a later episode. At random moments the
workers are paused, the proxy calmed, and the simulator's live calls compared with the
calls the user holds. Everything observed goes into a ``Report``; ``Report.problems()``
lists the broken invariants (the caller asserts it is empty, printing the seed).
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
from chaos_proxy import fault_proxy

from relay_anyio import (
    Call,
    ConnectionLostError,
    DialTimeoutError,
    RelayClient,
    RelayError,
    SimulatorServer,
    serve_simulator,
)

FROM = "+15551230000"
OUTCOMES: dict[str, dict[str, Any]] = {
    "+15550000001": {"outcome": "answer", "after": 0.02},
    "+15550000002": {"outcome": "answer", "after": 0.1},
    "+15550000003": {"outcome": "answer", "after": 0.05, "hangup_after": 0.3},
    "+15550000004": {"outcome": "busy", "after": 0.05},
    "+15550000005": {"outcome": "decline", "after": 0.1},
    "+15550000006": {"outcome": "no_answer"},
    "+15550000007": {"outcome": "error", "after": 0.02},
}
SCENARIO: dict[str, Any] = {
    "destinations": OUTCOMES,
    "min_play_seconds": 0.05,
    "play_seconds_per_char": 0.005,
    "ring_timeout": 1,
}
#: A session's calls outlive a lost socket this long (orphan legs end after it).
RESUME_GRACE = 1.5
#: Bound on any one operation of an episode, reconnects included.
OP_BOUND = 15.0
KEEP_AT_MOST = 15
#: Play control sequences (a paused play is resumed or stopped: paused, it never ends).
CONTROLS = [
    [],
    ["wait"],
    ["stop"],
    ["stop", "wait"],
    ["pause", "resume"],
    ["pause", "resume", "wait"],
    ["pause", "stop"],
    ["pause", "resume", "stop", "wait"],
]


def seed_from_env() -> int:
    value = os.environ.get("RELAY_SOAK_SEED")
    return int(value) if value else random.SystemRandom().randrange(1 << 32)


def rss() -> int | None:
    """Resident set size in bytes (Linux), or None where /proc is not available."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class Report:
    seed: int
    dials: int
    outcomes: Counter[str] = field(default_factory=Counter)
    resolutions: Counter[int] = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)
    after_exit: list[str] = field(default_factory=list)
    memory: list[int] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    checks: int = 0
    connections: int = 0

    def problems(self, memory_bound: int) -> list[str]:
        found = list(self.mismatches)
        unresolved = self.dials - len(self.resolutions)
        if unresolved or any(n != 1 for n in self.resolutions.values()):
            found.append(f"{unresolved} dials unresolved, resolutions {self.resolutions}")
        stuck = {k: n for k, n in self.outcomes.items() if k == "unresolved" or "stuck" in k}
        if stuck:
            found.append(f"operations over the {OP_BOUND} s bound: {stuck}")
        if self.after_exit:
            found.append(f"live calls after exit: {self.after_exit}")
        half = self.memory[len(self.memory) // 2 :]
        if len(half) >= 2 and max(half) - half[0] > memory_bound:
            found.append(f"memory grew {(max(half) - half[0]) >> 20} MiB in the second half")
        return found

    def __str__(self) -> str:
        return (
            f"seed={self.seed} dials={self.dials} outcomes={dict(self.outcomes)} "
            f"faults={dict(self.faults)} connections={self.connections} checks={self.checks} "
            f"memory_mib={[m >> 20 for m in self.memory]}"
        )


class Quiesce:
    """Workers run episodes inside ``episode()``; ``pause()`` waits until none runs."""

    def __init__(self) -> None:
        self.active = 0
        self._resumed = anyio.Event()
        self._resumed.set()
        self._idle = anyio.Event()

    @contextlib.asynccontextmanager
    async def episode(self) -> AsyncIterator[None]:
        while not self._resumed.is_set():
            await self._resumed.wait()
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            if self.active == 0:
                self._idle.set()

    async def pause(self) -> None:
        self._resumed = anyio.Event()
        self._idle = anyio.Event()
        if self.active:
            await self._idle.wait()

    def resume(self) -> None:
        self._resumed.set()


class Soak:
    def __init__(self, report: Report, rng: random.Random, client: RelayClient) -> None:
        self.report = report
        self.rng = rng
        self.client = client
        self.kept: list[Call] = []
        #: Calls whose hang-up kept failing: the user still holds them.
        self.gave_up: list[Call] = []
        self.quiesce = Quiesce()
        #: Live-but-not-held calls already reported (each is reported once).
        self.leaked: set[str] = set()
        #: What each call's play controls raised (to tell what a leaked call went through).
        self.control_errors: dict[str, list[str]] = {}
        #: Each dial's outcome by its tag (to tell what a leaked call's dial went through).
        self.outcome_of: dict[str, str] = {}
        self._next = iter(range(report.dials))

    def plan(self) -> list[list[dict[str, Any]]]:
        numbers = list(OUTCOMES)
        weights = [4 if o["outcome"] == "answer" else 1 for o in OUTCOMES.values()]
        groups = [
            dict.fromkeys(self.rng.choices(numbers, weights, k=self.rng.randint(1, 3)))
            for _ in range(self.rng.randint(1, 3))
        ]
        return [
            [
                {"type": "phone", "params": {"from_number": FROM, "to_number": to, "timeout": 1}}
                for to in group
            ]
            for group in groups
        ]

    def held(self) -> set[str]:
        return {c.call_id for c in self.kept + self.gave_up if not c.ended}

    async def worker(self) -> None:
        for index in self._next:
            async with self.quiesce.episode():
                await self.episode(index)

    async def episode(self, index: int) -> None:
        call = await self.dial(index)
        if call is not None and not call.ended:
            try:
                with anyio.fail_after(OP_BOUND):
                    await self.use(call)
            except RelayError as exc:
                self.note(call, "use", exc)
            except TimeoutError:
                self.report.outcomes["stuck: play or control"] += 1
            if call not in self.kept:
                await self.hang_up(call)
        if self.kept and self.rng.random() < 0.3:
            await self.hang_up(self.kept.pop(self.rng.randrange(len(self.kept))))

    def note(self, call: Call, what: str, exc: RelayError) -> None:
        entry = f"{what}:{type(exc).__name__}({exc.code})"
        self.control_errors.setdefault(call.call_id, []).append(entry)

    async def hang_up(self, call: Call) -> None:
        """As a user would: ``hangup()`` is safe to repeat when its reply was lost."""
        with anyio.move_on_after(OP_BOUND) as scope:
            for _ in range(5):
                try:
                    await call.hangup()
                    return
                except ConnectionLostError as exc:
                    self.note(call, "hangup", exc)
                except RelayError as exc:
                    self.note(call, "hangup", exc)
                    return
        if scope.cancelled_caught:
            self.report.outcomes["stuck: hangup"] += 1
        if not call.ended:
            self.gave_up.append(call)  # still held: the client must end it at exit

    async def dial(self, index: int) -> Call | None:
        rng, outcome = self.rng, "unresolved"
        timeout = rng.uniform(0.05, 2.0)
        cancel_after = rng.uniform(0.0, 0.5) if rng.random() < 0.15 else None
        call = None
        try:
            with anyio.fail_after(OP_BOUND + timeout):
                with anyio.move_on_after(cancel_after or float("inf")) as scope:
                    call = await self.client.dial(
                        self.plan(), dial_timeout=timeout, tag=f"soak-{index}"
                    )
                    outcome = "answered"
                if scope.cancelled_caught:
                    outcome = "cancelled"
        except DialTimeoutError:
            outcome = "timeout"
        except ConnectionLostError:
            outcome = "lost"
        except RelayError as exc:
            outcome = type(exc).__name__
        except TimeoutError:
            pass  # over the bound: reported as unresolved
        self.report.outcomes[outcome] += 1
        self.outcome_of[f"soak-{index}"] = outcome
        if outcome != "unresolved":
            self.report.resolutions[index] += 1
        return call if outcome == "answered" else None

    async def use(self, call: Call) -> None:
        rng = self.rng
        if rng.random() < 0.6:
            action = await call.play([{"type": "tts", "text": "hello " * rng.randint(1, 8)}])
            for control in rng.choice(CONTROLS):
                try:
                    if control == "wait":
                        await action.wait()
                    else:
                        await getattr(action, control)()
                except RelayError as exc:
                    self.note(call, control, exc)
                    raise
        if len(self.kept) < KEEP_AT_MOST and rng.random() < 0.3:
            self.kept.append(call)  # held by the user for now; hung up by a later episode

    async def check(self, sim: SimulatorServer, proxy_calm: Any, proxy_storm: Any) -> None:
        """Pause, calm the network, and compare live calls with the calls held."""
        with anyio.fail_after(OP_BOUND * 2):
            await self.quiesce.pause()
        proxy_calm()
        try:
            mismatch = await self.settle(sim)
            self.report.checks += 1
            if mismatch:
                self.report.mismatches.append(f"check {self.report.checks}: {mismatch}")
                held = self.held()
                self.leaked |= {c.call_id for c in sim.live_calls()} - held
            gc.collect()
            memory = rss()
            if memory is not None:
                self.report.memory.append(memory)
        finally:
            proxy_storm()
            self.quiesce.resume()

    async def settle(self, sim: SimulatorServer) -> str:
        """Wait (bounded) until the simulator agrees with the user; else describe why not."""
        difference = ""
        for _ in range(int((RESUME_GRACE + 1.5) / 0.1)):
            with contextlib.suppress(RelayError), anyio.move_on_after(1.0):
                await self.client.ping()  # a round trip on the current socket
            held = self.held()
            live = {c.call_id: c for c in sim.live_calls() if c.call_id not in self.leaked}
            if set(live) == held:
                return ""
            extra = {
                i: f"{live[i].state.value} dial={self.outcome_of.get(str(live[i].tag))} "
                f"controls={self.control_errors.get(i, [])}"
                for i in set(live) - held
            }
            difference = f"live but not held: {extra}; held but not live: {held - set(live)}"
            await anyio.sleep(0.1)  # the server's own expiry of orphan legs takes time
        return difference


async def soak(seed: int, *, dials: int, concurrency: int) -> Report:
    rng = random.Random(seed)
    report = Report(seed=seed, dials=dials)
    async with (
        serve_simulator(scenario=SCENARIO, resume_grace=RESUME_GRACE) as sim,
        fault_proxy(sim.port, random.Random(rng.random())) as proxy,
    ):
        client = RelayClient(
            project="p",
            token="t",
            url=proxy.url,
            backoff_initial=0.01,
            backoff_max=0.2,
            ping_interval=0.25,
            silence_timeout=1.5,
            connect_timeout=1.0,
            write_timeout=2.0,
            close_timeout=0.5,
            cleanup_timeout=RESUME_GRACE + 5,
        )
        async with client:
            runner = Soak(report, rng, client)
            async with anyio.create_task_group() as checker:
                checker.start_soon(checks, runner, sim, proxy.calm, proxy.storm)
                async with anyio.create_task_group() as workers:
                    for _ in range(concurrency):
                        workers.start_soon(runner.worker)
                checker.cancel_scope.cancel()
            await runner.check(sim, proxy.calm, proxy.storm)
            report.connections = client.connections
        report.faults = proxy.faults
        for _ in range(int((RESUME_GRACE + 2) / 0.1)):
            if not sim.live_calls():
                break
            await anyio.sleep(0.1)  # orphan legs end with the server's session expiry
        report.after_exit = [f"{c.state.value}/{c.end_reason}" for c in sim.live_calls()]
    return report


async def checks(runner: Soak, sim: SimulatorServer, calm: Any, storm: Any) -> None:
    while True:
        await anyio.sleep(runner.rng.uniform(0.5, 3.0))  # a random moment, not a sync
        await runner.check(sim, calm, storm)
