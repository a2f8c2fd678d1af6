"""The forecast stage in pure form: capacity samples of a resource's batches in, exhaustion notices out."""

import random
from datetime import datetime, timedelta, timezone

from kubestack.contract.base import ResourceRef
from kubestack.contract.events import MetricBatch, PredictionStatus, Sample
from kubestack.pipeline.capacity import capacities_of
from kubestack.pipeline.prediction import Horizons, ResourceForecasts
from tests.factories import SOURCE

HORIZONS = Horizons.build(warning_s=86_400, critical_s=14_400, time_scale=1 / 1800)  # a day is 48 s
REDIS = ResourceRef(kind="redis", name="cache-1", host="db-1")
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
LIMIT = 100e6


def batches(values):
    for i, value in enumerate(values):
        ts = T0 + timedelta(seconds=i)
        yield MetricBatch(source=SOURCE, resource=REDIS, samples=[
            Sample(name="redis_used_memory_bytes", value=value, ts=ts),
            Sample(name="redis_maxmemory_bytes", value=LIMIT, ts=ts)])


def fill_then_drop(seed=3):
    rng = random.Random(seed)
    fill = [10e6 + 85e6 * i / 150 + rng.gauss(0, 3e5) for i in range(150)]
    return fill + [12e6 + rng.gauss(0, 3e5) for _ in range(120)]


def run(values, restart_at=None):
    forecasts, out = ResourceForecasts(HORIZONS), []
    for i, batch in enumerate(batches(values)):
        if i == restart_at:  # a worker restarts from its table state
            forecasts = ResourceForecasts.from_state(forecasts.to_state(), HORIZONS)
        out += [(i, p) for p in forecasts.observe(batch, capacities_of("redis"), SOURCE)]
    return out


def test_a_fill_is_noticed_before_it_is_full_and_withdrawn_once_it_drops() -> None:
    events = run(fill_then_drop())
    active = [(i, p) for i, p in events if p.status == PredictionStatus.ACTIVE]
    assert active, [(i, p.status, p.exhaustion_at) for i, p in events]
    first_i, first = active[0]
    assert first_i < 150 and first.signal == "redis_used_memory_bytes" and first.capacity == LIMIT
    assert first.exhaustion_lower_bound <= first.exhaustion_at
    assert first.exhaustion_at - first.ts < timedelta(seconds=150 - first_i + 60), "roughly when it fills"
    ids = {p.prediction_id for _, p in events}
    assert len(ids) == 1 and first.prediction_id.startswith("pred-"), "one notice, updated, then withdrawn"
    assert events[-1][1].status == PredictionStatus.WITHDRAWN and events[-1][0] >= 150
    assert events[-1][1].exhaustion_at is None


def test_restarting_from_the_table_state_changes_nothing() -> None:
    values = fill_then_drop()
    plain = [(i, p.status, p.exhaustion_at, p.prediction_id) for i, p in run(values)]
    assert plain == [(i, p.status, p.exhaustion_at, p.prediction_id) for i, p in run(values, restart_at=100)]


def test_flat_noise_and_resources_without_capacities_raise_nothing() -> None:
    rng = random.Random(5)
    assert run([50e6 + rng.gauss(0, 2e6) for _ in range(300)]) == []
    batch = next(batches([1.0]))
    assert ResourceForecasts(HORIZONS).observe(batch, capacities_of("kafka"), SOURCE) == []
