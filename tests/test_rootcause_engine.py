"""The root-cause engine as the worker calls it: metric movements, a symptom, the call graph and priors in, ranked
causes with their evidence out (``rank_causes``), without files."""

import numpy as np

from kubestack.models.rootcause import Prior, Symptom, rank_causes
from kubestack.models.rootcause_metrics import MetricTable, movements

STEP = 300.0
ROWS = 200
ONSET = 190


def table(series: dict[str, np.ndarray]) -> MetricTable:
    names = list(series)
    return MetricTable(np.arange(ROWS) * STEP, [tuple(n.split("|")) for n in names],
                       np.column_stack([series[n] for n in names]))


def noise(seed: int, level: float = 1.0, spread: float = 0.05) -> np.ndarray:
    return level * (1 + spread * np.random.default_rng(seed).standard_normal(ROWS))


def step(size: float, at: int = ONSET) -> np.ndarray:
    return np.where(np.arange(ROWS) >= at, size, 0.0)


def order(ranking) -> list[str]:
    return [c.component for c in ranking.causes]


def test_the_walk_from_the_symptom_keeps_the_callee_that_moved_while_its_own_callees_did_not() -> None:
    """web -> api -> db, web -> cache, batch -> db. The db slows, the api and web follow, the cache moves a little
    and later, and batch (which web cannot reach along calls) moves too: the db, which explains the api and web,
    ranks first; the api is its victim; batch is noted as out of the symptom's reach."""
    metrics = table({
        "web|latency_avg": noise(1, 100) + step(60),
        "api|latency_avg": noise(2, 40) + step(40),
        "db|latency_avg": noise(3, 10) + step(30),
        "db|cpu_avg": noise(4, 0.3),
        "cache|latency_avg": noise(5, 1) + step(3, ONSET + 4),
        "batch|latency_avg": noise(6, 5) + step(15),
    })
    edges = [("web", "api"), ("api", "db"), ("web", "cache"), ("batch", "db")]
    ranking = rank_causes(metrics, onset=ONSET * STEP, symptom=Symptom("web", "latency_avg"), edges=edges)
    names = order(ranking)
    assert names[0] == "db", [(c.component, round(c.score, 2), c.notes) for c in ranking.causes]
    api = ranking.causes[names.index("api")]
    assert any(n.startswith("calls db") for n in api.notes)
    batch = ranking.causes[names.index("batch")]
    assert any("not reachable from the symptom web" in n for n in batch.notes)
    web = ranking.causes[names.index("web")]
    assert all(e.metric != "latency_avg" for e in web.evidence), "the alert's own metric is not evidence"


def test_a_config_change_prior_decides_between_two_that_moved_alike() -> None:
    metrics = table({"a|latency_avg": noise(1) + step(1), "b|latency_avg": noise(2) + step(1),
                     "front|latency_avg": noise(3) + step(1)})
    edges = [("front", "a"), ("front", "b")]
    plain = rank_causes(metrics, onset=ONSET * STEP, edges=edges)
    assert set(order(plain)[:2]) == {"a", "b"}
    for favoured in ("a", "b"):
        prior = Prior(favoured, "config_change", 2.0, f"maxmemory lowered on {favoured}", at=(ONSET - 1) * STEP)
        ranking = rank_causes(metrics, onset=ONSET * STEP, edges=edges, priors=[prior])
        assert order(ranking)[0] == favoured
        assert {"note": f"maxmemory lowered on {favoured}"} in ranking.causes[0].as_dict()["evidence"]


def test_a_component_known_only_from_a_prior_is_ranked_too() -> None:
    metrics = table({"front|latency_avg": noise(1) + step(1), "api|latency_avg": noise(2)})
    ranking = rank_causes(metrics, onset=ONSET * STEP, edges=[("front", "api"), ("front", "disk")],
                          priors=[Prior("disk", "health", 3.0, "volume 99% full")])
    assert order(ranking)[0] == "disk" and ranking.causes[0].evidence == []


def test_attribution_prefers_the_callee_whose_movements_the_symptom_has_always_followed() -> None:
    """a and b both jump at the onset by as many of their own spreads; in the baseline, the front end's latency
    went up and down with a's, never with b's: a accounts for the symptom's movement."""
    rng = np.random.default_rng(7)
    a = 10 + rng.standard_normal(ROWS) + step(6)
    b = 10 + rng.standard_normal(ROWS) + step(6)
    front = 50 + 2 * (a - 10) + 0.3 * rng.standard_normal(ROWS)
    metrics = table({"front|latency_avg": front, "a|latency_avg": a, "b|latency_avg": b})
    ranking = rank_causes(metrics, onset=ONSET * STEP, symptom=Symptom("front", "latency_avg"))
    assert order(ranking)[0] == "a"
    assert any(n.startswith("accounts for 9") or n.startswith("accounts for 10") for n in ranking.causes[0].notes)
    b_notes = ranking.causes[order(ranking).index("b")].notes
    assert not any(n.startswith("accounts for") and not n.startswith("accounts for 0%") for n in b_notes)


def test_a_level_that_was_already_off_before_the_onset_did_not_move_at_it() -> None:
    """A history recorded under other traffic: ``lagging`` sits at another level from 20 rows before the onset
    on, so against the long baseline it looks far off, but nothing happened to it at the onset."""
    metrics = table({"lagging|latency_avg": noise(1) + step(5, ONSET - 20), "moved|latency_avg": noise(2) + step(1)})
    found = {m.component: m for m in movements(metrics, ONSET * STEP)}
    assert found["lagging"].z < 3 < found["moved"].z
    assert found["moved"].moved_at == ONSET * STEP


def test_a_baseline_of_two_rows_measures_relative_change_in_its_peers_units() -> None:
    """Five rows in all (no history). Availability never moves on any component, so a 3 % drop is large; latency
    wobbles by about 10 % everywhere, so a 5 % rise is small and a tripling is large."""
    stamps = np.arange(5) * STEP
    series = {
        "search|availability": [100, 100, 97, 97, 97], "web|availability": [100] * 5, "db|availability": [100] * 5,
        "search|latency": [1.0, 1.0, 3.0, 3.0, 3.0], "web|latency": [10, 11, 10, 9, 11],
        "db|latency": [5.0, 4.5, 5.0, 5.5, 4.5], "cache|latency": [2.0, 2.0, 2.1, 2.1, 2.1],
    }
    metrics = MetricTable(stamps, [tuple(n.split("|")) for n in series],
                          np.column_stack([np.asarray(v, dtype=float) for v in series.values()]))
    found = {(m.component, m.metric): m.z for m in movements(metrics, 3 * STEP)}
    assert found["search", "availability"] >= 3 and found["web", "availability"] == 0
    assert found["search", "latency"] > 5 and found["cache", "latency"] < 1
    assert order(rank_causes(metrics, onset=3 * STEP))[0] == "search"


def test_an_incident_known_only_from_its_signals_is_ranked_by_weight_time_and_calls() -> None:
    """The worker's case: no series, only signals as priors. The app's latency alert came first in weight, but
    the app calls redis, whose lowered maxmemory came 40 s earlier: redis ranks first, the app is its victim."""
    t0 = 1_763_900_000.0
    priors = [Prior("app", "anomaly", 2.0, "latency anomaly", at=t0 + 40, ref="ev-1"),
              Prior("redis", "config_change", 1.8, "maxmemory 2gb -> 100mb", at=t0, ref="ev-2"),
              Prior("host", "health", 0.5, "load average warning", at=t0 + 300, ref="ev-3")]
    ranking = rank_causes(priors=priors, edges=[("app", "redis")], symptom=Symptom("app", "latency"))
    assert order(ranking) == ["redis", "app", "host"], [(c.component, c.score, c.notes) for c in ranking.causes]
    assert "not reachable from the symptom app along calls" in ranking.causes[2].notes
    assert ranking.onset == t0 and not ranking.onset_given
    assert any(n.startswith("calls redis") for n in ranking.causes[1].notes)
    assert [[p.ref for p in c.priors] for c in ranking.causes] == [["ev-2"], ["ev-1"], ["ev-3"]]
    assert ranking.causes[0].as_dict()["evidence"] == [{"note": "maxmemory 2gb -> 100mb"},
                                                       {"note": "explains 1 of 2 anomalous components upstream (app)"}]


def test_series_as_a_live_caller_holds_them_land_on_one_grid() -> None:
    series = {("redis", "latency_ms"): [(100.0, 1.0), (111.0, 2.0), (118.0, 3.0), (140.0, 4.0)],
              ("app", "latency_ms"): [(103.0, 10.0), (125.0, 11.0)]}
    metrics = MetricTable.from_series(series, step=10.0)
    assert list(metrics.timestamps) == [100.0, 110.0, 120.0, 130.0, 140.0]
    assert metrics.columns == [("app", "latency_ms"), ("redis", "latency_ms")]
    np.testing.assert_array_equal(metrics.values, [[10, 1], [np.nan, 3], [11, np.nan], [np.nan, np.nan],
                                                   [np.nan, 4]])
    assert MetricTable.from_series({}, step=10.0).values.shape == (0, 0)
