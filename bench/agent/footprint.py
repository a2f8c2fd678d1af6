"""The agent's footprint watching five middleware (Redis, MariaDB, PostgreSQL, Kafka, the host) at 10 s
intervals: resident memory and CPU share of one core, read from /proc of the agent process.

    .venv/bin/python -m bench.agent.footprint [--seconds 120] [--interval 10] [--against REV ...]

Starts real servers (the test suite's launchers) and a broker on free ports in a temporary directory, runs
`python -m kubestack.agents` against them, and prints one JSON object. Targets: < 60 MB RSS, < 3 % of one core.
The resident set is also split (``/proc/<pid>/smaps_rollup`` at the end): anonymous memory (the heap, Python's
object arenas) and file-backed pages (shared libraries: libpython, OpenSSL, pydantic-core, the clients' own).

``--against REV`` (repeatable) runs the agent of that git revision (exported to the temporary directory) at the
same time, on the same servers, and adds its figures and the ratios under ``baselines``: a change is judged side
by side in one run, since the machine is shared and noisy. Every agent starts through
``bench/agent/source_tree.py`` so that they all pay the same launcher.
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
LAUNCHER = Path(__file__).with_name("source_tree.py")


def proc_figures(pid: int) -> tuple[float, int]:
    """CPU seconds used so far and resident bytes of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS, int(fields[21]) * PAGE


def smaps_split(pid: int) -> dict[str, float]:
    """Anonymous and file-backed resident MB of ``pid``."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
    kb = {k: int(v.split()[0]) for k, v in fields.items()}
    return {"rss_mb_anon": round(kb["Anonymous"] / 1024, 1), "rss_mb_file": round((kb["Rss"] - kb["Anonymous"]) / 1024, 1)}


def agent_config(redis, mariadb, postgres, bootstrap: str, interval: float, home: Path, name: str) -> dict:
    common = {"interval": interval, "health_interval": 60, "config_interval": 300}
    return {
        "agent": {"name": name, "metrics_listen": None, "spool_dir": str(home / "spool"),
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


def measure(agents: dict[str, list[str]], env: dict[str, str], warmup: float, seconds: float) -> dict[str, dict]:
    """Figures of each agent (label -> argv), all running at the same time."""
    running = {label: subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for label, argv in agents.items()}
    try:
        time.sleep(warmup)
        for label, agent in running.items():
            if agent.poll() is not None:
                raise SystemExit(f"the {label} agent exited early:\n{agent.stderr.read()}")
        cpu0 = {label: proc_figures(agent.pid)[0] for label, agent in running.items()}
        start, rss = time.monotonic(), {label: [] for label in running}
        while time.monotonic() - start < seconds:
            time.sleep(1.0)
            for label, agent in running.items():
                rss[label].append(proc_figures(agent.pid)[1])
        cpu1 = {label: proc_figures(agent.pid)[0] for label, agent in running.items()}
        split = {label: smaps_split(agent.pid) for label, agent in running.items()}
        elapsed = time.monotonic() - start
    finally:
        for agent in running.values():
            agent.terminate()
        for agent in running.values():
            agent.wait(30)
    return {label: {"cpu_percent_of_one_core": round(100 * (cpu1[label] - cpu0[label]) / elapsed, 2),
                    "rss_mb_max": round(max(rss[label]) / 2**20, 1),
                    "rss_mb_mean": round(sum(rss[label]) / len(rss[label]) / 2**20, 1),
                    **split[label], "measured_s": round(elapsed)}
            for label in running}


def export_revision(rev: str, into: Path) -> Path:
    """The project's files at git revision ``rev``, written under ``into``."""
    repo = Path(__file__).resolve().parents[2]
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        base = Path(tmp)
        trees = {"agent": Path(__file__).resolve().parents[2]}
        for rev in args.against:
            trees[rev] = export_revision(rev, base / f"tree-{rev}")
        redis_process, redis = start_redis("bench", base, secrets.token_hex(8), "--maxmemory", "64mb")
        stack.callback(redis_process.stop)
        mariadb = stack.enter_context(running_mariadb(base / "mariadb"))
        postgres = stack.enter_context(running_postgresql("bench"))
        broker = LocalKafka(LocalKafkaSettings(port=free_port(), controller_port=free_port()), base / "kafka")
        broker.up()
        stack.callback(broker.stop)
        argvs = {}
        for label, tree in trees.items():
            config = agent_config(redis, mariadb, postgres, broker.settings.bootstrap, args.interval,
                                  base / f"home-{label}", name=f"bench-{label}")
            (base / f"{label}.yaml").write_text(yaml.safe_dump(config))
            argvs[label] = [sys.executable, str(LAUNCHER), str(tree), "-m", "kubestack.agents",
                            "--config", str(base / f"{label}.yaml")]
        env = {**os.environ, "KUBESTACK_KAFKA__BOOTSTRAP": broker.settings.bootstrap, "KUBESTACK_HOME": str(base)}
        figures = measure(argvs, env, warmup=args.interval * 2, seconds=args.seconds)
    agent = figures["agent"]
    result = {"targets": 5, "interval_s": args.interval, **agent,
              "targets_met": agent["rss_mb_max"] < 60 and agent["cpu_percent_of_one_core"] < 3}
    if args.against:
        result["baselines"] = [
            {"rev": rev, **figures[rev], "rss_max_ratio": round(agent["rss_mb_max"] / figures[rev]["rss_mb_max"], 3),
             "cpu_ratio": round(agent["cpu_percent_of_one_core"] / max(figures[rev]["cpu_percent_of_one_core"], 0.01),
                                2)}
            for rev in args.against]
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--against", metavar="REV", action="append", default=[],
                        help="also run the agent of this git revision, side by side (repeatable)")
    print(json.dumps(main(parser.parse_args())))
