"""Configuration drift on a real MariaDB primary/replica pair: the replica's own report names its primary, their
real variables agree on what ``plugins/mysql`` declares, and a replica with fewer max_connections, a smaller
max_allowed_packet and another sql_mode is a risk whose proposals give it the primary's values; carried out on the
real replica, the drift is gone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubestack.agents.configdiff import digest
from kubestack.contract.events import ConfigSnapshot, HealthReport, PeerRole
from kubestack.pipeline.drift import DriftWatch
from kubestack.pipeline.proposals import supported
from kubestack.pipeline.topology import Topology
from kubestack.plugins.agreement import AT_LEAST, EQUAL
from kubestack.plugins.mysql import MySQLConfig, MySQLPlugin
from kubestack.plugins.mysql.declaration import ACTIONS, AGREEMENTS
from tests.factories import SOURCE
from tests.services.mariadb import MariadbPair, MariadbServer
from tests.test_drift import NOW, listening, signal_of

DRIFTED = {"max_connections": 37, "max_allowed_packet": 1024 * 1024, "sql_mode": "ANSI_QUOTES"}


def monitor(server: MariadbServer) -> MySQLPlugin:
    return MySQLPlugin.create(MySQLConfig.model_validate({
        "host": server.host, "port": server.port, "user": server.user, "password": {"value": server.password}}))


async def observed(server: MariadbServer, name: str) -> tuple[ConfigSnapshot, HealthReport]:
    plugin, ref = monitor(server), listening(name, server.host, server.port, "mysql")
    try:
        config = await plugin.snapshot_config()
        return (ConfigSnapshot(source=SOURCE, resource=ref, tenant="acme", ts=NOW, config=config,
                               digest=digest(config)),
                HealthReport(source=SOURCE, resource=ref, tenant="acme", ts=NOW, peers=await plugin.peers()))
    finally:
        await plugin.close()


def variables(server: MariadbServer, names) -> dict[str, str]:
    with server.admin() as admin, admin.cursor() as cur:
        cur.execute("SHOW GLOBAL VARIABLES WHERE Variable_name IN (%s)" % ", ".join(["%s"] * len(names)),
                    tuple(names))
        return dict(cur.fetchall())


@pytest.fixture()
def drifted(mariadb_pair: MariadbPair) -> Iterator[dict[str, str]]:
    """The session's replica with fewer connections, smaller packets and another sql_mode than its primary; put
    back afterwards. Yields the primary's values."""
    saved = variables(mariadb_pair.replica, DRIFTED)
    with mariadb_pair.replica.admin() as admin, admin.cursor() as cur:
        for name, value in DRIFTED.items():
            cur.execute(f"SET GLOBAL {name} = %s", (value,))
    try:
        yield variables(mariadb_pair.primary, DRIFTED)
    finally:
        with mariadb_pair.replica.admin() as admin, admin.cursor() as cur:
            for name, value in saved.items():
                cur.execute(f"SET GLOBAL {name} = %s", (int(value) if value.isdigit() else value,))


async def test_a_real_replica_names_its_primary_and_agrees_with_it(mariadb_pair: MariadbPair) -> None:
    primary, replica = await observed(mariadb_pair.primary, "db-1"), await observed(mariadb_pair.replica, "db-2")
    assert [(p.role, p.address) for p in replica[1].peers if p.role == PeerRole.PRIMARY] == [
        (PeerRole.PRIMARY, f"{mariadb_pair.primary.host}:{mariadb_pair.primary.port}")]
    topology, watch = Topology(), DriftWatch("acme")
    topology.learn(replica[1])
    assert watch.observe(primary[0], topology, SOURCE) == []
    assert watch.observe(replica[0], topology, SOURCE) == [], "a fresh pair agrees on every declared setting"
    assert set(watch.configs[replica[0].resource.key]["config"]) == AGREEMENTS.setting_names()


async def test_a_drifted_real_replica_is_a_risk_and_aligning_it_as_proposed_ends_the_drift(
        mariadb_pair: MariadbPair, drifted: dict[str, str]) -> None:
    primary, replica = await observed(mariadb_pair.primary, "db-1"), await observed(mariadb_pair.replica, "db-2")
    topology, watch = Topology(), DriftWatch("acme")
    topology.learn(replica[1])
    assert watch.observe(primary[0], topology, SOURCE) == []
    [risk] = watch.observe(replica[0], topology, SOURCE)
    assert (risk.signal, risk.resource.name) == ("mysql.peer_config_drift", "db-2")
    drifts = {d["setting"]: (d["rule"], d["value"], d["peer_value"]) for d in risk.details["evidence"]["drifts"]}
    assert drifts == {"max_allowed_packet": (AT_LEAST, str(DRIFTED["max_allowed_packet"]),
                                             drifted["max_allowed_packet"]),
                      "max_connections": (AT_LEAST, str(DRIFTED["max_connections"]), drifted["max_connections"]),
                      "sql_mode": (EQUAL, DRIFTED["sql_mode"], drifted["sql_mode"])}

    offers = {(a.id, tuple(sorted(p.items()))): a for a, p, _, _ in supported([signal_of(risk)], ACTIONS)}
    assert set(offers) == {("mysql.set_max_connections", (("value", drifted["max_connections"]),)),
                           ("mysql.set_max_allowed_packet", (("value", drifted["max_allowed_packet"]),))}

    admin = MySQLPlugin.create(MySQLConfig(unix_socket=str(mariadb_pair.replica.socket), user="root"))
    try:
        for action, params in offers:
            done = await admin.execute(action, dict(params))
            assert done.undo == (action, {"value": DRIFTED[action.removeprefix("mysql.set_")]}), done
    finally:
        await admin.close()
    aligned = await observed(mariadb_pair.replica, "db-2")
    [still] = watch.observe(aligned[0], topology, SOURCE)
    assert [d["setting"] for d in still.details["evidence"]["drifts"]] == ["sql_mode"], \
        "no action sets sql_mode: it stays until aligned by hand"
