"""``kubestack models score`` through the real console script, on the fixtures in tests/data/anomaly/."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tests.cli import run

DATA = Path(__file__).parent / "data" / "anomaly"


def unwrapped(text: str) -> str:
    """stderr without the line breaks rich adds at 80 columns when it is not a terminal."""
    return " ".join(text.split())


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_file_mode_to_stdout_keeps_rows_and_adds_a_score() -> None:
    result = run("models", "score", str(DATA / "iso.csv"))
    assert result.returncode == 0, result.stderr
    out = rows(result.stdout)
    src = rows((DATA / "iso.csv").read_text())
    assert out[0] == ["timestamp", "value", "anomaly_score"]
    assert [r[:2] for r in out[1:]] == src[1:]
    scores = [float(r[2]) for r in out[1:]]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[450] > max(scores[:450])                              # the spike of the fixture
    assert 450 <= max(range(len(scores)), key=scores.__getitem__) <= 455   # and the points it still weighs on


def test_file_mode_to_a_file_is_deterministic_and_epoch_gives_iso_scores(tmp_path: Path) -> None:
    out_a, out_b = tmp_path / "a.csv", tmp_path / "sub" / "b.csv"
    epoch = DATA / "tree" / "a" / "b" / "epoch.csv"
    assert run("models", "score", str(epoch), "-o", str(out_a)).returncode == 0
    assert run("models", "score", str(epoch), "--output", str(out_b)).returncode == 0
    assert out_a.read_text() == out_b.read_text()
    iso = rows(run("models", "score", str(DATA / "iso.csv")).stdout)[1:301]
    assert [r[2] for r in rows(out_a.read_text())[1:]] == [r[2] for r in iso]   # same instants, same scores
    assert rows(out_a.read_text())[1][0] == "1396310400"


def test_dir_mode_mirrors_the_tree(tmp_path: Path) -> None:
    result = run("models", "score", "--input-dir", str(DATA / "tree"), "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.csv"))
    assert written == ["a/b/epoch.csv", "iso_t_zone.csv"]
    zoned = rows((tmp_path / "out" / "iso_t_zone.csv").read_text())
    assert zoned[1][0] == "2014-04-01T00:00:00Z" and len(zoned) == 201
    assert "2 series scored" in result.stderr


def test_bad_value_names_file_and_line() -> None:
    result = run("models", "score", str(DATA / "bad_value.csv"))
    assert result.returncode == 1
    assert "bad_value.csv: line 4: unparsable value 'abc'" in unwrapped(result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_bad_timestamp_and_missing_column_are_one_line_errors() -> None:
    stamp = run("models", "score", str(DATA / "bad_timestamp.csv"))
    assert stamp.returncode == 1 and "line 3: unparsable timestamp 'yesterday'" in unwrapped(stamp.stderr)
    column = run("models", "score", str(DATA / "missing_column.csv"))
    assert column.returncode == 1 and "no 'timestamp' column" in unwrapped(column.stderr)
    assert "Traceback" not in column.stderr + stamp.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("models", "score").returncode == 2
    assert run("models", "score", "--input-dir", str(DATA / "tree")).returncode == 2
    assert run("models", "score", str(DATA / "iso.csv"), "--detector", "nope").returncode == 2
    missing = run("models", "score", str(tmp_path / "absent.csv"))
    assert missing.returncode == 1 and "absent.csv: cannot read" in unwrapped(missing.stderr)
