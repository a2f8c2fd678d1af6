"""Operators' verdicts on ranked causes, pure: signatures and similarity, the explainable factor they put on a
component's cause in the one root-cause engine, and the replayed sequence of recurring faults where top-1 improves
with feedback (``bench/feedback/run.py``)."""

from __future__ import annotations

import random
from datetime import timedelta

from bench.feedback import run as bench
from kubestack.pipeline.feedback import STEP, learned, signature, similarity, verdict
from kubestack.pipeline.rootcause import rank_incident_causes

SLOW_CONSUMER = bench.FAULTS[1]


def _incident(n: int, fault=SLOW_CONSUMER, seed: int = 1):
    return bench.incident(fault, n, random.Random(seed + n))


def _ranked(made, verdicts):
    found = rank_incident_causes(made, bench.SRC, lambda names, kind: [], lambda kind: (), made.ts, verdicts=verdicts)
    return found.report


def test_a_signature_is_the_kinds_and_causes_of_the_signals_whatever_the_names() -> None:
    first, _ = _incident(1)
    again, _ = _incident(2)
    assert {r.name for r in first.resources} != {r.name for r in again.resources} or first.incident_id != \
        again.incident_id
    assert "kafka:kafka.consumer_lag" in signature(first) and "app:metric:gc_pause_seconds" in signature(first)
    assert similarity(signature(first), signature(again)) >= 2 / 3
    assert similarity([], []) == 0.0 and similarity(["a"], ["b"]) == 0.0


def test_the_engine_ranks_the_slow_consumer_wrong_and_a_correction_re_ranks_the_next_one() -> None:
    first, truth = _incident(1)
    report = _ranked(first, [])
    assert report.hypotheses[0].component != truth, "the lag on the broker comes first without feedback"
    at = first.ts + timedelta(minutes=5)
    verdicts = [verdict(first, report.hypotheses[0].component, False, "otto", at), verdict(first, truth, True, "otto", at)]
    assert verdicts[0].cause == "kafka.consumer_lag" and verdicts[1].cause == "metric:gc_pause_seconds"
    again, truth_again = _incident(2)
    factors = learned(again, verdicts)
    assert factors[truth_again].factor > 1 > factors[again.resource.key if again.resource.key != truth_again else
                                                      next(k for k in factors if k != truth_again)].factor
    assert "operators marked metric:gc_pause_seconds on app right 1, wrong 0" in factors[truth_again].note
    report = _ranked(again, verdicts)
    assert report.hypotheses[0].component == truth_again
    assert "operators marked metric:gc_pause_seconds" in report.narrative.lower(), "the reason shows in the report"


def test_verdicts_on_unlike_incidents_or_other_kinds_do_not_count() -> None:
    first, truth = _incident(1)
    at = first.ts
    cache, _ = bench.incident(bench.FAULTS[2], 3, random.Random(3))
    assert learned(cache, [verdict(first, truth, True, "otto", at)]) == {}, "another fault's verdicts"
    capped = learned(first, [verdict(first, truth, True, "otto", at)] * 10)
    assert capped[truth].factor == STEP ** 3, "the vote is capped"


def test_a_verdict_on_a_resource_without_signals_is_refused() -> None:
    first, _ = _incident(1)
    try:
        verdict(first, "-/x/redis/none", True, "otto", first.ts)
    except ValueError as exc:
        assert "no signal on -/x/redis/none" in str(exc)
    else:
        raise AssertionError("a verdict on a resource of no signal was accepted")


def test_replaying_recurring_faults_top1_improves_with_feedback_and_nothing_right_gets_worse() -> None:
    out = bench.replay(40, 7)
    overall = out["faults"]["all"]
    assert overall["feedback"] > overall["baseline"]
    assert out["faults"]["slow consumer"]["baseline"] == 0 and out["faults"]["slow consumer"]["feedback"] >= \
        out["faults"]["slow consumer"]["n"] - 1, "wrong only the first time"
    for name in ("host disk full", "cache maxmemory lowered"):
        assert out["faults"][name]["feedback"] == out["faults"][name]["baseline"] == out["faults"][name]["n"]
