"""How operators' verdicts on ranked causes change top-1 on recurring faults: a replayed sequence of incidents of a
few recurring kinds (names, timings and noise signals vary; the cause does not), each ranked by the one engine
(``pipeline.rootcause.rank_incident_causes``) with the verdicts given so far, after which the operator marks the
top cause right, or wrong and the true cause right (``pipeline.feedback``). Compared with the same sequence
ranked with no verdicts.

    python -m bench.feedback.run [--count 40] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import Incident, IncidentLink, IncidentSignal, Severity, SignalKind
from kubestack.pipeline.feedback import CauseVerdict, verdict
from kubestack.pipeline.rootcause import rank_incident_causes

SRC = Source(agent="bench", host="bench")
START = datetime(2026, 12, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Fault:
    """One recurring fault: the true cause's resource kind and signal, and the signals around it."""

    name: str
    truth_kind: str
    signals: tuple[tuple[str, SignalKind, str, Severity, float, float], ...]
    """(resource kind, kind, name, severity, score, seconds after the opening)."""


FAULTS = (
    # a disk filling on the host of a database, while a risky-looking config change lands on the database
    Fault("host disk full", "host", (("postgresql", SignalKind.ANOMALY, "config-risk:postgresql.work_mem_raised",
                                      Severity.WARNING, 0.6, 0.0),
                                     ("host", SignalKind.FINDING, "host.disk_full", Severity.CRITICAL, 0.0, 20.0),
                                     ("postgresql", SignalKind.FINDING, "postgresql.slow_queries", Severity.WARNING,
                                      0.0, 30.0))),
    # a consumer stalled by its own garbage collector: the broker's lag finding is what shows first
    Fault("slow consumer", "app", (("kafka", SignalKind.FINDING, "kafka.consumer_lag", Severity.WARNING, 0.0, 0.0),
                                   ("app", SignalKind.ANOMALY, "metric:gc_pause_seconds", Severity.WARNING, 0.9,
                                    10.0))),
    # the cache lowered its maxmemory: the engine gets this one right already
    Fault("cache maxmemory lowered", "redis", (("redis", SignalKind.ANOMALY, "config-risk:redis.maxmemory_lowered",
                                                Severity.CRITICAL, 0.9, 0.0),
                                               ("app", SignalKind.ANOMALY, "metric:latency_p99", Severity.WARNING,
                                                0.7, 15.0))),
)
NOISE = (("app", SignalKind.ANOMALY, "metric:cpu_seconds", Severity.INFO, 0.3),
         ("host", SignalKind.ANOMALY, "metric:load1", Severity.INFO, 0.4))


def incident(fault: Fault, n: int, rng: random.Random) -> tuple[Incident, str]:
    """The ``n``-th incident of the sequence, of ``fault``; and the key of its true cause's resource."""
    opened = START + timedelta(hours=n)
    site = rng.choice(["a", "b", "c"])
    resources = {kind: ResourceRef(kind=kind, name=f"{kind}-{site}{rng.randint(1, 3)}", host=f"node-{site}")
                 for kind in {s[0] for s in fault.signals} | {s[0] for s in NOISE}}
    rows = [(*s[:5], s[5] + rng.uniform(-3, 3)) for s in fault.signals]
    if rng.random() < 0.5:
        extra = rng.choice(NOISE)
        rows.append((*extra, rng.uniform(0, 40)))
    signals = [IncidentSignal(event_id=f"e{n}-{i}", kind=kind, name=name, resource=resources[rk].key,
                              first_seen=opened + timedelta(seconds=max(0.0, at)),
                              last_seen=opened + timedelta(seconds=max(0.0, at) + 60), severity=sev,
                              score=score or None, summary=name)
               for i, (rk, kind, name, sev, score, at) in enumerate(rows)]
    used = {s.resource for s in signals}
    refs = [r for r in resources.values() if r.key in used]
    links = [IncidentLink(source=a.key, target=b.key, reason="same_host") for a in refs for b in refs if a.key < b.key]
    first = min(signals, key=lambda s: s.first_seen)
    made = Incident(source=SRC, resource=next(r for r in refs if r.key == first.resource), ts=opened,
                    incident_id=f"inc-{n}", title=fault.name, severity=Severity.WARNING,
                    opened_at=first.first_seen, resources=refs, member_event_ids=[s.event_id for s in signals],
                    signals=signals, links=links)
    return made, resources[fault.truth_kind].key


def top1(made: Incident, verdicts: list[CauseVerdict]) -> str:
    found = rank_incident_causes(made, SRC, lambda names, kind: [], lambda kind: (), made.ts, verdicts=verdicts)
    return found.report.hypotheses[0].component


def replay(count: int, seed: int) -> dict:
    """Top-1 over the sequence with and without verdicts, overall and by fault, and by occurrence."""
    rng = random.Random(seed)
    verdicts: list[CauseVerdict] = []
    hits: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "baseline": 0, "feedback": 0})
    by_occurrence: dict[int, dict[str, int]] = defaultdict(lambda: {"n": 0, "baseline": 0, "feedback": 0})
    seen: dict[str, int] = defaultdict(int)
    for n in range(count):
        fault = rng.choice(FAULTS)
        made, truth = incident(fault, n, rng)
        baseline, learned_top = top1(made, []), top1(made, verdicts)
        occurrence = min(seen[fault.name], 3)
        seen[fault.name] += 1
        for row in (hits[fault.name], hits["all"], by_occurrence[occurrence]):
            row["n"] += 1
            row["baseline"] += baseline == truth
            row["feedback"] += learned_top == truth
        at = made.ts + timedelta(minutes=30)  # the operator reads the report and marks the top cause
        verdicts.append(verdict(made, learned_top, learned_top == truth, "otto", at))
        if learned_top != truth:
            verdicts.append(verdict(made, truth, True, "otto", at))
    return {"faults": dict(hits), "by_occurrence": dict(by_occurrence), "verdicts": len(verdicts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    out = replay(args.count, args.seed)
    print(f"{'fault':<26}{'n':>4}{'top-1 no feedback':>20}{'top-1 with feedback':>22}")
    for name, row in out["faults"].items():
        print(f"{name:<26}{row['n']:>4}{row['baseline'] / row['n']:>20.0%}{row['feedback'] / row['n']:>22.0%}")
    print(f"\n{'occurrence of its fault':<26}{'n':>4}{'no feedback':>20}{'with feedback':>22}")
    for occurrence, row in sorted(out["by_occurrence"].items()):
        label = f"{occurrence + 1}{'+' if occurrence == 3 else ''}"
        print(f"{label:<26}{row['n']:>4}{row['baseline'] / row['n']:>20.0%}{row['feedback'] / row['n']:>22.0%}")
    print(f"\n{out['verdicts']} verdicts given")


if __name__ == "__main__":
    main()
