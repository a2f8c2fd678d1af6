from kubestack.contract.events import ConfigChange, ConfigDiff, Severity
from kubestack.pipeline.configrisk import assess
from tests.factories import REDIS, SOURCE
from kubestack.contract.base import ResourceRef


def change(resource, observed=None, **diffs):
    return ConfigChange(source=SOURCE, resource=resource, previous_digest="a" * 64, digest="b" * 64,
                        observed=observed or {},
                        changes=[ConfigDiff(key=k.replace("_", "-") if resource.kind == "redis" else k,
                                            old=o, new=n) for k, (o, n) in diffs.items()])


def test_maxmemory_lowered_below_usage_is_critical_with_before_after_evidence() -> None:
    [anomaly] = assess(change(REDIS, {"redis_used_memory_bytes": 50_000_000}, maxmemory=("67108864", "16777216")),
                       SOURCE)
    assert (anomaly.detector, anomaly.signal, anomaly.severity) == ("config-risk", "redis.maxmemory_lowered",
                                                                    Severity.CRITICAL)
    assert anomaly.details["evidence"] == {"old": "67108864", "new": "16777216", "used_memory": 50_000_000}


def test_raising_limits_is_not_a_risk_and_unknown_kinds_are_ignored() -> None:
    assert assess(change(REDIS, maxmemory=("16777216", "67108864")), SOURCE) == []
    assert assess(change(ResourceRef(kind="nginx", name="n", host="h"), worker_connections=("1024", "10")),
                  SOURCE) == []


def test_policy_and_persistence_changes() -> None:
    anomalies = assess(change(REDIS, maxmemory_policy=("allkeys-lru", "noeviction"), appendonly=("yes", "no")),
                       SOURCE)
    assert {a.signal: a.severity for a in anomalies} == {"redis.eviction_policy_changed": Severity.CRITICAL,
                                                         "redis.persistence_disabled": Severity.WARNING}


def test_mysql_max_connections_cut_below_current_connections() -> None:
    mysql = ResourceRef(kind="mysql", name="orders", host="db-2")
    [anomaly] = assess(change(mysql, {"mysql_threads_connected": 80}, max_connections=("151", "50")), SOURCE)
    assert anomaly.signal == "mysql.max_connections_cut" and anomaly.severity == Severity.CRITICAL


def test_a_configmap_holding_a_redis_conf_is_judged_by_the_redis_rules() -> None:
    """What the Kubernetes collector reports of a ConfigMap with redis.conf (kind configmap, middleware label)."""
    configmap = ResourceRef(kind="configmap", name="cache-config", namespace="shop", cluster="prod",
                            labels={"middleware": "redis"})
    diffs = [ConfigDiff(key="maxmemory-policy", old="allkeys-lru", new="noeviction"),
             ConfigDiff(key="appendonly", old="yes", new="no")]
    anomalies = assess(ConfigChange(source=SOURCE, resource=configmap, previous_digest="a" * 64, digest="b" * 64,
                                    changes=diffs), SOURCE)
    assert {a.signal for a in anomalies} == {"redis.eviction_policy_changed", "redis.persistence_disabled"}
    assert all(a.resource == configmap for a in anomalies)
    unlabelled = configmap.model_copy(update={"labels": {}})
    assert assess(ConfigChange(source=SOURCE, resource=unlabelled, previous_digest="a" * 64, digest="b" * 64,
                               changes=diffs), SOURCE) == []
