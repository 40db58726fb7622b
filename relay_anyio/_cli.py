"""The ``relay`` command line: ``relay dial ...``, ``relay sms ...`` and ``relay serve ...``.

Exit codes: 0 success, 1 the dial failed (no device answered), the message was not
delivered or the server refused a request, 2 usage error, 3 the dial (or the wait for a
message's final state) timed out, 4 authentication failed, 5 connection problem.
Credentials come from the environment and are never printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from typing import Any, TextIO

import anyio

from relay_proto import CallStateChanged, Event, LocalProtocolError, MessageState
from relay_proto.simulator import DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT, Scenario

from ._cli_steps import MessageProgress, collect_spec, read_digits
from ._client import RelayClient
from ._errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionLostError,
    DialFailedError,
    DialTimeoutError,
    RelayError,
    RequestError,
    RequestTimeoutError,
)
from ._simulator import serve_simulator

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_AUTH, EXIT_CONNECTION = 0, 1, 2, 3, 4, 5

ENV_PROJECT = "SIGNALWIRE_PROJECT_ID"
ENV_TOKEN = "SIGNALWIRE_API_TOKEN"
ENV_SPACE = "SIGNALWIRE_SPACE"

DESCRIPTION = """\
Place and serve RELAY calls.

  relay dial --from +15551230000 --to +15559870000 --say "Hello!"
      Dials --to; --also numbers ring at the same time; --then numbers are tried
      one after another if nobody answers (serial failover). With --collect N, reads up
      to N digits after --say (play_and_collect) and prints them.

  relay sms --from +15551230000 --to +15559870000 --body "Hello!"
      Sends a message and prints its states until the final one (exit 1 when it is
      undelivered or failed).

  relay serve --listen 127.0.0.1:8765 --control 8766
      Runs the local RELAY simulator and prints its ws:// URL; with --control, a
      loopback socket to inject inbound calls and messages from other processes.

Credentials come from SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN, the space from
SIGNALWIRE_SPACE (e.g. example.signalwire.com). Without a space, --url or --host,
`relay dial` and `relay sms` run against an embedded simulator.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relay", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--backend", choices=("asyncio", "trio"), default="asyncio", help="event loop to use"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dial = commands.add_parser("dial", help="place a call and report what happened")
    dial.add_argument("--to", required=True, metavar="E164", help="number to dial first")
    dial.add_argument("--from", dest="from_number", required=True, metavar="E164", help="caller id")
    dial.add_argument(
        "--also", action="append", default=[], metavar="E164", help="ring at the same time as --to"
    )
    dial.add_argument(
        "--then", action="append", default=[], metavar="E164", help="try next if nobody answered"
    )
    dial.add_argument(
        "--ring-timeout", type=int, default=30, metavar="S", help="seconds each device rings"
    )
    dial.add_argument(
        "--dial-timeout", type=float, default=120.0, metavar="S", help="give up after S seconds"
    )
    dial.add_argument("--say", metavar="TEXT", help="speak TEXT once answered, then hang up")
    _add_collect_options(dial)
    _add_target_options(dial)
    _add_sms_options(commands.add_parser("sms", help="send a message and follow its states"))

    _add_serve_options(commands.add_parser("serve", help="run the local RELAY simulator"))
    return parser


def _add_target_options(command: argparse.ArgumentParser) -> None:
    target = command.add_mutually_exclusive_group()
    target.add_argument("--url", help="ws:// or wss:// URL of a RELAY server")
    target.add_argument("--host", help="RELAY host, e.g. example.signalwire.com")


def _add_collect_options(dial: argparse.ArgumentParser) -> None:
    dial.add_argument(
        "--collect",
        metavar="N",
        help="read up to N digits once answered (after --say, as its prompt) and print them",
    )
    dial.add_argument(
        "--collect-timeout",
        metavar="S",
        help="with --collect: seconds to wait for the first digit (default: the server's)",
    )
    dial.add_argument(
        "--terminators",
        metavar="DIGITS",
        help="with --collect: digits that end the input early, e.g. '#'",
    )


def _add_sms_options(sms: argparse.ArgumentParser) -> None:
    sms.add_argument("--to", required=True, metavar="E164", help="destination number")
    sms.add_argument("--from", dest="from_number", required=True, metavar="E164", help="sender")
    sms.add_argument("--body", metavar="TEXT", help="message text (--body or --media, or both)")
    sms.add_argument(
        "--media", action="append", metavar="URL", help="media URL (MMS); repeat for several"
    )
    sms.add_argument(
        "--timeout",
        default="120",
        metavar="S",
        help="give up waiting for the final state after S seconds (default 120)",
    )
    _add_target_options(sms)


def _add_serve_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--listen", default="127.0.0.1:8765", metavar="HOST:PORT")
    serve.add_argument("--project", help="accept only this project id (with --token)")
    serve.add_argument("--token", help="accept only this token (with --project)")
    serve.add_argument("--scenario", metavar="FILE", help="JSON scenario file (docs/simulator.md)")
    serve.add_argument(
        "--ping-interval",
        default=f"{DEFAULT_PING_INTERVAL:g}",
        metavar="S",
        help="ping each socket S seconds after its last pong; 0 or off: never (positive S)"
        f" (default {DEFAULT_PING_INTERVAL:g})",
    )
    serve.add_argument(
        "--ping-timeout",
        default=f"{DEFAULT_PING_TIMEOUT:g}",
        metavar="S",
        help="close a socket whose ping stays unanswered S seconds"
        f" (default {DEFAULT_PING_TIMEOUT:g})",
    )
    serve.add_argument(
        "--control",
        metavar="PORT",
        help="also listen on 127.0.0.1:PORT (0: a free port) for injections, one JSON object"
        " a line (docs/simulator.md, 'Many consumers')",
    )
    serve.add_argument(
        "--verbose",
        action="store_true",
        help="report on stderr each socket's session (new or resumed) and why it closed",
    )


def _seconds(option: str, text: str) -> float:
    """A positive number of seconds; anything else is a usage error."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (0 < seconds < 1e12):  # the simulator's own bound
        raise ConfigurationError(f"{option} must be a positive number of seconds, got {text!r}")
    return seconds


def _control_port(text: str | None) -> int | None:
    """``--control``: a port from 0 to 65535 (the host is always 127.0.0.1)."""
    if text is None:
        return None
    if not text.isdigit() or int(text) > 65535:
        raise ConfigurationError(f"--control must be a port from 0 to 65535, got {text!r}")
    return int(text)


def _ping_interval(text: str) -> float | None:
    """``--ping-interval``: positive seconds, or ``0``/``off`` (None: no server pings)."""
    if text.strip().lower() in ("0", "off"):
        return None
    return _seconds("--ping-interval", text)


class _Progress:
    """Prints one line per leg state change, with elapsed time."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._start = time.monotonic()
        self._names: dict[str, str] = {}

    def __call__(self, event: Event) -> None:
        if not isinstance(event, CallStateChanged):
            return
        params = event.raw.get("device", {}).get("params", {}) if event.raw else {}
        name = self._names.setdefault(event.call_id, str(params.get("to_number") or event.call_id))
        reason = f" ({event.end_reason})" if event.end_reason else ""
        elapsed = time.monotonic() - self._start
        print(f"  {elapsed:6.2f}s  {name:<16} {event.state.value}{reason}", file=self._out)


def _collect_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``--collect`` options as collect params (None without ``--collect``)."""
    if args.collect is None:
        if args.collect_timeout is not None or args.terminators is not None:
            raise ConfigurationError("--collect-timeout and --terminators need --collect")
        return None
    timeout = args.collect_timeout
    timeout = None if timeout is None else _seconds("--collect-timeout", timeout)
    return collect_spec(args.collect, args.terminators, timeout)


@asynccontextmanager
async def _target(args: argparse.Namespace, out: TextIO) -> AsyncIterator[dict[str, Any]]:
    """``RelayClient``'s connection keywords: the embedded simulator when no ``--url``,
    ``--host`` or ``SIGNALWIRE_SPACE`` names a server, else that server with the
    credentials from the environment."""
    host = args.host or os.environ.get(ENV_SPACE)
    if args.url is None and host is None:
        print("no SIGNALWIRE_SPACE, --host or --url: using the embedded simulator", file=out)
        async with serve_simulator() as sim:
            yield {"url": sim.url, "project": "demo", "token": "demo"}
        return
    project = os.environ.get(ENV_PROJECT)
    token = os.environ.get(ENV_TOKEN)
    if not project or not token:
        raise ConfigurationError(f"set {ENV_PROJECT} and {ENV_TOKEN} in the environment")
    url = args.url
    yield {"url": url, "host": None if url else host, "project": project, "token": token}


async def _dial(args: argparse.Namespace, out: TextIO) -> int:
    devices = [[args.to, *args.also], *[[number] for number in args.then]]
    plan = [
        [
            {
                "type": "phone",
                "params": {
                    "to_number": number,
                    "from_number": args.from_number,
                    "timeout": args.ring_timeout,
                },
            }
            for number in group
        ]
        for group in devices
    ]
    collect = _collect_options(args)
    async with _target(args, out) as where:
        return await _dial_with(plan, args, out, collect, where)


async def _dial_with(
    plan: list[list[dict[str, Any]]],
    args: argparse.Namespace,
    out: TextIO,
    collect: dict[str, Any] | None,
    where: dict[str, Any],
) -> int:
    client = RelayClient(**where, on_event=_Progress(out))
    async with client:
        call = await client.dial(devices=plan, dial_timeout=args.dial_timeout)
        print(f"answered: call {call.call_id}", file=out)
        try:
            if collect is not None:
                print(f"collected: {await read_digits(call, args.say, collect)}", file=out)
            elif args.say:
                action = await call.play([{"type": "tts", "text": args.say}])
                await action.wait()
        finally:
            with anyio.move_on_after(10, shield=True):
                await call.hangup()
        print(f"ended: {call.end_reason}", file=out)
    return EXIT_OK


async def _sms(args: argparse.Namespace, out: TextIO) -> int:
    timeout = _seconds("--timeout", args.timeout)
    if args.body is None and not args.media:
        raise ConfigurationError("give --body, --media or both")
    progress = MessageProgress(out)
    async with _target(args, out) as where, RelayClient(**where, on_event=progress) as client:
        message = await client.send_message(
            to_number=args.to, from_number=args.from_number, body=args.body, media=args.media
        )
        progress.show(message.state)
        try:
            state = await message.wait(timeout)
        except TimeoutError:
            print(
                f"relay: message {message.message_id}: no final state in {timeout:g} s",
                file=sys.stderr,
            )
            return EXIT_TIMEOUT
    reason = f" ({message.reason})" if message.reason else ""
    print(f"message {message.message_id}: {state}{reason}", file=out)
    return EXIT_OK if state == MessageState.DELIVERED else EXIT_FAILED


def _load_scenario(path: str) -> Scenario:
    try:
        with open(path, encoding="utf-8") as handle:
            return Scenario.from_dict(json.load(handle))
    except (OSError, ValueError, LocalProtocolError) as exc:
        raise ConfigurationError(f"--scenario {path}: {exc}") from None


async def _serve(args: argparse.Namespace, out: TextIO) -> int:
    host, _, port_text = args.listen.rpartition(":")
    if not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigurationError(
            f"--listen must be HOST:PORT with a port from 0 to 65535, got {args.listen!r}"
        )
    if (args.project is None) != (args.token is None):
        raise ConfigurationError("--project and --token go together")
    credentials = None if args.project is None else {args.project: args.token}
    scenario = _load_scenario(args.scenario) if args.scenario else None
    ping_interval = _ping_interval(args.ping_interval)
    ping_timeout = _seconds("--ping-timeout", args.ping_timeout)
    control_port = _control_port(args.control)
    # The command line owns the process, so it may own its signals (the library never
    # installs handlers): Ctrl-C or SIGTERM end the server cleanly on either backend.
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals, _verbose(args):
        async with serve_simulator(
            host=host.strip("[]"),
            port=int(port_text),
            credentials=credentials,
            scenario=scenario,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            control_port=control_port,
        ) as sim:
            print(sim.url, file=out, flush=True)
            if sim.control_port is not None:
                print(f"control 127.0.0.1:{sim.control_port}", file=out, flush=True)
            async for _ in signals:
                break
    return EXIT_OK


@contextmanager
def _verbose(args: argparse.Namespace) -> Iterator[None]:
    """With ``--verbose``, the simulator's INFO lines go to stderr for this command only."""
    if not args.verbose:
        yield
        return
    logger = logging.getLogger("relay_anyio.simulator")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("relay serve: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        leaves.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return leaves


def _sole_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error a group stands for: Ctrl-C if that is all it holds, else its only
    member; the group itself when it really holds several errors."""
    leaves = _leaves(group)
    if leaves and all(isinstance(exc, KeyboardInterrupt) for exc in leaves):
        return leaves[0]
    return leaves[0] if len(leaves) == 1 else group


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    command = {"dial": _dial, "sms": _sms}.get(args.command, _serve)
    try:
        try:
            return anyio.run(partial(command, args, out), backend=args.backend)
        except BaseExceptionGroup as group:
            # trio delivers Ctrl-C inside whichever task runs, so it can come out of a
            # task group wrapped; so can an error raised next to a cancelled task.
            raise _sole_error(group) from None
    except KeyboardInterrupt:
        return EXIT_OK
    except (ConfigurationError, ValueError) as exc:
        print(f"relay: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DialTimeoutError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    except DialFailedError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except AuthenticationError as exc:
        print(f"relay: authentication failed: {exc}", file=sys.stderr)
        return EXIT_AUTH
    except RequestError as exc:
        if isinstance(exc, RequestTimeoutError):
            print(f"relay: connection problem: {exc}", file=sys.stderr)
            return EXIT_CONNECTION
        print(f"relay: refused: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (ConnectionLostError, RelayError, OSError) as exc:
        print(f"relay: connection problem: {exc}", file=sys.stderr)
        return EXIT_CONNECTION
