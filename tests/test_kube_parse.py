"""The Kubernetes plugin's pure parts on recorded API objects: pod, node, workload and event rules, samples,
resource identities, configuration files in ConfigMaps, the watch cache, and middleware discovery."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kubestack.contract.events import Severity
from kubestack.plugins.kubernetes.cache import ADDED, DELETED, MODIFIED, WatchCache, error_code
from kubestack.plugins.kubernetes.config import DiscoveryConfig, Thresholds
from kubestack.plugins.kubernetes.configfiles import configmap_configs, parse_my_cnf, parse_redis_conf
from kubestack.plugins.kubernetes.discovery import declared, discover_targets, image_name, middleware_of, unreachable
from kubestack.plugins.registry import plugins
from kubestack.plugins.kubernetes.events import event_findings, event_signal
from kubestack.plugins.kubernetes.nodes import node_findings, node_samples
from kubestack.plugins.kubernetes.objects import parse_quantity, slim, workload_of
from kubestack.plugins.kubernetes.pods import pod_findings, pod_samples, requested
from kubestack.plugins.kubernetes.resources import node_ref, pod_ref, workload_ref
from kubestack.plugins.kubernetes.state import ClusterState
from kubestack.plugins.kubernetes.cache import Change
from kubestack.plugins.kubernetes.watch import next_backoff
from kubestack.plugins.kubernetes.workloads import workload_findings, workload_samples

DATA = Path(__file__).parent / "data" / "kubernetes"
NOW = datetime(2025, 3, 1, 10, 10, tzinfo=timezone.utc)
LIMITS = Thresholds()
CLUSTER = "prod-eu"


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def rules(findings) -> dict[str, Severity]:
    return {f.rule_id: f.severity for f in findings}


# --- pods -------------------------------------------------------------------------------------------------


def test_crashlooping_pod_with_an_oom_kill_is_critical_and_names_its_memory_limit() -> None:
    findings = pod_findings(load("pod_crashloop_oom.json"), NOW, LIMITS)
    assert rules(findings) == {"kubernetes.pod_crashloop": Severity.CRITICAL,
                               "kubernetes.pod_oom_killed": Severity.WARNING}
    crash, oom = findings
    assert "after 7 restarts" in crash.message and "OOMKilled (code 137)" in crash.message
    assert crash.evidence["last_exit_code"] == 137 and crash.evidence["container"] == "redis"
    assert "256Mi memory limit" in oom.message and oom.evidence["memory_limit"] == "256Mi"
    assert oom.query == "kubectl -n shop get pod cache-7d4b9c8f5-x2x9k -o yaml"


def test_an_old_oom_kill_is_no_news() -> None:
    later = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert rules(pod_findings(load("pod_crashloop_oom.json"), later, LIMITS)) == {
        "kubernetes.pod_crashloop": Severity.CRITICAL}


def test_unschedulable_pod_carries_the_schedulers_reason() -> None:
    [finding] = pod_findings(load("pod_unschedulable.json"), NOW, LIMITS)
    assert finding.rule_id == "kubernetes.pod_unschedulable" and finding.severity == Severity.CRITICAL
    assert "3 Insufficient memory" in finding.message
    assert finding.evidence["since"] == "2025-03-01T09:50:00Z"


def test_image_pull_back_off_is_reported_not_a_generic_pending() -> None:
    pod = load("pod_imagepull.json")
    much_later = datetime(2025, 3, 1, 11, 0, tzinfo=timezone.utc)
    findings = pod_findings(pod, much_later, LIMITS)
    assert rules(findings) == {"kubernetes.image_pull_failed": Severity.CRITICAL}
    assert findings[0].evidence["image"] == "registry.example.com/shop/checkout:2.14.0"


def test_a_pending_pod_without_a_known_reason_is_told_after_the_threshold() -> None:
    pod = load("pod_imagepull.json")
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ContainerCreating"}}
    assert pod_findings(pod, datetime(2025, 3, 1, 10, 8, tzinfo=timezone.utc), LIMITS) == []   # 3 min: not yet
    later = datetime(2025, 3, 1, 10, 20, tzinfo=timezone.utc)
    [finding] = pod_findings(pod, later, LIMITS)
    assert finding.rule_id == "kubernetes.pod_pending" and "app: ContainerCreating" in finding.message
    assert finding.evidence["pending_s"] == 900


def test_restarts_that_recovered_are_a_warning_with_the_last_exit() -> None:
    [finding] = pod_findings(load("pod_restarting.json"), NOW, LIMITS)
    assert finding.rule_id == "kubernetes.pod_restarting" and finding.severity == Severity.WARNING
    assert "restarted 4 times" in finding.message and "Error, exit code 1" in finding.message
    assert pod_findings(load("pod_restarting.json"), NOW, Thresholds(restarts=5)) == []


def test_a_running_pod_not_ready_for_long_is_a_warning() -> None:
    [finding] = pod_findings(load("pod_not_ready.json"), NOW, LIMITS)
    assert finding.rule_id == "kubernetes.pod_not_ready" and finding.evidence["not_ready_s"] == 1200
    assert pod_findings(load("pod_not_ready.json"), NOW, Thresholds(not_ready_s=1800)) == []


def test_evicted_pod_is_told_while_the_eviction_is_recent() -> None:
    [finding] = pod_findings(load("pod_evicted.json"), NOW, LIMITS)
    assert finding.rule_id == "kubernetes.pod_evicted" and "low on resource: memory" in finding.message
    assert pod_findings(load("pod_evicted.json"), datetime(2025, 3, 2, tzinfo=timezone.utc), LIMITS) == []


def test_terminating_pods_have_no_findings() -> None:
    pod = load("pod_crashloop_oom.json")
    pod["metadata"]["deletionTimestamp"] = "2025-03-01T10:09:00Z"
    assert pod_findings(pod, NOW, LIMITS) == []


def test_pod_samples_count_restarts_and_read_requests_and_limits() -> None:
    samples = {(s.name, s.labels.get("container")): s.value for s in pod_samples(load("pod_crashloop_oom.json"), NOW)}
    assert samples[("kubernetes_pod_ready", None)] == 0.0
    assert samples[("kubernetes_container_restarts_total", "redis")] == 7.0
    assert samples[("kubernetes_container_memory_limits_bytes", "redis")] == 256 * 2**20
    assert samples[("kubernetes_container_cpu_limits_cores", "redis")] == 0.5
    assert samples[("kubernetes_container_cpu_requests_cores", "redis")] == pytest.approx(0.1)
    assert requested(load("pod_restarting.json"), "memory") == 2**30


@pytest.mark.parametrize(("text", "value"), [("512Mi", 512 * 2**20), ("1.5Gi", 1.5 * 2**30), ("250m", 0.25),
                                             ("2", 2.0), ("1e3", 1000.0), ("15074452Ki", 15074452 * 1024),
                                             ("3920m", 3.92), ("100M", 1e8), ("bogus", None), (None, None)])
def test_quantities(text, value) -> None:
    assert parse_quantity(text) == (pytest.approx(value) if value is not None else None)


# --- identities ------------------------------------------------------------------------------------------


def test_pod_identity_names_owner_node_address_and_depends_on_its_node() -> None:
    ref = pod_ref(CLUSTER, load("pod_crashloop_oom.json"))
    assert (ref.kind, ref.name, ref.namespace, ref.cluster, ref.host) == ("pod", "cache-7d4b9c8f5-x2x9k", "shop",
                                                                          CLUSTER, None)
    assert ref.labels == {"owner": "deployment/cache", "node": "worker-2", "address": "10.244.2.17",
                          "depends_on": "prod-eu/worker-2/node/worker-2", "app": "redis"}
    assert ref.labels["depends_on"] == node_ref(CLUSTER, load("node_not_ready.json")).key
    assert workload_of(load("pod_restarting.json")) == ("statefulset", "redis")
    assert workload_of(load("pod_evicted.json")) == ("job", "batch-report-28491840")


def test_node_identity_is_its_host_with_its_internal_ip() -> None:
    ref = node_ref(CLUSTER, load("node_not_ready.json"))
    assert (ref.kind, ref.name, ref.host, ref.cluster) == ("node", "worker-2", "worker-2", CLUSTER)
    assert ref.labels == {"address": "10.0.1.12", "zone": "eu-west-1b"}


def test_workload_depends_on_its_pods() -> None:
    pods = [pod_ref(CLUSTER, load("pod_not_ready.json")).key, pod_ref(CLUSTER, load("pod_restarting.json")).key]
    ref = workload_ref(CLUSTER, "statefulset", load("statefulset_degraded.json"), pods)
    assert ref.key == "prod-eu/shop/statefulset/redis"
    assert ref.labels["depends_on"] == "prod-eu/shop/pod/redis-0,prod-eu/shop/pod/redis-1"


# --- nodes and workloads ------------------------------------------------------------------------------


def test_node_not_ready_when_its_kubelet_stopped_reporting() -> None:
    [finding] = node_findings(load("node_not_ready.json"), NOW)
    assert finding.rule_id == "kubernetes.node_not_ready" and finding.severity == Severity.CRITICAL
    assert "kubelet stopped reporting" in finding.message and finding.evidence["status"] == "Unknown"


def test_node_pressure_conditions() -> None:
    assert rules(node_findings(load("node_pressure.json"), NOW)) == {
        "kubernetes.node_memory_pressure": Severity.WARNING, "kubernetes.node_disk_pressure": Severity.WARNING}


def test_node_samples_sum_the_requests_of_its_pods() -> None:
    pods = [load("pod_restarting.json"), load("pod_evicted.json")]          # the evicted one no longer counts
    samples = {s.name: s.value for s in node_samples(load("node_pressure.json"), NOW, pods, requested)}
    assert samples["kubernetes_node_ready"] == 1.0 and samples["kubernetes_node_unschedulable"] == 1.0
    assert samples["kubernetes_node_pods"] == 1.0 and samples["kubernetes_node_memory_requests_bytes"] == 2**30
    assert samples["kubernetes_node_allocatable_cpu_cores"] == pytest.approx(3.92)
    assert samples["kubernetes_node_allocatable_pods"] == 110.0


def test_a_rollout_past_its_deadline_is_stuck() -> None:
    [finding] = workload_findings("deployment", load("deployment_stuck.json"), NOW)
    assert finding.rule_id == "kubernetes.rollout_stuck" and finding.severity == Severity.CRITICAL
    assert "timed out progressing" in finding.message and "1/3 updated" in finding.message
    assert finding.query == "kubectl -n shop rollout status deployment/checkout"


def test_statefulset_short_of_ready_replicas_outside_a_rollout() -> None:
    sts = load("statefulset_degraded.json")
    [finding] = workload_findings("statefulset", sts, NOW)
    assert finding.rule_id == "kubernetes.workload_unavailable" and finding.severity == Severity.WARNING
    assert finding.evidence["ready"] == 2 and finding.evidence["desired"] == 3
    sts["status"]["updateRevision"] = "redis-7e6f9c8d0"                     # a rolling update: one at a time
    assert workload_findings("statefulset", sts, NOW) == []
    sts["status"]["readyReplicas"] = sts["status"]["availableReplicas"] = 0
    assert rules(workload_findings("statefulset", sts, NOW)) == {"kubernetes.workload_unavailable": Severity.CRITICAL}


def test_workload_samples() -> None:
    samples = {s.name: s.value for s in workload_samples(load("deployment_stuck.json"), NOW)}
    assert samples == {"kubernetes_workload_replicas_desired": 3.0, "kubernetes_workload_replicas_ready": 3.0,
                       "kubernetes_workload_replicas_available": 3.0, "kubernetes_workload_replicas_updated": 1.0,
                       "kubernetes_workload_replicas_unavailable": 0.0}


# --- events ----------------------------------------------------------------------------------------------


def test_warning_events_become_findings_of_what_they_are_about() -> None:
    signals = [s for e in load("events.json")["items"] if (s := event_signal(CLUSTER, e))]
    by_resource: dict[str, list] = {}
    for signal in signals:
        by_resource.setdefault(signal.resource.key, []).append(signal)
    told = {key: rules(event_findings(group, NOW, LIMITS.event_s)) for key, group in by_resource.items()}
    assert {k: v for k, v in told.items() if v} == {
        "prod-eu/shop/pod/redis-0": {"kubernetes.probe_failing": Severity.WARNING},
        "prod-eu/shop/pod/orders-db-0": {"kubernetes.volume_failed": Severity.WARNING},
        "prod-eu/shop/deployment/checkout": {"kubernetes.create_failed": Severity.WARNING},
        "prod-eu/worker-3/node/worker-3": {"kubernetes.node_oom": Severity.WARNING},
        "prod-eu/shop/persistentvolumeclaim/data-orders-db-2": {"kubernetes.volume_failed": Severity.WARNING},
        "prod-eu/shop/pod/checkout-5f7b8c9d4-abcde": {"kubernetes.warning_event": Severity.WARNING},
    }
    assert "prod-eu/shop/service/api-gateway" in told                      # seen, but 100 minutes ago: aged out
    [probe] = event_findings(by_resource["prod-eu/shop/pod/redis-0"], NOW, LIMITS.event_s)
    assert "Readiness probe failed" in probe.message and probe.evidence["count"] == 112
    [sandbox] = event_findings(by_resource["prod-eu/shop/pod/checkout-5f7b8c9d4-abcde"], NOW, LIMITS.event_s)
    assert sandbox.evidence["count"] == 14 and "FailedCreatePodSandBox" in sandbox.message


def test_back_off_and_normal_events_are_left_to_the_status_rules() -> None:
    items = {e["reason"]: e for e in load("events.json")["items"]}
    assert event_signal(CLUSTER, items["BackOff"]) is None and event_signal(CLUSTER, items["Started"]) is None


# --- configuration files -------------------------------------------------------------------------------


def test_redis_conf_reads_like_config_get() -> None:
    config = configmap_configs(load("configmaps.json")["items"][0])["redis"]
    assert config["maxmemory"] == str(200 * 1024 * 1024) and config["maxmemory-policy"] == "allkeys-lru"
    assert config["save"] == "900 1 300 10" and config["requirepass"] == "<redacted>"
    assert "include" not in config
    assert parse_redis_conf("maxmemory 2gb\n")["maxmemory"] == str(2 * 1024**3)


def test_my_cnf_postgresql_conf_and_server_properties() -> None:
    configs = {}
    for item in load("configmaps.json")["items"]:
        configs |= configmap_configs(item)
    assert configs["mysql"]["max_connections"] == "500" and configs["mysql"]["skip_name_resolve"] == "ON"
    assert configs["mysql"]["innodb_flush_log_at_trx_commit"] == "1"
    assert configs["mysql"]["client.password"] == "<redacted>"
    assert configs["postgresql"]["synchronous_commit"] == "off"
    assert configs["postgresql"]["log_line_prefix"] == "%m [%p] '%q' "
    assert configs["postgresql"]["listen_addresses"] == "*" and "include_if_exists" not in configs["postgresql"]
    assert configs["kafka"]["num.partitions"] == "6" and configs["kafka"]["listeners"] == "PLAINTEXT://:9092"
    assert configs["kafka"]["sasl.jaas.config"] == "<redacted>"
    assert set(configs) == {"redis", "mysql", "postgresql", "kafka"}       # checkout's settings are not middleware
    assert parse_my_cnf("[mysqld]\nmax-connections=10\n") == {"max_connections": "10"}


def test_the_cache_keeps_only_what_may_be_a_configuration_file() -> None:
    kept = slim("configmaps", load("configmaps.json")["items"][2])
    assert set(kept["data"]) == {"postgresql.conf", "pg_hba.conf"} and "managedFields" not in kept["metadata"]
    pod = slim("pods", load("pod_crashloop_oom.json"))
    assert "managedFields" not in pod["metadata"] and "annotations" not in pod["metadata"]
    assert pod["spec"]["volumes"] == [{"name": "config", "configMap": {"name": "cache-redis-config",
                                                                       "defaultMode": 420}}]


# --- the watch cache ------------------------------------------------------------------------------------


def test_watch_cache_follows_events_and_a_relist_yields_what_changed_meanwhile() -> None:
    cache = WatchCache("pods")
    events = [json.loads(line) for line in (DATA / "watch_pods.jsonl").read_text().splitlines()]
    kinds = [[c.type for c in cache.apply(e)] for e in events[:4]]
    assert kinds == [[ADDED], [MODIFIED], [], [DELETED]]
    assert cache.resource_version == "500160" and cache.versions == {}
    assert error_code(events[4]) == 410 and error_code(events[0]) is None

    pods = [load("pod_not_ready.json"), load("pod_restarting.json")]
    first = cache.replace(pods, "600000")
    assert [(c.type, c.key) for c in first] == [(ADDED, "shop/redis-0"), (ADDED, "shop/redis-1")]
    changed = json.loads(json.dumps(pods[1]))
    changed["metadata"]["resourceVersion"] = "600001"
    cache.expire()
    assert not cache.synced
    again = cache.replace([changed, load("pod_imagepull.json")], "600010")      # redis-0 went while away
    assert sorted((c.type, c.key) for c in again) == [(ADDED, "shop/checkout-5f7b8c9d4-abcde"),
                                                      (DELETED, "shop/redis-0"), (MODIFIED, "shop/redis-1")]
    assert cache.synced and cache.resource_version == "600010"


def test_watch_cache_bounds_what_it_keeps() -> None:
    cache = WatchCache("pods", max_objects=1)
    changes = cache.replace([load("pod_not_ready.json"), load("pod_restarting.json")], "1")
    assert len(changes) == 1 and cache.dropped == 1


def test_backoff_doubles_up_to_its_ceiling() -> None:
    delays, delay = [], 0.0
    for _ in range(8):
        delay = next_backoff(delay, 30.0, jitter=1.0)
        delays.append(delay)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert 24.0 <= next_backoff(30.0, 30.0) <= 36.0


# --- the cluster state -----------------------------------------------------------------------------------


def _change(kind: str, obj: dict, type_: str = ADDED) -> Change:
    from kubestack.plugins.kubernetes.objects import object_key

    return Change(kind, type_, object_key(obj), slim(kind, obj))


def test_state_tells_changes_once_repeats_findings_on_resync_and_clears_what_went() -> None:
    state = ClusterState(CLUSTER, LIMITS)
    pod = load("pod_crashloop_oom.json")
    state.apply(_change("pods", pod))
    state.apply(_change("nodes", load("node_not_ready.json")))
    state.apply(_change("pods", load("pod_restarting.json")))
    first = {r.resource.key: rules(r.findings) for r in state.flush(NOW)}
    assert first == {"prod-eu/shop/pod/cache-7d4b9c8f5-x2x9k": {"kubernetes.pod_crashloop": Severity.CRITICAL,
                                                                "kubernetes.pod_oom_killed": Severity.WARNING},
                     "prod-eu/worker-2/node/worker-2": {"kubernetes.node_not_ready": Severity.CRITICAL},
                     "prod-eu/shop/pod/redis-1": {"kubernetes.pod_restarting": Severity.WARNING}}
    state.apply(_change("pods", pod, MODIFIED))                            # same findings: nothing new to tell
    assert state.flush(NOW) == []
    assert len(state.resync(NOW)) == 3                                    # but the state is repeated

    healthy = json.loads(json.dumps(pod))
    container = healthy["status"]["containerStatuses"][0]
    container["state"], container["lastState"], container["ready"] = {"running": {}}, {}, True
    healthy["status"]["conditions"][1]["status"] = "True"
    state.apply(_change("pods", healthy, MODIFIED))
    state.apply(_change("pods", load("pod_restarting.json"), DELETED))
    cleared = {r.resource.key: r.findings for r in state.flush(NOW)}
    assert cleared == {"prod-eu/shop/pod/cache-7d4b9c8f5-x2x9k": [], "prod-eu/shop/pod/redis-1": []}
    assert [r.resource.key for r in state.resync(NOW)] == ["prod-eu/worker-2/node/worker-2"]


def test_state_merges_events_into_the_pods_report_and_ages_them_out() -> None:
    state = ClusterState(CLUSTER, LIMITS)
    state.apply(_change("pods", load("pod_not_ready.json")))
    for event in load("events.json")["items"]:
        state.apply(_change("events", event))
    reports = {r.resource.key: r for r in state.flush(NOW)}
    redis0 = reports["prod-eu/shop/pod/redis-0"]
    assert rules(redis0.findings) == {"kubernetes.pod_not_ready": Severity.WARNING,
                                      "kubernetes.probe_failing": Severity.WARNING}
    assert redis0.resource.labels["address"] == "10.244.1.7"               # the pod's identity, not the event's
    later = datetime(2025, 3, 1, 10, 40, tzinfo=timezone.utc)
    aged = {r.resource.key: rules(r.findings) for r in state.resync(later)}
    assert aged["prod-eu/shop/pod/redis-0"] == {"kubernetes.pod_not_ready": Severity.WARNING}
    assert aged["prod-eu/shop/persistentvolumeclaim/data-orders-db-2"] == {}


def test_state_hands_out_configuration_snapshots_and_metrics() -> None:
    state = ClusterState(CLUSTER, LIMITS)
    for item in load("configmaps.json")["items"]:
        state.apply(_change("configmaps", item))
    configs = {ref.key: (ref.labels, config) for ref, config in state.take_configs()}
    assert set(configs) == {"prod-eu/shop/configmap/cache-redis-config", "prod-eu/shop/configmap/mysql-config",
                            "prod-eu/shop/configmap/orders-db-configuration", "prod-eu/streams/configmap/kafka-config"}
    assert configs["prod-eu/shop/configmap/cache-redis-config"][0] == {"middleware": "redis"}
    assert state.take_configs() == []
    state.apply(_change("pods", load("pod_restarting.json")))
    state.apply(_change("nodes", load("node_pressure.json")))
    state.apply(_change("statefulsets", load("statefulset_degraded.json")))
    series = {ref.key: {s.name for s in samples} for ref, samples in state.samples(NOW)}
    assert "kubernetes_container_restarts_total" in series["prod-eu/shop/pod/redis-1"]
    assert "kubernetes_node_memory_requests_bytes" in series["prod-eu/worker-3/node/worker-3"]
    assert "kubernetes_workload_replicas_ready" in series["prod-eu/shop/statefulset/redis"]
    [sts] = [r for r in state.resync(NOW) if r.resource.kind == "statefulset"]
    assert sts.resource.labels["depends_on"] == "prod-eu/shop/pod/redis-1"
    summary = {(s.name, s.labels.get("phase")): s.value for s in state.summary(NOW)}
    assert summary[("kubernetes_cluster_nodes", None)] == 1.0 and summary[("kubernetes_cluster_pods", "Running")] == 1.0


# --- discovery --------------------------------------------------------------------------------------------


def test_middleware_is_recognised_by_label_and_image_not_by_an_exporter_sidecar() -> None:
    assert image_name("docker.io/bitnami/redis:7.2.4-debian-12-r9") == "redis"
    assert image_name("quay.io/strimzi/kafka:0.40.0-kafka-3.7.0@sha256:abc") == "kafka"
    kind, container = middleware_of(load("pod_restarting.json"), ["redis", "postgresql"])
    assert kind == "redis" and container["name"] == "redis"
    assert middleware_of(load("pod_imagepull.json"), ["redis", "mysql", "postgresql", "kafka"]) is None
    assert middleware_of(load("pod_restarting.json"), ["postgresql"]) is None


def test_what_is_discovered_comes_from_the_plugins_declarations() -> None:
    """A plugin's ``discovery`` declaration is all discovery knows: every declaring plugin is a default kind, and a
    pod of one of its images becomes a target of that plugin on its declared port (or in its address key)."""
    known = declared()
    assert {"redis", "mysql", "postgresql", "kafka"} <= set(DiscoveryConfig().kinds) == set(known.ports)
    for kind, plugin in plugins().items():
        if kind not in known.ports:
            continue
        image = plugin.discovery.images[0]
        pod = {"metadata": {"name": f"{kind}-0", "namespace": "ns", "labels": {"app": "x"}},
               "spec": {"containers": [{"name": "main", "image": f"docker.io/library/{image}:1.0"}]}}
        service = {"metadata": {"name": kind, "namespace": "ns"},
                   "spec": {"selector": {"app": "x"}, "ports": [{"port": known.ports[kind]}]}}
        (target,) = discover_targets(CLUSTER, [pod], [service], {}, DiscoveryConfig(kinds=[kind]))
        address = f"{kind}.ns.svc.cluster.local"
        expected = ({known.address_keys[kind]: f"{address}:{known.ports[kind]}"} if kind in known.address_keys
                    else {"host": address, "port": known.ports[kind]})
        assert target["type"] == kind and target["config"] == expected, target


def test_discovery_reaches_statefulset_pods_one_by_one_and_others_through_their_service() -> None:
    pods = [load(n) for n in ("pod_not_ready.json", "pod_restarting.json", "pod_crashloop_oom.json",
                              "pod_unschedulable.json", "pod_imagepull.json")]
    statefulsets = {"shop/redis": load("statefulset_degraded.json"), "shop/orders-db": load("statefulset_orders_db.json")}
    config = DiscoveryConfig(config={"postgresql": {"user": "monitor", "password": {"env": "PG_PASSWORD"}}})
    targets = {t["name"]: t for t in discover_targets(CLUSTER, [slim("pods", p) for p in pods],
                                                      load("services.json")["items"], statefulsets, config)}
    assert sorted(targets) == ["cache.shop", "orders-db-1.shop", "redis-0.shop", "redis-1.shop"]
    redis0 = targets["redis-0.shop"]
    assert redis0["type"] == "redis" and redis0["namespace"] == "shop" and redis0["cluster"] == CLUSTER
    assert redis0["config"] == {"host": "redis-0.redis-headless.shop.svc.cluster.local", "port": 6379}
    assert redis0["labels"]["depends_on"] == "prod-eu/shop/pod/redis-0,prod-eu/shop/statefulset/redis"
    cache = targets["cache.shop"]
    assert cache["config"] == {"host": "cache.shop.svc.cluster.local", "port": 6380}
    assert cache["labels"]["depends_on"] == "prod-eu/shop/deployment/cache,prod-eu/shop/pod/cache-7d4b9c8f5-x2x9k"
    assert targets["orders-db-1.shop"]["config"] == {
        "host": "orders-db-1.orders-db-hl.shop.svc.cluster.local", "port": 5432, "user": "monitor",
        "password": {"env": "PG_PASSWORD"}}
    lonely = json.loads(json.dumps(pods[0]))
    lonely["metadata"]["namespace"] = "elsewhere"
    assert unreachable([lonely], load("services.json")["items"], config) == ["elsewhere/redis-0"]


# --- what correlation reads ---------------------------------------------------------------------------------


def test_correlation_reads_app_to_middleware_to_pod_to_node() -> None:
    """The identities above, as the correlator relates them: the checkout pod is a client the cache's Redis sees
    (its address), the cache depends on its pod and Deployment (discovery), the pod on its node."""
    from kubestack.contract.base import ResourceRef, Source, utcnow
    from kubestack.contract.events import HealthReport, Peer, PeerRole
    from kubestack.pipeline.correlation import relation
    from kubestack.pipeline.topology import Topology

    node = node_ref(CLUSTER, load("node_not_ready.json"))
    cache_pod = pod_ref(CLUSTER, load("pod_crashloop_oom.json"))
    app_pod = pod_ref(CLUSTER, load("pod_imagepull.json"))
    [target] = [t for t in discover_targets(CLUSTER, [slim("pods", load("pod_crashloop_oom.json"))],
                                            load("services.json")["items"], {}, DiscoveryConfig())]
    redis = ResourceRef(kind="redis", name=target["name"], namespace=target["namespace"], cluster=target["cluster"],
                        labels={"address": f"{target['config']['host']}:{target['config']['port']}",
                                **target["labels"]})                       # as the agent builds it
    deployment = workload_ref(CLUSTER, "deployment", {"metadata": {"name": "cache", "namespace": "shop"}},
                              [cache_pod.key])
    graph = Topology()
    graph.learn(HealthReport(source=Source(agent="agent/a", host="a"), resource=redis, ts=utcnow(),
                             peers=[Peer(role=PeerRole.CLIENT, address=app_pod.labels["address"])]))
    assert relation(app_pod, redis, graph) == (app_pod.key, redis.key, "client")
    assert relation(redis, cache_pod, graph) == (redis.key, cache_pod.key, "depends_on")
    assert relation(cache_pod, node, graph) == (cache_pod.key, node.key, "depends_on")
    assert relation(deployment, cache_pod, graph) == (deployment.key, cache_pod.key, "depends_on")
    assert relation(app_pod, node, graph) is None                          # another node: not related by that
