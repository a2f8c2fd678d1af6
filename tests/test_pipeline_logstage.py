from datetime import datetime, timedelta, timezone
from pathlib import Path

from kubestack.contract.base import ResourceRef
from kubestack.contract.events import LogBatch, LogLine, Severity
from kubestack.pipeline.logstage import ResourceLogs
from tests.factories import REDIS, SOURCE

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)


def batch(lines, start):
    return LogBatch(source=SOURCE, resource=REDIS, lines=[
        LogLine(ts=start + timedelta(seconds=i), line=text, path="/var/log/redis.log") for i, text in enumerate(lines)])


def steady(minute: int) -> list[str]:
    return [f"DB saved on disk in {minute * 7 % 13} ms", f"Accepted 10.0.0.{minute % 9}:{6000 + minute}"] * 5


def test_new_template_and_error_burst_after_warmup_become_anomalies_and_state_resumes() -> None:
    logs = ResourceLogs(threshold=0.5)
    quiet = []
    for minute in range(8):
        quiet += logs.observe(batch(steady(minute), T0 + timedelta(minutes=minute)), SOURCE)
    assert quiet == [], "a steady source is quiet, even while it warms up"
    resumed = ResourceLogs.from_state(logs.to_state(), threshold=0.5)
    trouble = ["MISCONF Errors writing to the AOF file: No space left on device"] + \
              ["ERROR Error writing to the AOF file: No space left on device"] * 30
    anomalies = resumed.observe(batch(trouble, T0 + timedelta(minutes=8, seconds=5)), SOURCE)
    kinds = {a.detector for a in anomalies}
    assert "log/new_template" in kinds and "log/error_burst" in kinds
    new = next(a for a in anomalies if a.detector == "log/new_template")
    assert new.resource == REDIS and "AOF" in new.details["line"] and new.details["template"]


SERVER_LOGS = Path(__file__).parent / "data" / "logs" / "servers"
PG = ResourceRef(kind="postgresql", name="shop-pg", host="db-2")


def recorded(name: str, contains: str) -> list[str]:
    return [line for line in (SERVER_LOGS / name).read_text().splitlines() if contains in line]


def timed(lines: list[str], start: datetime, step_s: float) -> LogBatch:
    return LogBatch(source=SOURCE, resource=PG, lines=[
        LogLine(ts=start + timedelta(seconds=i * step_s), line=text, path="/tmp/pg/postgres.log")
        for i, text in enumerate(lines)])


def test_real_postgres_routine_lines_stay_quiet_once_warm_and_failed_logins_do_not() -> None:
    """A recorded PostgreSQL log: an application connecting every second from 10 s into the first window, then
    the first timed checkpoint after the warm-up (routine ``LOG:`` lines), then a burst of failed logins."""
    received, authorized = recorded("postgresql.log", "connection received: host=[local]")[0], \
        recorded("postgresql.log", "connection authorized: user=postgres database=shop")[0]
    checkpoint = recorded("postgresql.log", "checkpoint starting: time") + recorded("postgresql.log",
                                                                                    "checkpoint complete:")
    failed = [line for line in (SERVER_LOGS / "postgresql.log").read_text().splitlines()
              if "[30044]" in line] * 20
    assert len(checkpoint) == 2 and len(failed) == 60 and "FATAL:  password authentication failed" in failed[1]
    logs = ResourceLogs(threshold=0.7)
    quiet = []
    for second in range(10, 7 * 60):
        quiet += logs.observe(timed([received, authorized], T0 + timedelta(seconds=second), 0.01), SOURCE)
        if second == 6 * 60 + 30:
            quiet += logs.observe(timed(checkpoint, T0 + timedelta(seconds=second, milliseconds=500), 0.1), SOURCE)
    assert logs.rates.warm and quiet == []
    alarms = logs.observe(timed(failed, T0 + timedelta(minutes=7, seconds=5), 0.05), SOURCE)
    assert {(a.detector, a.severity) for a in alarms} == {("log/new_template", Severity.CRITICAL),
                                                          ("log/error_burst", Severity.WARNING)}
    burst = next(a for a in alarms if a.detector == "log/error_burst")
    assert burst.score >= 0.7 and burst.details["detail"] == "6 error lines this window, usually 0.0"
    assert all(a.resource == PG and "password authentication failed" in a.details["line"] for a in alarms)


def test_an_error_burst_is_reported_at_the_stage_threshold_not_flagged_below_it_and_lost() -> None:
    logs = ResourceLogs(threshold=0.9)
    for minute in range(6):
        logs.observe(batch(steady(minute), T0 + timedelta(minutes=minute)), SOURCE)
    resumed = ResourceLogs.from_state(logs.to_state(), threshold=0.9)
    errors = ["ERROR Error writing to the AOF file: No space left on device"] * 20
    bursts = [a for a in resumed.observe(batch(errors, T0 + timedelta(minutes=6, seconds=5)), SOURCE)
              if a.detector == "log/error_burst"]
    assert len(bursts) == 1 and bursts[0].score >= 0.9


def test_a_template_refined_after_the_warm_up_raises_no_new_template() -> None:
    """A fixed word seen once during the warm-up and again later moves to a template of its own: its lines were
    known, so the refinement changes ids, not alarms."""
    def block(i: int, kind: str) -> str:
        return f"Block rdd_{i} stored as {kind} in memory (estimated size {i % 7}.0 KB, free 3.1 GB)"

    logs = ResourceLogs(threshold=0.5)
    quiet = []
    for minute in range(8):
        lines = [block(minute * 10 + i, "bytes") for i in range(10)]
        if minute in (2, 7):
            lines[5] = block(minute * 10 + 5, "values")
        quiet += logs.observe(batch(lines, T0 + timedelta(minutes=minute)), SOURCE)
    assert logs.rates.warm and quiet == []
    assert [t for _, t, _ in logs.miner.templates()] == [
        "Block <*> stored as bytes in memory (estimated size <*> KB, free <*> GB)",
        "Block <*> stored as values in memory (estimated size <*> KB, free <*> GB)"]


def test_a_key_logged_over_several_lines_never_reaches_an_anomaly() -> None:
    logs = ResourceLogs(threshold=0.5)
    for minute in range(8):
        logs.observe(batch(steady(minute), T0 + timedelta(minutes=minute)), SOURCE)
    leak = ["ERROR loading TLS key -----BEGIN RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEAl0gKeyBody1",
            "Xy9zl0gKeyBody2+/abc==", "-----END RSA PRIVATE KEY-----", "ERROR replica rejected: masterauth l0gPw"]
    anomalies = logs.observe(batch(leak, T0 + timedelta(minutes=8, seconds=5)), SOURCE)
    assert anomalies and {a.details["line"] for a in anomalies} & {"<redacted>"}
    shown = " ".join(f"{a.details['line']} {a.details['template']}" for a in anomalies)
    assert "l0gKeyBody" not in shown and "l0gPw" not in shown
