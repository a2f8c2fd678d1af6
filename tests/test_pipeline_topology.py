"""The dependency graph learned from health reports' peers: how addresses name resources, that links are direct
only, that they age out, that the graph stays bounded, and that its state survives JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import HealthReport, Peer, PeerRole
from kubestack.pipeline import topology
from kubestack.pipeline.topology import Endpoint, Topology, split_address
from kubestack.plugins.redis.parse import parse_client_list, parse_info
from kubestack.plugins.redis.peers import redis_peers

SRC = Source(agent="agent/a1", host="a1")
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
DATA = Path(__file__).parent / "data"

APP = ResourceRef(kind="service", name="checkout", host="app-1", labels={"consumer_group": "orders-svc, audit"})
APP_HOST = ResourceRef(kind="host", name="app-1", host="app-1")
CACHE = ResourceRef(kind="redis", name="cache", host="db-1", labels={"address": "10.0.0.5:6379"})
CACHE_REPLICA = ResourceRef(kind="redis", name="cache-replica", host="db-2", labels={"address": "10.0.0.6:6379"})
LOCAL_PRIMARY = ResourceRef(kind="redis", name="local", host="db-2", labels={"address": "127.0.0.1:6380"})
ORDERS_DB = ResourceRef(kind="postgresql", name="orders", host="db-3", labels={"address": "10.0.0.7:5432"})
ORDERS_STANDBY = ResourceRef(kind="postgresql", name="orders-standby", host="db-4")
BROKER = ResourceRef(kind="kafka", name="bus", host="kafka-1")
BILLING = ResourceRef(kind="service", name="billing", host="app-2")


def report(resource: ResourceRef, *peers: Peer, at: datetime = T0) -> HealthReport:
    return HealthReport(source=SRC, resource=resource, ts=at, peers=list(peers))


def learned(*reports: HealthReport) -> Topology:
    graph = Topology()
    for rep in reports:
        graph.learn(rep)
    return graph


def test_addresses_are_split_into_host_and_port() -> None:
    assert split_address("10.0.0.5:6379") == ("10.0.0.5", "6379")
    assert split_address("[FE80::1]:5432") == ("fe80::1", "5432")
    assert split_address("fe80::1") == ("fe80::1", None)
    assert split_address("App-1") == ("app-1", None)
    endpoint = Endpoint.of(LOCAL_PRIMARY)
    assert endpoint.listen == "-/db-2:6380" and endpoint.hosts == {"-/db-2"}  # loopback is its own host
    assert Endpoint.of(APP).groups == {"orders-svc", "audit"}


def test_a_client_host_links_the_server_to_what_runs_on_that_host() -> None:
    graph = learned(report(CACHE, Peer(role=PeerRole.CLIENT, address="app-1", count=12)))
    assert graph.linked(CACHE, APP) and graph.linked(APP, CACHE) and graph.linked(CACHE, APP_HOST)
    assert not graph.linked(CACHE, BILLING) and not graph.linked(APP, BILLING)
    by_address = ResourceRef(kind="mysql", name="m", host="db-9", labels={"address": "app-1:3306"})
    assert graph.linked(CACHE, by_address), "the host of the address label counts too"
    other_cluster = APP.model_copy(update={"cluster": "site-b"})
    assert not graph.linked(CACHE, other_cluster), "hosts are read within the reporter's cluster"


def test_primary_and_replica_addresses_name_the_listener() -> None:
    graph = learned(report(CACHE_REPLICA, Peer(role=PeerRole.PRIMARY, address="10.0.0.5:6379")),
                    report(ORDERS_DB, Peer(role=PeerRole.REPLICA, address="db-4", name="standby1")))
    assert graph.linked(CACHE_REPLICA, CACHE)
    wrong_port = CACHE.model_copy(update={"labels": {"address": "10.0.0.5:6390"}})
    assert not graph.linked(CACHE_REPLICA, wrong_port)
    assert graph.linked(ORDERS_DB, ORDERS_STANDBY), "a bare host names a server of the same kind there"
    assert not graph.linked(ORDERS_DB, ResourceRef(kind="host", name="db-4", host="db-4"))


def test_a_loopback_primary_is_on_the_reporters_own_host() -> None:
    replica = ResourceRef(kind="redis", name="local-replica", host="db-2")
    graph = learned(report(replica, Peer(role=PeerRole.PRIMARY, address="127.0.0.1:6380")))
    assert graph.linked(replica, LOCAL_PRIMARY)
    elsewhere = LOCAL_PRIMARY.model_copy(update={"host": "db-1"})
    assert not graph.linked(replica, elsewhere)


def test_consumer_groups_link_the_cluster_to_services_labelled_with_them() -> None:
    graph = learned(report(BROKER, Peer(role=PeerRole.CONSUMER_GROUP, address="orders-svc", name="orders-svc")))
    assert graph.linked(BROKER, APP) and not graph.linked(BROKER, BILLING)


def test_links_are_direct_only() -> None:
    graph = learned(report(APP_HOST), report(BILLING),
                    report(CACHE, Peer(role=PeerRole.CLIENT, address="app-1"), Peer(role=PeerRole.CLIENT,
                                                                                     address="app-2")))
    assert graph.linked(CACHE, APP_HOST) and graph.linked(CACHE, BILLING)
    assert not graph.linked(APP_HOST, BILLING), "two clients of one cache are not linked to each other"
    assert graph.neighbours(CACHE.key) == {APP_HOST.key, BILLING.key}
    assert graph.neighbours(BILLING.key) == {CACHE.key}
    assert graph.edges() == {tuple(sorted((CACHE.key, APP_HOST.key))), tuple(sorted((CACHE.key, BILLING.key)))}


def test_links_age_out_unless_seen_again() -> None:
    graph = Topology(max_age=timedelta(hours=1))
    graph.learn(report(CACHE, Peer(role=PeerRole.CLIENT, address="app-1"),
                       Peer(role=PeerRole.CLIENT, address="app-2")))
    graph.learn(report(CACHE, Peer(role=PeerRole.CLIENT, address="app-1"), at=T0 + timedelta(minutes=50)))
    graph.learn(report(ORDERS_DB, at=T0 + timedelta(minutes=70)))
    assert graph.linked(CACHE, APP), "seen 20 minutes ago"
    assert not graph.linked(CACHE, BILLING), "last seen 70 minutes ago"
    graph.learn(report(ORDERS_DB, at=T0 + timedelta(hours=3)))
    assert not graph.linked(CACHE, APP) and CACHE.key not in graph.resources


def test_the_graph_is_bounded() -> None:
    many = [Peer(role=PeerRole.CLIENT, address=f"10.1.{i // 250}.{i % 250}", count=1 + i % 7) for i in range(500)]
    graph = learned(report(CACHE, *many))
    kept = graph.resources[CACHE.key]["peers"]
    assert len(kept) == topology.MAX_PEERS
    assert {seen[1] for seen in kept.values()} <= {f"-/{p.address}" for p in many if p.count == 7}, \
        "the busiest clients are kept"
    for i in range(topology.MAX_RESOURCES + 10):
        graph.learn(report(ResourceRef(kind="host", name=f"h{i}", host=f"h{i}"), at=T0 + timedelta(seconds=i)))
    assert len(graph.resources) <= topology.MAX_RESOURCES
    assert "-/h0/host/h0" not in graph.resources and f"-/h{topology.MAX_RESOURCES}/host/h{topology.MAX_RESOURCES}" \
        in graph.resources


def test_state_survives_json() -> None:
    graph = learned(report(CACHE, Peer(role=PeerRole.CLIENT, address="app-1")),
                    report(BROKER, Peer(role=PeerRole.CONSUMER_GROUP, address="audit", name="audit")))
    restored = Topology(state=json.loads(json.dumps(graph.to_state())))
    assert restored.linked(CACHE, APP) and restored.linked(BROKER, APP) and not restored.linked(CACHE, BROKER)
    assert restored.edges() == graph.edges()


def test_recorded_redis_replication_links_primary_and_replica() -> None:
    """What the Redis plugin makes of recorded INFO output (ports 16379 and 16380 on one host) links the two."""
    primary = ResourceRef(kind="redis", name="p", host="db-1", labels={"address": "127.0.0.1:16379"})
    replica = ResourceRef(kind="redis", name="r", host="db-1", labels={"address": "127.0.0.1:16380"})
    unrelated = ResourceRef(kind="redis", name="u", host="db-1", labels={"address": "127.0.0.1:6379"})
    redis_data = DATA / "redis"
    from_replica = redis_peers(parse_info((redis_data / "info_replica.txt").read_text()), [])
    from_primary = redis_peers(parse_info((redis_data / "info_primary.txt").read_text()),
                               parse_client_list((redis_data / "client_list_named.txt").read_text()))
    assert learned(report(replica, *from_replica)).linked(primary, replica)
    graph = learned(report(primary, *from_primary))
    assert graph.linked(primary, replica)
    assert graph.linked(primary, unrelated), "its local clients make it a neighbour of what runs on its host"
    assert not learned(report(replica, *from_replica)).linked(replica, unrelated)


def test_ipv6_listeners_keep_their_port_apart() -> None:
    primary = ResourceRef(kind="postgresql", name="p", host="db-1", labels={"address": "[fd00::7]:5432"})
    standby = ResourceRef(kind="postgresql", name="s", host="db-2")
    graph = learned(report(standby, Peer(role=PeerRole.PRIMARY, address="[fd00::7]:5432")))
    assert Endpoint.of(primary).listen == "-/fd00::7:5432" and graph.linked(standby, primary)


def test_a_callers_view_of_its_server_outranks_a_client_seen_at_its_host() -> None:
    """A shop and its database on one machine: the database sees a client at its own address (any process there),
    the shop names the database's listener; whichever comes first, the link is the shop's call, as it saw it."""
    from kubestack.pipeline.correlation import relation

    shop = ResourceRef(kind="http", name="shop", host="vm", labels={"address": "127.0.0.1:8080"})
    db = ResourceRef(kind="postgresql", name="shop-db", host="vm", labels={"address": "127.0.0.1:5432"})
    graph = learned(report(db, Peer(role=PeerRole.CLIENT, address="127.0.0.1")),
                    report(shop, Peer(role=PeerRole.SERVER, address="127.0.0.1:5432")))
    assert relation(db, shop, graph) == relation(shop, db, graph) == (shop.key, db.key, "server")
