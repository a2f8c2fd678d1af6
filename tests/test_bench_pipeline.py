"""``kubestack bench pipeline --json`` end to end on the session's broker, small: every figure the issue names is
there and plausible (the figures themselves belong to bench/pipeline, not to a test)."""

import json

import pytest

from tests.cli import cli_env, run

pytestmark = pytest.mark.kafka


def test_bench_pipeline_json_reports_every_figure(kafka, tmp_path) -> None:
    env = cli_env(KUBESTACK_KAFKA__BOOTSTRAP=kafka.bootstrap, KUBESTACK_HOME=str(tmp_path))
    result = run("bench", "pipeline", "--seconds", "2", "--resources", "20", "--samples", "10",
                 "--use-configured-kafka", "--json", env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    figures = json.loads(result.stdout)
    for key in ("samples_per_s", "baseline_samples_per_s", "ratio", "latency_p50_ms", "latency_p99_ms",
                "detector_us_per_sample", "decode_us_per_sample", "bytes_per_series"):
        assert figures[key] > 0, (key, figures)
    assert figures["latency_p50_ms"] <= figures["latency_p99_ms"]
    assert figures["batches"] == 20 * 10 and figures["samples_per_batch"] == 10
    [group] = figures["groups"]  # one worker by default; the scale-out groups (--workers 1,2,3) are bench runs
    assert group["workers"] == 1 and group["samples_per_s"] == figures["samples_per_s"]
    assert group["per_worker_samples_per_s"] == group["samples_per_s"] and group["ratio"] == figures["ratio"]
    assert group["cpu_s_per_million_samples"] >= 0  # this tiny volume is done within a few clock ticks


def test_bench_pipeline_refuses_group_sizes_it_cannot_run(tmp_path) -> None:
    env = cli_env(KUBESTACK_HOME=str(tmp_path))
    for sizes in ("1,x", "0", ""):
        result = run("bench", "pipeline", "--workers", sizes, env=env, timeout=120)
        assert result.returncode == 2 and "group sizes are whole numbers from 1" in result.stdout + result.stderr, (
            sizes, result.stdout + result.stderr)
