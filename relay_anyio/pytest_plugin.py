"""The pytest plugin: a simulator and a connected client for each test, no conftest needed.

Installed with the package and loaded by pytest through the ``pytest11`` entry point
``relay``. Its fixtures are async: use them from tests marked ``anyio`` (anyio's own
plugin runs them on the test's ``anyio_backend``, asyncio or trio).

* ``relay_scenario``: the scenario for this test (a dict in the simulator's file format,
  or a ``Scenario``). Set it with ``@pytest.mark.relay_scenario({...})``, with
  ``@pytest.mark.parametrize("relay_scenario", [...])``, or by overriding the fixture.
  Default: every destination answers after 50 ms, plays are short.
* ``relay_client_options``: keyword arguments for ``RelayClient`` (credentials and URL
  are filled in). Set with ``@pytest.mark.relay_client_options(contexts=["office"])`` or
  by overriding the fixture. Defaults keep reconnects and cleanup fast.
* ``relay_simulator``: a running ``serve_simulator`` on loopback (a ``SimulatorServer``).
  After the test, and after every fixture that uses it has closed, it checks that no call
  is left up on the switch; ``@pytest.mark.relay_allow_live_calls`` turns that off.
* ``relay_client``: a ``RelayClient`` connected to ``relay_simulator``, entered for the
  test and closed after it (hanging up what it still owns).

Invariants: one simulator per test; nothing here imports Hypothesis (the strategies live
in ``relay_anyio.strategies``, which does); the plugin changes no setting of the run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from relay_proto.simulator import Scenario

from ._client import RelayClient
from ._simulator import SimulatorServer, serve_simulator

__all__ = [
    "DEFAULT_CLIENT_OPTIONS",
    "DEFAULT_SCENARIO",
    "relay_client",
    "relay_client_options",
    "relay_scenario",
    "relay_simulator",
]

#: The scenario a test gets unless it sets one: quick answers, short plays.
DEFAULT_SCENARIO: Mapping[str, Any] = {
    "default": {"outcome": "answer", "after": 0.05},
    "min_play_seconds": 0.05,
    "play_seconds_per_char": 0.002,
}

#: ``RelayClient`` options a test gets unless it sets them: test-sized waits.
DEFAULT_CLIENT_OPTIONS: Mapping[str, Any] = {
    "project": "relay-test",
    "token": "relay-test-token",
    "backoff_initial": 0.01,
    "backoff_max": 0.05,
    "cleanup_timeout": 2.0,
    "close_timeout": 1.0,
}

_MARKERS = (
    "relay_scenario(scenario): the relay_simulator scenario for this test "
    "(a dict in the simulator's file format, or a Scenario)",
    "relay_client_options(**options): extra RelayClient keyword arguments for relay_client",
    "relay_allow_live_calls: do not fail the test when calls are left up on relay_simulator",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in _MARKERS:
        config.addinivalue_line("markers", line)


@pytest.fixture
def relay_scenario(request: pytest.FixtureRequest) -> Scenario | Mapping[str, Any]:
    """The scenario of ``relay_simulator``: the ``relay_scenario`` marker's, or the default."""
    marker = request.node.get_closest_marker("relay_scenario")
    if marker is None:
        return DEFAULT_SCENARIO
    if len(marker.args) != 1 or marker.kwargs:
        raise pytest.UsageError("@pytest.mark.relay_scenario takes one scenario (dict or Scenario)")
    scenario: Scenario | Mapping[str, Any] = marker.args[0]
    return scenario


@pytest.fixture
def relay_client_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """``RelayClient`` options: the defaults, updated by every ``relay_client_options`` marker
    (the closest last)."""
    options = dict(DEFAULT_CLIENT_OPTIONS)
    for marker in reversed(list(request.node.iter_markers("relay_client_options"))):
        if marker.args:
            raise pytest.UsageError("@pytest.mark.relay_client_options takes keyword arguments")
        options.update(marker.kwargs)
    return options


@pytest.fixture
async def relay_simulator(
    request: pytest.FixtureRequest, relay_scenario: Scenario | Mapping[str, Any]
) -> AsyncIterator[SimulatorServer]:
    """A simulator on loopback for this test; checks afterwards that no call was left up."""
    async with serve_simulator(scenario=relay_scenario) as server:
        yield server
        if request.node.get_closest_marker("relay_allow_live_calls") is None:
            left = server.live_calls()
            assert not left, f"calls left up on the simulator after the test: {left}"


@pytest.fixture
async def relay_client(
    relay_simulator: SimulatorServer, relay_client_options: dict[str, Any]
) -> AsyncIterator[RelayClient]:
    """A ``RelayClient`` connected to ``relay_simulator`` for the test, closed after it."""
    options = dict(relay_client_options)
    options.setdefault("url", relay_simulator.url)
    async with RelayClient(**options) as client:
        yield client
