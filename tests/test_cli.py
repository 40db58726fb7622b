"""The ``relay`` command line (``relay_anyio._cli.main``).

``main`` runs its own event loop, so these tests are synchronous: ``relay dial`` against
the embedded simulator (no space configured) or against ``relay serve`` started as a
subprocess (``python -m relay_anyio serve --listen 127.0.0.1:0``, whose first output line
is its ws:// URL). Usage errors exit 2 with one line and no traceback; credentials are
never printed.
"""

from __future__ import annotations

import contextlib
import json
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
from relay_anyio._cli import (
    EXIT_AUTH,
    EXIT_CONNECTION,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    main,
)

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


# ------------------------------------------------------------------ --collect and sms

KEYS, HASH, SILENT = "+15559870010", "+15559870011", "+15559870012"
LOST, BOUNCED, SLOW = "+15559870020", "+15559870021", "+15559870022"
FAST = {"outcome": "answer", "after": 0.01}
SCENARIO = {
    "default": FAST,
    "destinations": {
        KEYS: {**FAST, "input": {"digits": "1234", "after": 0.05, "interval": 0.01}},
        HASH: {**FAST, "input": {"digits": "42", "terminator": "#", "after": 0.05}},
        SILENT: {**FAST, "input": "no_input"},
        LOST: {**FAST, "message": {"state": "undelivered", "reason": "Unknown number"}},
        BOUNCED: {**FAST, "message": "failed"},
        SLOW: {**FAST, "message": {"state": "delivered", "after": 30}},
    },
}


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One ``relay serve --scenario`` for the tests below: digits and message outcomes
    by destination."""
    path = tmp_path_factory.mktemp("cli") / "scenario.json"
    path.write_text(json.dumps(SCENARIO))
    with serve("asyncio", "--scenario", str(path)) as (url, process):
        yield url
        process.terminate()


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SIGNALWIRE_SPACE", "RELAY_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SIGNALWIRE_PROJECT_ID", "cli-project")
    monkeypatch.setenv("SIGNALWIRE_API_TOKEN", MARKER)


@pytest.mark.usefixtures("credentials")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize(
    ("to", "extra", "heard"),
    [
        pytest.param(KEYS, ["--say", "Your PIN?"], "1234", id="prompt-max-digits"),
        pytest.param(KEYS, [], "1234", id="no-prompt"),
        pytest.param(
            HASH, ["--say", "Code?", "--terminators", "#"], "42 (terminator #)", id="hash"
        ),
        pytest.param(
            SILENT, ["--say", "Hello?", "--collect-timeout", "0.1"], "no_input", id="none"
        ),
    ],
)
def test_dial_collect_prints_what_the_far_end_pressed(
    scripted: str,
    backend: str,
    to: str,
    extra: list[str],
    heard: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--backend", backend, "dial", "--from", FROM, "--to", to, "--collect", "4", *extra]
    code, out, err = run([*argv, "--url", scripted], capsys)
    assert code == EXIT_OK, err
    assert re.search(r"^collected: (.*)$", out, re.MULTILINE)[1] == heard  # type: ignore[index]
    lines = out.splitlines()
    assert lines.index(f"collected: {heard}") < lines.index("ended: hangup")


@pytest.mark.usefixtures("env")
def test_dial_collect_against_the_embedded_simulator(capsys: pytest.CaptureFixture[str]) -> None:
    """The embedded simulator's far end presses nothing."""
    argv = ["dial", "--from", FROM, "--to", TO, "--say", "Hi", "--collect", "1"]
    code, out, err = run([*argv, "--collect-timeout", "0.1"], capsys)
    assert code == EXIT_OK, err
    assert "embedded simulator" in out
    assert "collected: no_input" in out.splitlines()
    assert "ended: hangup" in out


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sms_against_the_embedded_simulator(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--backend", backend, "sms", "--from", FROM, "--to", TO, "--body", "Hello"]
    code, out, err = run(argv, capsys)
    assert code == EXIT_OK, err
    states = [line.split()[-1] for line in out.splitlines() if line.startswith("  ")]
    assert states == ["queued", "initiated", "sent", "delivered"]
    assert re.search(r"^message [0-9a-f-]+: delivered$", out, re.MULTILINE)
    assert err == ""


@pytest.mark.usefixtures("credentials")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize(
    ("to", "final", "code"),
    [
        pytest.param(TO, "delivered", EXIT_OK, id="delivered"),
        pytest.param(LOST, "undelivered (Unknown number)", EXIT_FAILED, id="undelivered"),
        pytest.param(BOUNCED, "failed (Message failed)", EXIT_FAILED, id="failed"),
    ],
)
def test_sms_prints_states_until_final_and_exits_by_outcome(
    scripted: str, backend: str, to: str, final: str, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--backend", backend, "sms", "--from", FROM, "--to", to, "--url", scripted]
    got, out, err = run([*argv, "--media", "https://example.com/cat.png"], capsys)
    assert got == code, err
    assert "embedded" not in out
    assert re.search(r"^  +\d+\.\d\ds  queued$", out, re.MULTILINE)
    assert re.search(rf"^message [0-9a-f-]+: {re.escape(final)}$", out, re.MULTILINE)


@pytest.mark.usefixtures("credentials")
def test_sms_gives_up_after_its_timeout(scripted: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sms", "--from", FROM, "--to", SLOW, "--body", "Hi", "--timeout", "0.3"]
    code, out, err = run([*argv, "--url", scripted], capsys)
    assert code == EXIT_TIMEOUT
    assert "no final state in 0.3 s" in err
    assert "queued" in out
    assert "delivered" not in out


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["dial", "--collect", "0"], id="collect-0"),
        pytest.param(["dial", "--collect", "four"], id="collect-word"),
        pytest.param(["dial", "--collect", "101"], id="collect-too-many"),
        pytest.param(["dial", "--collect", "4", "--terminators", "x"], id="terminator-x"),
        pytest.param(["dial", "--collect", "4", "--terminators", ""], id="terminator-empty"),
        pytest.param(["dial", "--collect", "4", "--collect-timeout", "-1"], id="timeout-neg"),
        pytest.param(["dial", "--collect-timeout", "1"], id="timeout-alone"),
        pytest.param(["dial", "--terminators", "#"], id="terminators-alone"),
        pytest.param(["sms"], id="sms-no-body"),
        pytest.param(["sms", "--body", "hi", "--timeout", "0"], id="sms-timeout-0"),
        pytest.param(["sms", "--body", "hi", "--timeout", "nan"], id="sms-timeout-nan"),
        pytest.param(["sms", "--body", "hi", "--url", "http://x"], id="sms-bad-url"),
    ],
)
def test_collect_and_sms_usage_errors_exit_2_before_anything_is_sent(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Checked before a simulator starts or a call is placed: nothing but one line."""
    code, out, err = run([*argv, "--from", FROM, "--to", TO], capsys)
    assert code == EXIT_USAGE, err
    assert err.startswith("relay: error: ")
    assert len(err.strip().splitlines()) == 1
    assert "answered" not in out


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--from", FROM, "--to", "5551234", "--body", "hi"], id="bad-to"),
        pytest.param(["--from", "12345", "--to", TO, "--body", "hi"], id="bad-from"),
    ],
)
def test_sms_refuses_bad_params_before_the_wire(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["sms", *argv], capsys)
    assert code == EXIT_USAGE, err
    assert len(err.strip().splitlines()) == 1
    assert "queued" not in out


@pytest.mark.usefixtures("credentials")
def test_a_send_the_server_refuses_exits_1(
    scripted: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused, not a connection problem: the server answered ``400`` naming the field."""
    argv = ["sms", "--from", FROM, "--to", TO, "--media", "not a url", "--url", scripted]
    code, out, err = run(argv, capsys)
    assert code == EXIT_FAILED
    [line] = err.splitlines()
    assert line.startswith("relay: refused: ")
    assert "media" in line
    assert "queued" not in out
