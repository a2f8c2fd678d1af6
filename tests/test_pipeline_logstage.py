from datetime import datetime, timedelta, timezone

from kubestack.contract.events import LogBatch, LogLine
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
