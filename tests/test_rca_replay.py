"""``kubestack rca replay DIR``: the offline root-cause ranking, exactly as it is scored from outside."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from kubestack.errors import CaseFormatError
from kubestack.models.rootcause import Symptom
from kubestack.models.rootcause_case import rank_case, read_case
from kubestack.models.rootcause_metrics import ONSET_LEAD_ROWS, MetricTable, find_onset
from tests.cli import run

T0 = 1_763_900_000
ONSET_ROW = 80


def write_chain(folder: Path, graph: bool = True, start: bool = False, logs: bool = False,
                symptom: bool = False) -> Path:
    """frontend → api → db: the database slows down at ONSET_ROW; the api follows 2 rows later, the front end 4
    rows later (latency travels up the call chain); the front end's latency moves the most in absolute terms."""
    rng = np.random.default_rng(11)
    rows = 160
    slow = (np.arange(rows) >= ONSET_ROW).astype(float)
    lagged = lambda k: np.concatenate([np.zeros(k), slow[:-k]])  # noqa: E731
    series = {
        "db|latency_ms": 4 * (1 + 3 * slow) * rng.lognormal(0, 0.05, rows),
        "db|cpu": 0.3 + 0.02 * rng.standard_normal(rows),
        "api|latency_ms": (20 + 12 * lagged(2)) * rng.lognormal(0, 0.05, rows),
        "api|errors": np.abs(0.01 * rng.standard_normal(rows)),
        "frontend|latency_ms": (60 + 14 * lagged(4)) * rng.lognormal(0, 0.05, rows),
        "frontend|requests": 100 + 5 * rng.standard_normal(rows),
    }
    folder.mkdir(parents=True)
    names = list(series)
    lines = ["timestamp," + ",".join(names)]
    lines += [f"{T0 + 10 * i}," + ",".join(f"{series[n][i]:.5f}" for n in names) for i in range(rows)]
    (folder / "metrics.csv").write_text("\n".join(lines) + "\n")
    if graph:
        (folder / "graph.csv").write_text("source,target\nfrontend,api\napi,db\n")
    if start or symptom:
        incident = {"start": T0 + 10 * ONSET_ROW} if start else {}
        if symptom:
            incident["symptom"] = {"component": "frontend", "metric": "latency_ms"}
        (folder / "incident.json").write_text(json.dumps(incident))
    if logs:
        (folder / "logs.jsonl").write_text("\n".join(json.dumps(
            {"timestamp": T0 + 10 * (ONSET_ROW + i), "component": "db", "level": "ERROR",
             "message": "checkpoint took too long"}) for i in range(20)) + "\n")
    return folder


def test_the_slow_database_ranks_first_with_and_without_the_graph(tmp_path) -> None:
    for name, graph in (("with", True), ("without", False)):
        ranking = rank_case(read_case(write_chain(tmp_path / name, graph=graph)))
        assert [c.component for c in ranking.causes][0] == "db", [(c.component, c.score, c.notes)
                                                                  for c in ranking.causes]
        lead = 10 * ONSET_LEAD_ROWS  # a little early on purpose: a late onset hides the cause's first movement
        assert not ranking.onset_given
        assert -lead - 30 <= ranking.onset - (T0 + 10 * ONSET_ROW) <= 30, "found within three rows of that"
    ranked = rank_case(read_case(tmp_path / "with")).causes
    assert ranked[0].evidence[0].metric == "latency_ms" and ranked[0].evidence[0].direction == "up"
    assert any("calls db, which moved as much" in note for note in ranked[1].notes), "the api is the db's victim"
    assert any("explains 2 of" in note for note in ranked[0].notes), "the db explains both of its callers"


def test_a_given_onset_and_logs_are_used(tmp_path) -> None:
    case = read_case(write_chain(tmp_path / "c", start=True, logs=True))
    assert case.start == T0 + 10 * ONSET_ROW and len(case.logs) == 20
    ranking = rank_case(case)
    assert ranking.onset == case.start and ranking.onset_given and ranking.causes[0].component == "db"
    assert [p.kind for p in ranking.causes[0].priors] == ["logs"]
    notes = [e["note"] for e in ranking.causes[0].as_dict()["evidence"] if "note" in e]
    assert "20 error/warning log lines after the onset, 0 before" in notes


def test_the_symptom_of_incident_json_is_read_and_its_own_metric_is_not_evidence(tmp_path) -> None:
    case = read_case(write_chain(tmp_path / "c", start=True, symptom=True))
    assert case.symptom == Symptom("frontend", "latency_ms")
    ranked = rank_case(case).causes
    assert ranked[0].component == "db"
    frontend = next(c for c in ranked if c.component == "frontend")
    assert [e.metric for e in frontend.evidence] == ["requests"], "the alert is why we look, not evidence"
    assert all(e.tracking is not None for c in ranked for e in c.evidence), "shapes matched to the symptom's"


def test_onset_of_a_single_shift() -> None:
    values = np.concatenate([np.zeros(50), np.ones(30) * 5]) + np.random.default_rng(1).normal(0, 0.3, 80)
    assert find_onset(MetricTable(np.arange(80.0), [("a", "m")], values[:, None])) == 50.0 - ONSET_LEAD_ROWS


def test_cli_prints_the_ranking_as_json_best_first(tmp_path) -> None:
    result = run("rca", "replay", str(write_chain(tmp_path / "c", graph=False)), "--json")
    assert result.returncode == 0, result.stderr
    ranking = json.loads(result.stdout)["ranking"]
    assert [r["component"] for r in ranking][0] == "db" and len(ranking) == 3
    assert all(set(r) == {"component", "score", "evidence"} for r in ranking)
    scores = [r["score"] for r in ranking]
    assert scores == sorted(scores, reverse=True) and all(math.isfinite(s) for s in scores)
    assert ranking[0]["evidence"][0]["metric"] == "latency_ms"


def test_missing_values_are_tolerated(tmp_path) -> None:
    folder = write_chain(tmp_path / "c")
    lines = (folder / "metrics.csv").read_text().splitlines()
    lines[10] = lines[10].rsplit(",", 1)[0] + ","  # an empty cell
    lines[11] = lines[11].rsplit(",", 1)[0] + ",NaN"
    (folder / "metrics.csv").write_text("\n".join(lines) + "\n")
    assert rank_case(read_case(folder)).causes[0].component == "db"


@pytest.mark.parametrize(("files", "message"), [
    ({}, "no metrics.csv"),
    ({"metrics.csv": "time,a|m\n1,2\n"}, "first column must be 'timestamp'"),
    ({"metrics.csv": "timestamp,am\n1,2\n2,3\n3,4\n"}, "is not <component>|<metric>"),
    ({"metrics.csv": "timestamp,a|m\n1,2\n2,x\n3,4\n"}, "line 3: 'x' is not a number"),
    ({"metrics.csv": "timestamp,a|m\n1,2\n2,3\n3,4\n", "graph.csv": "from,to\n"}, "expected the header source,target"),
    ({"metrics.csv": "timestamp,a|m\n1,2\n2,3\n3,4\n", "incident.json": '{"symptom": {"component": "a"}}'},
     "each optional"),
])
def test_bad_folders_get_one_clear_line(tmp_path, files, message) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(CaseFormatError, match=message):
        read_case(tmp_path)
    result = run("rca", "replay", str(tmp_path))
    assert result.returncode == 1 and message.split("'")[0] in result.stderr and "Traceback" not in result.stderr
