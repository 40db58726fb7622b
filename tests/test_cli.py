"""The ``relay`` command line (``relay_anyio._cli.main``).

``main`` runs its own event loop, so these tests are synchronous: ``relay dial`` against
the embedded simulator (no space configured) or against ``relay serve`` started as a
subprocess (``python -m relay_anyio serve --listen 127.0.0.1:0``, whose first output line
is its ws:// URL). Usage errors exit 2 with one line and no traceback; credentials are
never printed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from io import StringIO
from pathlib import Path

import pytest

from relay_anyio import RelayClient, _cli
from relay_anyio._cli import EXIT_AUTH, EXIT_CONNECTION, EXIT_OK, EXIT_USAGE, main

ROOT = Path(__file__).absolute().parent.parent
MARKER = "CLI-SECRET-MARKER-5678"
FROM, TO, ALSO, THEN = "+15551230000", "+15559870000", "+15559870001", "+15559870002"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No space configured (embedded simulator); a marker token that must never show."""
    for name in ("SIGNALWIRE_SPACE", "SIGNALWIRE_PROJECT_ID", "RELAY_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SIGNALWIRE_API_TOKEN", MARKER)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = StringIO()
    code = main(argv, out=out)
    captured = capsys.readouterr()
    text = out.getvalue() + captured.out
    assert MARKER not in text
    assert MARKER not in captured.err
    return code, text, captured.err


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_dial_against_the_embedded_simulator(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        ["--backend", backend, "dial", "--from", FROM, "--to", TO, "--also", ALSO, "--say", "Hi"],
        capsys,
    )
    assert code == EXIT_OK, err
    assert "embedded simulator" in out
    assert re.search(rf"{re.escape(TO)}\s+ringing", out)
    assert re.search(rf"{re.escape(ALSO)}\s+ringing", out)
    assert "answered: call " in out
    assert "ended: hangup" in out
    assert err == ""


@pytest.mark.usefixtures("env")
def test_dial_with_failover(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["dial", "--from", FROM, "--to", TO, "--then", THEN], capsys)
    assert code == EXIT_OK, err
    assert "answered: call " in out


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["dial", "--from", FROM, "--to", "5551234"], id="bad-to"),
        pytest.param(["dial", "--from", "12345", "--to", TO], id="bad-from"),
        pytest.param(["dial", "--from", FROM, "--to", TO, "--also", "+0123"], id="bad-also"),
        pytest.param(["dial", "--from", FROM, "--to", TO, "--ring-timeout", "0"], id="ring-0"),
        pytest.param(["dial", "--from", FROM, "--to", TO, "--dial-timeout", "-1"], id="dial-neg"),
        pytest.param(["dial", "--from", FROM, "--to", TO, "--url", "http://x"], id="bad-url"),
        pytest.param(["serve", "--listen", "nonsense"], id="listen-no-port"),
        pytest.param(["serve", "--listen", "127.0.0.1:99999"], id="listen-port-range"),
        pytest.param(["serve", "--listen", ":8765"], id="listen-no-host"),
        pytest.param(["serve", "--project", "p"], id="project-without-token"),
        pytest.param(["serve", "--scenario", "/nonexistent/scenario.json"], id="no-scenario"),
        pytest.param(["serve", "--ping-interval", "-1"], id="ping-interval-negative"),
        pytest.param(["serve", "--ping-interval", "never"], id="ping-interval-word"),
        pytest.param(["serve", "--ping-timeout", "0"], id="ping-timeout-0"),
        pytest.param(["serve", "--ping-timeout", "off"], id="ping-timeout-off"),
        pytest.param(["serve", "--ping-timeout", "nan"], id="ping-timeout-nan"),
        pytest.param(["serve", "--ping-timeout", "inf"], id="ping-timeout-inf"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(argv, capsys)
    assert code == EXIT_USAGE, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("relay: error: ")
    assert "Traceback" not in err


def test_bad_scenario_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scenario.json"
    path.write_text('{"default": {"outcome": "sing"}}')
    code, _, err = run(["serve", "--listen", "127.0.0.1:0", "--scenario", str(path)], capsys)
    assert code == EXIT_USAGE
    assert "sing" in err
    assert len(err.strip().splitlines()) == 1


def test_dial_needs_credentials_for_a_real_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SIGNALWIRE_PROJECT_ID", raising=False)
    monkeypatch.setenv("SIGNALWIRE_API_TOKEN", MARKER)
    code, _, err = run(["dial", "--from", FROM, "--to", TO, "--url", "ws://127.0.0.1:9"], capsys)
    assert code == EXIT_USAGE
    assert "SIGNALWIRE_PROJECT_ID" in err


def test_help_mentions_both_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "dial" in text
    assert "serve" in text
    assert "SIGNALWIRE_API_TOKEN" in text


@pytest.mark.parametrize(
    ("text", "seconds"), [("0", None), ("off", None), (" OFF ", None), ("0.25", 0.25), ("3", 3.0)]
)
def test_ping_interval_is_seconds_or_off(text: str, seconds: float | None) -> None:
    assert _cli._ping_interval(text) == seconds


@contextlib.contextmanager
def serve(backend: str = "asyncio", *extra: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``python -m relay_anyio serve --listen 127.0.0.1:0 --project P --token MARKER``.

    Yields the URL it printed (read with a timeout) and the process; kills it on the way
    out if the test did not stop it.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = ["--backend", backend, "serve", "--listen", "127.0.0.1:0", *extra]
    process = subprocess.Popen(
        [sys.executable, "-m", "relay_anyio", *argv, "--project", "cli-project", "--token", MARKER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        stdout = process.stdout
        assert stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()))
        reader.start()
        reader.join(timeout=20)
        assert lines, "relay serve printed no URL within 20 s"
        url = lines[0].strip()
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+", url), url
        assert not url.endswith(":0")
        assert MARKER not in url
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


@pytest.fixture
def served() -> Iterator[str]:
    with serve() as (url, process):
        yield url
        process.terminate()
        _, err = process.communicate(timeout=10)
        assert MARKER not in err
        assert "Traceback" not in err


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_serve_stops_cleanly_on_ctrl_c(backend: str) -> None:
    with serve(backend) as (_, process):
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    assert process.returncode == EXIT_OK, err
    assert err == ""
    assert MARKER not in out


def test_serve_prints_its_url_and_dial_reaches_it(
    served: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SIGNALWIRE_PROJECT_ID", "cli-project")
    monkeypatch.setenv("SIGNALWIRE_API_TOKEN", MARKER)
    code, out, err = run(["dial", "--from", FROM, "--to", TO, "--url", served], capsys)
    assert code == EXIT_OK, err
    assert "embedded" not in out
    assert "answered: call " in out


def test_serve_verbose_reports_each_socket(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SIGNALWIRE_PROJECT_ID", "cli-project")
    monkeypatch.setenv("SIGNALWIRE_API_TOKEN", MARKER)
    extra = ("--verbose", "--ping-interval", "30", "--ping-timeout", "5")
    with serve("asyncio", *extra) as (url, process):
        code, _, err = run(["dial", "--from", FROM, "--to", TO, "--url", url], capsys)
        assert code == EXIT_OK, err
        stderr = process.stderr
        assert stderr is not None
        lines: list[str] = []

        def read_until_closed() -> None:  # the close is logged just after the dial exits
            while (line := stderr.readline()) and "closed" not in line:
                lines.append(line)
            lines.append(line)

        reader = threading.Thread(target=read_until_closed, daemon=True)
        reader.start()
        reader.join(timeout=20)
        process.terminate()
    assert lines[:2] == [
        "relay serve: socket 1 connected: session new\n",
        "relay serve: socket 1 closed by the client\n",
    ]


def test_wrong_token_exits_4_without_printing_it(
    served: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SIGNALWIRE_PROJECT_ID", "cli-project")
    monkeypatch.setenv("SIGNALWIRE_API_TOKEN", MARKER + "-wrong")
    code, _, err = run(["dial", "--from", FROM, "--to", TO, "--url", served], capsys)
    assert code == EXIT_AUTH
    assert "authentication failed" in err
    assert "-wrong" not in err


@pytest.mark.usefixtures("env")
def test_an_unresolvable_space_is_named_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not ``Unknown error -2``: the line says the host could not be resolved, and which."""
    monkeypatch.setenv("SIGNALWIRE_PROJECT_ID", "cli-project")
    monkeypatch.setattr(_cli, "RelayClient", partial(RelayClient, connect_attempts=1))
    host = "no-such-space.invalid"
    code, _, err = run(["dial", "--from", FROM, "--to", TO, "--host", host], capsys)
    assert code == EXIT_CONNECTION
    [line] = err.splitlines()
    assert f"could not resolve host '{host}'" in line
    assert "Unknown error" not in line
