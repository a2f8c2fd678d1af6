"""The agent's footprint watching five middleware (Redis, MariaDB, PostgreSQL, Kafka, the host) at 10 s
intervals: resident memory and CPU share of one core, read from /proc of the agent process.

    .venv/bin/python -m bench.agent.footprint [--seconds 120] [--interval 10]

Starts real servers (the test suite's launchers) and a broker on free ports in a temporary directory, runs
`kubestack agent run` against them, and prints one JSON object. Targets: < 60 MB RSS, < 3 % of one core.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from kubestack.deploy.kafka.launcher import LocalKafka
from kubestack.settings import LocalKafkaSettings
from tests.services.mariadb import running_mariadb
from tests.services.postgresql import running_postgresql
from tests.services.process import free_port
from tests.services.redis import start_redis

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_figures(pid: int) -> tuple[float, int]:
    """CPU seconds used so far and resident bytes of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS, int(fields[21]) * PAGE


def agent_config(redis, mariadb, postgres, bootstrap: str, interval: float, home: Path) -> dict:
    common = {"interval": interval, "health_interval": 60, "config_interval": 300}
    return {
        "agent": {"name": "bench", "metrics_listen": None, "spool_dir": str(home / "spool"),
                  "state_dir": str(home / "state")},
        "targets": [
            {"type": "redis", "name": "cache", **common,
             "config": {"host": redis.host, "port": redis.port, "password": {"value": redis.password}}},
            {"type": "mysql", "name": "orders", **common,
             "config": {"host": mariadb.host, "port": mariadb.port, "user": mariadb.user,
                        "password": {"value": mariadb.password}}},
            {"type": "postgresql", "name": "billing", **common,
             "config": {"host": postgres.host, "port": postgres.port, "user": postgres.user,
                        "password": {"value": postgres.password}, "dbname": postgres.dbname}},
            {"type": "kafka", "name": "events", **common, "config": {"bootstrap": bootstrap}},
            {"type": "host", "name": "bench-host", **common},
        ],
    }


def measure(argv: list[str], env: dict[str, str], warmup: float, seconds: float) -> dict:
    agent = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(warmup)
        if agent.poll() is not None:
            raise SystemExit(f"the agent exited early:\n{agent.stderr.read()}")
        cpu0, _ = proc_figures(agent.pid)
        start, rss = time.monotonic(), []
        while time.monotonic() - start < seconds:
            time.sleep(1.0)
            rss.append(proc_figures(agent.pid)[1])
        cpu1, _ = proc_figures(agent.pid)
        elapsed = time.monotonic() - start
    finally:
        agent.terminate()
        agent.wait(30)
    return {"cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / elapsed, 2),
            "rss_mb_max": round(max(rss) / 2**20, 1), "rss_mb_mean": round(sum(rss) / len(rss) / 2**20, 1),
            "measured_s": round(elapsed)}


def main(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        base = Path(tmp)
        redis_process, redis = start_redis("bench", base, secrets.token_hex(8), "--maxmemory", "64mb")
        stack.callback(redis_process.stop)
        mariadb = stack.enter_context(running_mariadb(base / "mariadb"))
        postgres = stack.enter_context(running_postgresql("bench"))
        broker = LocalKafka(LocalKafkaSettings(port=free_port(), controller_port=free_port()), base / "kafka")
        broker.up()
        stack.callback(broker.stop)
        config = agent_config(redis, mariadb, postgres, broker.settings.bootstrap, args.interval, base / "agent")
        (base / "agent.yaml").write_text(yaml.safe_dump(config))
        env = {**os.environ, "KUBESTACK_KAFKA__BOOTSTRAP": broker.settings.bootstrap, "KUBESTACK_HOME": str(base)}
        argv = [sys.executable, "-m", "kubestack.agents", "--config", str(base / "agent.yaml")]
        figures = measure(argv, env, warmup=args.interval * 2, seconds=args.seconds)
    return {"targets": 5, "interval_s": args.interval, **figures,
            "targets_met": figures["rss_mb_max"] < 60 and figures["cpu_percent_of_one_core"] < 3}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--interval", type=float, default=10.0)
    print(json.dumps(main(parser.parse_args())))
