"""The demo: five dial stories told by the real client against the embedded simulator.

    make demo                      # asyncio
    python examples/demo.py trio   # the same on trio

1. a single dial that speaks TTS and hangs up;
2. serial failover: the first number is busy, the second answers;
3. parallel ring-all: two phones ring, one answers, the other is cancelled;
4. a dial that fails on every leg;
5. a dial abandoned by its deadline, whose ringing legs are hung up.

With SIGNALWIRE_PROJECT_ID, SIGNALWIRE_API_TOKEN and SIGNALWIRE_SPACE set, story 1 runs
against that space instead, from RELAY_DEMO_FROM to RELAY_DEMO_TO.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import anyio

from relay_anyio import (
    Call,
    DialFailedError,
    DialTimeoutError,
    RelayClient,
    RelayError,
    serve_simulator,
)
from relay_proto import CallStateChanged, Event, Leg

FROM = "+15551230000"
DESTINATIONS: dict[str, dict[str, Any]] = {
    "+15559876543": {"outcome": "answer", "after": 1.0},
    "+15550001001": {"outcome": "busy", "after": 0.8},
    "+15550001002": {"outcome": "answer", "after": 1.2},
    "+15550002001": {"outcome": "answer", "after": 1.5},
    "+15550002002": {"outcome": "answer", "after": 4.0},
    "+15550003001": {"outcome": "busy", "after": 0.6},
    "+15550003002": {"outcome": "decline", "after": 1.0},
    "+15550004001": {"outcome": "no_answer"},
    "+15550004002": {"outcome": "no_answer"},
}


def scenario(speed: float) -> dict[str, object]:
    """The simulator's script; ``speed`` > 1 compresses every duration (for tests)."""
    return {
        "default": {"outcome": "answer", "after": 1.0 / speed},
        "destinations": {
            to: {**outcome, **({"after": outcome["after"] / speed} if "after" in outcome else {})}
            for to, outcome in DESTINATIONS.items()
        },
        "play_seconds_per_char": 0.02 / speed,
    }


def phone(to: str, timeout: int = 30) -> dict[str, object]:
    return {"type": "phone", "params": {"from_number": FROM, "to_number": to, "timeout": timeout}}


@dataclass
class Story:
    title: str
    started: float = field(default_factory=time.monotonic)
    outcome: str = "-"
    legs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def say(self, text: str) -> None:
        print(f"   +{time.monotonic() - self.started:5.2f}s  {text}", flush=True)


class Timeline:
    """Receives every core event (``on_event``) and prints leg progress for the story."""

    def __init__(self) -> None:
        self.story: Story | None = None
        self.names: dict[str, str] = {}

    def __call__(self, event: Event) -> None:
        story = self.story
        if story is None or not isinstance(event, CallStateChanged):
            return
        device = event.raw.get("device") if event.raw else None
        params = device.get("params", {}) if isinstance(device, dict) else {}
        name = self.names.setdefault(event.call_id, str(params.get("to_number", event.call_id)))
        why = f" ({event.end_reason})" if event.end_reason else ""
        story.legs[name] = event.state.value + why
        story.say(f"{name:<14} {event.state.value}{why}")


def legs_text(legs: tuple[Leg, ...]) -> str:
    parts = []
    for leg in legs:
        to = leg.device.get("params", {}).get("to_number", leg.call_id)
        parts.append(f"{to} {leg.end_reason or leg.state.value}")
    return ", ".join(parts)


async def speak_and_hang_up(story: Story, call: Call, text: str) -> None:
    story.say(f"answered: call {call.call_id[:8]}…, playing TTS {text!r}")
    action = await call.play([{"type": "tts", "text": text}])
    state = await action.wait()
    story.say(f"play {state.value}; hanging up")
    await call.hangup()


async def run_story(
    client: RelayClient,
    timeline: Timeline,
    stories: list[Story],
    title: str,
    devices: list[list[dict[str, object]]],
    dial_timeout: float = 20.0,
) -> None:
    story = Story(title)
    stories.append(story)
    timeline.story = story
    print(f"\n== {len(stories)}. {title}", flush=True)
    try:
        call = await client.dial(devices=devices, dial_timeout=dial_timeout)
    except DialTimeoutError as exc:
        story.outcome = "timed out"
        story.say(f"deadline passed: {len(exc.legs)} ringing leg(s) hung up")
    except DialFailedError as exc:
        story.outcome = "failed"
        story.say(f"dial failed: {legs_text(exc.legs)}")
    else:
        story.outcome = f"answered by {call.device['params']['to_number']}"
        await speak_and_hang_up(story, call, "Hello! This is the relay demo.")
    # A ping round trip: the server answers it after every event it sent before, so the
    # timeline is complete (the hung-up legs' last states included).
    await client.ping()
    story.seconds = time.monotonic() - story.started
    timeline.story = None


async def stories_against(
    url: str | None, host: str | None, project: str, token: str, speed: float = 1.0
) -> list[Story]:
    timeline = Timeline()
    stories: list[Story] = []
    client = RelayClient(
        project=project, token=token, url=url, host=host, contexts=["default"], on_event=timeline
    )
    async with client:
        await run_story(
            client, timeline, stories, "Single dial, TTS, hang up", [[phone("+15559876543")]]
        )
        await run_story(
            client,
            timeline,
            stories,
            "Serial failover: busy, then answered",
            [[phone("+15550001001")], [phone("+15550001002")]],
        )
        await run_story(
            client,
            timeline,
            stories,
            "Parallel ring-all: one answers, the other is cancelled",
            [[phone("+15550002001"), phone("+15550002002")]],
        )
        await run_story(
            client,
            timeline,
            stories,
            "Every leg fails",
            [[phone("+15550003001")], [phone("+15550003002")]],
        )
        await run_story(
            client,
            timeline,
            stories,
            f"Abandoned by its deadline ({2.5 / speed:g} s): ringing legs hung up",
            [[phone("+15550004001"), phone("+15550004002")]],
            dial_timeout=2.5 / speed,
        )
    return stories


def summary(stories: list[Story]) -> None:
    print("\n" + "=" * 100)
    print(f"{'#':<3}{'story':<58}{'outcome':<28}{'time':>8}")
    for index, story in enumerate(stories, 1):
        print(f"{index:<3}{story.title[:56]:<58}{story.outcome[:27]:<28}{story.seconds:>7.2f}s")
        for name, state in story.legs.items():
            print(f"{'':<6}{name:<16}{state}")


async def main(speed: float = 1.0) -> int:
    space = os.environ.get("SIGNALWIRE_SPACE")
    project = os.environ.get("SIGNALWIRE_PROJECT_ID")
    token = os.environ.get("SIGNALWIRE_API_TOKEN")
    if space and project and token:
        if not (os.environ.get("RELAY_DEMO_FROM") and os.environ.get("RELAY_DEMO_TO")):
            print("set RELAY_DEMO_FROM and RELAY_DEMO_TO (E.164) to dial in a real space")
            return 2
        print(f"Using the real space {space} (story 1 only).")
        client = RelayClient(project=project, token=token, host=space, contexts=["default"])
        async with client:
            call = await client.dial(
                devices=[
                    [
                        {
                            "type": "phone",
                            "params": {
                                "from_number": os.environ["RELAY_DEMO_FROM"],
                                "to_number": os.environ["RELAY_DEMO_TO"],
                                "timeout": 30,
                            },
                        }
                    ]
                ]
            )
            action = await call.play([{"type": "tts", "text": "Hello!"}])
            await action.wait()
            await call.hangup()
        return 0
    async with serve_simulator(
        credentials={"demo-project": "demo-token"}, scenario=scenario(speed)
    ) as sim:
        print(f"Embedded RELAY simulator at {sim.url}")
        try:
            stories = await stories_against(
                sim.url, None, "demo-project", "demo-token", speed=speed
            )
        except RelayError as exc:
            print(f"demo failed: {exc}", file=sys.stderr)
            return 1
        summary(stories)
        live = sim.live_calls()
        print(f"\nCalls still live on the simulator: {len(live)}")
        return 0 if not live else 1


if __name__ == "__main__":
    backend = sys.argv[1] if len(sys.argv) > 1 else "asyncio"
    sys.exit(anyio.run(main, backend=backend))
