"""The chaos soak (see ``chaos_soak.py``): a short run in every ``make test``, a long one
behind the ``soak`` marker (``make soak``). Seeded: set ``RELAY_SOAK_SEED`` to replay a
run's choices (timing still varies); the seed is printed with every failure.
"""

from __future__ import annotations

import pytest
from chaos_soak import seed_from_env, soak

pytestmark = pytest.mark.anyio

MiB = 1 << 20


async def run(dials: int, concurrency: int) -> None:
    seed = seed_from_env()
    print(f"RELAY_SOAK_SEED={seed}")
    report = await soak(seed, dials=dials, concurrency=concurrency)
    print(report)
    for line in report.mismatches + report.after_exit:
        print(line)
    problems = report.problems(memory_bound=48 * MiB)
    assert problems == [], f"RELAY_SOAK_SEED={seed}: {report}"


async def test_short_soak() -> None:
    await run(dials=250, concurrency=20)


@pytest.mark.soak
@pytest.mark.timeout(600)
async def test_long_soak() -> None:
    await run(dials=2_000, concurrency=50)
