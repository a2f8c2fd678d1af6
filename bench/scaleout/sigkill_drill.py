"""The scale-out drill that kills one worker of three with SIGKILL, as a benchmark: it runs ``RUNS`` times on the
real three-broker cluster and says, per run, how many of the incidents' revisions reached a consumer, and the
losses in all. Out of ``make test`` while the group loses revisions in that drill (``README.md``).

    .venv/bin/python -m pytest -p tests.conftest bench/scaleout/sigkill_drill.py -s   # KUBESTACK_DRILL_RUNS=5
"""

from __future__ import annotations

import asyncio
import os

import pytest

from bench.scaleout.drills import Group, _drill, group  # noqa: F401 (the fixture, used by name)

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(3600)]

RUNS = int(os.environ.get("KUBESTACK_DRILL_RUNS", "5"))


async def test_sigkill_drills(group: Group) -> None:
    failures: list[str] = []
    for run in range(RUNS):
        try:
            await _drill(group, f"kill{run}", lambda: group.kill("w3"))
        except (AssertionError, pytest.fail.Exception) as exc:
            failures.append(f"run {run + 1}: {str(exc).splitlines()[0][:300]}")
        await asyncio.to_thread(group.start, "w3")  # back to three for the next run
    print(f"\nsigkill drill: {RUNS - len(failures)} of {RUNS} runs lost nothing")
    for failure in failures:
        print(failure)
    assert not failures, failures
