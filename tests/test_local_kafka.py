"""``kubestack kafka up | status | down`` and ``kubestack up`` against a broker of their own, with clear errors."""

import json
import os
import shutil
import socket
import time

import pytest

from kubestack.deploy.kafka.launcher import LocalKafka, min_heap
from kubestack.errors import JavaNotFoundError
from kubestack.settings import LocalKafkaSettings
from tests.cli import cli_env, follow, run
from tests.services.kafka_jars import with_jars
from tests.services.process import free_port

pytestmark = pytest.mark.kafka


def _env(home, port, controller_port, **extra):
    return cli_env(KUBESTACK_HOME=str(home), KUBESTACK_LOCAL_KAFKA__PORT=str(port),
                   KUBESTACK_LOCAL_KAFKA__CONTROLLER_PORT=str(controller_port), **extra)


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_kafka_up_status_down_cycle(tmp_path, kafka_jars) -> None:
    port, controller = free_port(), free_port()
    env = _env(with_jars(tmp_path, kafka_jars), port, controller)  # the session's jars: no Maven run of its own
    assert run("kafka", "status", env=env).returncode == 1, "not running yet"

    up = run("kafka", "up", env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"Kafka up on 127.0.0.1:{port}" in up.stdout

    status = run("kafka", "status", "--json", env=env)
    assert status.returncode == 0
    state = json.loads(status.stdout)
    assert state["running"] and state["cluster"]["cluster_id"]
    assert "kubestack.metrics.v1" in state["cluster"]["topics"] and len(state["cluster"]["topics"]) >= 13
    assert run("kafka", "up", env=env).returncode == 0, "up is idempotent"

    down = run("kafka", "down", env=env)
    assert down.returncode == 0 and "Kafka stopped" in down.stdout
    assert not _accepts(port)
    assert "not running" in run("kafka", "status", env=env).stdout


def test_a_busy_port_fails_fast_and_says_what_to_do(tmp_path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("kafka", "up", env=_env(tmp_path, port, free_port()), timeout=60)
    assert result.returncode == 1
    assert f"port {port} busy" in result.stderr and "KUBESTACK_LOCAL_KAFKA__PORT" in result.stderr
    assert not (tmp_path / "kafka" / "lib").exists(), "nothing slow happened before the port check"


def test_missing_java_says_install_a_jdk(tmp_path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = run("kafka", "up", env=_env(tmp_path, free_port(), free_port(), PATH=str(empty)))
    assert result.returncode == 1 and "Java 17+ not found: install a JDK" in result.stderr


def test_missing_maven_says_install_maven(tmp_path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(os.path.realpath(shutil.which("java")))
    result = run("kafka", "up", env=_env(tmp_path, free_port(), free_port(), PATH=str(bin_dir)))
    assert result.returncode == 1 and "Maven not found: install it" in result.stderr


def test_java_check_reads_the_real_version(monkeypatch, tmp_path) -> None:
    broker = LocalKafka(LocalKafkaSettings(), tmp_path)
    assert broker.check_java().endswith("java")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(JavaNotFoundError):
        broker.check_java()


def test_min_heap() -> None:
    assert min_heap("1g") == "256m" and min_heap("256m") == "128m"


def test_up_runs_broker_and_worker_in_the_foreground_and_ctrl_c_stops_both(tmp_path, kafka_jars) -> None:
    port, controller, api_port = free_port(), free_port(), free_port()
    env = _env(with_jars(tmp_path, kafka_jars), port, controller, KUBESTACK_WORKER__APP_ID="test-up",
               KUBESTACK_API__PORT=str(api_port))
    stack = follow("up", "--verbose", env=env)  # every process's log in the terminal too (the quiet terminal:
    try:                                         # tests/test_up_terminal.py)
        assert stack.wait_for("Worker ready"), stack.output
        assert _accepts(port)
        assert stack.wait_for("admin token for this run"), stack.output
        _api_serves_the_console_and_the_agent_targets(stack.output, api_port)
    finally:
        code = stack.stop(timeout_s=120)
    output = stack.output
    assert code == 0, output
    assert "stopping Kafka" in output and not _accepts(port)
    assert run("kafka", "status", env=env).returncode == 1


def _api_serves_the_console_and_the_agent_targets(output: str, api_port: int) -> None:
    """The printed address and token work; the API knows the targets the agent watches (so diagnose and the
    remediation stage can reach them)."""
    import httpx

    address = f"http://127.0.0.1:{api_port}/"
    assert f"KubeStack API and console on {address}" in output, output
    token = output.split("admin token for this run (api.tokens is empty): ", 1)[1].split()[0]
    with httpx.Client(base_url=address, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        deadline = time.monotonic() + 60
        while True:  # the address is printed just before uvicorn binds
            try:
                page = client.get("/")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the API never listened"
                time.sleep(0.2)
        assert "<html" in page.text.lower()
        targets = client.get("/api/v1/targets").json()["targets"]
    assert {"host", "agent"} <= {t["type"] for t in targets}, targets
