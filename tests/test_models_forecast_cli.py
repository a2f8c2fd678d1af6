"""``kubestack models forecast`` through the real console script: synthetic fills written as CSV here, and
the real recordings of bench/forecast/recorded/ (a tmpfs filled by a writer, its log-rotation sawtooth)."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.cli import run

RECORDED = Path(__file__).resolve().parents[1] / "bench" / "forecast" / "recorded"
T0 = 1_700_006_400          # 2023-11-15T00:00:00Z
STEP = 300
HOUR = 3600


def unwrapped(text: str) -> str:
    return " ".join(text.split())


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def write_fill(path: Path, *, iso_stamps: bool = True, days: float = 4.0) -> float:
    """A disk filling from 30% to 100 in ``days`` days with noise; returns the time it is full."""
    rnd = random.Random(11)
    n = int(days * 86_400 / STEP)
    lines = ["timestamp,value"]
    for i in range(n):
        ts = T0 + i * STEP
        value = 30 + 70 * i / n + rnd.gauss(0, 0.5)
        lines.append(f"{iso(ts) if iso_stamps else ts},{value:.3f}")
    path.write_text("\n".join(lines) + "\n")
    return T0 + days * 86_400


def write_sawtooth(path: Path, days: int = 6) -> None:
    rnd, level, lines = random.Random(5), 10.0, ["timestamp,value"]
    for i in range(days * 288):
        level += 45 / (6 * HOUR) * STEP * rnd.uniform(0.6, 1.4)
        if level >= 55:
            level = 10 + rnd.uniform(0, 3)
        lines.append(f"{T0 + i * STEP},{level + rnd.gauss(0, 0.3):.3f}")
    path.write_text("\n".join(lines) + "\n")


def test_fill_is_foreseen_a_day_ahead_and_rows_are_kept(tmp_path: Path) -> None:
    src = tmp_path / "disk.csv"
    full_at = write_fill(src)
    result = run("models", "forecast", str(src), "--capacity", "100")
    assert result.returncode == 0, result.stderr
    out = rows(result.stdout)
    assert out[0] == ["timestamp", "value", "exhaustion_at", "exhaustion_lower_bound"]
    assert [r[:2] for r in out[1:]] == rows(src.read_text())[1:]
    foreseen = [(epoch(r[0]), epoch(r[2]), epoch(r[3])) for r in out[1:] if r[2]]
    assert all(bool(r[2]) == bool(r[3]) for r in out[1:])
    assert all(epoch(r[0]) >= T0 + 24 * HOUR for r in out[1:] if r[2])      # a day of history first
    first_row = foreseen[0][0]
    assert 20 * HOUR <= full_at - first_row <= 30 * HOUR                    # due within the 24 h horizon
    assert all(lower <= likely for _, likely, lower in foreseen)
    assert all(lower - ts <= 24 * HOUR for ts, _, lower in foreseen)
    last_day = [likely for ts, likely, _ in foreseen if ts >= full_at - 24 * HOUR]
    assert max(abs(likely - full_at) for likely in last_day) <= 3 * HOUR


def test_epoch_and_iso_inputs_give_the_same_forecasts_deterministically(tmp_path: Path) -> None:
    write_fill(tmp_path / "iso.csv")
    write_fill(tmp_path / "epoch.csv", iso_stamps=False)
    a, b = tmp_path / "a.csv", tmp_path / "sub" / "b.csv"
    assert run("models", "forecast", str(tmp_path / "epoch.csv"), "--capacity", "100", "-o", str(a)).returncode == 0
    assert run("models", "forecast", str(tmp_path / "epoch.csv"), "--capacity", "100",
               "--output", str(b)).returncode == 0
    assert a.read_text() == b.read_text()
    zoned = rows(run("models", "forecast", str(tmp_path / "iso.csv"), "--capacity", "100").stdout)
    assert [r[2:] for r in rows(a.read_text())] == [r[2:] for r in zoned]
    assert rows(a.read_text())[1][0] == str(T0)


def test_horizon_narrows_what_is_shown(tmp_path: Path) -> None:
    src = tmp_path / "disk.csv"
    full_at = write_fill(src)
    out = rows(run("models", "forecast", str(src), "--capacity", "100", "--horizon", "4h").stdout)
    first = min(epoch(r[0]) for r in out[1:] if r[2])
    assert full_at - first <= 6 * HOUR
    assert all(epoch(r[3]) - epoch(r[0]) <= 4 * HOUR for r in out[1:] if r[3])


def test_sawtooth_and_a_raised_capacity_foresee_nothing(tmp_path: Path) -> None:
    write_sawtooth(tmp_path / "log.csv")
    saw = rows(run("models", "forecast", str(tmp_path / "log.csv"), "--capacity", "100").stdout)
    assert len(saw) == 6 * 288 + 1 and all(r[2] == r[3] == "" for r in saw[1:])
    write_fill(tmp_path / "disk.csv")
    roomy = rows(run("models", "forecast", str(tmp_path / "disk.csv"), "--capacity", "1000").stdout)
    assert all(r[2] == "" for r in roomy[1:])


def test_dir_mode_mirrors_the_tree(tmp_path: Path) -> None:
    (tmp_path / "in" / "a" / "b").mkdir(parents=True)
    write_fill(tmp_path / "in" / "a" / "b" / "disk.csv", days=2)
    write_sawtooth(tmp_path / "in" / "log.csv", days=2)
    result = run("models", "forecast", "--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"),
                 "--capacity", "100")
    assert result.returncode == 0, result.stderr
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.csv"))
    assert written == ["a/b/disk.csv", "log.csv"]
    assert rows((tmp_path / "out" / "log.csv").read_text())[0][2:] == ["exhaustion_at", "exhaustion_lower_bound"]
    assert "2 series forecast" in unwrapped(result.stderr)


def test_bad_input_is_a_one_line_error_naming_the_line(tmp_path: Path) -> None:
    bad_value = tmp_path / "bad_value.csv"
    bad_value.write_text("timestamp,value\n1700000000,1\n1700000300,2\n1700000600,lots\n")
    result = run("models", "forecast", str(bad_value), "--capacity", "100")
    assert result.returncode == 1 and "bad_value.csv: line 4: unparsable value 'lots'" in unwrapped(result.stderr)
    bad_stamp = tmp_path / "bad_stamp.csv"
    bad_stamp.write_text("timestamp,value\n2023-11-15T00:00:00Z,1\nnoon,2\n")
    result = run("models", "forecast", str(bad_stamp), "--capacity", "100")
    assert result.returncode == 1 and "line 3: unparsable timestamp 'noon'" in unwrapped(result.stderr)
    unsorted = tmp_path / "unsorted.csv"
    unsorted.write_text("timestamp,value\n1700000600,1\n1700000300,2\n")
    result = run("models", "forecast", str(unsorted), "--capacity", "100")
    assert result.returncode == 1 and "row 2 (1700000300) is earlier than the row before" in unwrapped(result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    src = tmp_path / "disk.csv"
    write_fill(src, days=1)
    missing = run("models", "forecast", str(src))
    assert missing.returncode == 2 and "--capacity" in unwrapped(missing.stderr)
    assert run("models", "forecast", str(src), "--capacity", "0").returncode == 2
    assert run("models", "forecast", str(src), "--capacity", "nan").returncode == 2
    horizon = run("models", "forecast", str(src), "--capacity", "100", "--horizon", "soon")
    assert horizon.returncode == 2 and "not a duration" in unwrapped(horizon.stderr)
    assert run("models", "forecast", "--capacity", "100").returncode == 2
    assert run("models", "forecast", "--input-dir", str(tmp_path), "--capacity", "100").returncode == 2
    absent = run("models", "forecast", str(tmp_path / "absent.csv"), "--capacity", "100")
    assert absent.returncode == 1 and "absent.csv: cannot read" in unwrapped(absent.stderr)


META = json.loads((RECORDED / "meta.json").read_text())


@pytest.mark.parametrize("name", sorted(n for n, m in META.items() if m["scenario"].endswith("_fill")))
def test_real_recorded_fill_is_foreseen_before_it_is_full(name: str) -> None:
    meta = META[name]
    out = rows(run("models", "forecast", str(RECORDED / name), "--capacity", str(int(meta["capacity"]))).stdout)
    foreseen = [(float(r[0]), epoch(r[2]), epoch(r[3])) for r in out[1:] if r[2]]
    full_at = meta["exhausted_at"]
    assert foreseen and full_at - foreseen[0][0] >= 20 * HOUR     # compressed hours (1 real s = 5 min)
    assert all(lower <= likely for _, likely, lower in foreseen)
    before = [float(r[0]) for r in out[1:] if full_at - 12 * HOUR <= float(r[0]) < full_at]
    near = [(likely, lower) for ts, likely, lower in foreseen if full_at - 12 * HOUR <= ts < full_at]
    assert len(near) >= 0.9 * len(before)                          # the last half day is all foreseen
    # the writers speed up towards the end (see record.py): the forecasts trail a little, never by half a day
    assert all(lower <= full_at + 12 * HOUR and likely > full_at - 12 * HOUR for likely, lower in near)


@pytest.mark.parametrize("name", sorted(n for n, m in META.items() if not m["scenario"].endswith("_fill")))
def test_real_recorded_sawtooth_and_cache_expiry_foresee_nothing(name: str) -> None:
    meta = META[name]
    out = rows(run("models", "forecast", str(RECORDED / name), "--capacity", str(int(meta["capacity"]))).stdout)
    assert len(out) > 600 and all(r[2] == r[3] == "" for r in out[1:])
