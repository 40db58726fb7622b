"""examples/blocking_client.py (socket + selectors + wsproto, no async) against the simulator.

The simulator runs as its own process, started from the command line as a user would, so the
example's blocking loop and the server's event loop cannot share anything by accident.
"""

from __future__ import annotations

import os
import runpy
import selectors
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

ROOT = Path(__file__).absolute().parent.parent
EXAMPLE = ROOT / "examples" / "blocking_client.py"
SERVE = [sys.executable, "-m", "relay_anyio", "serve", "--listen", "127.0.0.1:0"]


def _read_line(pipe: IO[str], timeout: float) -> str:
    """The first line on ``pipe`` (the server flushes it whole), or a failure after ``timeout``."""
    with selectors.DefaultSelector() as selector:
        selector.register(pipe, selectors.EVENT_READ)
        if not selector.select(timeout):
            pytest.fail(f"the simulator printed no URL within {timeout} s")
    return pipe.readline().strip()


@pytest.fixture
def simulator_url() -> Iterator[str]:
    """Start ``python -m relay_anyio serve``, yield its URL, stop it with SIGTERM."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(SERVE, stdout=subprocess.PIPE, text=True, env=env) as server:
        try:
            assert server.stdout is not None
            url = _read_line(server.stdout, timeout=15)
            assert url.startswith("ws://127.0.0.1:"), url
            yield url
        finally:
            server.terminate()
            try:
                returncode = server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
                raise
    assert returncode == 0  # SIGTERM stops the simulator cleanly


def _load_main() -> Callable[..., list[str]]:
    namespace = runpy.run_path(str(EXAMPLE), run_name="example_blocking_client")
    main: Callable[..., list[str]] = namespace["main"]
    return main


def test_blocking_client_in_process(simulator_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    main = _load_main()
    assert main(simulator_url, timeout=20.0) == ["answered", "finished", "ended"]
    lines = capsys.readouterr().out.splitlines()
    kinds = [line.split()[1] for line in lines]
    assert kinds[0] == "Connected"
    # One line per event, in protocol order: answered, then the play, then the hang-up.
    assert kinds.index("DialAnswered") < kinds.index("PlayStateChanged")
    assert any("state=finished" in line for line in lines)
    assert "state=ended end_reason=hangup" in lines[-1]


def test_blocking_client_as_a_script(simulator_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), simulator_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "answered -> finished -> ended"
