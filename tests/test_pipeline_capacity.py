"""Capacity-like samples paired with their limits, as the prediction stage sees them."""

from kubestack.contract.base import ResourceRef, utcnow
from kubestack.contract.events import MetricBatch, Sample
from kubestack.pipeline.capacity import capacities_of, fillings
from kubestack.plugins.base import Capacity
from tests.factories import SOURCE

DISK = Capacity(used="host_filesystem_used_bytes", limit="host_filesystem_size_bytes", match_labels=("mountpoint",),
                title="disk space")
XID = Capacity(used="postgresql_db_xid_age", limit_value=2**31, match_labels=("db",), title="transaction ids")
MEMORY = Capacity(used="redis_used_memory_bytes", limit="redis_maxmemory_bytes", title="Redis memory")


def batch(*samples: tuple[str, float, dict]) -> MetricBatch:
    ts = utcnow()
    return MetricBatch(source=SOURCE, resource=ResourceRef(kind="host", name="h1", host="h1"),
                       samples=[Sample(name=n, value=v, ts=ts, labels=labels) for n, v, labels in samples])


def test_used_series_pair_with_the_limit_of_the_same_labels() -> None:
    b = batch(("host_filesystem_size_bytes", 100.0, {"mountpoint": "/"}),
              ("host_filesystem_size_bytes", 500.0, {"mountpoint": "/data"}),
              ("host_filesystem_used_bytes", 40.0, {"mountpoint": "/data"}),
              ("host_filesystem_used_bytes", 90.0, {"mountpoint": "/"}))
    pairs = {f.sample.labels["mountpoint"]: (f.sample.value, f.limit) for f in fillings(b, (DISK,))}
    assert pairs == {"/": (90.0, 100.0), "/data": (40.0, 500.0)}


def test_constant_limits_and_series_without_a_limit() -> None:
    b = batch(("postgresql_db_xid_age", 1e6, {"db": "shop"}), ("redis_used_memory_bytes", 1e6, {}),
              ("redis_maxmemory_bytes", 0.0, {}))
    found = fillings(b, (XID, MEMORY))
    assert [(f.capacity.title, f.limit) for f in found] == [("transaction ids", 2**31)], \
        "maxmemory 0 is no limit: Redis memory is not forecast"
    assert fillings(batch(("redis_used_memory_bytes", 1.0, {})), (MEMORY,)) == [], "limit missing from the batch"


def test_kinds_without_a_plugin_have_no_capacities() -> None:
    assert capacities_of("no-such-kind") == ()
