"""The test kit as a user meets it: the pytest plugin's fixtures and the Hypothesis strategies.

The apps under test are ``examples/app_dialer.py`` and ``examples/app_inbound.py``. The
socket tests use only what the plugin gives (``relay_simulator``, ``relay_client``, the
``relay_scenario`` and ``relay_client_options`` markers) and their own ``anyio_backend``;
``test_a_project_without_conftest_gets_the_fixtures`` runs a test file in an empty
directory, to show that nothing comes from this suite's conftest. The property tests use
``relay_anyio.strategies`` with ``relay_proto.testing.Pair``, in memory.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay_anyio import Call, RelayClient, SimulatorServer
from relay_anyio.strategies import (
    CONNECTION_FAULTS,
    DELIVERY_FAULTS,
    REFUSAL_FAULTS,
    device_plans,
    devices,
    e164_numbers,
    event_orders,
    fault_schedules,
    faults,
    interleavings,
    outcomes,
    scenarios,
    sip_uris,
)
from relay_proto import ClientConnection, DialAnswered, DialFailed, DialTimedOut
from relay_proto.testing import Faults, Outcome, OutcomeKind, Pair, Scenario

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import app_dialer
import app_inbound

A, B, C = "+15550000001", "+15550000002", "+15550000003"
ALICE = "sip:alice@example.com"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def ended(sim: SimulatorServer) -> dict[str, str | None]:
    """Each leg's destination and how it ended."""
    assert sim.live_calls() == []
    return {app_dialer.destination(call.device): call.end_reason for call in sim.all_calls()}


# --------------------------------------------------------------------------- the dialer


@pytest.mark.anyio
@pytest.mark.relay_scenario(
    {
        "default": {"outcome": "answer", "after": 0.05},
        "destinations": {A: {"outcome": "busy", "after": 0.05}},
        "min_play_seconds": 0.05,
    }
)
async def test_the_dialer_moves_on_to_the_next_contact(
    relay_client: RelayClient, relay_simulator: SimulatorServer
) -> None:
    reached = await app_dialer.notify(relay_client, [[A], [B]], "Hi")
    assert reached == B
    assert ended(relay_simulator) == {A: "busy", B: "hangup"}


@pytest.mark.anyio
@pytest.mark.relay_scenario(
    {
        "destinations": {
            A: {"outcome": "answer", "after": 0.5},
            ALICE: {"outcome": "answer", "after": 0.05},
        },
        "min_play_seconds": 0.05,
    }
)
async def test_the_first_to_answer_among_a_contacts_destinations_wins(
    relay_client: RelayClient, relay_simulator: SimulatorServer
) -> None:
    assert await app_dialer.notify(relay_client, [[A, ALICE]], "Hi") == ALICE
    assert ended(relay_simulator) == {A: "cancel", ALICE: "hangup"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "relay_scenario",
    [
        {"default": {"outcome": "decline", "after": 0.05}},
        {
            "default": {"outcome": "answer", "after": 0.05},
            "faults": {"dial_refused": {"code": "500"}},
        },
    ],
)
async def test_the_dialer_reports_nobody(
    relay_client: RelayClient, relay_simulator: SimulatorServer
) -> None:
    assert await app_dialer.notify(relay_client, [[A], [B, C]], "Hi") is None
    assert relay_simulator.live_calls() == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    "relay_scenario",
    [
        {"faults": {"duplicate_events": True, "reorder": True, "dial_event_first": True}},
        {"faults": {"events_before_result": True, "delay_events": 0.05}},
        {"faults": {"disconnect_after_dial": True}},
    ],
)
async def test_the_dialer_survives_a_misbehaving_server(
    relay_client: RelayClient, relay_simulator: SimulatorServer
) -> None:
    relay_simulator.scenario.default = Outcome(kind=OutcomeKind.ANSWER, after=0.05)
    assert await app_dialer.notify(relay_client, [[A]], "Hi") == A
    assert ended(relay_simulator) == {A: "hangup"}


# --------------------------------------------------------------------------- the inbound app


@pytest.mark.anyio
@pytest.mark.relay_client_options(contexts=[app_inbound.CONTEXT])
@pytest.mark.parametrize(("caller", "reason"), [(A, "hangup"), ("+15550009999", "busy")])
async def test_the_inbound_handler_greets_or_refuses(
    relay_client: RelayClient, relay_simulator: SimulatorServer, caller: str, reason: str
) -> None:
    await relay_simulator.inject_inbound_call(
        context=app_inbound.CONTEXT, from_number=caller, to_number=B
    )
    with anyio.fail_after(10):
        async for call in relay_client.inbound_calls():
            await app_inbound.handle(call)
            break
    assert [(leg.direction, leg.end_reason) for leg in relay_simulator.all_calls()] == [
        ("inbound", reason)
    ]


@pytest.mark.anyio
@pytest.mark.relay_client_options(contexts=[app_inbound.CONTEXT])
async def test_the_inbound_handler_runs_from_on_call(
    relay_client: RelayClient, relay_simulator: SimulatorServer
) -> None:
    handled = anyio.Event()

    async def handler(call: Call) -> None:
        await app_inbound.handle(call)
        handled.set()

    relay_client.on_call(handler)
    await relay_simulator.inject_inbound_call(
        context=app_inbound.CONTEXT, from_number=A, to_number=B
    )
    with anyio.fail_after(10):
        await handled.wait()
    assert relay_simulator.live_calls() == []


# --------------------------------------------------------------------------- the plugin itself

USER_TESTS = """
import pytest
from relay_anyio import RelayClient, SimulatorServer

pytestmark = pytest.mark.anyio
PHONE = {"type": "phone", "params": {"from_number": "+15551230000", "to_number": "+15550000001"}}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


async def test_fixtures(relay_client: RelayClient, relay_simulator: SimulatorServer) -> None:
    assert relay_simulator.connection_count == 1
    call = await relay_client.dial([[PHONE]])
    await call.hangup()


@pytest.mark.relay_client_options(hangup_on_exit=False)
async def test_leak(relay_client: RelayClient) -> None:
    await relay_client.dial([[PHONE]])


@pytest.mark.relay_allow_live_calls
@pytest.mark.relay_client_options(hangup_on_exit=False)
async def test_leak_allowed(relay_client: RelayClient) -> None:
    await relay_client.dial([[PHONE]])


def test_hypothesis_not_loaded_by_the_plugin() -> None:
    import sys
    assert "relay_anyio.pytest_plugin" in sys.modules
    assert "hypothesis" not in sys.modules
"""


PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"]


def test_a_project_without_conftest_gets_the_fixtures(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS), encoding="utf-8")
    completed = subprocess.run(
        # -p no:hypothesispytest: a user without Hypothesis (its own plugin imports it).
        [*PYTEST, "-p", "no:hypothesispytest", "--strict-markers", "test_user.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    summary = completed.stdout.strip().splitlines()[-1]
    # test_leak passes, then its teardown finds the call left up (an error), on each backend.
    assert summary.startswith("7 passed, 2 errors"), completed.stdout + completed.stderr
    for backend in ("asyncio", "trio"):
        assert f"ERROR test_user.py::test_leak[{backend}] - AssertionError: calls left up" in (
            completed.stdout
        )


# --------------------------------------------------------------------------- strategies + Pair

RING = 10
DESTINATIONS = [A, B, C, ALICE]


RINGING = [OutcomeKind.ANSWER, OutcomeKind.BUSY, OutcomeKind.DECLINE, OutcomeKind.NO_ANSWER]
#: Ringing outcomes past the ring time too; an ``error`` (which ignores the ring timeout)
#: within it, as the app's dial timeout assumes.
OUTCOMES = outcomes(RINGING, max_after=2 * RING) | outcomes([OutcomeKind.ERROR], max_after=RING)


def answers(outcome: Outcome) -> bool:
    return outcome.kind is OutcomeKind.ANSWER and outcome.after < RING


@given(
    contacts=st.lists(
        st.lists(st.sampled_from(DESTINATIONS), min_size=1, max_size=2, unique=True),
        min_size=1,
        max_size=3,
    ),
    scenario=scenarios(DESTINATIONS, outcome=OUTCOMES, fault=faults(DELIVERY_FAULTS)),
)
def test_the_dialer_plan_reaches_the_first_contact_who_answers(
    contacts: list[list[str]], scenario: Scenario
) -> None:
    pair = Pair(scenario=scenario, client_kwargs={"ping_interval": None, "silence_timeout": None})
    pair.connect()
    timeout = app_dialer.dial_timeout(contacts, ring_seconds=RING)
    plan = app_dialer.plan(contacts, ring_seconds=RING)
    tag = pair.client.dial(plan, dial_timeout=timeout, now=pair.now)
    pair.pump()  # a command only queues its frame: send it now, not at the next deadline
    pair.run_until(lambda: tag not in pair.client.pending_dials, max_seconds=timeout)

    (result,) = [e for e in pair.events if isinstance(e, DialAnswered | DialFailed | DialTimedOut)]
    table = [[scenario.outcome_for(d) for d in contact] for contact in contacts]
    reachable = [i for i, contact in enumerate(table) if any(map(answers, contact))]
    if not reachable:
        assert isinstance(result, DialFailed)
        assert pair.simulator.live_calls() == []
        return
    assert isinstance(result, DialAnswered)
    winner = app_dialer.destination(result.call.device)
    assert winner in contacts[reachable[0]]
    assert answers(scenario.outcome_for(winner))
    # Only the winner is up, unless its far end already hung up.
    assert {call.call_id for call in pair.simulator.live_calls()} <= {result.call.call_id}


@given(plan=device_plans(devices(timeouts=st.integers(1, 60))))
def test_drawn_plans_pass_the_clients_checks(plan: list[list[dict[str, Any]]]) -> None:
    ClientConnection(project="p", token="t").dial(plan, now=0)


@given(number=e164_numbers(), uri=sip_uris())
def test_drawn_destinations_are_valid(number: str, uri: str) -> None:
    ClientConnection(project="p", token="t").dial([[app_dialer.device(number)]], now=0)
    ClientConnection(project="p", token="t").dial([[app_dialer.device(uri)]], now=0)


@given(schedule=fault_schedules(faults(DELIVERY_FAULTS), max_gap=5))
def test_a_dial_resolves_once_whatever_the_fault_schedule(
    schedule: list[tuple[float, Faults]],
) -> None:
    pair = Pair(
        scenario=Scenario(default=Outcome(kind=OutcomeKind.ANSWER, after=3)),
        client_kwargs={"ping_interval": None, "silence_timeout": None},
    )
    pair.connect()
    tag = pair.client.dial(app_dialer.plan([[A, B], [C]]), dial_timeout=100, now=pair.now)
    pair.pump()
    for gap, installed in schedule:
        pair.advance(gap)
        pair.simulator.scenario.faults = installed
    pair.run_until(lambda: tag not in pair.client.pending_dials, max_seconds=100)
    resolved = [e for e in pair.events if isinstance(e, DialAnswered | DialFailed | DialTimedOut)]
    assert len(resolved) == 1
    assert isinstance(resolved[0], DialAnswered)


@given(fault=faults([*DELIVERY_FAULTS, *CONNECTION_FAULTS, *REFUSAL_FAULTS, "ignore_end"]))
def test_drawn_faults_install(fault: Faults) -> None:
    assert Scenario(faults=fault).faults is fault


@given(order=interleavings("abc", "xy"))
def test_interleavings_keep_each_streams_order(order: list[str]) -> None:
    assert sorted(order) == sorted("abcxy")
    assert [e for e in order if e in "abc"] == list("abc")
    assert [e for e in order if e in "xy"] == list("xy")


@given(order=event_orders([1, 2, 3], max_duplicates=2))
def test_event_orders_are_permutations_with_copies(order: list[int]) -> None:
    assert set(order) == {1, 2, 3}
    assert 3 <= len(order) <= 5
